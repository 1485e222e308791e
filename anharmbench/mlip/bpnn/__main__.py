"""``python -m anharmbench.mlip.bpnn train|export|parity|to-n2p2|from-n2p2 ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anharmbench.mlip.bpnn.export import bpnn_parity, export_pt2
from anharmbench.mlip.bpnn.model import load_model, save_model
from anharmbench.mlip.bpnn.n2p2 import read_n2p2, write_n2p2
from anharmbench.mlip.bpnn.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m anharmbench.mlip.bpnn",
        description="train, deploy and exchange Behler-Parrinello network potentials",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a dataset directory (resumes when rerun)")
    t.add_argument("dataset", type=Path)
    t.add_argument("out", type=Path, help="model directory")
    t.add_argument("--profile", choices=("paper", "quick"), default="paper")
    t.add_argument("--max-epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--symmetry-functions", default=None, help="'tho2' or an n2p2 input.nn")
    t.add_argument("--no-resume", action="store_true", help="start afresh")
    t.add_argument("--export", action="store_true", help="compile for LAMMPS afterwards")
    e = sub.add_parser("export", help="compile a model directory for pair_style nequip")
    e.add_argument("model", type=Path)
    for q in (t, e):
        q.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="compiled templates: a model of an architecture compiled before "
                       "reuses that compilation (seconds instead of a minute)")
    p = sub.add_parser("parity", help="energy/force parity on a dataset split")
    p.add_argument("model", type=Path)
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--backend", default="lammps", choices=("lammps", "torch"))
    w = sub.add_parser("to-n2p2", help="write input.nn, scaling.data, weights.NNN.data")
    w.add_argument("model", type=Path)
    w.add_argument("out", type=Path)
    r = sub.add_parser("from-n2p2", help="read an n2p2 directory into a model directory")
    r.add_argument("n2p2", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--elements", nargs="+", default=None, help="type order (default by Z)")
    args = parser.parse_args(argv)

    try:
        if args.command == "train":
            overrides = {
                k: v
                for k, v in (
                    ("max_epochs", args.max_epochs),
                    ("seed", args.seed),
                    ("threads", args.threads),
                    ("symmetry_functions", args.symmetry_functions),
                )
                if v is not None
            }
            config = getattr(TrainConfig, args.profile)(**overrides)
            result = train(args.dataset, args.out, config, resume=not args.no_resume)
            print(f"model: {result.directory} (best epoch {result.best_epoch})")
            if args.export:
                print(f"package: {export_pt2(result.directory, cache=args.cache)}")
        elif args.command == "export":
            print(f"package: {export_pt2(args.model, cache=args.cache)}")
        elif args.command == "parity":
            out = bpnn_parity(
                args.model, args.dataset, args.out, split=args.split, backend=args.backend
            )
            print("\n".join(str(f) for f in out.values()))
        elif args.command == "to-n2p2":
            out = write_n2p2(load_model(args.model), args.out)
            print("\n".join(str(f) for f in out.values()))
        else:
            print(f"model: {save_model(read_n2p2(args.n2p2, args.elements), args.out)}")
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
