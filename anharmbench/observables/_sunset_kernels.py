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


@numba.njit(cache=True, nogil=True, inline="always")
def _occupation_factor(o1: float, o2: float, o3: float, s1: int, s2: int,
                       s3: int) -> float:  # pragma: no cover (jit)
    """``F_s = prod_{s=+} (1 + n) prod_{s=-} n - prod_{s=+} n prod_{s=-} (1 + n)``."""
    pa = ((1.0 + o1) if s1 > 0 else o1) * ((1.0 + o2) if s2 > 0 else o2) * (
        (1.0 + o3) if s3 > 0 else o3)
    pb = (o1 if s1 > 0 else 1.0 + o1) * (o2 if s2 > 0 else 1.0 + o2) * (
        o3 if s3 > 0 else 1.0 + o3)
    return pa - pb


@numba.njit(cache=True, nogil=True)
def golden_rule_terms(out: np.ndarray, v2: np.ndarray, nu1: np.ndarray, nu2: np.ndarray,
                      nu3: np.ndarray, occ1: np.ndarray, occ2: np.ndarray, occ3: np.ndarray,
                      nu0: np.ndarray, sigma: float, n_sigma: float, cutoff: float,
                      patterns: np.ndarray) -> None:  # pragma: no cover (jit)
    """``out[p] = sum_{j1 j2 j3} |V|^2 / (nu1 nu2 nu3) sum_s F_s g(nu0 - s.nu)`` per pair.

    Parameters
    ----------
    out
        ``(P, nb0, nT)`` float64, overwritten.
    v2
        ``(P, nb0, nb, nb, nb)`` float64 ``|V|^2`` indexed ``[p, j0, j2, j1, j3]``.
    nu1, nu2, nu3
        ``(P, nb)`` float64 frequencies (THz) of the three internal phonons of each pair.
    occ1, occ2, occ3
        ``(P, nb, nT)`` float64 Bose-Einstein occupations of the same phonons.
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
    n_t = out.shape[2]
    width = n_sigma * sigma
    norm = 1.0 / (sigma * np.sqrt(2.0 * np.pi))
    lo0, hi0 = nu0.min() - width, nu0.max() + width
    f = np.empty(n_t)
    for p in range(n_pairs):
        out[p] = 0.0
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
                    inv = 1.0 / (f1 * f2 * f3)
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
                                    f[t] = _occupation_factor(occ1[p, b, t], occ2[p, a, t],
                                                              occ3[p, c, t], s1, s2, s3)
                                have_f = True
                            x = d / sigma
                            wgt = np.exp(-0.5 * x * x) * norm * inv * v2[p, j0, a, b, c]
                            for t in range(n_t):
                                out[p, j0, t] += wgt * f[t]


@numba.njit(cache=True, nogil=True)
def resonance_weights(out: np.ndarray, nu1: np.ndarray, nu2: np.ndarray, nu3: np.ndarray,
                      occ1: np.ndarray, occ2: np.ndarray, occ3: np.ndarray, nu0: np.ndarray,
                      sigma: float, n_sigma: float, cutoff: float,
                      patterns: np.ndarray) -> None:  # pragma: no cover (jit)
    """The phase space of pairs per external branch: :func:`golden_rule_terms` with
    ``|V|^2 = 1`` and ``|F_s|``, at one temperature.

    Parameters
    ----------
    out
        ``(P, nb0)`` float64, overwritten.
    nu1, nu2, nu3
        ``(P, nb)`` float64 frequencies (THz) of the three internal phonons of each pair.
    occ1, occ2, occ3
        ``(P, nb)`` float64 their occupations at that temperature.
    nu0, sigma, n_sigma, cutoff, patterns
        As in :func:`golden_rule_terms`.
    """
    n_pairs, nb0 = out.shape[0], out.shape[1]
    nb = nu1.shape[1]
    width = n_sigma * sigma
    norm = 1.0 / (sigma * np.sqrt(2.0 * np.pi))
    lo0, hi0 = nu0.min() - width, nu0.max() + width
    for p in range(n_pairs):
        out[p] = 0.0
        for a in range(nb):
            f2 = nu2[p, a]
            if f2 <= cutoff:
                continue
            for b in range(nb):
                f1 = nu1[p, b]
                if f1 <= cutoff:
                    continue
                for c in range(nb):
                    f3 = nu3[p, c]
                    if f3 <= cutoff:
                        continue
                    inv = norm / (f1 * f2 * f3)
                    for s in range(patterns.shape[0]):
                        s1, s2, s3 = patterns[s, 0], patterns[s, 1], patterns[s, 2]
                        y = s1 * f1 + s2 * f2 + s3 * f3
                        if y < lo0 or y > hi0:
                            continue
                        fs = abs(_occupation_factor(occ1[p, b], occ2[p, a], occ3[p, c],
                                                    s1, s2, s3))
                        for j0 in range(nb0):
                            d = nu0[j0] - y
                            if -width <= d <= width:
                                x = d / sigma
                                out[p, j0] += np.exp(-0.5 * x * x) * inv * fs


@numba.njit(cache=True, nogil=True)
def resonance_mix(out: np.ndarray, nu1: np.ndarray, nu2: np.ndarray, nu3: np.ndarray,
                  occ1: np.ndarray, occ2: np.ndarray, occ3: np.ndarray, table: np.ndarray,
                  lo: float, step: float, cutoff: float) -> None:  # pragma: no cover (jit)
    """:func:`resonance_weights` summed over the external branches with weights, tabulated.

    ``out[p] = sum_{j1 j2 j3} sum_s |F_s| h(s . nu) / (nu1 nu2 nu3)`` over the sign
    patterns with at least one ``+``, with ``h(w) = sum_j0 c_j0 g(nu0_j0 - w)`` given on a
    grid (``table[i] = h(lo + i step)``, zero outside), interpolated linearly: one lookup
    per entry instead of a Gaussian per branch. For each ``(j2, j1)`` and signs ``(s2,
    s1)`` the ``j3`` whose ``s3 nu3`` brings the sum into the table's range are found by
    bisection (``nu3`` sorted ascending, as phonopy returns them), so only those are visited.

    Parameters
    ----------
    out
        ``(P,)`` float64, overwritten.
    nu1, nu2, nu3, occ1, occ2, occ3
        ``(P, nb)`` float64 frequencies (THz, each row ascending) and occupations of each
        pair's phonons.
    table, lo, step
        The tabulated ``h`` (``(M,)`` float64) and its grid (THz).
    cutoff
        Internal phonons at or below this frequency (THz) are skipped (acoustic at Gamma).
    """
    n_pairs = out.shape[0]
    nb = nu1.shape[1]
    m = table.shape[0]
    hi = lo + (m - 1) * step
    for p in range(n_pairs):
        acc = 0.0
        for a in range(nb):
            f2 = nu2[p, a]
            if f2 <= cutoff:
                continue
            for b in range(nb):
                f1 = nu1[p, b]
                if f1 <= cutoff:
                    continue
                for s2 in (1, -1):
                    for s1 in (1, -1):
                        u = s2 * f2 + s1 * f1
                        for s3 in (1, -1):
                            if s1 < 0 and s2 < 0 and s3 < 0:
                                continue
                            # s3 nu3 in (lo - u, hi - u): nu3 in an interval
                            if s3 > 0:
                                t_lo, t_hi = lo - u, hi - u
                            else:
                                t_lo, t_hi = u - hi, u - lo
                            c0 = np.searchsorted(nu3[p], t_lo, side="right")
                            c1 = np.searchsorted(nu3[p], t_hi, side="left")
                            for c in range(c0, c1):
                                f3 = nu3[p, c]
                                if f3 <= cutoff:
                                    continue
                                x = (u + s3 * f3 - lo) / step
                                i = int(x)
                                if i < 0 or i >= m - 1:
                                    continue
                                h = table[i] + (x - i) * (table[i + 1] - table[i])
                                if h > 0.0:
                                    acc += h * abs(_occupation_factor(
                                        occ1[p, b], occ2[p, a], occ3[p, c], s1, s2,
                                        s3)) / (f1 * f2 * f3)
        out[p] = acc
