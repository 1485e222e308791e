"""Check a set of the Si PBE reference against phono3py's own route on pw.x forces.

The reference (``analysis/si_qe_reference.py``) measured the irreducible derivatives of
orders 2-3 in a supercell (``--set``: S_C, the 8-atom cube, by default; or 2I) with our
plan, pw.x and our fit. Here phono3py makes its own displacement set in the same supercell
(its finite-difference set, or ``--snapshots N`` random displacements), pw.x computes the
forces with the same settings (``OUT/qe-SET.yaml``, through ASE's Espresso calculator),
and phono3py fits fc2 and fc3 (its traditional solver, or symfc for random
displacements). Compared, on the same q-mesh:

* harmonic frequencies (8x8x8 mesh and the band path's points), max |difference| in THz;
* kappa(300 K) (RTA, tetrahedron method) with both fc2/fc3 pairs, relative difference.

Resumable: each supercell's forces are kept in ``OUT/phono3py/ROUTE/forces-NNNN.npy`` as
soon as pw.x returns them; ``OUT/phono3py/ROUTE/phono3py_params.yaml`` is phono3py's
dataset with forces (readable by ``phono3py-load`` and ``anharmbench import``). Results in
``OUT/phono3py_check_ROUTE.json``.

Usage: python analysis/si_qe_phono3py_check.py --out /path/to/si-qe-pbe [--set SC] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

#: phono3py's default displacement (A); the reference's 2I windows are 0.01-0.04 (order 2)
#: and 0.02-0.06 A (order 3)
DISTANCE = 0.03
MESH_FREQ = (8, 8, 8)
MESH_KAPPA = (13, 13, 13)
SUPERCELLS = {"SC": [[-1, 1, 1], [1, -1, 1], [1, 1, -1]], "2I": [[2, 0, 0], [0, 2, 0], [0, 0, 2]]}


def _calculator(directory: Path, settings: dict):  # noqa: ANN202 - ASE calculator
    from ase.calculators.espresso import Espresso, EspressoProfile

    data = settings["input_data"]
    return Espresso(
        profile=EspressoProfile(command="pw.x", pseudo_dir=settings["pseudo_dir"]),
        directory=str(directory), pseudopotentials=settings["pseudopotentials"],
        input_data={"control": {"tprnfor": True},
                    "system": {**data["system"], "nosym": True},
                    "electrons": data["electrons"]},
        kpts=tuple(settings["kpts"]))


def phono3py_forces(ph3, work: Path, settings: dict, jobs: int) -> np.ndarray:  # noqa: ANN001
    """pw.x forces of phono3py's displaced supercells, kept per supercell as they land."""
    from ase import Atoms

    cells = ph3.supercells_with_displacements
    work.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> np.ndarray:
        path = work / f"forces-{i:04d}.npy"
        if path.is_file():
            return np.load(path)
        c = cells[i]
        atoms = Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
        atoms.calc = _calculator(work / f"disp-{i:04d}", settings)
        f = np.asarray(atoms.get_forces())
        np.save(path, f)
        return f

    from tqdm import tqdm

    with ThreadPoolExecutor(jobs) as pool:  # each task is a pw.x subprocess
        return np.array(list(tqdm(pool.map(one, range(len(cells))), total=len(cells),
                                  desc="phono3py supercells (pw.x)")))


def kappa_300(ph3) -> float:  # noqa: ANN001
    ph3.mesh_numbers = list(MESH_KAPPA)
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=[300.0])
    return float(ph3.thermal_conductivity.kappa[0, 0, 0])


def frequencies(ph3) -> np.ndarray:  # noqa: ANN001
    from phonopy import Phonopy

    ph = Phonopy(ph3.unitcell, supercell_matrix=ph3.supercell_matrix,
                 primitive_matrix=ph3.primitive_matrix)
    ph.force_constants = ph3.fc2
    ph.run_mesh(list(MESH_FREQ), with_eigenvectors=False, is_gamma_center=True)
    return ph.mesh.frequencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the reference's folder")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", choices=list(SUPERCELLS), default="SC")
    ap.add_argument("--snapshots", type=int, default=0,
                    help="random displacements fitted with symfc (0: phono3py's "
                    "finite-difference set, its traditional solver)")
    args = ap.parse_args()
    out = Path(args.out)
    derivs = out / args.set / "derivatives.h5"
    if not derivs.is_file():
        print(f"{derivs} not found: run analysis/si_qe_reference.py --out {out} first",
              file=sys.stderr)
        return 2
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    from anharmbench.observables.force_constants import load_derivative_set
    from anharmbench.validation import read_structure

    settings = yaml.safe_load((out / f"qe-{args.set}.yaml").read_text())
    prim = read_structure(out / "si.cif")
    unit = PhonopyAtoms(symbols=prim.get_chemical_symbols(), cell=prim.cell[:],
                        scaled_positions=prim.get_scaled_positions())
    ph3 = Phono3py(unit, supercell_matrix=SUPERCELLS[args.set], primitive_matrix=np.eye(3))
    route = "symfc" if args.snapshots else "traditional"
    kind = f"{args.snapshots} random" if args.snapshots else "finite-difference"
    if args.snapshots:
        ph3.generate_displacements(distance=DISTANCE, number_of_snapshots=args.snapshots,
                                   random_seed=2024)
    else:
        ph3.generate_displacements(distance=DISTANCE)
    t0 = time.perf_counter()
    ph3.forces = phono3py_forces(ph3, out / "phono3py" / route, settings, args.jobs)
    seconds = time.perf_counter() - t0
    ph3.save(str(out / "phono3py" / route / "phono3py_params.yaml"))
    ph3.produce_fc3(fc_calculator=None if route == "traditional" else "symfc")
    if route == "traditional":
        ph3.symmetrize_fc3()
        ph3.symmetrize_fc2()
    ours = load_derivative_set(derivs).phono3py()
    f_ph3, f_ours = frequencies(ph3), frequencies(ours)
    k_ph3, k_ours = kappa_300(ph3), kappa_300(ours)
    dfreq = float(np.abs(f_ph3 - f_ours).max())
    result = {
        "phono3py_route": f"{kind} displacements of {DISTANCE} A, {route} solver, "
        f"{len(ph3.supercells_with_displacements)} supercells ({args.set}, "
        f"{len(ph3.supercell)} atoms)",
        "pw_seconds_this_run": seconds, "mesh_frequencies": MESH_FREQ,
        "max_abs_frequency_difference_THz": dfreq,
        "raman_THz": {"phono3py": float(f_ph3[0].max()), "ours": float(f_ours[0].max())},
        "mesh_kappa": MESH_KAPPA,
        "kappa_xx_300K_W_mK": {"phono3py": k_ph3, "ours": k_ours},
        "kappa_relative_difference": (k_ours - k_ph3) / k_ph3}
    (out / f"phono3py_check_{route}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    ok = dfreq < 0.05 and abs(result["kappa_relative_difference"]) < 0.02
    print("PASS" if ok else "FAIL", "(frequencies within 0.05 THz, kappa within 2 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
