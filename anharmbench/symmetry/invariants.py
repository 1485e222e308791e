"""Irreducible derivative bases: invariant symmetric tensors built orbit by orbit.

For an order ``n`` the symmetric ``n``-tensors on the translation-free displacement
space that the space group ``G`` (restricted to the supercell) leaves invariant are
constructed without ever forming a dense ``(3N)^n`` object:

1. Tensors are decomposed by multisets of symmetrized blocks
   (:class:`~anharmbench.symmetry.modes.SymmetrizedModes`); within a block multiset
   the components are written in the Bloch-adapted basis ``v_{q,j}`` so translation
   invariance keeps only q-tuples summing to a reciprocal lattice vector.
2. The allowed q-tuples are split into orbits of ``P x S_beta`` (point operations
   times the permutations of slots holding the same block). On an orbit the tensor
   is fixed by its value ``f`` at a representative tuple ``x0``; ``f`` must be
   invariant under the stabilizer of ``x0``. The slot permutations fixing ``x0``
   are imposed by working in the symmetric (Young) subspace, the rest by the
   group-average projector, whose range gives ``f``.
3. ``f`` is propagated to the whole orbit, converted to real mode coordinates,
   and the real and imaginary parts are orthonormalised (Frobenius inner product
   of the full ``M^n`` tensor).

The result types (:class:`~anharmbench.symmetry.basis.IrreducibleBasis`,
:class:`~anharmbench.symmetry.basis.BasisTensor`, and how a tensor is stored) are in
:mod:`anharmbench.symmetry.basis`; this module is the construction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from anharmbench.symmetry._threads import single_blas_thread
from anharmbench.symmetry.basis import BasisTensor, IrreducibleBasis, _equal_groups
from anharmbench.symmetry.group import SupercellSymmetry, format_qpoint
from anharmbench.symmetry.linalg import canonical_basis
from anharmbench.symmetry.modes import SymmetrizedModes, symmetrized_modes

__all__ = [
    "irreducible_basis",
    "matching_basis",
    "MIN_ORDER",
    "MAX_ORDER",
]

MIN_ORDER, MAX_ORDER = 2, 6
_EIG_TOL = 0.5
_ZERO = 1e-12


def _perm_count(idx: np.ndarray) -> np.ndarray:
    """Number of distinct permutations of each sorted row of ``idx`` ``(nnz, n)``."""
    n = idx.shape[1]
    out = np.full(len(idx), math.factorial(n), dtype=np.int64)
    run = np.ones(len(idx), dtype=np.int64)
    for s in range(1, n):
        same = idx[:, s] == idx[:, s - 1]
        run = np.where(same, run + 1, 1)
        out //= run
    return out


# ====================================================================== builder
class _Builder:
    """Orbit-by-orbit construction of invariant symmetric tensors."""

    def __init__(self, modes: SymmetrizedModes, n: int) -> None:
        self.modes = modes
        self.sym = modes.sym
        self.n = n
        sym = self.sym
        self.D = sym.n_cells
        # units = stars* carrying blocks; q list of each unit
        self.units: list[int] = []
        self.unit_blocks: dict[int, list[int]] = {}
        self.unit_q: dict[int, np.ndarray] = {}
        for b in modes.blocks:
            if b.star not in self.unit_blocks:
                self.units.append(b.star)
                self.unit_blocks[b.star] = []
                self.unit_q[b.star] = np.sort(b.qpoints)
            self.unit_blocks[b.star].append(b.index)
        self.unit_of_q = np.full(self.D, -1, dtype=np.int64)
        for u in self.units:
            self.unit_of_q[self.unit_q[u]] = u
        qn = sym.qn
        self.qcode_lookup = np.full(self.D**3, -1, dtype=np.int64)
        self.qcode_lookup[(qn[:, 0] * self.D + qn[:, 1]) * self.D + qn[:, 2]] = np.arange(self.D)
        self.targets = {}
        for b in modes.blocks:
            self.targets[b.index] = b.real_targets()
        self.mt = {b.index: modes.mtable(b) for b in modes.blocks}
        self.mtc = {k: (v[0], v[1].conj()) for k, v in self.mt.items()}
        # real copies for q-points with 2q = 0 (their M matrices are real)
        self.mtr = {}
        self.selfq = {}
        for b in modes.blocks:
            Mc = self.mtc[b.index][1]
            self.mtr[b.index] = Mc.real.copy()
            sel = np.zeros(self.D, dtype=bool)
            sel[b.qpoints[b.kind == 0]] = True
            self.selfq[b.index] = sel
        self.qpos_arr = {}
        for b in modes.blocks:
            arr = np.full(self.D, -1, dtype=np.int64)
            arr[b.qpoints] = np.arange(len(b.qpoints))
            self.qpos_arr[b.index] = arr

    # -------------------------------------------------------------- codes
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Integer code of q-tuples ``(..., n)``."""
        code = np.zeros(x.shape[:-1], dtype=np.int64)
        for i in range(x.shape[-1] - 1, -1, -1):
            code = code * self.D + x[..., i]
        return code

    def allowed_tuples(self, units: tuple[int, ...]) -> np.ndarray:
        """Ordered q-tuples with ``q_i`` in unit ``i`` summing to 0: ``(T, n)`` int64."""
        n, D, qn = self.n, self.D, self.sym.qn
        lists = [self.unit_q[u] for u in units]
        if n == 1:
            head = np.zeros((1, 0), dtype=np.int64)
        else:
            grids = np.meshgrid(*lists[:-1], indexing="ij")
            head = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        tot = qn[head].sum(axis=1) if head.shape[1] else np.zeros((1, 3), dtype=np.int64)
        need = (-tot) % D
        last = self.qcode_lookup[(need[:, 0] * D + need[:, 1]) * D + need[:, 2]]
        ok = np.isin(last, lists[-1])
        return np.concatenate([head[ok], last[ok][:, None]], axis=1)

    # -------------------------------------------------------------- main
    def build(
        self,
        star_filter: tuple[int, ...] | None = None,
        allowed_codes: dict[tuple[int, ...], set[int]] | None = None,
    ) -> list[BasisTensor]:
        """Construct all basis tensors (optionally for one sorted unit tuple)."""
        out: list[BasisTensor] = []
        combos = (
            [star_filter]
            if star_filter is not None
            else list(itertools.combinations_with_replacement(self.units, self.n))
        )
        for units in combos:
            out.extend(self._star_tuple(tuple(units), allowed_codes))
        return out

    def _star_tuple(
        self, units: tuple[int, ...], allowed_codes: dict[tuple[int, ...], set[int]] | None
    ) -> list[BasisTensor]:
        sym, n = self.sym, self.n
        tuples = self.allowed_tuples(units)
        if len(tuples) == 0:
            return []
        codes = self.encode(tuples)
        order = np.argsort(codes)
        tuples, codes = tuples[order], codes[order]
        img = sym.qperm[:, tuples]  # (P, T, n)
        img_codes = self.encode(img)  # (P, T)
        canon = img_codes.min(axis=0)
        uniq, lab = np.unique(canon, return_inverse=True)
        nlab = len(uniq)
        rep_idx = np.searchsorted(codes, uniq)
        reps = tuples[rep_idx]  # (L, n)
        # R with R x0 = y for each tuple
        rep_img_codes = img_codes[:, rep_idx]  # (P, L)
        R_of = np.argmax(rep_img_codes[:, lab] == codes[None, :], axis=0)
        members = [[] for _ in range(nlab)]
        for t, lb in enumerate(lab):
            members[lb].append(t)
        members_arr = [np.array(m, dtype=np.int64) for m in members]

        def label_of(x: np.ndarray) -> np.ndarray:
            return lab[np.searchsorted(codes, self.encode(x))]

        conj_lab = label_of(sym.qneg[reps])
        swap_act: dict[int, np.ndarray] = {}
        for i in range(n - 1):
            if units[i] == units[i + 1]:
                sw = reps.copy()
                sw[:, [i, i + 1]] = sw[:, [i + 1, i]]
                swap_act[i] = label_of(sw)
        allowed_labels = None
        if allowed_codes is not None:
            allowed_labels = set()
            for c in allowed_codes.get(units, set()):
                pos = np.searchsorted(codes, c)
                if pos < len(codes) and codes[pos] == c:
                    allowed_labels.add(int(lab[pos]))
                    allowed_labels.add(int(conj_lab[lab[pos]]))
            if not allowed_labels:
                return []

        # block tuples consistent with the unit tuple
        ugroups = _equal_groups(units)
        choices = [
            list(itertools.combinations_with_replacement(self.unit_blocks[units[g[0]]], len(g)))
            for g in ugroups
        ]
        out: list[BasisTensor] = []
        for combo in itertools.product(*choices):
            beta = tuple(b for part in combo for b in part)
            gens = [i for i in range(n - 1) if beta[i] == beta[i + 1]]
            # classes of P-orbit labels under S_beta (BFS, recording permutations)
            seen = np.full(nlab, -1, dtype=np.int64)
            done = np.zeros(nlab, dtype=bool)
            for L0 in range(nlab):
                if seen[L0] >= 0:
                    continue
                cls = {L0: list(range(n))}
                queue = [L0]
                seen[L0] = L0
                while queue:
                    L = queue.pop()
                    for i in gens:
                        L2 = int(swap_act[i][L])
                        if L2 not in cls:
                            p = list(cls[L])
                            p[i], p[i + 1] = p[i + 1], p[i]
                            cls[L2] = p
                            seen[L2] = L0
                            queue.append(L2)
                if done[L0]:
                    continue
                for L in cls:
                    done[L] = True
                # mark the conjugate class as done
                cL = int(conj_lab[L0])
                if not done[cL]:
                    stack = [cL]
                    done[cL] = True
                    while stack:
                        L = stack.pop()
                        for i in gens:
                            L2 = int(swap_act[i][L])
                            if not done[L2]:
                                done[L2] = True
                                stack.append(L2)
                if allowed_labels is not None and not (set(cls) & allowed_labels):
                    continue
                out.extend(self._class_tensors(beta, reps[L0], cls, members_arr[L0], tuples, R_of))
        return out

    def _rho(
        self, beta: tuple[int, ...], x: np.ndarray, Rs: np.ndarray, F: np.ndarray
    ) -> np.ndarray:
        """Apply point ops ``Rs`` to Bloch components ``F`` ``(d_1..d_n, k)`` at tuple ``x``.

        Returns ``(len(Rs), d_1, ..., d_n, k)``: the components at the tuples ``R x``
        (``F_{Rx} = (conj M_1 (x) ... (x) conj M_n) F_x``).
        """
        nR, n = len(Rs), len(beta)
        real = not np.iscomplexobj(F)
        shape = F.shape
        cur = F.reshape(1, shape[0], -1)  # axes cycle: (d_i | remaining..., done...)
        for i, b in enumerate(beta):
            pos = int(self.qpos_arr[b][int(x[i])])
            Mc = (self.mtr[b] if real else self.mtc[b][1])[Rs, pos]  # (nR, d, d)
            # einsum (not BLAS): tiny batched products, no thread oversubscription
            if cur.shape[0] == 1:
                G = np.einsum("rab,bx->rax", Mc, cur[0])  # (nR, d_i, rest)
            else:
                G = np.einsum("rab,rbx->rax", Mc, cur)
            G = np.ascontiguousarray(G.transpose(0, 2, 1))  # (nR, rest, d_i)
            nxt = shape[i + 1] if i + 1 < n else None
            cur = G.reshape(nR, nxt, -1) if nxt is not None else G
        # axes now (k, d_1, ..., d_n)
        out = cur.reshape(nR, shape[-1], *shape[:-1])
        return np.moveaxis(out, 1, -1)

    def _class_tensors(
        self,
        beta: tuple[int, ...],
        x0: np.ndarray,
        cls: dict[int, list[int]],
        first_members: np.ndarray,
        tuples: np.ndarray,
        R_of: np.ndarray,
    ) -> list[BasisTensor]:
        sym, n, modes = self.sym, self.n, self.modes
        blocks = [modes.blocks[b] for b in beta]
        dims = [b.d for b in blocks]
        Dtot = int(np.prod(dims))
        bgroups = _equal_groups(beta)
        # Young (symmetric) subspace for slots with equal (block, q)
        keys = [(beta[i], int(x0[i])) for i in range(n)]
        jgrid = np.indices(dims).reshape(n, -1).T  # (Dtot, n)
        canon = jgrid.copy()
        for g in bgroups:
            for qv in {int(x0[i]) for i in g}:
                sl = [i for i in g if keys[i] == (beta[g[0]], qv)]
                if len(sl) > 1:
                    canon[:, sl] = np.sort(canon[:, sl], axis=1)
        ccode = np.zeros(Dtot, dtype=np.int64)
        for i in range(n):
            ccode = ccode * max(dims) + canon[:, i]
        _, yinv, ycnt = np.unique(ccode, return_inverse=True, return_counts=True)
        DY = len(ycnt)
        Y = np.zeros((Dtot, DY))
        Y[np.arange(Dtot), yinv] = 1.0 / np.sqrt(ycnt[yinv])
        # stabilizer (mod the Young kernel): R with R x0 in S_beta x0
        Yimg = sym.qperm[:, x0]  # (P, n)
        ok = np.ones(sym.n_ops, dtype=bool)
        for g in bgroups:
            ok &= (np.sort(Yimg[:, g], axis=1) == np.sort(x0[g])).all(axis=1)
        real = all(self.selfq[b][int(x0[i])] for i, b in enumerate(beta))
        A = np.zeros((DY, DY), dtype=float if real else complex)
        F0 = Y.reshape(*dims, DY) if real else Y.reshape(*dims, DY).astype(complex)
        Rs = np.flatnonzero(ok)
        FR = self._rho(beta, x0, Rs, F0)
        by_perm: dict[tuple[int, ...], list[int]] = {}
        for r_i, R in enumerate(Rs):
            y = Yimg[R]
            perm = list(range(n))
            for g in bgroups:
                if len(g) == 1:
                    continue
                ga = np.array(g)
                oy = ga[np.argsort(y[ga], kind="stable")]
                ox = ga[np.argsort(x0[ga], kind="stable")]
                for i, j in zip(ox, oy, strict=True):
                    perm[int(i)] = int(j)
            by_perm.setdefault(tuple(perm), []).append(r_i)
        for perm, rows in by_perm.items():
            F = FR[rows].sum(axis=0)
            F = np.transpose(F, [*perm, n])
            A += Y.T @ F.reshape(Dtot, DY)
        A /= len(Rs)
        w, V = np.linalg.eigh(0.5 * (A + A.conj().T))
        sel = w > _EIG_TOL
        k = int(sel.sum())
        if k == 0:
            return []
        f = (Y @ V[:, sel]).reshape(*dims, k)
        # propagate over the class
        ys = tuples[first_members]  # (m, n)
        Fy = self._rho(beta, x0, R_of[first_members], f)  # (m, d.., k)
        xs, Fs = [], []
        for perm in cls.values():
            xs.append(ys[:, perm])
            Fs.append(np.transpose(Fy, [0, *[p + 1 for p in perm], n + 1]).reshape(-1, Dtot, k))
        X = np.concatenate(xs)  # (T, n)
        Fv = np.concatenate(Fs)  # (T, Dtot, k)
        # complex columns per slot
        posx = np.stack([self.qpos_arr[b][X[:, i]] for i, b in enumerate(beta)], axis=1)
        cols = posx[:, None, :] * np.array(dims)[None, None, :] + jgrid[None, :, :]
        cols = cols.reshape(-1, n)
        vals = Fv.reshape(-1, k)
        nz = np.abs(vals).max(axis=1) > _ZERO
        cols, vals = cols[nz], vals[nz]
        # expand to real coordinates
        tidx = [self.targets[b][0][cols[:, i]] for i, b in enumerate(beta)]
        tcoef = [self.targets[b][1][cols[:, i]] for i, b in enumerate(beta)]
        sort_pairs = [i for i in range(n - 1) if beta[i] == beta[i + 1]]
        all_idx, all_val = [], []
        for combo in itertools.product((0, 1), repeat=n):
            coef = np.ones(len(cols), dtype=complex)
            idx = np.empty((len(cols), n), dtype=np.int64)
            for i in range(n):
                coef = coef * tcoef[i][:, combo[i]]
                idx[:, i] = tidx[i][:, combo[i]]
            keep = np.abs(coef) > 0
            for i in sort_pairs:
                keep &= idx[:, i] <= idx[:, i + 1]
            if keep.any():
                all_idx.append(idx[keep])
                all_val.append(coef[keep, None] * vals[keep])
        idx = np.concatenate(all_idx)
        val = np.concatenate(all_val)
        code = np.zeros(len(idx), dtype=np.int64)
        for i in range(n):
            code = code * self.modes.M + idx[:, i]
        ucode, first, inv = np.unique(code, return_index=True, return_inverse=True)
        uidx = idx[first]
        acc = np.zeros((len(ucode), k), dtype=complex)
        np.add.at(acc, inv, val)
        mult = _perm_count(uidx)
        sq = np.sqrt(mult)[:, None]
        Xm = np.hstack([acc.real, acc.imag]) * sq
        B = canonical_basis(Xm) / sq
        r = B.shape[1]
        labels = " ".join(b.label for b in blocks)
        tensors = []
        for m in range(r):
            col = B[:, m]
            keep = np.abs(col) > _ZERO
            colk = col[keep]
            tensors.append(
                BasisTensor(
                    label=labels,
                    blocks=tuple(int(b) for b in beta),
                    qtuple=tuple(int(q) for q in x0),
                    indices=uidx[keep],
                    values=colk,
                    perms=mult[keep],
                    orbit_size=len(X) * (1 if r == k else 2),
                    units=f"eV/A^{n}",
                )
            )
        return tensors


