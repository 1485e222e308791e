"""Training datasets by molecular dynamics: IDMD (Taylor Hamiltonian) and reference MD.

Two datasets of the paper (section II), both written as extended XYZ with a manifest
and fixed splits (:mod:`anharmbench.datasets.io`):

* **IDMD** (:func:`run_idmd`): NVE MD on the Taylor-series Hamiltonian
  (``pair_style taylor``, a :class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms`
  of the MD cell, e.g. from :func:`anharmbench.hamiltonian.taylor_expansion` in 4I).
  Velocities ``velocity all create T SEED dist gaussian mom yes rot no`` (zero total
  momentum), ``fix nve``, time step 4 fs, 4000 steps in the paper profile. Frames every
  ``stride`` steps form train + validation; a second trajectory with another seed gives
  the test set. Labels are the Hamiltonian's own energies/forces (noiseless).
* **Reference MD** (:func:`run_refmd`): NVT (``fix nve`` + ``fix langevin ... zero yes``)
  on the reference surface (CRG) at 2000 K and 3000 K in 3 S_C (324 atoms), after an
  equilibration; 1346 snapshots in all, spaced by ``stride`` steps (fixed, or ``None``:
  twice the integrated autocorrelation time of the potential energy measured in the
  second half of the equilibration). Labels are computed by a separate static LAMMPS
  instance of the *reference* potential (the Langevin fix adds friction and noise to
  LAMMPS's force array, and the MD itself may run on a cheaper surface: in the paper
  profile the dynamics use PPPM at 1e-5 instead of the exact Ewald sum, ~25x faster in
  3 S_C, while every stored energy/force/stress is the exact reference).

Runaway guard
-------------
A truncated Taylor expansion can be unbounded below (e.g. a negative quartic direction).
Every ``guard_every`` steps (default: every step; a quartic runaway diverges in finite
time, within a few steps once past its barrier) the guard checks the largest
displacement from the reference (IDMD, nearest image), the total-energy drift per atom
(NVE), the temperature and finiteness, and stops with :class:`RunawayError` naming the
step and the values. A LAMMPS failure during a step (lost atoms) is reported the same
way. The per-step check costs a gather of the positions (~0.1% of a 4I step).

Checkpoints and resume
----------------------
A trajectory runs in chunks of ``checkpoint_every`` steps. Frames are appended to
``trajectories/<name>.xyz`` as they come; at the end of each chunk the file is synced and
a checkpoint (raw LAMMPS positions and velocities, step, frame count and the byte offset
of the frame file, thermo history) is written atomically. A later call with the same
settings continues from the last checkpoint (frames written after it are truncated and
recomputed). Every chunk starts with the same commands whether the run continues or
resumes (positions and velocities scattered from the checkpoint arrays, ``run ... pre
yes``, Langevin re-seeded from ``(seed, chunk)``), so a resumed trajectory reproduces the
uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms, units

from anharmbench._lammps_env import import_lammps
from anharmbench.datasets.io import (
    FORMAT,
    MANIFEST,
    FrameWriter,
    make_frame,
    potential_record,
    read_frames,
    read_manifest,
    software_versions,
    split_indices,
    write_json_atomic,
    write_splits,
)
from anharmbench.lammps import LammpsError, LammpsSystem
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.potentials.taylor_cartesian import TaylorTerms, taylor_potential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive

__all__ = [
    "CRG_A0",
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

#: CRG equilibrium lattice constant of ThO2 (Angstrom; tests/test_structures.py).
CRG_A0 = 5.580101

_CKPT_FORMAT = "anharmbench-md-checkpoint-1"
FrameHook = Callable[[int, Atoms], None]


class RunawayError(RuntimeError):
    """The MD left the region where the Hamiltonian is meaningful (or blew up).

    Attributes
    ----------
    step
        MD step at which the guard fired.
    max_displacement
        Largest displacement from the reference, Angstrom (NaN when not checked).
    energy_drift
        ``|E_tot - E_tot(0)|`` per atom, eV (NaN when not checked).
    temperature
        Instantaneous temperature, K.
    """

    def __init__(
        self,
        message: str,
        *,
        step: int,
        max_displacement: float,
        energy_drift: float,
        temperature: float,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.max_displacement = max_displacement
        self.energy_drift = energy_drift
        self.temperature = temperature


# ---------------------------------------------------------------------- settings
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
        text = json.dumps(asdict(self), sort_keys=True) + extra
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class IDMDSettings:
    """IDMD settings (defaults: the paper profile).

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

    @classmethod
    def paper(cls, **overrides: Any) -> IDMDSettings:
        """The paper's IDMD: 4000 NVE steps of 4 fs at 2000 K (4I cell given by the caller)."""
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> IDMDSettings:
        """A short run for CI: 400 steps, a frame every 10th, 100 test steps."""
        base: dict[str, Any] = {
            "n_steps": 400,
            "stride": 10,
            "test_steps": 100,
            "checkpoint_every": 100,
        }
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class RefMDSettings:
    """Reference-MD settings (defaults: the paper profile).

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

    @classmethod
    def paper(cls, **overrides: Any) -> RefMDSettings:
        """NVT at 2000 and 3000 K in 3 S_C, 1346 decorrelated snapshots."""
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> RefMDSettings:
        """A tiny run for CI: 12-atom S_C, 12 snapshots per temperature every 10 steps."""
        base: dict[str, Any] = {
            "supercell": "SC",
            "equilibration_steps": 100,
            "n_snapshots": 24,
            "stride": 10,
            "checkpoint_every": 100,
            "thermo_every": 10,
            "md_kspace": None,
        }
        base.update(overrides)
        return cls(**base)


# ---------------------------------------------------------------------- results
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


# ---------------------------------------------------------------------- utilities
def _lammps_seed(*keys: int) -> int:
    """A LAMMPS seed derived from integers: 1 .. 9e8 (the range of LAMMPS's Marsaglia
    generator, used by ``fix langevin``; ``velocity`` accepts it too)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0]
    return int(state % 900_000_000) + 1


