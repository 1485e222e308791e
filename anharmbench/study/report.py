"""The study's report: Table I, parity figures, and one self-contained HTML page.

* ``table1.csv`` / ``table1.md``: RMSE of each model's irreducible derivatives against the
  reference, divided by the mean magnitude of the reference derivatives, per model,
  dataset and order (the paper's Table I); all derivative sets of an order are pooled,
  and a model's training seeds give a mean and a spread.
* ``fig1ab_parity_<dataset>.png``: energies and forces on the held-out test set;
* ``fig_derivatives_<dataset>.png``: derivative parity per order (Figs. 1c-d and 6);
* the observables' figures (Figs. 2-5) when that stage ran;
* ``report.html``: everything above, inline, with the config and software versions.
"""

from __future__ import annotations

import base64
import csv
import html
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anharmbench.derivatives.derivative_set import DerivativeSet
from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.fileio import write_text_atomic
from anharmbench.study.config import StudyConfig
from anharmbench.study.dataset_stages import IDMD_ORDERS
from anharmbench.study.labels import parse_label
from anharmbench.study.profiles import table_reading
from anharmbench.symmetry.convention import CONVENTION

#: The convention column of ``table1.csv``.
CONVENTION_NAME = CONVENTION.split(":")[0]

__all__ = ["error_table", "rank_chain", "rankings", "spread_note", "write_report", "write_table"]

COLORS = {"GAP": "tab:green", "BPNN": "tab:blue", "GNN": "tab:red", "reference": "black"}


@dataclass(frozen=True)
class Pooled:
    """One order's derivatives of one potential, pooled over its derivative sets.

    ``paper``/``paper_sigma``: the reported values, our convention (after Fu et al. 2019;
    :mod:`anharmbench.symmetry.convention`: per primitive cell, crystal frame);
    ``coefficients``: our orthonormal-basis values ``d_k`` times each set's
    ``N^(n/2 - 1)``, so that their norm is the per-primitive-cell Frobenius norm of the
    Cartesian tensor and sets of different supercells pool with equal weight. All eV/A^n,
    ``(K,)``.
    """

    labels: list[str]
    coefficients: np.ndarray
    paper: np.ndarray
    paper_sigma: np.ndarray


def _pooled(files: Mapping[str, Path | DerivativeSet],
            set_orders: dict[str, list[int]] | None = None) -> dict[int, Pooled]:
    """``{order: Pooled}`` over the derivative sets (labels prefixed by the set name).

    ``files``: each set's ``derivatives.h5`` or :class:`DerivativeSet`. ``set_orders``
    keeps only each set's own orders (a DFT reference's one file holds the orders of
    several sets).
    """
    parts: dict[int, list[tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]] = {}
    for set_name in sorted(files):
        given = files[set_name]
        dset = given if isinstance(given, DerivativeSet) else DerivativeSet.from_file(given)
        for n in dset.orders:
            if set_orders is not None and n not in set_orders.get(set_name, [n]):
                continue
            rep = dset.reported(n)
            parts.setdefault(n, []).append(
                ([f"{set_name}:{lab}" for lab in dset.labels[n]],
                 rep.scale * np.asarray(dset.values[n], dtype=float),
                 np.asarray(rep.values), np.asarray(rep.uncertainties)))
    return {n: Pooled([lab for p in ps for lab in p[0]],
                      np.concatenate([p[1] for p in ps]), np.concatenate([p[2] for p in ps]),
                      np.concatenate([p[3] for p in ps]))
            for n, ps in parts.items()}


def _difference(r: Pooled, m: Pooled) -> dict[str, Any]:
    """Table I's figures of one potential's order against the reference's."""
    rmse = float(np.sqrt(np.mean((m.paper - r.paper) ** 2)))
    scale = float(np.mean(np.abs(r.paper)))
    norm = float(np.linalg.norm(r.coefficients))
    return {
        "n": len(r.paper),
        "rel_rmse": rmse / scale if scale > 0 else float("nan"),
        "rel_frobenius": float(np.linalg.norm(m.coefficients - r.coefficients)) / norm
        if norm > 0 else float("nan"),
        "rmse": rmse, "mean_abs_ref": scale,
        "convention": CONVENTION_NAME,
    }


