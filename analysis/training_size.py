"""At which training size does the ranking of the models in Table I stop changing, and
how large must the IDMD set be to teach a GNN the third and fourth derivatives?

Usage::

    python analysis/training_size.py RUN --snapshots 25 50 100 [--seeds 3] [--out FILE]
    python analysis/training_size.py RUN --idmd-steps 200 400 800 [--idmd-stride 10]
        [--idmd-temperature T] [--seeds 3] [--out FILE]

Runs the default study (quick profile) once per size of the reference-MD training set
(``datasets.refmd_snapshots``), with only the models trained on it (BPNN and NequIP) and
without observables, in ``RUN/training_size/<size>/``, whose ``stages`` is the study's own:
the reference's derivatives and every finished stage are reused (give the directory of
``anharmbench run`` to reuse its models of the profile's size), and the study's own report
is left alone. For each size it prints Table I of those models (mean and
standard deviation over ``--seeds`` training seeds) and, per order, the ranking by mean
relative RMSE, marking a pair whose means differ by less than the sum of their spreads
(not resolved by the seeds). Writes the rows as JSON (``--out``, default
``RUN/training_size/training_size.json``).

With ``--idmd-steps`` it sweeps the IDMD set instead (MD length in steps, a frame every
``--idmd-stride`` steps, optionally another temperature), with the GNN trained on it
(NequIP, the paper's central finding: the noiseless IDMD set teaches a GNN the third and
fourth derivatives), measured at orders 2-4 (the truth of an IDMD model: the Taylor
Hamiltonian is the reference there and zero above). Each seed redraws its IDMD trajectory,
so the spread covers the data. It prints, per size, the training frames, the time its
stages took (datasets, training, derivatives; the reference's stages are shared) and the
GNN's relative RMSE at orders 2-4 with the spread, against a zero model's 1.0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from anharmbench.study import load_config, run_study
from anharmbench.study.report import rank_chain


def ranking(rows: list[dict[str, Any]], order: int) -> str:
    """``A < B`` (resolved) or ``A ~ B`` (means within the sum of spreads), best first."""
    return rank_chain([r for r in rows if r["order"] == order and r["dataset"] == "refmd"],
                      tie="~")


def _where(run: Path, name: str) -> Path:
    """``RUN/training_size/<name>``, sharing the study's ``stages``."""
    where = run / "training_size" / name
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "stages").exists():
        (where / "stages").symlink_to(Path("..", "..", "stages"))
    return where


def idmd_sweep(run: Path, steps: list[int], stride: int, temperature: float | None,
               seeds: int) -> dict[str, list[dict[str, Any]]]:
    """The GNN trained on IDMD sets of ``steps`` MD steps (module docstring)."""
    base = load_config(None)
    models = [m.model_copy(update={"seeds": seeds, "orders": [2, 3, 4]}) for m in base.models
              if m.dataset == "idmd" and m.kind == "nequip"]
    results: dict[str, list[dict[str, Any]]] = {}
    lines = ["| IDMD steps | stride | train frames | T (K) | stages (s) | order 2 | order 3 "
             "| order 4 |", "|---|---|---|---|---|---|---|---|"]
    for n_steps in steps:
        config = base.model_copy(update={
            "models": models,
            "datasets": base.datasets.model_copy(update={
                "refmd": False, "idmd_steps": n_steps, "idmd_stride": stride,
                "idmd_temperature": temperature}),
            "observables": base.observables.model_copy(update={"enabled": False}),
        })
        name = f"idmd-{n_steps}x{stride}" + (f"-{temperature:g}K" if temperature else "")
        res = run_study(config, _where(run, name), verbose=True)
        rows = [r for r in res.report["table"] if r["dataset"] == "idmd"]
        results[name] = rows
        mine = [r for k, r in res.stages.items() if k.startswith(("dataset-", "train-"))
                or (k.startswith("derivatives-") and "reference" not in k)]
        seconds = sum(r.seconds for r in mine)
        frames = sorted({r.summary["frames"].get("train", 0) for k, r in res.stages.items()
                         if k.startswith("dataset-idmd")})
        temps = [r.summary["temperature_range"] for k, r in res.stages.items()
                 if k.startswith("dataset-idmd")]
        t_lo, t_hi = min(t[0] for t in temps), max(t[1] for t in temps)
        cells = {r["order"]: f"{r['rel_rmse']:.3f}±{r['rel_rmse_spread']:.3f}" for r in rows
                 if r.get("truth", "reference") == "reference"}
        lines.append(f"| {n_steps} | {stride} | {'/'.join(map(str, frames))} | "
                     f"{t_lo:.0f}-{t_hi:.0f} | {seconds:.0f} | "
                     + " | ".join(cells.get(n, "-") for n in (2, 3, 4)) + " |")
        print("\n".join(lines), flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="study directory (that of anharmbench run)")
    p.add_argument("--snapshots", type=int, nargs="+", default=[25, 50, 100])
    p.add_argument("--idmd-steps", type=int, nargs="+", default=None,
                   help="sweep the IDMD set instead: MD steps of each size")
    p.add_argument("--idmd-stride", type=int, default=10, help="steps between IDMD frames")
    p.add_argument("--idmd-temperature", type=float, default=None, help="IDMD temperature, K")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.idmd_steps:
        got = idmd_sweep(args.run, args.idmd_steps, args.idmd_stride, args.idmd_temperature,
                         args.seeds)
        out = args.out or args.run / "training_size" / "idmd_sweep.json"
        out.write_text(json.dumps(got, indent=1) + "\n")
        print(f"\nwritten {out}")
        return
    base = load_config(None)
    models = [m.model_copy(update={"seeds": args.seeds}) for m in base.models
              if m.dataset == "refmd"]
    results: dict[int, list[dict[str, Any]]] = {}
    for size in args.snapshots:
        config = base.model_copy(update={
            "models": models,
            "datasets": base.datasets.model_copy(update={"idmd": False,
                                                         "refmd_snapshots": size}),
            "observables": base.observables.model_copy(update={"enabled": False}),
        })
        res = run_study(config, _where(args.run, str(size)), verbose=True)
        rows = [r for r in res.report["table"] if r["dataset"] == "refmd"]
        results[size] = rows
        print(f"\n## {size} reference-MD snapshots, {args.seeds} seeds")
        print((res.report["table_md"]).read_text().split("\n", 2)[2])
    orders = sorted({r["order"] for rows in results.values() for r in rows})
    print("## ranking by mean relative RMSE ('~': within the sum of the seeds' spreads)\n")
    print("| snapshots | " + " | ".join(f"order {n}" for n in orders) + " |")
    print("|---|" + "---|" * len(orders))
    for size, rows in results.items():
        print(f"| {size} | " + " | ".join(ranking(rows, n) for n in orders) + " |")
    out = args.out or args.run / "training_size" / "training_size.json"
    out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
