"""Sunset linewidth: the two-loop (second order in ``Phi4``) self-energy (our own code).

phono3py stops at the cubic vertex, so this diagram is ours. The sunset diagram of Bandi,
Jiang and Marianetti (2024, Fig. 5b) is the lowest-order decay of a phonon into (and
scattering with) three phonons through the quartic vertex, from their ref. [4] (Xiao and
Marianetti, PRB 107, 094303 (2023)); the paper prints no formula, so we use the standard
golden-rule one in the paper's Hamiltonian convention (``H = sum_n (1/n!) sum Phi^(n)
u^n``). Its imaginary part at ``omega = omega_lambda`` (``Gamma = -Im Sigma``, half the
linewidth, phono3py's ``gamma``)::

    Gamma_lambda = (pi hbar^2 / (96 N^2)) sum_{q1 q2} sum_{j1 j2 j3}
                   |Phi~(-lambda, lambda1, lambda2, lambda3)|^2 / (w w1 w2 w3)
                   sum_s F_s delta(w - s1 w1 - s2 w2 - s3 w3)

with ``q3 = q - q1 - q2``, ``q1, q2`` on a Gamma-centred mesh of ``N`` points, ``s`` the
sign patterns with at least one ``+`` (``---`` cannot conserve energy for ``w > 0``,
as phono3py drops ``delta(w + w' + w'')`` in the bubble) and
``F_s = prod_{s=+} (1 + n) prod_{s=-} n - prod_{s=+} n prod_{s=-} (1 + n)``. It is the
``n = 4`` case of ``Gamma = (pi/hbar^2) (1/(n-1)!) sum |Phi|^2 sum_s F_s delta`` whose
``n = 3`` case is phono3py's bubble (``18 pi / hbar^2 |Phi_{-l l' l''}|^2`` with its
``1/3!``-normalised vertex); the prefactor is :func:`~anharmbench.observables._vertex.
diagram_constants` ``["sunset"]``.
Energy conservation uses a normalised Gaussian of width ``sigma`` (THz) that the user sets.
At high temperature ``F_s ~ T^2`` (the ``T^3`` terms cancel), so ``Gamma ~ T^2``.

Vectorization (per external q-point, all branches at once)
----------------------------------------------------------
Slot 0 (``-q``) is contracted with the FTG tensor view by view, and the phase of slot 3
(``q3 = q - q1 - q2``) is split into ``exp(2 pi i q . L3)`` times plane waves in
``D1 = L1 - L3`` and ``D2 = L2 - L3``; the components are grouped by ``(D1, D2)`` and the
primitive sites. The mesh sums are then a sparse product with plane waves in ``D2`` (per
``q2``) and a dense one in ``D1`` (all ``q1`` partners of that ``q2`` at once), followed by
the eigenvector contractions (slot 2 shared by the partners, slots 1 and 3 batched) and the
energy-conservation weights, evaluated only within ``SIGMA_CUTOFF`` smearing widths.

Symmetry: the summand is symmetric under ``q1 <-> q2`` and, once averaged over degenerate
external branches, invariant under the little group of ``q`` acting on ``(q1, q2)``; only
one pair per orbit is computed, weighted by the orbit size. For ``q`` on the mesh ``q3`` runs
over the mesh too and the summand is symmetric under all permutations of the three internal
phonons, so the six mixed patterns reduce to ``++-`` and ``--+`` (factor 3). The cost is
``O(N^2)`` per external q-point (``O(N^3)`` for a whole mesh), divided by the symmetry, as it
must be.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from anharmbench.observables._vertex import (
    diagram_constants,
    real_matmul,
    slot_weights,
    unique_rows,
)
from anharmbench.observables.errors import ObservableError
from anharmbench.observables.force_constants import DerivativeSet, LatticeTensor
from anharmbench.observables.harmonic import (
    CUTOFF_FREQUENCY,
    Mesh,
    Phonons,
    average_degenerate,
    bose_einstein,
    degenerate_sets,
    solve_phonons,
)
from anharmbench.observables.modes import ModeData, QPoints, resolve_qpoints
from anharmbench.symmetry._threads import single_blas_thread

if TYPE_CHECKING:
    from phonopy import Phonopy

__all__ = ["SunsetTiming", "sunset_gamma", "sunset_gamma_from_tensor"]


@dataclass
class SunsetTiming:
    """Wall time of a sunset run (seconds) and its size."""

    seconds: float = 0.0
    n_external: int = 0
    n_pairs: int = 0
    sections: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, t0: float) -> float:
        """Add the time since ``t0`` to section ``name``; returns now."""
        now = time.perf_counter()
        self.sections[name] = self.sections.get(name, 0.0) + now - t0
        return now


class _PairStructure:
    """The ``(D1, D2)`` grouping of a quartic lattice tensor (independent of q).

    Every view ``v`` and FTG atom triple ``(i1, i2, i3)`` (slots 1, 2, 3) has the cell
    differences ``(D1, D2) = (L1 - L3, L2 - L3)`` and the sites ``(k1, k2, k3)``. Triples
    with equal ``(D1, D2, k1, k3, k2)`` are summed into one *row* (``merge``, a sparse 0/1
    matrix); a row belongs to the group ``(u, c)`` of its ``D1`` (index ``u``) and site
    combination ``c = (k1 n + k3) n + k2``.
    """

    def __init__(self, lt: LatticeTensor) -> None:
        ns, npr, nv = lt.n_atoms_ftg, lt.n_prim, len(lt.view_cells)
        i1, i2, i3 = (g.ravel() for g in np.meshgrid(np.arange(ns), np.arange(ns),
                                                      np.arange(ns), indexing="ij"))
        k1, k2, k3 = (np.tile(lt.kappa[i], nv) for i in (i1, i2, i3))
        combo = (k1 * npr + k3) * npr + k2
        d = np.concatenate([np.concatenate([c[i1] - c[i3], c[i2] - c[i3]], axis=1)
                            for c in lt.view_cells])
        self.d1, u = unique_rows(d[:, :3])
        keys = np.concatenate([u[:, None], combo[:, None], d[:, 3:]], axis=1)
        rows, inv = unique_rows(keys)  # sorted by (u, combo, D2)
        self.n_rows = len(rows)
        self.n_combos = npr**3
        self.group = rows[:, 0] * self.n_combos + rows[:, 1]  # (u, c) of each row
        self.d2 = rows[:, 2:]  # (R, 3)
        self.merge = sp.csr_matrix((np.ones(len(inv)), (inv, np.arange(len(inv)))),
                                   shape=(len(rows), len(inv)))

    @property
    def n_d1(self) -> int:
        return len(self.d1)


def _vertex_components(lt: LatticeTensor, ps: _PairStructure, q: np.ndarray,
                       e0: np.ndarray) -> np.ndarray:
    """Slot 0 contracted, per row: ``(R, nb0 * 27)`` complex, columns ``(j0, al1, al3, al2)``.

    ``A[r] = sum_v w_v sum_{triples of row r} sum_{i0 a0} e~*(a0; q j0) exp(-2 pi i q.L0)
    exp(2 pi i q.L3) Phi_S(i0 a0, i1 a1, i2 a2, i3 a3)`` (eV/(A^4 amu^(1/2))).
    """
    ns, nb0 = lt.n_atoms_ftg, e0.shape[1]
    m = ns**3
    vals = np.empty((len(lt.view_cells) * m, nb0 * 27), dtype=complex)
    for v, (cells, w) in enumerate(zip(lt.view_cells, lt.view_weights, strict=True)):
        w0 = slot_weights(lt, cells, e0.conj(), q, -1)  # slot 0 at -q: e~(-q) = conj e~(q)
        x = real_matmul(w0.T, lt.phi.reshape(3 * ns, -1)).reshape(nb0, ns, 3, ns, 3, ns, 3)
        x *= (w * np.exp(2j * np.pi * (cells @ q)))[None, None, None, None, None, :, None]
        # rows (i1, i2, i3); columns (j0, alpha1, alpha3, alpha2)
        vals[v * m:(v + 1) * m] = x.transpose(1, 3, 5, 0, 2, 6, 4).reshape(m, nb0 * 27)
    return ps.merge @ vals


def _plane_wave_sums(ps: _PairStructure, A: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """``G[y, u, c, :] = sum_{rows r in (u, c)} exp(2 pi i q2_y . D2_r) A[r]``.

    Returns ``(ny, nD1, 27 * ncol)`` complex (a sparse product, zeros where no row).
    """
    ny, ng = len(q2), ps.n_d1 * ps.n_combos
    phase = np.exp(2j * np.pi * (q2 @ ps.d2.T))  # (ny, R)
    rows = (np.arange(ny)[:, None] * ng + ps.group[None, :]).reshape(-1)
    cols = np.tile(np.arange(ps.n_rows), ny)
    S = sp.csr_matrix((phase.reshape(-1), (rows, cols)), shape=(ny * ng, ps.n_rows))
    return (S @ A).reshape(ny, ps.n_d1, -1)


#: Energy conservation is evaluated within this many sigmas (the Gaussian is exp(-32)).
SIGMA_CUTOFF = 8.0


def _near(nu0: np.ndarray, y: np.ndarray, sigma: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries with ``|nu0[j] - y[r]| < SIGMA_CUTOFF sigma`` and their Gaussian weights.

    Parameters
    ----------
    nu0
        ``(nb0,)`` external frequencies (THz).
    y
        ``(R,)`` combination frequencies (THz).

    Returns
    -------
    rows, owner, j, g
        ``rows``: sorted distinct indices into ``y`` with at least one entry; per entry the
        index ``owner`` into ``rows``, the external branch ``j`` and the normalised Gaussian
        ``g`` (1/THz).
    """
    order = np.argsort(nu0, kind="stable")
    s0 = nu0[order]
    width = SIGMA_CUTOFF * sigma
    lo = np.searchsorted(s0, y - width, side="left")
    hi = np.searchsorted(s0, y + width, side="right")
    cnt = hi - lo
    rows = np.flatnonzero(cnt)
    c = cnt[rows]
    owner = np.repeat(np.arange(len(rows)), c)
    first = np.repeat(np.cumsum(c) - c, c)
    j = order[lo[rows][owner] + (np.arange(len(owner)) - first)]
    x = (nu0[j] - y[rows][owner]) / sigma
    g = np.exp(-0.5 * x * x) / (sigma * np.sqrt(2.0 * np.pi))
    return rows, owner, j, g


