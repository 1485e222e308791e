"""Cost of the phonon observables: the sunset's scaling with the mesh, bubble and kappa
against phono3py's own timing for the same mesh.

Prints

1. sunset linewidths (all 9 branches, our vectorized two-loop diagram) on meshes 4^3, 6^3
   and 8^3: wall time for one generic external q-point (no symmetry: N(N+1)/2 pairs) and,
   for 4^3 and 6^3 (8^3 with ``--full``), for all irreducible q-points of the mesh (what
   the sunset-lifetime conductivity needs, little group x swap symmetry); the fitted
   exponents ``t ~ N^p`` (expected: 2 per q-point, 3 per mesh);
2. bubble linewidths at the mesh q-points of the Gamma-X-K-Gamma-L path and the bubble
   RTA conductivity (300-1500 K): through ``anharmbench.observables`` against calling
   phono3py directly with the same force constants (``init_phph_interaction`` +
   ``run_imag_self_energy`` / ``run_thermal_conductivity``), and the sunset-lifetime
   conductivity on the same mesh (its cost is that of the sunset gammas of section 1).

Derivatives: ``--derivatives FILE ...`` (e.g. the CRG 2I and S_C derivatives.h5 files);
without them, CRG orders 2-3 are measured in S_C (~15 s) and order 4 is seeded random
(the cost does not depend on the values). BLAS runs single-threaded, as in the code.

Usage: python benchmarks/bench_observables.py [--derivatives F ...] [--full] [--sigma 0.1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from anharmbench.observables import (
    DerivativeSet,
    SunsetTiming,
    bubble_gamma,
    lattice_tensor,
    load_derivative_set,
    mesh_path,
    sunset_gamma,
    thermal_conductivity,
)

A0 = 5.580101
TEMPS = np.arange(300.0, 1501.0, 200.0)


def default_derivatives() -> DerivativeSet:
    from anharmbench.derivatives.plan import build_plan
    from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import build_supercell, tho2_primitive
    from anharmbench.symmetry import S_C, irreducible_basis

    prim = tho2_primitive(A0)
    atoms = build_supercell(prim, np.asarray(S_C))
    bases = {n: irreducible_basis(prim, S_C, order=n) for n in (2, 3, 4)}
    plan = build_plan({2: bases[2], 3: bases[3]}, method="forces", variant="lone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LammpsCalculator(crg_potential(), atoms) as batch:
            res = measure_and_fit(plan, ase_evaluator(atoms, batch))
    rng = np.random.default_rng(0)
    return DerivativeSet.from_bases("CRG (random 4th)", prim, {
        2: (bases[2], res.values[2]), 3: (bases[3], res.values[3]),
        4: (bases[4], 50.0 * rng.normal(size=len(bases[4])))})


def exponent(n: list[int], t: list[float]) -> float:
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--derivatives", nargs="*", default=None)
    ap.add_argument("--full", action="store_true", help="also the whole 8^3 irreducible set")
    ap.add_argument("--sigma", type=float, default=0.1, help="sunset smearing, THz")
    ap.add_argument("--meshes", type=int, nargs="*", default=[4, 6, 8])
    args = ap.parse_args()
    dset = (load_derivative_set(args.derivatives) if args.derivatives
            else default_derivatives())
    print(f"derivatives: {dset}")
    lattice_tensor(dset, 4)
    dset.phonopy()

    print("\n1. sunset linewidth, all 9 branches, T = 300..1500 K (7 temperatures), "
          f"sigma {args.sigma} THz")
    print(f"{'mesh':>6} {'N':>5} {'pairs/q':>9} {'s/q on':>8} {'s/q off':>8} {'us/pair':>8} | "
          f"{'ir q':>5} {'pairs':>9} {'s/mesh':>8}")
    rows = []
    for n in args.meshes:
        tm_on, tm_off = SunsetTiming(), SunsetTiming()
        # a low-symmetry q-point on the mesh (as most irreducible points of a kappa mesh)
        # and one off it (a path point): N(N+1)/2 pairs each, no little-group reduction
        sunset_gamma(dset, [[1 / n, 2 / n, 3 / n]], n, TEMPS, sigma=args.sigma,
                     symmetry=False, timing=tm_on)
        sunset_gamma(dset, [[0.1, 0.2, 0.3]], n, TEMPS, sigma=args.sigma, symmetry=False,
                     timing=tm_off)
        row = {"n": n, "N": n**3, "t_q": tm_on.seconds, "t_off": tm_off.seconds,
               "pairs_q": tm_on.n_pairs}
        if n < 8 or args.full:
            from phono3py.conductivity.factory import conductivity_calculator

            from anharmbench.observables.bubble import prepared_phono3py
            from anharmbench.observables.harmonic import Mesh

            ph3 = prepared_phono3py(dset, Mesh(n), None, what="benchmark")
            qir = conductivity_calculator(ph3.phph_interaction, TEMPS, [None]).qpoints
            tm2 = SunsetTiming()
            sunset_gamma(dset, qir, n, TEMPS, sigma=args.sigma, timing=tm2)
            row.update({"n_ir": len(qir), "t_mesh": tm2.seconds, "pairs_mesh": tm2.n_pairs})
        rows.append(row)
        mesh_part = (f"{row['n_ir']:>5} {row['pairs_mesh']:>9} {row['t_mesh']:>8.1f}"
                     if "t_mesh" in row else f"{'-':>5} {'-':>9} {'-':>8}")
        print(f"{n:>4}^3 {n**3:>5} {tm_on.n_pairs:>9} {tm_on.seconds:>8.2f} "
              f"{tm_off.seconds:>8.2f} {1e6 * tm_on.seconds / tm_on.n_pairs:>8.0f} | "
              f"{mesh_part}", flush=True)
        print("       on the mesh, where the time goes: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in tm_on.sections.items()), flush=True)
    ns = [r["N"] for r in rows]
    print(f"exponent per q-point: t ~ N^{exponent(ns, [r['t_q'] for r in rows]):.2f} on the "
          f"mesh, N^{exponent(ns, [r['t_off'] for r in rows]):.2f} off it "
          f"(pairs ~ N^{exponent(ns, [r['pairs_q'] for r in rows]):.2f})")
    full = [r for r in rows if "t_mesh" in r]
    if len(full) >= 2:
        nf = [r["N"] for r in full]
        print(f"exponent per mesh:    t ~ N^{exponent(nf, [r['t_mesh'] for r in full]):.2f} "
              f"(pairs ~ N^{exponent(nf, [r['pairs_mesh'] for r in full]):.2f})")

    print("\n2. bubble (phono3py) through anharmbench.observables vs phono3py directly")
    print(f"{'mesh':>6} {'path q':>7} {'ours s':>8} {'phono3py s':>11} | {'kappa ours':>10} "
          f"{'kappa p3 s':>10} {'k300 W/mK':>10} | {'sunset-kappa s':>14}")
    sunset_mesh_time = {r["n"]: r["t_mesh"] for r in rows if "t_mesh" in r}
    for n in (4, 8, 12, 16):
        path = mesh_path(dset, n)
        t0 = time.perf_counter()
        bubble_gamma(dset, path, mesh=n, temperatures=[300.0])
        t_ours = time.perf_counter() - t0
        ph3 = dset.phono3py(n, sigmas=[None])
        from anharmbench.observables.bubble import grid_points
        from anharmbench.observables.harmonic import Mesh

        t0 = time.perf_counter()
        ph3.init_phph_interaction()
        gps = grid_points(ph3, Mesh(n), path.qpoints, "benchmark")
        ph3.run_imag_self_energy(gps, [300.0], frequency_points_at_bands=True)
        t_p3 = time.perf_counter() - t0
        t0 = time.perf_counter()
        k = thermal_conductivity(dset, mesh=n, temperatures=TEMPS, lifetimes=["bubble"])
        tk_ours = time.perf_counter() - t0
        ph3 = dset.phono3py(n, sigmas=[None])
        t0 = time.perf_counter()
        ph3.init_phph_interaction()
        ph3.run_thermal_conductivity(temperatures=TEMPS)
        tk_p3 = time.perf_counter() - t0
        sun = "-"
        if n in sunset_mesh_time:  # the sunset gammas dominate; phono3py's RTA adds ~tk_p3
            sun = f"{sunset_mesh_time[n]:.1f}"
        print(f"{n:>4}^3 {len(path):>7} {t_ours:>8.2f} {t_p3:>11.2f} | {tk_ours:>10.2f} "
              f"{tk_p3:>10.2f} {k.kappa['bubble'][0]:>10.2f} | {sun:>14}", flush=True)


if __name__ == "__main__":
    main()
