"""Bridges to phonopy: its finite-displacement route, and our force constants in its format.

phonopy is the independent code path the derivative engine is checked against, and
the format in which a phonopy user takes our second-order results further.

Conventions: our supercells follow ``ase.build.make_supercell`` (rows of ``P`` are the
supercell vectors in the primitive basis); phonopy's ``supercell_matrix`` ``M`` acts on
columns, so ``M = P.T``. Atom orders differ; :func:`phonopy_atom_map` matches them by
position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms


def to_phonopy_atoms(atoms: Atoms) -> PhonopyAtoms:
    """ASE atoms to phonopy atoms (symbols, cell, scaled positions, masses)."""
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.cell.array),
        scaled_positions=atoms.get_scaled_positions(),
        masses=atoms.get_masses(),
    )


def make_phonopy(primitive: Atoms, supercell_matrix: np.ndarray) -> Phonopy:
    """A :class:`phonopy.Phonopy` for ``primitive`` and our (row) supercell matrix."""
    return Phonopy(
        to_phonopy_atoms(primitive),
        supercell_matrix=np.asarray(supercell_matrix, dtype=int).T,
        primitive_matrix="P",  # ours is primitive (None now means phonopy's "auto")
    )


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


def phonopy_object(primitive: Atoms, supercell_matrix: np.ndarray) -> Phonopy:
    """:class:`phonopy.Phonopy` of :func:`phonopy_unit_cell` for our (row) supercell
    matrix (phonopy's is its transpose): the object our force constants are handed in."""
    return Phonopy(phonopy_unit_cell(primitive),
                   supercell_matrix=np.asarray(supercell_matrix, dtype=int).T,
                   primitive_matrix="P")


def phonopy_atom_map(atoms_sc: Atoms, phonon: Phonopy, tol: float = 1e-6) -> np.ndarray:
    """``perm`` with ``phonopy supercell atom i == atoms_sc[perm[i]]``.

    Raises
    ------
    ValueError
        When the two supercells are not the same lattice of positions.
    """
    sc = phonon.supercell
    cell = np.asarray(atoms_sc.cell.array)
    if not np.allclose(np.abs(np.linalg.det(cell)), np.abs(np.linalg.det(sc.cell)), atol=1e-8):
        raise ValueError("the phonopy supercell and the given supercell differ in volume")
    ours = atoms_sc.get_scaled_positions()
    theirs = np.asarray(sc.positions) @ np.linalg.inv(cell)
    diff = theirs[:, None, :] - ours[None, :, :]
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ cell, axis=-1)
    perm = np.argmin(dist, axis=1)
    if not (np.all(dist[np.arange(len(perm)), perm] < tol) and len(set(perm)) == len(perm)):
        raise ValueError("could not match phonopy's supercell atoms to the given supercell")
    return perm


def fc2_to_phonopy(fc2: np.ndarray, atoms_sc: Atoms, phonon: Phonopy) -> np.ndarray:
    """Our Cartesian second derivatives to phonopy's full force constants.

    Parameters
    ----------
    fc2
        ``(3N, 3N)`` or ``(N, 3, N, 3)`` second derivatives of the energy in the order of
        ``atoms_sc``, eV/Angstrom^2.
    atoms_sc
        Our supercell.
    phonon
        The phonopy object whose supercell is the same crystal.

    Returns
    -------
    numpy.ndarray
        ``(N, N, 3, 3)`` in phonopy's atom order (``phonon.force_constants`` layout).
    """
    n = len(atoms_sc)
    fc = np.asarray(fc2, dtype=float).reshape(n, 3, n, 3)
    perm = phonopy_atom_map(atoms_sc, phonon)
    return np.ascontiguousarray(fc[perm][:, :, perm].transpose(0, 2, 1, 3))


def phonopy_fd_force_constants(
    phonon: Phonopy,
    calculator: Any,
    *,
    distance: float = 0.01,
) -> int:
    """Run phonopy's own finite-displacement route for fc2; returns the number of evaluations.

    Parameters
    ----------
    phonon
        Target phonopy object (its ``force_constants`` are produced in place).
    calculator
        An ASE calculator, evaluated in batches where it can
        (:func:`anharmbench.lammps.batch.calculate_batch`), e.g. a
        :class:`~anharmbench.lammps.LammpsCalculator`.
    distance
        Displacement, Angstrom; phonopy's plus-minus displacements are used.
    """
    from anharmbench.lammps.batch import calculate_batch

    phonon.generate_displacements(distance=distance, is_plusminus=True)
    sc = phonon.supercell
    ref = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    positions = np.array([s.positions for s in phonon.supercells_with_displacements])
    phonon.forces = calculate_batch(calculator, ref, positions, stress=False).forces
    phonon.produce_force_constants()
    return len(positions)


