"""kappa against the mesh and the smearing: is the four-phonon conductivity converged?

One table per potential (the reference, in a study): kappa(T) with bubble, sunset and
combined lifetimes on meshes ``n^3`` for Gaussian smearings ``sigma``, the sunset sampled
(:mod:`~anharmbench.observables.sunset_sampled`) with its 95 % interval, the bubble with
the same Gaussian (one broadening). :func:`~anharmbench.observables.plots.
plot_kappa_convergence` draws it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anharmbench.observables.conductivity import LIFETIMES, thermal_conductivity
from anharmbench.observables.force_constants import DerivativeSet
from anharmbench.observables.sunset_sampled import SunsetSampling

__all__ = ["KappaConvergence", "kappa_convergence"]


@dataclass(eq=False)
class KappaConvergence:
    """kappa on several meshes and smearings.

    Attributes
    ----------
    potential : str
    temperature : float
        K.
    meshes : list[int]
        ``n`` of the ``n^3`` meshes.
    sigmas : list[float]
        Gaussian smearings, THz.
    kappa, stderr : dict[str, numpy.ndarray]
        ``{lifetimes: (n_sigma, n_mesh)}`` W/(m K): kappa and its standard error from the
        sampling (zero for the bubble).
    seconds : numpy.ndarray
        ``(n_sigma, n_mesh)`` wall time of each conductivity.
    meta : dict
        The sampling settings.
    """

    potential: str
    temperature: float
    meshes: list[int]
    sigmas: list[float]
    kappa: dict[str, np.ndarray] = field(default_factory=dict)
    stderr: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def write_csv(self, path: str | Path) -> Path:
        """One row per (sigma, mesh): kappa, standard error and 95 % half-width per lifetime."""
        keys = [k for k in LIFETIMES if k in self.kappa]
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["potential", "temperature_K", "sigma_THz", "mesh", "seconds"]
                       + [f"kappa_{k}_{c}" for k in keys
                          for c in ("W/mK", "stderr_W/mK", "ci95_halfwidth_W/mK")])
            for i, s in enumerate(self.sigmas):
                for j, n in enumerate(self.meshes):
                    w.writerow([self.potential, f"{self.temperature:g}", f"{s:g}", n,
                                f"{self.seconds[i, j]:.1f}"]
                               + [f"{v:.6g}" for k in keys
                                  for v in (self.kappa[k][i, j], self.stderr[k][i, j],
                                            1.96 * self.stderr[k][i, j])])
        return Path(path)


def kappa_convergence(derivatives: DerivativeSet, meshes: Sequence[int],
                      sigmas: Sequence[float], *, temperature: float = 300.0,
                      sampling: SunsetSampling | None = None) -> KappaConvergence:
    """kappa at ``temperature`` on every ``n^3`` of ``meshes`` for every smearing.

    Needs orders 2-4. The sunset is sampled (``sampling``, default 1024 pairs per
    irreducible q-point); the bubble uses the same Gaussian.
    """
    sampling = sampling or SunsetSampling()
    out = KappaConvergence(derivatives.name, float(temperature), [int(n) for n in meshes],
                           [float(s) for s in sigmas], meta={"sampling": sampling.as_dict()})
    shape = (len(out.sigmas), len(out.meshes))
    out.seconds = np.zeros(shape)
    for key in LIFETIMES:
        out.kappa[key], out.stderr[key] = np.zeros(shape), np.zeros(shape)
    for i, s in enumerate(out.sigmas):
        for j, n in enumerate(out.meshes):
            t0 = time.perf_counter()
            k = thermal_conductivity(derivatives, mesh=n, temperatures=[temperature], sigma=s,
                                     lifetimes=LIFETIMES, four_phonon="sampled",
                                     sampling=sampling)
            out.seconds[i, j] = time.perf_counter() - t0
            for key in LIFETIMES:
                out.kappa[key][i, j] = k.kappa[key][0]
                out.stderr[key][i, j] = k.kappa_stderr[key][0]
    return out
