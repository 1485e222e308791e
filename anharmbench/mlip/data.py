"""Reading the train/validation/test splits of a dataset directory.

A dataset directory is what :func:`anharmbench.datasets.run_idmd`,
:func:`~anharmbench.datasets.run_refmd` or
:func:`anharmbench.datasets.dft.dataset_from_phono3py` (DFT data) writes: ``train.xyz``,
``val.xyz``, ``test.xyz`` (extended XYZ with energies and forces, and stresses and virials
when the source has them) and ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from anharmbench.datasets.io import MANIFEST, SPLIT_FILES, read_frames, read_manifest

__all__ = ["DatasetError", "DatasetSplits", "load_splits"]

# what a dataset folder is, for the messages that refuse one
_EXPECTED = (
    f"A dataset folder holds {', '.join(SPLIT_FILES.values())} (extended XYZ frames with "
    f"energies and forces) and {MANIFEST}; make one with 'anharmbench dataset idmd|refmd "
    "DIR' (or from phono3py DFT data with anharmbench.datasets.dft.dataset_from_phono3py)")


class DatasetError(ValueError):
    """A dataset directory is missing, incomplete, or holds frames without labels."""


@dataclass(frozen=True)
class DatasetSplits:
    """Labelled frames of one dataset, split for training.

    Attributes
    ----------
    directory
        The dataset directory.
    train, val, test
        Frames with a ``SinglePointCalculator`` holding ``energy`` (eV) and ``forces``
        (eV/Angstrom, shape ``(natoms, 3)``), and ``stress`` when the dataset has it.
    species
        Chemical symbols present in the training frames, sorted.
    kind
        ``"idmd"``, ``"refmd"``, ``"dft"`` or ``"unknown"`` (from the manifest; any
        kind is accepted, it is recorded with the trained model).
    """

    directory: Path
    train: list[Atoms]
    val: list[Atoms]
    test: list[Atoms]
    species: tuple[str, ...]
    kind: str


def load_splits(directory: str | Path, *, require: tuple[str, ...] = ("train",)) -> DatasetSplits:
    """Read ``train.xyz``, ``val.xyz`` and ``test.xyz`` of a dataset directory.

    Parameters
    ----------
    directory
        A dataset directory.
    require
        Splits that must hold at least one frame.

    Raises
    ------
    DatasetError
        When the directory or a required split is missing or empty, the manifest says
        the run is incomplete, or a frame has no energy/forces.
    """
    directory = Path(directory)
    if directory.is_file():
        raise DatasetError(
            f"dataset {directory} is a file, not a dataset folder. {_EXPECTED}")
    if not directory.is_dir():
        raise DatasetError(
            f"dataset directory {directory} does not exist; make one with "
            "'anharmbench dataset idmd|refmd DIR'"
        )
    present = [f for f in (MANIFEST, *SPLIT_FILES.values()) if (directory / f).is_file()]
    if not present:
        # an ordinary folder (or a plan's): say what a dataset is instead of "no frames"
        what = (" (it is a plan directory of 'anharmbench plan')"
                if (directory / "plan.json").is_file() else "")
        raise DatasetError(f"{directory} is not a dataset folder{what}: it has none of "
                           f"{MANIFEST}, {', '.join(SPLIT_FILES.values())}. {_EXPECTED}")
    manifest = read_manifest(directory) or {}
    if manifest and not manifest.get("complete", True):
        raise DatasetError(
            f"dataset {directory} is incomplete (the MD run stopped early); rerun the same "
            "'anharmbench dataset' command to finish it"
        )
    frames: dict[str, list[Atoms]] = {}
    for name, fname in SPLIT_FILES.items():
        frames[name] = read_frames(directory / fname)
        if name in require and not frames[name]:
            if not (directory / fname).is_file():
                raise DatasetError(f"dataset {directory} has no {fname}. {_EXPECTED}")
            raise DatasetError(f"dataset {directory} has no frames in {fname}")
        for i, atoms in enumerate(frames[name]):
            calc = atoms.calc
            if calc is None or "energy" not in calc.results or "forces" not in calc.results:
                raise DatasetError(
                    f"frame {i} of {directory / fname} has no energy/forces labels"
                )
    species = tuple(sorted({s for a in frames["train"] for s in a.get_chemical_symbols()}))
    return DatasetSplits(
        directory=directory,
        train=frames["train"],
        val=frames["val"],
        test=frames["test"],
        species=species,
        kind=str(manifest.get("kind", "unknown")),
    )
