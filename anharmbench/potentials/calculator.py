"""The shared ASE calculator shape of the project's evaluators.

Every evaluator here (the numpy CRG and Taylor references, LAMMPS) computes energy, forces
and stress of a structure together. :class:`EnergyForcesStressCalculator` holds what
they share -- ASE's ``calculate`` bookkeeping and the ``results`` it fills -- so that
each evaluator writes only :meth:`~EnergyForcesStressCalculator.evaluate_atoms`.
"""

from __future__ import annotations

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from numpy.typing import NDArray

__all__ = ["EnergyForcesStressCalculator"]


class EnergyForcesStressCalculator(Calculator):
    """ASE calculator that computes energy, forces and stress of a structure at once.

    Notes
    -----
    ``results``: ``energy``/``free_energy`` (eV), ``forces`` ``(N, 3)`` (eV/Angstrom),
    ``stress`` ``(6,)`` Voigt (eV/Angstrom^3, ASE sign), whichever property was asked.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute energy, forces and stress of ``atoms`` (always all three together)."""
        super().calculate(atoms, properties or ["energy"], system_changes)
        if self.atoms is None:  # Calculator.calculate copies atoms when given
            raise ValueError(
                f"{type(self).__name__}.calculate needs atoms (or use atoms.calc = ...)"
            )
        energy, forces, stress = self.evaluate_atoms(self.atoms)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces,
            "stress": stress,
        }

    def evaluate_atoms(self, atoms: Atoms) -> tuple[float, NDArray, NDArray]:
        """``(energy, forces, stress)`` of ``atoms``: eV, ``(N, 3)`` eV/Angstrom and the
        ``(6,)`` Voigt stress in eV/Angstrom^3 (ASE sign)."""
        raise NotImplementedError  # pragma: no cover - every evaluator defines it
