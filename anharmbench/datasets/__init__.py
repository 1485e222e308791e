"""Training datasets: IDMD on the Taylor Hamiltonian and MD on the reference surface.

* :func:`run_idmd` / :class:`IDMDSettings` -- NVE MD with ``pair_style taylor``;
* :func:`run_refmd` / :class:`RefMDSettings` -- NVT (Langevin) MD on CRG;
* :mod:`anharmbench.datasets.io` -- extended XYZ frames, manifest, splits;
* :func:`anharmbench.cli.datasets.add_dataset_commands` -- ``anharmbench dataset ...``.
"""

from anharmbench.datasets.md import (
    DatasetResult,
    IDMDSettings,
    RefMDSettings,
    RunawayError,
    TrajectoryResult,
    TrajectorySpec,
    harmonic_displacements,
    integrated_autocorrelation_time,
    run_idmd,
    run_refmd,
    run_trajectory,
)

__all__ = [
    "DatasetResult",
    "IDMDSettings",
    "RefMDSettings",
    "RunawayError",
    "TrajectoryResult",
    "TrajectorySpec",
    "harmonic_displacements",
    "integrated_autocorrelation_time",
    "run_idmd",
    "run_refmd",
    "run_trajectory",
]
