"""Compute the Si PBE reference of orders 2-6 with Quantum ESPRESSO through our DFT route.

Steps (each resumable: a finished step's result is kept in OUT and read back):

1. convergence of the cutoff and the k-mesh on the Raman frequency (frozen phonon through
   ASE's Espresso calculator) and the pressure, recorded in ``OUT/convergence.json``;
2. the PBE lattice constant at the chosen settings from an equation of state (ASE's EOS,
   Birch-Murnaghan, 7 volumes), recorded there too;
3. the plan (primitive cell, orders 2-6, bundled, one step window per order) written as
   pw.x inputs with the same settings (``anharmbench plan --format espresso-in``), run with
   :func:`anharmbench.dft.runner.run_jobs`, collected and fitted into
   ``OUT/prim/derivatives.h5``;
4. ``OUT/reference.json``: settings, pseudopotential and its SHA-256, pw.x version, the
   convergence runs, timings.

``OUT/prim`` is a plan directory a study reads as ``reference: {kind: files, plan: ...}``
(the job folders under ``dft/`` can be deleted once collected).

Usage: python analysis/si_qe_reference.py [--out references/si-qe-pbe] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
UPF = "Si.pbe-rrkj.UPF"
A_START = 5.47
MASS_SI = 28.085
#: step windows per order (Angstrom): larger steps for higher orders, where the force noise
#: of the SCF (~1e-5 eV/A at the threshold used) is divided by h^(n-1)
H_RANGES = {2: (0.01, 0.04), 3: (0.02, 0.06), 4: (0.03, 0.10), 5: (0.05, 0.15),
            6: (0.06, 0.18)}
ECUTS = (20, 25, 30, 35, 40)
KMESHES = (4, 6, 8, 10)


def _espresso(directory: Path, ecut: float, k: int):  # noqa: ANN202 - ASE calculator
    from ase.calculators.espresso import Espresso, EspressoProfile

    return Espresso(profile=EspressoProfile(command="pw.x", pseudo_dir=str(PSEUDO_DIR)),
                    directory=str(directory), pseudopotentials={"Si": UPF},
                    input_data={"control": {"tprnfor": True, "tstress": True},
                                "system": {"ecutwfc": ecut},
                                "electrons": {"conv_thr": 1e-11}},
                    kpts=(k, k, k))


def raman_and_pressure(work: Path, a: float, ecut: float, k: int) -> tuple[float, float]:
    """Raman frequency (THz, frozen phonon, +-0.02 A along [100]) and pressure (GPa)."""
    from ase.build import bulk
    from ase.units import GPa

    e = np.array([[1.0, 0, 0], [-1.0, 0, 0]]) / np.sqrt(2)
    f, p = {}, 0.0
    for h in (-0.02, 0.02):
        atoms = bulk("Si", "diamond", a=a)
        atoms.positions += h * e
        atoms.calc = _espresso(work / f"ecut{ecut}_k{k}_a{a:.4f}_{h:+.2f}", ecut, k)
        f[h] = float(np.sum(atoms.get_forces() * e))
        p += -float(np.trace(atoms.get_stress(voigt=False))) / 3 / GPa / 2
    kspring = -(f[0.02] - f[-0.02]) / 0.04
    return 15.633302 * np.sqrt(kspring / MASS_SI), p


def lattice_constant(work: Path, ecut: float, k: int) -> dict[str, float]:
    from ase.build import bulk
    from ase.eos import EquationOfState

    vols, energies = [], []
    for s in np.linspace(0.985, 1.015, 7):
        atoms = bulk("Si", "diamond", a=A_START * s)
        atoms.calc = _espresso(work / f"eos_{s:.4f}", ecut, k)
        energies.append(atoms.get_potential_energy())
        vols.append(atoms.get_volume())
    eos = EquationOfState(vols, energies, eos="birchmurnaghan")
    v0, e0, b = eos.fit()
    a0 = (4 * v0) ** (1 / 3)
    return {"a0_A": float(a0), "bulk_modulus_GPa": float(b * 160.21766208),  # eV/A^3 -> GPa
            "volumes_A3": vols, "energies_eV": energies}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="references/si-qe-pbe")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if shutil.which("pw.x") is None or not (PSEUDO_DIR / UPF).is_file():
        print("needs pw.x and Si.pbe-rrkj.UPF: apt-get install quantum-espresso "
              "quantum-espresso-data", file=sys.stderr)
        return 2
    out = Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    conv_path = out / "convergence.json"
    conv = json.loads(conv_path.read_text()) if conv_path.is_file() else {}
    t0 = time.perf_counter()
    # 1. convergence at the starting lattice constant
    for key, (ecut, k) in [*[(f"ecut{e}_k8", (e, 8)) for e in ECUTS],
                           *[(f"ecut30_k{k}", (30, k)) for k in KMESHES]]:
        if key not in conv.setdefault("runs", {}):
            nu, p = raman_and_pressure(work, A_START, ecut, k)
            conv["runs"][key] = {"ecutwfc_Ry": ecut, "k": k, "a_A": A_START,
                                 "raman_THz": nu, "pressure_GPa": p}
            conv_path.write_text(json.dumps(conv, indent=1))
            print(f"{key}: Raman {nu:.4f} THz, pressure {p:.3f} GPa", flush=True)
    runs = conv["runs"]
    ref_nu = runs["ecut40_k8"]["raman_THz"]
    ecut = next(e for e in ECUTS if abs(runs[f"ecut{e}_k8"]["raman_THz"] - ref_nu) < 0.01)
    ref_k = runs["ecut30_k10"]["raman_THz"]
    kk = next(k for k in KMESHES if abs(runs[f"ecut30_k{k}"]["raman_THz"] - ref_k) < 0.01)
    conv["chosen"] = {"ecutwfc_Ry": ecut, "k": kk,
                      "rule": "the smallest with |Raman - Raman(40 Ry / k 10)| < 0.01 THz"}
    # 2. lattice constant
    if "lattice" not in conv:
        conv["lattice"] = lattice_constant(work, ecut, kk)
        conv_path.write_text(json.dumps(conv, indent=1))
    a0 = conv["lattice"]["a0_A"]
    print(f"settings: {ecut} Ry, k {kk}^3; PBE a0 = {a0:.4f} A", flush=True)
    # 3. the plan through our route
    from ase.build import bulk

    from anharmbench.cli import main as cli

    bulk("Si", "diamond", a=a0).write(out / "si.cif")
    (out / "qe.yaml").write_text(
        f"input_data:\n  system: {{ecutwfc: {ecut}}}\n  electrons: {{conv_thr: 1.0e-11}}\n"
        f"pseudopotentials: {{Si: {UPF}}}\npseudo_dir: {PSEUDO_DIR}\n"
        f"kpts: [{kk}, {kk}, {kk}]\n")
    prim = out / "prim"
    if not (prim / "plan.json").is_file():
        from anharmbench.derivatives.directory import write_plan_directory
        from anharmbench.derivatives.job import DerivativeJob, prepare
        from anharmbench.dft.inputs import write_dft_inputs
        from anharmbench.dft.settings import load_dft_settings
        from anharmbench.validation import read_structure

        job = DerivativeJob(supercell=((1, 0, 0), (0, 1, 0), (0, 0, 1)), orders=(2, 3, 4, 5, 6),
                            variant="bundled", h_ranges=H_RANGES, n_steps=4)
        prepared = prepare(job, read_structure(out / "si.cif"))
        write_plan_directory(prim, prepared, None)
        write_dft_inputs(prim, prepared, "espresso-in",
                         settings=load_dft_settings(out / "qe.yaml"))
    from anharmbench.dft.runner import run_jobs

    t1 = time.perf_counter()
    report = run_jobs(prim, jobs=args.jobs)
    print(report.summary(), flush=True)
    if report.failed:
        return 1
    assert cli(["collect", str(prim), "--outputs", "dft/job_*/espresso.pwo"]) == 0
    assert cli(["derivatives", str(prim)]) in (0,)
    version = next((line.split()[2] for line in
                    (prim / "dft" / "job_00000" / "espresso.pwo").read_text().splitlines()
                    if "Program PWSCF" in line), "?")
    from anharmbench.dft.settings import _sha256

    (out / "reference.json").write_text(json.dumps({
        "what": "Si diamond, PBE, Quantum ESPRESSO pw.x, primitive cell, orders 2-6",
        "pw.x": version, "pseudopotential": UPF,
        "pseudopotential_sha256": _sha256(PSEUDO_DIR / UPF),
        "settings": (out / "qe.yaml").read_text(), "a0_A": a0, "h_ranges_A": H_RANGES,
        "convergence": conv, "seconds_total": time.perf_counter() - t0,
        "seconds_plan_jobs": time.perf_counter() - t1,
        "regenerate": "python analysis/si_qe_reference.py --out " + str(out)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
