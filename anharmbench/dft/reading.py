"""Reading phonopy/phono3py displacement datasets and the DFT outputs of their supercells.

phono3py's and phonopy's own loaders do the reading; this module only finds the files,
keeps the loaders away from stray files in the working directory, exposes each
displacement set (fc3, fc2) as arrays, and fills forces from raw DFT outputs matched by
position (:mod:`anharmbench.dft.outputs`).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import lzma
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["DatasetImportError", "DisplacementSet", "apply_forces", "displacement_sets",
           "fill_from_outputs", "load_dataset", "to_ase"]


class DatasetImportError(ValueError):
    """A dataset cannot be imported; the message names the file and the fix."""


def _sniff(path: Path) -> str:
    """``"phono3py"`` or ``"phonopy"`` from the head of a (compressed) YAML file."""
    opener: Any = open
    if path.suffix in (".xz", ".lzma"):
        opener = lzma.open
    elif path.suffix == ".gz":
        opener = gzip.open
    try:
        with opener(path, "rt", errors="replace") as fh:
            head = fh.read(20000)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DatasetImportError(f"{path}: cannot read it ({exc})") from None
    if re.search(r"^phono3py:", head, re.M):
        return "phono3py"
    if re.search(r"^phonopy:", head, re.M):
        return "phonopy"
    raise DatasetImportError(
        f"{path} is not a phonopy/phono3py YAML file (no 'phono3py:' or 'phonopy:' section); "
        "give phono3py_disp.yaml, phono3py_params.yaml[.xz], phonopy_disp.yaml or "
        "phonopy_params.yaml")


def _beside(dataset: Path, given: str | Path | None, name: str, what: str) -> Path | None:
    """The file given (a relative path: from the current folder), else ``name`` beside the
    dataset, compressed or not, as phono3py-load finds it in the dataset's folder."""
    from phonopy.file_IO import get_supported_file_extensions_for_compression

    if given is not None:
        p = Path(given)
        if not p.is_file():
            raise DatasetImportError(f"{what} file {p} not found (relative paths are read "
                                     f"from the current folder, {Path.cwd()})")
        return p.resolve()
    for ext in get_supported_file_extensions_for_compression():
        p = dataset.parent / f"{name}{ext}"
        if p.is_file():
            return p.resolve()
    return None