def _finalize_labels(tensors: list[BasisTensor]) -> None:
    counts: dict[str, int] = {}
    for t in tensors:
        counts[t.label] = counts.get(t.label, 0) + 1
    seen: dict[str, int] = {}
    for t in tensors:
        base = t.label
        if counts[base] > 1:
            seen[base] = seen.get(base, 0) + 1
            t.label = f"{base} [{seen[base]}]"


def _resolve_qtuple(
    builder: _Builder,
    qtuple: Sequence[str | Sequence[float] | np.ndarray],
    n: int,
    qstars: bool = False,
) -> tuple[tuple[int, ...], dict[tuple[int, ...], set[int]] | None]:
    """Sorted unit (star) tuple and allowed orbit codes of a Q-tuple restriction."""
    sym = builder.sym
    if len(qtuple) != n:
        raise ValueError(f"Q-tuple has {len(qtuple)} entries but the order is {n}")
    qs = [sym.qpoint_index(q) for q in qtuple]
    units = [int(builder.unit_of_q[q]) for q in qs]
    if qstars:
        if min(units) < 0:
            return (), None
        ut = tuple(sorted(units))
        if len(builder.allowed_tuples(ut)) == 0:
            raise ValueError(
                "no q-tuple with the stars of "
                + ", ".join(format_qpoint(sym.qpoints[q]) for q in qs)
                + " sums to a reciprocal lattice vector"
            )
        return ut, None
    tot = sym.qn[qs].sum(axis=0) % sym.n_cells
    if np.any(tot != 0):
        raise ValueError(
            "Q-tuple does not sum to a reciprocal lattice vector: "
            + " + ".join(format_qpoint(sym.qpoints[q]) for q in qs)
            + f" = {format_qpoint(tot / sym.n_cells)} (mod 1)"
        )
    if min(units) < 0:
        return (), {}
    order = np.argsort(units, kind="stable")
    x = np.array(qs)[order]
    ut = tuple(int(u) for u in np.array(units)[order])
    codes: set[int] = set()
    for p in set(itertools.permutations(range(n))):
        xp = x[list(p)]
        if tuple(int(builder.unit_of_q[q]) for q in xp) == ut:
            codes.add(int(builder.encode(xp[None, :])[0]))
    return ut, {ut: codes}


