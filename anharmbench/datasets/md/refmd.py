"""The reference-MD dataset: NVT on the reference surface at several temperatures.

NVT (``fix nve`` + ``fix langevin ... zero yes``) on the reference surface (CRG) at
2000 K and 3000 K in 3 S_C (324 atoms), after an equilibration; 1346 snapshots in all,
spaced by ``stride`` steps (fixed, or ``None``: twice the integrated autocorrelation time
of the displacement field measured in the second half of the equilibration). Labels are
computed by a separate static LAMMPS instance of the *reference* potential (the Langevin
fix adds friction and noise to LAMMPS's force array, and the MD itself may run on a
cheaper surface: in the paper profile the dynamics use PPPM at 1e-5 instead of the exact
Ewald sum, ~25x faster in 3 S_C, while every stored energy/force/stress is the exact
reference).
"""

from __future__ import annotations

from pathlib import Path

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
    RefMDSettings,
    TrajectorySpec,
    lammps_seed,
    settings_fingerprint,
)
from anharmbench.datasets.md.trajectory import FrameHook, run_trajectory
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive

__all__ = ["run_refmd"]


def run_refmd(
    directory: str | Path,
    settings: RefMDSettings | None = None,
    *,
    potential: LammpsPotential | None = None,
    md_potential: LammpsPotential | None = None,
    progress: bool = False,
    overwrite: bool = False,
    on_frame: FrameHook | None = None,
) -> DatasetResult:
    """The reference-MD dataset: NVT on the reference surface at several temperatures.

    Parameters
    ----------
    directory
        Dataset directory (created; continued when it holds the same run).
    settings
        Default :meth:`RefMDSettings.paper`.
    potential
        The reference surface that labels every frame (default: CRG,
        :func:`~anharmbench.potentials.crg.crg_potential`, exact Ewald).
    md_potential
        The surface that drives the dynamics. Default: with the CRG default and
        ``settings.md_kspace == "pppm"`` the CRG surface with PPPM, else ``potential``.
    progress, overwrite, on_frame
        As in :func:`run_idmd`.

    Returns
    -------
    DatasetResult
        Frames of every temperature split into ``train``/``val``/``test`` by
        ``settings.split`` (stratified by temperature, fixed by the seed).
    """
    settings = settings or RefMDSettings.paper()
    directory = Path(directory)
    potential, md_potential = _potentials(settings, potential, md_potential)
    smat = supercell_matrix(settings.supercell)
    atoms = build_supercell(tho2_primitive(settings.lattice_constant), smat)
    prec = potential_record(potential)
    mrec = potential_record(md_potential)
    fingerprint = settings_fingerprint(settings, prec["fingerprint"], mrec["fingerprint"])
    prepare_directory(directory, fingerprint, overwrite)
    specs = _trajectory_specs(settings)
    manifest = new_manifest(
        "refmd",
        fingerprint,
        settings,
        prec,
        {"md_potential": mrec},
        structure_record(atoms, smat),
    )
    write_manifest(directory, manifest)
    traj_dir = directory / "trajectories"
    results: dict[str, TrajectoryResult] = {}
    splits: dict[str, list[tuple[str, int, Atoms]]] = {"train": [], "val": [], "test": []}
    for k, spec in enumerate(specs):
        res = run_trajectory(
            spec,
            traj_dir,
            md_potential,
            atoms,
            label_potential=potential,
            fingerprint_extra=prec["fingerprint"] + mrec["fingerprint"],
            progress=progress,
            on_frame=on_frame,
        )
        results[spec.name] = res
        record_trajectory(directory, manifest, res)
        # every temperature split on its own (stratified), fixed by the seed
        frames = read_frames(res.frames_file)
        idx = split_indices(
            len(frames),
            dict(zip(("train", "val", "test"), settings.split, strict=True)),
            settings.seed + k,
        )
        src = f"trajectories/{res.frames_file.name}"
        for name, members in idx.items():
            splits[name].extend((src, int(i), frames[i]) for i in members)
    finish_dataset(directory, manifest, splits, settings.seed)
    return DatasetResult(directory, manifest, results)


def _potentials(
    settings: RefMDSettings,
    potential: LammpsPotential | None,
    md_potential: LammpsPotential | None,
) -> tuple[LammpsPotential, LammpsPotential]:
    """``(labelling potential, MD potential)`` with their defaults filled in."""
    from anharmbench.potentials.crg import crg_potential

    if potential is None:
        potential = crg_potential()
        if md_potential is None and settings.md_kspace == "pppm":
            md_potential = crg_potential(kspace="pppm", kspace_accuracy=settings.md_kspace_accuracy)
    return potential, md_potential or potential


def _trajectory_specs(settings: RefMDSettings) -> list[TrajectorySpec]:
    """One Langevin trajectory per temperature, the snapshots shared out evenly."""
    n_t = len(settings.temperatures)
    if n_t == 0:
        raise ValueError("give at least one temperature")
    per = [
        settings.n_snapshots // n_t + (1 if i < settings.n_snapshots % n_t else 0)
        for i in range(n_t)
    ]
    specs = []
    for i, (temp, n_frames) in enumerate(zip(settings.temperatures, per, strict=True)):
        label = f"{temp:g}K"
        specs.append(
            TrajectorySpec(
                name=f"T{label}",
                source="refmd",
                config_type=f"refmd_{label}",
                temperature=float(temp),
                ensemble="langevin",
                timestep=settings.timestep,
                equilibration_steps=settings.equilibration_steps,
                n_frames=n_frames,
                stride=settings.stride,
                seed=lammps_seed(settings.seed, 10 + i),
                damp=settings.damp,
                checkpoint_every=settings.checkpoint_every,
                guard_every=settings.guard_every,
                thermo_every=settings.thermo_every,
                max_temperature_factor=settings.max_temperature_factor,
                min_stride=settings.min_stride,
                max_stride=settings.max_stride,
            )
        )
    return specs
