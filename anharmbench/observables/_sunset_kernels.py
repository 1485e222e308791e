"""The sunset's two irregular loops, compiled with numba (our own kernels).

Why our own code, and why numba: no library sums a four-phonon golden rule. Both loops
are irregular (a segmented sum scattered into a permuted layout; the resonant entries of
the energy-conservation sum, a small, scattered fraction), which numpy did with gathers,
sorts, sparse products and copies that took half of the sunset's time; a numba loop
visits each entry once and allocates nothing. numba keeps the kernels in Python beside the
numpy/BLAS code that feeds them (a C++ kernel would need the plugin build and bindings
for two loops). The dense contractions stay in BLAS.
"""

from __future__ import annotations

import numba
import numpy as np

#: Sign patterns ``(s1, s2, s3)`` with at least one ``+`` (``---`` cannot conserve energy
#: for a positive external frequency).
PATTERNS = np.array([(1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1), (-1, -1, 1),
                     (-1, 1, -1), (1, -1, -1)], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def plane_wave_sums(out: np.ndarray, a: np.ndarray, phase: np.ndarray, group_u: np.ndarray,
                    group_c: np.ndarray, target: np.ndarray) -> None:  # pragma: no cover
    """``out[y, u, target[c, col]] += phase[y, r] a[r, col]`` over rows ``r`` of group (u, c).

    Parameters
    ----------
    out
        ``(ny, nD1, ncomp)`` complex128, accumulated in place.
    a
        ``(R, ncol)`` complex128 rows of the vertex components.
    phase
        ``(ny, R)`` complex128 plane waves ``exp(2 pi i q2_y . D2_r)``.
    group_u, group_c
        ``(R,)`` int64: each row's ``D1`` index and site combination.
    target
        ``(n_combos, ncol)`` int64: where a row's columns go in ``out``'s last axis.
    """
    for y in range(phase.shape[0]):
        for r in range(a.shape[0]):
            ph = phase[y, r]
            u, c = group_u[r], group_c[r]
            for col in range(a.shape[1]):
                out[y, u, target[c, col]] += ph * a[r, col]


@numba.njit(cache=True, nogil=True)
def golden_rule_sum(out: np.ndarray, v2: np.ndarray, nu1: np.ndarray, nu2: np.ndarray,
                    nu3: np.ndarray, occ1: np.ndarray, occ2: np.ndarray, occ3: np.ndarray,
                    weights: np.ndarray, nu0: np.ndarray, sigma: float, n_sigma: float,
                    cutoff: float, patterns: np.ndarray) -> None:  # pragma: no cover (jit)
    """Add ``sum_p w_p sum_{j1 j2 j3} |V|^2 / (nu1 nu2 nu3) sum_s F_s g(nu0 - s.nu)`` to ``out``.

    Parameters
    ----------
    out
        ``(nb0, nT)`` float64, accumulated in place.
    v2
        ``(P, nb0, nb, nb, nb)`` float64 ``|V|^2`` indexed ``[p, j0, j2, j1, j3]``.
    nu1, nu2, nu3
        ``(P, nb)`` float64 frequencies (THz) of the three internal phonons of each pair.
    occ1, occ2, occ3
        ``(P, nb, nT)`` float64 Bose-Einstein occupations of the same phonons.
    weights
        ``(P,)`` float64 orbit sizes of the pairs.
    nu0
        ``(nb0,)`` float64 external frequencies (THz).
    sigma, n_sigma
        Gaussian width (THz) and the number of widths beyond which it counts as zero.
    cutoff
        Internal phonons at or below this frequency (THz) are skipped (acoustic at Gamma).
    patterns
        ``(n_s, 3)`` int64 sign patterns summed.
    """
    n_pairs, nb0 = v2.shape[0], v2.shape[1]
    nb = nu1.shape[1]
    n_t = out.shape[1]
    width = n_sigma * sigma
    norm = 1.0 / (sigma * np.sqrt(2.0 * np.pi))
    lo0, hi0 = nu0.min() - width, nu0.max() + width
    f = np.empty(n_t)
    acc = np.empty((nb0, n_t))  # one pair's sum, then added: less round-off than one sum
    for p in range(n_pairs):
        acc[:] = 0.0
        for a in range(nb):  # j2
            f2 = nu2[p, a]
            if f2 <= cutoff:
                continue
            for b in range(nb):  # j1
                f1 = nu1[p, b]
                if f1 <= cutoff:
                    continue
                for c in range(nb):  # j3
                    f3 = nu3[p, c]
                    if f3 <= cutoff:
                        continue
                    inv = weights[p] / (f1 * f2 * f3)
                    for s in range(patterns.shape[0]):
                        s1, s2, s3 = patterns[s, 0], patterns[s, 1], patterns[s, 2]
                        y = s1 * f1 + s2 * f2 + s3 * f3
                        if y < lo0 or y > hi0:  # no external branch near
                            continue
                        have_f = False
                        for j0 in range(nb0):
                            d = nu0[j0] - y
                            if d < -width or d > width:
                                continue
                            if not have_f:  # F_s once per resonant entry, shared by j0
                                for t in range(n_t):
                                    o1, o2, o3 = occ1[p, b, t], occ2[p, a, t], occ3[p, c, t]
                                    pa = ((1.0 + o1) if s1 > 0 else o1) * (
                                        (1.0 + o2) if s2 > 0 else o2) * (
                                        (1.0 + o3) if s3 > 0 else o3)
                                    pb = (o1 if s1 > 0 else 1.0 + o1) * (
                                        o2 if s2 > 0 else 1.0 + o2) * (
                                        o3 if s3 > 0 else 1.0 + o3)
                                    f[t] = pa - pb
                                have_f = True
                            x = d / sigma
                            wgt = np.exp(-0.5 * x * x) * norm * inv * v2[p, j0, a, b, c]
                            for t in range(n_t):
                                acc[j0, t] += wgt * f[t]
        out += acc