def _spread(values: list[float]) -> float:
    """Sample standard deviation over seeds (NaN for a single seed: no spread measured)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def error_table(derivatives: Mapping[str, Mapping[str, Path | DerivativeSet]],
                set_orders: dict[str, list[int]] | None = None,
                truth_orders: Mapping[str, Sequence[int]] | None = None
                ) -> list[dict[str, Any]]:
    """Rows of Table I, one per (model, order); a model's seeds pooled into one row.

    ``derivatives``: ``{potential label: {set name: derivatives.h5 or DerivativeSet}}``,
    the reference labelled ``"reference"``. ``truth_orders``: ``{dataset: orders}`` for a
    dataset generated by a surface that is the reference only at some orders (IDMD: the
    Taylor Hamiltonian of orders 2-4, :data:`~anharmbench.study.dataset_stages.IDMD_ORDERS`);
    a model trained on it is judged against zero at the other orders (``truth`` ``"zero"``).

    Keys: ``model, dataset, order, n, n_seeds, truth``;
    ``rel_rmse = sqrt(mean((p_model - p_ref)^2)) / mean(|p_ref|)`` over the order's
    irreducible derivatives ``p`` as reported (:meth:`DerivativeSet.reported`: our
    convention after Fu et al. 2019, per primitive cell, crystal frame; all sets pooled),
    with ``rmse`` and ``mean_abs_ref``; ``rel_frobenius = ||Phi_model - Phi_ref|| /
    ||Phi_ref||`` of the Cartesian tensors, per primitive cell, sets pooled (independent of
    any basis). Against a zero truth, ``rel_rmse`` and ``rel_frobenius`` are NaN and
    ``rmse`` is the RMS of the model's own ``p`` (eV/A^n).
    For a model trained with several seeds (labels ``<model>#<seed>``,
    :mod:`anharmbench.study.labels`) ``rel_rmse``, ``rel_frobenius`` and ``rmse`` are the
    means over the seeds, ``*_spread`` their sample standard deviations (NaN for one seed)
    and ``rel_rmse_per_seed`` the seeds' values (``;``-separated, in seed order; against a
    zero truth, the seeds' RMS).
    ``ref_sigma`` is the RMS one-sigma uncertainty of the reference's ``p`` and
    ``within_ref_uncertainty`` whether ``rmse <= 2 ref_sigma`` (the difference is not
    resolved by the reference).
    """
    ref = _pooled(derivatives["reference"], set_orders)
    models: dict[str, list[tuple[int | None, str]]] = {}
    for label in derivatives:
        parsed = parse_label(label)
        models.setdefault(parsed.model, []).append((parsed.seed, label))
    rows: list[dict[str, Any]] = []
    for model, seeds in models.items():
        name, _, dataset = model.partition("@")
        # the first seed (None) first, then the replicas by seed
        seeds.sort(key=lambda sl: -1 if sl[0] is None else sl[0])
        pooled = [(label, _pooled(derivatives[label], set_orders)) for _, label in seeds]
        for n in sorted(set.intersection(*(set(p) for _, p in pooled)) & set(ref)):
            per_seed = []
            for label, p in pooled:
                if ref[n].labels != p[n].labels:
                    raise ValueError(f"{label}: order-{n} derivatives are not those of the "
                                     "reference")
                per_seed.append(_difference(ref[n], p[n]))
            zero = (model != "reference" and truth_orders is not None
                    and dataset in truth_orders and n not in truth_orders[dataset])
            if zero:
                rms = [float(np.sqrt(np.mean(p[n].paper ** 2))) for _, p in pooled]
                rel = fro = [float("nan")] * len(pooled)
                rmse, spread, sigma = float(np.mean(rms)), _spread(rms), 0.0
            else:
                rel = [d["rel_rmse"] for d in per_seed]
                fro = [d["rel_frobenius"] for d in per_seed]
                rms = [d["rmse"] for d in per_seed]
                rmse, spread = float(np.mean(rms)), _spread(rms)
                sigma = float(np.sqrt(np.mean(ref[n].paper_sigma ** 2)))
            rows.append({
                "model": name,
                "dataset": dataset or ("self" if model == "reference" else "external"),
                "order": n, "n": per_seed[0]["n"], "n_seeds": len(per_seed),
                "truth": "zero" if zero else "reference",
                "rel_rmse": float(np.mean(rel)), "rel_rmse_spread": _spread(rel),
                "rel_frobenius": float(np.mean(fro)), "rel_frobenius_spread": _spread(fro),
                "rmse": rmse, "rmse_spread": spread,
                "mean_abs_ref": per_seed[0]["mean_abs_ref"],
                "rms_ref": float(np.sqrt(np.mean(ref[n].paper ** 2))),
                "ref_sigma": sigma, "within_ref_uncertainty": bool(not zero and rmse <= 2 * sigma),
                "convention": per_seed[0]["convention"],
                "rel_rmse_per_seed": ";".join(f"{v:.6g}" for v in (rms if zero else rel)),
            })
    return rows


def rank_chain(rows: list[dict[str, Any]], tie: str = "≈") -> str:
    """The models of one dataset and order, best first by mean relative RMSE: ``A < B``
    where the means differ by more than the sum of the seeds' spreads, ``A ≈ B`` (``tie``)
    where they do not (a single seed counts as no spread)."""
    got = sorted(rows, key=lambda r: r["rel_rmse"])
    text = got[0]["model"] if got else ""
    for a, b in itertools.pairwise(got):
        spread = sum(0.0 if not np.isfinite(x["rel_rmse_spread"]) else x["rel_rmse_spread"]
                     for x in (a, b))
        text += (" < " if b["rel_rmse"] - a["rel_rmse"] > spread else f" {tie} ") + b["model"]
    return text


def rankings(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (dataset, order) with two models or more: :func:`rank_chain`, with
    ``(not resolved)`` said where a pair is not resolved."""
    lines = []
    ranked = [r for r in rows
              if r.get("truth", "reference") == "reference" and r["dataset"] != "self"]
    for dataset in sorted({r["dataset"] for r in ranked}):
        for n in sorted({r["order"] for r in ranked if r["dataset"] == dataset}):
            got = [r for r in ranked if r["dataset"] == dataset and r["order"] == n]
            if len(got) < 2:
                continue
            text = rank_chain(got)
            resolved = "" if "≈" not in text else " (≈: spreads overlap, not resolved)"
            lines.append(f"- {dataset}, order {n}: {text}{resolved}")
    return lines


