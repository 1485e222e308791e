"""What an MD run reports: the summary of one trajectory and of a finished dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["DatasetResult", "TrajectoryResult"]


@dataclass(frozen=True)
class TrajectoryResult:
    """Summary of one trajectory.

    Attributes
    ----------
    name
        Trajectory name.
    frames_file
        The extended XYZ file of its frames.
    n_frames, n_steps, stride
        Frames written, MD steps run in all, steps between frames.
    temperature
        ``{"target", "min", "max", "mean"}`` over the thermo samples of the sampling
        part (every ``thermo_every`` steps after the equilibration), K; ``"frames_min"``,
        ``"frames_max"`` over the frames.
    energy_drift
        NVE: ``{"max_abs_per_atom"`` (eV), ``"slope_per_atom_per_ps"`` (eV/ps)}``;
        empty for NVT.
    max_displacement
        Largest displacement from the reference seen at the checks (Angstrom; NaN when
        there is no reference).
    tau_pe
        Integrated autocorrelation time of the potential energy at the end of the
        equilibration, steps (NaN if not measured).
    tau_displacement
        Envelope autocorrelation time of the displacement field (steps; sets the
        automatic stride).
    seconds
        Wall time spent in this and earlier (interrupted) calls.
    steps_per_second
        MD speed (including labelling and I/O).
    resumed_from
        Step of the checkpoint this call started from (0: fresh).
    """

    name: str
    frames_file: Path
    n_frames: int
    n_steps: int
    stride: int
    temperature: dict[str, float]
    energy_drift: dict[str, float]
    max_displacement: float
    tau_pe: float
    tau_displacement: float
    seconds: float
    steps_per_second: float
    resumed_from: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        d = asdict(self)
        d["frames_file"] = self.frames_file.name
        return d


@dataclass(frozen=True)
class DatasetResult:
    """A finished dataset directory.

    Attributes
    ----------
    directory
        The dataset directory.
    manifest
        The content of ``manifest.json``.
    trajectories
        Per trajectory name.
    """

    directory: Path
    manifest: dict[str, Any]
    trajectories: dict[str, TrajectoryResult]

