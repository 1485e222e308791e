"""All observables of a set of potentials, as data and as the paper's figures.

For each potential (a :class:`~anharmbench.observables.force_constants.DerivativeSet`)
:func:`compute_observables` writes into ``out_dir/<name>/``:

* ``force_constants/`` -- phonopy/phono3py/phono4py files and our lattice tensors;
* ``dispersion.{h5,csv}`` (Fig. 2), ``bubble_gamma_path.{h5,csv}`` and
  ``bubble_shift_path`` (Fig. 3), ``loop_shift_path`` (Fig. 4), ``kappa`` (Fig. 5, bubble,
  sunset and combined lifetimes), optionally ``sunset_gamma_path``;

and :func:`make_figures` draws the figures of several potentials together, from the
results in memory or read back with :func:`load_observable_set`. Observables whose orders
a potential lacks are skipped and listed in ``ObservableSet.skipped``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anharmbench.derivatives.joins import check_ftg_coverage
from anharmbench.observables.bubble import bubble_gamma, bubble_shift, mesh_path
from anharmbench.observables.conductivity import (
    DEFAULT_TEMPERATURES,
    KappaResult,
    thermal_conductivity,
)
from anharmbench.observables.dispersion import Dispersion, dispersion
from anharmbench.observables.errors import MissingOrderError
from anharmbench.observables.force_constants import DerivativeSet, write_force_constants
from anharmbench.observables.io import read_observable, write_observable
from anharmbench.observables.loop import loop_shift
from anharmbench.observables.modes import ModeData, PathSpec
from anharmbench.observables.plots import plot_dispersion, plot_kappa, plot_mode_data
from anharmbench.observables.sunset import sunset_gamma
from anharmbench.observables.sunset_sampled import SunsetSampling, sampled_sunset_gamma

__all__ = ["ObservableSet", "ObservableSettings", "compute_observables", "load_observable_set",
           "make_figures", "summary"]


@dataclass(frozen=True)
class ObservableSettings:
    """What to compute and how finely.

    Attributes
    ----------
    path
        Band path (segments of ``(label, q)``); ``None``: the paper's Gamma-X-K-Gamma-L.
    dispersion_points
        Points per leg of the dispersion.
    line_temperature
        Temperature (K) of the path linewidths and lineshifts (Figs. 3-4).
    path_mesh
        Mesh of the bubble along the path: its q-points on the path are the abscissas of
        Figs. 3-4 (the loop and sunset use the same q-points).
    bubble_sigma
        Bubble smearing (THz); ``None``: tetrahedron method.
    bubble_shift_epsilon
        Smearing of the bubble's real part (THz).
    loop_mesh
        Internal mesh of the loop.
    sunset_path_mesh
        Internal mesh of the sunset along the path; ``0`` skips it (costly).
    sunset_sigma
        Gaussian smearing of the sunset (THz).
    kappa_mesh
        Mesh of the conductivity (and of the sunset lifetimes feeding it).
    kappa_temperatures
        K, default 300-1500 K by 200 K.
    kappa_lifetimes
        Subset of ``("bubble", "sunset", "combined")``.
    four_phonon
        The sunset of the conductivity and the path: ``"exact"`` (every pair) or
        ``"sampled"`` (with errors; :mod:`~anharmbench.observables.sunset_sampled`).
    sunset_sampling
        The sampled sunset's settings (only with ``four_phonon="sampled"``).
    """

    path: PathSpec | None = None
    dispersion_points: int = 51
    line_temperature: float = 300.0
    path_mesh: int = 16
    bubble_sigma: float | None = None
    bubble_shift_epsilon: float = 0.1
    loop_mesh: int = 8
    sunset_path_mesh: int = 0
    sunset_sigma: float = 0.1
    kappa_mesh: int = 8
    kappa_temperatures: tuple[float, ...] = tuple(DEFAULT_TEMPERATURES.tolist())
    kappa_lifetimes: tuple[str, ...] = ("bubble", "sunset", "combined")
    four_phonon: str = "exact"
    sunset_sampling: SunsetSampling | None = None


@dataclass(eq=False)
class ObservableSet:
    """The observables of one potential (``None`` where skipped)."""

    potential: str
    dispersion: Dispersion | None = None
    bubble_path: ModeData | None = None
    bubble_shift_path: ModeData | None = None
    loop_path: ModeData | None = None
    sunset_path: ModeData | None = None
    kappa: KappaResult | None = None
    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


_STEMS = {"dispersion": "dispersion", "bubble_path": "bubble_gamma_path",
          "bubble_shift_path": "bubble_shift_path", "loop_path": "loop_shift_path",
          "sunset_path": "sunset_gamma_path", "kappa": "kappa"}


def compute_observables(derivatives: DerivativeSet, out_dir: str | Path,
                        settings: ObservableSettings | None = None, *,
                        force_constants: bool = True) -> ObservableSet:
    """Compute and write every observable of one potential.

    Parameters
    ----------
    derivatives
        The potential's derivatives (orders 2-4 for everything).
    out_dir
        Parent directory; results go to ``out_dir/<derivatives.name>/``.
    settings
        :class:`ObservableSettings` (defaults: paper path, bubble on a 16^3 mesh, loop
        8^3, kappa 8^3 at 300-1500 K, sunset smearing 0.1 THz).
    force_constants
        Also write the force-constant files.

    Raises
    ------
    ImaginaryModeError, IncommensurateError
        As the individual observables (a missing order only skips what needs it).
    DerivativeSetError
        fc2 in a smaller supercell than a higher order that misses its q-points
        (:func:`~anharmbench.derivatives.joins.check_ftg_coverage`).
    """
    check_ftg_coverage(derivatives)  # before anything is written
    st = settings or ObservableSettings()
    out = Path(out_dir) / derivatives.name
    out.mkdir(parents=True, exist_ok=True)
    res = ObservableSet(derivatives.name)
    T = [float(st.line_temperature)]
    if force_constants:
        res.files.update({f"force_constants/{k}": v for k, v in
                          write_force_constants(derivatives, out / "force_constants").items()})
    path_q = mesh_path(derivatives, st.path_mesh, st.path)

    jobs = {
        "dispersion": lambda: dispersion(derivatives, st.path, st.dispersion_points),
        "bubble_path": lambda: bubble_gamma(derivatives, path_q, mesh=st.path_mesh,
                                            temperatures=T, sigma=st.bubble_sigma),
        "bubble_shift_path": lambda: bubble_shift(derivatives, path_q, mesh=st.path_mesh,
                                                  temperatures=T,
                                                  epsilon=st.bubble_shift_epsilon),
        "loop_path": lambda: loop_shift(derivatives, path_q, st.loop_mesh, T),
        "kappa": lambda: thermal_conductivity(
            derivatives, mesh=st.kappa_mesh, temperatures=st.kappa_temperatures,
            lifetimes=[x for x in st.kappa_lifetimes if _has(derivatives, x)] or None,
            bubble_sigma=st.bubble_sigma, sigma=st.sunset_sigma, four_phonon=st.four_phonon,
            sampling=st.sunset_sampling if st.four_phonon == "sampled" else None),
    }
    if st.sunset_path_mesh and st.four_phonon == "sampled":
        jobs["sunset_path"] = lambda: sampled_sunset_gamma(
            derivatives, path_q, st.sunset_path_mesh, T, sigma=st.sunset_sigma,
            sampling=st.sunset_sampling)
    elif st.sunset_path_mesh:
        jobs["sunset_path"] = lambda: sunset_gamma(derivatives, path_q, st.sunset_path_mesh, T,
                                                   sigma=st.sunset_sigma)
    for name, job in jobs.items():
        t0 = time.perf_counter()
        try:
            value = job()
        except MissingOrderError as err:
            res.skipped[name] = str(err)
            continue
        res.seconds[name] = time.perf_counter() - t0
        setattr(res, name, value)
        h5p, csvp = write_observable(value, out, _STEMS[name])
        res.files[name] = h5p
        res.files[f"{name}.csv"] = csvp
    return res


def _has(d: DerivativeSet, lifetime: str) -> bool:
    need = {"bubble": {2, 3}, "sunset": {2, 4}, "combined": {2, 3, 4}}[lifetime]
    return need <= set(d.orders)


def load_observable_set(directory: str | Path) -> ObservableSet:
    """Read back what :func:`compute_observables` wrote for one potential."""
    d = Path(directory)
    res = ObservableSet(d.name)
    for name, stem in _STEMS.items():
        p = d / f"{stem}.h5"
        if p.is_file():
            obj = read_observable(p)
            setattr(res, name, obj)
            res.files[name] = p
            res.potential = obj.potential
    return res


def make_figures(sets: Sequence[ObservableSet], out_dir: str | Path, *,
                 branches: Sequence[int] | None = None,
                 temperature: float | None = None) -> dict[str, Path]:
    """The paper's figures for several potentials (first = reference, drawn in black).

    Files: ``fig2_dispersion.png``, ``fig3_bubble_linewidth.png``,
    ``fig3_bubble_lineshift.png``, ``fig4_loop_lineshift.png``, ``fig5_kappa.png`` and
    ``sunset_linewidth_path.png`` (those with data).
    """
    out = Path(out_dir)
    figs: dict[str, Path] = {}
    disp = [s.dispersion for s in sets if s.dispersion is not None]
    if disp:
        figs["dispersion"] = plot_dispersion(disp, out / "fig2_dispersion.png")
    for attr, fname in (("bubble_path", "fig3_bubble_linewidth.png"),
                        ("bubble_shift_path", "fig3_bubble_lineshift.png"),
                        ("loop_path", "fig4_loop_lineshift.png"),
                        ("sunset_path", "sunset_linewidth_path.png")):
        data = [getattr(s, attr) for s in sets if getattr(s, attr) is not None]
        if data:
            figs[attr] = plot_mode_data(data, out / fname, branches=branches,
                                        temperature=temperature)
    kap = [s.kappa for s in sets if s.kappa is not None]
    if kap:
        figs["kappa"] = plot_kappa(kap, out / "fig5_kappa.png")
    return figs


def summary(sets: Sequence[ObservableSet]) -> str:
    """A short text table: kappa at the first and last temperature per potential."""
    lines = []
    for s in sets:
        if s.kappa is None:
            continue
        err = s.kappa.kappa_stderr
        parts = [f"{k} {v[0]:.2f}" + (f" +- {1.96 * err[k][0]:.2f}" if k in err and err[k][0] > 0
                                      else "") + f"->{v[-1]:.2f}"
                 for k, v in s.kappa.kappa.items()]
        T = s.kappa.temperatures
        lines.append(f"{s.potential}: kappa (W/mK, {T[0]:g}->{T[-1]:g} K) " + ", ".join(parts))
    return "\n".join(lines) if lines else "(no conductivities)"


