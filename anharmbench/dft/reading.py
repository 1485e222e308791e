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


def _beside(dataset: Path, given: str | Path | None, name: str) -> Path | None:
    if given is not None:
        p = Path(given)
        if not p.is_file():
            raise DatasetImportError(f"forces file {p} not found")
        return p.resolve()
    p = dataset.parent / name
    return p.resolve() if p.is_file() else None


def load_dataset(
    dataset: str | Path,
    *,
    forces: str | Path | None = None,
    forces_fc2: str | Path | None = None,
) -> tuple[str, Any, list[Path]]:
    """Read a displacement dataset with phono3py's or phonopy's own loader.

    ``FORCES_FC3``/``FORCES_FC2`` (phono3py) or ``FORCE_SETS`` (phonopy) beside the
    dataset are read when no forces file is given. Loading happens in an empty
    temporary directory because the loaders also pick up ``fc3.hdf5``, ``FORCES_FC3``
    and friends from the current directory, which must never leak into an import.

    Returns
    -------
    (kind, obj, sources)
        ``"phono3py"`` and a :class:`phono3py.Phono3py`, or ``"phonopy"`` and a
        :class:`phonopy.Phonopy` (no force constants yet), and the files read.
    """
    path = Path(dataset)
    if not path.is_file():
        raise DatasetImportError(f"dataset {path} not found")
    path = path.resolve()
    kind = _sniff(path)
    sources = [path]
    # forces files are found (a relative path: from the current folder) before the loaders
    # move into their empty folder
    if kind == "phono3py":
        f3 = _beside(path, forces, "FORCES_FC3")
        f2 = _beside(path, forces_fc2, "FORCES_FC2")
    else:
        fs = _beside(path, forces, "FORCE_SETS")
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        try:
            if kind == "phono3py":
                import phono3py

                sources += [p for p in (f3, f2) if p is not None]
                obj = phono3py.load(str(path), produce_fc=False, log_level=0,
                                    forces_fc3_filename=None if f3 is None else str(f3),
                                    forces_fc2_filename=None if f2 is None else str(f2))
            else:
                import phonopy

                sources += [p for p in (fs,) if p is not None]
                obj = phonopy.load(str(path), produce_fc=False, log_level=0,
                                   force_sets_filename=None if fs is None else str(fs))
        except DatasetImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loaders raise anything; say which file
            raise DatasetImportError(
                f"{kind} could not read {path}"
                + (f" with forces {forces}" if forces else "")
                + f": {type(exc).__name__}: {exc}") from None
    return kind, obj, sources


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
