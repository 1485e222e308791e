"""The observables stage of the study (the paper's Figs. 2-5).

For the reference and every model, orders 2-4 of its derivative sets (full FTGs, no
Q-tuple subsets) become a :class:`~anharmbench.observables.force_constants.DerivativeSet`
and :func:`~anharmbench.observables.workflow.compute_observables` writes dispersion,
bubble linewidths and shifts, loop shifts and kappa(T) with bubble, sunset and combined
lifetimes; :func:`~anharmbench.observables.workflow.make_figures` draws every potential on
one figure per observable (reference in black). A potential whose observables cannot be
computed (e.g. an MLIP with imaginary harmonic frequencies) is reported with the reason,
q-point and branch in the summary and left out of the figures, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase import Atoms

from anharmbench.study.config import DerivativeSetConfig, StudyConfig
from anharmbench.study.runner import Stage

if TYPE_CHECKING:
    from anharmbench.observables.workflow import ObservableSet, ObservableSettings

__all__ = ["compute_potentials", "full_order_files", "observable_orders", "observables_stage"]

#: Meshes (n for n^3) of the quick profile; the paper profile keeps the observables'
#: defaults (bubble path 16^3, loop 8^3, kappa 8^3) unless the config sets ``mesh``.
QUICK_MESHES = {"path_mesh": 8, "loop_mesh": 6, "kappa_mesh": 6}


def full_order_files(sets: Sequence[DerivativeSetConfig], files: Mapping[str, Path],
                     keep: Sequence[int] = (2, 3, 4)) -> list[Path]:
    """Files of the sets that hold complete orders among ``keep`` (default 2-4; no Q-tuple
    restriction), each order from the first set that has it."""
    out = []
    seen: set[int] = set()
    for dset in sets:
        if dset.qtuple or dset.name not in files:
            continue
        orders = set(dset.orders) & set(keep)
        if orders and not orders & seen:
            if files[dset.name] not in out:  # a DFT reference: one file, several sets
                out.append(files[dset.name])
            seen |= orders
    return out


def observable_orders(sets: Sequence[DerivativeSetConfig],
                      keep: Sequence[int] = (2, 3, 4)) -> list[int]:
    """The orders among ``keep`` (default 2-4) that the sets hold over full FTGs (a DFT
    reference may stop at order 3: then the 4th-order observables are skipped, not the
    potential)."""
    return sorted({n for d in sets if not d.qtuple for n in d.orders} & set(keep))


def _one_potential(label: str, paths: Sequence[Path], orders: Sequence[int], out: Path,
                   settings: ObservableSettings) -> tuple[str, ObservableSet | None, str]:
    """``(label, observables or None, reason)`` of one potential (a process pool's task)."""
    from anharmbench.derivatives.derivative_set import DerivativeSetError
    from anharmbench.derivatives.io import DerivativesFileError
    from anharmbench.observables.errors import ObservableError
    from anharmbench.observables.force_constants import load_derivative_set
    from anharmbench.observables.workflow import compute_observables

    try:
        dset = load_derivative_set(list(paths), name=label, orders=list(orders))
        return label, compute_observables(dset, out, settings), ""
    except (ObservableError, DerivativeSetError, DerivativesFileError) as exc:
        return label, None, str(exc)


def compute_potentials(jobs: dict[str, Sequence[Path]], orders: Sequence[int], out: Path,
                       settings: ObservableSettings, workers: int | None = None
                       ) -> tuple[dict[str, ObservableSet], dict[str, str]]:
    """Observables of every potential, ``workers`` processes side by side.

    Parameters
    ----------
    jobs
        Label -> its derivative files (complete orders 2-4).
    orders
        The orders to load.
    out
        Parent directory of the per-potential results.
    settings
        Meshes, temperatures and smearings.
    workers
        Processes (None: one per core, at most one per potential; 1: this process).

    Returns
    -------
    (dict, dict)
        Label -> :class:`~anharmbench.observables.workflow.ObservableSet`, in ``jobs``
        order; label -> why it could not be computed.
    """
    from tqdm import tqdm

    from anharmbench.executors import worker_count, worker_pool

    n = min(worker_count(workers), len(jobs)) or 1
    bar = tqdm(total=len(jobs), desc="observables", unit="potential", leave=False,
               dynamic_ncols=True)
    done: dict[str, tuple[ObservableSet | None, str]] = {}
    try:
        if n == 1:
            for label, paths in jobs.items():
                done[label] = _one_potential(label, paths, orders, out, settings)[1:]
                bar.update()
        else:
            from concurrent.futures import as_completed

            with worker_pool(n) as pool:
                futures = [pool.submit(_one_potential, label, paths, orders, out, settings)
                           for label, paths in jobs.items()]
                for fut in as_completed(futures):
                    label, res, reason = fut.result()
                    done[label] = (res, reason)
                    bar.update()
    finally:
        bar.close()
    sets = {k: res for k in jobs if (res := done[k][0]) is not None}
    failed = {k: done[k][1] for k in jobs if done[k][0] is None}
    return sets, failed


def _convergence(jobs: dict[str, list[Path]], orders: Sequence[int], directory: Path,
                 obs: Any) -> tuple[str, Path]:
    """The reference's kappa against mesh and smearing: a text table and the figure."""
    from anharmbench.observables.convergence import kappa_convergence
    from anharmbench.observables.force_constants import load_derivative_set
    from anharmbench.observables.plots import plot_kappa_convergence
    from anharmbench.observables.sunset_sampled import SunsetSampling

    label = "reference" if "reference" in jobs else next(iter(jobs))
    dset = load_derivative_set(jobs[label], name=label, orders=list(orders))
    cv = obs.convergence
    sampling = SunsetSampling(**(obs.sunset.sampling() or {}))
    conv = kappa_convergence(dset, cv.meshes, cv.sigmas, temperature=cv.temperature,
                             sampling=sampling)
    conv.write_csv(directory / "data" / label / "kappa_convergence.csv")
    fig = plot_kappa_convergence(conv, directory / "figures" / "kappa_convergence.png")
    lines = [f"{label}: kappa({cv.temperature:g} K) against the mesh (W/m-K; +- the 95 % "
             "interval of the sampled sunset)"]
    for i, s in enumerate(conv.sigmas):
        for j, n in enumerate(conv.meshes):
            lines.append(
                f"  sigma {s:g} THz, {n}^3: bubble {conv.kappa['bubble'][i, j]:.3f}, sunset "
                f"{conv.kappa['sunset'][i, j]:.2f} +- {1.96 * conv.stderr['sunset'][i, j]:.2f}"
                f", combined {conv.kappa['combined'][i, j]:.3f} +- "
                f"{1.96 * conv.stderr['combined'][i, j]:.3f}")
    return "\n".join(lines), fig


def observables_stage(config: StudyConfig, prim: Atoms, derivatives: dict[str, dict[str, Path]],
                      upstream: dict[str, str]) -> Stage | None:
    """The stage computing every potential's observables (None: nothing to compute)."""
    obs = config.observables
    settings_kwargs: dict[str, Any] = {
        "line_temperature": obs.linewidth_temperature,
        "kappa_temperatures": tuple(float(t) for t in obs.temperatures),
        "sunset_sigma": obs.smearing_thz,
        "four_phonon": obs.sunset.method,
    }
    sampling = obs.sunset.sampling()
    if sampling is not None:
        settings_kwargs["sunset_sampling"] = sampling
    if config.profile == "quick":
        settings_kwargs.update(QUICK_MESHES)
    if obs.mesh is not None:
        n = int(obs.mesh[0])
        if any(int(m) != n for m in obs.mesh):
            raise ValueError(f"observables.mesh must be cubic (n, n, n), got {obs.mesh}")
        settings_kwargs["kappa_mesh"] = n
    inputs_files = {label: {k: str(v) for k, v in files.items()}
                    for label, files in derivatives.items()}
    keep = obs.orders
    if not any(full_order_files(config.derivative_sets, f, keep) for f in derivatives.values()):
        return None

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.observables.sunset_sampled import SunsetSampling
        from anharmbench.observables.workflow import ObservableSettings, make_figures, summary

        kw = dict(settings_kwargs)
        if "sunset_sampling" in kw:
            kw["sunset_sampling"] = SunsetSampling(**kw["sunset_sampling"])
        settings = ObservableSettings(**kw)
        # the orders 2-4 that the sets hold (a DFT reference may stop at order 3: then
        # the 4th-order observables are skipped, not the potential)
        wanted = observable_orders(config.derivative_sets, keep)
        failed: dict[str, str] = {}
        jobs: dict[str, list[Path]] = {}
        for label, files in derivatives.items():
            paths = full_order_files(config.derivative_sets, files, keep)
            if paths:
                jobs[label] = paths
            else:
                failed[label] = "no derivative set with complete orders 2-4"
        done, not_computed = compute_potentials(jobs, wanted, directory / "data", settings,
                                                obs.workers)
        failed.update(not_computed)
        sets = list(done.values())
        skipped = {label: dict(res.skipped) for label, res in done.items() if res.skipped}
        figures = make_figures(sets, directory / "figures") if sets else {}
        text = summary(sets)
        if obs.convergence is not None and jobs:
            conv_text, conv_fig = _convergence(jobs, wanted, directory, obs)
            text += "\n" + conv_text
            figures["kappa_convergence"] = conv_fig
        (directory / "summary.txt").write_text(
            text + "\n" + "".join(f"{k}: not computed: {v}\n" for k, v in failed.items())
        )
        return {
            "figures": {k: str(v) for k, v in figures.items()},
            "summary": text,
            "failed": failed,
            "skipped": skipped,
            "line": f"observables of {len(sets)} potential(s)"
            + (f"; not computed for {', '.join(failed)}" if failed else ""),
        }

    from anharmbench.observables.force_constants import INTERPOLATION

    # the interpolation is part of what is computed: results of another one are not reused
    inputs = {"settings": settings_kwargs, "interpolation": INTERPOLATION,
              "derivatives": inputs_files,
              "sets": [d.model_dump(mode="json") for d in config.derivative_sets],
              **({"orders": list(keep)} if list(keep) != [2, 3, 4] else {}),
              **({"convergence": obs.convergence.model_dump(mode="json")}
                 if obs.convergence is not None else {})}
    del prim, upstream  # the derivative files (named by their stage keys) carry both
    return Stage("observables", inputs, run)
