"""GAP force-call speed on a 96-atom ThO2 cell: LAMMPS plugin vs quippy's ASE calculator.

Times one energy+force evaluation of the same GAP model by

* the project's LAMMPS plugin (``pair_style quip``) through
  :meth:`anharmbench.lammps.LammpsCalculator.calculate_batch` (positions scattered into
  one LAMMPS instance, ``run 0``) and through the same calculator as ASE's ``atoms.calc``;
* quippy's ASE calculator (``quippy.potential.Potential("IP GAP", ...)``),

on ``--n`` randomly displaced configurations (seeded), checks that the two agree, and
prints milliseconds per call and the ratios. Without ``--model`` a model with the paper's
descriptor cutoffs (2b and 3b at 6 A, SOAP at 4 A; few sparse points) is trained first
on a tiny reference-MD dataset (about half a minute).

Usage: python benchmarks/bench_gap.py [--model DIR_OR_XML] [--n 20] [--supercell "..."]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from anharmbench.lammps import LammpsCalculator
from anharmbench.mlip.gap import (
    AngleThreeBody,
    DistanceTwoBody,
    GapConfig,
    GapModel,
    Soap,
    gap_potential,
    load_gap_model,
    train_gap,
)
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive

#: 2 S_C: the conventional cubic cell doubled along each axis, 96 atoms.
DEFAULT_SUPERCELL = " ".join(str(v) for v in (2 * supercell_matrix("SC")).ravel())


def bench_model(workdir: Path) -> GapModel:
    """Train a small GAP with the paper's descriptor cutoffs on a quick CRG dataset."""
    from anharmbench.datasets import RefMDSettings, run_refmd

    data = run_refmd(workdir / "dataset", RefMDSettings.quick()).directory
    config = GapConfig(
        two_body=DistanceTwoBody(n_sparse=20),
        three_body=AngleThreeBody(n_sparse=20),
        soap=Soap(n_max=6, l_max=4, n_sparse=100),
        profile="benchmark",
    )
    print("training a benchmark GAP (2b+3b at 6 A, SOAP at 4 A) ...", flush=True)
    return train_gap(data, workdir / "model", config, progress=True)


def time_calls(evaluate, positions: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Wall and CPU seconds per call of ``evaluate(positions[k]) -> forces``, the forces.

    Both paths run inside this process, so the CPU time (``time.process_time``) is the
    fairer measure on a machine shared with other jobs.
    """
    evaluate(positions[0])  # warm-up
    forces = []
    wall, cpu = time.perf_counter(), time.process_time()
    for pos in positions:
        forces.append(evaluate(pos))
    n = len(positions)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n, np.array(forces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="GAP model directory or xml (default: train)")
    ap.add_argument("--n", type=int, default=20, help="configurations timed per path")
    ap.add_argument("--supercell", default=DEFAULT_SUPERCELL, help="supercell of the primitive")
    ap.add_argument("--amplitude", type=float, default=0.05, help="random displacement, A")
    args = ap.parse_args()

    from quippy.potential import Potential

    with tempfile.TemporaryDirectory(prefix="bench_gap_") as tmp:
        model = load_gap_model(args.model) if args.model else bench_model(Path(tmp))
        atoms = build_supercell(tho2_primitive(5.58), args.supercell)
        rng = np.random.default_rng(0)
        positions = atoms.positions[None] + rng.normal(
            scale=args.amplitude, size=(args.n, len(atoms), 3)
        )
        potential = gap_potential(model)

        with LammpsCalculator(potential, atoms) as batch:

            def batch_forces(pos: np.ndarray) -> np.ndarray:
                return batch.calculate_batch(pos[None], stress=False).forces[0]

            t_batch, c_batch, f_batch = time_calls(batch_forces, positions)

        lammps_atoms = atoms.copy()
        lammps_atoms.calc = LammpsCalculator(potential)

        def ase_lammps_forces(pos: np.ndarray) -> np.ndarray:
            lammps_atoms.positions = pos
            return lammps_atoms.get_forces()

        t_ase, c_ase, f_ase = time_calls(ase_lammps_forces, positions)
        lammps_atoms.calc.release()

        quippy_atoms = atoms.copy()
        quippy_atoms.calc = Potential("IP GAP", param_filename=str(model.xml))

        def quippy_forces(pos: np.ndarray) -> np.ndarray:
            quippy_atoms.positions = pos
            return quippy_atoms.get_forces()

        t_quippy, c_quippy, f_quippy = time_calls(quippy_forces, positions)

    worst = float(max(np.abs(f_batch - f_quippy).max(), np.abs(f_ase - f_quippy).max()))
    print(f"model: {model.xml} ({', '.join(model.species)})")
    print(f"cell: {len(atoms)} atoms, {args.n} configurations, max |dF| vs quippy {worst:.1e} eV/A")
    rows = [
        ("LAMMPS plugin, calculate_batch", t_batch, c_batch),
        ("LAMMPS plugin, ASE atoms.calc (+stress)", t_ase, c_ase),
        ("quippy ASE calculator", t_quippy, c_quippy),
    ]
    print(f"{'per force call':44s} {'wall ms':>9s} {'CPU ms':>9s}")
    for name, wall, cpu in rows:
        print(f"{name:44s} {1e3 * wall:9.2f} {1e3 * cpu:9.2f}")
    print(
        f"ratio quippy / plugin (calculate_batch):     {t_quippy / t_batch:6.2f} wall, "
        f"{c_quippy / c_batch:6.2f} CPU"
    )
    print(
        f"ratio quippy / plugin (ASE atoms.calc):      {t_quippy / t_ase:6.2f} wall, "
        f"{c_quippy / c_ase:6.2f} CPU"
    )


if __name__ == "__main__":
    main()
