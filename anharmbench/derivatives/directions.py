"""Choice of displacement directions in mode space for one derivative order.

Along a unit direction ``v`` (mode amplitudes, ``(M,)``), the ``n``-th derivative of the
energy is linear in the irreducible derivatives ``d_k``:

* energies: ``d^n E(t v) / dt^n |_0 = sum_k d_k B_k(v, ..., v)`` (one equation);
* forces: ``d^(n-1) g(t v) / dt^(n-1) |_0 = (1/n) sum_k d_k grad B_k(v, ..., v)`` with
  ``g = -modes.T @ F`` the energy gradient in mode coordinates (``M`` equations).

The *design block* of a direction is the ``(r, K)`` matrix of these coefficients
(``r = 1`` for energies, ``r = M`` for forces). An order is measurable when the blocks of
its directions, stacked, have full column rank ``K``.

Two selection strategies are provided:

``select_lone``
    Lone-irreducible-derivative-like: the unknowns are visited in order of increasing
    mode support (the set of modes a basis tensor depends on); for each one not yet
    determined, candidate directions of increasing complexity inside its support are tried
    (single modes, then sums of two modes with integer weights ``1, +-2, +-3``, then three
    modes, ...; at most ``n`` modes for energies and ``n - 1`` for forces) and the
    candidate that best determines that unknown is kept, until it is determined. Each
    derivative is thus pinned down by a few simple directions covering its mode multiset.
``select_bundled``
    Bundled-irreducible-derivative-like: seeded random Gaussian directions in the span of
    all modes of the order, each carrying as many equations as a direction can, until the
    system has full rank and at least ``overdetermination * K`` independent equations:
    the fewest directions group theory allows at that overdetermination.

Both take a :class:`RowSpace` already holding the blocks of directions measured for other
orders (they are free), so that only missing information is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, product
from math import gcd
from typing import Literal

import numpy as np

from anharmbench.derivatives.basis_protocol import DerivativeBasis

Method = Literal["forces", "energies"]

_RANK_RTOL = 1e-8
_DETERMINED_TOL = 1e-8
_CHUNK_FLOATS = 4_000_000


def derivative_order(order: int, method: Method) -> int:
    """Order of the finite difference that measures an order-``order`` derivative.

    Parameters
    ----------
    order
        Energy derivative order ``n``.
    method
        ``"energies"`` (``n``-th difference of energies) or ``"forces"``
        (``(n-1)``-th difference of forces).
    """
    if method == "energies":
        return order
    if method == "forces":
        return order - 1
    raise ValueError(f"unknown method {method!r}; expected 'forces' or 'energies'")


def canonical_direction(v: np.ndarray) -> np.ndarray:
    """Normalise ``v`` (``(M,)`` float) to unit length with its first non-zero entry > 0.

    ``v`` and ``-v`` carry the same information for central differences.
    """
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("zero direction")
    v = v / norm
    nz = np.flatnonzero(np.abs(v) > 1e-12)
    if v[nz[0]] < 0:
        v = -v
    return v


def direction_key(v: np.ndarray) -> bytes:
    """Hashable key of a canonical direction (rounded to 1e-12)."""
    return (np.round(np.asarray(v, dtype=np.float64), 12) + 0.0).tobytes()


def design_blocks(basis: DerivativeBasis, method: Method, directions: np.ndarray) -> np.ndarray:
    """Design blocks of directions.

    Parameters
    ----------
    basis
        The basis of the order being measured.
    method
        ``"energies"`` or ``"forces"``.
    directions
        ``(D, M)`` float64 unit mode-space directions.

    Returns
    -------
    np.ndarray
        ``(D, r, K)`` float64 with ``r = 1`` (energies, rows ``B_k(v, ..., v)``) or
        ``r = M`` (forces, rows ``(1/n) d/dc B_k(v, ..., v)``). Units: the directional
        derivative in eV/Angstrom^m (``m`` = finite-difference order) per unit ``d_k``.
    """
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if method == "energies":
        return np.asarray(basis.energy_terms(directions), dtype=np.float64)[:, None, :]
    if method == "forces":
        ft = np.asarray(basis.force_terms(directions), dtype=np.float64)
        return np.swapaxes(ft, 1, 2) / basis.order
    raise ValueError(f"unknown method {method!r}")


def mode_supports(basis: DerivativeBasis, rng: np.random.Generator) -> list[np.ndarray]:
    """Modes each basis tensor depends on.

    Parameters
    ----------
    basis
        A derivative basis with ``K`` tensors on ``M`` modes.
    rng
        Random generator (two random probe points are used).

    Returns
    -------
    list of np.ndarray
        ``K`` sorted int arrays of mode indices ``i`` with ``dB_k/dc_i`` not identically 0.
    """
    m = basis.modes.shape[1]
    probe = rng.standard_normal((2, m))
    grad = np.max(np.abs(np.asarray(basis.force_terms(probe), dtype=np.float64)), axis=0)
    scale = np.max(grad, axis=1, keepdims=True)
    return [np.flatnonzero(row > 1e-10 * s) for row, s in zip(grad, scale[:, 0], strict=True)]


class RowSpace:
    """Orthonormal basis of the row space of a growing design matrix (``K`` columns).

    Parameters
    ----------
    n_unknowns
        Number of unknowns ``K``.
    rtol
        A block adds the directions whose singular value (after projecting out the current
        row space) exceeds ``rtol`` times the block's norm.

    Notes
    -----
    Candidate scoring (:meth:`gains`, :class:`CandidateScores`) works with the ``r x r``
    Gram matrix of the projected block, restricted to the block's non-zero rows and columns;
    directions below ``select_rtol`` (1e-6) of the block's norm are hardly credited.
    :meth:`add` projects explicitly (and twice) for accuracy.
    """

    def __init__(self, n_unknowns: int, rtol: float = _RANK_RTOL) -> None:
        self.n_unknowns = n_unknowns
        self.rtol = rtol
        self.select_rtol = 1e-6
        self._buf = np.zeros((min(n_unknowns, 64), n_unknowns))
        self._rank = 0
        self._cov = np.zeros(n_unknowns)

    @property
    def rank(self) -> int:
        """Dimension of the row space."""
        return self._rank

    @property
    def basis(self) -> np.ndarray:
        """``(rank, K)`` orthonormal rows spanning the row space."""
        return self._buf[: self._rank]

    def coverage(self) -> np.ndarray:
        """``(K,)`` squared norm of the projection of each unit vector ``e_k`` (1 = determined)."""
        return self._cov.copy()

    def covered(self, k: int) -> float:
        """Coverage of unknown ``k``."""
        return float(self._cov[k])

    def undetermined(self) -> np.ndarray:
        """Indices of unknowns not determined by the current rows."""
        return np.flatnonzero(self._cov < 1.0 - _DETERMINED_TOL)

    def gains(self, blocks: np.ndarray, k: int) -> np.ndarray:
        """Increase of the coverage of unknown ``k`` for each candidate block.

        Parameters
        ----------
        blocks
            ``(C, r, K)`` candidate design blocks.
        k
            The unknown of interest.

        Returns
        -------
        np.ndarray
            ``(C,)`` float64 in ``[0, 1]`` (up to rounding and regularisation).
        """
        return CandidateScores(self, blocks, k).gains()

    def add(self, block: np.ndarray) -> int:
        """Add the rows of an ``(r, K)`` block; return the number of new dimensions."""
        return int(self.add_rows(block).shape[0])

    def add_rows(self, block: np.ndarray) -> np.ndarray:
        """Add the rows of an ``(r, K)`` block; return the new orthonormal rows ``(n, K)``."""
        norm = float(np.linalg.norm(block))
        if norm == 0.0:
            return np.zeros((0, self.n_unknowns))
        q = self.basis
        act = np.flatnonzero(np.any(block != 0.0, axis=0))
        res = block - (block[:, act] @ q[:, act].T) @ q
        res -= (res @ q.T) @ q  # second Gram-Schmidt pass
        _, s, vt = np.linalg.svd(res, full_matrices=False)
        new = vt[s > self.rtol * norm][: self.n_unknowns - self._rank]
        if new.shape[0] == 0:
            return new
        if q.shape[0]:
            new = new - (new @ q.T) @ q
            new, _ = np.linalg.qr(new.T)
            new = new.T
        n_new = new.shape[0]
        if self._rank + n_new > self._buf.shape[0]:
            grown = np.zeros((min(self.n_unknowns, max(2 * self._buf.shape[0],
                                                       self._rank + n_new)), self.n_unknowns))
            grown[: self._rank] = q
            self._buf = grown
        self._buf[self._rank : self._rank + n_new] = new
        self._rank += n_new
        self._cov += np.sum(new**2, axis=0)
        return new


class CandidateScores:
    """Incrementally updated coverage gains of candidate blocks for one unknown.

    For a candidate block ``R``, with ``Res = R (1 - Q^T Q)`` its part outside the current
    row space, the gain of unknown ``k`` is ``b^T (G + delta)^-1 b`` with ``G = Res Res^T``
    and ``b = Res e_k`` (``delta = select_rtol^2 |R|^2`` regularises directions that add
    almost nothing). Only the candidates' non-zero rows and columns enter, and adding rows to
    the row space updates ``G`` and ``b`` by low-rank corrections.

    Parameters
    ----------
    space
        The row space.
    blocks
        ``(C, r, K)`` candidate blocks.
    k
        The unknown of interest.
    """

    def __init__(self, space: RowSpace, blocks: np.ndarray, k: int) -> None:
        nz = blocks != 0.0
        self.cols = np.flatnonzero(np.any(nz, axis=(0, 1)))
        rows = np.flatnonzero(np.any(nz, axis=(0, 2)))
        self.k = k
        self.ra = blocks[:, rows][:, :, self.cols]
        q = space.basis
        cq = self.ra @ q[:, self.cols].T
        self.gram = self.ra @ self.ra.transpose(0, 2, 1) - cq @ cq.transpose(0, 2, 1)
        self.b = blocks[:, rows, k] - cq @ q[:, k]
        self.delta = space.select_rtol**2 * np.sum(self.ra**2, axis=(1, 2))

    def update(self, new: np.ndarray) -> None:
        """Account for new orthonormal rows ``(n, K)`` added to the row space."""
        if new.shape[0] == 0:
            return
        cn = self.ra @ new[:, self.cols].T
        self.gram -= cn @ cn.transpose(0, 2, 1)
        self.b -= cn @ new[:, self.k]

    def gains(self) -> np.ndarray:
        """``(C,)`` coverage gains of unknown ``k``."""
        if self.b.shape[1] == 0:
            return np.zeros(self.b.shape[0])
        eye = np.eye(self.gram.shape[1])
        mat = self.gram + (self.delta + 1e-300)[:, None, None] * eye
        sol = np.linalg.solve(mat, self.b[:, :, None])[:, :, 0]
        return np.sum(self.b * sol, axis=1)


def _patterns(size: int, amax: int) -> list[tuple[int, ...]]:
    """Integer weight patterns with first entry > 0, max |entry| == amax, gcd 1."""
    if size == 1:
        return [(1,)] if amax == 1 else []
    values = [a for a in range(-amax, amax + 1) if a != 0]
    out = []
    for first in range(1, amax + 1):
        for rest in product(values, repeat=size - 1):
            pat = (first, *rest)
            if max(abs(a) for a in pat) != amax:
                continue
            g = 0
            for a in pat:
                g = gcd(g, abs(a))
            if g == 1:
                out.append(pat)
    return out


def _vectors(cands: Sequence[tuple[tuple[int, ...], tuple[int, ...]]], m: int) -> np.ndarray:
    out = np.zeros((len(cands), m))
    for i, (subset, pat) in enumerate(cands):
        out[i, list(subset)] = pat
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _subset_activity(
    basis: DerivativeBasis, method: Method, subsets: list[tuple[int, ...]],
    rng: np.random.Generator,
) -> np.ndarray:
    """``(C, K)`` bool: basis tensor ``k`` is informed by directions in the span of subset ``c``.

    One random direction with positive weights on the subset's modes is probed each.
    """
    m = basis.modes.shape[1]
    out = np.zeros((len(subsets), len(basis)), dtype=bool)
    chunk = max(8, _CHUNK_FLOATS // max(1, _rows(basis, method) * len(basis)))
    for a in range(0, len(subsets), chunk):
        part = subsets[a : a + chunk]
        probe = np.zeros((len(part), m))
        for i, sub in enumerate(part):
            probe[i, list(sub)] = rng.uniform(0.5, 1.5, len(sub))
        blocks = design_blocks(basis, method, probe / np.linalg.norm(probe, axis=1)[:, None])
        col = np.linalg.norm(blocks, axis=1)  # (c, K)
        out[a : a + len(part)] = col > 1e-12 * (np.max(col, axis=1, keepdims=True) + 1e-300)
    return out


def select_lone(
    basis: DerivativeBasis,
    method: Method,
    space: RowSpace,
    rng: np.random.Generator,
    *,
    max_coefficient: int = 3,
    min_gain: float = 1e-3,
    max_subsets: int = 2048,
    max_candidates: int = 128,
) -> list[np.ndarray]:
    """Add simple directions until every unknown of ``basis`` is determined.

    Parameters
    ----------
    basis
        Basis of the order to measure.
    method
        ``"energies"`` or ``"forces"``.
    space
        Row space of the directions already measured for this order (updated in place).
    rng
        Random generator (support probes, sampling of large candidate sets, the rare
        random fallback).
    max_coefficient
        Largest integer weight of a mode in a candidate direction.
    min_gain
        A candidate is kept when it covers at least this fraction of what remains
        undetermined of the targeted unknown.
    max_subsets
        At most this many mode subsets of one size are probed per support (seeded sample).
    max_candidates
        At most this many (subset, weights) candidates are scored per class (seeded sample).

    Returns
    -------
    list of np.ndarray
        New canonical ``(M,)`` directions, in the order chosen.

    Notes
    -----
    Candidates for unknown ``k`` with mode support ``S``: subsets ``T`` of ``S`` of size
    ``1, 2, ...`` (up to ``n`` for energies, ``n - 1`` for forces) on which ``B_k`` does not
    vanish, with integer weights (first weight > 0, gcd 1) of maximal modulus ``1, 2, ...,
    max_coefficient``; classes are visited simplest first and within a class the
    candidate that most increases the determination of ``k`` is kept, repeatedly.
    """
    m = basis.modes.shape[1]
    n_eff = max(1, derivative_order(basis.order, method))
    supports = mode_supports(basis, rng)
    targets = sorted(range(len(basis)), key=lambda k: (len(supports[k]), k))
    chosen: list[np.ndarray] = []
    chunk = max(8, _CHUNK_FLOATS // max(1, _rows(basis, method) * len(basis)))
    done = 1.0 - _DETERMINED_TOL
    activity: dict[tuple[tuple[int, ...], int], tuple[list[tuple[int, ...]], np.ndarray]] = {}
    for k in targets:
        if space.covered(k) >= done:
            continue
        support = tuple(int(i) for i in supports[k])
        for size in range(1, min(len(support), n_eff) + 1):
            key = (support, size)
            if key not in activity:
                subsets = list(combinations(support, size))
                if len(subsets) > max_subsets:
                    pick = np.sort(rng.choice(len(subsets), max_subsets, replace=False))
                    subsets = [subsets[i] for i in pick]
                activity[key] = (subsets, _subset_activity(basis, method, subsets, rng))
            subsets, active = activity[key]
            alive = [subsets[i] for i in np.flatnonzero(active[:, k])]
            if not alive:
                continue
            for amax in range(1, (max_coefficient if size > 1 else 1) + 1):
                pats = _patterns(size, amax)
                n_c = len(alive) * len(pats)
                if n_c == 0:
                    continue
                pick = (np.arange(n_c) if n_c <= max_candidates
                        else np.sort(rng.choice(n_c, max_candidates, replace=False)))
                cls = [(alive[i // len(pats)], pats[i % len(pats)]) for i in pick]
                for a in range(0, len(cls), chunk):
                    cands = _vectors(cls[a : a + chunk], m)
                    blocks = design_blocks(basis, method, cands)
                    free = np.ones(cands.shape[0], dtype=bool)
                    scores = CandidateScores(space, blocks, k)
                    while free.any() and space.covered(k) < done:
                        remaining = 1.0 - space.covered(k)
                        gains = np.where(free, scores.gains(), -1.0)
                        best = int(np.argmax(gains))
                        if gains[best] < min_gain * remaining:
                            break
                        scores.update(space.add_rows(blocks[best]))
                        chosen.append(canonical_direction(cands[best]))
                        free[best] = False
                    if space.covered(k) >= done:
                        break
                if space.covered(k) >= done:
                    break
            if space.covered(k) >= done:
                break
        tries = 0
        while space.covered(k) < done:  # fallback: random directions in the support
            v = np.zeros(m)
            v[list(support)] = rng.standard_normal(len(support))
            v = canonical_direction(v)
            if space.add(design_blocks(basis, method, v[None])[0]):
                chosen.append(v)
            tries += 1
            if tries > 10 * len(basis) + 100:
                raise RuntimeError(
                    f"order {basis.order}: derivative {basis.labels[k]!r} cannot be determined "
                    f"by {method} along directions in its mode support"
                )
    return chosen


def block_ranks(blocks: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Numerical rank of each ``(r, K)`` block (singular values above ``rtol`` of the largest).

    Parameters
    ----------
    blocks
        ``(C, r, K)`` design blocks.
    rtol
        Relative threshold on singular values (evaluated via the ``r x r`` Gram matrices).

    Returns
    -------
    np.ndarray
        ``(C,)`` int64 ranks.
    """
    if blocks.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    lam = np.linalg.eigvalsh(blocks @ blocks.transpose(0, 2, 1))
    top = np.max(lam, axis=1, keepdims=True)
    return np.sum((lam > rtol**2 * top) & (top > 0), axis=1).astype(np.int64)


