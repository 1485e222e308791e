"""Refusing derivative sets that cannot be joined: other sources, crystals or FTGs.

Where derivatives of several files meet -- the orders of one potential read from several
``derivatives.h5`` (:meth:`DerivativeSet.from_files`), the potentials overlaid by
``observables --compare``, fc2 beside fc3 and fc4 in the observables -- these checks
refuse a join that cannot be right, naming both sides:

* :func:`check_same_source` -- the orders of one potential come from one source (the
  ``potential_hash`` every producer records: a potential's content hash, a DFT plan's
  outputs, an imported dataset's files);
* :func:`check_same_crystal` -- potentials compared on one figure share their crystal;
* :func:`check_ftg_coverage` -- fc2 samples the phonons at least as finely as the
  higher orders are measured (see its doc).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce

from anharmbench.derivatives.derivative_set import DerivativeSet, DerivativeSetError, _same_crystal

__all__ = ["check_ftg_coverage", "check_same_crystal", "check_same_source", "crystal_text"]


def _where(part: DerivativeSet) -> str:
    files = sorted(set(part.sources.values()))
    return ", ".join(files) if files else repr(part.name)


def _potential(part: DerivativeSet) -> str:
    pot = part.attrs.get("potential")
    name = pot.get("name") if isinstance(pot, dict) else None
    digest = str(part.attrs.get("potential_hash", ""))
    return f"{name or part.name!r}" + (f" (sha256 {digest[:12]})" if digest else "")


def check_same_source(parts: Sequence[DerivativeSet]) -> None:
    """Refuse parts of one potential whose files record different sources.

    Raises
    ------
    DerivativeSetError
        Two parts with different ``potential_hash``; the message names both files and
        both potentials.
    """
    first = next((p for p in parts if p.attrs.get("potential_hash")), None)
    if first is None:
        return
    for part in parts:
        digest = part.attrs.get("potential_hash")
        if digest and digest != first.attrs["potential_hash"]:
            raise DerivativeSetError(
                f"{_where(part)} was measured by {_potential(part)}, but {_where(first)} by "
                f"{_potential(first)}: the orders of one potential are never joined from "
                "two sources. Give the files of one potential together (compare another one "
                "with --compare NAME=FILE)")


def crystal_text(atoms: Atoms) -> str:
    """``'Si2, a b c = 3.87 3.87 3.87 A'``: enough to tell two crystals apart."""
    lengths = " ".join(f"{x:.4g}" for x in atoms.cell.lengths())
    return f"{atoms.get_chemical_formula()}, cell lengths {lengths} A"


def check_same_crystal(parts: Sequence[DerivativeSet], what: str = "compared") -> None:
    """Refuse potentials of different crystals (species, cell, positions) side by side.

    Raises
    ------
    DerivativeSetError
        A part on another primitive cell than the first; both files and crystals named.
    """
    first = parts[0]
    for part in parts[1:]:
        if not _same_crystal(first.primitive, part.primitive):
            raise DerivativeSetError(
                f"{_where(part)} ({part.name!r}: {crystal_text(part.primitive)}) was measured "
                f"on another crystal than {_where(first)} ({first.name!r}: "
                f"{crystal_text(first.primitive)}); potentials are {what} on one crystal only")


def _reach(prim: Atoms, S: np.ndarray) -> float:
    """Distance (A) from an atom to its nearest periodic image in the supercell ``S``:
    how far the supercell's force constants reach (twice the radius of the sphere its
    Wigner-Seitz cell holds)."""
    reduced = minkowski_reduce(np.asarray(S, float) @ prim.cell.array)[0]
    return float(np.linalg.norm(reduced, axis=1).min())


def check_ftg_coverage(dset: DerivativeSet) -> None:
    """Refuse fc2 measured in a smaller supercell than a higher order it is used with.

    The observables interpolate fc2 to every q-point and evaluate the anharmonic
    vertices there. fc2 from an FTG that contains the higher order's q-points, or from a
    supercell whose periodic images are at least as far apart (phono3py's usual fc2
    supercell, e.g. AlN's 5x5x3 beside fc3's 3x3x2), is sound; fc2 from a smaller
    supercell that misses those q-points (prim beside 2I, or 6x6x1 beside 3x3x2: more
    cells, one layer) interpolates the harmonic phonons from fewer points than the
    anharmonic terms were measured on, and the linewidths and kappa (5.6e42 W/m-K for ThO2
    fc2 in prim, fc3 in S_C) are meaningless.

    Raises
    ------
    DerivativeSetError
        The message names both orders' files and supercells and a missing q-point.
    """
    if 2 not in dset.orders:
        return
    S2 = np.asarray(dset.supercell_matrices[2], dtype=float)
    prim = dset.primitive
    for n in dset.orders:
        if n < 3:
            continue
        Sn = np.asarray(dset.supercell_matrices[n], dtype=float)
        m = S2 @ np.linalg.inv(Sn)
        if np.allclose(m, np.rint(m), atol=1e-8):
            continue  # fc2's FTG holds every q-point of order n's
        d2, dn = _reach(prim, S2), _reach(prim, Sn)
        if d2 >= dn * (1 - 1e-6):
            continue  # reaches as far: a finer interpolation, as phono3py's fc2 supercells
        qs = np.linalg.inv(Sn) @ np.eye(3)  # a q-point of order n's FTG per column
        q = next(qs[:, k] for k in range(3)
                 if not np.allclose(S2 @ qs[:, k], np.rint(S2 @ qs[:, k]), atol=1e-8))
        raise DerivativeSetError(
            f"order 2 ({dset.sources.get(2, dset.name)}) was measured in the supercell "
            f"{np.rint(S2).astype(int).tolist()} ({abs(round(np.linalg.det(S2)))} cell(s), "
            f"images {d2:.3g} A apart), smaller than order {n}'s "
            f"{np.rint(Sn).astype(int).tolist()} ({dset.sources.get(n, dset.name)}; "
            f"{abs(round(np.linalg.det(Sn)))} cells, {dn:.3g} A), and misses its q-point "
            f"{np.round(q, 4).tolist()}: the harmonic phonons would be interpolated from "
            f"fewer q-points than order {n} was measured on, and linewidths and kappa would "
            f"be meaningless. Measure order 2 in order {n}'s supercell or a larger one "
            "(anharmbench plan --supercell ... --order 2)")
