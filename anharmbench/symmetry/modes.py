"""Symmetrized displacement basis: real G-irreducible blocks, Bloch adapted.

The translation-free displacement space of a supercell (dimension ``3N - 3``) is
split into real subspaces irreducible under the space group restricted to the
supercell, one block per (q-star, irrep, copy). Each block spans the Bloch spaces
``V_q`` of all q in its star (together with the star of ``-q`` when that is a
different star) and stores, for each such q, an orthonormal basis ``E_q`` of its
component in the Bloch basis of :meth:`SupercellSymmetry.bloch_rep`.

Real mode columns of a block are ordered by q (star order); a q with ``2q = 0``
contributes ``d`` real modes ``E_q`` (real), a pair ``(q, -q)`` contributes ``2d``
modes ``sqrt2 Re v_q`` then ``sqrt2 Im v_q`` (``v_{-q} = conj v_q``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
from ase import Atoms

from anharmbench.symmetry._threads import single_blas_thread
from anharmbench.symmetry.group import SupercellSymmetry, as_supercell_matrix, format_qpoint
from anharmbench.symmetry.labels import LittleGroupTable
from anharmbench.symmetry.linalg import canonical_basis

__all__ = [
    "MODES_CACHE_SIZE",
    "ModeBlock",
    "SymmetrizedModes",
    "clear_modes_cache",
    "symmetrized_modes",
]

#: Kinds of the q-points in a block.
SELF, POS, NEG = 0, 1, 2


@dataclass(frozen=True)
class ModeBlock:
    """One real G-irreducible block of the displacement space (immutable: its arrays are
    read-only).

    Attributes
    ----------
    index : int
        Position in :attr:`SymmetrizedModes.blocks`.
    label : str
        ``"<star>:<irrep>"``, e.g. ``"X:Eu"``; copies of the same irrep at the same
        star get ``".1"``, ``".2"`` suffixes.
    star : int
        Index of the star of the representative q in ``sym.stars``.
    star_name : str
    irrep : str
        Mulliken label(s) of the little co-group irrep(s) at the representative q
        (``"A+B"`` when an antiunitary operation joins two), or ``"irrep<k>"``.
    qpoints : (nq,) int64
        FTG indices of the q-points spanned (star, then the star of ``-q`` if distinct).
    E : (nq, 3 n_prim, d) complex128
        Orthonormal basis of the block's component in each Bloch space ``V_q``.
    kind : (nq,) int64
        0: ``2q = 0`` (real ``E``); 1: first of a ``(q, -q)`` pair; 2: second
        (``E = conj E_partner``).
    partner : (nq,) int64
        Position of ``-q`` within ``qpoints``.
    start, stop : int
        Column slice of the block in :attr:`SymmetrizedModes.modes`.
    """

    index: int
    label: str
    star: int
    star_name: str
    irrep: str
    qpoints: np.ndarray
    E: np.ndarray
    kind: np.ndarray
    partner: np.ndarray
    start: int = 0
    stop: int = 0
    qpos: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("qpoints", "E", "kind", "partner"):
            _read_only(getattr(self, name))
        object.__setattr__(self, "qpos", MappingProxyType(dict(self.qpos)))

    @property
    def d(self) -> int:
        """Dimension of the block's component at one q."""
        return int(self.E.shape[2])

    @property
    def dim(self) -> int:
        """Real dimension of the block (number of mode columns)."""
        return self.stop - self.start

    @property
    def irrep_dim(self) -> int:
        """Alias of :attr:`dim` (dimension of the real irreducible representation)."""
        return self.dim

    @property
    def slice(self) -> slice:
        """Column slice in ``modes``."""
        return slice(self.start, self.stop)

    def real_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Map complex Bloch columns to real mode columns.

        Complex column ``c = pos * d + j`` is ``v_{q_pos, j}``. A tensor's real
        components follow from its Bloch components by ``T[a] = sum_c F[c] prod
        Cinv[c, a]`` and ``Cinv[c, :]`` has at most two nonzeros.

        Returns
        -------
        idx : (nq * d, 2) int64
            Global real mode indices (second entry duplicates the first when unused).
        coef : (nq * d, 2) complex128
            ``Cinv`` values (0 when unused).
        """
        d = self.d
        nq = len(self.qpoints)
        idx = np.zeros((nq * d, 2), dtype=np.int64)
        coef = np.zeros((nq * d, 2), dtype=complex)
        base = np.zeros(nq, dtype=np.int64)
        off = self.start
        for p in range(nq):
            if self.kind[p] == SELF:
                base[p] = off
                off += d
            elif self.kind[p] == POS:
                base[p] = off
                off += 2 * d
        s2 = 1.0 / np.sqrt(2.0)
        for p in range(nq):
            for j in range(d):
                c = p * d + j
                if self.kind[p] == SELF:
                    idx[c] = base[p] + j
                    coef[c, 0] = 1.0
                elif self.kind[p] == POS:
                    idx[c] = (base[p] + j, base[p] + d + j)
                    coef[c] = (s2, -1j * s2)
                else:
                    b = base[self.partner[p]]
                    idx[c] = (b + j, b + d + j)
                    coef[c] = (s2, 1j * s2)
        return idx, coef


class SymmetrizedModes:
    """Orthonormal symmetry-adapted modes of the translation-free displacement space.

    Parameters
    ----------
    sym : SupercellSymmetry
    seed : int
        Seed of the random commuting operator used to split isotypic components
        (deterministic output).

    Attributes
    ----------
    sym : SupercellSymmetry
    blocks : tuple[ModeBlock, ...]
    modes : (3N, M) float64
        Orthonormal columns, ``M = 3N - 3``, blocks contiguous in order (read-only).
    M : int

    Notes
    -----
    :func:`symmetrized_modes` shares one instance between its callers, so the arrays it
    holds (``modes``, the blocks' arrays, :meth:`mtable`) are read-only; copy one to
    change it.
    """

    def __init__(self, sym: SupercellSymmetry, seed: int = 0) -> None:
        self.sym = sym
        self.seed = int(seed)
        self._tables: dict[int, LittleGroupTable] = {}
        blocks: list[ModeBlock] = []
        with single_blas_thread():
            self._build(blocks)
            self.blocks: tuple[ModeBlock, ...] = self._assign_columns(blocks)
            self.modes = _read_only(self._mode_vectors())
        self.M = self.modes.shape[1]
        self._mtables: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------ building
    def _build(self, blocks: list[ModeBlock]) -> None:
        """Append the blocks of every star to ``blocks``."""
        sym = self.sym
        n3 = 3 * sym.n_prim
        wyck = sym.wyckoff_orbits()
        sublat = np.repeat(wyck + 1.0, 3)
        done_stars: set[int] = set()
        for s, star in enumerate(sym.stars):
            if s in done_stars:
                continue
            q0 = int(star[0])
            negstar = int(sym.star_of_q[sym.qneg[q0]])
            done_stars.update({s, negstar})
            little = sym.little_cogroup(q0)
            anti = np.flatnonzero(sym.qperm[:, q0] == sym.qneg[q0])
            # Space to decompose (translations removed at Gamma).
            if np.all(sym.qn[q0] == 0):
                T = np.zeros((n3, 3))
                for k in range(sym.n_prim):
                    T[3 * k : 3 * k + 3] = np.eye(3) / np.sqrt(sym.n_prim)
                U, _, _ = np.linalg.svd(T, full_matrices=True)
                Q0 = U[:, 3:].astype(complex)
            else:
                Q0 = np.eye(n3, dtype=complex)
            if Q0.shape[1] == 0:
                continue
            Dl = [Q0.conj().T @ sym.bloch_rep(int(r), q0) @ Q0 for r in little]
            Da = None
            if len(anti):
                Da = sym.bloch_rep(int(anti[0]), q0)
                if not np.allclose(Q0.imag, 0):
                    raise RuntimeError("internal error: complex Q0 with antiunitary symmetry")
                Da = Q0.conj().T @ Da @ Q0

            def symmetrize(H: np.ndarray, Dl: list[np.ndarray] = Dl, Da: np.ndarray | None = Da):
                H1 = sum(D @ H @ D.conj().T for D in Dl) / len(Dl)
                if Da is not None:
                    H1 = 0.5 * (H1 + (Da @ H1 @ Da.conj().T).conj())
                return 0.5 * (H1 + H1.conj().T)

            rng = np.random.default_rng([self.seed, int(sym.n_cells), s])
            X = rng.normal(size=(n3, n3)) + 1j * rng.normal(size=(n3, n3))
            H_rand = symmetrize(Q0.conj().T @ (X + X.conj().T) @ Q0)
            H_sub = symmetrize(Q0.conj().T @ np.diag(sublat) @ Q0)
            clusters = [np.eye(Q0.shape[1], dtype=complex)]
            for H in (H_sub, H_rand):
                new = []
                for Z in clusters:
                    h = Z.conj().T @ H @ Z
                    w, V = np.linalg.eigh(0.5 * (h + h.conj().T))
                    scale = max(1.0, float(np.abs(w).max()))
                    groups = np.split(
                        np.arange(len(w)), np.flatnonzero(np.diff(w) > 1e-7 * scale) + 1
                    )
                    for g in groups:
                        new.append(Z @ V[:, g])
                clusters = new
            table = LittleGroupTable(sym.rotations[little])
            self._tables[s] = table
            phase = np.exp(2j * np.pi * (sym.translations[little] @ sym.qpoints[q0]))
            made = []
            for ci, Z in enumerate(clusters):
                E0 = Q0 @ Z
                if np.allclose(sym.qn[q0] * 2 % sym.n_cells, 0):
                    if not np.allclose(E0.imag, 0, atol=1e-10):
                        # eigenvectors of a real symmetric matrix: rotate to real form
                        E0 = _real_basis(E0)
                    E0 = canonical_basis(E0.real).astype(complex)
                else:
                    E0 = canonical_basis(E0)
                chars = np.array(
                    [np.trace(E0.conj().T @ sym.bloch_rep(int(r), q0) @ E0) for r in little]
                )
                lab = table.label(chars * phase) or table.label(chars)
                made.append((lab, ci, E0))
            # irrep labels, sorting, copies
            fallback = {}
            for lab, ci, _ in made:
                if lab is None:
                    fallback.setdefault(ci, f"irrep{len(fallback) + 1}")
            entries = []
            for lab, ci, E0 in made:
                irrep = lab if lab is not None else fallback[ci]
                key = table.order_key(irrep) if lab is not None else 10_000 + ci
                entries.append((key, ci, irrep, E0))
            entries.sort(key=lambda e: (e[0], e[1]))
            counts: dict[str, int] = {}
            for _, _, irrep, _ in entries:
                counts[irrep] = counts.get(irrep, 0) + 1
            seen: dict[str, int] = {}
            for _, _, irrep, E0 in entries:
                seen[irrep] = seen.get(irrep, 0) + 1
                name = sym.star_names[s]
                label = f"{name}:{irrep}" + (f".{seen[irrep]}" if counts[irrep] > 1 else "")
                blocks.append(self._extend(len(blocks), s, negstar, q0, E0, label, irrep))

    def _extend(
        self, index: int, s: int, negstar: int, q0: int, E0: np.ndarray, label: str, irrep: str
    ) -> ModeBlock:
        """Extend the q0 component ``E0`` of a block to its whole star (and -star)."""
        sym = self.sym
        qlist = [int(q) for q in sym.stars[s]]
        if negstar != s:
            qlist += [int(q) for q in sym.stars[negstar]]
        pos = {q: i for i, q in enumerate(qlist)}
        nq = len(qlist)
        E = np.zeros((nq, E0.shape[0], E0.shape[1]), dtype=complex)
        kind = np.zeros(nq, dtype=np.int64)
        partner = np.array([pos[int(sym.qneg[q])] for q in qlist], dtype=np.int64)
        for p, q in enumerate(qlist):
            if int(sym.star_of_q[q]) == s:
                r = int(np.flatnonzero(sym.qperm[:, q0] == q)[0])
                E[p] = sym.bloch_rep(r, q0) @ E0
        for p, q in enumerate(qlist):
            if partner[p] == p:
                kind[p] = SELF
                if not np.allclose(E[p].imag, 0, atol=1e-10):
                    raise RuntimeError("internal error: complex basis at a q with 2q = 0")
                E[p] = E[p].real
            elif partner[p] > p:
                kind[p] = POS
                if int(sym.star_of_q[q]) != s:
                    E[p] = E[partner[p]].conj()
            else:
                kind[p] = NEG
        for p in range(nq):
            if kind[p] == NEG:
                E[p] = E[partner[p]].conj()
        return ModeBlock(
            index=index,
            label=label,
            star=s,
            star_name=sym.star_names[s],
            irrep=irrep,
            qpoints=np.array(qlist, dtype=np.int64),
            E=E,
            kind=kind,
            partner=partner,
            qpos=pos,
        )

    @staticmethod
    def _assign_columns(blocks: list[ModeBlock]) -> tuple[ModeBlock, ...]:
        """The blocks with their column slices, contiguous in order."""
        out = []
        off = 0
        for b in blocks:
            n = int(sum(b.d if k == SELF else (2 * b.d if k == POS else 0) for k in b.kind))
            out.append(replace(b, start=off, stop=off + n))
            off += n
        return tuple(out)

    def _mode_vectors(self) -> np.ndarray:
        sym = self.sym
        cols = []
        bloch: dict[int, np.ndarray] = {}
        for b in self.blocks:
            for p, q in enumerate(b.qpoints):
                if b.kind[p] == NEG:
                    continue
                q = int(q)
                if q not in bloch:
                    bloch[q] = sym.bloch_vectors(q)
                v = bloch[q] @ b.E[p]
                if b.kind[p] == SELF:
                    cols.append(v.real)
                else:
                    cols.append(np.sqrt(2.0) * v.real)
                    cols.append(np.sqrt(2.0) * v.imag)
        if not cols:
            return np.zeros((3 * sym.n_atoms, 0))
        return np.ascontiguousarray(np.hstack(cols))

    # ------------------------------------------------------------ queries
    @property
    def labels(self) -> list[str]:
        """Block labels."""
        return [b.label for b in self.blocks]

    def block_of_mode(self) -> np.ndarray:
        """Block index of each mode column: ``(M,)`` int64."""
        out = np.empty(self.M, dtype=np.int64)
        for b in self.blocks:
            out[b.start : b.stop] = b.index
        return out

    def blocks_of_star(self, s: int) -> list[ModeBlock]:
        """Blocks whose q-points include the star ``s``."""
        return [
            b
            for b in self.blocks
            if s in (b.star, int(self.sym.star_of_q[self.sym.qneg[b.qpoints[0]]]))
        ]

    def mtable(self, b: ModeBlock) -> tuple[np.ndarray, np.ndarray]:
        """Matrices of the point operations in a block's Bloch-adapted basis.

        Returns
        -------
        target : (P, nq) int64
            Position of ``q R^{-1}`` for each op and q position.
        M : (P, nq, d, d) complex128
            ``g v_{q, j} = sum_j' v_{q', j'} M[i, p, j', j]``.
        """
        if b.index in self._mtables:
            return self._mtables[b.index]
        sym = self.sym
        nq = len(b.qpoints)
        target = np.empty((sym.n_ops, nq), dtype=np.int64)
        M = np.empty((sym.n_ops, nq, b.d, b.d), dtype=complex)
        for i in range(sym.n_ops):
            for p, q in enumerate(b.qpoints):
                qp = int(sym.qperm[i, q])
                pp = b.qpos[qp]
                target[i, p] = pp
                M[i, p] = b.E[pp].conj().T @ sym.bloch_rep(i, int(q)) @ b.E[p]
        self._mtables[b.index] = (_read_only(target), _read_only(M))
        return target, M

    def star_table(self, s: int) -> LittleGroupTable | None:
        """Character table used to label the blocks of star ``s``."""
        return self._tables.get(s)

    def summary(self) -> str:
        """Human-readable table of blocks."""
        lines = [f"{'block':>5} {'label':<16} {'dim':>4} {'d_q':>4} {'nq':>3}  q0"]
        for b in self.blocks:
            lines.append(
                f"{b.index:>5} {b.label:<16} {b.dim:>4} {b.d:>4} {len(b.qpoints):>3}  "
                f"{format_qpoint(self.sym.qpoints[b.qpoints[0]])}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SymmetrizedModes(M={self.M}, blocks={self.labels})"


def _real_basis(E: np.ndarray) -> np.ndarray:
    """Real orthonormal basis of a conjugation-invariant complex column space."""
    d = E.shape[1]
    U, sv, _ = np.linalg.svd(np.hstack([E.real, E.imag]), full_matrices=False)
    return U[:, :d]


def _read_only(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only in place (shared by every user of a cached object)."""
    a.flags.writeable = False
    return a