def _with_spread(mean: float, spread: float) -> str:
    """``mean±spread`` (four decimals, or four significant digits above 10)."""
    fmt = ".4f" if abs(mean) < 10 else ".4g"
    if not np.isfinite(spread):
        return format(mean, fmt)
    return f"{mean:{fmt}}±{spread:{fmt}}"


#: Table I's caption (table1.md and the report).
CAPTION = (
    "Each entry: RMSE of the irreducible derivatives divided by the mean magnitude of the "
    "reference derivatives, the metric of Table I of Bandi, Jiang, Marianetti 2024, with the "
    "derivatives in our convention (after Fu et al. 2019, whose group-theoretical finite "
    "differences the paper follows; anharmbench.symmetry.convention): each derivative is the "
    "component d^nE/du_r1...du_rn of the derivative tensor in symmetrized displacements of "
    "unit amplitude per primitive cell (so a derivative has one value whichever supercell "
    "measured it), the modes taken in the crystal's own frame (spglib's standard "
    "orientation, origin on the atom of highest site symmetry: a rotated or translated "
    "crystal gives the same numbers), one mode tuple r per irreducible derivative, the "
    "lexicographically first independent tuples of its block multiset. In brackets: the "
    "basis-independent relative Frobenius norm ||Phi_model - Phi_ref|| / ||Phi_ref|| of the "
    "Cartesian tensors over the FTG, per primitive cell, all sets pooled. '~' marks a "
    "difference within twice the reference's own finite-difference uncertainty (not "
    "resolved)."
)


