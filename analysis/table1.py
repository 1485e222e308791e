"""Table I of a study directory, in the paper's convention, also for older runs.

Usage::

    python analysis/table1.py runs/default [--out DIR]

Reads every derivative stage of the study (``stages/derivatives-*/stage.json``). Files
written before the paper's convention was stored (no ``paper_values``) are upgraded into
copies under ``DIR/derivatives/`` (default ``RUN/table1``): their bases are rebuilt from
the job each file records, and the paper-convention values computed from the stored
coefficients (:mod:`anharmbench.symmetry.convention`). Prints Table I (markdown) and
writes ``table1.csv`` and ``table1.md`` into ``DIR``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import h5py

from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.derivatives.job import DerivativeJob, job_bases
from anharmbench.study.report import error_table, write_table
from anharmbench.symmetry.convention import paper_datasets


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


def upgraded(path: Path, dest: Path) -> Path:
    """``path`` itself if it has paper-convention values, else an upgraded copy."""
    data = read_derivatives_file(path)
    if all("paper_values" in r.extra for r in data.orders.values()):
        return path
    job = DerivativeJob.from_dict(json.loads(data.attrs["job"]) if isinstance(
        data.attrs["job"], str) else data.attrs["job"])
    bases = job_bases(job, data.primitive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    with h5py.File(dest, "r+") as h5:
        for n, rec in data.orders.items():
            for key, value in paper_datasets(bases[n], rec.values, rec.uncertainties).items():
                h5[f"order_{n}/{key}"] = value
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="study directory (anharmbench run --out)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN/table1)")
    args = p.parse_args()
    out = args.out or args.run / "table1"
    files = {label: {s: upgraded(f, out / "derivatives" / label.replace("@", "_") / f"{s}.h5")
                     for s, f in sets.items()} for label, sets in stage_files(args.run).items()}
    config = json.loads((args.run / "config.json").read_text())
    set_orders = {d["name"]: list(d["orders"]) for d in config["derivative_sets"]}
    rows = error_table(files, set_orders)
    paths = write_table(rows, out)
    print(paths["table_md"].read_text())


if __name__ == "__main__":
    main()
