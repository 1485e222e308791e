"""The paper's observables (Figs. 2-5) for a set of potentials, from their derivative files.

Each ``--potential NAME=FILE[,FILE...]`` names a potential and its ``derivatives.h5`` files
(e.g. the 2I file with orders 2-3 and the S_C file with order 4, as the paper measures
them); the first one is the reference (drawn in black). For every potential the data go to
``OUT/data/NAME/`` (HDF5 + CSV, and the force constants in phonopy/phono3py/phono4py
formats), the figures to ``OUT/figures/``::

    .venv/bin/python analysis/observables_figures.py \\
        --potential reference=plan_2i/derivatives.h5,plan_sc/derivatives.h5 \\
        --potential GNN=gnn_2i/derivatives.h5,gnn_sc/derivatives.h5 --out runs/observables

``--replot`` redraws the figures from the data already in ``OUT/data`` without computing.
A mistake in the arguments or the files (a missing or unreadable derivatives file, nothing
to redraw) is said in one line, exit status 2, before anything is computed; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from anharmbench.errors import AnharmbenchError
from anharmbench.observables import (
    ObservableSettings,
    compute_observables,
    load_derivative_set,
    load_observable_set,
    make_figures,
    summary,
)


class UsageError(ValueError):
    """A mistake in the arguments: said in one line, exit status 2."""


def _parse_potential(spec: str, replot: bool) -> tuple[str, list[Path]]:
    """``(name, files)`` of one ``--potential NAME=FILE[,FILE...]`` (``NAME`` alone with
    ``--replot``); :class:`UsageError` for anything else."""
    name, eq, files = spec.partition("=")
    paths = [Path(f) for f in files.split(",") if f.strip()]
    if not name.strip() or (not replot and not paths) or (replot and eq and not paths):
        raise UsageError(f"--potential {spec!r}: expected NAME=FILE[,FILE...] (the "
                         "potential's name and its derivatives.h5 files, comma-separated)")
    return name.strip(), paths


def _check_files(name: str, paths: list[Path]) -> None:
    """Refuse a missing derivatives file before any potential is computed."""
    for path in paths:
        if path.is_dir():
            hint = (f"; give {path / 'derivatives.h5'}" if (path / "derivatives.h5").is_file()
                    else "; give its derivatives.h5 file")
            raise UsageError(f"--potential {name}: {path} is a folder, not a derivatives "
                             f"file{hint}")
        if not path.is_file():
            raise UsageError(f"--potential {name}: {path} does not exist; give the "
                             "derivatives.h5 of 'anharmbench derivatives' or 'anharmbench "
                             "import'")


def main(argv: list[str] | None = None) -> int:
    """Compute (or, with ``--replot``, reread) the observables and draw the figures.

    Returns the exit status: 0, or 2 after one line on stderr for a mistake in the
    arguments or the files (argparse exits with 2 itself).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--potential", action="append", default=[],
                    help="NAME=FILE[,FILE...] (derivatives.h5 files); first = reference")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--replot", action="store_true", help="only redraw from OUT/data")
    ap.add_argument("--path-mesh", type=int, default=16, help="bubble mesh (path points)")
    ap.add_argument("--loop-mesh", type=int, default=8)
    ap.add_argument("--kappa-mesh", type=int, default=8)
    ap.add_argument("--sunset-path-mesh", type=int, default=0, help="0: no sunset on the path")
    ap.add_argument("--sunset-sigma", type=float, default=0.1, help="THz")
    ap.add_argument("--bubble-sigma", type=float, default=None, help="THz (default tetrahedra)")
    ap.add_argument("--temperature", type=float, default=300.0, help="K, path figures")
    ap.add_argument("--tmin", type=float, default=300.0)
    ap.add_argument("--tmax", type=float, default=1500.0)
    ap.add_argument("--tstep", type=float, default=200.0)
    ap.add_argument("--branches", type=int, nargs="*", default=None,
                    help="branches of the path figures (default all)")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = ap.parse_args(argv)
    if not args.replot and not args.potential:
        ap.error("give at least one --potential NAME=FILE[,FILE...] (or --replot to redraw "
                 "the figures of OUT/data)")
    try:
        return _run(args)
    except (AnharmbenchError, ValueError, OSError) as exc:
        # the library's errors name the file and the fix; a traceback would hide them
        if args.debug:
            raise
        print(f"{ap.prog}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    """The work of :func:`main` once the arguments are parsed."""
    data = args.out / "data"
    specs = [_parse_potential(p, args.replot) for p in args.potential]
    names = [n for n, _ in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--potential: {', '.join(twice)} given twice; give each potential "
                         "once, with all its files")
    if args.replot:
        if not data.is_dir():
            raise UsageError(f"{data} does not exist: nothing to redraw; compute the "
                             "observables first (without --replot, with --potential "
                             "NAME=FILE[,FILE...])")
        names = names or sorted(d.name for d in data.iterdir() if d.is_dir())
        sets = [load_observable_set(data / n) for n in names]
        empty = [n for n, s in zip(names, sets, strict=True) if not s.files]
        if not sets or empty:
            have = sorted(d.name for d in data.iterdir() if d.is_dir() and any(d.glob("*.h5")))
            which = ", ".join(empty) or "any potential"
            raise UsageError(f"{data} holds no observables of {which} (potentials with "
                             f"data: {', '.join(have) or 'none'}); compute them first "
                             "(without --replot)")
    else:
        for name, paths in specs:
            _check_files(name, paths)
        temps = []
        t = args.tmin
        while t <= args.tmax + 1e-9:
            temps.append(t)
            t += args.tstep
        st = ObservableSettings(line_temperature=args.temperature, path_mesh=args.path_mesh,
                                bubble_sigma=args.bubble_sigma, loop_mesh=args.loop_mesh,
                                sunset_path_mesh=args.sunset_path_mesh,
                                sunset_sigma=args.sunset_sigma, kappa_mesh=args.kappa_mesh,
                                kappa_temperatures=tuple(temps))
        # every file read (and checked) before the first potential's minutes of work
        dsets = [load_derivative_set(paths, name=name) for name, paths in specs]
        sets = []
        for dset in dsets:
            t0 = time.perf_counter()
            res = compute_observables(dset, data, st)
            print(f"{dset.name}: {time.perf_counter() - t0:.1f} s "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items()), flush=True)
            for k, why in res.skipped.items():
                print(f"  skipped {k}: {why}")
            sets.append(res)
    figs = make_figures(sets, args.out / "figures", branches=args.branches)
    print(summary(sets))
    for name, path in figs.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
