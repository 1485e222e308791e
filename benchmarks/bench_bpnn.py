"""Behler-Parrinello network speed: force calls (LAMMPS and Python) and training epochs.

Trains the quick profile on a tiny 12-atom reference-MD dataset (made in a temporary
folder unless ``--dataset`` is given) and reports its seconds per epoch, compiles the
model for ``pair_style nequip`` (AOTInductor, reported) unless ``--model`` names a
directory that already holds ``model.nequip.pt2``, then times one energy+force call
on ThO2 cells of 96 atoms (S_C x 2I) and 324 atoms (3 S_C) with small random
displacements:

* LAMMPS: ``pair_style nequip`` through :meth:`~anharmbench.lammps.LammpsCalculator.calculate_batch`
  (``run 0`` per configuration, stress included);
* the compiled package called from Python (``torch._inductor.aoti_load_package``);
* the eager torch model in Python (autograd forces, as the package).

Times are medians over ``--calls`` calls after one warm-up, with ``--threads`` torch
threads (the plugin uses ``OMP_NUM_THREADS``; set it to the same number).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_bpnn.py [--calls 5] [--threads 1]
       [--dataset DIR] [--model DIR] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from anharmbench.lammps import LammpsCalculator
from anharmbench.mlip.bpnn import (
    TrainConfig,
    bpnn_potential,
    energy_forces_virial,
    export_pt2,
    load_model,
    load_pt2,
    train,
)
from anharmbench.mlip.bpnn.export import PT2_NAME
from anharmbench.mlip.bpnn.model import atoms_inputs
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive


def _median_time(fn, calls: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", type=Path, default=None, help="dataset directory")
    ap.add_argument("--model", type=Path, default=None, help="trained model directory")
    ap.add_argument("--epochs", type=int, default=10, help="quick-profile epochs to time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            dataset = args.dataset
            if dataset is None:
                from anharmbench.datasets import RefMDSettings, run_refmd

                dataset = run_refmd(Path(tmp) / "refmd", RefMDSettings.quick()).directory
            t0 = time.perf_counter()
            result = train(
                dataset,
                Path(tmp) / "model",
                TrainConfig.quick(max_epochs=args.epochs, patience=args.epochs, progress=False),
            )
            total = time.perf_counter() - t0
            h = result.history
            n_frames = len(load_splits_frames(dataset))
            print(
                f"training, quick profile ({n_frames} training frames): "
                f"{result.seconds_per_epoch:.3f} s/epoch over {len(h)} epochs "
                f"({total:.1f} s with setup: neighbour lists, cached descriptors, scaling)"
            )
            model_dir = result.directory
        if not (model_dir / PT2_NAME).is_file():
            t0 = time.perf_counter()
            export_pt2(model_dir)
            print(f"AOTInductor compile: {time.perf_counter() - t0:.1f} s")
        model = load_model(model_dir)
        package = load_pt2(model_dir / PT2_NAME)
        potential = bpnn_potential(model_dir)

        print(
            f"\nforce call (energy + forces + virial), median of {args.calls}, "
            f"{args.threads} thread(s):"
        )
        print(f"{'atoms':>6} {'LAMMPS':>12} {'package/Py':>12} {'eager torch':>12} {'edges':>8}")
        cells = {
            96: supercell_matrix("SC") @ supercell_matrix("2I"),
            324: supercell_matrix("3SC"),
        }
        rng = np.random.default_rng(0)
        for n, matrix in cells.items():
            atoms = build_supercell(tho2_primitive(), matrix)
            positions = atoms.positions[None] + rng.normal(scale=0.03, size=(args.calls + 1, n, 3))
            with LammpsCalculator(potential, atoms) as batch:
                batch.calculate_batch(positions[:1])
                t0 = time.perf_counter()
                batch.calculate_batch(positions[1:])
                t_lmp = (time.perf_counter() - t0) / args.calls
            probe = atoms.copy()
            probe.positions = positions[0]
            inputs = atoms_inputs(model, probe)
            t_pkg = _median_time(lambda inputs=inputs: package(*inputs), args.calls)
            t_eager = _median_time(
                lambda inputs=inputs: energy_forces_virial(model, *inputs), args.calls
            )
            print(
                f"{n:6d} {1e3 * t_lmp:9.1f} ms {1e3 * t_pkg:9.1f} ms {1e3 * t_eager:9.1f} ms "
                f"{inputs[1].shape[1]:8d}"
            )


def load_splits_frames(dataset: Path) -> list:
    from anharmbench.mlip import load_splits

    return load_splits(dataset).train


if __name__ == "__main__":
    main()