def integrated_autocorrelation_time(
    x: np.ndarray, c: float = 5.0, *, absolute: bool = False
) -> float:
    """Integrated autocorrelation time of a series, in samples (Sokal's windowing).

    ``tau = 1 + 2 sum_{t=1}^{W} rho(t)`` with the smallest window ``W >= c tau(W)``;
    samples ``2 tau`` apart are effectively independent. For a vector series the
    normalised autocorrelation is ``rho(t) = sum_d C_d(t) / sum_d C_d(0)`` (components
    weighted by their variance).

    Parameters
    ----------
    x
        ``(n,)`` or ``(n, d)`` float64 series (``n`` samples).
    c
        Window factor.
    absolute
        Sum ``|rho(t)|`` instead of ``rho(t)``: the decay time of the envelope. For
        vibrations (an underdamped oscillator has ``tau ~ 0`` by the plain sum, its
        positive and negative lobes cancelling) this is the time after which the
        configuration is forgotten: ``(4/pi)`` times the damping time of a damped
        oscillation. Noise in ``|rho|`` biases it upwards (conservative).

    Returns
    -------
    float
        ``tau`` (>= 1; NaN for fewer than 4 samples or a constant series).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n = len(x)
    if n < 4:
        return float("nan")
    y = x - x.mean(axis=0)
    var = float(np.sum(y * y))
    if var == 0.0:
        return float("nan")
    f = np.fft.rfft(y, n=2 * n, axis=0)
    acf = np.fft.irfft(np.sum(f * np.conj(f), axis=1).real, n=2 * n)[:n] / var
    taus = 2.0 * np.cumsum(np.abs(acf) if absolute else acf) - 1.0
    window = np.arange(n) >= c * taus
    w = int(np.argmax(window)) if window.any() else n - 1
    return float(max(taus[w], 1.0))


def _nearest_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = d @ np.linalg.inv(cell)
    return (frac - np.rint(frac)) @ cell


def harmonic_displacements(
    terms: TaylorTerms, masses: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Displacements drawn from the classical harmonic distribution of the order-2 terms.

    Parameters
    ----------
    terms
        Taylor model with an order-2 part (``E2 = 1/2 u Phi u``).
    masses
        ``(N,)`` amu.
    temperature
        K.
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` Angstrom: ``sum_k e_k sqrt(kB T) / omega_k xi_k / sqrt(m)`` over the
        non-zero modes (the three rigid translations get no amplitude).

    Raises
    ------
    ValueError
        Without order-2 terms, or when the harmonic part has a negative eigenvalue
        (an unstable Hamiltonian cannot be sampled).
    """
    if 2 not in terms.orders or len(terms.orders[2].coefficients) == 0:
        raise ValueError("harmonic initial displacements need the order-2 terms")
    n3 = 3 * terms.natoms
    if n3 > 6000:
        raise ValueError(f"{terms.natoms} atoms is too many for a dense harmonic sampling")
    full = terms.expanded((2,))  # every translate: the dense matrix needs them all
    flat = full.flat_indices(2)
    coef = full.orders[2].coefficients
    phi = np.zeros((n3, n3))
    diag = flat[:, 0] == flat[:, 1]
    np.add.at(phi, (flat[:, 0], flat[:, 1]), np.where(diag, 2.0 * coef, coef))
    np.add.at(phi, (flat[~diag, 1], flat[~diag, 0]), coef[~diag])
    minv = 1.0 / np.sqrt(np.repeat(np.asarray(masses, dtype=float), 3))
    lam, vec = np.linalg.eigh(phi * np.outer(minv, minv))  # eV / (A^2 amu)
    scale = max(float(np.abs(lam).max()), 1e-300)
    if lam.min() < -1e-8 * scale:
        raise ValueError(
            f"the harmonic part has a negative eigenvalue ({lam.min():.3e} eV/A^2/amu): "
            "the Hamiltonian is unstable and cannot be sampled harmonically"
        )
    keep = lam > 1e-8 * scale
    amp = np.sqrt(units.kB * temperature / lam[keep]) * rng.normal(size=int(keep.sum()))
    u = minv * (vec[:, keep] @ amp)
    return u.reshape(terms.natoms, 3)


