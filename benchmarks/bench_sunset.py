"""Sunset linewidth cost: this checkout against an older one, and against phono3py's bubble.

For each mesh of ``--meshes`` the script computes the sunset gamma (all branches, 7
temperatures) at every irreducible q-point of the mesh, which is what the sunset-lifetime
conductivity needs, and prints

1. its wall time, the number of ``(q1, q2)`` pairs summed, the time per pair and where
   the time goes;
2. with ``--before DIR`` (the source tree of an older commit, e.g. a ``git worktree``):
   the same computation by that code, in a subprocess on the same derivatives, then the
   time ratio and the largest difference of the gammas relative to their largest value
   (the kernel must not change the result);
3. phono3py's bubble conductivity on the same mesh (``init_phph_interaction`` +
   ``run_thermal_conductivity``, tetrahedron method) and the ratio sunset / bubble;
4. for each mesh in ``--project`` (default 16): the pairs its irreducible set needs (a
   lower bound, ``N^2 / (6 |G_q|)`` per q-point, 6 the permutations of the three internal
   phonons) and the time they would take at the cost per pair measured on the largest mesh.

Derivatives: ``--derivatives FILE ...`` (e.g. a study's reference ``2I`` and ``SC``
``derivatives.h5``); without them, CRG orders 2-3 measured in S_C (~15 s) and a seeded
random order 4, as in ``bench_observables.py`` (the cost hardly depends on the values).

Usage: python benchmarks/bench_sunset.py [--derivatives F ...] [--meshes 6 8]
       [--before /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TEMPS = np.arange(300.0, 1501.0, 200.0)
SIGMA = 0.1


def _derivatives(files: list[str] | None):  # type: ignore[no-untyped-def]
    from anharmbench.observables import load_derivative_set

    if files:
        return load_derivative_set(files, name="reference", orders=[2, 3, 4])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_observables import default_derivatives

    return default_derivatives()


def _irreducible(dset, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    from phono3py.conductivity.factory import conductivity_calculator

    from anharmbench.observables.bubble import prepared_phono3py
    from anharmbench.observables.harmonic import Mesh

    ph3 = prepared_phono3py(dset, Mesh(n), None, what="benchmark")
    return np.asarray(conductivity_calculator(ph3.phph_interaction, TEMPS, [None]).qpoints)


def _sunset(dset, n: int, out: Path) -> dict:  # type: ignore[no-untyped-def]
    """Sunset gammas at the irreducible q-points of ``n^3``, saved to ``out``; timing."""
    from anharmbench.observables import SunsetTiming, sunset_gamma

    q = _irreducible(dset, n)
    sunset_gamma(dset, q[:1], 2, TEMPS[:1], sigma=SIGMA)  # numba's compile or cache load
    tm = SunsetTiming()
    res = sunset_gamma(dset, q, n, TEMPS, sigma=SIGMA, timing=tm)
    np.save(out, res.values)
    return {"seconds": tm.seconds, "pairs": tm.n_pairs, "n_ir": len(q),
            "sections": tm.sections}


def _worker(args: argparse.Namespace) -> None:
    """Run in another source tree (``--src``): print one JSON line of timings."""
    sys.path.insert(0, args.src)
    import anharmbench

    if not Path(anharmbench.__file__).resolve().is_relative_to(Path(args.src).resolve()):
        raise SystemExit(f"imported {anharmbench.__file__}, not the tree {args.src}")
    dset = _derivatives(args.derivatives)
    print(json.dumps(_sunset(dset, args.mesh, Path(args.save))))


def _bubble_kappa_seconds(dset, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    ph3 = dset.phono3py(n, sigmas=[None])
    t0 = time.perf_counter()
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=TEMPS)
    kappa = float(ph3.thermal_conductivity.kappa[0][0, :3].mean())
    return time.perf_counter() - t0, kappa


def _pairs_lower_bound(dset, n: int) -> int:  # type: ignore[no-untyped-def]
    """``sum_q N^2 / (6 |G_q|)`` over the irreducible q-points of ``n^3``."""
    rot = np.asarray(dset.phonopy().primitive_symmetry.pointgroup_operations, dtype=float)
    rec = np.rint(np.linalg.inv(rot).transpose(0, 2, 1))
    total = 0.0
    for q in _irreducible(dset, n):
        dq = np.einsum("rij,j->ri", rec, q) - q
        little = int(np.sum(np.all(np.abs(dq - np.rint(dq)) < 1e-8, axis=1)))
        total += (n**3) ** 2 / (6 * little)
    return int(total)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--derivatives", nargs="*", default=None)
    ap.add_argument("--meshes", type=int, nargs="*", default=[6])
    ap.add_argument("--before", default=None, help="source tree of the code to compare with")
    ap.add_argument("--project", type=int, nargs="*", default=[16])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--mesh", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return
    import anharmbench

    print(f"this checkout: {Path(anharmbench.__file__).parent.parent}")
    dset = _derivatives(args.derivatives)
    print(f"derivatives: {dset}; sigma {SIGMA} THz, T = 300..1500 K (7), all branches")
    per_pair = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.meshes:
            now = _sunset(dset, n, Path(tmp) / f"now{n}.npy")
            per_pair = now["seconds"] / now["pairs"]
            print(f"\n{n}^3: {now['n_ir']} irreducible q-points, {now['pairs']} pairs, "
                  f"{now['seconds']:.1f} s ({1e6 * per_pair:.0f} us/pair): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in now["sections"].items()))
            if args.before:
                cmd = [sys.executable, __file__, "--worker", "--src", args.before, "--mesh",
                       str(n), "--save", str(Path(tmp) / f"before{n}.npy")]
                if args.derivatives:
                    cmd += ["--derivatives", *args.derivatives]
                env = dict(os.environ, PYTHONPATH=args.before)
                line = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                      env=env).stdout.strip().splitlines()[-1]
                old = json.loads(line)
                a = np.load(Path(tmp) / f"before{n}.npy")
                b = np.load(Path(tmp) / f"now{n}.npy")
                diff = float(np.nanmax(np.abs(a - b)) / np.nanmax(np.abs(a)))
                print(f"   before ({args.before}): {old['pairs']} pairs, {old['seconds']:.1f} s; "
                      f"now/before {now['seconds'] / old['seconds']:.3f}; "
                      f"max |now - before| / max |before| = {diff:.2e}")
            t_b, k300 = _bubble_kappa_seconds(dset, n)
            print(f"   phono3py bubble kappa on {n}^3: {t_b:.1f} s (kappa_xx 300 K "
                  f"{k300:.2f} W/mK); sunset / bubble {now['seconds'] / t_b:.1f}")
    for n in args.project:
        pairs = _pairs_lower_bound(dset, n)
        t = pairs * per_pair
        msg = (f"\nprojection {n}^3: >= {pairs:.3g} pairs, ~{t:.3g} s at "
               f"{1e6 * per_pair:.0f} us/pair")
        try:
            t_b, _ = _bubble_kappa_seconds(dset, n)
            msg += f"; phono3py bubble kappa {t_b:.1f} s; sunset / bubble ~{t / t_b:.0f}"
        except MemoryError:
            pass
        print(msg, flush=True)


if __name__ == "__main__":
    main()
