"""Settings of the MD datasets: one trajectory, the IDMD and reference-MD profiles, seeds.

:class:`TrajectorySpec` says what one trajectory runs; :class:`IDMDSettings` and
:class:`RefMDSettings` are the two datasets' profiles (``paper()`` and ``quick()``), from
which :func:`~anharmbench.datasets.md.run_idmd` and
:func:`~anharmbench.datasets.md.run_refmd` derive their trajectories. The seeds of a
trajectory's random numbers derive from the master seed by :func:`lammps_seed`; the
fingerprint that ties a checkpoint or a dataset directory to its settings is
:func:`settings_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np

from anharmbench.datasets.profiles import Profiles

__all__ = [
    "CRG_A0",
    "IDMDSettings",
    "RefMDSettings",
    "TrajectorySpec",
    "lammps_seed",
    "settings_fingerprint",
]

#: CRG equilibrium lattice constant of ThO2 (Angstrom; tests/test_structures.py).
CRG_A0 = 5.580101


def settings_fingerprint(settings: Any, *extra: str) -> str:
    """SHA-256 (hex) of a settings dataclass (sorted-key JSON) followed by ``extra``.

    ``extra`` are e.g. potential fingerprints: a checkpoint or a dataset directory of
    other settings or another potential is then recognised and refused.
    """
    text = json.dumps(asdict(settings), sort_keys=True) + "".join(extra)
    return hashlib.sha256(text.encode()).hexdigest()


def lammps_seed(*keys: int) -> int:
    """A LAMMPS seed derived from integers: 1 .. 9e8 (the range of LAMMPS's Marsaglia
    generator, used by ``fix langevin``; ``velocity`` accepts it too)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0]
    return int(state % 900_000_000) + 1


@dataclass(frozen=True)
class TrajectorySpec:
    """One MD trajectory.

    Attributes
    ----------
    name
        File stem (``trajectories/<name>.xyz``).
    source
        ``"idmd"`` or ``"refmd"`` (frame metadata).
    config_type
        Frame ``config_type`` (gap_fit), e.g. ``"idmd_train"``.
    temperature
        Target temperature of the velocities (and the thermostat), K.
    ensemble
        ``"nve"`` or ``"langevin"`` (NVT: ``fix nve`` + ``fix langevin``).
    timestep
        ps.
    equilibration_steps
        Steps before the first frame (no frames written).
    n_frames
        Frames to write.
    stride
        Steps between frames, or ``None`` to choose it after the equilibration from the
        autocorrelation in the second half of the equilibration: ``2 tau_u``, with
        ``tau_u`` the envelope (absolute) integrated autocorrelation time of the
        displacement field (from the reference sites, nearest image; dominated by the
        slow, large-amplitude modes; :func:`integrated_autocorrelation_time`), clamped
        to ``[min_stride, max_stride]``. (ThO2/CRG in 3 S_C with a 0.2 ps Langevin
        damping: ``tau_u`` ~ 50 steps of 2 fs, so ~0.2 ps between snapshots.)
    seed
        Seed of all random numbers of the trajectory (velocities, thermostat, init).
    init
        ``"lattice"``: start at the reference positions; ``"harmonic"``: add displacements
        drawn from the harmonic canonical distribution at ``temperature`` (needs a Taylor
        reference with an order-2 part).
    damp
        Langevin damping time, ps.
    checkpoint_every
        Steps between checkpoints.
    guard_every
        Steps between runaway checks.
    thermo_every
        Steps between thermo records (temperature range, energy drift).
    max_displacement
        Guard: largest displacement from the reference, Angstrom (``None``: off).
    max_energy_drift
        Guard (NVE): ``|E_tot - E_tot(0)|`` per atom, eV (``None``: off).
    max_temperature_factor
        Guard: temperature above this times the target stops the run.
    min_stride, max_stride
        Bounds of the automatic stride.
    """

    name: str
    source: str
    config_type: str
    temperature: float
    ensemble: Literal["nve", "langevin"]
    timestep: float
    equilibration_steps: int
    n_frames: int
    stride: int | None
    seed: int
    init: Literal["lattice", "harmonic"] = "lattice"
    damp: float = 0.2
    checkpoint_every: int = 200
    guard_every: int = 1
    thermo_every: int = 10
    max_displacement: float | None = None
    max_energy_drift: float | None = None
    max_temperature_factor: float = 5.0
    min_stride: int = 10
    max_stride: int = 1000

    def __post_init__(self) -> None:
        if self.ensemble not in ("nve", "langevin"):
            raise ValueError(f"ensemble must be 'nve' or 'langevin', not {self.ensemble!r}")
        if self.init not in ("lattice", "harmonic"):
            raise ValueError(f"init must be 'lattice' or 'harmonic', not {self.init!r}")
        if not (self.temperature > 0 and self.timestep > 0):
            raise ValueError("temperature and timestep must be positive")
        if self.n_frames < 0 or self.equilibration_steps < 0:
            raise ValueError("n_frames and equilibration_steps must be >= 0")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1 (or None for automatic), got {self.stride}")
        if min(self.checkpoint_every, self.guard_every, self.thermo_every) < 1:
            raise ValueError("checkpoint_every, guard_every and thermo_every must be >= 1")

    def fingerprint(self, extra: str = "") -> str:
        """Hash of the spec (and of ``extra``, e.g. the potential fingerprint)."""
        return settings_fingerprint(self, extra)


