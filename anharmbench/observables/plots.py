"""Figures in the style of the paper (Bandi, Jiang and Marianetti 2024, Figs. 2-5).

Several potentials on one figure, one colour each: the reference black, GAP green, BPNN
blue, GNN red (the paper's), any other name a colour of matplotlib's cycle. PNG files.

* :func:`plot_dispersion` -- Fig. 2: Fourier-interpolated bands (lines) and the explicitly
  measured FTG q-points (dots);
* :func:`plot_mode_data` -- Figs. 3 and 4: linewidths (``2 gamma``, FWHM) or lineshifts per
  branch along a path (one panel per branch), or against frequency on a mesh;
* :func:`plot_kappa` -- Fig. 5: conductivity against temperature, one panel per lifetime
  model (bubble, sunset, combined); reference as black diamonds, the others as dots;
  sampled sunsets with their 95 % bands;
* :func:`plot_kappa_convergence` -- kappa against the mesh for several smearings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anharmbench.observables.conductivity import KappaResult  # noqa: E402
from anharmbench.observables.convergence import KappaConvergence  # noqa: E402
from anharmbench.observables.dispersion import Dispersion  # noqa: E402
from anharmbench.observables.modes import ModeData  # noqa: E402

__all__ = ["PAPER_COLORS", "color_of", "linestyle_of", "plot_dispersion", "plot_kappa",
           "plot_kappa_convergence", "plot_mode_data"]

#: The paper's colours by potential name (case-insensitive).
PAPER_COLORS = {"reference": "black", "crg": "black", "dft": "black", "gap": "green",
                "bpnn": "blue", "ann": "blue", "n2p2": "blue", "gnn": "red", "nequip": "red"}

_LABELS = {
    "bubble_gamma": "bubble linewidth 2Γ (THz)",
    "sunset_gamma": "sunset linewidth 2Γ (THz)",
    "loop_shift": "loop lineshift Δ (THz)",
    "bubble_shift": "bubble lineshift Δ (THz)",
}


def color_of(name: str, index: int) -> str:
    """The paper's colour of a potential, else the ``index``-th colour of the cycle."""
    key = name.lower()
    for k, c in PAPER_COLORS.items():
        if key == k or key.startswith(k):
            return c
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    others = [c for c in cycle if c not in ("black", "green", "blue", "red")]
    return others[index % len(others)]


def linestyle_of(name: str) -> str:
    """Solid for a model's first dataset (``NAME@idmd``, or no dataset), dashed for
    ``NAME@refmd``, so one model trained on both datasets keeps its colour."""
    return "--" if name.lower().endswith("@refmd") else "-"


def _is_reference(name: str) -> bool:
    return color_of(name, 0) == "black"


def _ticks(ax: plt.Axes, ticks: np.ndarray, labels: Sequence[str]) -> None:
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    for x in ticks[1:-1]:
        ax.axvline(x, color="0.7", lw=0.6, zorder=0)
    ax.set_xlim(ticks[0], ticks[-1])


