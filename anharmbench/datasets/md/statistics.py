"""Statistics of a trajectory: autocorrelation times, the automatic stride, its summary.

The automatic stride is twice the envelope autocorrelation time of the displacement
field sampled in the second half of the equilibration (the potential energy's when
there are no displacement samples), clamped to ``[min_stride, max_stride]``; the
summary (:class:`~anharmbench.datasets.md.TrajectoryResult`) gives the temperature range
of the sampling part, the NVE energy drift and the MD speed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from anharmbench.datasets.md.checkpoint import TrajectoryState
from anharmbench.datasets.md.results import TrajectoryResult
from anharmbench.datasets.md.schedule import total_steps
from anharmbench.datasets.md.settings import TrajectorySpec

__all__ = ["choose_stride", "integrated_autocorrelation_time", "nearest_image", "summarize"]


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


def nearest_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """``(N, 3)`` differences ``d`` mapped to their nearest lattice image (fractional
    rounding; ``cell`` rows are the lattice vectors, Angstrom)."""
    frac = d @ np.linalg.inv(cell)
    return (frac - np.rint(frac)) @ cell


def choose_stride(spec: TrajectorySpec, state: TrajectoryState, u_every: int) -> None:
    """Set ``state.tau``, ``state.tau_u`` and ``state.stride`` from the equilibration's
    samples (``u_every``: steps between the displacement samples)."""
    state.tau = integrated_autocorrelation_time(np.array(state.pe_hist))
    if state.u_hist:
        tau_u = integrated_autocorrelation_time(np.array(state.u_hist), absolute=True)
        state.tau_u = tau_u * u_every
    tau = state.tau_u if np.isfinite(state.tau_u) else state.tau
    if not np.isfinite(tau):
        tau = spec.min_stride / 2
    state.stride = int(min(max(math.ceil(2.0 * tau), spec.min_stride), spec.max_stride))


def summarize(
    spec: TrajectorySpec,
    state: TrajectoryState,
    frames_path: Path,
    natoms: int,
    resumed_from: int,
    seconds: float,
    steps_this_call: int,
) -> TrajectoryResult:
    """The :class:`~anharmbench.datasets.md.TrajectoryResult` of a trajectory's state.

    Parameters
    ----------
    spec, state
        The trajectory and where it is.
    frames_path
        Its frame file.
    natoms
        Atoms of the cell (energy drift per atom).
    resumed_from
        Step this call started from.
    seconds, steps_this_call
        Wall time and MD steps of this call (the MD speed).
    """
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
    n_steps = total_steps(spec, state) if state.done else state.step
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
