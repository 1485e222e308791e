"""The two evaluators of a :class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms`
model: a numpy ASE calculator and the LAMMPS potential of ``pair_style taylor``.

Kept apart from the model itself (``taylor_cartesian.py``) so that the polynomial, its
forms and its file stay in one module and the ways to run it in another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from anharmbench.potentials.calculator import EnergyForcesStressCalculator
from anharmbench.potentials.spec import (
    LammpsPotential,
    lammps_path_word,
    model_file_potential,
)
from anharmbench.potentials.taylor_cartesian import TaylorTerms
from anharmbench.potentials.taylor_file import element_names, read_symbols

__all__ = ["CartesianTaylorCalculator", "taylor_potential"]


class CartesianTaylorCalculator(EnergyForcesStressCalculator):
    """Numpy ASE calculator of a :class:`TaylorTerms` model (reference for ``pair_style taylor``).

    The atoms must be the model's structure: same number and order of atoms, same
    symbols and the same cell (in the same Cartesian frame); positions may be anywhere
    (displacements use the nearest lattice image).

    Parameters
    ----------
    terms
        The model.

    Notes
    -----
    ``results``: ``energy``/``free_energy`` (eV), ``forces`` ``(N, 3)`` (eV/Angstrom),
    ``stress`` ``(6,)`` Voigt (eV/Angstrom^3, ASE sign; see the module docstring).
    """

    def __init__(self, terms: TaylorTerms, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.terms = terms

    def evaluate_atoms(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy, forces and Voigt stress of ``atoms`` (the model's structure)."""
        terms = self.terms
        if tuple(atoms.get_chemical_symbols()) != terms.symbols:
            raise ValueError(
                f"the atoms ({atoms.get_chemical_formula()}, {len(atoms)} atoms) are "
                f"not the Taylor model's structure ({terms.natoms} atoms, same order of species)"
            )
        if not np.allclose(atoms.cell.array, terms.cell, rtol=0, atol=1e-8):
            raise ValueError(
                "the cell of the atoms differs from the Taylor model's cell; the model is "
                "defined for its reference cell only"
            )
        return terms.evaluate(atoms.positions)


def taylor_potential(
    path: str | Path,
    elements: tuple[str, ...] | list[str] | None = None,
    *,
    name: str | None = None,
) -> LammpsPotential:
    """The LAMMPS potential that evaluates the Taylor file ``path`` (``pair_style taylor``).

    Parameters
    ----------
    path
        The Taylor file (:meth:`TaylorTerms.write`); stored as an absolute path.
    elements
        Element of each LAMMPS atom type, in type order. Default: the file's element
        names (read from its header, so the file must exist).
    name
        Name of the potential in reports (default ``taylor:<file name>``).

    Returns
    -------
    LammpsPotential
        ``pair_style taylor``, ``pair_coeff * * <path> <elements...>``, ``files=(path,)``.
        The pair style comes from the auto-loaded plugin (``make setup`` builds it).
    """
    path = Path(path).absolute()
    lammps_path_word(path, what="the Taylor file path")
    if elements is None:
        elements = element_names(read_symbols(path))
    return model_file_potential("taylor", path, elements, name=name or f"taylor:{path.name}")
