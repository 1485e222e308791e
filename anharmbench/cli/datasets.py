"""``anharmbench dataset idmd|refmd``: the training datasets from the command line.

:func:`add_dataset_commands` adds the ``dataset`` command to the project's parser::

    anharmbench dataset idmd --hamiltonian model.taylor --out runs/idmd [--profile quick]
    anharmbench dataset idmd --derivatives 2I/derivatives.h5 --derivatives SC/derivatives.h5 \\
        --supercell 4I --out runs/idmd
    anharmbench dataset refmd --out runs/refmd [--profile quick]

Both show a progress bar and continue an interrupted run from its last checkpoint when
called again with the same arguments (``--overwrite`` starts over).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_dataset_commands"]


def _summary(result: Any) -> None:
    m = result.manifest
    for name, tr in result.trajectories.items():
        t = tr.temperature
        line = (
            f"{name}: {tr.n_frames} frames, {tr.n_steps} steps (stride {tr.stride}), "
            f"T {t['min']:.0f}-{t['max']:.0f} K (mean {t['mean']:.0f}, target {t['target']:.0f})"
        )
        if tr.energy_drift:
            line += f", |dE| max {tr.energy_drift['max_abs_per_atom']:.2e} eV/atom"
        if np.isfinite(tr.max_displacement):
            line += f", max |u| {tr.max_displacement:.3f} A"
        if np.isfinite(tr.steps_per_second):
            line += f", {tr.steps_per_second:.1f} steps/s"
        print(line)
    splits = m.get("splits", {})
    print(
        "splits: "
        + ", ".join(f"{k} {v['frames']}" for k, v in splits.items() if isinstance(v, dict))
        + f"; wrote {result.directory}"
    )


def _cmd_idmd(args: argparse.Namespace) -> int:
    from anharmbench.datasets.md import IDMDSettings, run_idmd

    if (args.hamiltonian is None) == (not args.derivatives):
        raise ValueError("give either --hamiltonian FILE.taylor or --derivatives FILE.h5 ...")
    base = IDMDSettings.quick() if args.profile == "quick" else IDMDSettings.paper()
    overrides = {
        "temperature": args.temperature,
        "timestep": args.timestep,
        "n_steps": args.steps,
        "stride": args.stride,
        "test_steps": args.test_steps,
        "seed": args.seed,
        "init": args.init,
        "checkpoint_every": args.checkpoint_every,
        "max_displacement": args.max_displacement,
    }
    from dataclasses import replace

    settings = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out)
    if args.hamiltonian is not None:
        terms: Any = Path(args.hamiltonian)
    else:
        from anharmbench.derivatives import DerivativeSet
        from anharmbench.hamiltonian import taylor_expansion

        # one derivatives.h5 per FTG; basis() refuses a Q-tuple subset of an order, which
        # a Hamiltonian cannot use
        ref = DerivativeSet.from_files(args.derivatives)
        ders = {n: (ref.basis(n), np.array(ref.values[n])) for n in ref.orders}
        reports: list = []
        terms = taylor_expansion(
            ref.primitive, ders, args.supercell, require_orders=tuple(args.orders),
            reports=reports
        )
        for r in reports:
            print(f"order {r.order}: {r.n_terms} terms x {r.n_translations} translations "
                  f"({r.scheme}, {r.seconds:.1f} s)")
    result = run_idmd(terms, out, settings, progress=not args.no_progress, overwrite=args.overwrite)
    _summary(result)
    return 0


def _cmd_refmd(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from anharmbench.datasets.md import RefMDSettings, run_refmd

    base = RefMDSettings.quick() if args.profile == "quick" else RefMDSettings.paper()
    stride: Any = None
    if args.stride is not None:
        stride = None if args.stride == "auto" else int(args.stride)
    overrides: dict[str, Any] = {
        "temperatures": tuple(args.temperatures) if args.temperatures else None,
        "supercell": args.supercell,
        "lattice_constant": args.a,
        "timestep": args.timestep,
        "equilibration_steps": args.equilibration,
        "n_snapshots": args.snapshots,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
    }
    settings = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if args.stride is not None:
        settings = replace(settings, stride=stride)
    if args.md_kspace is not None:
        settings = replace(settings, md_kspace=None if args.md_kspace == "exact" else "pppm")
    result = run_refmd(args.out, settings, progress=not args.no_progress, overwrite=args.overwrite)
    _summary(result)
    return 0


def add_dataset_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``dataset idmd`` and ``dataset refmd`` to the project's sub-parsers.

    Parameters
    ----------
    subparsers
        The object returned by ``parser.add_subparsers(...)`` of ``anharmbench``.

    Returns
    -------
    argparse.ArgumentParser
        The ``dataset`` parser (its handlers are set with ``set_defaults(func=...)``).
    """
    p = subparsers.add_parser("dataset", help="generate MLIP training datasets (IDMD, refmd)")
    sub = p.add_subparsers(dest="dataset_command", required=True)

    q = sub.add_parser("idmd", help="NVE MD on the Taylor Hamiltonian (pair_style taylor)")
    q.add_argument("--hamiltonian", default=None, help="Taylor file (TaylorTerms.write)")
    q.add_argument(
        "--derivatives",
        action="append",
        default=[],
        help="derivatives.h5 of one FTG (repeat: e.g. 2I for orders 2-3, SC for order 4)",
    )
    q.add_argument("--supercell", default="4I", help="MD cell for --derivatives (default 4I)")
    q.add_argument(
        "--orders",
        type=int,
        nargs="+",
        default=[2, 3, 4],
        help="orders --derivatives must provide (default 2 3 4)",
    )
    q.add_argument("--out", required=True, help="dataset directory")
    q.add_argument("--profile", choices=("paper", "quick"), default="paper")
    q.add_argument("--temperature", type=float, default=None, help="K (paper: 2000)")
    q.add_argument("--timestep", type=float, default=None, help="ps (paper: 0.004)")
    q.add_argument("--steps", type=int, default=None, help="training steps (paper: 4000)")
    q.add_argument("--stride", type=int, default=None, help="steps between frames")
    q.add_argument("--test-steps", type=int, default=None, help="steps of the test run")
    q.add_argument("--seed", type=int, default=None)
    q.add_argument(
        "--init",
        choices=("lattice", "harmonic"),
        default=None,
        help="initial state: harmonic (default; positions and velocities drawn at T, which "
        "gives the paper's 1522-2238 K) or lattice (velocities only; settles near T/2)",
    )
    q.add_argument("--checkpoint-every", type=int, default=None, help="steps")
    q.add_argument(
        "--max-displacement",
        type=float,
        default=None,
        help="runaway guard, Angstrom from the reference",
    )
    q.add_argument("--overwrite", action="store_true", help="discard an existing dataset")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=_cmd_idmd)

    r = sub.add_parser("refmd", help="NVT MD on the reference surface (CRG)")
    r.add_argument("--out", required=True, help="dataset directory")
    r.add_argument("--profile", choices=("paper", "quick"), default="paper")
    r.add_argument(
        "--temperatures", type=float, nargs="+", default=None, help="K (paper: 2000 3000)"
    )
    r.add_argument("--supercell", default=None, help="MD cell (paper: 3SC)")
    r.add_argument("--a", type=float, default=None, help="lattice constant, A (CRG 5.580101)")
    r.add_argument("--timestep", type=float, default=None, help="ps (default 0.002)")
    r.add_argument("--equilibration", type=int, default=None, help="steps per temperature")
    r.add_argument("--snapshots", type=int, default=None, help="in all (paper: 1346)")
    r.add_argument("--stride", default=None, help="steps between snapshots, or 'auto'")
    r.add_argument(
        "--md-kspace",
        choices=("pppm", "exact"),
        default=None,
        help="dynamics with PPPM (labels stay exact) or with the exact Ewald sum",
    )
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--checkpoint-every", type=int, default=None, help="steps")
    r.add_argument("--overwrite", action="store_true", help="discard an existing dataset")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=_cmd_refmd)
    return p
