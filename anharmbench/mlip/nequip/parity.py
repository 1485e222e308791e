"""Energy/force parity of a compiled NequIP model on a dataset split, through LAMMPS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from anharmbench.mlip.nequip.deploy import nequip_potential

__all__ = ["nequip_parity"]


def nequip_parity(
    model_pt2: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    *,
    elements: Sequence[str] | None = None,
    split: str = "test",
) -> dict[str, Path]:
    """Energy/force parity of a compiled model on a dataset split, through LAMMPS.

    Writes ``parity.json``, ``parity_energy.csv``, ``parity_forces.csv`` and
    ``parity.png`` (:func:`anharmbench.mlip.parity.write_parity`) into ``out_dir``.
    """
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.parity import calculator_parity, write_parity

    splits = load_splits(dataset, require=(split,))
    frames = getattr(splits, split)
    species = tuple(elements) if elements is not None else splits.species
    potential = nequip_potential(model_pt2, species)
    result = calculator_parity(potential.name, LammpsCalculator(potential), frames)
    return write_parity(result, out_dir)