def select_bundled(
    basis: DerivativeBasis,
    method: Method,
    existing: np.ndarray,
    rng: np.random.Generator,
    *,
    overdetermination: float = 3.0,
    taken: set[bytes] | None = None,
) -> list[np.ndarray]:
    """Add seeded random directions until the order is overdetermined.

    Directions are seeded Gaussian vectors in the span of every mode the order's basis
    depends on, until the blocks of all directions (``existing`` + new) hold at least
    ``overdetermination * K`` equations (sum of block ranks) and the stacked design has
    full column rank. A generic direction carries the most equations a direction can
    (its block's rank, up to ``M`` with forces), so the count of directions is the
    group-theoretical minimum ``ceil(overdetermination * K / r_max)``
    (:func:`anharmbench.derivatives.plan.economy_bounds`); drawing inside one unknown's
    support, as before, gave blocks of a few equations each and 2-10x more evaluations.

    Parameters
    ----------
    basis
        Basis of the order to measure.
    method
        ``"energies"`` or ``"forces"``.
    existing
        ``(E, r, K)`` design blocks of the directions already measured for this order.
    rng
        Seeded random generator.
    overdetermination
        Required ratio of independent equations to unknowns (>= 1).
    taken
        Keys (:func:`direction_key`) of the existing directions; never repeated.

    Returns
    -------
    list of np.ndarray
        New canonical ``(M,)`` directions.
    """
    if overdetermination < 1.0:
        raise ValueError(f"overdetermination must be >= 1, got {overdetermination}")
    m = basis.modes.shape[1]
    n_unknowns = len(basis)
    supports = mode_supports(basis, rng)
    every = np.unique(np.concatenate(supports)) if supports else np.arange(m)
    keys = set() if taken is None else set(taken)
    stacked = [existing.reshape(-1, n_unknowns)]
    n_eq = int(np.sum(block_ranks(existing)))
    chosen: list[np.ndarray] = []
    i = 0
    limit = 20 * n_unknowns * max(1.0, overdetermination) + 100
    batch = max(1, min(64, _CHUNK_FLOATS // max(1, _rows(basis, method) * n_unknowns)))
    target = overdetermination * n_unknowns
    while True:
        if n_eq >= target:
            design = np.concatenate(stacked)
            lam = np.linalg.eigvalsh(design.T @ design)  # singular values squared
            if lam[0] > 1e-12 * lam[-1]:
                return chosen
            target = n_eq + n_unknowns  # rank deficient: draw more
        if i > limit:
            raise RuntimeError(f"order {basis.order}: bundled selection did not reach full rank")
        draws = np.zeros((batch, m))
        for b in range(batch):
            while True:  # a repeat has probability zero; guarded all the same
                v = np.zeros(m)
                v[every] = rng.standard_normal(every.size)
                v = canonical_direction(v)
                if direction_key(v) not in keys:
                    break
            keys.add(direction_key(v))
            draws[b] = v
        i += batch
        blocks = design_blocks(basis, method, draws)
        ranks = block_ranks(blocks)
        need = np.searchsorted(np.cumsum(ranks), target - n_eq) + 1  # directions to reach target
        take = int(min(batch, max(1, need)))
        chosen.extend(draws[:take])
        stacked.append(blocks[:take].reshape(-1, n_unknowns))
        n_eq += int(np.sum(ranks[:take]))


def _rows(basis: DerivativeBasis, method: Method) -> int:
    return 1 if method == "energies" else int(basis.modes.shape[1])