def supercell_atom_map(atoms_sc: Atoms, supercell: PhonopyAtoms, tol: float = 1e-6) -> np.ndarray:
    """``perm`` with ``supercell atom i == atoms_sc[perm[i]]`` for any phonopy cell.

    Same as :func:`phonopy_atom_map` for a bare ``PhonopyAtoms`` (e.g. phono3py's
    ``phonon_supercell`` or a phono4py supercell).
    """

    class _Owner:
        pass

    owner = _Owner()
    owner.supercell = supercell  # type: ignore[attr-defined]
    return phonopy_atom_map(atoms_sc, owner, tol)  # type: ignore[arg-type]


def supercell_tensor_to_phonopy(
    tensor: np.ndarray, atoms_sc: Atoms, supercell: PhonopyAtoms
) -> np.ndarray:
    """Our Cartesian n-th derivatives to phonopy's full layout ``(N,)*n + (3,)*n``.

    Parameters
    ----------
    tensor
        ``(3N,)*n`` derivatives of the energy in the atom order of ``atoms_sc``,
        eV/Angstrom^n.
    atoms_sc
        Our supercell.
    supercell
        phonopy's supercell of the same crystal (``phonon.supercell``).

    Returns
    -------
    numpy.ndarray
        ``(N,)*n + (3,)*n`` float64 in phonopy's atom order (fc2: ``(N, N, 3, 3)``, phono3py's
        fc3: ``(N, N, N, 3, 3, 3)``, phono4py's fc4: ``(N, N, N, N, 3, 3, 3, 3)``).
    """
    t = np.asarray(tensor, dtype=float)
    n, natoms = t.ndim, len(atoms_sc)
    t = t.reshape((natoms, 3) * n)
    perm = supercell_atom_map(atoms_sc, supercell)
    for axis in range(0, 2 * n, 2):
        t = np.take(t, perm, axis=axis)
    order = list(range(0, 2 * n, 2)) + list(range(1, 2 * n, 2))
    return np.ascontiguousarray(t.transpose(order))


def fc3_to_phono3py(fc3: np.ndarray, atoms_sc: Atoms, ph3: Any) -> np.ndarray:
    """Our Cartesian third derivatives ``(3N,)*3`` (eV/A^3) to phono3py's full fc3.

    ``ph3`` is a :class:`phono3py.Phono3py` whose ``supercell`` is the same crystal as
    ``atoms_sc``; the result is ``(N, N, N, 3, 3, 3)`` in its atom order (``ph3.fc3``).
    """
    return supercell_tensor_to_phonopy(fc3, atoms_sc, ph3.supercell)


def phonopy_tensor_to_supercell(
    tensor: np.ndarray, atoms_sc: Atoms, supercell: PhonopyAtoms
) -> np.ndarray:
    """Inverse of :func:`supercell_tensor_to_phonopy`: phonopy's full layout to ours.

    Parameters
    ----------
    tensor
        ``(N,)*n + (3,)*n`` force constants in the atom order of ``supercell`` (phonopy's
        ``force_constants``, phono3py's full ``fc2``/``fc3``), eV/Angstrom^n.
    atoms_sc
        Our supercell of the same crystal.
    supercell
        phonopy's supercell.

    Returns
    -------
    numpy.ndarray
        ``(3N,)*n`` float64 in the atom order of ``atoms_sc``.
    """
    t = np.asarray(tensor, dtype=float)
    n, natoms = t.ndim // 2, len(atoms_sc)
    if t.shape != (natoms,) * n + (3,) * n:
        raise ValueError(f"expected a full force-constant array of shape "
                         f"{(natoms,) * n + (3,) * n}, got {t.shape} (compact fc?)")
    perm = supercell_atom_map(atoms_sc, supercell)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    for axis in range(n):
        t = np.take(t, inv, axis=axis)
    order = [a for k in range(n) for a in (k, n + k)]
    return np.ascontiguousarray(t.transpose(order)).reshape((3 * natoms,) * n)