# ---------------------------------------------------------------------- checkpoint
@dataclass
class _State:
    fingerprint: str
    step: int = 0
    n_frames: int = 0
    offset: int = 0
    x: np.ndarray | None = None
    v: np.ndarray | None = None
    thermo: list[list[float]] = field(default_factory=list)  # step temp pe ke etotal
    pe_hist: list[float] = field(default_factory=list)
    u_hist: list[np.ndarray] = field(default_factory=list)
    tau_u: float = float("nan")
    stride: int = 0
    tau: float = float("nan")
    etot0: float = float("nan")
    max_disp: float = float("nan")
    frame_temps: list[float] = field(default_factory=list)
    seconds: float = 0.0
    done: bool = False

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            format=np.array(_CKPT_FORMAT),
            fingerprint=np.array(self.fingerprint),
            ints=np.array([self.step, self.n_frames, self.offset, self.stride, int(self.done)]),
            floats=np.array([self.tau, self.etot0, self.max_disp, self.seconds, self.tau_u]),
            x=np.zeros(0) if self.x is None else self.x,
            v=np.zeros(0) if self.v is None else self.v,
            thermo=np.array(self.thermo, dtype=float).reshape(-1, 5),
            pe_hist=np.array(self.pe_hist, dtype=float),
            u_hist=np.array(self.u_hist, dtype=float),
            frame_temps=np.array(self.frame_temps, dtype=float),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> _State:
        with np.load(path) as d:
            if str(d["format"]) != _CKPT_FORMAT:
                raise ValueError(f"{path} is not an anharmbench MD checkpoint")
            step, n_frames, offset, stride, done = (int(v) for v in d["ints"])
            tau, etot0, max_disp, seconds, tau_u = (float(v) for v in d["floats"])
            return cls(
                fingerprint=str(d["fingerprint"]),
                step=step,
                n_frames=n_frames,
                offset=offset,
                x=d["x"].copy() if d["x"].size else None,
                v=d["v"].copy() if d["v"].size else None,
                thermo=d["thermo"].tolist(),
                pe_hist=d["pe_hist"].tolist(),
                u_hist=list(d["u_hist"]),
                tau_u=tau_u,
                stride=stride,
                tau=tau,
                etot0=etot0,
                max_disp=max_disp,
                frame_temps=d["frame_temps"].tolist(),
                seconds=seconds,
                done=bool(done),
            )


