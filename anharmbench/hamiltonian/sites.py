"""Lattice bookkeeping of the Taylor expansion: supercell sites and their periodic images.

Every atom of a supercell of the primitive cell is a primitive site ``kappa`` in a primitive
cell ``l`` (:class:`SupercellSites`); a target cell ``T`` holds the derivatives of an FTG
``S`` only if ``T = M S`` with ``M`` integer (:func:`check_commensurate`); and the
expansion spreads each FTG atom over its ``S``-lattice images nearest to a center, with
ties broken along a direction (:class:`NearestImages`, the Wigner-Seitz rule of the ``"pair"``
and ``"centers"`` schemes described in :mod:`anharmbench.hamiltonian.expansion`, also used by
:class:`~anharmbench.observables.force_constants.LatticeTensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce

from anharmbench.structures import build_supercell

__all__ = [
    "TIE_DIRECTION",
    "TIE_TOL",
    "ExpansionError",
    "NearestImages",
    "SupercellSites",
    "check_commensurate",
]

#: Relative distance tolerance (of the cell size) under which two images are a tie.
TIE_TOL = 1e-6

#: Generic direction (no symmetry) that breaks ties between equidistant images; the
#: expansion averages over its images under the point group, so the result does not
#: depend on it beyond the choice among tied clusters.
TIE_DIRECTION = np.array([0.8142, 0.4721, 0.3383]) / np.linalg.norm([0.8142, 0.4721, 0.3383])


class ExpansionError(ValueError):
    """The derivatives cannot be expanded as asked (structure, FTG, order or cell)."""


# ----------------------------------------------------------------- lattice bookkeeping
@dataclass(frozen=True)
class SupercellSites:
    """Atoms of ``make_supercell(prim, S)`` as (primitive site, primitive cell) pairs.

    Attributes
    ----------
    S
        ``(3, 3)`` int64 supercell matrix (rows = supercell vectors, primitive basis).
    atoms
        The supercell (atom order of ``ase.build.make_supercell``).
    kappa
        ``(N,)`` int64 primitive site of each atom.
    cells
        ``(N, 3)`` int64 primitive cell vector ``l`` of each atom (position =
        ``(x_kappa + l) @ A``, ``A`` the primitive cell, rows).
    """

    S: np.ndarray
    atoms: Atoms
    kappa: np.ndarray
    cells: np.ndarray
    _adj: np.ndarray
    _det: int
    _codes: np.ndarray
    _order: np.ndarray

    @classmethod
    def build(cls, prim: Atoms, S: np.ndarray, atoms: Atoms | None = None) -> SupercellSites:
        """Sites of ``atoms`` (default ``build_supercell(prim, S)``), a supercell of ``prim``.

        Raises
        ------
        ExpansionError
            When an atom of ``atoms`` is not a lattice translate of a primitive site of
            the same element.
        """
        S = np.asarray(S, dtype=np.int64)
        if atoms is None:
            atoms = build_supercell(prim, S)
        A = np.asarray(prim.cell.array, dtype=float)
        xprim = prim.get_scaled_positions(wrap=False)
        frac = np.asarray(atoms.positions, dtype=float) @ np.linalg.inv(A)
        diff = frac[:, None, :] - xprim[None, :, :]  # (N, n_prim, 3)
        dev = np.abs(diff - np.rint(diff)).max(axis=2)
        same = np.asarray(atoms.numbers)[:, None] == np.asarray(prim.numbers)[None, :]
        dev = np.where(same, dev, np.inf)
        kappa = np.argmin(dev, axis=1)
        if not (dev[np.arange(len(atoms)), kappa] < 1e-5).all():
            raise ExpansionError(
                "the supercell's atoms are not lattice translates of the primitive cell's "
                "sites (different structure or lattice constant?)"
            )
        cells = np.rint(diff[np.arange(len(atoms)), kappa]).astype(np.int64)
        det = int(round(np.linalg.det(S)))
        adj = np.rint(np.linalg.inv(S) * det).astype(np.int64)
        n_prim = len(prim)
        if len(atoms) != n_prim * abs(det):
            raise ExpansionError(
                f"supercell has {len(atoms)} atoms, expected {n_prim} x |det S| = "
                f"{n_prim * abs(det)}"
            )
        codes = cls._encode(kappa, cells, adj, det)
        order = np.argsort(codes)
        if np.any(np.diff(codes[order]) == 0):
            raise ExpansionError("two atoms of the supercell sit on the same lattice site")
        return cls(S, atoms, kappa.astype(np.int64), cells, adj, det, codes[order], order)

    @staticmethod
    def _encode(kappa: np.ndarray, cells: np.ndarray, adj: np.ndarray, det: int) -> np.ndarray:
        d = abs(det)
        red = (np.asarray(cells, dtype=np.int64) @ adj) % d  # l mod the supercell lattice
        return ((np.asarray(kappa, dtype=np.int64) * d + red[..., 0]) * d + red[..., 1]) * d + red[
            ..., 2
        ]

    @property
    def natoms(self) -> int:
        """Number of atoms ``N``."""
        return len(self.kappa)

    def index(self, kappa: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Atom index of primitive site ``kappa`` in cell ``cells`` (any lattice translate).

        Parameters
        ----------
        kappa
            ``(...)`` int primitive sites.
        cells
            ``(..., 3)`` int primitive cell vectors.

        Returns
        -------
        numpy.ndarray
            ``(...)`` int64 atom indices of this supercell.
        """
        codes = self._encode(kappa, cells, self._adj, self._det)
        pos = np.searchsorted(self._codes, codes)
        return self._order[pos]

    def translation_table(self) -> np.ndarray:
        """``(N_cells, N)`` int64: atom ``J`` moved by the cell vector of cell ``t``.

        Row ``t`` is the permutation of the translation by ``cells`` of the ``t``-th
        home-site atom (``kappa == 0`` atoms, in atom order).
        """
        shifts = self.cells[self.kappa == 0]
        return self.index(
            np.broadcast_to(self.kappa, (len(shifts), self.natoms)),
            self.cells[None, :, :] + shifts[:, None, :],
        )


