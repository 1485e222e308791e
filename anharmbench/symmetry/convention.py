"""Reported irreducible derivatives: our convention (after Fu et al. 2019), from our basis.

Our fit measures the coefficients ``d_k`` of an orthonormal (Frobenius) basis of invariant
symmetric tensors, ``D = sum_k d_k B_k`` in symmetrized-mode coordinates. What Table I
reports instead are *components* of ``D``, as in the group-theoretical finite-difference
papers the benchmark follows (Fu et al. 2019 and later, the refs. [1,3,4] of Bandi, Jiang,
Marianetti 2024, which defer their convention to them): derivatives of the energy with
respect to amplitudes of symmetrized displacements, ``d^n E / (du_{r_1} ... du_{r_n})``,
one mode tuple ``r`` per irreducible derivative. What we fix, and how (version
:data:`CONVENTION`):

* **Per primitive cell.** A symmetrized mode of unit norm over a supercell of ``N``
  primitive cells moves each cell by ``1/sqrt(N)`` of a unit amplitude, and the energy
  of the supercell is ``N`` times an intensive one, so the raw components scale as
  ``N^(1 - n/2)``. Every component is multiplied by ``N^(n/2 - 1)``: the value of a
  derivative does not depend on the supercell it was measured in (an all-Gamma
  derivative in the primitive cell, S_C and 2I is one number), which is what lets the
  paper combine derivatives of several supercells into one Hamiltonian.
* **The crystal's own frame.** The modes ``u_r`` are those of the crystal in its
  canonical setting (:mod:`anharmbench.symmetry.frame`: spglib's standard orientation,
  origin on the atom of highest site symmetry), mapped back onto the lab supercell: a
  rigidly rotated or translated input gives the same labels, tuples and values.
* **Which tuples.** Within each block multiset of the canonical basis, the mode tuples
  (sorted, in the modes' fixed order) are scanned lexicographically and a tuple is kept
  when it adds to the rank of the components already kept, until there are as many as
  tensors. The choice depends only on the span of the multiset's tensors, so the values do
  not change when the basis is rotated inside a multiplicity space.

No library computes this conversion (phonopy/symfc work with Cartesian force constants),
so it is written here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from anharmbench.symmetry.basis import IrreducibleBasis
from anharmbench.symmetry.frame import canonical_modes
from anharmbench.symmetry.invariants import matching_basis

__all__ = ["CONVENTION", "PaperConvention", "ReportedValues", "paper_convention",
           "paper_datasets", "per_cell_scale"]

#: Version of the reported convention, stored with the values (``paper_convention`` in
#: ``derivatives.h5``); values stored under another version are recomputed on reading.
CONVENTION = "anharmbench-2: per primitive cell, crystal frame (after Fu et al. 2019)"


@dataclass(frozen=True)
class ReportedValues:
    """One order's derivatives as reported (:data:`CONVENTION`).

    Attributes
    ----------
    values, uncertainties : numpy.ndarray
        ``(K,)`` float64, eV/A^n per primitive cell (one sigma).
    labels : tuple[str, ...]
        Canonical mode tuple of each value, e.g. ``"G:T2g[0] G:T2g[1] G:T2g[2]"``.
    scale : float
        ``N^(n/2 - 1)`` of the FTG (``N`` primitive cells): the factor that makes the
        basis coefficients intensive too (Frobenius figures pool ``scale * d``).
    """

    values: np.ndarray
    uncertainties: np.ndarray
    labels: tuple[str, ...]
    scale: float


@dataclass(frozen=True)
class PaperConvention:
    """The linear map from basis coefficients to the reported derivatives.

    Attributes
    ----------
    components : numpy.ndarray
        ``(K, n)`` int64, the canonical mode tuple ``r`` of each derivative (sorted).
    matrix : numpy.ndarray
        ``(K, K)`` float64, ``p = matrix @ d``.
    labels : list[str]
        ``"G:T2g[0] G:T2g[1] G:T2g[2]"``: canonical block label and component within it.
    vectors : numpy.ndarray
        ``(3N, M)`` float64: the canonical modes as displacements of the lab supercell
        (Angstrom per unit amplitude), so that ``p_k = scale * D(vectors[:, r_k])``.
    scale : float
        ``N^(n/2 - 1)``, the per-primitive-cell factor (``N`` cells in the FTG).
    """

    components: np.ndarray
    matrix: np.ndarray
    labels: list[str]
    vectors: np.ndarray
    scale: float

    def values(self, d: np.ndarray) -> np.ndarray:
        """Paper-convention derivatives ``(K,)`` (eV/A^n) of coefficients ``d`` ``(K,)``."""
        return self.matrix @ np.asarray(d, dtype=float)

    def uncertainties(self, sigma: np.ndarray) -> np.ndarray:
        """One-sigma errors ``(K,)`` of :meth:`values` for independent errors ``sigma``."""
        return np.sqrt((self.matrix**2) @ np.asarray(sigma, dtype=float) ** 2)


def paper_convention(basis: IrreducibleBasis, *, tol: float = 1e-8) -> PaperConvention:
    """The reported components of every irreducible derivative of ``basis``.

    Parameters
    ----------
    basis
        An irreducible basis of one order.
    tol
        Relative singular-value threshold of the rank test.

    Returns
    -------
    PaperConvention
    """
    n = basis.order
    modes, vectors = canonical_modes(basis.symmetrized)
    if modes is basis.symmetrized:
        canonical, overlap = basis, None
    else:
        canonical = matching_basis(modes, basis)
        overlap = _overlaps(canonical, basis, basis.modes.T @ vectors)
    lex, components = _lexicographic(canonical, tol)
    scale = per_cell_scale(basis.sym.n_cells, n)
    matrix = scale * (lex if overlap is None else lex @ overlap)
    return PaperConvention(components, matrix, [_label(canonical, r) for r in components],
                           vectors, scale)


def per_cell_scale(n_cells: int, order: int) -> float:
    """``N^(n/2 - 1)``: the factor that makes an order-``n`` component of an FTG of ``N``
    primitive cells a per-primitive-cell one (module docstring)."""
    return float(n_cells) ** (order / 2 - 1)


def _lexicographic(basis: IrreducibleBasis, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(K, K)`` map from ``basis``'s coefficients to its components at the chosen tuples,
    and those tuples ``(K, n)`` (module docstring: which tuples)."""
    K, n = len(basis), basis.order
    matrix = np.zeros((K, K))
    components = np.zeros((K, n), dtype=np.int64)
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, t in enumerate(basis.tensors):
        groups.setdefault(tuple(t.blocks), []).append(k)
    for members in groups.values():
        # value of each member tensor at every sorted tuple of the multiset's support
        tables = [{tuple(int(i) for i in idx): float(v) for idx, v in
                   zip(basis.tensors[k].indices, basis.tensors[k].values, strict=True)}
                  for k in members]
        tuples = sorted(set().union(*tables))
        chosen: list[tuple[int, ...]] = []
        rows: list[np.ndarray] = []
        for r in tuples:
            row = np.array([tab.get(r, 0.0) for tab in tables])
            trial = np.array([*rows, row])
            s = np.linalg.svd(trial, compute_uv=False)
            if s[-1] > tol * max(s[0], 1.0):
                chosen.append(r)
                rows.append(row)
                if len(chosen) == len(members):
                    break
        if len(chosen) != len(members):  # cannot happen for linearly independent tensors
            raise RuntimeError(f"no independent components for {basis.tensors[members[0]].label}")
        for k, r, row in zip(members, chosen, rows, strict=True):
            components[k] = r
            matrix[k, members] = row
    return matrix, components


