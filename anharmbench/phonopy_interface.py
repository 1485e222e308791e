"""Bridges to phonopy: its finite-displacement route, and our force constants in its format.

phonopy is the independent code path the derivative engine is checked against, and
the format in which a phonopy user takes our second-order results further.

Conventions: our supercells follow ``ase.build.make_supercell`` (rows of ``P`` are the
supercell vectors in the primitive basis); phonopy's ``supercell_matrix`` ``M`` acts on
columns, so ``M = P.T``. Atom orders differ; :func:`phonopy_atom_map` matches them by
position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

#: ``evaluate(positions (n, N, 3)) -> (energies (n,), forces (n, N, 3))`` on one supercell.
BatchForces = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


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
        primitive_matrix=None,
    )


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
    evaluate: Callable[[Atoms], BatchForces],
    *,
    distance: float = 0.01,
) -> int:
    """Run phonopy's own finite-displacement route for fc2; returns the number of evaluations.

    Parameters
    ----------
    phonon
        Target phonopy object (its ``force_constants`` are produced in place).
    evaluate
        ``evaluate(supercell_atoms)`` returns a batch function for that cell (e.g. a
        :class:`~anharmbench.lammps.BatchEvaluator`).
    distance
        Displacement, Angstrom; phonopy's plus-minus displacements are used.
    """
    phonon.generate_displacements(distance=distance, is_plusminus=True)
    sc = phonon.supercell
    ref = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    positions = np.array([s.positions for s in phonon.supercells_with_displacements])
    _, forces = evaluate(ref)(positions)
    phonon.forces = forces
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
