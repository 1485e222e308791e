"""Sampled sunset against the exact sum and phono3py's bubble, in one run (issue 32).

1. ``--check-meshes`` (default 6 8): the conductivity with the exact sunset and with the
   sampled one (``--samples`` pairs per irreducible q-point, ``--seeds`` seeds): wall time of
   each sunset, pairs evaluated, cost per pair and the ratio; the coverage (fraction of the
   distinct resonant modes whose exact linewidth lies within the sampled 95 % t-interval,
   pooled over the seeds); kappa(300 K) with sunset and with combined lifetimes, exact
   against sampled +- 1.96 standard errors.
2. ``--kappa-meshes`` (default 16): the sampled conductivity alone (``--workers`` threads):
   wall time of the sunset and of the whole conductivity, phono3py's Gaussian bubble
   conductivity on the same mesh, kappa(300 K) +- its 95 % half-width, and the samples per
   q-point a 2 % half-width needs (``samples * (half-width / 2 %)^2``, the error falling as
   one over the square root of the samples).

Derivatives: ``--derivatives FILE ...`` (e.g. the default study's reference ``2I`` and
``SC`` ``derivatives.h5``: CRG ThO2, orders 2-3 in 2I and 4 in S_C).

Usage: python benchmarks/bench_sunset_sampled.py --derivatives 2I.h5 SC.h5
       [--check-meshes 6 8] [--kappa-meshes 16] [--samples 1024] [--seeds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

SIGMA = 0.1
T = [300.0]


def _distinct(freqs: np.ndarray, values: np.ndarray) -> np.ndarray:
    from anharmbench.observables.harmonic import degenerate_sets

    keep = np.zeros(values.shape, dtype=bool)
    for iq, f in enumerate(freqs):
        for group in degenerate_sets(f):
            keep[iq, group[0]] = True
    return keep & (values > 0)


def _line(name: str, kap, key: str) -> str:  # type: ignore[no-untyped-def]
    k = kap.kappa[key][0]
    err = kap.kappa_stderr.get(key)
    return f"{name} {k:.3f}" + (f" +- {1.96 * err[0]:.3f}" if err is not None else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--derivatives", nargs="+", required=True)
    ap.add_argument("--check-meshes", type=int, nargs="*", default=[6, 8])
    ap.add_argument("--kappa-meshes", type=int, nargs="*", default=[16])
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from anharmbench.observables import SunsetSampling, load_derivative_set, thermal_conductivity

    dset = load_derivative_set(args.derivatives, name="reference", orders=[2, 3, 4])
    print(f"derivatives: {dset}; sigma {SIGMA} THz, T = 300 K, samples {args.samples} per "
          f"q-point")

    def sampled(n: int, seed: int, workers: int):  # type: ignore[no-untyped-def]
        return thermal_conductivity(
            dset, mesh=n, temperatures=T, sigma=SIGMA, four_phonon="sampled",
            sampling=SunsetSampling(samples=args.samples, seed=seed, workers=workers))

    sampled(4, 0, 1)  # numba's compile or cache load, outside the timings
    for n in args.check_meshes:
        exact = thermal_conductivity(dset, mesh=n, temperatures=T, sigma=SIGMA)
        te, pe = exact.meta["sunset_seconds"], exact.meta["sunset_pairs"]
        g_ex = exact.gamma["sunset"][0]
        keep = _distinct(exact.frequencies, g_ex)
        inside = low = total = 0
        ts, ps = [], []
        print(f"\n{n}^3 ({len(exact.qpoints)} irreducible q-points): exact sunset {te:.1f} s, "
              f"{pe} pairs ({1e6 * te / pe:.0f} us/pair); "
              + _line("kappa sunset", exact, "sunset") + ", "
              + _line("combined", exact, "combined"))
        for seed in range(args.seeds):
            s = sampled(n, seed, 1)
            ts.append(s.meta["sunset_seconds"])
            ps.append(s.meta["sunset_pairs"])
            t95 = np.array(s.meta["sunset_sampling"]["t95"])[:, None]
            z = (s.gamma["sunset"][0] - g_ex) / np.where(keep, s.gamma_stderr["sunset"][0], 1)
            inside += int(np.sum((np.abs(z) <= t95)[keep]))
            low += int(np.sum((z < -t95)[keep]))
            total += int(keep.sum())
            ok = {k: abs(s.kappa[k][0] - exact.kappa[k][0]) <= 1.96 * s.kappa_stderr[k][0]
                  for k in ("sunset", "combined")}
            print(f"   seed {seed}: sampled sunset {ts[-1]:.1f} s, {ps[-1]} pairs "
                  f"({1e6 * ts[-1] / ps[-1]:.0f} us/pair); " + _line("kappa sunset", s, "sunset")
                  + f" (exact inside: {ok['sunset']}), " + _line("combined", s, "combined")
                  + f" (exact inside: {ok['combined']})")
        per_s, per_e = np.sum(ts) / np.sum(ps), te / pe
        print(f"   coverage of the 95 % intervals: {inside / total:.3f} of {total} modes "
              f"({args.seeds} seeds; misses below {low / total:.3f}, above "
              f"{(total - inside - low) / total:.3f}); cost per pair sampled/exact "
              f"{per_s / per_e:.2f}; sampled/exact wall time {np.mean(ts) / te:.3f}")
    for n in args.kappa_meshes:
        t0 = time.perf_counter()
        s = sampled(n, 0, args.workers)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        bub = thermal_conductivity(dset, mesh=n, temperatures=T, bubble_sigma=SIGMA,
                                   lifetimes=["bubble"])
        tb = time.perf_counter() - t1
        print(f"\n{n}^3 ({len(s.qpoints)} irreducible q-points, {args.workers} workers): "
              f"conductivity {wall:.1f} s, of which sampled sunset {s.meta['sunset_seconds']:.1f}"
              f" s ({s.meta['sunset_pairs']} pairs); phono3py Gaussian bubble alone {tb:.1f} s "
              f"(kappa {bub.kappa['bubble'][0]:.3f}); sunset / bubble "
              f"{s.meta['sunset_seconds'] / tb:.1f}")
        for key in ("sunset", "combined"):
            h = 1.96 * s.kappa_stderr[key][0] / s.kappa[key][0]
            need = int(np.ceil(args.samples * (h / 0.02) ** 2))
            print(f"   kappa {key}: {s.kappa[key][0]:.3f} +- {1.96 * s.kappa_stderr[key][0]:.3f}"
                  f" W/m-K (relative 95 % half-width {100 * h:.2f} %); samples per q-point "
                  f"for 2 %: {need}")


if __name__ == "__main__":
    main()