def _read(kind: str, path: Path, f1: Path | None = None, f2: Path | None = None,
          born: Path | None = None) -> Any:
    """phono3py.load / phonopy.load in an empty folder (they read stray files of the
    current one: fc3.hdf5, FORCES_FC3, BORN)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        try:
            if kind == "phono3py":
                import phono3py

                return phono3py.load(str(path), produce_fc=False, log_level=0,
                                     forces_fc3_filename=None if f1 is None else str(f1),
                                     forces_fc2_filename=None if f2 is None else str(f2),
                                     born_filename=None if born is None else str(born))
            import phonopy

            return phonopy.load(str(path), produce_fc=False, log_level=0,
                                force_sets_filename=None if f1 is None else str(f1),
                                born_filename=None if born is None else str(born))
        except DatasetImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loaders raise anything; say which file
            read = ", ".join(str(p) for p in (f1, f2, born) if p is not None)
            raise DatasetImportError(
                f"{kind} could not read {path}" + (f" with {read}" if read else "")
                + f": {type(exc).__name__}: {exc}") from None


def load_dataset(
    dataset: str | Path,
    *,
    forces: str | Path | None = None,
    forces_fc2: str | Path | None = None,
    born: str | Path | None = None,
) -> tuple[str, Any, list[Path]]:
    """Read a displacement dataset with phono3py's or phonopy's own loader.

    Files are found as ``phono3py-load`` run in the dataset's folder finds them:
    ``FORCES_FC3``/``FORCES_FC2`` (phono3py) or ``FORCE_SETS`` (phonopy) beside the
    dataset, also compressed (``.xz``, ``.lzma``, ``.gz``, ``.bz2``), when no forces file
    is given; the NAC parameters of the dataset itself, else ``BORN`` beside it, unless
    ``born`` is given. A file that would not be read is refused when given and left out
    when found: forces for a dataset that holds its own, ``FORCES_FC2`` for a dataset
    without a separate fc2 supercell. Loading happens in an empty temporary directory
    because the loaders also pick up ``fc3.hdf5``, ``FORCES_FC3`` and ``BORN`` from the
    current directory, which must never leak into an import.

    Returns
    -------
    (kind, obj, sources)
        ``"phono3py"`` and a :class:`phono3py.Phono3py`, or ``"phonopy"`` and a
        :class:`phonopy.Phonopy` (no force constants yet), and exactly the files read.
    """
    path = Path(dataset)
    if not path.is_file():
        raise DatasetImportError(f"dataset {path} not found")
    path = path.resolve()
    kind = _sniff(path)
    # given files are found (a relative path: from the current folder) before the loaders
    # move into their empty folder
    forces_name = "FORCES_FC3" if kind == "phono3py" else "FORCE_SETS"
    given = {"--forces": _beside(path, forces, forces_name, "forces") if forces else None,
             "--forces-fc2": _beside(path, forces_fc2, "FORCES_FC2", "fc2 forces")
             if forces_fc2 else None,
             "--born": _beside(path, born, "BORN", "Born charges") if born else None}
    if kind == "phonopy" and given["--forces-fc2"] is not None:
        raise DatasetImportError(f"{path} is a phonopy dataset (one supercell): "
                                 "--forces-fc2 is for phono3py datasets; give --forces")
    # what the dataset holds itself decides which files beside it are read
    held = _read(kind, path)
    has_fc2_cell = kind == "phono3py" and held.phonon_supercell_matrix is not None
    f1: Path | None = None
    f2: Path | None = None
    if _forces_present(held.dataset):
        if given["--forces"] is not None:
            raise DatasetImportError(
                f"{path} holds its own forces, so --forces {forces} would not be read "
                "(phono3py/phonopy take the dataset's); drop --forces, or give the "
                "displacement file without forces (phono3py_disp.yaml)")
    else:
        f1 = given["--forces"] or _beside(path, None, forces_name, "forces")
    if kind == "phono3py":
        if not has_fc2_cell:
            if given["--forces-fc2"] is not None:
                raise DatasetImportError(
                    f"{path} has no separate fc2 supercell (phonon_supercell_matrix), so "
                    f"--forces-fc2 {forces_fc2} would not be read; fc2 comes from the fc3 "
                    "set. Give the dataset made with --dim-fc2 (e.g. "
                    "phono3py_disp_dimfc2.yaml), or drop --forces-fc2")
        elif _forces_present(held.phonon_dataset):
            if given["--forces-fc2"] is not None:
                raise DatasetImportError(
                    f"{path} holds its own fc2 forces, so --forces-fc2 {forces_fc2} would "
                    "not be read; drop --forces-fc2")
        else:
            f2 = given["--forces-fc2"] or _beside(path, None, "FORCES_FC2", "fc2 forces")
    # NAC: as phono3py-load, the dataset's own parameters before a BORN beside it
    nac_born = given["--born"]
    if nac_born is None and getattr(held, "nac_params", None) is None:
        nac_born = _beside(path, None, "BORN", "Born charges")
    if nac_born is None and f1 is None and f2 is None:
        obj = held
    else:
        obj = _read(kind, path, f1, f2, nac_born)
    sources = [path] + [p for p in (f1, f2, nac_born) if p is not None]
    _check_loaded(kind, obj, path, f1, f2)
    return kind, obj, sources


def _check_loaded(kind: str, obj: Any, path: Path, forces_file: Path | None,
                  fc2_file: Path | None) -> None:
    """Refuse forces files of other displacements, non-finite values and forces that
    cannot be eV/A (:mod:`anharmbench.dft.dataset_checks`), naming the file read.

    ``forces_file`` and ``fc2_file`` are the files the loader read (``None``: the forces
    came from the dataset itself).
    """
    from phonopy.interface.calculator import get_calculator_physical_units

    from anharmbench.dft.dataset_checks import DatasetCheckError, check_forces_file, check_values
    from anharmbench.errors import InputError

    used = {"fc3" if kind == "phono3py" else "fc2": forces_file,
            "fc2" if kind == "phono3py" else "": fc2_file}
    # the files' comments are in the code's length unit; the loaded dataset in Angstrom
    length_to_A = get_calculator_physical_units(
        getattr(obj, "calculator", None)).distance_to_A
    try:
        if kind == "phono3py" and used["fc3"] is not None:
            check_forces_file(used["fc3"], path, obj.dataset, "fc3", length_to_A)
        if kind == "phono3py" and used["fc2"] is not None:
            check_forces_file(used["fc2"], path, obj.phonon_dataset, "fc2", length_to_A)
        for s in displacement_sets(kind, obj):
            check_values(s.name, s.displacements, s.forces, s.energies,
                         s.supercell.get_masses(), s.supercell.get_chemical_symbols(),
                         str(used.get(s.name) or path))
    except (DatasetCheckError, InputError) as exc:
        raise DatasetImportError(str(exc)) from None


def _forces_present(dataset: Any) -> bool:
    from phonopy.structure.dataset import forces_in_dataset

    return dataset is not None and bool(forces_in_dataset(dataset))


def _fc3_arrays(ph3: Any) -> tuple[np.ndarray, np.ndarray | None]:
    from phono3py.phonon3.dataset import get_displacements_and_forces_fc3

    return get_displacements_and_forces_fc3(ph3.dataset)


def _fc2_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    from phonopy.structure.dataset import get_displacements_and_forces

    d, f = get_displacements_and_forces(dataset)
    return np.asarray(d), (None if f is None else np.asarray(f))


def to_ase(cell: Any) -> Atoms:
    return Atoms(cell.symbols, cell=np.asarray(cell.cell), scaled_positions=cell.scaled_positions,
                 masses=cell.masses, pbc=True)


@dataclass
class DisplacementSet:
    """One displacement set (fc3 or fc2) in phonopy's atom order."""

    name: str
    supercell: Atoms
    displacements: np.ndarray
    forces: np.ndarray | None
    energies: np.ndarray | None = None


