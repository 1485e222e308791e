"""Force constants from irreducible derivatives: phonopy/phono3py formats and our own tensors.

A :class:`DerivativeSet` holds, for one potential, the irreducible derivatives of several
orders, each measured in its own FTG supercell (the paper: orders 2 and 3 in 2I, order 4
in S_C), keyed by order. From it:

* :meth:`DerivativeSet.phonopy` -- a :class:`phonopy.Phonopy` carrying the fc2 of the
  order-2 FTG (phonopy's Fourier interpolation gives the dispersion);
* :meth:`DerivativeSet.phono3py` -- a :class:`phono3py.Phono3py` with fc2 (its
  ``phonon_supercell``) and fc3 (its ``supercell``) in phono3py's full layout;
* :func:`write_force_constants` -- the same in the ecosystem's native files
  (``FORCE_CONSTANTS``, ``fc2.hdf5``, ``fc3.hdf5``, ``phono3py_params.yaml``, ``fc4.hdf5``
  in phono4py's full supercell layout) so any phonopy/phono3py user can take them further;
* :class:`LatticeTensor` -- our own real-space tensor of any order (used for the 4th-order
  diagrams, which phono3py lacks).

Units: derivatives and force constants in eV/Angstrom^n, masses in amu, positions in
Angstrom, frequencies in THz (phonopy's ``VaspToTHz``).

Real-space interpolation of an order-n tensor (:class:`LatticeTensor`)
-------------------------------------------------------------------------
The FTG tensor ``Phi_S`` (:meth:`~anharmbench.symmetry.IrreducibleBasis.to_cartesian`) is
``S``-periodic: it fixes the Fourier transform only at q-points of the FTG. Away from them a
real-space tensor of the infinite crystal is needed. We use the same "centers" scheme as the
IDMD Hamiltonian (:mod:`anharmbench.hamiltonian.expansion`): a *view* ``v = (C, d)`` is a
center site ``C`` of the home cell and a tie-breaking direction ``d`` (the point-group
images of :data:`~anharmbench.hamiltonian.expansion.TIE_DIRECTION`); in a view every FTG
atom ``i`` is represented by its image nearest to ``C`` (ties broken along ``d``), in
primitive cell ``L_v(i)``. With ``Z`` = (views per primitive cell) x (cells in ``S``), the
infinite-crystal tensor is
``Phi(X_1..X_n) = Phi_S(fold X) (1/Z) sum_{views w} prod_k [X_k is the image of its atom in w]``.
It is symmetric, obeys the acoustic sum rule, folds back exactly onto ``Phi_S`` and is
invariant under the space group. Its Fourier transform, in the cell (lattice-vector)
convention, is (for ``sum_k q_k = 0`` mod a reciprocal lattice vector)::

    V(q_1..q_n)[k_1 a_1, ..., k_n a_n] = sum_{l_2..l_n} Phi(0 k_1 a_1, l_2 k_2 a_2, ...)
                                          exp(2 pi i sum_k q_k . l_k)
                                       = sum_v w_v sum_{i_1..i_n in S, kappa(i_k) = k_k}
                                          Phi_S(i_1 a_1, ..., i_n a_n)
                                          exp(2 pi i sum_k q_k . L_v(i_k))

with ``w_v = (multiplicity of view v) / Z`` and fractional ``q`` (primitive reciprocal
basis), ``l`` integer cell vectors. Contracting slot ``k`` with the cell-convention
eigenvector ``e~(k a; q j) = e(k a; q j) exp(2 pi i q . x_k) / sqrt(m_k)`` (``e`` phonopy's
eigenvector, ``x_k`` the fractional position of site ``k``) gives the mass-reduced normal
coordinate vertex used by :mod:`~anharmbench.observables.loop` and
:mod:`~anharmbench.observables.sunset`; for ``n = 2`` it returns ``omega^2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce
from phonopy.structure.atoms import PhonopyAtoms

from anharmbench.hamiltonian.expansion import TIE_DIRECTION, TIE_TOL, SupercellSites
from anharmbench.observables.errors import MissingOrderError, ObservableError
from anharmbench.phonopy_interface import (
    fc2_to_phonopy,
    fc3_to_phono3py,
    supercell_tensor_to_phonopy,
)
from anharmbench.structures import build_supercell
from anharmbench.symmetry import IrreducibleBasis, irreducible_basis

if TYPE_CHECKING:
    from phono3py import Phono3py
    from phonopy import Phonopy

__all__ = [
    "DerivativeSet",
    "LatticeTensor",
    "load_derivative_set",
    "phonopy_unit_cell",
    "write_force_constants",
]

#: Largest dense FTG tensor we form (entries), as the Hamiltonian expansion does.
MAX_DENSE = 5e7


# ============================================================================ derivatives
@dataclass(eq=False)
class DerivativeSet:
    """Irreducible derivatives of one potential, keyed by order, each in its own FTG.

    Attributes
    ----------
    name : str
        Label of the potential (used in plots and files), e.g. ``"reference"``, ``"GNN"``.
    primitive : ase.Atoms
        Primitive cell at equilibrium on that potential (masses from ASE unless set).
    orders : dict[int, tuple[IrreducibleBasis, numpy.ndarray]]
        ``{n: (basis_n, values_n)}``; ``values_n`` ``(K_n,)`` float64 in eV/Angstrom^n,
        ``basis_n`` built on ``primitive`` in the FTG ``basis_n.sym.S``.
    uncertainties : dict[int, numpy.ndarray]
        ``{n: (K_n,)}`` one-sigma uncertainties (eV/Angstrom^n) where known.
    sources : dict[int, str]
        Where each order came from (file name), for messages and provenance.
    nac : dict[str, Any] | None
        Non-analytical term correction (LO-TO splitting) in phonopy's ``nac_params``
        form: ``born`` ``(n_prim, 3, 3)`` (e), ``dielectric`` ``(3, 3)``, optional
        ``factor``; ``None`` for no correction. Passed to phonopy and phono3py.
    """

    name: str
    primitive: Atoms
    orders: dict[int, tuple[IrreducibleBasis, np.ndarray]]
    uncertainties: dict[int, np.ndarray] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    nac: dict[str, Any] | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for n, (basis, values) in self.orders.items():
            if int(basis.order) != int(n):
                raise ObservableError(f"derivatives keyed as order {n} have a basis of order "
                                      f"{basis.order}")
            vals = np.asarray(values, dtype=float).reshape(-1)
            if vals.shape != (len(basis),):
                raise ObservableError(
                    f"order {n}: {vals.size} derivative values for a basis of {len(basis)}")
            if not np.isfinite(vals).all():
                raise ObservableError(f"order {n}: the derivatives contain NaN or infinity")
            if not _same_crystal(self.primitive, basis.sym.prim):
                raise ObservableError(
                    f"order {n} of {self.name!r} was measured on another primitive cell "
                    "(lattice constant or positions differ) than the set's")
            self.orders[n] = (basis, vals)

    # ------------------------------------------------------------------ access
    def require(self, orders: Sequence[int], what: str) -> None:
        """Raise :class:`MissingOrderError` unless every order in ``orders`` is present.

        Parameters
        ----------
        orders
            Orders the observable needs, e.g. ``(2, 4)`` for the loop shift.
        what
            Name of the observable, for the message.
        """
        missing = sorted(set(int(n) for n in orders) - set(self.orders))
        if missing:
            raise MissingOrderError(
                f"{what} needs derivatives of order(s) {sorted(set(orders))}, but "
                f"{self.name!r} has order(s) {sorted(self.orders)} only: order(s) {missing} "
                "missing. Measure them (anharmbench plan/derivatives) and pass their "
                "derivatives.h5 too."
            )

    def ftg(self, order: int) -> np.ndarray:
        """FTG supercell matrix ``(3, 3)`` int64 of ``order`` (rows in the primitive basis)."""
        self.require([order], f"the FTG of order {order}")
        return np.asarray(self.orders[order][0].sym.S, dtype=np.int64)

    def ftg_qpoints(self, order: int) -> np.ndarray:
        """FTG q-points ``(D, 3)`` float64 (fractional) where order ``order`` was measured."""
        self.require([order], f"the FTG of order {order}")
        return np.asarray(self.orders[order][0].sym.qpoints, dtype=float)

    def cartesian(self, order: int) -> np.ndarray:
        """Dense FTG tensor ``(3N_S,)*n`` float64, eV/Angstrom^n (atom order of the FTG)."""
        self.require([order], f"the order-{order} force constants")
        key = ("cartesian", order)
        if key not in self._cache:
            basis, values = self.orders[order]
            n3 = int(basis.modes.shape[0])
            if float(n3) ** order > MAX_DENSE:
                raise ObservableError(
                    f"order {order} in an FTG of {n3 // 3} atoms needs a dense {n3}^{order} "
                    "tensor; use a smaller FTG for this order")
            self._cache[key] = basis.to_cartesian(values)
        return self._cache[key]

    def supercell(self, order: int) -> Atoms:
        """The FTG supercell of ``order`` (atom order of every FTG tensor)."""
        self.require([order], f"the FTG of order {order}")
        return self.orders[order][0].sym.supercell

    # ------------------------------------------------------------------ ecosystem
    def phonopy(self) -> Phonopy:
        """:class:`phonopy.Phonopy` with the fc2 of the order-2 FTG (full layout, eV/A^2)."""
        self.require([2], "the harmonic phonons")
        if "phonopy" not in self._cache:
            S = self.ftg(2)
            phonon = _phonopy(self.primitive, S)
            phonon.force_constants = fc2_to_phonopy(self.cartesian(2), self.supercell(2), phonon)
            if self.nac is not None:
                phonon.nac_params = dict(self.nac)
            self._cache["phonopy"] = phonon
        return self._cache["phonopy"]

    def phono3py(
        self,
        mesh: Sequence[int] | int | None = None,
        *,
        sigmas: Sequence[float | None] | None = None,
        with_fc3: bool = True,
        log_level: int = 0,
    ) -> Phono3py:
        """:class:`phono3py.Phono3py` carrying our fc2 and fc3 (phono3py's full layouts).

        The fc3 supercell is the order-3 FTG, the fc2 (``phonon_supercell``) the order-2 FTG.

        Parameters
        ----------
        mesh
            Sampling mesh ``(3,)`` (or one int for n x n x n); None: not set.
        sigmas
            phono3py smearing widths in THz (``None`` entries: tetrahedron method).
        with_fc3
            Without fc3 (``False``) only the harmonic part is set (order 3 not required).
        log_level
            phono3py's verbosity.
        """
        from phono3py import Phono3py

        orders = [2, 3] if with_fc3 else [2]
        self.require(orders, "phono3py (fc2 and fc3)" if with_fc3 else "phono3py (fc2)")
        S2 = self.ftg(2)
        S3 = self.ftg(3) if with_fc3 else S2
        same = np.array_equal(S2, S3)
        ph3 = Phono3py(
            phonopy_unit_cell(self.primitive),
            supercell_matrix=S3.T,
            primitive_matrix="P",
            phonon_supercell_matrix=None if same else S2.T,
            log_level=log_level,
        )
        ph3.fc2 = supercell_tensor_to_phonopy(self.cartesian(2), self.supercell(2),
                                              ph3.phonon_supercell)
        if with_fc3:
            ph3.fc3 = fc3_to_phono3py(self.cartesian(3), self.supercell(3), ph3)
        if self.nac is not None:
            ph3.nac_params = dict(self.nac)
        if sigmas is not None:
            ph3.sigmas = list(sigmas)
        if mesh is not None:
            ph3.mesh_numbers = mesh_numbers(mesh)
        return ph3

    def lattice_tensor(self, order: int) -> LatticeTensor:
        """Our real-space tensor of ``order`` (see :class:`LatticeTensor`), cached."""
        self.require([order], f"the order-{order} real-space tensor")
        key = ("lattice", order)
        if key not in self._cache:
            basis, values = self.orders[order]
            self._cache[key] = LatticeTensor.from_derivatives(basis, values, self.cartesian(order))
        return self._cache[key]

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {len(b)} in S={b.sym.S.tolist()}"
                          for n, (b, _) in sorted(self.orders.items()))
        return f"DerivativeSet({self.name!r}, {{{parts}}})"


def phonopy_unit_cell(primitive: Atoms, decimals: int = 12) -> PhonopyAtoms:
    """phonopy's cell of ``primitive`` with fractional positions rounded to ``decimals``.

    phono3py's fc3 interpolation breaks ties between equidistant supercell images with a
    tolerance, and round-off such as 0.7500000000000001 instead of 0.75 (ASE's fluorite
    after a Cartesian round trip) flips some ties: the CRG bubble kappa then moves by 0.2 %.
    Exact positions make our in-memory objects identical to those phono3py reads back from
    the files we write.
    """
    x = np.round(primitive.get_scaled_positions(wrap=True), decimals) % 1.0
    return PhonopyAtoms(symbols=primitive.get_chemical_symbols(),
                        cell=np.asarray(primitive.cell.array), scaled_positions=x,
                        masses=primitive.get_masses())


def _phonopy(primitive: Atoms, S: np.ndarray) -> Phonopy:
    """:class:`phonopy.Phonopy` for our (row) supercell matrix ``S`` (phonopy's is ``S.T``)."""
    from phonopy import Phonopy

    return Phonopy(phonopy_unit_cell(primitive), supercell_matrix=np.asarray(S, dtype=int).T,
                   primitive_matrix=None)


def mesh_numbers(mesh: Sequence[int] | int | np.ndarray) -> np.ndarray:
    """``(3,)`` int64 mesh from one int or three positive ints (ValueError otherwise)."""
    arr = np.atleast_1d(np.asarray(mesh))
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,) or not np.allclose(arr, np.rint(arr)) or (arr < 1).any():
        raise ObservableError(f"a mesh is one or three positive integers, got {mesh!r}")
    return np.rint(arr).astype(np.int64)


def load_derivative_set(
    paths: str | Path | Sequence[str | Path],
    name: str | None = None,
    *,
    orders: Sequence[int] | None = None,
    masses: Mapping[str, float] | None = None,
) -> DerivativeSet:
    """Read ``derivatives.h5`` files (measured or imported) into a :class:`DerivativeSet`.

    The irreducible bases are rebuilt from the stored primitive cell and each order's
    supercell matrix and checked label by label against the file. Born charges and the
    dielectric tensor (LO-TO splitting) are taken from the first file that has them.

    Parameters
    ----------
    paths
        One or several ``derivatives.h5`` files (e.g. the 2I file for orders 2-3 and the
        S_C file for order 4) of the same potential and primitive cell.
    name
        Label of the potential; default: the ``name`` of the potential in the first file.
    orders
        Keep only these orders (default: all orders of all files).
    masses
        ``{symbol: amu}`` to override the masses (default: the file's, else ASE's).

    Raises
    ------
    ObservableError
        Files of different primitive cells, an order present in two files, labels that do
        not match the rebuilt basis, or a Q-tuple-restricted job (incomplete order).
    """
    from anharmbench.derivatives.io import DerivativesFileError, read_derivatives_file

    if isinstance(paths, (str, Path)):
        paths = [paths]
    prim: Atoms | None = None
    got: dict[int, tuple[IrreducibleBasis, np.ndarray]] = {}
    unc: dict[int, np.ndarray] = {}
    src: dict[int, str] = {}
    nac: dict[str, Any] | None = None
    label = name
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such derivatives file")
        try:
            data = read_derivatives_file(path)
        except DerivativesFileError as exc:
            raise ObservableError(str(exc)) from None
        if label is None:
            label = data.name
        if prim is None:
            prim = data.primitive
        elif not _same_crystal(prim, data.primitive):
            raise ObservableError(
                f"{path} was measured on a different primitive cell than {paths[0]}")
        if nac is None and data.nac is not None:
            nac = data.nac
        for n, rec in sorted(data.orders.items()):
            if orders is not None and n not in orders:
                continue
            if n in got:
                raise ObservableError(
                    f"order {n} is in both {src[n]} and {path}; pass one of them "
                    "(or select orders)")
            basis = irreducible_basis(prim, rec.supercell_matrix, order=n)
            if rec.labels != basis.labels:
                if set(rec.labels) < set(basis.labels):
                    raise MissingOrderError(
                        f"{path}: order {n} holds {len(rec.labels)} of the {len(basis)} "
                        "irreducible derivatives of its FTG (a Q-tuple-restricted job); "
                        "observables need them all")
                raise ObservableError(
                    f"{path}: the order-{n} labels do not match the irreducible basis "
                    "rebuilt here (written by another version of anharmbench?)")
            got[n] = (basis, rec.values)
            unc[n] = rec.uncertainties
            src[n] = str(path)
    if prim is None:
        raise ObservableError("no derivatives files given")
    if masses:
        prim.set_masses([masses.get(s, m) for s, m in
                         zip(prim.get_chemical_symbols(), prim.get_masses(), strict=True)])
    if orders is not None:
        missing = sorted(set(orders) - set(got))
        if missing:
            raise MissingOrderError(f"order(s) {missing} not found in {list(map(str, paths))}")
    return DerivativeSet(label or "potential", prim, got, unc, src, nac=nac)


def _same_crystal(a: Atoms, b: Atoms, tol: float = 1e-6) -> bool:
    if len(a) != len(b) or list(a.numbers) != list(b.numbers):
        return False
    if not np.allclose(a.cell.array, b.cell.array, atol=tol):
        return False
    d = a.get_scaled_positions(wrap=False) - b.get_scaled_positions(wrap=False)
    return bool(np.abs(d - np.rint(d)).max() < tol)


# ============================================================================ lattice tensor
@dataclass(frozen=True, eq=False)
class LatticeTensor:
    """Real-space tensor of order ``n`` of the infinite crystal, from an FTG tensor.

    See the module docstring for the interpolation ("centers" scheme of the IDMD
    Hamiltonian) and the Fourier convention.

    Attributes
    ----------
    order : int
        ``n``.
    primitive : ase.Atoms
        Primitive cell.
    ftg : numpy.ndarray
        ``(3, 3)`` int64 FTG supercell matrix ``S``.
    phi : numpy.ndarray
        ``(3 N_S,) * n`` float64 FTG tensor ``Phi_S``, eV/Angstrom^n, atom order of
        ``build_supercell(primitive, S)``.
    kappa : numpy.ndarray
        ``(N_S,)`` int64 primitive site of each FTG atom.
    view_cells : numpy.ndarray
        ``(V, N_S, 3)`` int64 primitive cell ``L_v(i)`` of the image of FTG atom ``i`` in
        view ``v`` (distinct views only).
    view_weights : numpy.ndarray
        ``(V,)`` float64 ``w_v`` (view multiplicity over ``Z``); they sum to ``1/N_cells``.
    """

    order: int
    primitive: Atoms
    ftg: np.ndarray
    phi: np.ndarray
    kappa: np.ndarray
    view_cells: np.ndarray
    view_weights: np.ndarray

    @property
    def n_prim(self) -> int:
        """Atoms in the primitive cell."""
        return len(self.primitive)

    @property
    def n_atoms_ftg(self) -> int:
        """Atoms in the FTG supercell ``N_S``."""
        return len(self.kappa)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_derivatives(
        cls, basis: IrreducibleBasis, values: np.ndarray, phi: np.ndarray | None = None
    ) -> LatticeTensor:
        """From irreducible derivatives ``values`` ``(K,)`` (eV/A^n) in ``basis``.

        Centers are the sites equivalent to the first primitive atom (Th in ThO2) and the
        tie directions the point-group images of ``TIE_DIRECTION``, as in
        :func:`anharmbench.hamiltonian.expand_order`.
        """
        sym = basis.sym
        if phi is None:
            phi = basis.to_cartesian(values)
        centers = sym.prim.get_scaled_positions(wrap=False)[np.unique(sym.prim_perm[:, 0])]
        return cls.from_ftg_tensor(sym.prim, sym.S, phi, atoms=sym.supercell, centers=centers,
                                   rotations=sym.cart_rotations)

    @classmethod
    def from_ftg_tensor(
        cls,
        primitive: Atoms,
        ftg: np.ndarray | Sequence[Sequence[int]],
        phi: np.ndarray,
        *,
        atoms: Atoms | None = None,
        centers: np.ndarray | None = None,
        rotations: np.ndarray | None = None,
    ) -> LatticeTensor:
        """From a dense FTG tensor ``phi`` ``(3 N_S,)*n`` (eV/A^n) in the supercell ``ftg``.

        Parameters
        ----------
        primitive
            Primitive cell.
        ftg
            ``(3, 3)`` integer supercell matrix ``S`` (rows, primitive basis).
        phi
            Symmetric FTG tensor in the atom order of ``atoms``.
        atoms
            The FTG supercell (default ``build_supercell(primitive, ftg)``).
        centers
            ``(c, 3)`` fractional centers of one primitive cell (default: the first atom).
        rotations
            ``(P, 3, 3)`` Cartesian point operations giving the tie directions (default:
            spglib's point group of ``primitive``).
        """
        S = np.asarray(ftg, dtype=np.int64)
        phi = np.asarray(phi, dtype=float)
        sites = SupercellSites.build(primitive, S, atoms)
        n = phi.ndim
        if phi.shape != (3 * sites.natoms,) * n:
            raise ObservableError(f"FTG tensor of shape {phi.shape} for {sites.natoms} atoms")
        if centers is None:
            centers = primitive.get_scaled_positions(wrap=False)[:1]
        if rotations is None:
            rotations = _cartesian_point_group(primitive)
        directions = np.asarray(rotations, dtype=float) @ TIE_DIRECTION
        A = np.asarray(primitive.cell.array, dtype=float)
        xprim = primitive.get_scaled_positions(wrap=False)
        pos = (xprim[sites.kappa] + sites.cells) @ A
        _, op = minkowski_reduce(S.astype(float) @ A)
        red_S = np.asarray(op, dtype=np.int64) @ S
        Bred = red_S.astype(float) @ A
        Binv = np.linalg.inv(Bred)
        g = np.arange(-2, 3)
        deltas = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
        tol = TIE_TOL * float(np.linalg.norm(Bred, axis=1).max())
        seen: dict[bytes, int] = {}
        cells: list[np.ndarray] = []
        counts: list[int] = []
        for c in np.asarray(centers, dtype=float):
            center = c @ A
            d = pos - center[None, :]
            m0 = -np.rint(d @ Binv).astype(np.int64)
            m = m0[:, None, :] + deltas[None, :, :]
            vec = d[:, None, :] + m @ Bred
            dist = np.linalg.norm(vec, axis=2)
            near = dist <= dist.min(axis=1, keepdims=True) + tol
            for direction in directions:
                proj = np.where(near, vec @ direction, -np.inf)
                pick = np.argmax(proj, axis=1)
                best = proj[np.arange(len(d)), pick]
                if ((proj >= best[:, None] - tol).sum(axis=1) != 1).any():
                    raise ObservableError("tie between images not broken by the direction")
                cv = sites.cells + m[np.arange(len(d)), pick] @ red_S
                key = cv.tobytes()
                if key not in seen:
                    seen[key] = len(cells)
                    cells.append(cv)
                    counts.append(0)
                counts[seen[key]] += 1
        n_cells = sites.natoms // len(primitive)
        z = len(centers) * len(directions) * n_cells
        return cls(
            order=n,
            primitive=primitive.copy(),
            ftg=S,
            phi=phi,
            kappa=sites.kappa.astype(np.int64),
            view_cells=np.asarray(cells, dtype=np.int64),
            view_weights=np.asarray(counts, dtype=float) / z,
        )

    # ------------------------------------------------------------------ transforms
    def fourier(self, qpoints: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Fourier transform at one q-tuple (cell convention, module docstring).

        Parameters
        ----------
        qpoints
            ``(n, 3)`` fractional q-points (primitive reciprocal basis) with
            ``sum_k q_k`` a reciprocal lattice vector.

        Returns
        -------
        numpy.ndarray
            ``(3 n_prim,) * n`` complex128, eV/Angstrom^n; index ``3 kappa + alpha`` per slot.
        """
        q = np.asarray(qpoints, dtype=float).reshape(self.order, 3)
        tot = q.sum(axis=0)
        if not np.allclose(tot, np.rint(tot), atol=1e-8):
            raise ObservableError(
                f"the q-points of a vertex must sum to a reciprocal lattice vector, got "
                f"{np.round(tot, 6).tolist()}")
        ns, npr, n = self.n_atoms_ftg, self.n_prim, self.order
        out = np.zeros((3 * npr,) * n, dtype=complex)
        onehot = np.zeros((npr, ns))
        onehot[self.kappa, np.arange(ns)] = 1.0
        for cells, w in zip(self.view_cells, self.view_weights, strict=True):
            t = self.phi.reshape((ns, 3) * n).astype(complex)
            for k in range(n):
                proj = onehot * np.exp(2j * np.pi * (cells @ q[k]))[None, :]  # (npr, ns)
                # contract the leading atom axis, keep (kappa, alpha) at the end
                t = np.tensordot(t, proj, axes=([0], [1]))  # (3, ..., npr)
                t = np.moveaxis(t, 0, -1)  # (..., npr, 3)
            out += w * t.reshape((3 * npr,) * n)
        return out

    def to_phonopy_supercell(self, supercell: Any) -> np.ndarray:
        """The FTG tensor in phonopy's full layout ``(N,)*n + (3,)*n`` for ``supercell``.

        ``supercell`` is a phonopy ``PhonopyAtoms`` of the same FTG (e.g. phono4py's).
        """
        atoms = build_supercell(self.primitive, self.ftg)
        return supercell_tensor_to_phonopy(self.phi, atoms, supercell)

    # ------------------------------------------------------------------ storage
    def save(self, group: h5py.Group) -> None:
        """Write into an HDF5 group (datasets ``phi``, ``kappa``, ``view_cells``, ...)."""
        group.attrs["order"] = self.order
        group.attrs["units"] = f"eV/Angstrom^{self.order}"
        group.attrs["convention"] = (
            "Phi(X_1..X_n) = Phi_S(fold X) sum_v w_v prod_k [X_k = image of its FTG atom in "
            "view v, cell view_cells[v, atom]]")
        group["ftg"] = self.ftg
        group["phi"] = self.phi
        group["kappa"] = self.kappa
        group["view_cells"] = self.view_cells
        group["view_weights"] = self.view_weights
        g = group.create_group("primitive")
        g["cell"] = np.asarray(self.primitive.cell.array)
        g["positions"] = self.primitive.positions
        g["numbers"] = self.primitive.numbers
        g["masses"] = self.primitive.get_masses()

    @classmethod
    def load(cls, group: h5py.Group) -> LatticeTensor:
        """Read what :meth:`save` wrote."""
        from anharmbench.derivatives.io import atoms_from_group

        prim = atoms_from_group(group["primitive"])
        prim.set_masses(group["primitive"]["masses"][...])
        return cls(int(group.attrs["order"]), prim, group["ftg"][...], group["phi"][...],
                   group["kappa"][...], group["view_cells"][...], group["view_weights"][...])


def _cartesian_point_group(primitive: Atoms) -> np.ndarray:
    import spglib

    A = np.asarray(primitive.cell.array, dtype=float)
    sym = spglib.get_symmetry((A, primitive.get_scaled_positions(), primitive.numbers))
    if sym is None:
        return np.eye(3)[None]
    rots = np.unique(np.asarray(sym["rotations"]), axis=0)
    return np.einsum("ij,njk,kl->nil", A.T, rots, np.linalg.inv(A.T))


# ============================================================================ files
def write_force_constants(dset: DerivativeSet, directory: str | Path) -> dict[str, Path]:
    """Write the force constants in phonopy's, phono3py's and phono4py's native files.

    Files (those whose orders exist):

    * ``FORCE_CONSTANTS`` and ``phonopy_params.yaml`` -- phonopy, fc2 in the order-2 FTG;
    * ``fc2.hdf5``, ``fc3.hdf5`` and ``phono3py_params.yaml`` -- phono3py (``phono3py
      phono3py_params.yaml --fc2 --fc3 --mesh ... --br``);
    * ``fc4.hdf5`` -- dataset ``fc4``, phono4py's full layout ``(N,N,N,N,3,3,3,3)`` in the
      order-4 FTG, plus the supercell matrix (phonopy's column convention);
    * ``lattice_tensors.hdf5`` -- our real-space tensors (:class:`LatticeTensor`) of every
      order >= 3, one group ``order_n`` each.

    Returns
    -------
    dict[str, pathlib.Path]
        File kind -> path.
    """
    from phono3py.file_IO import write_fc2_to_hdf5, write_fc3_to_hdf5
    from phonopy.file_IO import write_FORCE_CONSTANTS

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if 2 in dset.orders:
        phonon = dset.phonopy()
        write_FORCE_CONSTANTS(phonon.force_constants, filename=str(out / "FORCE_CONSTANTS"))
        phonon.save(str(out / "phonopy_params.yaml"), settings={"force_constants": True})
        written["FORCE_CONSTANTS"] = out / "FORCE_CONSTANTS"
        written["phonopy_params.yaml"] = out / "phonopy_params.yaml"
    if 2 in dset.orders and 3 in dset.orders:
        ph3 = dset.phono3py()
        write_fc2_to_hdf5(ph3.fc2, filename=str(out / "fc2.hdf5"))
        write_fc3_to_hdf5(ph3.fc3, filename=str(out / "fc3.hdf5"))
        ph3.save(str(out / "phono3py_params.yaml"))
        written["fc2.hdf5"] = out / "fc2.hdf5"
        written["fc3.hdf5"] = out / "fc3.hdf5"
        written["phono3py_params.yaml"] = out / "phono3py_params.yaml"
    if 4 in dset.orders:
        S4 = dset.ftg(4)
        phonon4 = _phonopy(dset.primitive, S4)
        fc4 = supercell_tensor_to_phonopy(dset.cartesian(4), dset.supercell(4), phonon4.supercell)
        with h5py.File(out / "fc4.hdf5", "w") as h5:
            h5.create_dataset("fc4", data=fc4, compression="gzip")
            h5["supercell_matrix"] = S4.T
            h5.attrs["units"] = "eV/Angstrom^4"
            h5.attrs["layout"] = "phono4py full: (N, N, N, N, 3, 3, 3, 3), phonopy atom order"
        written["fc4.hdf5"] = out / "fc4.hdf5"
    high = [n for n in sorted(dset.orders) if n >= 3]
    if high:
        with h5py.File(out / "lattice_tensors.hdf5", "w") as h5:
            h5.attrs["potential"] = dset.name
            for n in high:
                dset.lattice_tensor(n).save(h5.create_group(f"order_{n}"))
        written["lattice_tensors.hdf5"] = out / "lattice_tensors.hdf5"
    return written