@dataclass(frozen=True)
class IDMDSettings(Profiles):
    """IDMD settings (defaults: the paper profile).

    ``paper()``: the paper's IDMD, 4000 NVE steps of 4 fs at 2000 K (4I cell given by
    the caller); ``quick()``: a short run for CI, 400 steps, a frame every 10th, 100
    test steps (:class:`~anharmbench.datasets.profiles.Profiles`).

    Attributes
    ----------
    temperature
        K of the Maxwell-Boltzmann velocities (the paper: 2000 K).
    timestep
        ps (the paper: 0.004).
    n_steps
        Steps of the training trajectory (the paper: 4000).
    stride
        Steps between stored frames.
    test_steps
        Steps of the separate test trajectory (another seed).
    seed
        Master seed (trajectory seeds derive from it).
    init
        ``"harmonic"`` (default): Maxwell-Boltzmann velocities at T and positions drawn
        from the harmonic canonical distribution at T, so the run starts in equilibrium
        at T. Measured on CRG's Taylor Hamiltonian (4I, orders 2-4, 4000 steps): 1792-2194
        K, the paper's 1522-2238 K. ``"lattice"``: velocities only, from the undisplaced
        lattice; by equipartition the temperature then settles near T/2 (measured
        831-1152 K), which cannot give the paper's range.
    val_fraction
        Share of the training frames kept for validation (split fixed by ``seed``).
    checkpoint_every, guard_every, thermo_every
        Steps between checkpoints / runaway checks / thermo records.
    max_displacement
        Runaway guard, Angstrom from the reference.
    max_energy_drift
        Runaway guard, eV per atom of total-energy drift.
    max_temperature_factor
        Runaway guard, multiple of ``temperature``.
    """

    temperature: float = 2000.0
    timestep: float = 0.004
    n_steps: int = 4000
    stride: int = 10
    test_steps: int = 1000
    seed: int = 2024
    init: Literal["lattice", "harmonic"] = "harmonic"
    val_fraction: float = 0.1
    checkpoint_every: int = 200
    guard_every: int = 1
    thermo_every: int = 10
    max_displacement: float = 1.5
    max_energy_drift: float = 0.02
    max_temperature_factor: float = 5.0

    QUICK: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"n_steps": 400, "stride": 10, "test_steps": 100, "checkpoint_every": 100}
    )


@dataclass(frozen=True)
class RefMDSettings(Profiles):
    """Reference-MD settings (defaults: the paper profile).

    ``paper()``: NVT at 2000 and 3000 K in 3 S_C, 1346 decorrelated snapshots;
    ``quick()``: a tiny run for CI, 12-atom S_C, 12 snapshots per temperature every 10
    steps (:class:`~anharmbench.datasets.profiles.Profiles`).

    Attributes
    ----------
    temperatures
        NVT temperatures, K (the paper: 2000 and 3000).
    supercell
        MD cell (name or 9 integers; the paper: 3 S_C, 324 atoms).
    lattice_constant
        Cubic lattice constant of the fixed cell, Angstrom (default: CRG at 0 K).
    timestep
        ps.
    equilibration_steps
        Steps at each temperature before sampling.
    n_snapshots
        Snapshots in all, shared evenly by the temperatures (the paper: 1346).
    stride
        Steps between snapshots, or ``None`` for twice the envelope autocorrelation time
        of the displacement field (see :class:`TrajectorySpec`).
    min_stride, max_stride
        Bounds of the automatic stride.
    damp
        Langevin damping time, ps.
    seed
        Master seed.
    split
        ``(train, val, test)`` fractions of the frames of every temperature.
    md_kspace
        ``"pppm"``: run the dynamics of the default CRG surface with PPPM at
        ``md_kspace_accuracy`` (labels stay exact Ewald); ``None``: the reference itself.
    md_kspace_accuracy
        Relative force accuracy of the MD's PPPM.
    checkpoint_every, guard_every, thermo_every
        Steps between checkpoints / guard checks / thermo records.
    max_temperature_factor
        Guard: multiple of the target temperature.
    """

    temperatures: tuple[float, ...] = (2000.0, 3000.0)
    supercell: str = "3SC"
    lattice_constant: float = CRG_A0
    timestep: float = 0.002
    equilibration_steps: int = 2500
    n_snapshots: int = 1346
    stride: int | None = None
    min_stride: int = 25
    max_stride: int = 1000
    damp: float = 0.2
    seed: int = 2024
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    md_kspace: Literal["pppm"] | None = "pppm"
    md_kspace_accuracy: float = 1e-5
    checkpoint_every: int = 500
    guard_every: int = 10
    thermo_every: int = 50
    max_temperature_factor: float = 3.0

    QUICK: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "supercell": "SC",
            "equilibration_steps": 100,
            "n_snapshots": 24,
            "stride": 10,
            "checkpoint_every": 100,
            "thermo_every": 10,
            "md_kspace": None,
        }
    )

