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

from pathlib import Path
from typing import Any

from ase import Atoms

from anharmbench.study.config import StudyConfig
from anharmbench.study.runner import Stage

__all__ = ["observables_stage"]

#: Meshes (n for n^3) of the quick profile; the paper profile keeps the observables'
#: defaults (bubble path 16^3, loop 8^3, kappa 8^3) unless the config sets ``mesh``.
QUICK_MESHES = {"path_mesh": 8, "loop_mesh": 6, "kappa_mesh": 6}


def _full_order_files(config: StudyConfig, files: dict[str, Path]) -> list[Path]:
    """Files of the sets that hold complete orders 2-4 (no Q-tuple restriction)."""
    out = []
    seen: set[int] = set()
    for dset in config.derivative_sets:
        if dset.qtuple or dset.name not in files:
            continue
        orders = set(dset.orders) & {2, 3, 4}
        if orders and not orders & seen:
            if files[dset.name] not in out:  # a DFT reference: one file, several sets
                out.append(files[dset.name])
            seen |= orders
    return out


def observables_stage(config: StudyConfig, prim: Atoms, derivatives: dict[str, dict[str, Path]],
                      upstream: dict[str, str]) -> Stage | None:
    """The stage computing every potential's observables (None: nothing to compute)."""
    obs = config.observables
    settings_kwargs: dict[str, Any] = {
        "line_temperature": obs.linewidth_temperature,
        "kappa_temperatures": tuple(float(t) for t in obs.temperatures),
        "sunset_sigma": obs.smearing_thz,
    }
    if config.profile == "quick":
        settings_kwargs.update(QUICK_MESHES)
    if obs.mesh is not None:
        n = int(obs.mesh[0])
        if any(int(m) != n for m in obs.mesh):
            raise ValueError(f"observables.mesh must be cubic (n, n, n), got {obs.mesh}")
        settings_kwargs["kappa_mesh"] = n
    inputs_files = {label: {k: str(v) for k, v in files.items()}
                    for label, files in derivatives.items()}
    if not any(_full_order_files(config, f) for f in derivatives.values()):
        return None

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.observables.errors import ObservableError
        from anharmbench.observables.force_constants import load_derivative_set
        from anharmbench.observables.workflow import (
            ObservableSettings,
            compute_observables,
            make_figures,
            summary,
        )

        settings = ObservableSettings(**settings_kwargs)
        # the orders 2-4 that the sets hold (a DFT reference may stop at order 3: then
        # the 4th-order observables are skipped, not the potential)
        wanted = sorted({n for d in config.derivative_sets if not d.qtuple
                         for n in d.orders} & {2, 3, 4})
        sets = []
        failed: dict[str, str] = {}
        skipped: dict[str, dict[str, str]] = {}
        from tqdm import tqdm

        for label, files in tqdm(derivatives.items(), desc="observables", unit="potential",
                                 total=len(derivatives), leave=False, dynamic_ncols=True):
            paths = _full_order_files(config, files)
            if not paths:
                failed[label] = "no derivative set with complete orders 2-4"
                continue
            try:
                dset = load_derivative_set(paths, name=label, orders=wanted)
                res = compute_observables(dset, directory / "data", settings)
            except ObservableError as exc:
                failed[label] = str(exc)
                continue
            sets.append(res)
            if res.skipped:
                skipped[label] = dict(res.skipped)
        figures = make_figures(sets, directory / "figures") if sets else {}
        text = summary(sets)
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

    inputs = {"settings": settings_kwargs, "derivatives": inputs_files,
              "sets": [d.model_dump(mode="json") for d in config.derivative_sets]}
    del prim, upstream  # the derivative files (named by their stage keys) carry both
    return Stage("observables", inputs, run)
