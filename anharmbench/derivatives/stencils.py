"""Central finite-difference stencils with an ``O(h^2)`` leading error.

For the ``m``-th derivative of a smooth function ``f`` of one variable, the minimal
central stencil uses the integer offsets ``j = -p..p`` with ``p = (m + 1) // 2`` and
weights ``w_j`` solving ``sum_j w_j j^q = m! delta_{qm}`` for ``q = 0..2p``, so that

    (1 / h^m) sum_j w_j f(j h) = f^(m)(0) + c_2 h^2 f^(m+2)(0) + c_4 h^4 f^(m+4)(0) + ...

Only even powers of ``h`` appear (the stencil is symmetric), which is what makes the
quadratic error-tail extrapolation of :mod:`anharmbench.derivatives.fit` valid.
The weights are solved in exact rational arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from math import factorial

import numpy as np


@dataclass(frozen=True)
class Stencil:
    """A central finite-difference stencil for one derivative order.

    Attributes
    ----------
    derivative
        The derivative order ``m`` (>= 0; ``m = 0`` is the value itself).
    offsets
        ``(P,)`` int64, the offsets ``j`` with non-zero weight (the sample points are
        ``t = j h``).
    weights
        ``(P,)`` float64, the weights ``w_j``; the estimate is ``sum_j w_j f(j h) / h^m``.
    """

    derivative: int
    offsets: np.ndarray
    weights: np.ndarray

    @property
    def half_width(self) -> int:
        """Largest ``|j|`` of the stencil."""
        return int(np.max(np.abs(self.offsets))) if self.offsets.size else 0


@cache
def _exact_weights(m: int) -> tuple[tuple[int, Fraction], ...]:
    p = (m + 1) // 2
    offsets = list(range(-p, p + 1))
    n = len(offsets)
    # Vandermonde system V w = b with V[q, j] = offset_j^q, b_q = m! delta_{qm}.
    mat = [[Fraction(j) ** q for j in offsets] + [Fraction(factorial(m) if q == m else 0)]
           for q in range(n)]
    for col in range(n):  # Gauss-Jordan elimination in exact arithmetic
        piv = next(r for r in range(col, n) if mat[r][col] != 0)
        mat[col], mat[piv] = mat[piv], mat[col]
        pv = mat[col][col]
        mat[col] = [x / pv for x in mat[col]]
        for r in range(n):
            if r != col and mat[r][col] != 0:
                f = mat[r][col]
                mat[r] = [a - f * b for a, b in zip(mat[r], mat[col], strict=True)]
    return tuple((j, mat[i][n]) for i, j in enumerate(offsets) if mat[i][n] != 0)


def central_stencil(derivative: int) -> Stencil:
    """Minimal central stencil of the ``derivative``-th derivative, error ``O(h^2)``.

    Parameters
    ----------
    derivative
        Derivative order ``m >= 0``.

    Returns
    -------
    Stencil
        For ``m = 0`` the trivial stencil ``f(0)``; for ``m >= 1`` ``2 ((m + 1) // 2) + 1``
        offsets (zero weights dropped, e.g. the centre for odd ``m``).

    Examples
    --------
    >>> central_stencil(2).weights.tolist()
    [1.0, -2.0, 1.0]
    """
    if derivative < 0:
        raise ValueError(f"derivative order must be >= 0, got {derivative}")
    pairs = _exact_weights(derivative)
    offsets = np.array([j for j, _ in pairs], dtype=np.int64)
    weights = np.array([float(w) for _, w in pairs], dtype=np.float64)
    return Stencil(derivative=derivative, offsets=offsets, weights=weights)


def leading_error_coefficient(derivative: int) -> float:
    """Coefficient ``c_2`` of ``h^2 f^(m+2)(0)`` in the stencil's error expansion.

    Parameters
    ----------
    derivative
        Derivative order ``m >= 1``.

    Returns
    -------
    float
        ``sum_j w_j j^(m+2) / (m+2)!``.
    """
    pairs = _exact_weights(derivative)
    q = derivative + 2
    return float(sum(w * Fraction(j) ** q for j, w in pairs) / factorial(q))
