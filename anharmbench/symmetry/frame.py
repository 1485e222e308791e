"""The crystal's own frame: the orientation and origin that reported derivatives refer to.

The symmetrized modes of :mod:`~anharmbench.symmetry.modes` are built in the lab frame of
the input cell (Cartesian axes and the cell each atom was wrapped into), so the partners
inside an irrep block, and with them the components Table I reports, would change if the
same crystal were given rotated or translated. The reported convention
(:mod:`~anharmbench.symmetry.convention`) is therefore evaluated on a *canonical* copy of
the crystal, fixed by the crystal alone:

* **orientation**: spglib's standardisation, ``std_rotation_matrix`` (the rotation from
  the input Cartesian frame to the standardised conventional setting: for a cubic crystal
  the cube axes become x, y, z);
* **origin**: the atom of highest site symmetry (ties: lowest atomic number, then lowest
  index), with every other atom wrapped into ``[0, 1)`` relative to it.

The primitive lattice vectors and the atom order stay the user's (the FTG supercell
matrices refer to them). :func:`canonical_modes` maps the canonical crystal's modes back
onto the lab supercell, atom by atom, so that a lab derivative tensor can be read in them.
No library gives this map (spglib gives the rotation, not mode bases), hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib
from ase import Atoms

from anharmbench.symmetry.modes import SymmetrizedModes, symmetrized_modes

__all__ = ["CrystalFrame", "canonical_modes", "crystal_frame"]

#: Positions within this (fractional) of a cell face are wrapped to the lower face.
_WRAP_TOL = 1e-6


def _wrap(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x + _WRAP_TOL)


@dataclass(frozen=True)
class CrystalFrame:
    """Rotation and origin of a crystal's canonical setting.

    Attributes
    ----------
    rotation : numpy.ndarray
        ``(3, 3)`` float64, proper rotation ``r_canonical = rotation @ r_lab``.
    origin_atom : int
        Index of the primitive atom placed at the origin.
    shifts : numpy.ndarray
        ``(n_prim, 3)`` int64: primitive atom ``k`` of lab cell ``l`` sits in canonical
        cell ``l + shifts[k]``.
    canonical : ase.Atoms
        The canonical primitive cell (same lattice vectors, rotated; same atom order).
    """

    rotation: np.ndarray
    origin_atom: int
    shifts: np.ndarray
    canonical: Atoms

    @property
    def is_identity(self) -> bool:
        """Whether the canonical setting is the lab one (nothing to map)."""
        return bool(np.allclose(self.rotation, np.eye(3), atol=1e-10)
                    and not self.shifts.any())


def crystal_frame(prim: Atoms, symprec: float = 1e-5) -> CrystalFrame:
    """The canonical setting of a primitive cell (module docstring).

    Parameters
    ----------
    prim : ase.Atoms
        Primitive cell, as given to :class:`~anharmbench.symmetry.group.SupercellSymmetry`.
    symprec : float
        spglib tolerance (Angstrom).

    Returns
    -------
    CrystalFrame
    """
    lattice = np.array(prim.cell.array, dtype=float)
    frac = prim.get_scaled_positions(wrap=True)
    numbers = np.asarray(prim.numbers)
    data = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec)
    if data is None:
        raise ValueError("spglib could not determine the symmetry of the primitive cell")
    rotation = np.asarray(data.std_rotation_matrix, dtype=float)
    if np.linalg.det(rotation) < 0:  # spglib returns a rotation; keep it proper regardless
        rotation = -rotation
    site_order = np.zeros(len(prim), dtype=np.int64)
    for r, t in zip(data.rotations, data.translations, strict=True):
        d = frac @ np.asarray(r).T + t - frac
        site_order += np.linalg.norm((d - np.rint(d)) @ lattice, axis=1) < 10 * symprec
    origin = min(range(len(prim)), key=lambda k: (-int(site_order[k]), int(numbers[k]), k))
    rel = frac - frac[origin]
    canonical_frac = _wrap(rel)
    shifts = np.rint(rel - canonical_frac).astype(np.int64)  # lab cell l -> l + shifts
    canonical = Atoms(numbers=numbers, cell=lattice @ rotation.T,
                      scaled_positions=canonical_frac, pbc=True)
    if prim.has("masses"):
        canonical.set_masses(prim.get_masses())
    return CrystalFrame(rotation, int(origin), shifts, canonical)


def canonical_modes(modes: SymmetrizedModes) -> tuple[SymmetrizedModes, np.ndarray]:
    """The canonical crystal's symmetrized modes, and their vectors in the lab supercell.

    Parameters
    ----------
    modes : SymmetrizedModes
        The lab modes of a supercell.

    Returns
    -------
    canonical : SymmetrizedModes
        Modes of the canonical crystal (``modes`` itself when the frame is the lab's).
    vectors : numpy.ndarray
        ``(3N, M)`` float64: the canonical modes as displacements of the lab supercell
        (lab atom order and axes), orthonormal, spanning the lab modes' space.
    """
    sym = modes.sym
    frame = crystal_frame(sym.prim, sym.symprec)
    if frame.is_identity:
        return modes, np.asarray(modes.modes)
    can = symmetrized_modes(frame.canonical, sym.S, symprec=sym.symprec, seed=modes.seed)
    csym = can.sym
    # canonical atom (k, L) is lab atom (k, L - shifts[k])
    cells = csym.cell_vectors[csym.atom_cell] - frame.shifts[csym.atom_kappa]
    lab_atom = sym.atom_index[sym.cell_index(cells), csym.atom_kappa]
    if len(np.unique(lab_atom)) != sym.n_atoms:
        raise RuntimeError("internal error: the canonical supercell does not map onto the lab one")
    U = np.asarray(can.modes).reshape(sym.n_atoms, 3, -1)
    out = np.zeros_like(U)
    out[lab_atom] = np.einsum("ab,nam->nbm", frame.rotation, U)  # u_lab = R^T u_canonical
    return can, out.reshape(3 * sym.n_atoms, -1)
