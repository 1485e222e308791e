"""Table I of a study directory in the current convention, also for older runs.

Usage::

    python analysis/table1.py runs/default [--out DIR]

Reads every derivative stage of the study (``stages/derivatives-*/stage.json``). Values
stored in an older convention (none, or raw components with unit norm over the supercell
in the lab frame) are recomputed from the stored basis coefficients when read
(:meth:`anharmbench.derivatives.DerivativeSet.reported`; the files are left as they are);
IDMD models are judged against zero above the Taylor Hamiltonian's orders. Prints Table I
(markdown) and writes ``table1.csv`` and ``table1.md`` into ``DIR`` (default
``RUN/table1``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anharmbench.study.dataset_stages import IDMD_ORDERS
from anharmbench.study.report import error_table, write_table


def stage_files(run: Path) -> dict[str, dict[str, Path]]:
    """``{label: {set: derivatives.h5}}`` of the study's derivative stages."""
    out: dict[str, dict[str, Path]] = {}
    for rec_path in sorted((run / "stages").glob("derivatives-*/stage.json")):
        summary = json.loads(rec_path.read_text())["summary"]
        label, set_name = summary["line"].split(":")[0].split(" ", 1)
        path = Path(summary["derivatives"])
        if not path.is_absolute():  # relative to where the study ran: rebuild under RUN
            path = run.joinpath(*path.parts[path.parts.index("stages"):])
        out.setdefault(label, {})[set_name] = path
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="study directory (anharmbench run --out)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN/table1)")
    args = p.parse_args()
    out = args.out or args.run / "table1"
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((args.run / "config.json").read_text())
    set_orders = {d["name"]: list(d["orders"]) for d in config["derivative_sets"]}
    rows = error_table(stage_files(args.run), set_orders, {"idmd": IDMD_ORDERS})
    paths = write_table(rows, out)
    print(paths["table_md"].read_text())


if __name__ == "__main__":
    main()
