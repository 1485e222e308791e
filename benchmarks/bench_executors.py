"""Evaluations per second through each executor (CRG ThO2, 2I cell, 24 atoms).

The same batch of seeded random displacements goes through the in-process evaluator, two
local worker processes and a two-worker Dask LocalCluster; the results must agree to
round-off (printed), and the speeds (median of ``--repeat`` passes of the batch) are
printed with their ratio to in-process. Dask's speed relative to the local processes is
then measured pass by pass, the two alternating (the machine's speed drifts). Start-up
(spawning workers, starting LAMMPS in each) is timed separately from the evaluation.

Two reference rows tell the executors' overhead from the machine's limit:

* ``independent x2``: two separate processes, each evaluating half the batch in-process,
  started together after their warm-up (the most two workers can give on this machine);
* ``local (no limits)``: the local workers as they were before their thread limits
  (``executors.single_threaded_worker``), each BLAS/OpenMP runtime free to start a
  thread per core.

Usage: python benchmarks/bench_executors.py [--configurations 200] [--workers 2]
       [--supercell 2I] [--gap-model DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from anharmbench.executors import (
    DaskExecutor,
    InProcessExecutor,
    LocalProcessExecutor,
    _gather,
    _structure,
    evaluate_positions,
)
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive


class UnlimitedLocal:
    """Local workers without thread limits: the executor before this benchmark's fix."""

    name = "local (no limits)"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @contextmanager
    def evaluator(self, potential: LammpsPotential, atoms: Any) -> Iterator[Any]:
        pot, struct = potential.to_dict(), _structure(atoms)
        reference = np.asarray(atoms.positions, dtype=float)
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=ctx) as pool:
            yield lambda d: _gather(
                d, reference, lambda pos: pool.submit(evaluate_positions, pot, struct, pos),
                lambda fut: fut.result(), self.workers)


def _independent_child(pot: dict[str, Any], struct: dict[str, Any], positions: np.ndarray,
                       barrier: Any, out: Any) -> None:
    evaluate_positions(pot, struct, positions[:1])  # warm-up: LAMMPS set up
    barrier.wait()
    t0 = time.perf_counter()
    evaluate_positions(pot, struct, positions)
    out.put(time.perf_counter() - t0)


def independent(potential: LammpsPotential, atoms: Any, disp: np.ndarray, workers: int
                ) -> float:
    """Wall seconds of ``workers`` separate processes evaluating equal shares together."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    pot, struct = potential.to_dict(), _structure(atoms)
    positions = atoms.positions[None] + disp
    shares = np.array_split(positions, workers)
    procs = [ctx.Process(target=_independent_child, args=(pot, struct, s, barrier, out))
             for s in shares]
    for p in procs:
        p.start()
    seconds = max(out.get() for _ in procs)
    for p in procs:
        p.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configurations", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--supercell", default="2I")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed passes of the batch per executor; the median is printed")
    parser.add_argument("--gap-model", default=None,
                        help="a GAP model directory (gap_potential) instead of CRG")
    args = parser.parse_args()
    atoms = build_supercell(tho2_primitive(5.580101), supercell_matrix(args.supercell))
    if args.gap_model:
        from anharmbench.mlip.gap import gap_potential

        potential = gap_potential(args.gap_model, ("O", "Th"))
    else:
        potential = crg_potential()
    disp = np.random.default_rng(0).normal(scale=0.02, size=(args.configurations, len(atoms), 3))
    executors = [InProcessExecutor(), UnlimitedLocal(args.workers),
                 LocalProcessExecutor(workers=args.workers), DaskExecutor(workers=args.workers)]
    rows, ref = [], None
    for ex in executors:
        t0 = time.perf_counter()
        with ex.evaluator(potential, atoms) as evaluate:
            evaluate(disp[:args.workers])  # workers start LAMMPS on their first task
            t1 = time.perf_counter()
            passes = []
            for _ in range(args.repeat):
                t2 = time.perf_counter()
                e, f = evaluate(disp)
                passes.append(time.perf_counter() - t2)
        if ref is None:
            ref = (e, f)
        dev = max(float(np.abs(e - ref[0]).max()), float(np.abs(f - ref[1]).max()))
        rows.append((ex.name, t1 - t0, args.configurations / float(np.median(passes)), dev))
        if ex.name == "in-process":
            seconds = np.median([independent(potential, atoms, disp, args.workers)
                                 for _ in range(args.repeat)])
            rows.append((f"independent x{args.workers}", float("nan"),
                         args.configurations / float(seconds), float("nan")))
    base = rows[0][2]
    print(f"{len(atoms)}-atom cell, {args.configurations} configurations, "
          f"{args.workers} workers, {'GAP' if args.gap_model else 'CRG'}")
    print(f"{'executor':18s} {'start-up/s':>10s} {'evals/s':>9s} {'ratio':>6s} {'max dev':>9s}")
    for name, start, speed, dev in rows:
        print(f"{name:18s} {start:10.2f} {speed:9.1f} {speed / base:6.2f} {dev:9.1e}")
    # the machine's speed drifts between the rows above: compare Dask with the local
    # processes pass by pass, alternating, both executors started
    ratios, speeds = [], []
    with LocalProcessExecutor(workers=args.workers).evaluator(potential, atoms) as local, \
            DaskExecutor(workers=args.workers).evaluator(potential, atoms) as dask:
        local(disp[:args.workers])
        dask(disp[:args.workers])
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            local(disp)
            t1 = time.perf_counter()
            dask(disp)
            t2 = time.perf_counter()
            ratios.append((t1 - t0) / (t2 - t1))
            speeds.append((len(disp) / (t1 - t0), len(disp) / (t2 - t1)))
    print(f"dask / local-processes speed, alternating passes: median "
          f"{float(np.median(ratios)):.3f} (each: {', '.join(f'{r:.3f}' for r in ratios)}); "
          f"median evals/s local {np.median([a for a, _ in speeds]):.1f}, "
          f"dask {np.median([b for _, b in speeds]):.1f}")


if __name__ == "__main__":
    main()
