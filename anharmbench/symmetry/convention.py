"""The paper's convention for irreducible derivatives, from our invariant-tensor basis.

Our fit measures the coefficients ``d_k`` of an orthonormal (Frobenius) basis of invariant
symmetric tensors, ``D = sum_k d_k B_k`` in symmetrized-mode coordinates. The paper reports
instead *components* of ``D``: derivatives of the energy with respect to unit amplitudes of
symmetrized displacements, ``d^n E / (du_{r_1} ... du_{r_n})`` for one mode tuple ``r`` per
irreducible derivative. The two differ by per-derivative factors and, where a block
multiset carries several tensors (a multiplicity space), by a mixing inside that space;
``d_k`` also changes when the basis is rotated inside such a space, the components do not.

Documented choice of ``r``: within each block multiset, the mode tuples (sorted, in the
modes' fixed order) are scanned lexicographically and a tuple is kept when it adds to the
rank of the components already kept, until there are as many as tensors. The choice
depends only on the span of the multiset's tensors, so the paper-convention values are
invariant under any rotation of the basis inside a multiplicity space. The modes inside
each block are a fixed (seeded) orthonormal basis of the block (see
:class:`~anharmbench.symmetry.modes.SymmetrizedModes`); ``r`` refers to them.

No library computes this conversion (phonopy/symfc work with Cartesian force constants),
so it is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anharmbench.symmetry.basis import IrreducibleBasis


@dataclass(frozen=True)
class PaperConvention:
    """The linear map from basis coefficients to the paper's derivatives.

    Attributes
    ----------
    components : numpy.ndarray
        ``(K, n)`` int64, the mode tuple ``r`` of each paper derivative (sorted).
    matrix : numpy.ndarray
        ``(K, K)`` float64, ``p = matrix @ d``; block diagonal over block multisets.
    labels : list[str]
        ``"G:T2g[0] G:T2g[1] G:T2g[2]"``: block label and component within the block.
    """

    components: np.ndarray
    matrix: np.ndarray
    labels: list[str]

    def values(self, d: np.ndarray) -> np.ndarray:
        """Paper-convention derivatives ``(K,)`` (eV/A^n) of coefficients ``d`` ``(K,)``."""
        return self.matrix @ np.asarray(d, dtype=float)

    def uncertainties(self, sigma: np.ndarray) -> np.ndarray:
        """One-sigma errors ``(K,)`` of :meth:`values` for independent errors ``sigma``."""
        return np.sqrt((self.matrix**2) @ np.asarray(sigma, dtype=float) ** 2)


def paper_convention(basis: IrreducibleBasis, *, tol: float = 1e-8) -> PaperConvention:
    """The paper's components of every irreducible derivative of ``basis``.

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
    return PaperConvention(components, matrix, [_label(basis, r) for r in components])


def _label(basis: IrreducibleBasis, r: np.ndarray) -> str:
    blocks = basis.symmetrized.blocks
    out = []
    for m in r:
        b = next(b for b in blocks if b.start <= m < b.stop)
        out.append(f"{b.label}[{int(m) - b.start}]")
    return " ".join(out)


def paper_datasets(basis: IrreducibleBasis, values: np.ndarray,
                   uncertainties: np.ndarray) -> dict[str, np.ndarray]:
    """Datasets stored beside ``values`` in ``derivatives.h5``: the paper-convention
    values and uncertainties (eV/A^n), their mode tuples and labels (bytes)."""
    pc = paper_convention(basis)
    return {"paper_values": pc.values(values),
            "paper_uncertainties": pc.uncertainties(uncertainties),
            "paper_components": pc.components,
            "paper_labels": np.array(pc.labels, dtype="S")}
