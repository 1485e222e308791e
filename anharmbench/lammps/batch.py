"""Batch evaluation of many configurations of one cell in a single LAMMPS instance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from anharmbench.lammps.system import LammpsSystem, NonFiniteResultError
from anharmbench.potentials.spec import LammpsPotential


@dataclass(frozen=True)
class BatchResult:
    """Energies, forces and stresses of a batch of configurations.

    Attributes
    ----------
    energies
        ``(n,)`` float64, eV.
    forces
        ``(n, N, 3)`` float64, eV/Angstrom.
    stresses
        ``(n, 6)`` float64 Voigt, eV/Angstrom^3 (NaN when not requested).
    """

    energies: np.ndarray
    forces: np.ndarray
    stresses: np.ndarray


class BatchEvaluator:
    """Evaluate many positions of one cell with one LAMMPS instance.

    The structure (cell, species, order of atoms) is fixed at construction; each
    configuration's positions are scattered into LAMMPS and evaluated with ``run 0``,
    so no LAMMPS start-up or input parsing is repeated per configuration.

    Parameters
    ----------
    potential
        The potential description.
    atoms
        The reference structure (its cell and species are used for every configuration).
    """

    def __init__(self, potential: LammpsPotential, atoms: Atoms) -> None:
        self.potential = potential
        self.atoms = atoms.copy()
        self._system = LammpsSystem(potential, atoms)

    @property
    def natoms(self) -> int:
        return self._system.natoms

    def evaluate(
        self,
        positions: np.ndarray,
        *,
        stress: bool = True,
        progress: bool = False,
    ) -> BatchResult:
        """Evaluate configurations.

        Parameters
        ----------
        positions
            ``(n, N, 3)`` Cartesian positions in Angstrom (ASE frame of ``atoms``).
        stress
            Also return stresses.
        progress
            Show a progress bar.

        Returns
        -------
        BatchResult

        Raises
        ------
        NonFiniteResultError
            Naming the index of the first configuration with a NaN or infinite result.
        """
        positions = np.asarray(positions, dtype=float)
        if positions.ndim != 3 or positions.shape[1:] != (self.natoms, 3):
            raise ValueError(
                f"positions have shape {positions.shape}, expected (n, {self.natoms}, 3)"
            )
        n = positions.shape[0]
        energies = np.empty(n)
        forces = np.empty((n, self.natoms, 3))
        stresses = np.full((n, 6), np.nan)
        system = self._system
        for i in tqdm(range(n), disable=not progress, desc="evaluate", unit="conf"):
            try:
                res = system.evaluate(positions[i], stress=stress)
            except NonFiniteResultError as exc:
                raise NonFiniteResultError(f"configuration {i}: {exc}") from exc
            energies[i] = res.energy
            forces[i] = res.forces
            stresses[i] = res.stress
        return BatchResult(energies=energies, forces=forces, stresses=stresses)

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adapter for the derivative engine: ``(energies, forces)`` of ``(n, N, 3)`` positions."""
        res = self.evaluate(positions, stress=False)
        return res.energies, res.forces

    def close(self) -> None:
        self._system.close()

    def __enter__(self) -> BatchEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
