"""Memory and time of the paper's IDMD Hamiltonian: one term per translation orbit vs all.

The paper's Taylor Hamiltonian (CRG ThO2: orders 2 and 3 measured in 2I, order 4 in S_C,
expanded into the 4I MD cell, 192 atoms, 64 primitive translations) is built and run as
the paper profile's IDMD would, each route in its own process so that its peak resident
memory (``ru_maxrss``) is its own:

* ``orbits``: what the code does now, one monomial per translation orbit and the
  translation table (format 2), the images generated in the plugin;
* ``every translate``: the same polynomial with all translates stored (``expanded()``,
  what the file held before, format 2 with one identity translation);
* ``--before DIR``: optionally, the same steps with the package of another checkout
  (e.g. a worktree of an older commit) on ``PYTHONPATH``; its plugins are taken from this
  checkout's build (they read both formats).

Each process expands, writes the file, then runs ``run_idmd`` with the paper's settings
but ``--steps`` steps (the file read, the LAMMPS set-up and the harmonic initial state
are those of the full 4000-step run; the MD loop itself allocates nothing per step). The
parent then evaluates the files of the routes through ``pair_style taylor`` on the same
random displacements and prints the largest differences of energies and forces.

Derivatives come from ``bench_idmd.measure_derivatives`` (cached in
``~/.cache/anharmbench/benchmarks``; a few minutes the first time).

Usage: python benchmarks/bench_taylor_memory.py [--steps 40] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
A0 = 5.580101
FTG = {2: "2I", 3: "2I", 4: "SC"}


def worker(route: str, values_file: Path, out: Path, steps: int) -> None:
    """One route in this process; prints one JSON line."""
    from anharmbench.datasets import IDMDSettings, run_idmd
    from anharmbench.hamiltonian import taylor_expansion
    from anharmbench.structures import supercell_matrix, tho2_primitive
    from anharmbench.symmetry import irreducible_basis

    prim = tho2_primitive(A0)
    data = np.load(values_file)
    derivs = {n: (irreducible_basis(prim, supercell_matrix(s), order=n), data[f"values_{n}"])
              for n, s in FTG.items()}
    rec: dict[str, float] = {}
    t0 = time.perf_counter()
    terms = taylor_expansion(prim, derivs, "4I", require_orders=(2, 3, 4))
    if route == "every translate":
        terms = terms.expanded()
    rec["expansion_s"] = time.perf_counter() - t0
    rec["stored_terms"] = sum(len(o.coefficients) for o in terms.orders.values())
    t0 = time.perf_counter()
    path = terms.write(out / "hamiltonian.taylor")
    rec["write_s"] = time.perf_counter() - t0
    rec["file_MB"] = path.stat().st_size / 1e6
    rec["peak_before_md_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del terms
    settings = IDMDSettings.paper(n_steps=steps, test_steps=steps // 2, stride=10,
                                  checkpoint_every=steps)
    t0 = time.perf_counter()
    run_idmd(path, out / "idmd", settings)
    rec["idmd_s"] = time.perf_counter() - t0
    rec["peak_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(rec))


def run_route(route: str, values_file: Path, out: Path, steps: int,
              pythonpath: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", route, "--values", str(values_file),
         "--out", str(out), "--steps", str(steps)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"route {route!r} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(paths: dict[str, Path], repeat: int = 3) -> dict[str, tuple[float, float, float]]:
    """Largest |dE| (eV) and |dF| (eV/A) of each route's file against the first's, and
    its force evaluations per second in LAMMPS (best of ``repeat`` batches, routes
    alternating, one process)."""
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.taylor_calculators import taylor_potential
    from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive

    atoms = build_supercell(tho2_primitive(A0), supercell_matrix("4I"))
    rng = np.random.default_rng(2024)
    positions = atoms.positions[None] + rng.normal(scale=0.05, size=(20, len(atoms), 3))
    res, speed = {}, {name: 0.0 for name in paths}
    batches = {name: LammpsCalculator(taylor_potential(path), atoms)
               for name, path in paths.items()}
    try:
        for _ in range(repeat):
            for name, batch in batches.items():
                t0 = time.perf_counter()
                res[name] = batch.calculate_batch(positions)
                speed[name] = max(speed[name], len(positions) / (time.perf_counter() - t0))
    finally:
        for batch in batches.values():
            batch.release()
    first = next(iter(res.values()))
    return {name: (float(np.abs(r.energies - first.energies).max()),
                   float(np.abs(r.forces - first.forces).max()), speed[name])
            for name, r in res.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="IDMD training steps per route")
    parser.add_argument("--before", default=None, help="checkout whose package to compare")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--values", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.values), Path(args.out), args.steps)
        return

    sys.path.insert(0, str(HERE))
    from bench_idmd import measure_derivatives

    from anharmbench.structures import tho2_primitive

    derivs = measure_derivatives(tho2_primitive(A0), FTG)
    with tempfile.TemporaryDirectory() as tmp:
        values = Path(tmp) / "values.npz"
        np.savez(values, **{f"values_{n}": v for n, (_, v) in derivs.items()})
        routes: list[tuple[str, str | None]] = [("orbits", None), ("every translate", None)]
        if args.before:
            routes.append(("before", str(Path(args.before).resolve())))
        rows = {}
        for k, (route, pythonpath) in enumerate(routes):
            print(f"running {route} ...", flush=True)
            rows[route] = run_route(route, values, Path(tmp) / f"r{k}", args.steps, pythonpath)
        diffs = compare({route: Path(tmp) / f"r{k}" / "hamiltonian.taylor"
                         for k, (route, _) in enumerate(routes)})

    cols = ["stored_terms", "file_MB", "expansion_s", "write_s", "peak_before_md_MB",
            "idmd_s", "peak_MB"]
    print(f"\n4I, orders 2-4 of CRG (paper FTGs), IDMD of {args.steps} + {args.steps // 2} steps")
    print(f"{'route':16s}" + "".join(f"{c:>18s}" for c in cols) + f"{'max|dE| eV':>12s}"
          f"{'max|dF| eV/A':>14s}{'evals/s':>9s}")
    for route, rec in rows.items():
        rec["evals_per_s"] = diffs[route][2]
        print(f"{route:16s}" + "".join(f"{rec[c]:18.4g}" for c in cols)
              + f"{diffs[route][0]:12.2e}{diffs[route][1]:14.2e}{diffs[route][2]:9.2f}")
    base = rows["every translate"] if "before" not in rows else rows["before"]
    name = "before" if "before" in rows else "every translate"
    now = rows["orbits"]
    print(f"\norbits / {name}: peak memory {now['peak_MB'] / base['peak_MB']:.3f}, "
          f"file {now['file_MB'] / base['file_MB']:.4f}, "
          f"expansion time {now['expansion_s'] / base['expansion_s']:.3f}, "
          f"IDMD time {now['idmd_s'] / base['idmd_s']:.3f}, "
          f"LAMMPS evaluations per second {now['evals_per_s'] / base['evals_per_s']:.3f}")


if __name__ == "__main__":
    main()
