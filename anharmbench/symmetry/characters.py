"""Independent counts of invariant symmetric tensors by character theory.

For a representation ``V'`` of a finite group ``G``, the number of linearly
independent ``G``-invariant symmetric ``n``-tensors is

    dim Sym^n(V')^G = (1/|G|) sum_g h_n(g),

where ``h_n`` is the complete homogeneous symmetric polynomial of the eigenvalues of
``g`` on ``V'``. It follows from the power sums ``p_k(g) = chi(g^k)`` by Newton's
identity ``m h_m = sum_{k=1}^m p_k h_{m-k}``. Here ``V'`` is the displacement space
with rigid translations removed: ``chi_{V'}(g) = (n_fixed_atoms(g) - 1) tr R_g``.

For a product over stars, ``Sym^{m_1}(W_1) (x) Sym^{m_2}(W_2) ...``, the count is
``(1/|G|) sum_g prod_s h_{m_s}(g|W_s)`` with the characters of the star subspaces
``W_s`` computed from the Fourier projectors (independent of the block
decomposition).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from anharmbench.symmetry.group import SupercellSymmetry

__all__ = ["invariant_count", "invariant_count_stars", "complete_homogeneous"]


def complete_homogeneous(p: np.ndarray, n: int) -> np.ndarray:
    """``h_n`` from power sums.

    Parameters
    ----------
    p : (n, ...) array
        ``p[k-1] = p_k`` (traces of ``g^k``), vectorised over trailing axes.
    n : int

    Returns
    -------
    numpy.ndarray
        ``h_n`` with the trailing shape of ``p``.
    """
    h = [np.ones_like(p[0])]
    for m in range(1, n + 1):
        h.append(sum(p[k - 1] * h[m - k] for k in range(1, m + 1)) / m)
    return h[n]


def _element_powers(sym: SupercellSymmetry, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Atom permutations and Cartesian rotations of ``g^k``, ``k = 1..n``, for all g."""
    P = sym.perms
    R = sym.cart_rotations[np.arange(sym.order) // sym.n_cells]
    perms, rots = [P], [R]
    for _ in range(1, n):
        perms.append(np.take_along_axis(P, perms[-1], axis=1))
        rots.append(np.einsum("gij,gjk->gik", R, rots[-1]))
    return perms, rots


def invariant_count(sym: SupercellSymmetry, n: int) -> int:
    """Number of invariant symmetric ``n``-tensors on the translation-free space.

    Parameters
    ----------
    sym : SupercellSymmetry
    n : int
        Order (>= 1).

    Returns
    -------
    int
    """
    perms, rots = _element_powers(sym, n)
    ar = np.arange(sym.n_atoms)
    p = np.array(
        [
            ((pk == ar).sum(axis=1) - 1) * np.trace(rk, axis1=1, axis2=2)
            for pk, rk in zip(perms, rots, strict=True)
        ],
        dtype=float,
    )
    val = complete_homogeneous(p, n).mean()
    out = int(round(val))
    if abs(val - out) > 1e-6:
        raise RuntimeError(f"non-integral character average {val}")
    return out


def _star_projector(sym: SupercellSymmetry, star: Sequence[int]) -> np.ndarray:
    """Real projector ``(3N, 3N)`` onto the star subspace (translations removed at G)."""
    N3 = 3 * sym.n_atoms
    P = np.zeros((N3, N3), dtype=complex)
    for q in star:
        B = sym.bloch_vectors(int(q))
        P += B @ B.conj().T
    if any(np.all(sym.qn[int(q)] == 0) for q in star):
        T = sym.translation_vectors()
        P -= T @ T.T
    return P.real


def invariant_count_stars(sym: SupercellSymmetry, stars: Sequence[int | str]) -> int:
    """Invariant count of ``(x)_s Sym^{m_s}(W_s)`` for a multiset of stars.

    Parameters
    ----------
    sym : SupercellSymmetry
        Small cells only (uses dense ``3N x 3N`` projectors).
    stars : sequence of star indices or q-point names/indices
        One entry per slot; names are resolved with :meth:`qpoint_index`. The star
        of ``-q`` is merged with that of ``q``.

    Returns
    -------
    int
    """
    idx = []
    for s in stars:
        if isinstance(s, str):
            s = int(sym.star_of_q[sym.qpoint_index(s)])
        idx.append(int(s))
    # merge with the star of -q
    merged = []
    for s in idx:
        q0 = int(sym.stars[s][0])
        t = int(sym.star_of_q[sym.qneg[q0]])
        merged.append(min(s, t))
    counts = Counter(merged)
    n = max(counts.values())
    perms, rots = _element_powers(sym, n)
    N = sym.n_atoms
    total = np.ones(sym.order)
    for s, m in counts.items():
        members = list(sym.stars[s])
        q0 = int(sym.stars[s][0])
        t = int(sym.star_of_q[sym.qneg[q0]])
        if t != s:
            members += list(sym.stars[t])
        P4 = _star_projector(sym, members).reshape(N, 3, N, 3)
        ar = np.arange(N)
        p = []
        for k in range(m):
            Pt = P4[ar[None, :], :, perms[k], :]  # (G, N, 3, 3): P[a, :, g^k(a), :]
            p.append(np.einsum("gba,gnab->g", rots[k], Pt))
        total = total * complete_homogeneous(np.array(p), m)
    val = total.mean()
    out = int(round(val))
    if abs(val - out) > 1e-6:
        raise RuntimeError(f"non-integral character average {val}")
    return out
