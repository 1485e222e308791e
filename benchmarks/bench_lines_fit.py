"""The joint Taylor fit's cost on a large plan: each line reduced to its span, against every
projected point kept as a row (the baseline), in one run.

CRG ThO2, one order in one FTG (default the fourth order in S_C), a lone plan of
``--steps`` steps (default 10: 8528 evaluations, the largest plan of
``benchmarks/bench_uncertainty.py``). The evaluations are made once; the fit then runs
with and without the reduction, and the script prints both wall times, their ratio and
the largest relative difference of the values and uncertainties (the reduction is exact:
only round-off may differ).

Usage: python benchmarks/bench_lines_fit.py [--supercell SC] [--order 4] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import ase_evaluator, measure
from anharmbench.derivatives.taylor_lines import fit_lines
from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive
from anharmbench.symmetry import irreducible_basis

A0 = 5.580101


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supercell", default="SC")
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    prim = tho2_primitive(A0)
    S = supercell_matrix(args.supercell)
    atoms = build_supercell(prim, S)
    bases = {args.order: irreducible_basis(prim, S, order=args.order)}
    plan = build_plan(bases, method="forces", variant="lone", n_steps=args.steps)
    t0 = time.perf_counter()
    with LammpsCalculator(crg_potential(), atoms) as batch:
        data = measure(plan, ase_evaluator(atoms, batch))
    print(f"{args.supercell} order {args.order}: {len(bases[args.order])} derivatives, "
          f"{len(plan.displacements)} evaluations ({time.perf_counter() - t0:.0f} s)")
    fits, seconds = {}, {}
    for compress in (False, True):
        t0 = time.perf_counter()
        fits[compress] = fit_lines(plan, bases, data.energies, data.forces,
                                   compress_lines=compress)
        seconds[compress] = time.perf_counter() - t0
    n = args.order
    base, fast = fits[False], fits[True]
    dv = np.abs(fast.values[n] - base.values[n]).max() / np.abs(base.values[n]).max()
    du = (np.abs(fast.uncertainties[n] - base.uncertainties[n]).max()
          / np.abs(base.uncertainties[n]).max())
    print(f"joint fit, every point a row (baseline): {seconds[False]:.1f} s")
    print(f"joint fit, lines reduced to their span:  {seconds[True]:.1f} s "
          f"(x{seconds[False] / seconds[True]:.1f})")
    print(f"largest relative difference: values {dv:.1e}, uncertainties {du:.1e}; "
          f"window {fast.t_max[n]:.4f} A, powers up to t^{fast.power[n]} (baseline "
          f"{base.t_max[n]:.4f} A, t^{base.power[n]})")


if __name__ == "__main__":
    main()