def irreducible_basis(
    prim: Atoms | SupercellSymmetry | SymmetrizedModes,
    supercell_matrix: np.ndarray | Sequence[Sequence[int]] | int | None = None,
    order: int = 2,
    *,
    qtuple: Sequence[str | Sequence[float] | np.ndarray] | None = None,
    qstars: bool = False,
    symprec: float = 1e-5,
    seed: int = 0,
) -> IrreducibleBasis:
    """Irreducible derivative basis of a given order in a supercell.

    Parameters
    ----------
    prim : ase.Atoms, SupercellSymmetry or SymmetrizedModes
        Primitive cell (with ``supercell_matrix``), or a prepared group / mode basis.
    supercell_matrix : (3, 3) int array_like or int
        Rows are supercell vectors in the primitive basis. Ignored when ``prim`` is a
        ``SupercellSymmetry``/``SymmetrizedModes``.
    order : int
        Derivative order, 2..6.
    qtuple : sequence of n q-points, optional
        Restrict to the derivatives of one q-tuple orbit (and its conjugate). Each
        entry is a special-point name (``"G"``, ``"X"``, ``"L"``, ...) or fractional
        coordinates in the primitive reciprocal basis. The q-points must be
        commensurate with the supercell and sum to a reciprocal lattice vector.
        Names denote one point (``"X"`` is ``X = (1/2, 0, 1/2)``); give explicit
        fractions to pick other members of a star (e.g. three different X points).
    qstars : bool
        With ``qtuple``: take every q-tuple orbit whose q-points lie in the stars of
        the given q-points (the given q-points then need not sum to zero, but some
        tuple with these stars must).
    symprec : float
    seed : int
        Seed of the block decomposition (deterministic).

    Returns
    -------
    IrreducibleBasis

    Raises
    ------
    ValueError
        Order outside 2..6, singular supercell, incommensurate or non-conserving Q.
    """
    if not isinstance(order, (int, np.integer)) or not MIN_ORDER <= int(order) <= MAX_ORDER:
        raise ValueError(f"order must be an integer in {MIN_ORDER}..{MAX_ORDER}, got {order!r}")
    n = int(order)
    if isinstance(prim, SymmetrizedModes):
        modes = prim
    elif isinstance(prim, SupercellSymmetry):
        modes = symmetrized_modes(prim, seed=seed)
    else:
        if supercell_matrix is None:
            raise ValueError("supercell_matrix is required with an Atoms input")
        modes = symmetrized_modes(prim, supercell_matrix, symprec=symprec, seed=seed)
    with single_blas_thread():
        builder = _Builder(modes, n)
        if qtuple is not None:
            ut, allowed = _resolve_qtuple(builder, qtuple, n, qstars)
            tensors = builder.build(star_filter=ut, allowed_codes=allowed) if ut else []
        else:
            tensors = builder.build()
    _finalize_labels(tensors)
    return IrreducibleBasis(modes, n, tensors)


def matching_basis(modes: SymmetrizedModes, like: IrreducibleBasis) -> IrreducibleBasis:
    """The basis on another mode basis ``modes`` of the same FTG that spans what ``like``
    spans: the same q-tuple orbits, built on ``modes`` (e.g. the canonical crystal's,
    :mod:`anharmbench.symmetry.frame`).

    Raises
    ------
    RuntimeError
        If the two do not have the same number of tensors (not the same crystal and FTG).
    """
    n = like.order
    allowed: dict[tuple[int, ...], set[int]] = {}
    with single_blas_thread():
        builder = _Builder(modes, n)
        for t in like.tensors:
            qs = [like.sym.qpoints[int(q)] for q in t.qtuple]
            ut, codes = _resolve_qtuple(builder, qs, n)
            if codes:
                allowed.setdefault(ut, set()).update(codes[ut])
        tensors = [t for ut in sorted(allowed)
                   for t in builder.build(star_filter=ut, allowed_codes=allowed)]
    _finalize_labels(tensors)
    if len(tensors) != len(like):
        raise RuntimeError(f"internal error: {len(tensors)} tensors on the other modes, "
                           f"{len(like)} in the basis they should match")
    return IrreducibleBasis(modes, n, tensors)
