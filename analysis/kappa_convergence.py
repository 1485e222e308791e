"""kappa against the mesh and the smearing, with the sampled sunset's intervals (issue 32).

Prints and writes (``--out``) ``kappa_convergence.csv`` and ``kappa_convergence.png``: kappa
at one temperature with bubble, sunset and combined lifetimes on ``n^3`` meshes for several
Gaussian smearings (the bubble with the same Gaussian), the sunset sampled with a fixed seed.

Usage: python analysis/kappa_convergence.py DERIVATIVES.h5 [...] --out DIR
       [--meshes 4 6 8 12 16] [--sigmas 0.05 0.1 0.2] [--temperature 300]
       [--samples 1024] [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("derivatives", nargs="+", help="derivatives.h5 file(s) with orders 2-4")
    ap.add_argument("--out", required=True)
    ap.add_argument("--meshes", type=int, nargs="+", default=[4, 6, 8, 12, 16])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--temperature", type=float, default=300.0)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    from anharmbench.errors import AnharmbenchError
    from anharmbench.observables import SunsetSampling, load_derivative_set
    from anharmbench.observables.convergence import kappa_convergence
    from anharmbench.observables.plots import plot_kappa_convergence

    try:
        dset = load_derivative_set(args.derivatives, name=args.name, orders=[2, 3, 4])
        sampling = SunsetSampling(samples=args.samples, seed=args.seed, workers=args.workers)
    except (AnharmbenchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = kappa_convergence(dset, args.meshes, args.sigmas, temperature=args.temperature,
                                 sampling=sampling)
    conv.write_csv(out / "kappa_convergence.csv")
    plot_kappa_convergence(conv, out / "kappa_convergence.png")
    print(f"{dset.name}: kappa({args.temperature:g} K), W/m-K, +- 95 % interval of the "
          f"sampled sunset ({args.samples} pairs per q-point, seed {args.seed})")
    print(f"{'sigma':>6s} {'mesh':>5s} {'s':>7s} {'bubble':>9s} {'sunset':>20s} {'combined':>18s}")
    for i, s in enumerate(conv.sigmas):
        for j, n in enumerate(conv.meshes):
            sun = f"{conv.kappa['sunset'][i, j]:.2f} +- {1.96 * conv.stderr['sunset'][i, j]:.2f}"
            com = (f"{conv.kappa['combined'][i, j]:.3f} +- "
                   f"{1.96 * conv.stderr['combined'][i, j]:.3f}")
            print(f"{s:6.2f} {n:4d}^3 {conv.seconds[i, j]:7.1f} "
                  f"{conv.kappa['bubble'][i, j]:9.3f} {sun:>20s} {com:>18s}", flush=True)
    print(f"written: {out / 'kappa_convergence.csv'}, {out / 'kappa_convergence.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
