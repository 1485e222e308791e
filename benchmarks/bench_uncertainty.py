"""Are the derivatives' uncertainties honest? Plans of few steps against a 10-step reference.

CRG ThO2, one order in one FTG (default the fourth order in S_C, the quick profile's
costliest set). A lone plan with ten steps (0.01..0.08 A) is the reference; lone and
bundled plans with three or four steps are compared with it, derivative by derivative, in
units of the combined one-sigma uncertainty ``z = |d - d_ref| / hypot(s, s_ref)``:

* ``regression``: the tail regression's sigma alone (what the fit quoted before);
* ``+ truncation``: the fit's uncertainty now, which adds ``|d(0) - d'(0)|``, ``d'`` the
  extrapolation without the largest step (``anharmbench.derivatives.fit``);
* ``lines``: the joint Taylor fit of the same evaluations (``estimator="lines"``,
  :mod:`anharmbench.derivatives.taylor_lines`), values and uncertainties its own, against
  the same tail-fitted reference.

For honest one-sigma errors the median ``z`` is ~0.67 and 5 % (0.3 %) exceed 2 (3).

Usage: python benchmarks/bench_uncertainty.py [--supercell SC] [--order 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anharmbench.derivatives.fit import fit, fit_tail
from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import ase_evaluator, measure
from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive
from anharmbench.symmetry import irreducible_basis

A0 = 5.580101
ROUTES = {
    "lone, 10 steps (reference)": {"variant": "lone", "n_steps": 10},
    "lone, 4 steps": {"variant": "lone", "n_steps": 4},
    "bundled x3, 4 steps": {"variant": "bundled", "overdetermination": 3, "n_steps": 4},
    "bundled x3, 3 steps": {"variant": "bundled", "overdetermination": 3, "n_steps": 3},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supercell", default="SC")
    parser.add_argument("--order", type=int, default=4)
    args = parser.parse_args()
    n = args.order
    prim = tho2_primitive(A0)
    smat = supercell_matrix(args.supercell)
    basis = irreducible_basis(prim, smat, n)
    atoms = build_supercell(prim, smat)
    sigmas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    values: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    line_fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with LammpsCalculator(crg_potential(), atoms) as batch:
        evaluate = ase_evaluator(atoms, batch)
        for name, kw in ROUTES.items():
            t0 = time.perf_counter()
            plan = build_plan({n: basis}, method="forces", **kw)  # type: ignore[arg-type]
            data = measure(plan, evaluate)
            res = fit(plan, data.energies, data.forces, warn=False)
            t1 = time.perf_counter()
            lines = fit(plan, data.energies, data.forces, warn=False, estimator="lines",
                        bases={n: basis})
            t_lines = time.perf_counter() - t1
            # the regression part, refitted as fit() does (roundoff weights)
            tf = fit_tail(res.steps[n], res.raw[n], weighting="roundoff",
                          noise_power=plan.measurements[n].stencil.derivative)
            assert np.allclose(tf.uncertainties, res.uncertainties[n], equal_nan=True)
            values[name] = res.values[n]
            sigmas[name] = (tf.statistical, res.uncertainties[n])
            line_fits[name] = (lines.values[n], lines.uncertainties[n])
            counts[name] = plan.n_evaluations
            print(f"  {name}: {plan.n_evaluations} evaluations, "
                  f"{time.perf_counter() - t0:.1f} s (joint Taylor fit {t_lines:.2f} s, "
                  f"window {lines.line_fit.t_max[n]:.3f} A, powers to "
                  f"t^{lines.line_fit.power[n]})", flush=True)

    ref_name = next(iter(ROUTES))
    ref = values[ref_name]
    scale = np.abs(ref).mean()
    print(f"\nCRG ThO2, order {n} in {args.supercell} ({len(basis)} irreducible derivatives); "
          f"z = |d - d_ref| / hypot(sigma, sigma_ref)")
    print(f"{'route':28s}{'evals':>7s}{'rel. RMS dev.':>15s}   {'sigma':14s}"
          f"{'median rel. sigma':>19s}{'median z':>10s}{'z > 2':>8s}{'z > 3':>8s}")
    for name in ROUTES:
        rows = [("lines", *line_fits[name], sigmas[ref_name][1])]
        if name != ref_name:
            rows = [(part, values[name], sigmas[name][which], sigmas[ref_name][which])
                    for part, which in (("regression", 0), ("+ truncation", 1))] + rows
        for part, v, s, s_ref in rows:
            d = v - ref
            z = np.abs(d) / np.hypot(s, s_ref)
            print(f"{name:28s}{counts[name]:7d}{np.sqrt(np.mean(d**2)) / scale:15.1e}   "
                  f"{part:14s}{np.median(s) / scale:19.1e}{np.median(z):10.2f}"
                  f"{np.mean(z > 2):8.2f}{np.mean(z > 3):8.2f}")


if __name__ == "__main__":
    main()
