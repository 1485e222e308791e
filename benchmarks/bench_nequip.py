"""NequIP speed: training time per epoch, and time per force call (LAMMPS vs ASE).

1. Trains a NequIP model (default: the "quick" profile) on a dataset for ``--epochs-a``
   and then ``--epochs-b`` epochs in two fresh run directories; the difference of the
   two wall times over the difference of epochs is the time per epoch without the
   start-up (data loading, statistics, test stage). Printed also per training frame
   and per training atom so that it scales to other datasets.
2. Compiles the model (``nequip-compile --mode aotinductor --target pair_nequip``) and
   times one energy+forces+stress call on displaced 96-atom (S_C x 2I) and 324-atom
   (3 S_C) ThO2 cells through ``pair_style nequip`` (LammpsCalculator.calculate_batch, one
   LAMMPS run 0 per configuration) and through nequip's own ASE calculator on the eager model of
   the same checkpoint; the two are checked to agree.

Usage: python benchmarks/bench_nequip.py [--dataset DIR] [--profile quick|paper]
       [--epochs-a 2] [--epochs-b 6] [--calls 20] [--threads 1] [--workdir DIR]
Without --dataset a small reference-MD dataset (12-atom cells) is generated first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from anharmbench.lammps import LammpsCalculator
from anharmbench.mlip.data import load_splits
from anharmbench.mlip.nequip import (
    NequIPConfig,
    compile_nequip,
    nequip_ase_calculator,
    nequip_potential,
    train_nequip,
)
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive


def time_training(dataset: Path, work: Path, cfg: NequIPConfig, epochs: tuple[int, int]):
    """Seconds per epoch from two runs of different length (start-up cancels)."""
    runs = []
    for n in epochs:
        run = train_nequip(
            dataset,
            work / f"train_{n}",
            NequIPConfig(**{**cfg.to_dict(), "max_epochs": n}),
            compile_model=False,
            progress=False,
            overwrite=True,
            resume=False,
        )
        runs.append(run)
        print(f"  {n:3d} epochs: {run.seconds:7.1f} s (with start-up and test stage)")
    per_epoch = (runs[1].seconds - runs[0].seconds) / (epochs[1] - epochs[0])
    return per_epoch, runs[1]


def time_force_calls(model: Path, checkpoint: Path, kind: str, calls: int, rng) -> dict:
    matrix = {
        "96": supercell_matrix("SC") @ supercell_matrix("2I"),
        "324": 3 * supercell_matrix("SC"),
    }[kind]
    atoms = build_supercell(tho2_primitive(), matrix)
    positions = atoms.positions[None] + rng.normal(scale=0.05, size=(calls, len(atoms), 3))
    with LammpsCalculator(nequip_potential(model, ("Th", "O")), atoms) as batch:
        batch.calculate_batch(positions[:2])  # warm-up (first call loads the kernels)
        t0 = time.perf_counter()
        res = batch.calculate_batch(positions)
        t_lmp = (time.perf_counter() - t0) / calls
    calc = nequip_ase_calculator(checkpoint)
    probe = atoms.copy()
    probe.calc = calc
    probe.positions = positions[0]
    probe.get_forces()  # warm-up
    energies, forces = [], []
    t0 = time.perf_counter()
    for pos in positions:
        probe.positions = pos
        energies.append(probe.get_potential_energy())
        forces.append(probe.get_forces())
        probe.get_stress()
    t_ase = (time.perf_counter() - t0) / calls
    de = float(np.abs(np.array(energies) - res.energies).max())
    df = float(np.abs(np.array(forces) - res.forces).max())
    return {"natoms": len(atoms), "lammps_s": t_lmp, "ase_s": t_ase, "dE": de, "dF": df}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--profile", choices=("quick", "paper"), default="quick")
    ap.add_argument("--epochs-a", type=int, default=2)
    ap.add_argument("--epochs-b", type=int, default=6)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_nequip_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset
    if dataset is None:
        from anharmbench.datasets import RefMDSettings, run_refmd

        settings = RefMDSettings.quick(n_snapshots=60)
        dataset = run_refmd(work / "dataset", settings, overwrite=True).directory
    splits = load_splits(dataset)
    n_frames = len(splits.train)
    n_atoms = sum(len(a) for a in splits.train)
    cfg = NequIPConfig.from_profile(args.profile, threads=args.threads)
    print(f"NequIP {args.profile} profile: {cfg}")
    print(f"dataset {dataset}: {n_frames} training frames, {n_atoms} training atoms")

    per_epoch, run = time_training(dataset, work, cfg, (args.epochs_a, args.epochs_b))
    print(
        f"training time per epoch: {per_epoch:.2f} s  "
        f"({1e3 * per_epoch / n_frames:.1f} ms/frame, "
        f"{1e6 * per_epoch / n_atoms:.0f} us/atom; {args.threads} thread(s))"
    )

    t0 = time.perf_counter()
    model = compile_nequip(run.best_checkpoint, work / "model.nequip.pt2", threads=args.threads)
    print(f"nequip-compile (aotinductor, cpu, pair_nequip): {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(0)
    print(f"time per energy+forces+stress call ({args.calls} calls, {args.threads} thread(s)):")
    for kind in ("96", "324"):
        r = time_force_calls(model, run.best_checkpoint, kind, args.calls, rng)
        print(
            f"  {r['natoms']:4d} atoms: pair_style nequip {1e3 * r['lammps_s']:8.2f} ms, "
            f"nequip ASE (eager) {1e3 * r['ase_s']:8.2f} ms, ratio ASE/LAMMPS "
            f"{r['ase_s'] / r['lammps_s']:5.2f}  (max |dE| {r['dE']:.1e} eV, "
            f"max |dF| {r['dF']:.1e} eV/A)"
        )


if __name__ == "__main__":
    main()