def plot_dispersion(results: Sequence[Dispersion], path: str | Path, *,
                    title: str | None = None) -> Path:
    """Fig. 2: bands of several potentials, FTG measurements as dots. Returns the PNG path."""
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, d in enumerate(results):
        c = color_of(d.potential, i)
        ls = linestyle_of(d.potential)
        ax.plot(d.path.distances, d.frequencies, color=c, lw=1.0, ls=ls)
        ax.plot([], [], color=c, lw=1.0, ls=ls, marker="o", ms=4, label=d.potential)
        if len(d.ftg_distances):
            for j in range(d.ftg_frequencies.shape[1]):
                ax.plot(d.ftg_distances, d.ftg_frequencies[:, j], ls="none", marker="o", ms=4,
                        color=c, zorder=3)
    ref = results[0].path
    _ticks(ax, ref.tick_distances, ref.tick_labels)
    ax.axhline(0.0, color="0.5", lw=0.5)
    ax.set_ylabel("Frequency (THz)")
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_mode_data(results: Sequence[ModeData], path: str | Path, *,
                   branches: Sequence[int] | None = None, temperature: float | None = None,
                   ylabel: str | None = None) -> Path:
    """Figs. 3-4: a per-mode quantity of several potentials, one panel per branch.

    Linewidth quantities are drawn as ``2 gamma`` (FWHM). Along a path the abscissa is the
    path with its labels; on a mesh it is the harmonic frequency.

    Parameters
    ----------
    results
        Same quantity for several potentials.
    branches
        Branch indices (default all).
    temperature
        Which temperature (default the first computed).
    """
    first = results[0]
    nb = first.frequencies.shape[1]
    branches = list(range(nb)) if branches is None else [int(b) for b in branches]
    T = float(first.temperatures[0] if temperature is None else temperature)
    ncol = min(3, len(branches))
    nrow = int(np.ceil(len(branches) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.6 * nrow), squeeze=False)
    on_path = first.distances is not None
    for k, b in enumerate(branches):
        ax = axes[k // ncol][k % ncol]
        for i, r in enumerate(results):
            vals = r.at_temperature(T)[:, b]
            if r.quantity.endswith("gamma"):
                vals = 2.0 * vals
            c = color_of(r.potential, i)
            mk = "D" if _is_reference(r.potential) else "o"
            if on_path and r.distances is not None:
                ax.plot(r.distances, vals, color=c, lw=1.0, ls=linestyle_of(r.potential),
                        marker=mk, ms=3, label=r.potential)
            else:
                ax.plot(r.frequencies[:, b], vals, ls="none", color=c, marker=mk, ms=3,
                        label=r.potential)
        if on_path and first.path is not None:
            _ticks(ax, first.path.tick_distances, first.path.tick_labels)
        elif not on_path:
            ax.set_xlabel("Frequency (THz)")
        ax.set_title(f"branch {b}", fontsize=9)
        ax.axhline(0.0, color="0.6", lw=0.5)
        if k % ncol == 0:
            ax.set_ylabel(ylabel or _LABELS.get(first.quantity, first.quantity))
    for k in range(len(branches), nrow * ncol):
        axes[k // ncol][k % ncol].set_visible(False)
    axes[0][0].legend(frameon=False, fontsize=7)
    fig.suptitle(f"{T:g} K", fontsize=9)
    return _save(fig, path)


def plot_kappa(results: Sequence[KappaResult], path: str | Path, *,
               lifetimes: Sequence[str] | None = None) -> Path:
    """Fig. 5: kappa(T), one panel per lifetime model (a: bubble, b: sunset, c: combined)."""
    keys = list(lifetimes) if lifetimes is not None else [
        k for k in ("bubble", "sunset", "combined") if any(k in r.kappa for r in results)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.0), squeeze=False)
    for a, key in enumerate(keys):
        ax = axes[0][a]
        for i, r in enumerate(results):
            if key not in r.kappa:
                continue
            c = color_of(r.potential, i)
            ref = _is_reference(r.potential)
            ax.plot(r.temperatures, r.kappa[key], color=c, lw=1.0, ls=linestyle_of(r.potential),
                    marker="D" if ref else "o",
                    ms=5 if ref else 4, label=r.potential, zorder=3 if ref else 2)
            err = r.kappa_stderr.get(key)
            if err is not None and np.any(err > 0):  # the sampled sunset's 95 % interval
                ax.fill_between(r.temperatures, r.kappa[key] - 1.96 * err,
                                r.kappa[key] + 1.96 * err, color=c, alpha=0.2, lw=0)
        ax.set_xlabel("Temperature (K)")
        ax.set_title(f"({chr(97 + a)}) {key} lifetimes", fontsize=9)
        if a == 0:
            ax.set_ylabel("κ (W/m K)")
        ax.legend(frameon=False, fontsize=7)
    if results:
        fig.suptitle(f"three-phonon broadening: {results[0].meta.get('broadening', '?')}",
                     fontsize=8)
    return _save(fig, path)


def plot_kappa_convergence(conv: KappaConvergence, path: str | Path) -> Path:
    """kappa against the mesh, one line per smearing, one panel per lifetime model; the
    sampled sunset's 95 % intervals as error bars."""
    keys = [k for k in ("bubble", "sunset", "combined") if k in conv.kappa]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.0), squeeze=False)
    for a, key in enumerate(keys):
        ax = axes[0][a]
        for i, s in enumerate(conv.sigmas):
            ax.errorbar(conv.meshes, conv.kappa[key][i], yerr=1.96 * conv.stderr[key][i],
                        marker="o", ms=4, lw=1.0, capsize=2, label=f"σ = {s:g} THz")
        ax.set_xlabel("mesh n (n×n×n)")
        ax.set_xticks(conv.meshes)
        ax.set_title(f"({chr(97 + a)}) {key}, {conv.temperature:g} K", fontsize=9)
        if a == 0:
            ax.set_ylabel("κ (W/m K)")
        ax.legend(frameon=False, fontsize=7)
    fig.suptitle(f"{conv.potential}: one Gaussian σ for bubble and sunset; sunset sampled "
                 "(95 % intervals)", fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out