def check_commensurate(target: np.ndarray, ftg: np.ndarray, order: int | None = None) -> np.ndarray:
    """``M = T S^-1``, refusing a target cell that is not a supercell of the FTG.

    Parameters
    ----------
    target, ftg
        ``(3, 3)`` integer supercell matrices ``T`` and ``S`` (rows = supercell vectors in
        the primitive basis).
    order
        The derivative order (for the message only).

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` int64 ``M`` with ``T = M S``.

    Raises
    ------
    ExpansionError
        When ``T S^-1`` is not an integer matrix.
    """
    T = np.asarray(target, dtype=np.int64)
    S = np.asarray(ftg, dtype=np.int64)
    M = T @ np.linalg.inv(S)
    if not np.allclose(M, np.rint(M), atol=1e-8):
        what = f"of order {order} " if order is not None else ""
        raise ExpansionError(
            f"the target cell T = {T.tolist()} is not commensurate with the FTG {what}"
            f"S = {S.tolist()}: T S^-1 = {np.round(M, 4).tolist()} is not an integer matrix, "
            "so the S-periodic derivatives do not fit in T. Use a T whose lattice is a "
            "sublattice of S's (T = M S with M integer), e.g. 4I for 2I and S_C."
        )
    return np.rint(M).astype(np.int64)


def _same_structure(a: Atoms, b: Atoms, tol: float = 1e-6) -> str | None:
    """None if ``a`` and ``b`` are the same primitive crystal, else the difference."""
    if len(a) != len(b) or list(a.numbers) != list(b.numbers):
        return f"{a.get_chemical_formula()} ({len(a)} atoms) vs {b.get_chemical_formula()}"
    if not np.allclose(a.cell.array, b.cell.array, atol=tol, rtol=0):
        return f"cell {np.round(a.cell.array, 6).tolist()} vs {np.round(b.cell.array, 6).tolist()}"
    d = a.get_scaled_positions(wrap=False) - b.get_scaled_positions(wrap=False)
    if np.abs(d - np.rint(d)).max() > tol:
        return "different atomic positions"
    return None