#: How many supercells :func:`symmetrized_modes` keeps (least recently used dropped).
#: A study uses a few (the FTGs of orders 2-4 and the primitive cell).
MODES_CACHE_SIZE = 8


@dataclass(frozen=True)
class _ModesKey:
    """What fixes the modes of a supercell: the primitive cell's lattice, positions and
    species, the supercell matrix, ``symprec`` and ``seed``. ``prim`` (a private copy)
    rides along without being compared."""

    cell: bytes
    positions: bytes
    numbers: bytes
    supercell_matrix: tuple[tuple[int, ...], ...]
    symprec: float
    seed: int
    prim: Atoms = field(compare=False, hash=False, repr=False)


@functools.lru_cache(maxsize=MODES_CACHE_SIZE)
def _cached_modes(key: _ModesKey) -> SymmetrizedModes:
    sym = SupercellSymmetry(key.prim, np.array(key.supercell_matrix), symprec=key.symprec)
    # the group belongs to the cache alone: freeze its arrays as the modes' are
    for value in vars(sym).values():
        for array in value if isinstance(value, list) else [value]:
            if isinstance(array, np.ndarray):
                _read_only(array)
    return SymmetrizedModes(sym, seed=key.seed)


def clear_modes_cache() -> None:
    """Empty the cache of :func:`symmetrized_modes` (frees its memory; later calls rebuild)."""
    _cached_modes.cache_clear()


