"""``anharmbench plan | collect | derivatives | import``: irreducible derivatives.

``plan`` writes a plan directory (LAMMPS decks, optionally DFT inputs), ``collect`` reads
finished decks or DFT outputs into it, ``derivatives`` fits them (evaluating what is
missing on request), and ``import`` turns a phonopy/phono3py dataset into reference
derivatives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anharmbench.cli.arguments import float_in, int_at_least

__all__ = ["add_derivative_commands", "add_import_command"]


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
    # counting needs no potential, nor does a DFT plan (--format) unless one is named:
    # its configurations are the DFT code's to evaluate, and no LAMMPS deck is written
    dft_only = args.format is not None and args.potential is None and not args.auto_steps
    potential = None if args.count_only or dft_only else _potential_from_args(args)
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
        from anharmbench.dft.inputs import SETTINGS_REQUIRED, check_format, default_write_kwargs
        from anharmbench.validation import check_periodic_format

        try:
            if args.jobs_per_task < 1:
                raise ValueError(f"--jobs-per-task must be >= 1, got {args.jobs_per_task}")
            check_format(args.format, prepared.supercell)
            # a file without the lattice (plain xyz) would be run as a molecule
            check_periodic_format(args.format, prepared.supercell,
                                  default_write_kwargs(args.format, prepared.supercell))
            settings = None
            if args.dft_settings is not None:
                from anharmbench.dft.settings import load_dft_settings

                settings = load_dft_settings(args.dft_settings)
                # every setting checked against the supercell before anything is written
                check_format(args.format, prepared.supercell,
                             settings.write_kwargs(args.format, prepared.supercell))
                settings.common_files()
            elif args.format in SETTINGS_REQUIRED:
                raise ValueError(f"--format {args.format} needs --dft-settings FILE "
                                 f"({SETTINGS_REQUIRED[args.format]}); without them the code "
                                 "refuses the inputs")
        except ValueError as exc:
            print(f"anharmbench plan: error: {exc}", file=sys.stderr)
            return 2
    elif args.dft_settings is not None:
        print("anharmbench plan: error: --dft-settings is for the DFT inputs of --format FMT; "
              "give --format (e.g. espresso-in) or drop --dft-settings", file=sys.stderr)
        return 2
    if dft_only:
        from anharmbench.derivatives.directory import write_plan_directory

        out = write_plan_directory(args.out, prepared, None, force=args.force)
    else:
        out = bench.write_plan("plan", args.out, chunk_size=args.chunk_size, force=args.force)
    print(prepared.plan.summary())
    if args.format is not None:
        from anharmbench.dft.inputs import write_dft_inputs

        jobs = write_dft_inputs(out, prepared, args.format, jobs_per_task=args.jobs_per_task,
                                settings=settings)
        print(f"wrote {jobs.n_jobs} DFT job folders ({jobs.input_file}, {jobs.format}) in "
              f"{jobs.directory}: see {jobs.directory / 'README.txt'}")
    if choice is not None and choice.measurements is not None:
        from anharmbench.derivatives.workflow import store_measurements

        if choice.measurements.plan_hash == prepared.plan.hash:
            k = store_measurements(out, prepared, choice.measurements)
            print(f"stored the {k} configurations already evaluated while choosing steps")
    if dft_only:
        print(f"wrote {out} (a DFT plan: no potential, no LAMMPS decks): run its jobs "
              f"(anharmbench dft run {out}, or dft/jobarray.sh), then 'anharmbench collect "
              f"{out} --outputs GLOB'")
    else:
        print(f"wrote {out}: run each chunk_*/in.evaluate with lmp, then "
              f"'anharmbench collect {out}'")
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


def _cmd_derivatives(args: argparse.Namespace) -> int:
    from anharmbench.derivatives.workflow import DERIVATIVES_FILE, measure_directory
    from anharmbench.executors import make_executor

    # the route of the study's and Benchmark's measurements, on a given plan directory
    executor = make_executor(args.executor, workers=args.workers, address=args.address)
    result = measure_directory(args.directory, evaluate=args.evaluate, executor=executor,
                               allow_nonequilibrium=args.allow_nonequilibrium, progress=True,
                               estimator=args.estimator)
    _print_equilibrium(Path(args.directory) / DERIVATIVES_FILE)
    for n in result.orders:
        worst = float(result.relative_uncertainty[n].max())
        print(
            f"order {n}: {len(result.values[n])} derivatives, max relative uncertainty "
            f"{worst:.1e}, poor fits {int(result.poor_fit[n].sum())}"
            + (f", joint Taylor fit: window |t| <= {result.line_fit.t_max[n]:.3f} A, powers "
               f"up to t^{result.line_fit.power[n]}" if result.chosen.get(n) == "lines"
               and result.line_fit is not None else "")
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
        born=args.born, outputs=args.outputs, output_format=args.output_format,
        fc_calculator=args.fc_calculator, name=args.name, overwrite=args.force, progress=True)
    for n, rec in sorted(res.orders.items()):
        rel = rec.uncertainties / np.maximum(np.abs(rec.values), 1e-12)
        print(f"order {n}: {len(rec.values)} irreducible derivatives in S = "
              f"{rec.supercell_matrix.tolist()}, median relative uncertainty "
              f"{float(np.median(rel)):.1e}")
    from anharmbench.phonopy_interface import missing_born_warning

    warning = missing_born_warning(res.primitive, res.derivatives.nac if res.derivatives
                                   is not None else None, str(args.dataset))
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    if res.provenance.get("functional") or res.provenance.get("code"):
        print(f"source: {res.provenance.get('code', '?')} {res.provenance.get('functional', '')}"
              .rstrip())
    print(f"wrote {res.path}")
    return 0


def _add_job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--structure", default=None, help="primitive cell file (default: ThO2)")
    p.add_argument("--a", type=float_in(1.0, 100.0), default=5.580101,
                   help="ThO2 lattice constant, A (default: the CRG equilibrium)")
    p.add_argument(
        "--supercell", default="2I", help="name (prim, 2I, SC, 4I, 3SC) or 9 integers, row by row"
    )
    p.add_argument("--order", type=int, choices=range(2, 7), action="append", required=True,
                   metavar="{2..6}", help="order 2..6 (repeatable)")
    p.add_argument("--method", choices=("forces", "energies"), default="forces")
    p.add_argument("--variant", choices=("lone", "bundled"), default="lone")
    p.add_argument("--qtuple", nargs="+", default=None, help="e.g. L L G G G")
    p.add_argument("--h-min", type=float_in(0.0, 1.0, open_low=True), default=0.01,
                   help="smallest step, A")
    p.add_argument("--h-max", type=float_in(0.0, 1.0, open_low=True), default=0.08,
                   help="largest step, A")
    p.add_argument("--steps", type=int_at_least(3), default=10,
                   help="number of step sizes (>= 3: the extrapolation needs one more than "
                   "its two unknowns to give an uncertainty)")
    p.add_argument("--overdetermination", type=float_in(1.0, 1e3), default=3.0,
                   help="bundled: equations per unknown (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-nonequilibrium", action="store_true",
                   help="measure even if the reference has residual forces or stress "
                   "(marked in the output)")


def add_derivative_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``plan``, ``collect`` and ``derivatives`` to the sub-parsers ``sub``."""
    p = sub.add_parser("plan", help="plan irreducible derivatives; write LAMMPS decks")
    _add_job_arguments(p)
    p.add_argument("--count-only", action="store_true", help="print counts, write nothing")
    p.add_argument("--out", default=None, help="plan directory to write")
    p.add_argument("--potential", default=None,
                   help="'crg' (default) or a potential JSON file; with --format, none unless "
                   "given (a DFT plan writes no LAMMPS decks)")
    p.add_argument("--chunk-size", type=int_at_least(1), default=500,
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
    p.add_argument("--jobs-per-task", type=int_at_least(1), default=1,
                   help="DFT jobs run one after another per array task (--format)")
    p.add_argument("--dft-settings", default=None, metavar="FILE",
                   help="YAML settings of the DFT code written into every input (QE: "
                   "input_data, pseudopotentials, pseudo_dir, kpts or kspacing; any code: "
                   "files copied into dft/common/, write keywords); see "
                   "anharmbench/dft/settings.py")
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
    p.add_argument("--workers", type=int_at_least(1), default=None,
                   help="local processes or Dask workers (default: one per core)")
    p.add_argument("--address", default=None, help="Dask scheduler address (default: a "
                   "LocalCluster of --workers)")
    p.add_argument("--show", type=int_at_least(0), default=10,
                   help="derivatives to print per order")
    p.add_argument("--allow-nonequilibrium", action="store_true",
                   help="fit even if the reference has residual forces or stress (marked "
                   "in derivatives.h5)")
    p.add_argument("--estimator", choices=("tail", "lines", "auto"), default="tail",
                   help="tail: each order's steps extrapolated to zero step (default); "
                   "lines: one joint Taylor fit of every order along all the plan's lines, "
                   "for high orders of noisy evaluators such as DFT; auto: per order the "
                   "one with the smaller uncertainties (refits, no new evaluation)")
    p.set_defaults(func=_cmd_derivatives)


def add_import_command(sub: argparse._SubParsersAction) -> None:
    """Add ``import`` (a phonopy/phono3py dataset as reference derivatives) to ``sub``."""
    p = sub.add_parser(
        "import", help="import a phonopy/phono3py dataset (e.g. DFT) as reference derivatives")
    p.add_argument("dataset", help="phono3py_disp.yaml, phono3py_params.yaml[.xz], "
                   "phonopy_disp.yaml or phonopy_params.yaml")
    p.add_argument("--out", required=True, help="output directory (gets derivatives.h5)")
    p.add_argument("--forces", default=None,
                   help="FORCES_FC3 (phono3py) or FORCE_SETS (phonopy); default: beside "
                   "DATASET, also .xz/.lzma/.gz/.bz2 (refused if DATASET holds forces)")
    p.add_argument("--forces-fc2", default=None,
                   help="FORCES_FC2 (phono3py, fc2 supercell); default: beside DATASET")
    p.add_argument("--born", default=None, metavar="FILE",
                   help="phonopy BORN file (Born charges, dielectric tensor); default: the "
                   "dataset's own NAC parameters, else BORN beside DATASET")
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
