"""The DFT code's settings for a plan's inputs: ``plan --format FMT --dft-settings FILE``.

A YAML file holds what ASE's writer of the code needs beyond the structure, so that the
written inputs run as they are::

    # Quantum ESPRESSO (espresso-in)
    input_data:
      system: {ecutwfc: 30}            # Ry; converge it
    pseudopotentials: {Si: Si.pbe-rrkj.UPF}
    pseudo_dir: /usr/share/espresso/pseudo   # relative paths: from this file's folder
    kspacing: 0.15                     # 1/A, VASP's KSPACING rule; or kpts: [4, 4, 4]
    files: []                          # copied into dft/common/ (INCAR, KPOINTS, POTCAR...)
    write: {}                          # any other keyword of ase.io.write

Every key is used or refused (:class:`DftSettings` forbids others). For ``espresso-in``
the finite-difference defaults of :func:`espresso_defaults` are written in unless the
file sets them: an SCF with forces and stress printed, a tight SCF threshold, a fine
density grid (``ecutrho`` 8 x ``ecutwfc``, against the egg-box effect), no symmetry
reduction (``nosym``: displaced cells have different symmetry, and a
symmetry-dependent k-point set or force symmetrisation would differ between them), and
one k-mesh for every configuration (``kspacing`` is turned into a mesh once, from the
supercell). The files named are hashed into the plan's ``plan.json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from anharmbench.errors import InputError

__all__ = ["DftSettings", "DftSettingsError", "espresso_defaults", "load_dft_settings"]


class DftSettingsError(InputError):
    """A DFT settings file cannot be used; the message names the key and the fix."""


class DftSettings(BaseModel):
    """What ASE's writer needs beyond the structure (see the module doc)."""

    model_config = ConfigDict(extra="forbid")

    input_data: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pseudopotentials: dict[str, str] = Field(default_factory=dict)
    pseudo_dir: str | None = None
    kpts: tuple[int, int, int] | None = None
    kspacing: float | None = Field(default=None, gt=0)
    koffset: tuple[int, int, int] | None = None
    files: list[str] = Field(default_factory=list)
    write: dict[str, Any] = Field(default_factory=dict)
    #: folder of the settings file (relative paths are read from there)
    _base: Path = PrivateAttr(default=Path("."))

    @property
    def base(self) -> Path:
        return self._base

    @model_validator(mode="after")
    def _one_mesh(self) -> DftSettings:
        if self.kpts is not None and self.kspacing is not None:
            raise ValueError("give kpts or kspacing, not both")
        if self.kpts is not None and min(self.kpts) < 1:
            raise ValueError(f"kpts are positive integers, got {list(self.kpts)}")
        return self

    def path(self, name: str) -> Path:
        p = Path(name).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def mesh(self, atoms: Atoms) -> tuple[int, int, int] | None:
        """The k-mesh of every configuration (from ``kspacing`` and the undisplaced cell)."""
        if self.kpts is not None:
            return self.kpts
        if self.kspacing is None:
            return None
        from phonopy.phonon.grid import length2mesh

        n = length2mesh(2 * np.pi / self.kspacing, np.asarray(atoms.cell), rounding="ceiling")
        return (int(n[0]), int(n[1]), int(n[2]))

    def write_kwargs(self, fmt: str, atoms: Atoms) -> dict[str, Any]:
        """Keyword arguments of ``ase.io.write`` for the plan's supercell ``atoms``.

        Raises
        ------
        DftSettingsError
            A setting this format cannot take, or one it needs is missing.
        """
        kwargs: dict[str, Any] = dict(self.write)
        mesh = self.mesh(atoms)
        qe_only = {k for k in ("input_data", "pseudopotentials", "pseudo_dir")
                   if getattr(self, k)}
        if fmt != "espresso-in":
            if qe_only:
                raise DftSettingsError(
                    f"{', '.join(sorted(qe_only))}: Quantum ESPRESSO settings, but the format "
                    f"is {fmt!r}; give the code's files under 'files' (copied into "
                    "dft/common/) and writer keywords under 'write'")
            if mesh is not None:
                kwargs["kpts"] = mesh
            return kwargs
        symbols = sorted(set(atoms.get_chemical_symbols()))
        missing = [s for s in symbols if s not in self.pseudopotentials]
        if missing:
            raise DftSettingsError(
                f"pseudopotentials: none given for {', '.join(missing)}; add e.g. "
                f"pseudopotentials: {{{missing[0]}: {missing[0]}.pbe-rrkj.UPF}} (files in "
                "pseudo_dir)")
        extra = sorted(set(self.pseudopotentials) - set(symbols))
        if extra:
            raise DftSettingsError(f"pseudopotentials: {', '.join(extra)} not in the crystal "
                                   f"({', '.join(symbols)}); remove them")
        for s, name in self.pseudopotentials.items():
            if not self.pseudo_file(name).is_file():
                raise DftSettingsError(
                    f"pseudopotentials.{s}: {self.pseudo_file(name)} not found (pseudo_dir "
                    f"{self.pseudo_directory()})")
        system = self.input_data.get("system", {})
        if "ecutwfc" not in system:
            raise DftSettingsError("input_data.system.ecutwfc (Ry) is required: the plane-wave "
                                   "cutoff, converged for the forces of your pseudopotentials")
        data = espresso_defaults(len(atoms), float(system["ecutwfc"]))
        for section, values in self.input_data.items():
            data.setdefault(section, {}).update(values)
        data["control"]["pseudo_dir"] = str(self.pseudo_directory())
        kwargs.update(input_data=data, pseudopotentials=dict(self.pseudopotentials))
        if mesh is None:
            raise DftSettingsError("give kpts: [n1, n2, n3] or kspacing (1/A): one k-mesh for "
                                   "every configuration")
        kwargs["kpts"] = mesh
        if self.koffset is not None:
            kwargs["koffset"] = self.koffset
        return kwargs

    def pseudo_directory(self) -> Path:
        return self.path(self.pseudo_dir).resolve() if self.pseudo_dir else self.base.resolve()

    def pseudo_file(self, name: str) -> Path:
        return self.pseudo_directory() / name

    def common_files(self) -> list[Path]:
        """Files copied into ``dft/common/`` (checked to exist)."""
        out = []
        for name in self.files:
            p = self.path(name)
            if not p.is_file():
                raise DftSettingsError(f"files: {p} not found (relative paths are read from "
                                       f"the settings file's folder, {self.base})")
            out.append(p.resolve())
        return out

    def provenance(self) -> dict[str, Any]:
        """The settings as given, with the sha256 of every file they name."""
        files = {str(p): _sha256(p) for p in self.common_files()}
        files.update({str(self.pseudo_file(n)): _sha256(self.pseudo_file(n))
                      for n in self.pseudopotentials.values()
                      if self.pseudo_file(n).is_file()})
        return {"settings": self.model_dump(mode="json"), "files": files}


