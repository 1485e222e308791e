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
primitive sites. The mesh sums are then a segmented sum with plane waves in ``D2`` (per
``q2``) and a dense product in ``D1`` (all ``q1`` partners of that ``q2`` at once), followed
by the eigenvector contractions (slot 2 shared by the partners, slots 1 and 3 batched) and
the energy-conservation sum over the seven sign patterns, evaluated only within
``SIGMA_CUTOFF`` smearing widths. The segmented sum and the energy-conservation sum are numba
loops (:mod:`~anharmbench.observables._sunset_kernels`), the rest numpy/BLAS.

Symmetry: the summand is symmetric under ``q1 <-> q2`` and, once averaged over degenerate
external branches, invariant under the little group of ``q`` acting on ``(q1, q2)``; only
one pair per orbit is computed, weighted by the orbit size. For ``q`` on the mesh ``q3`` runs
over the mesh too and the summand is symmetric under all six permutations of the three
internal phonons, so an orbit is one unordered triple (three times fewer pairs than the swap
alone). The cost is ``O(N^2)`` per external q-point (``O(N^3)`` for a whole mesh), divided by
the symmetry, as it must be.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from anharmbench.observables._sunset_kernels import PATTERNS, golden_rule_terms, plane_wave_sums
from anharmbench.observables._vertex import (
    diagram_constants,
    diagram_phonons,
    quartic_diagram,
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
from anharmbench.observables.modes import ModeData, QPoints
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
    with equal ``(D1, D2, k1, k3, k2)`` are summed into one *row* (``merge``: per view, the
    rows it reaches and a sparse 0/1 matrix); a row belongs to the group ``(u, c)`` of its
    ``D1`` (index ``u``) and site combination ``c = (k1 n + k3) n + k2``.
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
        self.group_u = np.ascontiguousarray(rows[:, 0])  # (u, c) of each row
        self.group_c = np.ascontiguousarray(rows[:, 1])
        self.d2 = rows[:, 2:]  # (R, 3)
        # one block per view, on the rows that view reaches: the vertex is summed view by
        # view from one reused buffer (a buffer of all views at once is ~10^8 elements,
        # whose first touch costs more than the arithmetic)
        m = ns**3
        self.merge: list[tuple[np.ndarray, sp.csr_matrix]] = []
        for v in range(nv):
            reached, local = np.unique(inv[v * m:(v + 1) * m], return_inverse=True)
            self.merge.append((reached, sp.csr_matrix(
                (np.ones(m), (local.reshape(-1), np.arange(m))), shape=(len(reached), m))))

    @property
    def n_d1(self) -> int:
        return len(self.d1)


def _vertex_components(lt: LatticeTensor, ps: _PairStructure, q: np.ndarray,
                       e0: np.ndarray) -> np.ndarray:
    """Slot 0 contracted, per row: ``(R, nb0 * 27)`` complex, columns ``(j0, al1, al3, al2)``.

    ``A[r] = sum_v w_v sum_{triples of row r} sum_{i0 a0} e~*(a0; q j0) exp(-2 pi i q.L0)
    exp(2 pi i q.L3) (M_c Phi_S)(i0 a0, i1 a1, i2 a2, i3 a3)`` (eV/(A^4 amu^(1/2))).

    ``M_c Phi_S = (1/4) sum_k [i_k = c] Phi_S`` (:meth:`LatticeTensor.views`) is not
    formed: each term touches only the center's slab ``P = Phi_S[3c:3c+3]`` (by the
    tensor's symmetry, whichever slot sits on ``c``), so slot 0 is contracted with ``P``
    alone (``k = 0``) and ``P``'s second index once for the three others, ``2 / N_S`` of
    the full contraction's cost.
    """
    ns, nb0 = lt.n_atoms_ftg, e0.shape[1]
    m = ns**3
    out = np.zeros((ps.n_rows, nb0 * 27), dtype=complex)
    vals = np.empty((m, nb0 * 27), dtype=complex)
    # the rows each slot on the center fills: (c, i2, i3), (i1, c, i3), (i1, i2, c)
    pairs = np.arange(ns * ns)
    center_rows = (lambda c: c * ns * ns + pairs, lambda c: (pairs // ns) * ns * ns + c * ns
                   + pairs % ns, lambda c: pairs * ns + c)
    for v, (cells, w, c) in enumerate(zip(lt.view_cells, lt.view_weights, lt.view_centers,
                                          strict=True)):
        w0 = slot_weights(lt, cells, e0.conj(), q, -1)  # slot 0 at -q: e~(-q) = conj e~(q)
        slab = lt.phi[3 * c:3 * c + 3]  # (3, 3 N_S, 3 N_S, 3 N_S), symmetric in its last 3
        # k = 0, slot 0 on the center: written straight in the row/column order of A
        p0 = slab.reshape(3, ns, 3, ns, 3, ns, 3).transpose(1, 3, 5, 0, 2, 6, 4)
        p0 = p0.reshape(m, 3, 27)
        wt = w0[3 * c:3 * c + 3].T  # (nb0, 3)
        x = vals.reshape(m, nb0, 27)
        x.real[:] = np.matmul(wt.real, p0)
        x.imag[:] = np.matmul(wt.imag, p0)
        # k = 1, 2, 3, slot k on the center, slot 0 anywhere: Y[a, s, t, j0]
        y = real_matmul(w0.T, slab.reshape(-1, 3 * ns).T).T.reshape(3, ns, 3, ns, 3, nb0)
        for rows, axes in zip((f(c) for f in center_rows),
                              ((1, 3, 5, 0, 4, 2), (1, 3, 5, 2, 4, 0), (1, 3, 5, 2, 0, 4)),
                              strict=True):
            x[rows] += y.transpose(axes).reshape(ns * ns, nb0, 27)
        # the view's weight, the 1/4 of M_c and slot 3's phase (i3 is the fastest row index)
        x *= np.tile(0.25 * w * np.exp(2j * np.pi * (cells @ q)), ns * ns)[:, None, None]
        reached, block = ps.merge[v]
        out[reached] += block @ vals
    return out


def _plane_wave_sums(ps: _PairStructure, A: np.ndarray, q2: np.ndarray,
                     target: np.ndarray) -> np.ndarray:
    """``G[y, u, target[c]] = sum_{rows r in (u, c)} exp(2 pi i q2_y . D2_r) A[r]``.

    Returns ``(ny, nD1, n_combos * ncol)`` complex (zeros where no row), its last axis in
    the order ``target`` gives.
    """
    phase = np.exp(2j * np.pi * (q2 @ ps.d2.T))  # (ny, R)
    G = np.zeros((len(q2), ps.n_d1, target.size), dtype=complex)
    plane_wave_sums(G, A, phase, ps.group_u, ps.group_c, target)
    return G


#: Energy conservation is evaluated within this many sigmas (the Gaussian is exp(-32)).
SIGMA_CUTOFF = 8.0


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


def _pair_set(mesh: Mesh, q: np.ndarray, rotations: np.ndarray | None,
              q_index: int | None = None) -> _Pairs:
    """Orbit representatives of the ordered ``(q1, q2)`` pairs and their orbit sizes.

    The summand (all seven sign patterns summed) is symmetric under ``(q1, q2) -> (q2,
    q1)``. With ``q_index`` (``q`` is that mesh point, so ``q3 = q - q1 - q2`` runs over
    the mesh too) it is symmetric under every permutation of ``(q1, q2, q3)``, and a pair
    is labelled by its sorted triple. With ``rotations`` (direct-space fractional point
    operations ``R``; q-points go to ``R^-T q``) it is also invariant under ``(q1, q2) ->
    (R q1, R q2)`` for ``R q = q`` once averaged over degenerate external branches. Each
    representative carries the number of ordered pairs its orbit holds.
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
    if q_index is None:
        def code(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.minimum(a * n + b, b * n + a)
        best = code(x, y)
        for g in perms[1:]:
            best = np.minimum(best, code(g[x], g[y]))
    else:
        addr = mesh.addresses
        z = mesh.index_of_address(addr[q_index][None] - addr[x] - addr[y])
        # a triple's label: its smallest index times n plus its middle one (the largest is
        # then fixed by q1 + q2 + q3 = q)
        def code3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
            lo = np.minimum(np.minimum(a, b), c)
            hi = np.maximum(np.maximum(a, b), c)
            return lo * n + (a + b + c - lo - hi)
        best = code3(x, y, z)
        for g in perms[1:]:
            best = np.minimum(best, code3(g[x], g[y], g[z]))
        del z
    del x, y
    codes, counts = np.unique(best, return_counts=True)
    # q2 = the smallest index of the orbit: few distinct q2, each with many q1 partners, so
    # the plane-wave sums over D2 are shared
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


class ExternalVertex:
    """What the pair sums of one external q-point share: its vertex, plane waves, occupations.

    :meth:`terms` gives the golden-rule summand of any ``(q1, q2)`` mesh pairs, all the
    external branches and temperatures at once; the exact sum weights them by their orbit
    sizes (:func:`_sunset_one`), the sampled one by the inverse of their probabilities
    (:mod:`~anharmbench.observables.sunset_sampled`).
    """

    def __init__(self, lt: LatticeTensor, ps: _PairStructure, q: np.ndarray, e0: np.ndarray,
                 nu0: np.ndarray, mesh: Mesh, mph: Phonons, q3_index: np.ndarray,
                 ph3: Phonons, temps: np.ndarray, sigma: float, tm: SunsetTiming) -> None:
        t0 = time.perf_counter()
        self.ps, self.mesh, self.mph, self.ph3, self.tm = ps, mesh, mph, ph3, tm
        self.q3_index, self.nu0, self.sigma = q3_index, nu0, sigma
        nb0, nb, npr = e0.shape[1], mph.n_branches, lt.n_prim
        self.nb0, self.nb, self.n_temps = nb0, nb, len(temps)
        self.A = _vertex_components(lt, ps, q, e0)  # (R, nb0 * 27)
        ncomp = nb0 * nb**3
        # a row of combination (k1 k3 k2) puts its column (j0 al1 al3 al2) of A at position
        # (j0, k1 al1, k3 al3, k2 al2) of G
        target = np.empty(ncomp, dtype=np.int64)
        target[np.arange(ncomp).reshape(npr, npr, npr, nb0, 3, 3, 3).transpose(
            3, 0, 4, 1, 5, 2, 6).reshape(-1)] = np.arange(ncomp)
        self.target = target.reshape(npr**3, nb0 * 27)
        self.E1 = np.exp(2j * np.pi * (mesh.qpoints @ ps.d1.T))  # (N, nD1)
        self.occ_m, self.occ_3 = (
            np.stack([bose_einstein(np.where(f > CUTOFF_FREQUENCY, f, 1.0), T)
                      for T in temps], -1) for f in (mph.frequencies, ph3.frequencies))
        self.y_group = max(1, min(8, int(1e8 // (16 * ncomp * ps.n_d1))))  # G <= ~100 MB
        tm.add("vertex", t0)

    def q3_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Rows of ``ph3`` holding ``q3 = q - q1 - q2`` of the pairs ``(x, y)``."""
        addr = self.mesh.addresses
        return self.q3_index[self.mesh.index_of_address(addr[x] + addr[y])]

    def terms(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Unweighted summand ``(P, nb0, nT)`` of the pairs ``(x, y)`` (``y`` sorted).

        ``sum_{j1 j2 j3} |V|^2 / (nu1 nu2 nu3) sum_s F_s g(nu0 - s . nu)`` per pair,
        external branch and temperature (the unscaled sunset sum of that pair).
        """
        t0 = time.perf_counter()
        P, nb0, nb = len(x), self.nb0, self.nb
        mph, ph3 = self.mph, self.ph3
        ys, first = np.unique(y, return_index=True)
        G = _plane_wave_sums(self.ps, self.A, self.mesh.qpoints[ys], self.target)
        bounds = list(first) + [P]
        t = np.empty((P, nb0 * nb * nb, nb), dtype=complex)  # (j0 a1 a3 | j2)
        for k in range(len(ys)):
            a, b = bounds[k], bounds[k + 1]
            phi = (self.E1[x[a:b]] @ G[k]).reshape(-1, nb)  # rows (x, j0, a1, a3), cols a2
            t[a:b] = (phi @ mph.cell_eigenvectors[ys[k]]).reshape(b - a, -1, nb)  # slot 2
        del G
        t0 = self.tm.add("plane waves", t0)
        m3 = self.q3_of(x, y)
        # slot 1 (q1) and slot 3 (q3 = q - q1 - q2): batched per pair
        t = t.reshape(P, nb0, nb, nb, nb).transpose(0, 1, 3, 4, 2).reshape(P, -1, nb)
        t = (t @ mph.cell_eigenvectors[x]).reshape(P, nb0, nb, nb, nb)  # j0 a3 j2 j1
        t = t.transpose(0, 1, 3, 4, 2).reshape(P, -1, nb)  # (j0 j2 j1 | a3)
        t = t @ ph3.cell_eigenvectors[m3]  # (P, j0 j2 j1, j3)
        v2 = t.real**2 + t.imag**2  # (P, j0 j2 j1, j3)
        del t
        t0 = self.tm.add("eigenvectors", t0)
        out = np.zeros((P, nb0, self.n_temps))
        nu_m, nu_3 = mph.frequencies, ph3.frequencies
        golden_rule_terms(out, v2.reshape(P, nb0, nb, nb, nb), nu_m[x], nu_m[y], nu_3[m3],
                          self.occ_m[x], self.occ_m[y], self.occ_3[m3], self.nu0,
                          self.sigma, SIGMA_CUTOFF, CUTOFF_FREQUENCY, PATTERNS)
        self.tm.add("energy conservation", t0)
        return out


def _sunset_one(vertex: ExternalVertex, pairs: _Pairs, pair_chunk: int) -> np.ndarray:
    """Exact unscaled sunset sum ``(nb0, nT)`` of one external q-point over its pair orbits."""
    out = np.zeros((vertex.nb0, vertex.n_temps))
    for sl in _chunks(pairs, pair_chunk, vertex.y_group):
        out += np.tensordot(pairs.w[sl], vertex.terms(pairs.x[sl], pairs.y[sl]), axes=1)
    return out


def q3_phonons(mesh: Mesh, mph: Phonons, phonon: Phonopy, pos: np.ndarray,
               q: np.ndarray) -> tuple[np.ndarray, Phonons]:
    """Phonons of ``q3 = q - q1 - q2``, indexed by the mesh index ``m`` of ``q1 + q2``.

    Returns ``(q3_index (N,), phonons)``: row ``q3_index[m]`` of ``phonons`` is ``q3``. On
    the mesh these are the mesh's own phonons; off it, solved at ``q - q_m``.
    """
    if mesh.contains(q):
        # q3 = q - (q1 + q2): mesh point index(q) - m for m = index(q1 + q2)
        i0 = mesh.index(q)
        return mesh.index_of_address(mesh.addresses[i0][None] - mesh.addresses), mph
    return np.arange(mesh.size), solve_phonons(phonon, q[None] - mesh.qpoints,
                                               what="the sunset linewidth",
                                               fractional_positions=pos)


def _sunset_loop(lt: LatticeTensor, ps: _PairStructure, q: np.ndarray, ext: Phonons,
                 sel: np.ndarray, mesh: Mesh, mph: Phonons, phonon: Phonopy, pos: np.ndarray,
                 temps: np.ndarray, sigma: float, pair_chunk: int, c: float,
                 out: np.ndarray, tm: SunsetTiming, rotations: np.ndarray | None,
                 permute: bool) -> None:
    """Fill ``out[:, iq, sel]`` for every external q-point.

    ``rotations``: the point group, to reduce by the little group of each q-point;
    ``permute``: reduce on-mesh q-points by the permutations of the three internal phonons.
    """
    for iq in range(len(q)):
        t0 = time.perf_counter()
        on_mesh = mesh.contains(q[iq])
        i0 = mesh.index(q[iq]) if on_mesh else None
        pairs = _pair_set(mesh, q[iq], rotations, i0 if permute else None)
        tm.n_pairs += pairs.count
        q3_index, ph3 = q3_phonons(mesh, mph, phonon, pos, q[iq])
        tm.add("pairs", t0)
        nu0 = ext.frequencies[iq, sel]
        vertex = ExternalVertex(lt, ps, q[iq], ext.cell_eigenvectors[iq][:, sel], nu0, mesh,
                                mph, q3_index, ph3, temps, sigma, tm)
        s = _sunset_one(vertex, pairs, pair_chunk)
        ok0 = nu0 > CUTOFF_FREQUENCY
        out[:, iq, sel] = np.where(ok0[:, None], c * s / np.where(ok0, nu0, 1.0)[:, None],
                                   0.0).T


def check_sunset_inputs(lt: LatticeTensor, sigma: float) -> None:
    """Refuse a tensor of another order than 4 or a smearing that is not a positive number."""
    if lt.order != 4:
        raise ObservableError(f"the sunset needs the order-4 tensor, got order {lt.order}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ObservableError(f"the sunset smearing sigma must be a positive number of THz, "
                              f"got {sigma!r}")


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
        Reduce the ``(q1, q2)`` sum by the permutations of ``(q1, q2, q3)`` for ``q`` on the
        mesh, and by the little group of ``q`` (exact for the degenerate-averaged result;
        used only with all branches and ``average_degenerate_branches``); otherwise only
        ``q1 <= q2`` is summed (the plain route the tests compare with).
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
    check_sunset_inputs(lt, sigma)
    mesh, temps, q, pos, ext, mph = diagram_phonons(lt, phonon, qpoints, mesh, temperatures,
                                                    "the sunset linewidth")
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
                     int(pair_chunk), c, out, tm, rotations, permute=symmetry)
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
    return quartic_diagram(
        derivatives, qpoints, mesh, "the sunset linewidth",
        lambda lt, phonon, q: sunset_gamma_from_tensor(
            lt, phonon, q, mesh, temperatures, sigma=sigma, branches=branches,
            average_degenerate_branches=average_degenerate_branches, symmetry=symmetry,
            pair_chunk=pair_chunk, potential=derivatives.name, timing=timing))
