"""Symmetry stage: space group in a supercell, symmetrized modes, invariant tensors.

Main entry points
-----------------
* :class:`SupercellSymmetry` -- space group restricted to a supercell (atom
  permutations, rotations, FTG q-points and stars).
* :func:`symmetrized_modes` / :class:`SymmetrizedModes` -- real G-irreducible blocks
  of the translation-free displacement space, labelled like ``"X:Eu"``.
* :func:`irreducible_basis` / :class:`IrreducibleBasis` -- orthonormal basis of
  invariant symmetric tensors of order 2..6 (a ``DerivativeBasis``).
* :func:`invariant_count` / :func:`invariant_count_stars` -- character-theory counts.
"""

from anharmbench.symmetry.basis import BasisTensor, IrreducibleBasis
from anharmbench.symmetry.characters import invariant_count, invariant_count_stars
from anharmbench.symmetry.group import SupercellSymmetry, as_supercell_matrix, format_qpoint
from anharmbench.symmetry.invariants import irreducible_basis
from anharmbench.symmetry.modes import (
    ModeBlock,
    SymmetrizedModes,
    clear_modes_cache,
    symmetrized_modes,
)

#: Supercell matrices used in the paper (rows = supercell vectors, primitive basis).
S_PRIM = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
S_2I = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
S_C = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]
S_4I = [[4, 0, 0], [0, 4, 0], [0, 0, 4]]
S_3C = [[-3, 3, 3], [3, -3, 3], [3, 3, -3]]

__all__ = [
    "BasisTensor",
    "IrreducibleBasis",
    "ModeBlock",
    "S_2I",
    "S_3C",
    "S_4I",
    "S_C",
    "S_PRIM",
    "SupercellSymmetry",
    "SymmetrizedModes",
    "as_supercell_matrix",
    "clear_modes_cache",
    "format_qpoint",
    "invariant_count",
    "invariant_count_stars",
    "irreducible_basis",
    "symmetrized_modes",
]