def write_table(rows: list[dict[str, Any]], directory: Path, note: str = "",
                spread: str = "") -> dict[str, Path]:
    """Write Table I rows (:func:`error_table`) as ``table1.csv`` and ``table1.md``
    (``note``: a paragraph under the table, e.g. what the profile's sizes can show;
    ``spread``: what the ± over seeds covers)."""
    csv_path, md_path = directory / "table1.csv", directory / "table1.md"
    keys = ["model", "dataset", "order", "n", "n_seeds", "truth", "rel_rmse",
            "rel_rmse_spread", "rel_frobenius", "rel_frobenius_spread", "rmse", "rmse_spread",
            "mean_abs_ref", "rms_ref", "ref_sigma", "within_ref_uncertainty", "convention",
            "rel_rmse_per_seed"]
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    shown = [r for r in rows if r["dataset"] != "self"]  # the reference's self-check: CSV only
    main = [r for r in shown if r.get("truth", "reference") == "reference"]
    zero = [r for r in shown if r.get("truth") == "zero"]
    lines = [CAPTION + " " + (spread or "A model trained with several seeds shows the mean "
                              "and, after '±', the sample standard deviation over its seeds."),
             "", *_markdown(main, lambda h: (
                 f"{'~' if h['within_ref_uncertainty'] else ''}"
                 f"{_with_spread(h['rel_rmse'], h['rel_rmse_spread'])} "
                 f"({_with_spread(h['rel_frobenius'], h['rel_frobenius_spread'])})"))]
    if zero:
        lines += ["", "Models trained on a dataset whose generating surface has no terms of "
                  "these orders (IDMD: the Taylor Hamiltonian of the reference's orders 2-4), "
                  "judged against their own truth, zero: RMS of the model's reported "
                  "derivatives in eV/A^n (a perfect learner of its data scores 0; the "
                  "reference's RMS, for scale, in the header).", "",
                  *_markdown(zero, lambda h: _with_spread(h["rmse"], h["rmse_spread"]),
                             header=lambda d, n, rs: f"{d} order {n} (ref RMS "
                             f"{rs[0]['rms_ref']:.3g})")]
    ranks = rankings(rows)
    if ranks:
        lines += ["", "Ranking by mean relative RMSE (per dataset and order):", *ranks]
    if note:
        lines += ["", note]
    write_text_atomic(md_path, "\n".join(lines) + "\n")
    return {"table_csv": csv_path, "table_md": md_path}


