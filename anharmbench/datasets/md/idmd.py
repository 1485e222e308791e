"""The IDMD dataset: NVE MD on a Taylor-series Hamiltonian, train/val plus a test run.

NVE MD on the Taylor-series Hamiltonian (``pair_style taylor``, a
:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` of the MD cell, e.g. from
:func:`anharmbench.hamiltonian.taylor_expansion` in 4I). Velocities ``velocity all
create T SEED dist gaussian mom yes rot no`` (zero total momentum), ``fix nve``, time
step 4 fs, 4000 steps in the paper profile. Frames every ``stride`` steps form train +
validation; a second trajectory with another seed gives the test set. Labels are the
Hamiltonian's own energies/forces (noiseless).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.datasets.io import (
    potential_record,
    read_frames,
    split_indices,
    write_manifest,
)
from anharmbench.datasets.md.directory import (
    finish_dataset,
    new_manifest,
    prepare_directory,
    record_trajectory,
    structure_record,
)
from anharmbench.datasets.md.results import DatasetResult, TrajectoryResult
from anharmbench.datasets.md.settings import (
    IDMDSettings,
    TrajectorySpec,
    lammps_seed,
    settings_fingerprint,
)
from anharmbench.datasets.md.trajectory import FrameHook, run_trajectory
from anharmbench.potentials.taylor_calculators import taylor_potential
from anharmbench.potentials.taylor_cartesian import TaylorTerms

__all__ = ["run_idmd"]


def run_idmd(
    terms: TaylorTerms | str | Path,
    directory: str | Path,
    settings: IDMDSettings | None = None,
    *,
    progress: bool = False,
    overwrite: bool = False,
    on_frame: FrameHook | None = None,
) -> DatasetResult:
    """The IDMD dataset: NVE MD on a Taylor Hamiltonian, train/val + a separate test run.

    Parameters
    ----------
    terms
        The Hamiltonian of the MD cell (a :class:`TaylorTerms`, written to
        ``<directory>/hamiltonian.taylor``), or the path of a Taylor file.
    directory
        Dataset directory (created). An existing one with the same settings and
        Hamiltonian is continued from its checkpoints.
    settings
        Default :meth:`IDMDSettings.paper`.
    progress
        tqdm progress bars.
    overwrite
        Discard whatever dataset ``directory`` holds and start over (without it, a
        dataset of other settings or another Hamiltonian there is an error).
    on_frame
        Hook called after every frame (see :func:`run_trajectory`).

    Returns
    -------
    DatasetResult
        ``train.xyz``/``val.xyz`` from the training trajectory (split fixed by the
        seed), ``test.xyz`` from the test trajectory, ``manifest.json``.

    Raises
    ------
    RunawayError
        When the expansion runs away (:mod:`~anharmbench.datasets.md.guard`).
    """
    settings = settings or IDMDSettings.paper()
    directory = Path(directory)
    terms, path, prec, fingerprint = _claim(terms, directory, settings, overwrite)
    potential = taylor_potential(path)
    atoms = terms.atoms()
    specs = _trajectory_specs(settings)
    hamiltonian = {
        "file": path.name,
        "path": str(path),
        "orders": sorted(terms.orders),
        "terms": {str(k): v for k, v in terms.n_terms().items()},
        "translations": terms.n_translations,
    }
    manifest = new_manifest(
        "idmd",
        fingerprint,
        settings,
        prec,
        {"hamiltonian": hamiltonian},
        structure_record(atoms, None),
    )
    write_manifest(directory, manifest)
    traj_dir = directory / "trajectories"
    results = {}
    for spec in specs:
        results[spec.name] = run_trajectory(
            spec,
            traj_dir,
            potential,
            atoms,
            reference=terms,
            fingerprint_extra=prec["fingerprint"],
            progress=progress,
            on_frame=on_frame,
        )
        record_trajectory(directory, manifest, results[spec.name])
    finish_dataset(directory, manifest, _splits(results, settings), settings.seed)
    return DatasetResult(directory, manifest, results)


def _claim(
    terms: TaylorTerms | str | Path, directory: Path, settings: IDMDSettings, overwrite: bool
) -> tuple[TaylorTerms, Path, dict[str, Any], str]:
    """Check the Hamiltonian, claim ``directory`` for it, and place its Taylor file.

    Returns
    -------
    tuple
        ``(terms, Taylor file, potential record, dataset fingerprint)``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    if isinstance(terms, (str, Path)):
        path = Path(terms).absolute()
        terms = TaylorTerms.read(path)
    else:  # written next to the data once the directory is known to be ours
        tmp = path = directory / "hamiltonian.taylor.tmp"
        terms.write(tmp)
    if 1 in terms.orders and np.abs(terms.orders[1].coefficients).max(initial=0.0) > 1e-8:
        raise ValueError("the Hamiltonian has first-order terms: it is not about equilibrium")
    prec = potential_record(taylor_potential(path))
    fingerprint = settings_fingerprint(settings, prec["fingerprint"])
    try:
        prepare_directory(directory, fingerprint, overwrite)
    except ValueError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None:
        path = directory / "hamiltonian.taylor"
        tmp.replace(path)
        prec = potential_record(taylor_potential(path))  # same fingerprint, final name
    return terms, path, prec, fingerprint


def _trajectory_specs(settings: IDMDSettings) -> list[TrajectorySpec]:
    """The training and the test trajectory (seeds 0 and 1 of the master seed)."""
    common: dict[str, Any] = {
        "source": "idmd",
        "temperature": settings.temperature,
        "ensemble": "nve",
        "timestep": settings.timestep,
        "equilibration_steps": 0,
        "stride": settings.stride,
        "init": settings.init,
        "checkpoint_every": settings.checkpoint_every,
        "guard_every": settings.guard_every,
        "thermo_every": settings.thermo_every,
        "max_displacement": settings.max_displacement,
        "max_energy_drift": settings.max_energy_drift,
        "max_temperature_factor": settings.max_temperature_factor,
    }
    return [
        TrajectorySpec(
            name="train",
            config_type="idmd_train",
            seed=lammps_seed(settings.seed, 0),
            n_frames=settings.n_steps // settings.stride,
            **common,
        ),
        TrajectorySpec(
            name="test",
            config_type="idmd_test",
            seed=lammps_seed(settings.seed, 1),
            n_frames=settings.test_steps // settings.stride,
            **common,
        ),
    ]


def _splits(
    results: dict[str, TrajectoryResult], settings: IDMDSettings
) -> dict[str, list[tuple[str, int, Atoms]]]:
    """Train/val from the training trajectory (fixed by the seed), test from the test one."""
    train = read_frames(results["train"].frames_file)
    test = read_frames(results["test"].frames_file)
    idx = split_indices(
        len(train),
        {"train": 1 - settings.val_fraction, "val": settings.val_fraction},
        settings.seed,
    )
    src_train, src_test = "trajectories/train.xyz", "trajectories/test.xyz"
    return {
        "train": [(src_train, int(i), train[i]) for i in idx["train"]],
        "val": [(src_train, int(i), train[i]) for i in idx["val"]],
        "test": [(src_test, i, a) for i, a in enumerate(test)],
    }
