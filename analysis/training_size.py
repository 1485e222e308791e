"""At which training size does the ranking of the models in Table I stop changing?

Usage::

    python analysis/training_size.py RUN --snapshots 25 50 100 [--seeds 3] [--out FILE]

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

The IDMD models are left out: their training set is the IDMD trajectory itself (200 steps
in the quick profile), which costs a GAP measurement of ~12 minutes per seed and size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from anharmbench.study import load_config, run_study


def ranking(rows: list[dict[str, Any]], order: int) -> str:
    """``A < B`` (resolved) or ``A ~ B`` (means within the sum of spreads), best first."""
    got = sorted((r for r in rows if r["order"] == order and r["dataset"] == "refmd"),
                 key=lambda r: r["rel_rmse"])
    text = got[0]["model"] if got else ""
    for a, b in zip(got, got[1:], strict=False):
        spread = sum(x if x == x else 0.0 for x in (a["rel_rmse_spread"], b["rel_rmse_spread"]))
        text += (" < " if b["rel_rmse"] - a["rel_rmse"] > spread else " ~ ") + b["model"]
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="study directory (that of anharmbench run)")
    p.add_argument("--snapshots", type=int, nargs="+", default=[25, 50, 100])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
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
        where = args.run / "training_size" / str(size)
        where.mkdir(parents=True, exist_ok=True)
        if not (where / "stages").exists():
            (where / "stages").symlink_to(Path("..", "..", "stages"))
        res = run_study(config, where, verbose=True)
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