def _overlaps(canonical: IrreducibleBasis, lab: IrreducibleBasis, Q: np.ndarray,
              tol: float = 1e-10) -> np.ndarray:
    """``G[j, k] = <C_j, B_k>`` (Frobenius) of the canonical tensors ``C_j`` and the lab
    tensors ``B_k``, both orthonormal bases of one space, so ``d_canonical = G @ d_lab``.

    ``Q`` ``(M, M)``: lab mode ``i`` has component ``Q[i, j]`` on canonical mode ``j``. A lab
    tensor is carried block by block: ``B'(x) = (1/prod m_b!) sum_sigma B_A ×_s
    Q[b_s, c_sigma(s)]`` over the slot permutations ``sigma`` (``B_A``: the tensor on its
    blocks, ``m_b``: how often block ``b`` repeats), then read on each canonical tensor's
    stored components.
    """
    lb, cb = lab.symmetrized.blocks, canonical.symmetrized.blocks
    links = {(b.index, c.index): Q[b.slice, c.slice] for b in lb for c in cb
             if np.abs(Q[b.slice, c.slice]).max() > tol}
    reach: dict[int, list[int]] = {}
    for b, c in links:
        reach.setdefault(b, []).append(c)
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, t in enumerate(canonical.tensors):
        groups.setdefault(tuple(t.blocks), []).append(j)
    G = np.zeros((len(canonical), len(lab)))
    n = lab.order
    for k, t in enumerate(lab.tensors):
        A = t.block_array(lab.symmetrized)
        repeat = math.prod(math.factorial(t.blocks.count(b)) for b in set(t.blocks))
        targets = {tuple(sorted(cs)) for cs in itertools.product(*(reach[b] for b in t.blocks))}
        for cs in targets & groups.keys():
            out = np.zeros([cb[c].dim for c in cs])
            for sigma in itertools.permutations(range(n)):
                mats = [links.get((t.blocks[s], cs[sigma[s]])) for s in range(n)]
                if any(m is None for m in mats):
                    continue
                X = A
                for m in mats:  # contracts the leading lab axis, appends its canonical axis
                    X = np.tensordot(X, m, axes=([0], [0]))
                out += np.transpose(X, np.argsort(sigma))
            out /= repeat
            starts = np.array([cb[c].start for c in cs])
            for j in groups[cs]:
                c = canonical.tensors[j]
                G[j, k] = float(np.sum(c.perms * c.values * out[tuple((c.indices - starts).T)]))
    if not np.allclose(G @ G.T, np.eye(len(G)), atol=1e-8):
        raise RuntimeError("internal error: the canonical and lab bases do not span one space")
    return G


def _label(basis: IrreducibleBasis, r: np.ndarray) -> str:
    blocks = basis.symmetrized.blocks
    out = []
    for m in r:
        b = next(b for b in blocks if b.start <= m < b.stop)
        out.append(f"{b.label}[{int(m) - b.start}]")
    return " ".join(out)


def paper_datasets(basis: IrreducibleBasis, values: np.ndarray,
                   uncertainties: np.ndarray) -> dict[str, np.ndarray]:
    """Datasets stored beside ``values`` in ``derivatives.h5``: the reported values and
    uncertainties (eV/A^n, per primitive cell), their canonical mode tuples and labels
    (bytes), and the convention's version (:data:`CONVENTION`, bytes)."""
    pc = paper_convention(basis)
    return {"paper_values": pc.values(values),
            "paper_uncertainties": pc.uncertainties(uncertainties),
            "paper_components": pc.components,
            "paper_labels": np.array(pc.labels, dtype="S"),
            "paper_convention": np.array(CONVENTION.encode())}
