"""Force constants from irreducible derivatives: phonopy/phono3py formats and our own tensors.

The derivatives of one potential are a :class:`~anharmbench.derivatives.DerivativeSet`
(orders 2 and 3 in 2I, order 4 in S_C in the paper, each in its own FTG); it hands its fc2
and fc3 to phonopy and phono3py itself (:meth:`~anharmbench.derivatives.DerivativeSet.phonopy`,
:meth:`~anharmbench.derivatives.DerivativeSet.phono3py`). Here:

* :func:`load_derivative_set` -- ``derivatives.h5`` files into a set, every order's basis
  rebuilt and checked (so a bad file is refused before any computation);
* :func:`write_force_constants` -- the force constants in the ecosystem's native files
  (``FORCE_CONSTANTS``, ``fc2.hdf5``, ``fc3.hdf5``, ``phono3py_params.yaml``, ``fc4.hdf5``
  in phono4py's full supercell layout) so any phonopy/phono3py user can take them further;
* :class:`LatticeTensor` / :func:`lattice_tensor` -- our own real-space tensor of any order
  (used for the 4th-order diagrams, which phono3py lacks).

Units: derivatives and force constants in eV/Angstrom^n, masses in amu, positions in
Angstrom, frequencies in THz (phonopy's ``VaspToTHz``).

Real-space interpolation of an order-n tensor (:class:`LatticeTensor`)
-------------------------------------------------------------------------
The FTG tensor ``Phi_S`` (:meth:`~anharmbench.symmetry.IrreducibleBasis.to_cartesian`) is
``S``-periodic: it fixes the Fourier transform only at q-points of the FTG. Away from them a
real-space tensor of the infinite crystal is needed, and its choice matters: the
interaction must be placed where the atoms are, each cluster compact. We use phono3py's
convention for fc3 (the other atoms of a cluster at their images nearest to one of its
atoms, equidistant images shared), made symmetric by letting every slot take the role of
that atom in turn. A *view* ``v = (c, d)`` is an atom ``c`` of the home cell and a
tie-breaking direction ``d`` (the point-group images of
:data:`~anharmbench.hamiltonian.sites.TIE_DIRECTION`); in a view every FTG atom ``i`` is
represented by its image nearest to ``c`` (ties broken along ``d``), in primitive cell
``L_v(i)``. With ``T`` tie directions, the Fourier transform in the cell (lattice-vector)
convention is (for ``sum_k q_k = 0`` mod a reciprocal lattice vector)::

    V(q_1..q_n)[k_1 a_1, ..., k_n a_n] = sum_{l_2..l_n} Phi(0 k_1 a_1, l_2 k_2 a_2, ...)
                                          exp(2 pi i sum_k q_k . l_k)
                                       = sum_v w_v sum_{i_1..i_n in S, kappa(i_k) = k_k}
                                          M_c(i_1..i_n) Phi_S(i_1 a_1, ..., i_n a_n)
                                          exp(2 pi i sum_k q_k . L_v(i_k))

with ``w_v = (multiplicity of view v) / T``, ``M_c = (1/n) sum_k [i_k = c]`` (the cluster
is placed about each of its atoms in turn; translation invariance replaces the atoms of
other cells by those of the home cell), fractional ``q`` (primitive reciprocal basis) and
``l`` integer cell vectors. The tensor is symmetric, folds back exactly onto ``Phi_S`` and
is invariant under the space group; the acoustic sum rule holds exactly at FTG q-points
and elsewhere up to the clusters that do not fit in the FTG's Wigner-Seitz cell
(1-4e-3 of the order-3 vertex in Si's 8-atom cube; a floor of ~6e-5 ps^-1 under
the sunset rate of acoustic modes below q ~ 1/32), as in phono3py. At n = 3 it reproduces
phono3py's bubble off the FTG (``tests/test_observables.py``).

Why not the IDMD Hamiltonian's scheme (:mod:`anharmbench.hamiltonian.expansion`: one
fixed center ``C`` per view for every cluster): it folds back and keeps the sum rule
exactly, but places clusters far from ``C`` with the wrong geometry. In small FTGs
(8-12 atoms) its bubble off the FTG differed from phono3py's by factors 2-19 (Si and
ThO2 in S_C), and its sunset for Si was 10-100 times FourPhonon's for acoustic modes.

Contracting slot ``k`` with the cell-convention
eigenvector ``e~(k a; q j) = e(k a; q j) exp(2 pi i q . x_k) / sqrt(m_k)`` (``e`` phonopy's
eigenvector, ``x_k`` the fractional position of site ``k``) gives the mass-reduced normal
coordinate vertex used by :mod:`~anharmbench.observables.loop` and
:mod:`~anharmbench.observables.sunset`; for ``n = 2`` it returns ``omega^2``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ase import Atoms

from anharmbench.derivatives.derivative_set import DerivativeSet
from anharmbench.derivatives.joins import check_ftg_coverage
from anharmbench.hamiltonian.sites import TIE_DIRECTION, NearestImages, SupercellSites
from anharmbench.observables.errors import ObservableError
from anharmbench.phonopy_interface import (
    phonopy_object,
    phonopy_unit_cell,
    supercell_tensor_to_phonopy,
)
from anharmbench.structures import build_supercell
from anharmbench.symmetry import IrreducibleBasis

__all__ = [
    "INTERPOLATION",
    "DerivativeSet",
    "LatticeTensor",
    "lattice_tensor",
    "load_derivative_set",
    "phonopy_unit_cell",
    "write_force_constants",
]


#: Which real-space placement :class:`LatticeTensor` uses off the FTG (module docstring).
#: A study's observables stage keys on it, so results of another placement (before
#: 2026-12-07: one fixed center per view) are computed again, never reused.
INTERPOLATION = "clusters about each of their atoms, ties by direction (2026-12-07)"


# ============================================================================ derivatives
def load_derivative_set(
    paths: str | Path | Sequence[str | Path],
    name: str | None = None,
    *,
    orders: Sequence[int] | None = None,
    masses: Mapping[str, float] | None = None,
) -> DerivativeSet:
    """Read ``derivatives.h5`` files (measured or imported) into a :class:`DerivativeSet`
    ready for the observables.

    :meth:`DerivativeSet.from_files`, then every order's irreducible basis rebuilt from
    the stored primitive cell and supercell matrix and checked label by label against the
    file, and the values checked finite: a bad file is refused here, before any
    computation. Born charges and the dielectric tensor (LO-TO splitting) are taken from
    the first file that has them.

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
    FileNotFoundError
        A file does not exist.
    DerivativeSetError
        Files of different sources or primitive cells, fc2 in a smaller supercell than a
        higher order that misses its q-points (:func:`~anharmbench.derivatives.joins.
        check_ftg_coverage`), an order present in two files, labels that do
        not match the rebuilt basis, non-finite values; :class:`MissingOrderError` for a
        Q-tuple-restricted job (incomplete order) or an order in none of the files.
    """
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such derivatives file")
    dset = DerivativeSet.from_files(paths, name, orders=orders, masses=masses)
    check_ftg_coverage(dset)  # before the bases: a refused join costs nothing
    dset.bases  # noqa: B018 - builds and checks every order's basis now
    return dset.check_finite()


def lattice_tensor(derivatives: DerivativeSet, order: int) -> LatticeTensor:
    """The real-space tensor of ``order`` of a set (see :class:`LatticeTensor`), built
    once per set."""
    derivatives.require([order], f"the order-{order} real-space tensor")
    return derivatives.derived(
        ("lattice_tensor", order),
        lambda: LatticeTensor.from_derivatives(derivatives.basis(order),
                                               derivatives.values[order],
                                               derivatives.cartesian(order)))


# ============================================================================ lattice tensor
@dataclass(frozen=True, eq=False)
class LatticeTensor:
    """Real-space tensor of order ``n`` of the infinite crystal, from an FTG tensor.

    See the module docstring for the interpolation (clusters placed about each of their
    atoms, phono3py's convention made symmetric) and the Fourier convention.

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
        ``(V,)`` float64 ``w_v`` (view multiplicity over the tie directions); the views of
        one center sum to 1.
    view_centers : numpy.ndarray
        ``(V,)`` int64 FTG atom ``c`` (of the home cell) each view is centred on.
    """

    order: int
    primitive: Atoms
    ftg: np.ndarray
    phi: np.ndarray
    kappa: np.ndarray
    view_cells: np.ndarray
    view_weights: np.ndarray
    view_centers: np.ndarray

    @property
    def n_prim(self) -> int:
        """Atoms in the primitive cell."""
        return len(self.primitive)

    @property
    def n_atoms_ftg(self) -> int:
        """Atoms in the FTG supercell ``N_S``."""
        return len(self.kappa)

    def views(self) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
        """The views with the tensor each one places: ``(cells, w_v, M_c Phi_S)``.

        ``cells`` ``(N_S, 3)`` int64 are the image cells ``L_v(i)``, ``M_c Phi_S`` the FTG
        tensor weighted by the share of its slots on the view's center ``c`` (module
        docstring), made once per center.
        """
        n, rows = self.order, 3 * self.n_atoms_ftg
        masked: np.ndarray | None = None
        current = -1
        for cells, w, c in zip(self.view_cells, self.view_weights, self.view_centers,
                               strict=True):
            if c != current:
                on = np.zeros(rows)
                on[3 * c:3 * c + 3] = 1.0 / n
                share = sum(on.reshape((1,) * k + (rows,) + (1,) * (n - k - 1))
                            for k in range(n))
                masked, current = self.phi * share, int(c)
            yield cells, float(w), masked

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_derivatives(
        cls, basis: IrreducibleBasis, values: np.ndarray, phi: np.ndarray | None = None
    ) -> LatticeTensor:
        """From irreducible derivatives ``values`` ``(K,)`` (eV/A^n) in ``basis``; tie
        directions: the point-group images of ``TIE_DIRECTION``."""
        sym = basis.sym
        if phi is None:
            phi = basis.to_cartesian(values)
        return cls.from_ftg_tensor(sym.prim, sym.S, phi, atoms=sym.supercell,
                                   rotations=sym.cart_rotations)

    @classmethod
    def from_ftg_tensor(
        cls,
        primitive: Atoms,
        ftg: np.ndarray | Sequence[Sequence[int]],
        phi: np.ndarray,
        *,
        atoms: Atoms | None = None,
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
        if rotations is None:
            rotations = _cartesian_point_group(primitive)
        directions = np.asarray(rotations, dtype=float) @ TIE_DIRECTION
        images = NearestImages(primitive, sites)
        cells: list[np.ndarray] = []
        weights: list[float] = []
        centers: list[int] = []
        home = np.flatnonzero(~sites.cells.any(axis=1))  # the home cell's atoms
        for c in home:
            seen: dict[bytes, int] = {}
            for direction in directions:
                owner, cv = images.nearest(images.pos_S[c], direction)
                if len(owner) != sites.natoms:  # a view needs one image per atom
                    raise ObservableError("tie between images not broken by the direction")
                key = cv.tobytes()
                if key not in seen:
                    seen[key] = len(cells)
                    cells.append(cv)
                    weights.append(0.0)
                    centers.append(int(c))
                weights[seen[key]] += 1.0 / len(directions)
        return cls(
            order=n,
            primitive=primitive.copy(),
            ftg=S,
            phi=phi,
            kappa=sites.kappa.astype(np.int64),
            view_cells=np.asarray(cells, dtype=np.int64),
            view_weights=np.asarray(weights, dtype=float),
            view_centers=np.asarray(centers, dtype=np.int64),
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
        for cells, w, phi in self.views():
            t = phi.reshape((ns, 3) * n).astype(complex)
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
            "V(q_1..q_n) = sum_v w_v sum_i M_c(i) Phi_S(i) exp(2 pi i sum_k q_k . "
            "view_cells[v, i_k]), M_c = (1/n) sum_k [i_k = view_centers[v]]")
        group["ftg"] = self.ftg
        group["phi"] = self.phi
        group["kappa"] = self.kappa
        group["view_cells"] = self.view_cells
        group["view_weights"] = self.view_weights
        group["view_centers"] = self.view_centers
        g = group.create_group("primitive")
        g["cell"] = np.asarray(self.primitive.cell.array)
        g["positions"] = self.primitive.positions
        g["numbers"] = self.primitive.numbers
        g["masses"] = self.primitive.get_masses()

    @classmethod
    def load(cls, group: h5py.Group) -> LatticeTensor:
        """Read what :meth:`save` wrote."""
        from anharmbench.derivatives.io import atoms_from_group

        if "view_centers" not in group:
            raise ObservableError(
                f"{group.file.filename}: a lattice tensor of the fixed-center interpolation "
                "(before view_centers); write it again with write_force_constants")
        prim = atoms_from_group(group["primitive"])
        prim.set_masses(group["primitive"]["masses"][...])
        return cls(int(group.attrs["order"]), prim, group["ftg"][...], group["phi"][...],
                   group["kappa"][...], group["view_cells"][...], group["view_weights"][...],
                   group["view_centers"][...])


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
        phonon4 = phonopy_object(dset.primitive, S4)
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
                lattice_tensor(dset, n).save(h5.create_group(f"order_{n}"))
        written["lattice_tensors.hdf5"] = out / "lattice_tensors.hdf5"
    return written