# ------------------------------------------------------------------ a DerivativeSet's
def derivatives_phonopy(derivatives: Any) -> Phonopy:
    """:class:`phonopy.Phonopy` with the fc2 of a
    :class:`~anharmbench.derivatives.DerivativeSet`'s order-2 FTG (full layout, eV/A^2),
    and its Born charges and dielectric tensor when it has them."""
    phonon = phonopy_object(derivatives.primitive, derivatives.ftg(2))
    phonon.force_constants = fc2_to_phonopy(derivatives.cartesian(2), derivatives.supercell(2),
                                            phonon)
    if derivatives.nac is not None:
        phonon.nac_params = _nac_params(derivatives.nac)
    return phonon


def derivatives_phono3py(
    derivatives: Any,
    mesh: Sequence[int] | int | None = None,
    *,
    sigmas: Sequence[float | None] | None = None,
    with_fc3: bool = True,
    log_level: int = 0,
) -> Any:
    """:class:`phono3py.Phono3py` carrying a :class:`~anharmbench.derivatives.DerivativeSet`'s
    fc2 and fc3 (phono3py's full layouts).

    The fc3 supercell is the order-3 FTG, the fc2 (``phonon_supercell``) the order-2 FTG.

    Parameters
    ----------
    derivatives
        The set (orders 2, and 3 with ``with_fc3``).
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

    S2 = derivatives.ftg(2)
    S3 = derivatives.ftg(3) if with_fc3 else S2
    ph3 = Phono3py(
        phonopy_unit_cell(derivatives.primitive),
        supercell_matrix=S3.T,
        primitive_matrix="P",
        phonon_supercell_matrix=None if np.array_equal(S2, S3) else S2.T,
        log_level=log_level,
    )
    ph3.fc2 = supercell_tensor_to_phonopy(derivatives.cartesian(2), derivatives.supercell(2),
                                          ph3.phonon_supercell)
    if with_fc3:
        ph3.fc3 = fc3_to_phono3py(derivatives.cartesian(3), derivatives.supercell(3), ph3)
    if derivatives.nac is not None:
        ph3.nac_params = _nac_params(derivatives.nac)
    if sigmas is not None:
        ph3.sigmas = list(sigmas)
    if mesh is not None:
        ph3.mesh_numbers = _mesh_numbers(mesh)
    return ph3


def _mesh_numbers(mesh: Sequence[int] | int | np.ndarray) -> np.ndarray:
    """``(3,)`` int64 mesh from one int or three positive ints."""
    arr = np.atleast_1d(np.asarray(mesh))
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,) or not np.allclose(arr, np.rint(arr)) or (arr < 1).any():
        raise ValueError(f"a mesh is one or three positive integers, got {mesh!r}")
    return np.rint(arr).astype(np.int64)


def _nac_params(nac: Any) -> dict[str, Any]:
    """phonopy's ``nac_params`` (writable copies: phonopy keeps and may change them)."""
    return {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in nac.items()}


def missing_born_warning(primitive: Atoms, nac: Any, what: str) -> str | None:
    """Why a crystal of several species without Born charges deserves a warning, or None.

    phonopy and phono3py add the LO-TO splitting (the non-analytical term) only from Born
    effective charges and the dielectric tensor; an ionic insulator without them gets
    the wrong optical branches near Gamma and a wrong conductivity (NaCl: kappa +8 %).
    Whether a crystal is an insulator cannot be told from its cell, so every crystal of
    more than one species without them is named (a metal or alloy needs none).
    """
    species = sorted(set(primitive.get_chemical_symbols()))
    if len(species) < 2 or (nac is not None and nac.get("born") is not None
                            and nac.get("dielectric") is not None):
        return None
    return (f"{what}: {primitive.get_chemical_formula()} has {len(species)} species "
            f"({', '.join(species)}) but no Born effective charges and dielectric tensor, so "
            "an insulator's LO-TO splitting is left out and its dispersion near Gamma and "
            "kappa are off (NaCl: kappa +8 %). Give them as phonopy's BORN file: beside the "
            "dataset, or anharmbench import DATASET --born BORN (a metal needs none)")