#: Sign patterns ``(s1, s2, s3)`` with at least one ``+``; the last three are the negatives
#: of the three before them, and ``F(-s) = -F(s)``.
_PATTERNS = ((1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1), (-1, -1, 1), (-1, 1, -1),
             (1, -1, -1))


def _occupation_factor(s: tuple[int, int, int], o1: np.ndarray, o2: np.ndarray,
                       o3: np.ndarray) -> np.ndarray:
    """``F_s = prod_{+}(1 + n) prod_{-} n - prod_{+} n prod_{-}(1 + n)`` (arrays alike)."""
    a = (1 + o1 if s[0] > 0 else o1) * (1 + o2 if s[1] > 0 else o2) * (1 + o3 if s[2] > 0 else o3)
    b = (o1 if s[0] > 0 else 1 + o1) * (o2 if s[1] > 0 else 1 + o2) * (o3 if s[2] > 0 else 1 + o3)
    return a - b


def _patterns(symmetric: bool) -> list[tuple[tuple[int, int, int], float]]:
    """Patterns summed and their factors.

    All seven patterns in general. With ``symmetric`` (``q`` on the mesh: ``q1, q2, q3`` all
    run over the mesh, so the summand is symmetric under every permutation of the internal
    phonons) the three patterns with two ``+`` are represented by ``++-`` and the three with
    two ``-`` by ``--+`` (factor 3 each).
    """
    if symmetric:
        return [((1, 1, 1), 1.0), ((1, 1, -1), 3.0), ((-1, -1, 1), 3.0)]
    return [(p, 1.0) for p in _PATTERNS]