def _markdown(rows: list[dict[str, Any]], cell: Callable[[dict[str, Any]], str],
              header: Callable[[str, int, list[dict[str, Any]]], str] | None = None
              ) -> list[str]:
    """A markdown table: a row per model, a column per (dataset, order)."""
    if not rows:
        return []
    orders = sorted({r["order"] for r in rows})
    datasets = sorted({r["dataset"] for r in rows}, key=lambda d: (d == "external", d))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = [(d, n) for d in datasets for n in orders
            if any(r["dataset"] == d and r["order"] == n for r in rows)]

    def title(d: str, n: int) -> str:
        if header is None:
            return f"{d} order {n}"
        return header(d, n, [r for r in rows if r["dataset"] == d and r["order"] == n])

    lines = ["| model | " + " | ".join(title(d, n) for d, n in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for m in models:
        cells = []
        seeds = sorted({r["n_seeds"] for r in rows if r["model"] == m})
        for d, n in cols:
            hit = [r for r in rows if r["model"] == m and r["dataset"] == d and r["order"] == n]
            cells.append(cell(hit[0]) if hit else "-")
        who = m if seeds == [1] else f"{m} ({'/'.join(map(str, seeds))} seeds)"
        lines.append(f"| {who} | " + " | ".join(cells) + " |")
    return lines


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(name: str, i: int) -> str:
    return COLORS.get(name, f"C{i % 10}")


def _by_model(labels: Any) -> dict[str, list[str]]:
    """``{model label: [its seeds' labels]}`` (first seed first), reference left out."""
    out: dict[str, list[tuple[int, str]]] = {}
    for label in labels:
        parsed = parse_label(label)
        if parsed.model != "reference":
            out.setdefault(parsed.model, []).append(
                (-1 if parsed.seed is None else parsed.seed, label))
    return {m: [lab for _, lab in sorted(v)] for m, v in out.items()}


def _legend_name(model: str, n_seeds: int) -> tuple[str, str]:
    """``(model name without its dataset, legend entry naming the number of seeds)``."""
    name = model.partition("@")[0]
    return name, name if n_seeds == 1 else f"{name} ({n_seeds} seeds)"


def _save_figure(plt: Any, fig: Any, title: str, path: Path) -> Path:
    """Title ``fig``, write it to ``path`` (PNG, 110 dpi), close it; returns ``path``."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mean_spread(samples: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over seeds and sample standard deviation (``None`` for one seed)."""
    stack = np.stack(samples)
    return stack.mean(axis=0), (stack.std(axis=0, ddof=1) if len(samples) > 1 else None)


def _derivative_figures(derivatives: dict[str, dict[str, Path]], directory: Path,
                        set_orders: dict[str, list[int]] | None = None,
                        truth_orders: Mapping[str, Sequence[int]] | None = None
                        ) -> dict[str, Path]:
    """Derivative parity per order (reported values, per primitive cell); a model with
    several seeds is drawn at the seeds' mean with the seeds' standard deviation as error
    bars. A dataset's orders whose truth is not the reference (``truth_orders``) are left
    out (Table I gives their RMS against zero)."""
    plt = _plt()
    ref = _pooled(derivatives["reference"], set_orders)
    by_dataset: dict[str, list[tuple[str, list[str]]]] = {}
    for model, labels in _by_model(derivatives).items():
        by_dataset.setdefault(model.partition("@")[2] or "external", []).append((model, labels))
    out: dict[str, Path] = {}
    for dataset, models in sorted(by_dataset.items()):
        orders = sorted(n for n in ref if n >= 3) or sorted(ref)
        if truth_orders and dataset in truth_orders:
            orders = [n for n in orders if n in truth_orders[dataset]]
        if not orders:
            continue
        fig, axes = plt.subplots(1, len(orders), figsize=(3.4 * len(orders), 3.4), squeeze=False)
        for ax, n in zip(axes[0], orders, strict=True):
            r = ref[n].paper
            lo, hi = float(r.min()), float(r.max())
            ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
            for i, (model, labels) in enumerate(models):
                got = [_pooled(derivatives[lab], set_orders).get(n) for lab in labels]
                if any(g is None for g in got):
                    continue
                mean, spread = _mean_spread([g.paper for g in got])
                name, tag = _legend_name(model, len(labels))
                ax.errorbar(r, mean, yerr=spread, fmt="o", ms=2.5, lw=0.8, alpha=0.7,
                            color=_color(name, i), label=tag)
            ax.set_title(f"order {n}")
            ax.set_xlabel(f"reference (eV/$\\AA^{n}$)")
            ax.set_ylabel("model (mean ± sd over seeds)")
        axes[0][0].legend(fontsize=7)
        out[f"derivatives_{dataset}"] = _save_figure(
            plt, fig, f"irreducible derivatives, models trained on {dataset}",
            directory / f"fig_derivatives_{dataset}.png")
    return out


def _parity_figures(parity: dict[str, Path], directory: Path) -> dict[str, Path]:
    """Energies and forces on the held-out test set; a model with several seeds at the
    seeds' mean prediction with their standard deviation as error bars."""
    plt = _plt()
    by_dataset: dict[str, list[tuple[str, list[Path]]]] = {}
    for model, labels in _by_model(parity).items():
        by_dataset.setdefault(model.partition("@")[2] or "-", []).append(
            (model, [parity[lab] for lab in labels]))
    out: dict[str, Path] = {}
    for dataset, items in sorted(by_dataset.items()):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
        for i, (model, pdirs) in enumerate(items):
            name, tag = _legend_name(model, len(pdirs))
            e = [np.loadtxt(d / "parity_energy.csv", delimiter=",", skiprows=1, ndmin=2)
                 for d in pdirs]
            f = [np.genfromtxt(d / "parity_forces.csv", delimiter=",", skip_header=1,
                               usecols=(1, 2), ndmin=2) for d in pdirs]
            for ax, data, size in ((axes[0], e, 3.0), (axes[1], f, 1.5)):
                pred, spread = _mean_spread([x[:, 1] for x in data])
                ax.errorbar(data[0][:, 0], pred, yerr=spread, fmt="o", ms=size, lw=0.6,
                            alpha=0.6, color=_color(name, i), label=tag)
        for ax, what in zip(axes, ("energy (eV/atom)", "force (eV/$\\AA$)"), strict=True):
            lo, hi = ax.get_xlim()
            ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
            ax.set_xlabel(f"reference {what}")
            ax.set_ylabel(f"model {what}")
        axes[0].legend(fontsize=7)
        out[f"parity_{dataset}"] = _save_figure(
            plt, fig, f"test set of {dataset} (error bars: sd over seeds)",
            directory / f"fig1ab_parity_{dataset}.png")
    return out


def _versions() -> dict[str, str]:
    """Versions of the software that made the study (package metadata: nothing imported)."""
    import importlib.metadata

    from anharmbench.datasets.io import software_versions

    v = dict(software_versions())
    for dist in ("phonopy", "phono3py", "spglib", "symfc", "torch", "nequip", "quippy-ase",
                 "chgnet", "sevenn"):
        try:
            v[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:  # optional extras
            continue
    return v


def _crystal_name(config: StudyConfig, derivatives: dict[str, dict[str, Path]]) -> str:
    """The config's ``crystal.name`` when given, else the formula of the crystal measured
    (the default name, ThO2, is the embedded crystal's, not a DFT reference's or a file's)."""
    if "name" in config.crystal.model_fields_set:
        return config.crystal.name
    for sets in derivatives.values():
        for path in sets.values():
            try:
                prim = read_derivatives_file(path).primitive
            except (OSError, ValueError):
                continue
            return prim.get_chemical_formula(mode="hill", empirical=True)
    return config.crystal.name


def _equilibrium_section(derivatives: dict[str, dict[str, Path]]) -> list[str]:
    """Residual forces and stress of the reference structure on every potential.

    The reference must be at equilibrium (the study refuses it otherwise); models are
    measured at the reference's structure, so their residual stress says how far that
    is from their own equilibrium.
    """
    rows = []
    for label, sets in derivatives.items():
        for name, path in sets.items():
            try:
                attrs = read_derivatives_file(path).attrs
            except (OSError, ValueError):
                continue
            rec = json.loads(attrs.get("equilibrium", "null") or "null")
            if not rec:
                continue
            if not rec.get("checked"):
                cells = f"<td colspan=3>not checked: {html.escape(str(rec.get('why')))}</td>"
            else:
                flag = "yes" if rec["passed"] else "<b>no</b>"
                cells = (f"<td>{rec['max_force']:.1e}</td><td>{rec['max_stress_gpa']:.3g}</td>"
                         f"<td>{flag}</td>")
            rows.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(name)}</td>{cells}"
                        "</tr>")
    if not rows:
        return []
    return ["<h2>Equilibrium of the reference structure</h2><p>Residual force (eV/A) and "
            "largest stress component (GPa) of the undisplaced supercell on each potential. "
            "The reference must be at equilibrium; models are measured at the reference's "
            "structure.</p><table><tr><th>potential</th><th>set</th><th>force</th>"
            "<th>stress</th><th>within tolerance</th></tr>", *rows, "</table>"]


def spread_note(config: StudyConfig) -> str:
    """What the ± over a trained model's seeds covers in this study."""
    if config.datasets.pin:
        return ("A model trained with several seeds shows the mean and, after '±', the "
                "sample standard deviation over its training seeds, all on one dataset "
                "(datasets.pin): the spread covers the training, not the data.")
    return ("A model trained with several seeds shows the mean and, after '±', the sample "
            "standard deviation over its seeds; each seed trains on its own dataset, redrawn "
            "with its own seed (IDMD initial velocities, reference-MD trajectories), so the "
            "spread covers both the data and the training (DFT datasets are fixed data).")


def write_report(
    directory: Path,
    config: StudyConfig,
    derivatives: dict[str, dict[str, Path]],
    parity: dict[str, Path],
    observables: dict[str, Any],
    timings: list[tuple[str, float, bool]],
) -> dict[str, Any]:
    """Write the table, figures and ``report.html`` into ``<directory>/report``."""
    out_dir = Path(directory) / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    set_orders = {d.name: list(d.orders) for d in config.derivative_sets}
    truth = {"idmd": IDMD_ORDERS}
    rows = error_table(derivatives, set_orders, truth)
    reading = table_reading(config)
    spread = spread_note(config)
    files: dict[str, Any] = write_table(rows, out_dir, reading, spread)
    files.update(_parity_figures(parity, out_dir))
    files.update(_derivative_figures(derivatives, out_dir, set_orders, truth))
    for key, path in (observables.get("figures") or {}).items():
        files[f"observable_{key}"] = Path(path)
    write_text_atomic(out_dir / "timings.json", json.dumps(
        [{"stage": s, "seconds": t, "skipped": k} for s, t, k in timings], indent=1) + "\n")
    figs = [(k, Path(v)) for k, v in files.items() if str(v).endswith(".png")]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>anharmbench study</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px}"
        "img{max-width:100%}</style></head><body>",
        "<h1>anharmbench study</h1>",
        f"<p>profile <b>{html.escape(config.profile)}</b>; crystal "
        f"{html.escape(_crystal_name(config, derivatives))}; reference "
        f"{html.escape(config.reference.kind)}"
        "</p><h2>Table I</h2>",
        f"<p>{html.escape(CAPTION)} {html.escape(spread)} Against a zero truth (IDMD "
        "models above the orders of the Taylor Hamiltonian that made their data) the "
        "entry is the RMS of the model's derivatives in eV/A^n. The reference's "
        "uncertainty: RMS one-sigma of its finite differences.</p>",
        "<table><tr><th>model</th><th>dataset</th><th>order</th><th>n</th><th>seeds</th>"
        "<th>truth</th><th>RMSE / mean |ref|</th><th>relative Frobenius</th>"
        "<th>RMS error (eV/A^n)</th><th>reference sigma</th></tr>",
    ]
    for r in rows:
        parts.append(
            f"<tr><td>{html.escape(r['model'])}</td><td>{html.escape(r['dataset'])}</td>"
            f"<td>{r['order']}</td><td>{r['n']}</td><td>{r['n_seeds']}</td>"
            f"<td>{r['truth']}</td>"
            f"<td>{_with_spread(r['rel_rmse'], r['rel_rmse_spread'])}</td>"
            f"<td>{_with_spread(r['rel_frobenius'], r['rel_frobenius_spread'])}</td>"
            f"<td>{_with_spread(r['rmse'], r['rmse_spread'])}</td>"
            f"<td>{r['ref_sigma']:.2g}"
            f"{' (difference not resolved)' if r['within_ref_uncertainty'] else ''}</td></tr>"
        )
    parts.append("</table>")
    ranks = rankings(rows)
    if ranks:
        parts.append("<p>Ranking by mean relative RMSE:</p><ul>" + "".join(
            f"<li>{html.escape(x[2:])}</li>" for x in ranks) + "</ul>")
    if reading:
        parts.append(f"<p><b>{html.escape(reading)}</b></p>")
    parts += _equilibrium_section(derivatives)
    if observables:
        parts.append(
            "<h2>Observables</h2><p>Each trained model's observables are those of its "
            "first seed. Diagrams included: the bubble (order 3; phono3py's, "
            "linewidths and shifts), the loop (order 4, first-order lineshift) and the "
            "sunset (order 4, linewidth; Gaussian energy conservation). kappa (RTA) is given "
            "with bubble, sunset-only and combined lifetimes; where the sunset is computed, "
            "all three use one broadening, a Gaussian of "
            f"{config.observables.smearing_thz:g} THz for the three-phonon part too "
            "(phono3py's tetrahedron method only for a bubble-only kappa). The sunset is "
            + ("summed over every pair of the mesh. " if config.observables.sunset.method
               == "exact" else "sampled (unbiased, seeded); kappa carries its 95 % interval "
               "(+-) from the sampling. ") + "Not included, as in the "
            "paper: the tadpole (order 3 through a zone-centre totally symmetric mode; "
            "fluorite has none at fixed cell) and thermal expansion (all at the reference's "
            "fixed volume).</p>")
        parts.append("<pre>" + html.escape(str(observables.get("summary", "")))
                     + "</pre>")
        for label, why in (observables.get("failed") or {}).items():
            parts.append(f"<p><b>{html.escape(label)}</b>: not computed: {html.escape(why)}</p>")
    parts.append("<h2>Figures</h2>")
    for key, path in figs:
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<h3>{html.escape(key)}</h3><img src='data:image/png;base64,{data}'>")
    parts.append("<h2>Stages</h2><table><tr><th>stage</th><th>seconds</th><th>status</th></tr>")
    for s, t, k in timings:
        parts.append(f"<tr><td>{html.escape(s)}</td><td>{t:.1f}</td>"
                     f"<td>{'done before' if k else 'ran'}</td></tr>")
    parts.append("</table><h2>Settings</h2><pre>"
                 + html.escape(json.dumps(config.model_dump(mode="json"), indent=1))
                 + "</pre><h2>Versions</h2><pre>"
                 + html.escape(json.dumps(_versions(), indent=1)) + "</pre></body></html>")
    report = out_dir / "report.html"
    write_text_atomic(report, "\n".join(parts))
    files["html"] = report
    files["table"] = rows
    return files
