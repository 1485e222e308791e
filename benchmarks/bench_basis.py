"""Benchmark the symmetry stage: irreducible derivative bases of ThO2.

Prints, for each (cell, order): the number of irreducible derivatives, the
character-theory count, the time to build the symmetrized modes and the basis,
the number of stored sparse components, and the (warm) time of ``energy_terms``
and ``force_terms`` for one configuration; then the peak memory (RSS).

Usage::

    .venv/bin/python benchmarks/bench_basis.py           # paper targets
    .venv/bin/python benchmarks/bench_basis.py --big     # also 3 S_C (324 atoms)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from ase.build import bulk

from anharmbench.symmetry import (
    S_2I,
    S_3C,
    S_4I,
    S_C,
    S_PRIM,
    SupercellSymmetry,
    invariant_count,
    irreducible_basis,
    symmetrized_modes,
)

CASES: list[tuple[str, list[list[int]], int]] = [
    ("prim", S_PRIM, 2),
    ("prim", S_PRIM, 3),
    ("prim", S_PRIM, 4),
    ("prim", S_PRIM, 5),
    ("prim", S_PRIM, 6),
    ("S_C", S_C, 2),
    ("S_C", S_C, 3),
    ("S_C", S_C, 4),
    ("2I", S_2I, 2),
    ("2I", S_2I, 3),
    ("4I", S_4I, 2),
    ("4I", S_4I, 3),
]
BIG: list[tuple[str, list[list[int]], int]] = [("3S_C", S_3C, 2), ("3S_C", S_3C, 3)]


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also 3 S_C (324 atoms)")
    args = ap.parse_args()
    prim = bulk("ThO2", "fluorite", a=5.6)
    cases = CASES + (BIG if args.big else [])
    rng = np.random.default_rng(0)
    print(
        f"{'cell':>5} {'n':>2} {'N':>4} {'M':>4} {'K':>7} {'chi':>7} "
        f"{'modes_s':>8} {'basis_s':>8} {'nnz':>9} {'E_ms':>8} {'F_ms':>8}"
    )
    for name, S, n in cases:
        t0 = time.perf_counter()
        modes = symmetrized_modes(prim, S)
        t_modes = time.perf_counter() - t0
        t0 = time.perf_counter()
        B = irreducible_basis(modes, order=n)
        t_basis = time.perf_counter() - t0
        chi = invariant_count(SupercellSymmetry(prim, S), n)
        c = rng.normal(size=B.M) * 0.01
        B.energy_terms(c), B.force_terms(c)  # warm-up: caches the sparse index maps
        t0 = time.perf_counter()
        B.energy_terms(c)
        t_e = time.perf_counter() - t0
        t0 = time.perf_counter()
        B.force_terms(c)
        t_f = time.perf_counter() - t0
        print(
            f"{name:>5} {n:>2} {modes.sym.n_atoms:>4} {B.M:>4} {len(B):>7} {chi:>7} "
            f"{t_modes:>8.3f} {t_basis:>8.3f} {len(B._w):>9} {1e3 * t_e:>8.2f} {1e3 * t_f:>8.2f}",
            flush=True,
        )
        assert len(B) == chi, "count differs from character theory"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")
    print("targets: (2I,3) and (S_C,4) seconds; (prim,6) fast; (4I,2), (4I,3) minutes at most")


if __name__ == "__main__":
    main()
