"""LAMMPS as an ASE :class:`~ase.calculators.calculator.Calculator`."""

from __future__ import annotations

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from anharmbench.lammps.system import LammpsSystem
from anharmbench.potentials.spec import LammpsPotential


class LammpsCalculator(Calculator):
    """ASE calculator that evaluates a :class:`LammpsPotential` in the LAMMPS library.

    One LAMMPS instance is kept while the species and the cell stay the same; new
    positions are scattered into it and evaluated with ``run 0``. A change of cell or
    species rebuilds the instance.

    Parameters
    ----------
    potential
        The potential description.

    Notes
    -----
    ``results`` holds ``energy`` and ``free_energy`` (eV), ``forces`` ``(N, 3)``
    (eV/Angstrom) and ``stress`` ``(6,)`` Voigt (eV/Angstrom^3, ASE sign).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: LammpsPotential, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.potential = potential
        self._system: LammpsSystem | None = None

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        assert self.atoms is not None  # set by Calculator.calculate
        if self._system is None or not self._system.matches(self.atoms):
            self.release()
            self._system = LammpsSystem(self.potential, self.atoms)
        result = self._system.evaluate(self.atoms.positions)
        self.results = {
            "energy": result.energy,
            "free_energy": result.energy,
            "forces": result.forces,
            "stress": result.stress,
        }

    def release(self) -> None:
        """Close the LAMMPS instance (a later calculation opens a new one)."""
        if self._system is not None:
            self._system.close()
            self._system = None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
