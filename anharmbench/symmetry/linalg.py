"""Small linear-algebra helpers: canonical (reproducible) bases of subspaces."""

from __future__ import annotations

import numpy as np

__all__ = ["canonical_basis"]


def canonical_basis(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Canonical orthonormal basis of the column space of ``X``.

    The column space is brought to reduced row-echelon form (pivots on the first
    linearly independent coordinates, pivot entries 1) and Gram-Schmidt
    orthonormalised in pivot order with positive (real) diagonal. The result
    depends only on the subspace, not on the basis ``X`` came in, so it is
    reproducible across machines and BLAS thread counts.

    Parameters
    ----------
    X : (m, r) float64 or complex128
        Columns spanning the subspace (any basis, assumed well conditioned).
    tol : float
        Relative threshold for a pivot.

    Returns
    -------
    numpy.ndarray
        ``(m, r')`` orthonormal columns, same dtype class as ``X``; ``r'`` = rank.
    """
    X = np.asarray(X)
    if X.shape[1] == 0:
        return X.copy()
    # orthonormalise first (rank-revealing)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    r = int((s > tol * max(s[0], 1e-300)).sum())
    A = U[:, :r].T.copy()  # (r, m)
    scale = np.abs(A).max()
    row = 0
    start = 0
    m = A.shape[1]
    while row < r and start < m:
        norms = np.abs(A[row:, start:]).max(axis=0)
        cand = np.flatnonzero(norms > tol * scale)
        if len(cand) == 0:
            break
        col = start + int(cand[0])
        piv = row + int(np.argmax(np.abs(A[row:, col])))
        if piv != row:
            A[[row, piv]] = A[[piv, row]]
        A[row] = A[row] / A[row, col]
        others = np.arange(r) != row
        A[others] -= np.outer(A[others, col], A[row])
        A[others, col] = 0.0
        row += 1
        start = col + 1
    Q, R = np.linalg.qr(A.T)
    d = np.diag(R)
    ph = d / np.abs(d)
    return Q * ph[None, :]
