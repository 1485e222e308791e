"""Wall time per stage of a study run (default: runs/default, the quick study of make run).

Reads ``<study>/report/timings.json`` (written by every ``anharmbench run``) and prints each
stage's seconds, its share of the total, and whether it ran or was found done. Given a
second study (``--before``), it prints both runs' seconds per stage and their ratio
(after/before), e.g. a fresh run of the last release against a fresh run of this one.

Usage: python benchmarks/bench_study.py [STUDY_DIR] [--before OTHER_STUDY_DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _timings(study: Path) -> list[dict]:
    path = study / "report" / "timings.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run 'anharmbench run --out {study}' first")
    return list(json.loads(path.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", type=Path, default=Path("runs/default"))
    parser.add_argument("--before", type=Path, default=None,
                        help="another study to compare with (stage by stage)")
    args = parser.parse_args()
    rows = _timings(args.study)
    total = sum(r["seconds"] for r in rows) or 1.0
    if args.before is None:
        print(f"{'stage':40s} {'seconds':>9s} {'share':>6s}  status")
        for r in rows:
            status = "done before" if r["skipped"] else "ran"
            print(f"{r['stage']:40s} {r['seconds']:9.1f} {r['seconds'] / total:6.1%}  {status}")
        print(f"{'total':40s} {total:9.1f}")
        return
    before = {r["stage"]: r["seconds"] for r in _timings(args.before)}
    print(f"{'stage':40s} {'before':>9s} {'after':>9s} {'after/before':>13s}")
    for r in rows:
        b = before.get(r["stage"])
        ratio = f"{r['seconds'] / b:13.2f}" if b else f"{'-':>13s}"
        shown = f"{b:9.1f}" if b is not None else f"{'-':>9s}"
        print(f"{r['stage']:40s} {shown} {r['seconds']:9.1f} {ratio}")
    old = sum(before.values()) or 1.0
    print(f"{'total':40s} {old:9.1f} {total:9.1f} {total / old:13.2f}")


if __name__ == "__main__":
    main()
