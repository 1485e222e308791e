"""LAMMPS as an ASE :class:`~ase.calculators.calculator.Calculator`, one or many configurations.

:class:`LammpsCalculator` is the project's one evaluator of a
:class:`~anharmbench.potentials.spec.LammpsPotential`: ASE's ``atoms.calc`` interface
(``results`` of the last configuration) and the batch protocol of
:mod:`anharmbench.lammps.batch` (:meth:`LammpsCalculator.calculate_batch`: many positions
of one cell, one LAMMPS instance, ``run 0`` each), over one
:class:`~anharmbench.lammps.system.LammpsSystem`.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from anharmbench.lammps.batch import BatchResult
from anharmbench.lammps.system import LammpsSystem, NonFiniteResultError
from anharmbench.potentials.calculator import EnergyForcesStressCalculator
from anharmbench.potentials.spec import LammpsPotential


class LammpsCalculator(EnergyForcesStressCalculator):
    """ASE calculator that evaluates a :class:`LammpsPotential` in the LAMMPS library.

    One LAMMPS instance is kept while the species and the cell stay the same; new
    positions are scattered into it and evaluated with ``run 0``. A change of cell or
    species rebuilds the instance.

    Parameters
    ----------
    potential
        The potential description.
    atoms
        Optional structure whose LAMMPS instance is opened now (a bad potential or cell
        is refused here rather than at the first calculation); it is the cell of
        :meth:`calculate_batch` until another structure is calculated. The calculator is
        not attached to it (``atoms.calc`` is untouched).

    Notes
    -----
    ``results`` holds ``energy`` and ``free_energy`` (eV), ``forces`` ``(N, 3)``
    (eV/Angstrom) and ``stress`` ``(6,)`` Voigt (eV/Angstrom^3, ASE sign). The calculator
    is a context manager that releases its LAMMPS instance on exit.

    Examples
    --------
    >>> calc = LammpsCalculator(crg_potential(), atoms)          # doctest: +SKIP
    >>> with calc:                                              # doctest: +SKIP
    ...     res = calc.calculate_batch(positions)   # (n, N, 3) A -> BatchResult
    >>> atoms.calc = LammpsCalculator(crg_potential())           # doctest: +SKIP
    >>> atoms.get_forces()                                      # doctest: +SKIP
    """

    def __init__(self, potential: LammpsPotential, atoms: Atoms | None = None,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.potential = potential
        self._system: LammpsSystem | None = None
        if atoms is not None:
            self._system = LammpsSystem(potential, atoms)

    def _system_for(self, atoms: Atoms) -> LammpsSystem:
        """The LAMMPS instance of ``atoms``'s cell and species (rebuilt when they change)."""
        if self._system is None or not self._system.matches(atoms):
            self.release()
            self._system = LammpsSystem(self.potential, atoms)
        return self._system

    def evaluate_atoms(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy, forces and Voigt stress of ``atoms`` (what ``calculate`` stores)."""
        result = self._system_for(atoms).evaluate(atoms.positions)
        return result.energy, result.forces, result.stress

    @property
    def natoms(self) -> int:
        """Atoms of the open cell (0 when none is open)."""
        return 0 if self._system is None else self._system.natoms

    def calculate_batch(
        self,
        positions: np.ndarray,
        *,
        atoms: Atoms | None = None,
        stress: bool = True,
        progress: bool = False,
    ) -> BatchResult:
        """Evaluate many configurations of one cell (the batch protocol).

        Parameters
        ----------
        positions
            ``(n, N, 3)`` float64 Cartesian positions, Angstrom (ASE frame of the cell).
        atoms
            The cell and species of the configurations; default: the structure given at
            construction or last calculated. A different cell opens a new instance.
        stress
            Also compute stresses (else ``stresses`` is NaN).
        progress
            Show a progress bar.

        Returns
        -------
        BatchResult
            ``energies`` ``(n,)`` eV, ``forces`` ``(n, N, 3)`` eV/Angstrom, ``stresses``
            ``(n, 6)`` Voigt eV/Angstrom^3 (ASE sign).

        Raises
        ------
        NonFiniteResultError
            Naming the index of the first configuration with a NaN or infinite result.
        ValueError
            No structure known yet, or ``positions`` not ``(n, N, 3)``.
        """
        if atoms is not None:
            system = self._system_for(atoms)
        elif self._system is not None:
            system = self._system
        else:
            raise ValueError(
                "calculate_batch needs the cell: give atoms= here or to "
                "LammpsCalculator(potential, atoms)")
        positions = np.asarray(positions, dtype=float)
        if positions.ndim != 3 or positions.shape[1:] != (system.natoms, 3):
            raise ValueError(
                f"positions have shape {positions.shape}, expected (n, {system.natoms}, 3)"
            )
        n = positions.shape[0]
        energies = np.empty(n)
        forces = np.empty((n, system.natoms, 3))
        stresses = np.full((n, 6), np.nan)
        for i in tqdm(range(n), disable=not progress, desc="evaluate", unit="conf"):
            try:
                res = system.evaluate(positions[i], stress=stress)
            except NonFiniteResultError as exc:
                raise NonFiniteResultError(f"configuration {i}: {exc}") from exc
            energies[i] = res.energy
            forces[i] = res.forces
            stresses[i] = res.stress
        return BatchResult(energies=energies, forces=forces, stresses=stresses)

    def release(self) -> None:
        """Close the LAMMPS instance (a later calculation opens a new one)."""
        if self._system is not None:
            self._system.close()
            self._system = None

    def __enter__(self) -> LammpsCalculator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
