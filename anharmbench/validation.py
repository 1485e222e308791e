"""Checks at the door: structures and numbers are refused before any work is spent.

spglib, LAMMPS and the planners assume a finite, fully periodic cell of known elements
with no two atoms on top of each other; a NaN coordinate crashes spglib (segfault), and
overlapping atoms give a plan of nonsense. These checks say what is wrong and how to fix
it instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from anharmbench.errors import StructureError

#: Two atoms closer than this (Angstrom) are taken as a mistake in the structure file.
MIN_DISTANCE = 0.5


def check_structure(atoms: Atoms, source: str = "the structure") -> Atoms:
    """Refuse a structure that cannot be a crystal for derivative work.

    Parameters
    ----------
    atoms
        The structure.
    source
        How to name it in messages (e.g. the file it came from).

    Returns
    -------
    Atoms
        ``atoms`` itself, for chaining.

    Raises
    ------
    StructureError
        Empty, non-finite positions or cell, unknown elements, partial periodicity, a
        singular cell or atoms closer than :data:`MIN_DISTANCE`.
    """
    if len(atoms) == 0:
        raise StructureError(f"{source} has no atoms")
    numbers = np.asarray(atoms.numbers)
    unknown = sorted({int(z) for z in numbers if not 0 < z < len(chemical_symbols)})
    if unknown:
        raise StructureError(
            f"{source} has atoms of unknown element (atomic numbers {unknown}); give real "
            "chemical symbols")
    cell = np.asarray(atoms.cell.array, dtype=float)
    pos = np.asarray(atoms.positions, dtype=float)
    if not np.isfinite(cell).all():
        raise StructureError(f"{source} has a non-finite (NaN or inf) cell; fix the lattice")
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if bad.size:
        raise StructureError(
            f"{source} has non-finite (NaN or inf) coordinates on atom(s) "
            f"{bad[:5].tolist()}; fix the positions")
    if not all(atoms.pbc):
        raise StructureError(
            f"{source} is periodic only along {np.flatnonzero(atoms.pbc).tolist()} "
            f"(pbc={atoms.pbc.tolist()}); phonons need a crystal periodic in all three "
            "directions (set pbc=True, or give a bulk cell)")
    volume = abs(float(np.linalg.det(cell)))
    if volume < 1e-6 * max(float(np.abs(cell).max()), 1.0) ** 3:
        raise StructureError(f"{source} has a singular cell (volume {volume:.3g} A^3)")
    i, j, d = _closest_pair(atoms)
    if d < MIN_DISTANCE:
        raise StructureError(
            f"{source}: atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are "
            f"{d:.3f} A apart (less than {MIN_DISTANCE} A): overlapping atoms; remove the "
            "duplicate or fix the coordinates (fractional vs Cartesian?)")
    return atoms


def _closest_pair(atoms: Atoms) -> tuple[int, int, float]:
    """Closest pair of atoms (with periodic images, including an atom and its own image)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if d.size == 0:
        return 0, 0, np.inf
    k = int(np.argmin(d))
    return int(i[k]), int(j[k]), float(d[k])


def read_structure(path: str | Path, format: str | None = None) -> Atoms:  # noqa: A002
    """Read a structure file with ASE and check it (:func:`check_structure`).

    Raises
    ------
    StructureError
        The file does not exist, ASE cannot read it, or the structure is unusable.
    """
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"structure file {path} does not exist")
    try:
        atoms = read(path, format=format)
    except Exception as exc:  # ASE raises many types for unreadable files
        symbol = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
        if isinstance(symbol, str) and symbol not in chemical_symbols:
            # ASE's readers look each symbol up in a table: a bare KeyError('Xx')
            raise StructureError(
                f"cannot read structure file {path}: it names an unknown element "
                f"{symbol!r}; give real chemical symbols (e.g. 'O', 'Th')") from exc
        raise StructureError(
            f"cannot read structure file {path}: {type(exc).__name__}: {exc}; give a file ASE "
            "reads (POSCAR, .cif, extxyz, ...) or its format") from exc
    if isinstance(atoms, list):
        atoms = atoms[-1]
    return check_structure(atoms, f"structure file {path}")



def check_periodic_format(fmt: str, atoms: Atoms, write_kwargs: dict | None = None) -> None:
    """Refuse an ASE format whose file loses the periodic cell of ``atoms``.

    A DFT input without its lattice vectors (plain ``xyz``, say) is run as a molecule, so
    the plan's configurations would be measured as something else. ``atoms`` is written
    with ``ase.io`` into a temporary folder and read back; a format ASE cannot read back
    is accepted (nothing to compare).

    Raises
    ------
    StructureError
        The file read back has no cell, another cell, or not all three directions periodic.
    """
    import shutil
    import tempfile
    import warnings

    import ase.io
    from ase.io.formats import ioformats

    f = ioformats.get(fmt)
    if f is None or not f.can_write or not f.can_read:
        return
    tmp = Path(tempfile.mkdtemp(prefix="anharmbench-cell-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # readers' notes on codes that are not installed
            path = tmp / f"structure.{f.extensions[0] if f.extensions else 'txt'}"
            ase.io.write(path, atoms, format=fmt, **(write_kwargs or {}))
            back = ase.io.read(path, format=fmt)
    except Exception:  # a writer or reader with needs of its own: no verdict
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if isinstance(back, list):
        back = back[-1]
    fix = ("use a format with the full lattice vectors, e.g. extxyz (XYZ with Lattice= and "
           "pbc), vasp, espresso-in, aims")
    lengths = np.round(atoms.cell.lengths(), 6).tolist()
    if not back.pbc.all() or back.cell.rank < 3:
        raise StructureError(
            f"format {fmt!r} cannot hold a periodic cell: the file ASE writes reads back with "
            f"cell lengths {np.round(back.cell.lengths(), 6).tolist()} A and pbc "
            f"{back.pbc.tolist()} (the structure's: {lengths} A, periodic), so a DFT code "
            f"would run it as a molecule; {fix}")
    if not np.allclose(back.cell.cellpar(), atoms.cell.cellpar(), rtol=1e-6, atol=1e-5):
        raise StructureError(
            f"format {fmt!r} rounds the cell: the file ASE writes reads back with cell "
            f"lengths {np.round(back.cell.lengths(), 6).tolist()} A (the structure's: "
            f"{lengths} A), so the configurations would be computed in another cell; {fix}")
