"""Wall time per stage of a study run (default: runs/default, the quick study of make run).

Reads ``<study>/report/timings.json`` (written by every ``anharmbench run``) and prints each
stage's seconds, its share of the total, and whether it ran or was found done.

Usage: python benchmarks/bench_study.py [STUDY_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/default")
    path = study / "report" / "timings.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run 'anharmbench run --out {study}' first")
    rows = json.loads(path.read_text())
    total = sum(r["seconds"] for r in rows) or 1.0
    print(f"{'stage':40s} {'seconds':>9s} {'share':>6s}  status")
    for r in rows:
        status = "done before" if r["skipped"] else "ran"
        print(f"{r['stage']:40s} {r['seconds']:9.1f} {r['seconds'] / total:6.1%}  {status}")
    print(f"{'total':40s} {total:9.1f}")


if __name__ == "__main__":
    main()
