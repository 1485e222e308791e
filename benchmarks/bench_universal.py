"""Speed of the universal MLIP presets (CHGNet, SevenNet-0) on Si, and their derivatives.

Prints, for each preset, the load time and the seconds per energy+forces call on an
8-atom (conventional cell) and a 64-atom (2x2x2 conventional) Si supercell at the DFT
lattice of /work/shared/dft/Si-PBE, and evaluations per second (each call on freshly
displaced positions, so no result is served from the calculator's cache).

With ``--derivatives``, also measures the second and third irreducible derivatives in
the 8-atom cell with each preset's step windows (:data:`anharmbench.mlip.universal.
STEP_WINDOWS`, or ``--h-min/--h-max`` for one window for every order) and prints the
values, relative uncertainties and poor tail fits.

Usage: python benchmarks/bench_universal.py [--models chgnet sevennet-0] [--calls 10]
       [--threads 1] [--derivatives [--steps 8] [--h-min 0.01 --h-max 0.08]]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from anharmbench.mlip.universal import STEP_WINDOWS, UNIVERSAL_MODELS, universal_calculator

SI = "/work/shared/dft/Si-PBE/phono3py_disp.yaml"
CONVENTIONAL = ((-1, 1, 1), (1, -1, 1), (1, 1, -1))  # rows in the primitive (fcc) basis


def si_primitive() -> Atoms:
    """Si diamond primitive cell at the PBE lattice of the phono3py dataset."""
    import phono3py

    p = phono3py.load(SI, produce_fc=False, log_level=0).primitive
    return Atoms(p.symbols, cell=p.cell, scaled_positions=p.scaled_positions, pbc=True)


def time_calls(calc: object, atoms: Atoms, calls: int, seed: int = 0) -> float:
    """Seconds per energy+forces call (median over ``calls`` displaced configurations)."""
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(calls + 1):  # the first call (graph/JIT warm-up) is not counted
        a = atoms.copy()
        a.positions += rng.normal(scale=0.02, size=a.positions.shape)
        a.calc = calc
        t0 = time.perf_counter()
        a.get_potential_energy()
        a.get_forces()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def derivatives(name: str, calc: object, prim: Atoms, steps: int,
                window: tuple[float, float] | None) -> None:
    from anharmbench.derivatives import DerivativeJob, fit, measure, prepare
    from anharmbench.derivatives.results import ase_evaluator

    windows = ({n: window for n in (2, 3)} if window
               else STEP_WINDOWS[UNIVERSAL_MODELS[name].family])
    job = DerivativeJob(supercell=CONVENTIONAL, orders=(2, 3), h_ranges=windows, n_steps=steps)
    prep = prepare(job, prim)
    t0 = time.perf_counter()
    data = measure(prep.plan, ase_evaluator(prep.supercell, calc))
    dt = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # poor fits are counted below
        res = fit(prep.plan, data.energies, data.forces)
    print(f"  derivatives: {prep.plan.n_evaluations} evaluations in {dt:.1f} s")
    for n in res.orders:
        rel = res.relative_uncertainty[n]
        print(f"  order {n} window {windows[n]} A x {steps}: values "
              f"{np.array2string(res.values[n], precision=3, max_line_width=200)} eV/A^{n}")
        print(f"    relative uncertainty max {rel.max():.1e} median {np.median(rel):.1e}; "
              f"poor tail fits {int(res.poor_fit[n].sum())}/{rel.size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["chgnet", "sevennet-0"],
                    choices=sorted(UNIVERSAL_MODELS))
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--derivatives", action="store_true")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--h-min", type=float)
    ap.add_argument("--h-max", type=float)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: on a shared 2-core machine two "
                         "threads beside another busy process were 4x slower)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    window = (args.h_min, args.h_max) if args.h_min and args.h_max else None

    prim = si_primitive()
    cells = {n: make_supercell(prim, np.array(CONVENTIONAL) * k) for n, k in ((8, 1), (64, 2))}
    for name in args.models:
        t0 = time.perf_counter()
        calc = universal_calculator(name)
        print(f"{name}: load {time.perf_counter() - t0:.1f} s")
        for natoms, atoms in cells.items():
            dt = time_calls(calc, atoms, args.calls)
            print(f"  {natoms:3d} atoms: {dt * 1e3:8.1f} ms per energy+forces call, "
                  f"{1 / dt:7.1f} evaluations/s")
        if args.derivatives:
            derivatives(name, calc, prim, args.steps, window)


if __name__ == "__main__":
    main()
