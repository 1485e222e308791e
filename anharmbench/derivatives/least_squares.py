"""Least-squares irreducible derivatives from displacement-force data (any displacements).

The finite-difference fit (:mod:`anharmbench.derivatives.fit`) needs our own plans; this
fits the same Taylor series to arbitrary displaced supercells (phono3py's systematic pairs,
symfc's random displacements, MD snapshots), in the irreducible basis, with one-sigma
uncertainties. It is written here rather than taken from symfc or hiPhive because it must
be expressed in our basis, so that its values and uncertainties are those of our labelled
derivatives; on random displacements it agrees with symfc to 1e-12 (tests/test_dft_import.py).

Cost: the design matrix is never formed. A derivative of a q-tuple only moves the modes of
its q-points, so the modes fall into groups that share the derivatives they see
(:meth:`~anharmbench.symmetry.IrreducibleBasis.force_support`); the normal matrix is summed
group by group over chunks of configurations. On phono3py's AlN-LDA example (1254
supercells of 72 atoms, 7878 derivatives) that is ~1 GB instead of the 17 GB of the dense
matrix, and seconds of BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
import scipy.linalg as sla

from anharmbench.symmetry import IrreducibleBasis

__all__ = ["FitCost", "fit_cost", "least_squares_derivatives"]

#: working memory of one chunk of configurations (bytes)
CHUNK_BYTES = 128 * 2**20
#: pivots of the column-scaled normal matrix below this (relative) are not determined
RANK_TOL = 1e-13


@dataclass(frozen=True)
class FitCost:
    """What :func:`least_squares_derivatives` will hold in memory, known before it starts.

    Attributes
    ----------
    unknowns : int
        Derivatives fitted jointly (all orders).
    equations : int
        Mode-projected force equations (configurations x modes).
    peak_bytes : int
        Normal matrix, its factor, the group blocks and one chunk.
    dense_bytes : int
        What the dense design matrix alone would take (for comparison).
    """

    unknowns: int
    equations: int
    peak_bytes: int
    dense_bytes: int


@dataclass
class _Layout:
    """Columns of all orders and the mode groups that share their nonzero columns."""

    offsets: dict[int, int]
    support: dict[int, tuple[np.ndarray, np.ndarray]]
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # modes, columns, positions
    n_support: int


def _layout(bases: dict[int, IrreducibleBasis]) -> _Layout:
    orders = sorted(bases)
    M = bases[orders[0]].M
    offsets, support, ks, ms = {}, {}, [], []
    start = 0
    for n in orders:
        k, m = bases[n].force_support()
        offsets[n], support[n] = start, (k, m)
        ks.append(k + start)
        ms.append(m)
        start += len(bases[n])
    kall, mall = np.concatenate(ks), np.concatenate(ms)
    # the position of (column, mode) in the concatenated support vector of one row
    order = np.lexsort((kall, mall))  # by mode, then column
    by_mode = np.split(order, np.cumsum(np.bincount(mall, minlength=M))[:-1])
    patterns: dict[bytes, list[int]] = {}
    for m, pos in enumerate(by_mode):
        patterns.setdefault(kall[pos].tobytes(), []).append(m)
    groups = []
    for modes in patterns.values():
        cols = kall[by_mode[modes[0]]]
        pos = np.stack([by_mode[m] for m in modes])  # (|modes|, |cols|)
        groups.append((np.asarray(modes), cols, pos))
    return _Layout(offsets, support, groups, len(kall))


def fit_cost(bases: dict[int, IrreducibleBasis], n_configurations: int) -> FitCost:
    """Memory :func:`least_squares_derivatives` needs, from the bases alone (cheap)."""
    K = sum(len(b) for b in bases.values())
    M = next(iter(bases.values())).M
    P = sum(len(b.force_support()[0]) for b in bases.values())
    chunk = min(CHUNK_BYTES, 3 * 8 * P * max(n_configurations, 1))
    # normal matrix + its factor and inverse (in place) + group blocks (<= one more K^2)
    peak = 3 * 8 * K * K + chunk
    return FitCost(K, n_configurations * M, int(peak), int(8 * K * M * n_configurations))


def least_squares_derivatives(
    bases: dict[int, IrreducibleBasis],
    displacements: np.ndarray,
    forces: np.ndarray,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], float]:
    """Least-squares irreducible derivatives of several orders from displacement-force data.

    The model is the Taylor series of :mod:`anharmbench.derivatives.basis_protocol`,
    ``f_c = -sum_n (1/n!) sum_k d_k dB_k(c)/dc``, fitted on the mode-projected forces of
    every configuration (``M`` equations each) jointly for all orders of ``bases`` (all in
    one FTG). The one-sigma uncertainties are ``sqrt(s^2 [(A^T A)^-1]_kk)`` with
    ``s^2 = |r|^2 / (rows - K)``.

    The normal equations are accumulated in chunks (memory: :func:`fit_cost`), solved by
    a pivoted Cholesky factorisation of the column-scaled normal matrix (columns the data
    do not determine are left out), and refined once with the exact residual, which
    restores the accuracy a QR solution of the dense system would have.

    Parameters
    ----------
    bases
        ``{n: basis}``, same modes (same FTG and atom order).
    displacements, forces
        ``(n_conf, N, 3)`` float64, Angstrom and eV/Angstrom, our atom order.

    Returns
    -------
    (values, sigmas, rms)
        ``{n: (K_n,)}`` eV/A^n twice, and the rms force residual per equation (eV/A).
        Derivatives the data do not determine get ``nan`` value and ``inf`` uncertainty.
    """
    orders = sorted(bases)
    U = bases[orders[0]].modes
    c = displacements.reshape(len(displacements), -1) @ U  # (n_conf, M)
    f = forces.reshape(len(forces), -1) @ U
    lay = _layout(bases)
    K = sum(len(bases[n]) for n in orders)
    n_conf = len(c)
    step = max(1, int(CHUNK_BYTES // (3 * 8 * max(lay.n_support, 1))))
    chunks = [slice(i, min(n_conf, i + step)) for i in range(0, n_conf, step)]

    def rows(sl: slice) -> np.ndarray:
        """Design-matrix entries of configurations ``sl`` on the support: ``(P, nb)``."""
        return np.concatenate([-bases[n].force_terms_on_support(c[sl], transposed=True)
                               / factorial(n) for n in orders], axis=0)

    def blocks(sl: slice):  # noqa: ANN202 - generator of (columns, A_g^T, b_g)
        V = rows(sl)
        for modes, cols, pos in lay.groups:
            # (|modes|, |cols|, nb) -> A^T with one column per (mode, configuration)
            At = V[pos].transpose(1, 0, 2).reshape(len(cols), -1)
            yield cols, At, f[sl][:, modes].T.reshape(-1)

    grams = [np.zeros((len(cols), len(cols)), order="F") for _, cols, _ in lay.groups]
    G = np.zeros((K, K))
    g = np.zeros(K)
    for sl in chunks:
        for i, (cols, At, b) in enumerate(blocks(sl)):
            # syrk: half the flops of a product (upper triangle only; mirrored below)
            grams[i] = sla.blas.dsyrk(1.0, At.T, beta=1.0, c=grams[i], trans=1, overwrite_c=1)
            g[cols] += At @ b
    for (_, cols, _), Gi in zip(lay.groups, grams, strict=True):
        Gi = np.triu(Gi) + np.triu(Gi, 1).T  # dsyrk filled the upper triangle
        G[np.ix_(cols, cols)] += Gi
    del grams
    # column scaling keeps the factorisation well conditioned (orders differ by h^(n-2))
    scale = np.sqrt(np.diag(G)).copy()
    scale[scale == 0] = 1.0
    G /= scale[:, None]
    G /= scale[None, :]
    R, piv, rank, _ = sla.lapack.dpstrf(G, lower=0, tol=RANK_TOL, overwrite_a=1)
    del G
    ok = np.sort(piv[:rank] - 1)  # 1-based pivots; keep the determined columns in order
    R = np.triu(R[:rank, :rank])
    # R^T R = G[p, p] for the pivot order p; reorder the solution back to ``ok``
    perm = piv[:rank] - 1

    def solve(rhs: np.ndarray) -> np.ndarray:
        y = sla.solve_triangular(R, sla.solve_triangular(R, rhs[perm] / scale[perm],
                                                         trans="T"))
        out = np.zeros(K)
        out[perm] = y / scale[perm]
        return out

    x = solve(g)
    # one refinement with the exact residual: the normal equations square the condition
    rr, h = 0.0, np.zeros(K)
    for sl in chunks:
        for cols, At, b in blocks(sl):
            r = b - x[cols] @ At
            rr += float(r @ r)
            h[cols] += At @ r
    x += solve(h)
    dof = max(n_conf * c.shape[1] - rank, 1)
    s2 = rr / dof
    Rinv = sla.lapack.dtrtri(R, lower=0, overwrite_c=1)[0]
    var = np.full(K, np.inf)
    var[perm] = s2 * np.sum(Rinv**2, axis=1) / scale[perm] ** 2
    x[np.setdiff1d(np.arange(K), ok)] = np.nan
    sig = np.sqrt(var)
    values: dict[int, np.ndarray] = {}
    sigmas: dict[int, np.ndarray] = {}
    for n in orders:
        o, k = lay.offsets[n], len(bases[n])
        values[n], sigmas[n] = x[o:o + k], sig[o:o + k]
    return values, sigmas, float(np.sqrt(s2))