# ----------------------------------------------------------------- images
class NearestImages:
    """Nearest ``S``-lattice images of the atoms of an FTG about a point.

    The Wigner-Seitz rule shared by the expansion's ``"pair"`` and ``"centers"`` schemes
    and by :class:`~anharmbench.observables.force_constants.LatticeTensor`: each FTG atom
    is represented by its periodic image(s) nearest to a center; images closer than
    ``TIE_TOL`` (relative to the cell size) are a tie, broken (if asked) along a direction.

    Parameters
    ----------
    prim
        Primitive cell (the FTG's sites are in its basis).
    ftg
        Sites of the FTG supercell ``S``.

    Attributes
    ----------
    ftg : SupercellSites
        The FTG sites.
    A : numpy.ndarray
        ``(3, 3)`` float64 primitive cell (rows), Angstrom.
    xprim : numpy.ndarray
        ``(n_prim, 3)`` float64 fractional positions of the primitive sites (unwrapped).
    red_S : numpy.ndarray
        ``(3, 3)`` int64 Minkowski-reduced basis of the lattice of ``S`` (primitive basis).
    tol : float
        Absolute tie tolerance, Angstrom.
    """

    def __init__(self, prim: Atoms, ftg: SupercellSites) -> None:
        self.ftg = ftg
        self.A = np.asarray(prim.cell.array, dtype=float)
        self.xprim = prim.get_scaled_positions(wrap=False)
        B = ftg.S.astype(float) @ self.A  # supercell lattice, rows
        # reduced, a +-2 grid about the rounded coordinates finds the nearest image
        _, op = minkowski_reduce(B)
        self.red_S = np.asarray(op, dtype=np.int64) @ ftg.S  # reduced, same lattice
        self.Bred = self.red_S.astype(float) @ self.A
        self.Binv = np.linalg.inv(self.Bred)
        g = np.arange(-2, 3)
        self.deltas = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
        self.pos_S = (self.xprim[ftg.kappa] + ftg.cells) @ self.A  # (N_S, 3) Cartesian
        self.tol = TIE_TOL * float(np.linalg.norm(self.Bred, axis=1).max())

    def nearest(
        self, center: np.ndarray, direction: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images of every ``S`` atom nearest to the Cartesian point ``center``.

        Parameters
        ----------
        center
            ``(3,)`` Cartesian point, Angstrom.
        direction
            ``(3,)`` tie-breaking direction: among equidistant images those with the
            largest projection on it (within the tolerance) are kept (the nearest image
            to ``center + eps * direction``). ``None``: every tied image is kept.

        Returns
        -------
        owner : (m,) int64
            ``S`` atom of each image, ascending (every atom at least once; exactly once
            iff ``m == N_S``, i.e. no tie is left).
        cells : (m, 3) int64
            Primitive cell vector of each image (its ``S`` atom's cell plus an ``S``
            lattice vector).
        """
        d = self.pos_S - center[None, :]
        f = d @ self.Binv
        m0 = -np.rint(f).astype(np.int64)  # (N_S, 3)
        m = m0[:, None, :] + self.deltas[None, :, :]  # (N_S, 125, 3)
        vec = d[:, None, :] + m @ self.Bred
        dist = np.linalg.norm(vec, axis=2)
        near = dist <= dist.min(axis=1, keepdims=True) + self.tol
        if direction is not None:
            proj = np.where(near, vec @ np.asarray(direction, dtype=float), -np.inf)
            near &= proj >= proj.max(axis=1, keepdims=True) - self.tol
        owner, which = np.nonzero(near)
        cells = self.ftg.cells[owner] + m[owner, which] @ self.red_S
        return owner.astype(np.int64), cells


class _ImageMaps(NearestImages):
    """:class:`NearestImages` as atoms of the target cell ``T``, with tie weights."""

    def __init__(self, prim: Atoms, ftg: SupercellSites, target: SupercellSites) -> None:
        super().__init__(prim, ftg)
        self.target = target

    def images(
        self, center: np.ndarray, direction: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images of every ``S`` atom nearest to ``center`` (see :meth:`nearest`).

        ``direction=None``: ties are shared equally.

        Returns
        -------
        owner : (m,) int64
            ``S`` atom of each image (every atom at least once).
        atom : (m,) int64
            The ``T`` atom of each image.
        weight : (m,) float64
            ``1 / (number of tied images)`` of its ``S`` atom.
        """
        owner, cells = self.nearest(center, direction)
        atom = self.target.index(self.ftg.kappa[owner], cells)
        counts = np.bincount(owner, minlength=self.ftg.natoms)
        return owner, atom, 1.0 / counts[owner]
