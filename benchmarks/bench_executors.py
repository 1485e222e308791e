"""Evaluations per second through each executor (CRG ThO2, 2I cell, 24 atoms).

The same batch of seeded random displacements goes through the in-process evaluator, two
local worker processes and a two-worker Dask LocalCluster; the results must agree to
round-off (printed), and the speeds are printed with their ratio to in-process. Start-up
(spawning workers, starting LAMMPS in each) is timed separately from the evaluation.

Usage: python benchmarks/bench_executors.py [--configurations 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import anharmbench  # noqa: F401
from anharmbench.executors import DaskExecutor, InProcessExecutor, LocalProcessExecutor
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configurations", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--supercell", default="2I")
    args = parser.parse_args()
    atoms = build_supercell(tho2_primitive(5.580101), supercell_matrix(args.supercell))
    disp = np.random.default_rng(0).normal(scale=0.02, size=(args.configurations, len(atoms), 3))
    executors = [InProcessExecutor(), LocalProcessExecutor(workers=args.workers),
                 DaskExecutor(workers=args.workers)]
    rows, ref = [], None
    for ex in executors:
        t0 = time.perf_counter()
        with ex.evaluator(crg_potential(), atoms) as evaluate:
            evaluate(disp[:args.workers])  # workers start LAMMPS on their first task
            t1 = time.perf_counter()
            e, f = evaluate(disp)
            t2 = time.perf_counter()
        if ref is None:
            ref = (e, f)
        dev = max(float(np.abs(e - ref[0]).max()), float(np.abs(f - ref[1]).max()))
        rows.append((ex.name, t1 - t0, args.configurations / (t2 - t1), dev))
    base = rows[0][2]
    print(f"{len(atoms)}-atom cell, {args.configurations} configurations, "
          f"{args.workers} workers")
    print(f"{'executor':18s} {'start-up/s':>10s} {'evals/s':>9s} {'ratio':>6s} {'max dev':>9s}")
    for name, start, speed, dev in rows:
        print(f"{name:18s} {start:10.2f} {speed:9.1f} {speed / base:6.2f} {dev:9.1e}")


if __name__ == "__main__":
    main()
