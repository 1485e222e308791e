"""Command-line interface: ``anharmbench <command>``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_doctor(args: argparse.Namespace) -> int:
    from anharmbench.doctor import run_doctor

    checks, ok = run_doctor()
    for c in checks:
        print(c.line())
    verdict = "all required checks passed" if ok else "some checks FAILED (see fix lines)"
    print(f"doctor: {verdict}")
    return 0 if ok else 1


def _cmd_run(args: argparse.Namespace) -> int:
    if args.config is not None:
        print(
            "anharmbench run: study configs are not implemented yet; run without CONFIG for "
            "the embedded ThO2 + CRG default",
            file=sys.stderr,
        )
        return 2
    from anharmbench.reference_check import run_reference_check

    out = Path(args.out)
    report = run_reference_check(relax=True, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference_check.json").write_text(json.dumps(report.to_dict(), indent=1))
    print(report.text())
    print(f"report written to {out / 'reference_check.json'}")
    return 0 if report.passed else 1


def _cmd_deck(args: argparse.Namespace) -> int:
    import numpy as np

    from anharmbench.lammps.deck import run_deck, write_deck
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import build_supercell, tho2_primitive

    atoms = build_supercell(tho2_primitive(args.a), args.supercell)
    rng = np.random.default_rng(args.seed)
    positions = atoms.positions[None] + rng.normal(
        scale=args.rattle, size=(args.configurations, len(atoms), 3)
    )
    deck = write_deck(args.out, crg_potential(), atoms, positions)
    print(f"wrote {deck.input_file} ({deck.n_configurations} configurations, {deck.natoms} atoms)")
    if args.run:
        res = run_deck(deck.directory)
        print(f"energies (eV): {np.array2string(res.energies, precision=6)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anharmbench",
        description="Benchmark phonon anharmonicity of interatomic potentials.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "doctor", help="check the installation (LAMMPS, plugins, back ends, reference)"
    )
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("run", help="run the study (default: embedded ThO2 + CRG)")
    p.add_argument("config", nargs="?", default=None, help="study config (YAML)")
    p.add_argument("--out", default="runs/default", help="output directory (default: %(default)s)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "deck", help="write a plain LAMMPS deck evaluating ThO2 (CRG) configurations"
    )
    p.add_argument("out", help="deck directory")
    p.add_argument("--supercell", default="2I", help="name (prim, 2I, SC, 4I, 3SC) or 9 integers")
    p.add_argument("--a", type=float, default=5.597, help="lattice constant, Angstrom")
    p.add_argument("--configurations", type=int, default=1, help="number of configurations")
    p.add_argument("--rattle", type=float, default=0.0, help="random displacement sigma, Angstrom")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run", action="store_true", help="also run it with the wheel's lmp")
    p.set_defaults(func=_cmd_deck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"anharmbench {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
