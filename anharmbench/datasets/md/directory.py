"""The directory of an MD dataset: claim or continue it, record its runs, write its splits.

A directory belongs to one set of settings and potentials (the manifest's fingerprint):
the same call continues it from its checkpoints, another is refused unless told to
overwrite. The manifest is rewritten after every trajectory, and marked complete once the
splits are written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.datasets.io import (
    FORMAT,
    MANIFEST,
    read_manifest,
    software_versions,
    split_summary,
    write_manifest,
    write_splits,
)
from anharmbench.datasets.md.results import TrajectoryResult

__all__ = [
    "finish_dataset",
    "new_manifest",
    "prepare_directory",
    "record_trajectory",
    "structure_record",
]


def prepare_directory(directory: Path, fingerprint: str, overwrite: bool) -> None:
    """Create ``directory``, or clear it (``overwrite``), or check that it holds this run.

    Raises
    ------
    ValueError
        The directory holds a dataset of another fingerprint and ``overwrite`` is false.
    """
    manifest = read_manifest(directory)
    if manifest is not None and manifest.get("fingerprint") != fingerprint:
        if not overwrite:
            raise ValueError(
                f"{directory} holds a dataset of other settings or another potential "
                f"({manifest.get('kind')}, fingerprint {str(manifest.get('fingerprint'))[:12]}); "
                "use another directory or overwrite it"
            )
    if overwrite and directory.exists():
        for sub in ("trajectories",):
            shutil.rmtree(directory / sub, ignore_errors=True)
        for name in (MANIFEST, "train.xyz", "val.xyz", "test.xyz", "splits.json"):
            (directory / name).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)


def structure_record(atoms: Atoms, supercell: Any) -> dict[str, Any]:
    """The manifest's ``structure``: formula, atom count, supercell matrix and cell."""
    return {
        "formula": atoms.get_chemical_formula(),
        "natoms": len(atoms),
        "supercell": np.asarray(supercell).tolist() if supercell is not None else None,
        "cell": np.asarray(atoms.cell.array).tolist(),
    }


def new_manifest(
    kind: str,
    fingerprint: str,
    settings: Any,
    potential: dict[str, Any],
    extra: Mapping[str, Any],
    structure: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a dataset not yet complete (no trajectories recorded).

    Parameters
    ----------
    kind
        ``"idmd"`` or ``"refmd"``.
    fingerprint
        Of the settings and potentials (:func:`prepare_directory`).
    settings
        The dataset's settings dataclass (its ``seed`` is the master seed).
    potential
        :func:`~anharmbench.datasets.io.potential_record` of the labelling potential.
    extra
        Entries of this kind of dataset, after ``potential`` (e.g. the Hamiltonian).
    structure
        :func:`structure_record` of the MD cell.
    """
    return {
        "format": FORMAT,
        "kind": kind,
        "complete": False,
        "fingerprint": fingerprint,
        "seed": settings.seed,
        "settings": asdict(settings),
        "potential": potential,
        **extra,
        "structure": structure,
        "versions": software_versions(),
        "trajectories": {},
    }


def record_trajectory(
    directory: Path, manifest: dict[str, Any], result: TrajectoryResult
) -> None:
    """Add a finished trajectory to the manifest and rewrite it."""
    manifest["trajectories"][result.name] = result.to_dict()
    write_manifest(directory, manifest)


def finish_dataset(
    directory: Path,
    manifest: dict[str, Any],
    splits: Mapping[str, Iterable[tuple[str, int, Atoms]]],
    seed: int,
) -> None:
    """Write the splits (:func:`~anharmbench.datasets.io.write_splits`) and the complete
    manifest."""
    record = write_splits(directory, splits)
    manifest["splits"] = split_summary(record, seed)
    manifest["complete"] = True
    write_manifest(directory, manifest)
