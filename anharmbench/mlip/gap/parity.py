"""Energy/force parity of a GAP, evaluated through the LAMMPS plugin, on a dataset split."""

from __future__ import annotations

from pathlib import Path

from anharmbench.mlip.data import DatasetSplits, load_splits
from anharmbench.mlip.gap.deploy import gap_potential
from anharmbench.mlip.gap.model import GapModel, load_gap_model
from anharmbench.mlip.parity import ParityResult, calculator_parity, write_parity

__all__ = ["gap_parity"]


def gap_parity(
    model: str | Path | GapModel,
    dataset: str | Path | DatasetSplits,
    *,
    split: str = "test",
    directory: str | Path | None = None,
) -> tuple[ParityResult, dict[str, Path]]:
    """Energy/force parity of a GAP (through the LAMMPS plugin) on a dataset split.

    Parameters
    ----------
    model
        Model directory, xml or :class:`GapModel`.
    dataset
        Dataset directory or its splits.
    split
        ``"test"`` (the held-out frames), ``"val"`` or ``"train"``.
    directory
        Where to write ``parity_<split>.json|_energy.csv|_forces.csv|.png`` (default: the
        model directory).

    Returns
    -------
    (ParityResult, files)
        Errors (RMSE, MAE, max; energy per atom, forces overall and per species) and the
        written files.
    """
    from anharmbench.lammps import LammpsCalculator

    gm = model if isinstance(model, GapModel) else load_gap_model(model)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    splits = (
        dataset if isinstance(dataset, DatasetSplits) else load_splits(dataset, require=(split,))
    )
    frames = getattr(splits, split)
    if not frames:
        raise ValueError(f"dataset {splits.directory} has no frames in its {split} split")
    calc = LammpsCalculator(gap_potential(gm))
    try:
        result = calculator_parity(f"GAP {gm.directory.name}", calc, frames)
    finally:
        calc.release()
    out = write_parity(result, directory or gm.directory, stem=f"parity_{split}")
    return result, out