def displacement_sets(kind: str, obj: Any) -> list[DisplacementSet]:
    if kind == "phono3py":
        d3, f3 = _fc3_arrays(obj)
        try:
            energies = obj.supercell_energies
        except (KeyError, RuntimeError):  # phono3py raises these when some are absent
            energies = None
        out = [DisplacementSet("fc3", to_ase(obj.supercell), d3, f3,
                        None if energies is None else np.asarray(energies))]
        if obj.phonon_supercell_matrix is not None and obj.phonon_dataset is not None:
            d2, f2 = _fc2_arrays(obj.phonon_dataset)
            out.append(DisplacementSet("fc2", to_ase(obj.phonon_supercell), d2, f2))
        return out
    d, f = _fc2_arrays(obj.dataset)
    return [DisplacementSet("fc2", to_ase(obj.supercell), d, f)]


def fill_from_outputs(sets: list[DisplacementSet], pattern: str, fmt: str | None,
                       base: Path) -> list[Path]:
    """Read DFT outputs, match them to the sets' supercells by positions, set forces."""
    from anharmbench.dft.outputs import OutputError, match_outputs, read_output

    pat = pattern if os.path.isabs(pattern) else str(base / pattern)
    paths = sorted(Path(p) for p in glob.glob(pat))
    if not paths:
        paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise DatasetImportError(f"no DFT output matches {pattern!r} (looked in {base} and "
                                 "the current directory)")
    frames = [read_output(p, fmt) for p in paths]
    for s in sets:
        mine = [fr for fr in frames if len(fr.numbers) == len(s.supercell)]
        if not mine:
            continue
        positions = s.supercell.positions[None] + s.displacements
        try:
            m = match_outputs(mine, s.supercell, positions)
        except OutputError as exc:
            raise DatasetImportError(str(exc)) from None
        missing = sorted(set(range(len(positions))) - set(int(i) for i in m.indices))
        if missing:
            raise DatasetImportError(
                f"{len(m.indices)} outputs match the {len(positions)} displaced {s.name} "
                f"supercells of the dataset; missing configurations {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''} (1-based disp-{missing[0] + 1:05d}): "
                "run them, or point --outputs at all of them")
        forces = np.empty_like(positions)
        forces[m.indices] = m.forces
        s.forces = forces
        if np.isfinite(m.energies).all():
            energies = np.empty(len(positions))
            energies[m.indices] = m.energies
            s.energies = energies
    used = {fr.path for s in sets for fr in frames if len(fr.numbers) == len(s.supercell)}
    stray = [fr.path for fr in frames if fr.path not in used]
    if stray:
        raise DatasetImportError(
            f"{stray[0]} has {len(read_output(stray[0], fmt).numbers)} atoms, which is the size "
            "of no supercell of the dataset: it is the output of another calculation")
    return paths


def apply_forces(kind: str, obj: Any, sets: list[DisplacementSet]) -> None:
    """Put the forces of ``sets`` into the phonopy/phono3py object."""
    for s in sets:
        if s.forces is None:
            continue
        if kind == "phono3py" and s.name == "fc3":
            obj.forces = s.forces
            if s.energies is not None:
                obj.supercell_energies = s.energies
        elif kind == "phono3py":
            obj.phonon_forces = s.forces
        else:
            obj.forces = s.forces
