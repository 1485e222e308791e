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
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from anharmbench.observables import (
    ObservableSettings,
    compute_observables,
    load_derivative_set,
    load_observable_set,
    make_figures,
    summary,
)


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)

    data = args.out / "data"
    if args.replot:
        names = [p.split("=", 1)[0] for p in args.potential] or sorted(
            d.name for d in data.iterdir() if d.is_dir())
        sets = [load_observable_set(data / n) for n in names]
    else:
        if not args.potential:
            ap.error("give at least one --potential NAME=FILE[,FILE...]")
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
        sets = []
        for spec in args.potential:
            name, _, files = spec.partition("=")
            dset = load_derivative_set([f for f in files.split(",") if f], name=name)
            t0 = time.perf_counter()
            res = compute_observables(dset, data, st)
            print(f"{name}: {time.perf_counter() - t0:.1f} s "
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
