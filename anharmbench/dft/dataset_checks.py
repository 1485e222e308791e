"""Checks of a loaded phonopy/phono3py dataset before anything is solved from it.

phono3py reads a type-1 ``FORCES_FC3``/``FORCES_FC2`` as bare force blocks in the order
of the dataset's displacements and ignores its comment lines, so the forces of another
dataset (another amplitude, another displacement set of the same size) load without a
word and scale every force constant (0.03 A forces on a 0.01 A dataset: fc2 3x, fc3 9x).
Those comment lines record each block's displacements (``# File: 1`` then ``# 1  0.03 0
0``): :func:`check_forces_file` compares them with the dataset's. :func:`check_values`
refuses non-finite forces and energies (one NaN spreads over every derivative) and
forces that cannot be eV/A (:mod:`anharmbench.derivatives.units`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anharmbench.derivatives.units import check_energy_force_units, check_force_scale

__all__ = ["DatasetCheckError", "check_forces_file", "check_values", "forces_file_blocks"]

#: Largest difference (A) between a comment's displacement and the dataset's (phono3py
#: writes both with 16 decimals; other writers with at least 6).
DISPLACEMENT_ATOL = 1e-5

_FILE = re.compile(r"^#\s*File:\s*(\d+)")
_DISP = re.compile(r"^#\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


class DatasetCheckError(ValueError):
    """A dataset's forces do not belong to it, or are not usable numbers."""


@dataclass(frozen=True)
class _Block:
    """One supercell of a type-1 dataset: its displaced atoms (0-based) and vectors."""

    number: int  # 1-based, as '# File: N' and the block order
    atoms: tuple[int, ...]
    vectors: np.ndarray  # (k, 3) A
    ident: int | None = None  # the dataset's displacement id


def _open_text(path: Path) -> Any:
    from phonopy.file_IO import get_io_module_to_decompress

    return get_io_module_to_decompress(str(path)).open(path, "rt")


def forces_file_blocks(path: str | Path) -> list[_Block] | None:
    """The displacements recorded in a type-1 forces file's comment lines, in order.

    ``None`` when the file has no ``# File:`` comments (a type-2 file, whose rows carry
    their displacements themselves, or comments stripped): then nothing can be compared.
    """
    blocks: list[_Block] = []
    atoms: list[int] = []
    vecs: list[list[float]] = []
    number = 0

    def close() -> None:
        if number:
            blocks.append(_Block(number, tuple(atoms), np.array(vecs, dtype=float)))

    with _open_text(Path(path)) as fh:
        for line in fh:
            if not line.startswith("#"):
                continue
            m = _FILE.match(line)
            if m:
                close()
                number, atoms, vecs = int(m.group(1)), [], []
                continue
            m = _DISP.match(line)
            if m and number:
                try:
                    vecs.append([float(m.group(k)) for k in (2, 3, 4)])
                except ValueError:
                    continue
                atoms.append(int(m.group(1)) - 1)
    close()
    return blocks or None


def _dataset_blocks(dataset: dict[str, Any]) -> list[_Block]:
    """The blocks a type-1 dataset expects, in phono3py's file order (every single
    displacement, then every pair)."""
    firsts = dataset["first_atoms"]
    out = [_Block(k + 1, (int(d["number"]),), np.array([d["displacement"]], dtype=float),
                  d.get("id")) for k, d in enumerate(firsts)]
    for d1 in firsts:
        for d2 in d1.get("second_atoms", []):
            out.append(_Block(len(out) + 1, (int(d1["number"]), int(d2["number"])),
                              np.array([d1["displacement"], d2["displacement"]], dtype=float),
                              d2.get("id")))
    return out


def _amplitudes(blocks: list[_Block]) -> str:
    norms = sorted({round(float(v), 6) for b in blocks for v in np.linalg.norm(b.vectors, axis=1)})
    return " and ".join(f"{a:g}" for a in norms[:3]) + (" ..." if len(norms) > 3 else "")


