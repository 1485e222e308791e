"""Driving LAMMPS from Python: the ASE calculator (one or many configurations), input decks."""

from anharmbench.lammps.batch import BatchCalculator, BatchResult, calculate_batch
from anharmbench.lammps.calculator import LammpsCalculator
from anharmbench.lammps.system import (
    Evaluation,
    LammpsError,
    LammpsSystem,
    NonFiniteResultError,
    open_lammps,
)

__all__ = [
    "BatchCalculator",
    "BatchResult",
    "Evaluation",
    "LammpsCalculator",
    "LammpsError",
    "LammpsSystem",
    "NonFiniteResultError",
    "calculate_batch",
    "open_lammps",
]