class _Progress:
    """tqdm over MD steps (or nothing)."""

    def __init__(self, enabled: bool, name: str, total: int, initial: int) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=name, unit="step", leave=True)

    def update(self, n: int, temperature: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(T=f"{temperature:.0f}K", refresh=False)

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------- one trajectory
def _gather(lmp: Any, name: str, natoms: int) -> np.ndarray:
    return np.ctypeslib.as_array(lmp.gather_atoms(name, 1, 3)).reshape(natoms, 3).copy()


def _scatter(lmp: Any, name: str, values: np.ndarray) -> None:
    import ctypes

    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    buf = (ctypes.c_double * flat.size)(*flat)
    lmp.scatter_atoms(name, 1, 3, buf)


def run_trajectory(
    spec: TrajectorySpec,
    directory: str | Path,
    md_potential: LammpsPotential,
    atoms: Atoms,
    *,
    label_potential: LammpsPotential | None = None,
    reference: TaylorTerms | None = None,
    fingerprint_extra: str = "",
    progress: bool = False,
    on_frame: FrameHook | None = None,
) -> TrajectoryResult:
    """Run (or continue) one trajectory and write its frames.

    Parameters
    ----------
    spec
        What to run.
    directory
        Where ``<name>.xyz`` and ``<name>.ckpt.npz`` go.
    md_potential
        The potential that drives the dynamics.
    atoms
        The cell, species and reference positions (the initial structure).
    label_potential
        The potential whose energies/forces/stresses label the frames, evaluated in a
        separate static instance. ``None``: ``md_potential``, read from the MD instance
        itself (only for ``nve``: a thermostat alters LAMMPS's force array).
    reference
        The Taylor model (its reference positions and cell): enables the displacement
        guard and ``init="harmonic"``.
    fingerprint_extra
        Mixed into the checkpoint fingerprint (e.g. the potential's fingerprint): a
        checkpoint of other settings is refused.
    progress
        Show a tqdm progress bar.
    on_frame
        Called as ``on_frame(step, frame)`` after each frame is written (tests use it to
        interrupt a run).

    Returns
    -------
    TrajectoryResult

    Raises
    ------
    RunawayError
        When the guard fires.
    ValueError
        When an existing checkpoint belongs to other settings.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames_path = directory / f"{spec.name}.xyz"
    ckpt_path = directory / f"{spec.name}.ckpt.npz"
    fp = spec.fingerprint(fingerprint_extra)
    state = _State(fingerprint=fp, stride=spec.stride or 0)
    if ckpt_path.is_file():
        state = _State.load(ckpt_path)
        if state.fingerprint != fp:
            raise ValueError(
                f"{ckpt_path} belongs to a run with other settings or another potential; "
                "use another directory or start again (overwrite)"
            )
    resumed_from = state.step
    natoms = len(atoms)
    if state.done:
        return _result(spec, state, frames_path, natoms, resumed_from, 0.0, 0)

    if label_potential is None and spec.ensemble != "nve":
        label_potential = md_potential  # never read a thermostatted force array
    t_start = t_call = time.perf_counter()
    steps_this_call = 0
    lammps = import_lammps()
    with contextlib.ExitStack() as stack:
        md = stack.enter_context(LammpsSystem(md_potential, atoms))
        lab = (
            stack.enter_context(LammpsSystem(label_potential, atoms))
            if label_potential is not None
            else None
        )
        style = "thermo_style custom step temp pe ke etotal"
        if lab is None:  # the labels come from this instance: virial-only pressure
            md.command("compute pvir all pressure NULL virial")
            style += " " + " ".join(f"c_pvir[{i}]" for i in range(1, 7))
        md.command(style)
        md.command("thermo_modify norm no flush no")
        md.command("thermo 0")
        md.command(f"timestep {spec.timestep!r}")
        md.command("fix integrate all nve")
        masses = np.array([md_potential.mass(s) for s in atoms.get_chemical_symbols()])
        fresh = state.x is None
        if fresh:
            if spec.init == "harmonic":
                if reference is None:
                    raise ValueError("init='harmonic' needs the Taylor reference model")
                rng = np.random.default_rng(_lammps_seed(spec.seed, 3))
                u0 = harmonic_displacements(reference, masses, spec.temperature, rng)
                md.scatter_positions(atoms.positions + u0)
            md.command(
                f"velocity all create {spec.temperature!r} {_lammps_seed(spec.seed, 1)} "
                "dist gaussian mom yes rot no"
            )
            md.command("run 0 post no")
            state.etot0 = float(md.lmp.get_thermo("etotal"))
            state.thermo.append(_thermo(md.lmp))
            state.x = _gather(md.lmp, "x", natoms)
            state.v = _gather(md.lmp, "v", natoms)
        writer = stack.enter_context(FrameWriter(frames_path, state.offset))
        total = _total_steps(spec, state)
        bar = _Progress(progress, spec.name, total, state.step)
        stack.callback(bar.close)
        window = min(spec.equilibration_steps // 2, 4000)
        u_every = max(1, window // 500)
        cell = np.asarray(atoms.cell.array, dtype=float)
        thermostat = False
        while True:
            total = _total_steps(spec, state)
            if state.step >= total and state.n_frames >= spec.n_frames:
                break
            chunk = state.step // spec.checkpoint_every
            end = min((chunk + 1) * spec.checkpoint_every, total)
            if state.step < spec.equilibration_steps:
                end = min(end, spec.equilibration_steps)
            # the same commands whether this instance ran the previous chunk or not
            _scatter(md.lmp, "x", state.x)
            _scatter(md.lmp, "v", state.v)
            md.command(f"reset_timestep {state.step}")
            if spec.ensemble == "langevin":
                if thermostat:
                    md.command("unfix thermostat")
                thermostat = True
                md.command(
                    f"fix thermostat all langevin {spec.temperature!r} {spec.temperature!r} "
                    f"{spec.damp!r} {_lammps_seed(spec.seed, 2, chunk)} zero yes"
                )
            first = True
            step = state.step
            while step < end:
                nxt = _next_event(spec, state, step, end, window)
                try:
                    md.command(f"run {nxt - step} {'pre yes' if first else 'pre no'} post no")
                except LammpsError as exc:
                    raise RunawayError(
                        f"trajectory {spec.name!r} stopped between steps {step} and {nxt}: "
                        f"{_what(reference)}: LAMMPS failed ({exc})",
                        step=nxt,
                        max_displacement=float("nan"),
                        energy_drift=float("nan"),
                        temperature=float("nan"),
                    ) from exc
                first = False
                bar.update(nxt - step, float(md.lmp.get_thermo("temp")))
                steps_this_call += nxt - step
                step = nxt
                eq_end = spec.equilibration_steps
                if eq_end - window <= step <= eq_end and window > 0:
                    state.pe_hist.append(float(md.lmp.get_thermo("pe")))
                    if (step - (eq_end - window)) % u_every == 0:
                        x = md.prism.vector_to_ase(_gather(md.lmp, "x", natoms))
                        state.u_hist.append(_nearest_image(x - atoms.positions, cell).ravel())
                if step % spec.thermo_every == 0 or step == end:
                    state.thermo.append(_thermo(md.lmp))
                if step % spec.guard_every == 0 or step == end:
                    _guard(spec, state, md, reference, natoms)
                if _is_frame_step(spec, state, step):
                    frame = _label(spec, state, md, lab, atoms, step, lammps)
                    writer.write(frame)
                    state.n_frames += 1
                    state.frame_temps.append(float(frame.info["temperature"]))
                    if on_frame is not None:
                        on_frame(step, frame)
            state.x = _gather(md.lmp, "x", natoms)
            state.v = _gather(md.lmp, "v", natoms)
            state.step = end
            if end == spec.equilibration_steps and spec.stride is None and state.stride == 0:
                state.tau = integrated_autocorrelation_time(np.array(state.pe_hist))
                if state.u_hist:
                    tau_u = integrated_autocorrelation_time(np.array(state.u_hist), absolute=True)
                    state.tau_u = tau_u * u_every
                tau = state.tau_u if np.isfinite(state.tau_u) else state.tau
                if not np.isfinite(tau):
                    tau = spec.min_stride / 2
                state.stride = int(min(max(math.ceil(2.0 * tau), spec.min_stride), spec.max_stride))
                bar.set_total(_total_steps(spec, state))
            state.offset = writer.sync()
            state.seconds += time.perf_counter() - t_start
            t_start = time.perf_counter()
            state.save(ckpt_path)
        state.done = True
        state.offset = writer.sync()
        state.seconds += time.perf_counter() - t_start
        state.save(ckpt_path)
    return _result(
        spec,
        state,
        frames_path,
        natoms,
        resumed_from,
        time.perf_counter() - t_call,
        steps_this_call,
    )


def _total_steps(spec: TrajectorySpec, state: _State) -> int:
    stride = spec.stride or state.stride
    if not stride:  # automatic stride not known yet: at least the equilibration
        return spec.equilibration_steps + spec.n_frames * spec.min_stride
    return spec.equilibration_steps + spec.n_frames * stride


def _is_frame_step(spec: TrajectorySpec, state: _State, step: int) -> bool:
    stride = spec.stride or state.stride
    if not stride or step <= spec.equilibration_steps:
        return False
    k, r = divmod(step - spec.equilibration_steps, stride)
    return r == 0 and 1 <= k <= spec.n_frames


def _next_event(spec: TrajectorySpec, state: _State, step: int, end: int, window: int) -> int:
    """Next step at which something happens (check, frame, PE sample, chunk end)."""
    nxt = min(
        end,
        (step // spec.thermo_every + 1) * spec.thermo_every,
        (step // spec.guard_every + 1) * spec.guard_every,
    )
    eq_end = spec.equilibration_steps
    if window > 0 and eq_end - window <= step + 1 <= eq_end:
        nxt = min(nxt, step + 1)
    elif window > 0 and step + 1 < eq_end - window:
        nxt = min(nxt, eq_end - window)
    stride = spec.stride or state.stride
    if stride and step >= eq_end:
        k = (step - eq_end) // stride + 1
        nxt = min(nxt, eq_end + k * stride)
    return max(nxt, step + 1)


def _thermo(lmp: Any) -> list[float]:
    return [float(lmp.get_thermo(k)) for k in ("step", "temp", "pe", "ke", "etotal")]


def _what(ref: TaylorTerms | None) -> str:
    if ref is None:
        return "the dynamics became unstable"
    return (
        "the Taylor expansion ran away (a truncated expansion can be unbounded: check the "
        "sign of the highest-order terms, or lower the temperature)"
    )


def _guard(
    spec: TrajectorySpec, state: _State, md: LammpsSystem, ref: TaylorTerms | None, natoms: int
) -> None:
    step, temp, pe, _, etot = _thermo(md.lmp)
    drift = abs(etot - state.etot0) / natoms if spec.ensemble == "nve" else float("nan")
    disp = float("nan")
    worst = -1
    if ref is not None:
        x = md.prism.vector_to_ase(_gather(md.lmp, "x", natoms))
        norms = np.linalg.norm(ref.displacements(x), axis=1)
        worst = int(np.argmax(norms))
        disp = float(norms[worst])
        state.max_disp = float(np.fmax(state.max_disp, disp))
    problems = []
    if not (np.isfinite(pe) and np.isfinite(etot) and np.isfinite(temp)):
        problems.append("non-finite energy or temperature")
    if spec.max_displacement is not None and np.isfinite(disp) and disp > spec.max_displacement:
        problems.append(
            f"atom {worst} is {disp:.3f} A from its reference site (limit "
            f"{spec.max_displacement} A)"
        )
    if spec.max_energy_drift is not None and np.isfinite(drift) and drift > spec.max_energy_drift:
        problems.append(
            f"the total energy drifted by {drift:.4f} eV/atom (limit {spec.max_energy_drift})"
        )
    if temp > spec.max_temperature_factor * spec.temperature:
        problems.append(
            f"the temperature reached {temp:.0f} K (limit {spec.max_temperature_factor:g} x "
            f"{spec.temperature:g} K)"
        )
    if problems:
        raise RunawayError(
            f"trajectory {spec.name!r} stopped at step {int(step)}: {_what(ref)}: "
            + "; ".join(problems)
            + f" [temperature {temp:.0f} K, potential energy {pe:.6g} eV"
            + (f", largest displacement {disp:.3f} A]" if np.isfinite(disp) else "]"),
            step=int(step),
            max_displacement=disp,
            energy_drift=drift,
            temperature=temp,
        )


def _label(
    spec: TrajectorySpec,
    state: _State,
    md: LammpsSystem,
    lab: LammpsSystem | None,
    atoms: Atoms,
    step: int,
    lammps: Any,
) -> Atoms:
    natoms = len(atoms)
    positions = md.prism.vector_to_ase(_gather(md.lmp, "x", natoms))
    temperature = float(md.lmp.get_thermo("temp"))
    if lab is None:
        energy = float(md.lmp.get_thermo("pe"))
        forces = _gather(md.lmp, "f", natoms) @ md._rot.T
        vec = md.lmp.extract_compute("pvir", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
        p = [float(vec[i]) for i in range(6)]  # xx yy zz xy xz yz
        p_lmp = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
        stress = -md.prism.tensor2_to_ase(p_lmp) / md._nktv2p
    else:
        ev = lab.evaluate(positions)
        energy, forces, stress = ev.energy, ev.forces, ev.stress
    info = {
        "temperature": temperature,
        "source": spec.source,
        "config_type": spec.config_type,
        "trajectory": spec.name,
        "step": int(step),
        "time_ps": float(step * spec.timestep),
        "seed": int(spec.seed),
    }
    return make_frame(
        atoms.get_chemical_symbols(), atoms.cell.array, positions, energy, forces, stress, info
    )


def _result(
    spec: TrajectorySpec,
    state: _State,
    frames_path: Path,
    natoms: int,
    resumed_from: int,
    seconds: float,
    steps_this_call: int,
) -> TrajectoryResult:
    th = np.array(state.thermo, dtype=float).reshape(-1, 5)
    sampling = th[th[:, 0] >= spec.equilibration_steps] if len(th) else th
    if len(sampling) == 0:
        sampling = th
    temps = sampling[:, 1] if len(sampling) else np.array([np.nan])
    ft = np.array(state.frame_temps) if state.frame_temps else np.array([np.nan])
    temperature = {
        "target": float(spec.temperature),
        "min": float(temps.min()),
        "max": float(temps.max()),
        "mean": float(temps.mean()),
        "frames_min": float(ft.min()),
        "frames_max": float(ft.max()),
    }
    drift: dict[str, float] = {}
    if spec.ensemble == "nve" and len(th) > 1:
        de = (th[:, 4] - state.etot0) / natoms
        t_ps = th[:, 0] * spec.timestep
        slope = float(np.polyfit(t_ps, de, 1)[0]) if np.ptp(t_ps) > 0 else 0.0
        drift = {"max_abs_per_atom": float(np.abs(de).max()), "slope_per_atom_per_ps": slope}
    total_seconds = state.seconds
    n_steps = _total_steps(spec, state) if state.done else state.step
    return TrajectoryResult(
        name=spec.name,
        frames_file=frames_path,
        n_frames=state.n_frames,
        n_steps=n_steps,
        stride=int(spec.stride or state.stride),
        temperature=temperature,
        energy_drift=drift,
        max_displacement=float(state.max_disp),
        tau_pe=float(state.tau),
        tau_displacement=float(state.tau_u),
        seconds=float(total_seconds),
        steps_per_second=float(steps_this_call / seconds)
        if seconds > 0 and steps_this_call
        else float("nan"),
        resumed_from=resumed_from,
    )


# ---------------------------------------------------------------------- datasets
def _prepare_directory(directory: Path, fingerprint: str, overwrite: bool) -> None:
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


def _structure_record(atoms: Atoms, supercell: Any) -> dict[str, Any]:
    return {
        "formula": atoms.get_chemical_formula(),
        "natoms": len(atoms),
        "supercell": np.asarray(supercell).tolist() if supercell is not None else None,
        "cell": np.asarray(atoms.cell.array).tolist(),
    }


def _write_manifest(directory: Path, data: dict[str, Any]) -> dict[str, Any]:
    write_json_atomic(directory / MANIFEST, data)
    return data


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
        When the expansion runs away (see the module docstring).
    """
    settings = settings or IDMDSettings.paper()
    directory = Path(directory)
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
    fingerprint = hashlib.sha256(
        (json.dumps(asdict(settings), sort_keys=True) + prec["fingerprint"]).encode()
    ).hexdigest()
    try:
        _prepare_directory(directory, fingerprint, overwrite)
    except ValueError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None:
        path = directory / "hamiltonian.taylor"
        tmp.replace(path)
        prec = potential_record(taylor_potential(path))  # same fingerprint, final name
    potential = taylor_potential(path)
    atoms = terms.atoms()
    common = {
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
    specs = [
        TrajectorySpec(
            name="train",
            config_type="idmd_train",
            seed=_lammps_seed(settings.seed, 0),
            n_frames=settings.n_steps // settings.stride,
            **common,
        ),
        TrajectorySpec(
            name="test",
            config_type="idmd_test",
            seed=_lammps_seed(settings.seed, 1),
            n_frames=settings.test_steps // settings.stride,
            **common,
        ),
    ]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "kind": "idmd",
        "complete": False,
        "fingerprint": fingerprint,
        "seed": settings.seed,
        "settings": asdict(settings),
        "potential": prec,
        "hamiltonian": {
            "file": path.name,
            "path": str(path),
            "orders": sorted(terms.orders),
            "terms": {str(k): v for k, v in terms.n_terms().items()},
            "translations": terms.n_translations,
        },
        "structure": _structure_record(atoms, None),
        "versions": software_versions(),
        "trajectories": {},
    }
    _write_manifest(directory, manifest)
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
        manifest["trajectories"][spec.name] = results[spec.name].to_dict()
        _write_manifest(directory, manifest)
    train = read_frames(results["train"].frames_file)
    test = read_frames(results["test"].frames_file)
    idx = split_indices(
        len(train),
        {"train": 1 - settings.val_fraction, "val": settings.val_fraction},
        settings.seed,
    )
    src_train, src_test = "trajectories/train.xyz", "trajectories/test.xyz"
    record = write_splits(
        directory,
        {
            "train": [(src_train, int(i), train[i]) for i in idx["train"]],
            "val": [(src_train, int(i), train[i]) for i in idx["val"]],
            "test": [(src_test, i, a) for i, a in enumerate(test)],
        },
    )
    manifest["splits"] = {k: {"file": v["file"], "frames": v["frames"]} for k, v in record.items()}
    manifest["splits"]["seed"] = settings.seed
    manifest["complete"] = True
    _write_manifest(directory, manifest)
    return DatasetResult(directory, manifest, results)


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
    from anharmbench.potentials.crg import crg_potential

    settings = settings or RefMDSettings.paper()
    directory = Path(directory)
    if potential is None:
        potential = crg_potential()
        if md_potential is None and settings.md_kspace == "pppm":
            md_potential = crg_potential(kspace="pppm", kspace_accuracy=settings.md_kspace_accuracy)
    md_potential = md_potential or potential
    smat = supercell_matrix(settings.supercell)
    atoms = build_supercell(tho2_primitive(settings.lattice_constant), smat)
    prec = potential_record(potential)
    mrec = potential_record(md_potential)
    fingerprint = hashlib.sha256(
        (
            json.dumps(asdict(settings), sort_keys=True) + prec["fingerprint"] + mrec["fingerprint"]
        ).encode()
    ).hexdigest()
    _prepare_directory(directory, fingerprint, overwrite)
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
                seed=_lammps_seed(settings.seed, 10 + i),
                damp=settings.damp,
                checkpoint_every=settings.checkpoint_every,
                guard_every=settings.guard_every,
                thermo_every=settings.thermo_every,
                max_temperature_factor=settings.max_temperature_factor,
                min_stride=settings.min_stride,
                max_stride=settings.max_stride,
            )
        )
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "kind": "refmd",
        "complete": False,
        "fingerprint": fingerprint,
        "seed": settings.seed,
        "settings": asdict(settings),
        "potential": prec,
        "md_potential": mrec,
        "structure": _structure_record(atoms, smat),
        "versions": software_versions(),
        "trajectories": {},
    }
    _write_manifest(directory, manifest)
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
        manifest["trajectories"][spec.name] = res.to_dict()
        _write_manifest(directory, manifest)
        frames = read_frames(res.frames_file)
        idx = split_indices(
            len(frames),
            dict(zip(("train", "val", "test"), settings.split, strict=True)),
            settings.seed + k,
        )
        src = f"trajectories/{res.frames_file.name}"
        for name, members in idx.items():
            splits[name].extend((src, int(i), frames[i]) for i in members)
    record = write_splits(directory, splits)
    manifest["splits"] = {k: {"file": v["file"], "frames": v["frames"]} for k, v in record.items()}
    manifest["splits"]["seed"] = settings.seed
    manifest["complete"] = True
    _write_manifest(directory, manifest)
    return DatasetResult(directory, manifest, results)