def check_forces_file(forces: Path, dataset_path: Path, dataset: dict[str, Any] | None,
                      what: str, length_to_A: float = 1.0) -> None:
    """Refuse a type-1 forces file written for other displacements than the dataset's.

    Parameters
    ----------
    forces
        ``FORCES_FC3`` or ``FORCES_FC2`` (possibly compressed).
    dataset_path
        The dataset file (for the message).
    dataset
        The loaded displacement dataset (``first_atoms`` layout); other layouts are
        skipped (type-2 forces files carry their own displacements).
    what
        ``"fc3"`` or ``"fc2"``.
    length_to_A
        The calculator's length unit in Angstrom: the comments are in the code's unit
        (Bohr for Quantum ESPRESSO), the loaded dataset in Angstrom.

    Raises
    ------
    DatasetCheckError
        Another number of supercells, or a supercell whose displaced atoms or vectors
        differ; the message names both files and both amplitudes.
    """
    if not dataset or "first_atoms" not in dataset:
        return
    recorded = forces_file_blocks(forces)
    if recorded is None:
        return
    recorded = [dataclasses.replace(b, vectors=b.vectors * length_to_A) for b in recorded]
    expected = _dataset_blocks(dataset)
    if what == "fc2":  # FORCES_FC2 holds the single displacements only
        expected = [b for b in expected if len(b.atoms) == 1]
    amp_file, amp_data = _amplitudes(recorded), _amplitudes(expected)
    fix = (f"give the {forces.name} made for this dataset, or the dataset it was made with "
           "(phono3py reads the forces in block order and ignores these comments)")
    if len(recorded) != len(expected):
        raise DatasetCheckError(
            f"{forces} holds {len(recorded)} displaced supercells (its '# File:' comments, "
            f"displacements of {amp_file} A), but {dataset_path} has {len(expected)} for "
            f"{what} (displacements of {amp_data} A): the forces belong to another "
            f"dataset; {fix}")
    for got, want in zip(recorded, expected, strict=True):
        same = got.atoms == want.atoms and got.vectors.shape == want.vectors.shape and \
            bool(np.abs(got.vectors - want.vectors).max() <= DISPLACEMENT_ATOL)
        if same:
            continue
        ratio = ""
        if got.atoms == want.atoms and got.vectors.shape == want.vectors.shape:
            r = np.linalg.norm(got.vectors, axis=1) / np.linalg.norm(want.vectors, axis=1)
            if np.allclose(r, r[0], rtol=1e-3) and abs(r[0] - 1) > 1e-3:
                ratio = (f"; read as this dataset's, fc2 would come out {r[0]:.3g} times its "
                         "value" + (f" and fc3 {r[0] ** 2:.3g} times" if what == "fc3" else ""))
        raise DatasetCheckError(
            f"{forces} was written for displacements of {amp_file} A (its '# File:' comment "
            f"lines), but {dataset_path} displaces atoms by {amp_data} A: supercell "
            f"{got.number} of the file moves atom(s) {[a + 1 for a in got.atoms]} by "
            f"{np.round(got.vectors, 6).tolist()}, the dataset's"
            f"{f' (id {want.ident})' if want.ident is not None else ''} atom(s) "
            f"{[a + 1 for a in want.atoms]} by {np.round(want.vectors, 6).tolist()}{ratio}. "
            f"The forces belong to another dataset; {fix}")


def _first_bad(arr: np.ndarray) -> int | None:
    bad = ~np.isfinite(np.asarray(arr, dtype=float).reshape(len(arr), -1)).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def check_values(name: str, displacements: np.ndarray, forces: np.ndarray | None,
                 energies: np.ndarray | None, masses: np.ndarray, symbols: list[str],
                 where: str) -> None:
    """Refuse non-finite forces or energies and forces that cannot be eV/A.

    Parameters
    ----------
    name
        ``"fc3"`` or ``"fc2"`` (the displacement set).
    displacements, forces
        ``(n, N, 3)`` A and eV/A, in the dataset's supercell order (``forces`` may be
        ``None``: nothing to check yet).
    energies
        ``(n,)`` eV or ``None``.
    masses, symbols
        Of the supercell's atoms.
    where
        The file the forces were read from, for the message.

    Raises
    ------
    DatasetCheckError
        A non-finite value (the message names the file and the supercell, 1-based as
        phono3py's ``disp-NNNNN``).
    ForceUnitError
        Forces of the wrong sign or unit (:mod:`anharmbench.derivatives.units`).
    """
    if forces is None:
        return
    forces = np.asarray(forces, dtype=float)
    i = _first_bad(forces)
    if i is not None:
        atom = int(np.flatnonzero(~np.isfinite(forces[i]).all(axis=1))[0])
        n_bad = int((~np.isfinite(forces.reshape(len(forces), -1)).all(axis=1)).sum())
        raise DatasetCheckError(
            f"{where}: the {name} forces of supercell {i + 1} (disp-{i + 1:05d}; atom "
            f"{atom + 1} first) are not finite ({n_bad} supercell(s) in all); one NaN would "
            "spread over every derivative. Rerun that calculation and write its forces again")
    if energies is not None:
        j = _first_bad(np.asarray(energies, dtype=float)[:, None])
        if j is not None:
            raise DatasetCheckError(
                f"{where}: the {name} energy of supercell {j + 1} (disp-{j + 1:05d}) is not "
                "finite; rerun that calculation, or leave the energies out of the dataset")
    check_force_scale(displacements, forces, masses, symbols, f"{where} ({name} forces)")
    check_energy_force_units(displacements, forces, energies, f"{where} ({name} forces)")
