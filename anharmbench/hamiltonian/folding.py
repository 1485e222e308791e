"""Folding a real-space expansion back onto an FTG: the check that it is exact.

An ``S``-periodic displacement of the MD cell ``T`` sees the expansion as a model of the
FTG cell ``S`` (:func:`fold_terms`); its derivatives (:func:`fold_to_supercell`) are, for an
exact expansion (:mod:`anharmbench.hamiltonian.expansion`), the FTG derivatives it was built
from, which :func:`folding_deviation` measures per order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from anharmbench.hamiltonian.expansion import MAX_DENSE, OrderDerivatives
from anharmbench.hamiltonian.sites import ExpansionError, SupercellSites, check_commensurate
from anharmbench.potentials.monomials import merge_monomials, multiplicity_factorials
from anharmbench.potentials.taylor_cartesian import OrderTerms, TaylorTerms
from anharmbench.structures import supercell_matrix

__all__ = ["fold_terms", "fold_to_supercell", "folding_deviation"]


def fold_terms(
    terms: TaylorTerms, prim: Atoms, ftg: str | np.ndarray | Sequence[Sequence[int]]
) -> TaylorTerms:
    """The expansion restricted to ``S``-periodic displacements, as a model of the FTG cell.

    ``E_fold(u_S) = (N_S / N_T) E_T(u_T)`` with ``u_T[J] = u_S[fold J]``: every monomial's
    atoms are folded onto ``S`` and equal monomials are merged. Its derivatives are the
    folded tensors ``Phi_fold(i_1..i_n) = (N_S/N_T) sum_{J -> (i_1..i_n)} Phi_T(J)``; for an
    exact expansion they are the FTG derivatives the expansion was built from.

    Parameters
    ----------
    terms
        An expansion about ``build_supercell(prim, T)`` (same atom order).
    prim
        The primitive cell.
    ftg
        The FTG ``S`` (``T`` must be a supercell of it).

    Returns
    -------
    TaylorTerms
        Canonical model about ``build_supercell(prim, S)``.
    """
    S = supercell_matrix(ftg)
    tmat = terms.cell @ np.linalg.inv(np.asarray(prim.cell.array, dtype=float))
    if not np.allclose(tmat, np.rint(tmat), atol=1e-6):
        raise ExpansionError("the expansion's cell is not a supercell of the primitive cell")
    T = np.rint(tmat).astype(np.int64)
    check_commensurate(T, S)
    tsites = SupercellSites.build(prim, T, terms.atoms())
    ssites = SupercellSites.build(prim, S)
    fold_atom = ssites.index(tsites.kappa, tsites.cells)  # T atom -> S atom
    # Each translation of T folds onto a translation of S; the image H of T's group is a
    # subgroup of S's, hit |G|/|H| times, so sum_g fold(g m) = |G|/|H| sum_h h(fold m).
    table = np.asarray(terms.translations)
    first = np.unique(fold_atom, return_index=True)[1]  # one T atom per S atom
    images, counts = np.unique(fold_atom[table[:, first]], axis=0, return_counts=True)
    weight = float(counts[0]) / (terms.natoms / ssites.natoms)
    fold = 3 * fold_atom
    orders: dict[int, OrderTerms] = {}
    for n in terms.orders:
        idx = terms.orders[n].indices
        merged, coef = merge_monomials(
            fold[idx[..., 0]] + idx[..., 1],
            terms.orders[n].coefficients * weight,
            3 * ssites.natoms,
        )
        orders[n] = OrderTerms.from_flat(merged, coef)
    folded = TaylorTerms.from_atoms(
        ssites.atoms, orders, translations=images if len(images) > 1 else None
    )
    return folded.canonical()


def fold_to_supercell(
    terms: TaylorTerms, prim: Atoms, ftg: str | np.ndarray | Sequence[Sequence[int]], order: int
) -> np.ndarray:
    """Dense folded derivative tensor of one order on the FTG ``S`` (see :func:`fold_terms`).

    Returns
    -------
    numpy.ndarray
        Symmetric ``(3 N_S,) * n`` float64 tensor, eV/Angstrom^n, atom order of
        ``build_supercell(prim, S)``.
    """
    n = int(order)
    folded = fold_terms(
        terms.with_orders({k: v for k, v in terms.orders.items() if k == n}), prim, ftg
    ).expanded((n,))
    n3 = 3 * folded.natoms
    if float(n3) ** n > MAX_DENSE:
        raise ExpansionError(f"dense folded tensor too large: {n3}^{n}")
    phi = np.zeros((n3,) * n)
    if n not in folded.orders:
        return phi
    flat = folded.flat_indices(n)
    vals = folded.orders[n].coefficients * multiplicity_factorials(flat)
    for p in itertools.permutations(range(n)):
        phi[tuple(flat[:, list(p)].T)] = vals
    return phi


def folding_deviation(
    terms: TaylorTerms, prim: Atoms, derivatives: Mapping[int, OrderDerivatives]
) -> dict[int, float]:
    """Largest ``|d_fold - d|`` over ``max |d|`` per order (0 for an exact expansion).

    The ``T`` expansion is folded onto each order's FTG (:func:`fold_to_supercell`) and
    projected on its irreducible basis.

    Returns
    -------
    dict[int, float]
        Relative deviation of the irreducible derivatives, per order.
    """
    out: dict[int, float] = {}
    for n, (basis, values) in sorted(derivatives.items()):
        vals = np.asarray(values, dtype=float)
        back = basis.from_cartesian(fold_to_supercell(terms, prim, basis.sym.S, n))
        scale = max(float(np.abs(vals).max()), 1e-300)
        out[int(n)] = float(np.abs(back - vals).max() / scale)
    return out
