"""The space group of a crystal restricted to a periodic supercell.

Conventions
-----------
* Fractional coordinates are *column* vectors in the primitive basis: an operation
  ``{R|tau}`` (spglib's ``rotations``/``translations``) maps ``x -> R x + tau``.
* A supercell is given by an integer matrix ``S`` whose rows are the supercell
  vectors in the primitive basis (``ase.build.make_supercell(prim, S)``), so the
  supercell lattice is ``{S^T m : m in Z^3}`` and it holds ``N_cells = |det S|``
  primitive cells.
* Atoms of the supercell are ordered exactly as ``ase.build.make_supercell`` orders
  them; atom ``a`` sits at ``x_kappa + l`` with ``kappa = atom_kappa[a]`` and
  ``l = cell_vectors[atom_cell[a]]``.
* A q-point is a *row* vector ``q`` of fractions of the primitive reciprocal basis;
  the Bloch phase of cell ``l`` is ``exp(2 pi i q . l)``. The q-points commensurate
  with ``S`` (the finite translation group, FTG) are ``q = S^{-1} n mod 1``. They
  are stored exactly as integer vectors ``qn = D q mod D`` with ``D = |det S|``.
  A rotation maps ``q -> q R^{-1}`` (row vector).
* A group element ``g = {R|tau + t}`` acts on a displacement field ``u`` (shape
  ``(N, 3)``, Angstrom) as ``(g u)[perm[g, a]] = R_cart u[a]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from fractions import Fraction
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import spglib
from ase import Atoms
from ase.build import make_supercell

__all__ = ["SupercellSymmetry", "as_supercell_matrix", "format_qpoint"]

#: Preference order of special-point names for naming a star.
_NAME_PRIORITY = ("G", "X", "L", "W", "K", "U", "M", "A", "R", "H", "N", "P", "T", "Z", "Y", "S")


def as_supercell_matrix(supercell_matrix: Sequence[Sequence[int]] | np.ndarray | int) -> np.ndarray:
    """Validate a supercell matrix.

    Parameters
    ----------
    supercell_matrix : (3, 3) array_like of int, or int
        Rows are supercell vectors in the primitive basis. An integer ``k`` means ``k I``.

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` int64 matrix.

    Raises
    ------
    ValueError
        If the matrix is not a 3x3 integer matrix or is singular.
    """
    S = np.asarray(supercell_matrix)
    if S.ndim == 0:
        S = int(S) * np.eye(3, dtype=np.int64)
    if S.shape != (3, 3):
        raise ValueError(f"supercell matrix must be 3x3, got shape {S.shape}")
    if not np.allclose(S, np.rint(S)):
        raise ValueError("supercell matrix must be integer")
    S = np.rint(S).astype(np.int64)
    det = int(round(np.linalg.det(S)))
    if det == 0:
        raise ValueError(f"supercell matrix is singular (det = 0):\n{S}")
    return S


def format_qpoint(q: np.ndarray | Sequence[float], max_den: int = 1000) -> str:
    """Format fractional q-point coordinates, e.g. ``"(1/4,0,1/2)"``."""
    parts = [str(Fraction(float(x)).limit_denominator(max_den)) for x in q]
    return "(" + ",".join(parts) + ")"


class SupercellSymmetry:
    """Space group of a primitive crystal restricted to a supercell.

    The group is ``G = {R|tau_R + t}``: the point operations ``R`` (with spglib's
    fractional translations ``tau_R``) that preserve the supercell lattice, times the
    primitive translations ``t`` modulo the supercell lattice; ``|G| = n_point_ops *
    n_cells``. Element ``g = i_R * n_cells + i_t``.

    Parameters
    ----------
    prim : ase.Atoms
        Primitive cell (must be primitive: spglib must find no pure translation).
    supercell_matrix : (3, 3) array_like of int, or int
        Rows are supercell vectors in the primitive basis (``make_supercell``
        convention). Must be non-singular.
    symprec : float
        spglib tolerance (Angstrom).

    Attributes
    ----------
    prim : ase.Atoms
    S : (3, 3) int64 array
    supercell : ase.Atoms
        ``make_supercell(prim, S)``; defines the atom order of every supercell array.
    n_prim, n_cells, n_atoms : int
    rotations : (P, 3, 3) int64
        Fractional point rotations (column convention) kept in the group.
    translations : (P, 3) float64
        Their fractional translations ``tau_R``.
    cart_rotations : (P, 3, 3) float64
        Cartesian rotations ``A^T R A^{-T}`` (``A`` = rows are primitive vectors).
    prim_perm : (P, n_prim) int64
        ``{R|tau}`` maps primitive atom ``kappa`` to ``prim_perm[i, kappa]``...
    prim_shift : (P, n_prim, 3) int64
        ...in cell ``prim_shift[i, kappa] = R x_kappa + tau - x_kappa'``.
    cell_vectors : (n_cells, 3) int64
        Primitive lattice vectors of the cells.
    atom_kappa, atom_cell : (n_atoms,) int64
    atom_index : (n_cells, n_prim) int64
        Inverse map ``(cell, kappa) -> supercell atom``.
    qn : (n_cells, 3) int64
        FTG q-points as ``D q mod D`` (``D = n_cells``); ``qpoints = qn / D``.
    qperm : (P, n_cells) int64
        Index of ``q R^{-1}``.
    qneg : (n_cells,) int64
        Index of ``-q``.
    stars : list of (k,) int64 arrays
        Star of q under the kept point group, representative first.
    """

    def __init__(
        self,
        prim: Atoms,
        supercell_matrix: Sequence[Sequence[int]] | np.ndarray | int,
        symprec: float = 1e-5,
    ) -> None:
        self.prim = prim
        self.S = as_supercell_matrix(supercell_matrix)
        self.symprec = float(symprec)
        self.det = int(round(np.linalg.det(self.S)))
        self.n_cells = abs(self.det)
        self.n_prim = len(prim)
        self.n_atoms = self.n_prim * self.n_cells
        self.lattice = np.array(prim.cell.array, dtype=float)
        if abs(np.linalg.det(self.lattice)) < 1e-8:
            raise ValueError("primitive cell has a singular lattice")
        self.frac = prim.get_scaled_positions(wrap=True)

        self._init_point_group()
        self._init_supercell()
        self._init_qpoints()

    # ------------------------------------------------------------------ setup
    def _init_point_group(self) -> None:
        cell = (self.lattice, self.frac, self.prim.numbers)
        sym = spglib.get_symmetry(cell, symprec=self.symprec)
        if sym is None:
            raise ValueError("spglib could not determine the symmetry of the primitive cell")
        rots = np.asarray(sym["rotations"], dtype=np.int64)
        trans = np.asarray(sym["translations"], dtype=float)
        ident = np.array([np.array_equal(r, np.eye(3, dtype=np.int64)) for r in rots])
        if ident.sum() > 1:
            raise ValueError(
                "the input cell is not primitive (spglib finds pure translations); "
                "pass a primitive cell"
            )
        # Order: identity first, then spglib order.
        order = np.argsort(~ident, kind="stable")
        rots, trans = rots[order], trans[order]
        trans = trans - np.floor(trans + 1e-9)
        self.full_point_group_order = len(rots)

        # Keep the operations that preserve the supercell lattice: S^{-T} R S^T integer.
        ST = self.S.T.astype(float)
        keep = []
        for r in rots:
            m = np.linalg.solve(ST, r @ ST)
            keep.append(np.allclose(m, np.rint(m), atol=1e-8))
        keep = np.array(keep)
        if not keep.all():
            warnings.warn(
                f"{int((~keep).sum())} of {len(rots)} point operations do not preserve the "
                f"supercell lattice of S = {self.S.tolist()}; keeping the subgroup of order "
                f"{int(keep.sum())}",
                stacklevel=3,
            )
        self.rotations = rots[keep]
        self.translations = trans[keep]
        self.n_ops = len(self.rotations)
        A = self.lattice
        self.cart_rotations = np.einsum("ij,njk,kl->nil", A.T, self.rotations, np.linalg.inv(A.T))
        self.rotations_inv = np.rint(np.linalg.inv(self.rotations)).astype(np.int64)

        # Action on primitive atoms.
        n = self.n_prim
        perm = np.empty((self.n_ops, n), dtype=np.int64)
        shift = np.empty((self.n_ops, n, 3), dtype=np.int64)
        for i, (r, t) in enumerate(zip(self.rotations, self.translations, strict=True)):
            img = self.frac @ r.T + t
            for k in range(n):
                diff = img[k][None, :] - self.frac
                dr = diff - np.rint(diff)
                dist = np.linalg.norm(dr @ A, axis=1)
                match = np.flatnonzero(
                    (dist < max(10 * self.symprec, 1e-6))
                    & (self.prim.numbers == self.prim.numbers[k])
                )
                if len(match) != 1:
                    raise ValueError("could not map atoms under a symmetry operation")
                j = int(match[0])
                perm[i, k] = j
                shift[i, k] = np.rint(diff[j]).astype(np.int64)
        self.prim_perm = perm
        self.prim_shift = shift

        # Multiplication table of the kept point group.
        keys = {r.tobytes(): i for i, r in enumerate(self.rotations)}
        self.point_mult = np.array(
            [[keys[(a @ b).tobytes()] for b in self.rotations] for a in self.rotations],
            dtype=np.int64,
        )
        self.point_inv = np.array([keys[ri.tobytes()] for ri in self.rotations_inv], dtype=np.int64)

    def _reduce_cells(self, l: np.ndarray) -> np.ndarray:
        """Reduce integer lattice vectors ``(..., 3)`` mod the supercell lattice."""
        det = self.det
        adj = np.rint(np.linalg.inv(self.S) * det).astype(np.int64)
        a = l @ adj
        den = det
        if den < 0:
            a, den = -a, -den
        m = np.floor_divide(a, den)
        return l - m @ self.S

    def _cell_codes(self, l: np.ndarray) -> np.ndarray:
        r = self._reduce_cells(l)
        b = 4 * int(np.abs(self.S).sum()) + 8
        return ((r[..., 0] + b) * (2 * b + 1) + (r[..., 1] + b)) * (2 * b + 1) + (r[..., 2] + b)

    def _init_supercell(self) -> None:
        sc = make_supercell(self.prim, self.S)
        self.supercell = sc
        f = sc.positions @ np.linalg.inv(self.lattice)
        kappa = np.empty(len(sc), dtype=np.int64)
        cellv = np.empty((len(sc), 3), dtype=np.int64)
        for a in range(len(sc)):
            d = f[a][None, :] - self.frac
            dr = d - np.rint(d)
            dist = np.linalg.norm(dr @ self.lattice, axis=1)
            k = int(np.argmin(dist))
            if dist[k] > 1e-4 or sc.numbers[a] != self.prim.numbers[k]:
                raise ValueError("could not identify a supercell atom with a primitive atom")
            kappa[a] = k
            cellv[a] = np.rint(d[k]).astype(np.int64)
        codes = self._cell_codes(cellv)
        uniq, first = np.unique(codes, return_index=True)
        if len(uniq) != self.n_cells:
            raise ValueError("inconsistent supercell: wrong number of distinct cells")
        # Cells numbered in order of first appearance in the supercell.
        order = np.argsort(first)
        self._cell_code_sorted = uniq
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[order] = np.arange(len(uniq))
        self._cell_rank = rank
        self.cell_vectors = cellv[first[order]]
        self.atom_kappa = kappa
        self.atom_cell = rank[np.searchsorted(uniq, codes)]
        self.atom_index = np.full((self.n_cells, self.n_prim), -1, dtype=np.int64)
        self.atom_index[self.atom_cell, self.atom_kappa] = np.arange(len(sc))
        if (self.atom_index < 0).any():
            raise ValueError("inconsistent supercell: missing (cell, atom) pairs")

    def cell_index(self, l: np.ndarray) -> np.ndarray:
        """Index of the cell holding lattice vectors ``l`` (``(..., 3)`` int), mod supercell."""
        codes = self._cell_codes(np.asarray(l, dtype=np.int64))
        pos = np.searchsorted(self._cell_code_sorted, codes)
        return self._cell_rank[pos]

    def _init_qpoints(self) -> None:
        D = self.n_cells
        adj = np.rint(np.linalg.inv(self.S) * self.det).astype(np.int64)
        sign = 1 if self.det > 0 else -1
        gens = [(sign * adj[:, j]) % D for j in range(3)]
        seen = {(0, 0, 0)}
        frontier = [np.zeros(3, dtype=np.int64)]
        while frontier:
            new = []
            for q in frontier:
                for g in gens:
                    p = (q + g) % D
                    key = tuple(int(x) for x in p)
                    if key not in seen:
                        seen.add(key)
                        new.append(p)
            frontier = new
        if len(seen) != D:
            raise ValueError("internal error: wrong number of FTG q-points")
        qn = np.array(sorted(seen), dtype=np.int64).reshape(-1, 3)
        self.qn = qn
        self.qpoints = qn / D
        self._qcode = {tuple(int(x) for x in q): i for i, q in enumerate(qn)}
        # q -> q R^{-1} (row vector)
        qperm = np.empty((self.n_ops, D), dtype=np.int64)
        for i, rinv in enumerate(self.rotations_inv):
            img = (qn @ rinv) % D
            qperm[i] = [self._qcode[tuple(int(x) for x in v)] for v in img]
        self.qperm = qperm
        self.qneg = np.array([self._qcode[tuple(int(x) for x in (-q) % D)] for q in qn])

        # Stars (under the kept point group) with a representative chosen by name.
        special = self._special_points()
        assigned = np.full(D, -1, dtype=np.int64)
        stars: list[np.ndarray] = []
        names: list[str] = []
        for i0 in range(D):
            if assigned[i0] >= 0:
                continue
            members = np.unique(qperm[:, i0])
            rep, name = int(members.min()), None
            for nm in _NAME_PRIORITY + tuple(sorted(special)):
                if nm in special and special[nm] in set(members.tolist()):
                    rep, name = special[nm], nm
                    break
            if name is None:
                name = format_qpoint(self.qn[rep] / D)
            ordered = [rep] + [int(m) for m in members if m != rep]
            assigned[members] = len(stars)
            stars.append(np.array(ordered, dtype=np.int64))
            names.append(name)
        self.stars = stars
        self.star_names = names
        self.star_of_q = assigned

    def _special_points(self) -> dict[str, int]:
        """Map standard special-point names to FTG q indices (when commensurate)."""
        try:
            pts = self.prim.cell.bandpath(npoints=0).special_points
        except Exception:  # pragma: no cover - exotic cells
            pts = {"G": np.zeros(3)}
        out: dict[str, int] = {}
        for name, q in pts.items():
            idx = self.find_qpoint(np.asarray(q, dtype=float))
            if idx is not None:
                out[name] = idx
        return out

    # ------------------------------------------------------------ q-points
    def find_qpoint(self, q: np.ndarray | Sequence[float]) -> int | None:
        """Index of a fractional q-point in the FTG (mod 1), or ``None`` if incommensurate."""
        q = np.asarray(q, dtype=float).reshape(3)
        x = q * self.n_cells
        if not np.allclose(x, np.rint(x), atol=1e-6):
            return None
        key = tuple(int(v) for v in np.rint(x).astype(np.int64) % self.n_cells)
        return self._qcode.get(key)

    def qpoint_index(self, q: str | np.ndarray | Sequence[float]) -> int:
        """Index of a q-point given by name (``"G"``, ``"X"``, ...) or fractions.

        Raises
        ------
        ValueError
            If the name is unknown or the q-point is not commensurate with the supercell.
        """
        if isinstance(q, str):
            name = "G" if q in ("Gamma", "GM", "Γ") else q
            pts = self.prim.cell.bandpath(npoints=0).special_points
            if name not in pts:
                raise ValueError(f"unknown special point {q!r}; known: {sorted(pts)}")
            idx = self.find_qpoint(pts[name])
            if idx is None:
                raise ValueError(
                    f"q-point {q} = {format_qpoint(pts[name])} is not commensurate with "
                    f"the supercell S = {self.S.tolist()}"
                )
            return idx
        idx = self.find_qpoint(q)
        if idx is None:
            raise ValueError(
                f"q-point {format_qpoint(np.asarray(q, dtype=float))} is not commensurate "
                f"with the supercell S = {self.S.tolist()}"
            )
        return idx

    def little_cogroup(self, iq: int) -> np.ndarray:
        """Indices of point operations with ``q R^{-1} = q`` (mod 1)."""
        return np.flatnonzero(self.qperm[:, iq] == iq)

    def star_name_of(self, iq: int) -> str:
        """Name of the star containing q-point ``iq`` (e.g. ``"X"`` for every X point)."""
        return self.star_names[int(self.star_of_q[iq])]

    def q_name(self, iq: int) -> str:
        """Star name if ``iq`` is its star's representative, else fraction string."""
        s = int(self.star_of_q[iq])
        if int(self.stars[s][0]) == iq:
            return self.star_names[s]
        return format_qpoint(self.qpoints[iq])

    @cached_property
    def _bloch_cache(self) -> dict[tuple[int, int], np.ndarray]:
        return {}

    def bloch_rep(self, i_op: int, iq: int) -> np.ndarray:
        """Matrix of ``{R|tau}`` from the Bloch space at ``q`` to that at ``q' = q R^{-1}``.

        The Bloch basis at ``q`` is ``b^q_{kappa alpha} = sum_l e_{(kappa,l),alpha}
        exp(2 pi i q.l) / sqrt(N_cells)``. Then ``g b^q_{kappa alpha} = sum_beta
        D[(kappa' beta), (kappa alpha)] b^{q'}_{kappa' beta}``.

        Returns
        -------
        numpy.ndarray
            ``(3 n_prim, 3 n_prim)`` complex128, unitary.
        """
        key = (i_op, iq)
        cache = self._bloch_cache
        if key in cache:
            return cache[key]
        n = self.n_prim
        iqp = int(self.qperm[i_op, iq])
        qp = self.qn[iqp]
        R = self.cart_rotations[i_op]
        D = np.zeros((3 * n, 3 * n), dtype=complex)
        for k in range(n):
            kp = int(self.prim_perm[i_op, k])
            ph = np.exp(
                -2j * np.pi * int(qp @ self.prim_shift[i_op, k] % self.n_cells) / self.n_cells
            )
            D[3 * kp : 3 * kp + 3, 3 * k : 3 * k + 3] = ph * R
        cache[key] = D
        return D

    def bloch_vectors(self, iq: int) -> np.ndarray:
        """Bloch basis at ``q`` as Cartesian supercell vectors.

        Returns
        -------
        numpy.ndarray
            ``(3 N, 3 n_prim)`` complex128 with orthonormal columns ``b^q_{kappa alpha}``.
        """
        n = self.n_prim
        ph = np.exp(2j * np.pi * ((self.cell_vectors @ self.qn[iq]) % self.n_cells) / self.n_cells)
        B = np.zeros((self.n_atoms, 3, n, 3), dtype=complex)
        a = np.arange(self.n_atoms)
        for al in range(3):
            B[a, al, self.atom_kappa, al] = ph[self.atom_cell] / np.sqrt(self.n_cells)
        return B.reshape(3 * self.n_atoms, 3 * n)

    # ------------------------------------------------------------ the group
    @property
    def order(self) -> int:
        """``|G| = n_ops * n_cells``."""
        return self.n_ops * self.n_cells

    @cached_property
    def perms(self) -> np.ndarray:
        """Atom permutations of all group elements.

        Returns
        -------
        numpy.ndarray
            ``(|G|, N)`` int64; element ``g = i_R * n_cells + i_t`` maps atom ``a`` to
            ``perms[g, a]``.
        """
        out = np.empty((self.order, self.n_atoms), dtype=np.int64)
        lvec = self.cell_vectors[self.atom_cell]  # (N, 3)
        for i in range(self.n_ops):
            kp = self.prim_perm[i][self.atom_kappa]
            base = lvec @ self.rotations[i].T + self.prim_shift[i][self.atom_kappa]
            for t in range(self.n_cells):
                c = self.cell_index(base + self.cell_vectors[t])
                out[i * self.n_cells + t] = self.atom_index[c, kp]
        return out

    def element(self, g: int) -> tuple[int, np.ndarray]:
        """``(point-op index, translation (3,) int)`` of element ``g``."""
        return g // self.n_cells, self.cell_vectors[g % self.n_cells]

    def rotation_of(self, g: int | np.ndarray) -> np.ndarray:
        """Cartesian rotation(s) of element(s) ``g``: ``(..., 3, 3)`` float64."""
        return self.cart_rotations[np.asarray(g) // self.n_cells]

    def apply(self, g: int, u: np.ndarray) -> np.ndarray:
        """Apply element ``g`` to displacement(s) ``u`` of shape ``(..., N, 3)`` (or ``(..., 3N)``).

        Returns the transformed displacements with the same shape.
        """
        u = np.asarray(u)
        pairs = u.ndim >= 2 and u.shape[-2:] == (self.n_atoms, 3)
        v = u if pairs else u.reshape(*u.shape[:-1], self.n_atoms, 3)
        out = np.empty_like(v, dtype=np.result_type(v, float))
        out[..., self.perms[g], :] = v @ self.rotation_of(g).T
        return out.reshape(u.shape)

    def matrix(self, g: int) -> sp.csr_matrix:
        """Sparse ``(3N, 3N)`` orthogonal matrix of element ``g`` (acting on flattened ``u``)."""
        N = self.n_atoms
        R = self.rotation_of(g)
        p = self.perms[g]
        rows = (3 * p[:, None, None] + np.arange(3)[None, :, None]) * np.ones((1, 1, 3), int)
        cols = (3 * np.arange(N)[:, None, None] + np.arange(3)[None, None, :]) * np.ones(
            (1, 3, 1), int
        )
        vals = np.broadcast_to(R, (N, 3, 3))
        m = sp.coo_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * N, 3 * N))
        return m.tocsr()

    def translation_vectors(self) -> np.ndarray:
        """Orthonormal rigid translations: ``(3N, 3)`` float64."""
        T = np.zeros((self.n_atoms, 3, 3))
        for a in range(3):
            T[:, a, a] = 1.0 / np.sqrt(self.n_atoms)
        return T.reshape(3 * self.n_atoms, 3)

    def wyckoff_orbits(self) -> np.ndarray:
        """Orbit index of each primitive atom under the point operations: ``(n_prim,)`` int."""
        lab = np.arange(self.n_prim)
        changed = True
        while changed:
            changed = False
            for i in range(self.n_ops):
                for k in range(self.n_prim):
                    j = self.prim_perm[i, k]
                    m = min(lab[k], lab[j])
                    if lab[k] != m or lab[j] != m:
                        lab[k] = lab[j] = m
                        changed = True
        _, inv = np.unique(lab, return_inverse=True)
        return inv

    def __repr__(self) -> str:
        return (
            f"SupercellSymmetry({self.prim.get_chemical_formula()}, S={self.S.tolist()}, "
            f"N={self.n_atoms}, |P|={self.n_ops}, |G|={self.order}, "
            f"stars={[n for n in self.star_names]})"
        )
