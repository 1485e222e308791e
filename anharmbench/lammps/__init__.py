"""Driving LAMMPS from Python: ASE calculator, batch evaluator, input decks."""

from anharmbench.lammps.batch import BatchEvaluator, BatchResult
from anharmbench.lammps.calculator import LammpsCalculator
from anharmbench.lammps.system import (
    Evaluation,
    LammpsError,
    LammpsSystem,
    NonFiniteResultError,
    open_lammps,
)

__all__ = [
    "BatchEvaluator",
    "BatchResult",
    "Evaluation",
    "LammpsCalculator",
    "LammpsError",
    "LammpsSystem",
    "NonFiniteResultError",
    "open_lammps",
]