def espresso_defaults(n_atoms: int, ecutwfc: float) -> dict[str, dict[str, Any]]:
    """pw.x namelists for finite differences (the settings file overrides any of them).

    ``tprnfor``/``tstress``: forces and stress printed (the reference job's stress is the
    equilibrium check). ``conv_thr`` 1e-10 Ry per atom: finite differences of ~0.01 A
    divide the force noise by the step. ``nosym``: no symmetry reduction of k-points
    or symmetrisation of forces, which would differ between displaced supercells.
    ``ecutrho`` 8 x ``ecutwfc`` (pw.x's default is 4 x): the exchange-correlation energy
    on the density's FFT grid depends on where the atoms sit on it (the egg-box effect);
    for Si PBE at 25 Ry a rigid translation moved the forces by 8.6e-5 eV/A at 4 x and
    6.7e-6 at 8 x, and the fourth to sixth derivatives divide that noise by h^3..h^5.
    ``disk_io = 'none'``: the wavefunctions of hundreds of jobs are not kept.
    """
    return {
        "control": {"calculation": "scf", "tprnfor": True, "tstress": True,
                    "disk_io": "none", "outdir": "./tmp"},
        "system": {"nosym": True, "ecutrho": 8 * ecutwfc},
        "electrons": {"conv_thr": 1e-10 * max(n_atoms, 1)},
    }


def load_dft_settings(path: str | Path) -> DftSettings:
    """Read a settings YAML file (:class:`DftSettings`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DftSettingsError(f"DFT settings file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DftSettingsError(f"{path} is not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise DftSettingsError(f"{path}: expected a mapping of settings, got "
                               f"{type(raw).__name__}")
    try:
        settings = DftSettings(**raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise DftSettingsError(f"{path}: {problems}") from None
    settings._base = path.resolve().parent
    return settings


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