@dataclass(frozen=True)
class _Pairs:
    """Representative ``(q1, q2)`` mesh pairs ``(x, y)``, sorted by ``y``, with weights."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    n_ops: int

    @property
    def count(self) -> int:
        return len(self.x)


def _pair_set(mesh: Mesh, q: np.ndarray, rotations: np.ndarray | None) -> _Pairs:
    """Orbit representatives of the ordered pairs under swap x little group of ``q``.

    The summand is symmetric under ``(q1, q2) -> (q2, q1)``; with ``rotations`` (direct-space
    fractional point operations ``R``; q-points go to ``R^-T q``) it is also invariant under
    ``(q1, q2) -> (R q1, R q2)`` for ``R q = q`` once averaged over degenerate external
    branches. Each representative carries the size of its orbit (the number of ordered
    pairs it stands for).
    """
    n = mesh.size
    perms = [np.arange(n)]
    if rotations is not None:
        rec = np.rint(np.linalg.inv(np.asarray(rotations, dtype=float)).transpose(0, 2, 1))
        nvec = np.asarray(mesh.numbers, dtype=float)
        frac = mesh.addresses / nvec
        for r in rec:
            dq = r @ q - q
            img = (frac @ r.T) * nvec
            if (np.allclose(dq, np.rint(dq), atol=1e-8)
                    and np.allclose(img, np.rint(img), atol=1e-8)):
                perms.append(mesh.index_of_address(np.rint(img).astype(np.int64)))
    x = np.repeat(np.arange(n, dtype=np.int64), n)
    y = np.tile(np.arange(n, dtype=np.int64), n)
    best = np.minimum(x * n + y, y * n + x)
    for g in perms[1:]:
        a, b = g[x], g[y]
        best = np.minimum(best, np.minimum(a * n + b, b * n + a))
    del x, y
    codes, counts = np.unique(best, return_counts=True)
    # q2 = the smallest index of the orbit (a minimum of a little-group orbit): few distinct
    # q2, each with many q1 partners, so the plane-wave sums over D2 are shared
    rx, ry = codes % n, codes // n
    order = np.lexsort((rx, ry))
    return _Pairs(rx[order], ry[order], counts[order].astype(float), len(perms))


def _chunks(pairs: _Pairs, pair_chunk: int, y_group: int) -> list[slice]:
    """Consecutive runs of at most ``pair_chunk`` pairs and ``y_group`` distinct ``q2``."""
    out = []
    start = 0
    n = pairs.count
    while start < n:
        stop = min(start + pair_chunk, n)
        ys = pairs.y[start:stop]
        distinct = np.flatnonzero(np.diff(ys)) + 1  # starts of new y values
        if len(distinct) >= y_group:
            stop = start + int(distinct[y_group - 1])
        out.append(slice(start, stop))
        start = stop
    return out


def _sunset_one(
    lt: LatticeTensor,
    ps: _PairStructure,
    q: np.ndarray,
    e0: np.ndarray,
    nu0: np.ndarray,
    mesh: Mesh,
    mph: Phonons,
    q3_index: np.ndarray,
    ph3: Phonons,
    temps: np.ndarray,
    sigma: float,
    pairs: _Pairs,
    pair_chunk: int,
    tm: SunsetTiming,
    symmetric: bool,
) -> np.ndarray:
    """Unscaled sunset sum ``(nb0, nT)`` for one external q-point (its branches ``e0``).

    ``symmetric``: ``q`` is on the mesh, so ``q3`` is too (three pattern classes suffice).
    """
    t0 = time.perf_counter()
    nb0, nb, npr = e0.shape[1], mph.n_branches, lt.n_prim
    A = _vertex_components(lt, ps, q, e0)  # (R, nb0 * 27)
    ncomp = nb0 * nb**3
    # G columns (k1 k3 k2 j0 al1 al3 al2) -> (j0, k1 al1, k3 al3, k2 al2)
    perm = np.arange(ncomp).reshape(npr, npr, npr, nb0, 3, 3, 3)
    perm = perm.transpose(3, 0, 4, 1, 5, 2, 6).reshape(-1)
    qm = mesh.qpoints
    E1 = np.exp(2j * np.pi * (qm @ ps.d1.T))  # (N, nD1)
    addr = mesh.addresses
    nu_m, nu_3 = mph.frequencies, ph3.frequencies
    ok_m, ok_3 = nu_m > CUTOFF_FREQUENCY, nu_3 > CUTOFF_FREQUENCY
    occ_m = np.stack([bose_einstein(np.where(ok_m, nu_m, 1.0), T) for T in temps], -1)
    occ_3 = np.stack([bose_einstein(np.where(ok_3, nu_3, 1.0), T) for T in temps], -1)
    kk = nb**3
    out = np.zeros((nb0, len(temps)))
    t0 = tm.add("vertex", t0)
    y_group = max(1, min(8, int(1e8 // (16 * ncomp * ps.n_d1))))  # G <= ~100 MB
    for sl in _chunks(pairs, pair_chunk, y_group):
        x, y, w = pairs.x[sl], pairs.y[sl], pairs.w[sl]
        P = len(x)
        ys, first = np.unique(y, return_index=True)
        G = _plane_wave_sums(ps, A, qm[ys])  # (ny, nD1, ncomp)
        G = np.take(G, perm, axis=2)
        t0 = tm.add("plane waves", t0)
        bounds = list(first) + [P]
        t = np.empty((P, nb0 * nb * nb, nb), dtype=complex)  # (j0 a1 a3 | j2)
        for k in range(len(ys)):
            a, b = bounds[k], bounds[k + 1]
            phi = (E1[x[a:b]] @ G[k]).reshape(-1, nb)  # rows (x, j0, a1, a3), cols a2
            t[a:b] = (phi @ mph.cell_eigenvectors[ys[k]]).reshape(b - a, -1, nb)  # slot 2
        del G
        t0 = tm.add("plane waves", t0)
        m3 = q3_index[mesh.index_of_address(addr[x] + addr[y])]
        # slot 1 (q1) and slot 3 (q3 = q - q1 - q2): batched per pair
        t = t.reshape(P, nb0, nb, nb, nb).transpose(0, 1, 3, 4, 2).reshape(P, -1, nb)
        t = (t @ mph.cell_eigenvectors[x]).reshape(P, nb0, nb, nb, nb)  # j0 a3 j2 j1
        t = t.transpose(0, 1, 3, 4, 2).reshape(P, -1, nb)  # (j0 j2 j1 | a3)
        t = t @ ph3.cell_eigenvectors[m3]  # (P, j0 j2 j1, j3)
        v2 = (t.real**2 + t.imag**2).reshape(P, nb0, kk)  # j0, (j2, j1, j3)
        del t
        t0 = tm.add("eigenvectors", t0)
        n1, n2, n3 = nu_m[x], nu_m[y], nu_3[m3]  # (P, nb)
        valid = (ok_m[y][:, :, None, None] & ok_m[x][:, None, :, None]
                 & ok_3[m3][:, None, None, :]).reshape(-1)
        prod = (n2[:, :, None, None] * n1[:, None, :, None] * n3[:, None, None, :]).reshape(-1)
        inv = np.where(valid, 1.0 / np.where(valid, prod, 1.0), 0.0) * np.repeat(w, kk)
        for s, fac in _patterns(symmetric):
            yv = (s[1] * n2[:, :, None, None] + s[0] * n1[:, None, :, None]
                  + s[2] * n3[:, None, None, :]).reshape(-1)
            rows, owner, j, g = _near(nu0, yv, sigma)
            t0 = tm.add("energy conservation", t0)
            # occupation factors once per resonant (pair, j2, j1, j3), shared by the j0
            p_, k_ = rows // kk, rows % kk
            j2, j1, j3 = k_ // (nb * nb), (k_ // nb) % nb, k_ % nb
            F = _occupation_factor(s, occ_m[x[p_], j1], occ_m[y[p_], j2], occ_3[m3[p_], j3])
            t0 = tm.add("occupations", t0)
            wgt = fac * g * inv[rows][owner] * v2[p_[owner], j, k_[owner]]
            out += sp.csr_matrix((wgt, (j, owner)), shape=(nb0, len(rows))) @ F
            t0 = tm.add("energy conservation", t0)
    return out


def _sunset_loop(lt: LatticeTensor, ps: _PairStructure, q: np.ndarray, ext: Phonons,
                 sel: np.ndarray, mesh: Mesh, mph: Phonons, phonon: Phonopy, pos: np.ndarray,
                 temps: np.ndarray, sigma: float, pair_chunk: int, c: float,
                 out: np.ndarray, tm: SunsetTiming, rotations: np.ndarray | None) -> None:
    """Fill ``out[:, iq, sel]`` for every external q-point."""
    for iq in range(len(q)):
        t0 = time.perf_counter()
        pairs = _pair_set(mesh, q[iq], rotations)
        tm.n_pairs += pairs.count
        on_mesh = mesh.contains(q[iq])
        if on_mesh:
            i0 = mesh.index(q[iq])
            # q3 = q - (q1 + q2): mesh point index(q) - m for m = index(q1 + q2)
            q3_index = mesh.index_of_address(mesh.addresses[i0][None] - mesh.addresses)
            ph3 = mph
        else:
            q3_index = np.arange(mesh.size)
            ph3 = solve_phonons(phonon, q[iq][None] - mesh.qpoints, what="the sunset linewidth",
                                fractional_positions=pos)
        tm.add("pairs", t0)
        nu0 = ext.frequencies[iq, sel]
        s = _sunset_one(lt, ps, q[iq], ext.cell_eigenvectors[iq][:, sel], nu0, mesh, mph,
                        q3_index, ph3, temps, sigma, pairs, pair_chunk, tm, on_mesh)
        ok0 = nu0 > CUTOFF_FREQUENCY
        out[:, iq, sel] = np.where(ok0[:, None], c * s / np.where(ok0, nu0, 1.0)[:, None],
                                   0.0).T


def sunset_gamma_from_tensor(
    lt: LatticeTensor,
    phonon: Phonopy,
    qpoints: np.ndarray | Sequence[Sequence[float]],
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    *,
    sigma: float = 0.1,
    branches: Sequence[int] | None = None,
    average_degenerate_branches: bool = True,
    symmetry: bool = True,
    pair_chunk: int = 256,
    potential: str = "",
    timing: SunsetTiming | None = None,
) -> ModeData:
    """Sunset ``Gamma`` (THz, half width) from a quartic lattice tensor and phonons.

    Parameters
    ----------
    lt
        Order-4 :class:`LatticeTensor`.
    phonon
        :class:`phonopy.Phonopy` with fc2.
    qpoints
        ``(nq, 3)`` fractional external q-points (any; on the mesh the phonons of ``q3``
        are the mesh's own).
    mesh
        Gamma-centred mesh of ``q1``, ``q2``.
    temperatures
        ``(nT,)`` K.
    sigma
        Gaussian smearing of energy conservation, THz (> 0).
    branches
        External branches to compute (default all); the cost is proportional.
    average_degenerate_branches
        Average over degenerate external branches (within the computed ones).
    symmetry
        Reduce the ``(q1, q2)`` sum by the little group of ``q`` where it has more than two
        operations (exact for the degenerate-averaged result; used only with all branches
        and ``average_degenerate_branches``); otherwise only ``q1 <= q2`` is summed.
    pair_chunk
        ``(q1, q2)`` pairs per vectorized block (memory ~ 0.2 MB per pair).
    potential
        Name recorded in the result.
    timing
        Filled with the wall time and sizes if given.

    Returns
    -------
    ModeData
        ``quantity="sunset_gamma"``, ``values`` ``(nT, nq, nb)`` THz (branches not computed
        are NaN).
    """
    t_start = time.perf_counter()
    if lt.order != 4:
        raise ObservableError(f"the sunset needs the order-4 tensor, got order {lt.order}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ObservableError(f"the sunset smearing sigma must be a positive number of THz, "
                              f"got {sigma!r}")
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    pos = lt.primitive.get_scaled_positions(wrap=False)
    what = "the sunset linewidth"
    ext = solve_phonons(phonon, q, what=what, fractional_positions=pos)
    mph = solve_phonons(phonon, mesh.qpoints, what=what, fractional_positions=pos)
    nb = ext.n_branches
    sel = np.arange(nb) if branches is None else np.asarray(branches, dtype=np.int64)
    if sel.size == 0 or sel.min() < 0 or sel.max() >= nb:
        raise ObservableError(f"branches must be in 0..{nb - 1}, got {list(sel)}")
    wanted = sel
    if average_degenerate_branches and branches is not None:
        # a branch's average needs its whole degenerate set: compute the closure, then
        # report only the branches asked for
        sel = _degenerate_closure(sel, ext.frequencies)
    tm = timing if timing is not None else SunsetTiming()
    tm.n_pairs = 0
    use_sym = symmetry and branches is None and average_degenerate_branches
    rotations = phonon.primitive_symmetry.pointgroup_operations if use_sym else None
    ps = _PairStructure(lt)
    c = diagram_constants()["sunset"] / mesh.size**2
    out = np.full((len(temps), len(q), nb), np.nan)
    with single_blas_thread():
        _sunset_loop(lt, ps, q, ext, sel, mesh, mph, phonon, pos, temps, float(sigma),
                     int(pair_chunk), c, out, tm, rotations)
    if average_degenerate_branches:
        avg = average_degenerate(np.where(np.isfinite(out), out, 0.0), ext.frequencies)
        out = np.full_like(out, np.nan)
        out[..., wanted] = avg[..., wanted]
    tm.seconds = time.perf_counter() - t_start
    tm.n_external = len(q)
    return ModeData("sunset_gamma", potential, q, ext.frequencies, temps, out,
                    meta={"mesh": list(mesh.numbers), "sigma_THz": float(sigma),
                          "diagram": "sunset (two-loop, Phi4^2)",
                          "convention": "gamma = -Im Sigma = half width; linewidth = 2 gamma"})


def _degenerate_closure(branches: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """``branches`` and every branch degenerate with one of them at any q-point."""
    keep = set(int(b) for b in branches)
    for f in frequencies:
        for g in degenerate_sets(f):
            if keep.intersection(g):
                keep.update(g)
    return np.array(sorted(keep), dtype=np.int64)


def sunset_gamma(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    *,
    sigma: float = 0.1,
    branches: Sequence[int] | None = None,
    average_degenerate_branches: bool = True,
    symmetry: bool = True,
    pair_chunk: int = 256,
    timing: SunsetTiming | None = None,
) -> ModeData:
    """Sunset ``Gamma`` (THz) of a potential at q-points, along a path or on the mesh.

    Needs orders 2 and 4. ``qpoints``: ``(nq, 3)`` fractional, a
    :class:`~anharmbench.observables.modes.QPath`, or ``"mesh"`` (the irreducible points of
    ``mesh``, weights in the result); the rest as :func:`sunset_gamma_from_tensor`.
    """
    derivatives.require([2, 4], "the sunset linewidth")
    q, path, weights = resolve_qpoints(qpoints, derivatives.phonopy(), mesh)
    res = sunset_gamma_from_tensor(
        derivatives.lattice_tensor(4), derivatives.phonopy(), q, mesh, temperatures,
        sigma=sigma, branches=branches, average_degenerate_branches=average_degenerate_branches,
        symmetry=symmetry, pair_chunk=pair_chunk, potential=derivatives.name, timing=timing)
    if path is not None:
        res.distances, res.path = path.distances, path
    res.weights = weights
    res.meta["ftg_order4"] = derivatives.ftg(4).tolist()
    return res