def symmetrized_modes(
    prim: Atoms | SupercellSymmetry,
    supercell_matrix: np.ndarray | int | None = None,
    symprec: float = 1e-5,
    seed: int = 0,
) -> SymmetrizedModes:
    """Build (or fetch from a cache) the symmetrized modes of a supercell.

    With an ``Atoms`` input the result is cached: the last :data:`MODES_CACHE_SIZE`
    supercells (least recently used dropped), keyed by the primitive cell's lattice,
    positions and species, the supercell matrix, ``symprec`` and ``seed``. Callers share
    the cached object, so its arrays are read-only; it keeps a copy of ``prim``, so
    changing ``prim`` afterwards does not touch it. :func:`clear_modes_cache` empties
    the cache. A :class:`SupercellSymmetry` input is not cached.

    Parameters
    ----------
    prim : ase.Atoms or SupercellSymmetry
        Primitive cell (then ``supercell_matrix`` is required) or a prepared group.
    supercell_matrix : (3, 3) int array_like or int, optional
    symprec : float
    seed : int

    Returns
    -------
    SymmetrizedModes
    """
    if isinstance(prim, SupercellSymmetry):
        return SymmetrizedModes(prim, seed=seed)
    if supercell_matrix is None:
        raise ValueError("supercell_matrix is required with an Atoms input")
    key = _ModesKey(
        cell=prim.cell.array.tobytes(),
        positions=prim.get_scaled_positions().tobytes(),
        numbers=prim.numbers.tobytes(),
        supercell_matrix=tuple(map(tuple, as_supercell_matrix(supercell_matrix).tolist())),
        symprec=float(symprec),
        seed=int(seed),
        prim=prim.copy(),
    )
    return _cached_modes(key)
