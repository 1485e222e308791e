"""The batch protocol: energies, forces and stresses of many configurations of one cell.

An evaluator in this project is an ASE :class:`~ase.calculators.calculator.Calculator`.
One that can do better than a loop over configurations offers
``calculate_batch(positions, *, atoms=None, stress=True, progress=False) -> BatchResult``
(:class:`~anharmbench.lammps.calculator.LammpsCalculator`: one LAMMPS instance, ``run 0``
per configuration); :func:`calculate_batch` uses it when present and otherwise calls the
calculator once per configuration (any ASE calculator: CHGNet, SevenNet, a DFT code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

__all__ = ["BatchCalculator", "BatchResult", "calculate_batch"]


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


@runtime_checkable
class BatchCalculator(Protocol):
    """An ASE calculator that evaluates many configurations of one cell at once."""

    def calculate_batch(self, positions: np.ndarray, *, atoms: Atoms | None = None,
                        stress: bool = True, progress: bool = False) -> BatchResult:
        """``(n, N, 3)`` positions (Angstrom) of ``atoms``'s cell -> :class:`BatchResult`."""
        ...


def calculate_batch(calculator: Any, atoms: Atoms, positions: np.ndarray, *,
                    stress: bool = True, progress: bool = False) -> BatchResult:
    """Evaluate configurations of ``atoms`` with any ASE calculator.

    Parameters
    ----------
    calculator
        An ASE calculator; its ``calculate_batch`` is used when it has one
        (:class:`BatchCalculator`), else one ASE calculation per configuration.
    atoms
        The cell and species of the configurations (not modified).
    positions
        ``(n, N, 3)`` float64 Cartesian positions, Angstrom.
    stress
        Also compute stresses (else NaN).
    progress
        Show a progress bar.

    Returns
    -------
    BatchResult
    """
    if isinstance(calculator, BatchCalculator):
        return calculator.calculate_batch(positions, atoms=atoms, stress=stress,
                                          progress=progress)
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 3 or positions.shape[1:] != (len(atoms), 3):
        raise ValueError(
            f"positions have shape {positions.shape}, expected (n, {len(atoms)}, 3)")
    n = positions.shape[0]
    energies = np.empty(n)
    forces = np.empty(positions.shape)
    stresses = np.full((n, 6), np.nan)
    for i in tqdm(range(n), disable=not progress, desc="evaluate", unit="conf"):
        a = atoms.copy()
        a.positions = positions[i]
        a.calc = calculator
        energies[i] = a.get_potential_energy()
        forces[i] = a.get_forces()
        if stress:
            stresses[i] = a.get_stress(voigt=True)
    return BatchResult(energies=energies, forces=forces, stresses=stresses)
