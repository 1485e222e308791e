"""``anharmbench doctor | plugins | run | deck``: the installation, the study, a plain deck."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anharmbench import plugins
from anharmbench.cli.arguments import float_in, int_at_least

__all__ = ["add_study_commands"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from anharmbench.doctor import run_doctor

    checks, ok = run_doctor()
    for c in checks:
        print(c.line())
    verdict = "all required checks passed" if ok else "some checks FAILED (see fix lines)"
    print(f"doctor: {verdict}")
    return 0 if ok else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from anharmbench.reference_check import run_reference_check
    from anharmbench.study import load_config, run_study

    config = load_config(args.config, profile=args.profile)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.reference.kind == "crg":  # seconds: refuse early if the reference is broken
        report = run_reference_check(relax=True, progress=False)
        (out / "reference_check.json").write_text(json.dumps(report.to_dict(), indent=1))
        print(report.text())
        if not report.passed:
            print("anharmbench run: the CRG reference check failed; see "
                  f"{out / 'reference_check.json'}", file=sys.stderr)
            return 1
    result = run_study(config, out)
    print(f"Table I: {result.report['table_md']}")
    print(f"report: {result.report['html']}")
    return 0


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


def add_study_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``doctor``, ``plugins``, ``run`` and ``deck`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "doctor", help="check the installation (LAMMPS, plugins, back ends, reference)"
    )
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser(
        "plugins", help="build or locate the LAMMPS plugins (built on first use otherwise)"
    )
    plugins.add_arguments(p)
    p.set_defaults(func=plugins.run_command)

    p = sub.add_parser("run", help="run the study (default: embedded ThO2 + CRG)")
    p.add_argument("config", nargs="?", default=None,
                   help="study config (YAML); default: the embedded ThO2 + CRG study")
    p.add_argument("--out", default="runs/default", help="output directory (default: %(default)s)")
    p.add_argument("--profile", choices=("quick", "paper"), default=None,
                   help="override the config's profile (default config: quick)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "deck", help="write a plain LAMMPS deck evaluating ThO2 (CRG) configurations"
    )
    p.add_argument("out", help="deck directory")
    p.add_argument("--supercell", default="2I", help="name (prim, 2I, SC, 4I, 3SC) or 9 integers")
    p.add_argument("--a", type=float_in(1.0, 100.0), default=5.580101,
                   help="lattice constant, Angstrom (default: the CRG equilibrium)")
    p.add_argument("--configurations", type=int_at_least(1), default=1,
                   help="number of configurations")
    p.add_argument("--rattle", type=float_in(0.0, 0.5), default=0.0,
                   help="random displacement sigma, Angstrom")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run", action="store_true", help="also run it with the wheel's lmp")
    p.set_defaults(func=_cmd_deck)
