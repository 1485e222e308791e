"""Compute the Si PBE reference of orders 2-6 with Quantum ESPRESSO through our DFT route.

Steps (each resumable: a finished step's result is kept in OUT and read back):

1. convergence of the cutoff and the k-mesh on the Raman frequency (frozen phonon through
   ASE's Espresso calculator) and the pressure, recorded in ``OUT/convergence.json``;
2. the PBE lattice constant at the chosen settings from an equation of state (ASE's EOS,
   Birch-Murnaghan, 7 volumes), recorded there too; then the density cutoff (``ecutrho``)
   from rigid translations, whose forces vanish in the continuum (the egg-box test);
3. the plans (``SETS``: primitive cell orders 2-6 and S_C orders 2-3 by default; 2I
   orders 2-3 and S_C order 4 on request; bundled, one step window per order) written as
   pw.x inputs with the same settings (``anharmbench plan --format espresso-in
   --dft-settings OUT/qe-SET.yaml``), run with
   :func:`anharmbench.dft.runner.run_jobs`, collected and fitted into
   ``OUT/SET/derivatives.h5``;
4. an independent check of orders 2-6: pw.x forces along three seeded generic directions
   ``u`` (ASE's Espresso calculator, the same settings), whose polynomial fit gives
   ``D_n(u, ..., u)``, against the contraction of the fitted derivatives;
5. ``OUT/reference.json``: settings, pseudopotential and its SHA-256, pw.x version, the
   convergence runs, the check, timings.

``OUT/prim`` and ``OUT/SC`` are plan directories a study reads as ``reference: {kind:
files, plan: [...]}`` (the job folders under ``dft/`` can be deleted once collected).
``analysis/si_qe_phono3py_check.py`` checks ``OUT/SC`` against phono3py's own route.

A set longer than a working session (2I: 57 jobs of ~300 s) is run with ``--landed
analysis/si_qe_landed``: each finished pw.x output is kept there (committed as it lands)
and put back on a new machine, where only the rest is run.

Usage: python analysis/si_qe_reference.py [--out references/si-qe-pbe] [--jobs 2]
       [--sets 2I --plan-only --landed analysis/si_qe_landed]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anharmbench.dft.runner import RunReport

PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
UPF = "Si.pbe-rrkj.UPF"
A_START = 5.47
MASS_SI = 28.085
#: step windows per order (Angstrom): larger steps for higher orders, where the force noise
#: (~1e-5 eV/A with the density grid of ECUTRHO_FACTOR) is divided by h^(n-1); order 6's
#: stencil reaches 3h, and beyond ~0.1 A its h^2 tail no longer describes Si's surface
H_RANGES = {2: (0.01, 0.04), 3: (0.02, 0.06), 4: (0.02, 0.08), 5: (0.03, 0.10),
            6: (0.04, 0.10)}
N_STEPS = 6
#: ecutrho / ecutwfc candidates: PBE on the density grid makes the energy depend on where
#: the atoms sit on the FFT grid (the egg-box effect); at pw.x's default (4) a rigid
#: translation changes the forces by ~1e-4 eV/A, which swamps orders 4-6
ECUTRHO_FACTORS = (4, 8, 16)
#: the derivative sets (the paper's, adapted to diamond): supercell, orders, k-mesh divisor
#: (2I: exactly the primitive cell's points; S_C, the cube of 4 cells: 4^3, a prim density
#: of 6.3^3, where the Raman frequency is 0.04 THz above its converged value: 5^3 doubles
#: the cost of its ~90 s jobs), steps
#: Measured here: prim, S_C orders 2-3 (X points; also phono3py's route check), S_C order 4
#: (191 jobs of ~47 s) and S_C order 5 at X X G G G (49 jobs). The 16-atom 2I costs ~300 s
#: per pw.x job on this machine (57 jobs): run it with --sets 2I where time allows.
SETS = {"prim": (((1, 0, 0), (0, 1, 0), (0, 0, 1)), (2, 3, 4, 5, 6), 1.0, N_STEPS),
        "SC": (((-1, 1, 1), (1, -1, 1), (1, 1, -1)), (2, 3), 2.0, 4),
        "2I": (((2, 0, 0), (0, 2, 0), (0, 0, 2)), (2, 3), 2.0, 4),
        "SC4": (((-1, 1, 1), (1, -1, 1), (1, 1, -1)), (4,), 2.0, 4),
        "SC5X": (((-1, 1, 1), (1, -1, 1), (1, 1, -1)), (5,), 2.0, 4)}
#: sets restricted to one Q-tuple: order 5 off Gamma (two X phonons, 31 pw.x jobs)
QTUPLES = {"SC5X": ("X", "X", "G", "G", "G")}
DEFAULT_SETS = ("prim", "SC")
#: how a set's evaluations become derivatives: the tail fit (each order's steps to zero)
#: resolves orders 2-3, but not order 6 here (its uncertainties were above the values:
#: Si's series needs powers up to ~t^9 over the steps where pw.x's ~1e-6 eV/A noise allows
#: them); sets with orders 4 and up are fitted with 'auto', per order the tail fit or the
#: joint Taylor fit along all the plan's lines, whichever is more precise
AUTO_FROM_ORDER = 4
ECUTS = (20, 25, 30, 35, 40)
KMESHES = (4, 6, 8, 10)


def _espresso(directory: Path, ecut: float, k: int,  # noqa: ANN202 - ASE calculator
              rho_factor: int = 4, nosym: bool = False):
    from ase.calculators.espresso import Espresso, EspressoProfile

    return Espresso(profile=EspressoProfile(command="pw.x", pseudo_dir=str(PSEUDO_DIR)),
                    directory=str(directory), pseudopotentials={"Si": UPF},
                    input_data={"control": {"tprnfor": True, "tstress": True},
                                "system": {"ecutwfc": ecut, "ecutrho": rho_factor * ecut,
                                           "nosym": nosym},
                                "electrons": {"conv_thr": 1e-11}},
                    kpts=(k, k, k))


def egg_box(work: Path, a: float, ecut: float, k: int, rho_factor: int) -> dict[str, float]:
    """Forces and energy change under rigid translations (exactly zero in the continuum)."""
    from ase.build import bulk

    forces, energies = [], []
    for t in (0.0, 0.03, 0.06):
        atoms = bulk("Si", "diamond", a=a)
        atoms.positions += t * np.array([1.0, 0.3, 0.1])
        atoms.calc = _espresso(work / f"eggbox_rho{rho_factor}_t{t:.2f}", ecut, k, rho_factor,
                                nosym=True)
        energies.append(float(atoms.get_potential_energy()))
        forces.append(float(np.abs(atoms.get_forces()).max()))
    return {"ecutrho_Ry": rho_factor * ecut, "max_force_eV_A": max(forces),
            "energy_spread_eV": max(energies) - min(energies)}


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


def _pw_forces(tasks: list[tuple[Path, object]], ecut: float, k: int, rho: int,
               jobs: int) -> list[np.ndarray]:
    """Forces of ``(directory, atoms)`` pairs, ``jobs`` pw.x processes at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def one(task: tuple[Path, object]) -> np.ndarray:
        directory, atoms = task
        atoms.calc = _espresso(directory, ecut, k, rho, nosym=True)
        return np.asarray(atoms.get_forces())

    with ThreadPoolExecutor(jobs) as pool:  # each task is a pw.x subprocess
        return list(pool.map(one, tasks))


#: (degree, |t| window in A) of the check's two polynomial fits: the lowest degrees whose
#: residuals reach pw.x's noise (~1e-6 eV/A) on both windows; degree 9 on 0.15 A and 11 on
#: 0.2 A (the first choice) left residuals of 2-4e-6 and order 6 truncated by ~30 %
CHECK_FITS = ((11, 0.175), (13, 0.2))


def directional_check(work: Path, prim_dir: Path, ecut: float, k: int, rho: int,
                      cache: dict, jobs: int) -> dict:
    """``D_n(u, ..., u)`` from pw.x forces along generic directions vs the fitted derivatives.

    Independent of the plan: three seeded random directions ``u`` (no translation, unit
    norm), 16 points ``t = +-0.025 j`` A (j = 1..8), and a least-squares polynomial of the
    projected force ``g(t) = -u . F(t u) = dE/dt``, whose coefficient of ``t^(n-1)`` times
    ``(n-1)!`` is ``D_n(u^n)``. Two fits (:data:`CHECK_FITS`) bound the truncation of the
    polynomial.
    """
    from math import factorial

    from anharmbench.observables.force_constants import load_derivative_set

    dset = load_derivative_set(prim_dir / "derivatives.h5")
    sc = dset.supercell(2)
    rng = np.random.default_rng(2024)
    out = cache.setdefault("directions", {})
    ts = 0.025 * np.concatenate([-np.arange(8, 0, -1), np.arange(1, 9)])
    for d in range(3):
        u = rng.normal(size=(len(sc), 3))
        u -= u.mean(axis=0)  # no translation
        u /= np.linalg.norm(u)
        rec = out.setdefault(f"u{d}", {"u": u.tolist(), "g": {}})
        todo = [t for t in ts if f"{t:+.4f}" not in rec["g"]]
        tasks = []
        for t in todo:
            atoms = sc.copy()
            atoms.positions += t * u
            tasks.append((work / f"dir{d}_{t:+.4f}", atoms))
        for t, f in zip(todo, _pw_forces(tasks, ecut, k, rho, jobs), strict=True):
            rec["g"][f"{t:+.4f}"] = float(-np.sum(f * u))
        g = np.array([rec["g"][f"{t:+.4f}"] for t in ts])
        fits = {}
        for deg, tmax in CHECK_FITS:
            sel = np.abs(ts) <= tmax + 1e-9
            c = np.polynomial.polynomial.polyfit(ts[sel], g[sel], deg)
            fits[f"deg{deg}_t{tmax}"] = {str(n): float(c[n - 1] * factorial(n - 1))
                                         for n in range(2, 7)}
        rec["pw_forces_Dn"] = fits
        basis = {n: dset.bases[n] for n in range(2, 7)}
        rec["fitted_Dn"] = {str(n): float(basis[n].contract(dset.values[n], [u.ravel()] * n))
                            for n in range(2, 7)}
        rec["fitted_sigma_Dn"] = {
            str(n): float(np.sqrt(sum(
                (basis[n].contract(np.eye(len(dset.values[n]))[j], [u.ravel()] * n)
                 * dset.uncertainties[n][j]) ** 2 for j in range(len(dset.values[n])))))
            for n in range(2, 7)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="references/si-qe-pbe")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--ship", metavar="DIR",
                    help="copy what the repository keeps (no pw.x outputs) into DIR and stop "
                    "(anharmbench/data/references/si-qe-pbe)")
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(DEFAULT_SETS),
                    help="the derivative sets to measure, in SETS' order (default: prim SC)")
    ap.add_argument("--landed", metavar="DIR",
                    help="keep each finished job's output in DIR/SET (gzipped, with its "
                    "input's checksum) and put them back on a new machine: commit DIR as "
                    "jobs land (analysis/si_qe_landed)")
    ap.add_argument("--plan-only", action="store_true",
                    help="stop after the plan's derivatives (skip the directional check)")
    args = ap.parse_args()
    if shutil.which("pw.x") is None or not (PSEUDO_DIR / UPF).is_file():
        print("needs pw.x and Si.pbe-rrkj.UPF: apt-get install quantum-espresso "
              "quantum-espresso-data", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.ship:
        return ship(out, Path(args.ship))
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
    # 2b. the density grid: rigid translations must leave forces at the SCF's noise
    for f in ECUTRHO_FACTORS:
        key = f"eggbox_rho{f}"
        if key not in conv:
            conv[key] = egg_box(work, a0, ecut, kk, f)
            conv_path.write_text(json.dumps(conv, indent=1))
        print(f"ecutrho {f * ecut} Ry: rigid translation moves forces by "
              f"{conv[key]['max_force_eV_A']:.2e} eV/A, energy by "
              f"{conv[key]['energy_spread_eV']:.2e} eV", flush=True)
    rho = next(f for f in ECUTRHO_FACTORS if conv[f"eggbox_rho{f}"]["max_force_eV_A"] < 2e-5)
    conv["chosen"]["ecutrho_Ry"] = rho * ecut
    conv["chosen"]["ecutrho_rule"] = "the smallest with translation forces < 2e-5 eV/A"
    # 3. the plans through our route, in SETS' order (prim, then the supercells)
    from ase.build import bulk

    bulk("Si", "diamond", a=a0).write(out / "si.cif")
    timings = conv.setdefault("seconds", {})
    for name, (supercell, orders, kdiv, steps) in SETS.items():
        if name not in args.sets:
            continue
        settings = out / f"qe-{name}.yaml"
        kn = int(round(kk / kdiv))
        settings.write_text(  # the same k-point density in every set
            f"input_data:\n  system: {{ecutwfc: {ecut}, ecutrho: {rho * ecut}}}\n"
            f"  electrons: {{conv_thr: 1.0e-11}}\n"
            f"pseudopotentials: {{Si: {UPF}}}\npseudo_dir: {PSEUDO_DIR}\n"
            f"kpts: [{kn}, {kn}, {kn}]\n")
        t1 = time.perf_counter()
        if measure_set(out / name, out / "si.cif", settings, supercell, orders, steps,
                       args.jobs, QTUPLES.get(name),
                       Path(args.landed) / name if args.landed else None) != 0:
            return 1
        timings[f"plan_{name}"] = timings.get(f"plan_{name}", 0.0) + time.perf_counter() - t1
        conv_path.write_text(json.dumps(conv, indent=1))
        if name == "prim" and not args.plan_only:
            # 4. the directional check of orders 2-6 (before the larger sets)
            t2 = time.perf_counter()
            directional_check(work, out / "prim", ecut, kk, rho,
                              conv.setdefault("check", {}), args.jobs)
            timings["check"] = timings.get("check", 0.0) + time.perf_counter() - t2
            conv_path.write_text(json.dumps(conv, indent=1))
            _print_check(conv["check"])
    if args.plan_only:
        return 0
    version = next((line.split()[2] for line in
                    (out / "prim" / "dft" / "job_00000" / "espresso.pwo").read_text()
                    .splitlines() if "Program PWSCF" in line), "?")
    from anharmbench.dft.settings import _sha256

    (out / "reference.json").write_text(json.dumps({
        "what": "Si diamond, PBE, Quantum ESPRESSO pw.x: " + ", ".join(
            f"{name} orders {list(SETS[name][1])}" for name in SETS
            if (out / name / "derivatives.h5").is_file()),
        "pw.x": version, "pseudopotential": UPF,
        "pseudopotential_sha256": _sha256(PSEUDO_DIR / UPF),
        "settings": {name: (out / f"qe-{name}.yaml").read_text() for name in SETS
                     if (out / name / "derivatives.h5").is_file()},
        "a0_A": a0, "h_ranges_A": H_RANGES, "n_steps": {k: v[3] for k, v in SETS.items()},
        "convergence": conv, "seconds_total_this_run": time.perf_counter() - t0,
        "regenerate": "python analysis/si_qe_reference.py --out " + str(out)}, indent=1))
    return 0


#: what the repository keeps of OUT: settings, results and fits; no pw.x outputs
SHIPPED = ("reference.json", "si.cif", *(f"qe-{s}.yaml" for s in SETS),
           *(f"{s}/{f}" for s in SETS for f in ("plan.json", "results.h5", "derivatives.h5")),
           "phono3py/traditional/phono3py_params.yaml", "phono3py_check_traditional.json")


def ship(out: Path, dest: Path) -> int:
    """Copy the kept files; a set not measured (yet) is left out, prim and SC are needed."""
    absent = {s for s in SETS if not (out / s / "derivatives.h5").is_file()}
    files = [f for f in SHIPPED if f.split("/")[0] not in absent
             and f.removeprefix("qe-").removesuffix(".yaml") not in absent]
    missing = [f for f in files if not (out / f).is_file()] + sorted(absent & {"prim", "SC"})
    if missing:
        print(f"{out}: missing {', '.join(missing)}; run the steps first", file=sys.stderr)
        return 2
    for f in files:
        target = dest / f.replace("phono3py/traditional/", "phono3py/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / f, target)
    print(f"copied {len(files)} files into {dest}" + (f" (not measured: {sorted(absent)})"
                                                    if absent else ""))
    return 0


def _print_check(check: dict) -> None:
    for key, rec in check["directions"].items():
        for n in range(2, 7):
            pw = [v[str(n)] for v in rec["pw_forces_Dn"].values()]
            print(f"{key} order {n}: fitted {rec['fitted_Dn'][str(n)]:.5g} "
                  f"+- {rec['fitted_sigma_Dn'][str(n)]:.2g}, pw.x forces "
                  + ", ".join(f"{v:.5g} ({k})" for k, v in zip(rec["pw_forces_Dn"], pw,
                                                                strict=True)), flush=True)


def measure_set(plan_dir: Path, structure: Path, settings: Path,
                supercell: tuple[tuple[int, int, int], ...], orders: tuple[int, ...],
                n_steps: int, jobs: int, qtuple: tuple[str, ...] | None = None,
                landed: Path | None = None) -> int:
    """Plan (once), run its pw.x jobs (resumable), collect and fit one derivative set.

    With ``landed``, finished jobs' outputs are also kept there (see :func:`_run_landing`).
    """
    from anharmbench.cli import main as cli
    from anharmbench.dft.runner import run_jobs

    if not (plan_dir / "plan.json").is_file():
        from anharmbench.derivatives.directory import write_plan_directory
        from anharmbench.derivatives.job import DerivativeJob, prepare
        from anharmbench.dft.inputs import write_dft_inputs
        from anharmbench.dft.settings import load_dft_settings
        from anharmbench.validation import read_structure

        job = DerivativeJob(supercell=supercell, orders=orders, variant="bundled",
                            h_ranges={n: H_RANGES[n] for n in orders}, n_steps=n_steps,
                            qtuple=qtuple)
        prepared = prepare(job, read_structure(structure))
        write_plan_directory(plan_dir, prepared, None)
        write_dft_inputs(plan_dir, prepared, "espresso-in",
                         settings=load_dft_settings(settings))
    if landed is None:
        report = run_jobs(plan_dir, jobs=jobs)
    else:
        report = _run_landing(plan_dir, jobs, landed)
    print(report.summary(), flush=True)
    if report.failed:
        return 1
    if cli(["collect", str(plan_dir), "--outputs", "dft/job_*/espresso.pwo"]) != 0:
        return 1
    estimator = "auto" if max(orders) >= AUTO_FROM_ORDER else "tail"
    return cli(["derivatives", str(plan_dir), "--estimator", estimator])


def _input_digest(job: Path) -> str:
    import hashlib

    return hashlib.sha256((job / "espresso.pwi").read_bytes()).hexdigest()


def _run_landing(plan_dir: Path, jobs: int, landed: Path) -> RunReport:
    """Run a plan's jobs ``jobs`` at a time, keeping each finished output in ``landed``.

    A long set outlives a working session (the 2I set is ~2.5 h of pw.x here), and a fresh
    machine keeps only what the repository holds; so each finished job's output is
    gzipped into ``landed`` (meant to be committed as it lands) with the SHA-256 of the
    input it answers, and put back into the job folder of a new plan directory, but only
    when that job's input is byte for byte the same (any other settings or plan: refused).
    """
    import gzip

    from anharmbench.dft.inputs import DFT_DIR, job_name
    from anharmbench.dft.runner import DONE, run_jobs

    dft = plan_dir / DFT_DIR
    n = int(json.loads((plan_dir / "plan.json").read_text())["dft_jobs"])
    landed.mkdir(parents=True, exist_ok=True)
    index_path = landed / "inputs.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    for name, digest in index.items():  # put back what earlier sessions finished
        job = dft / name
        if not job.is_dir():
            raise SystemExit(f"{landed}: {name} is not a job of {plan_dir}; another plan's "
                             "outputs (remove the folder or give another --landed)")
        if _input_digest(job) != digest:
            raise SystemExit(f"{landed}: {name} answers another input than {job}; settings "
                             "or plan changed (remove the folder or give another --landed)")
        if not (job / DONE).is_file():
            (job / "espresso.pwo").write_bytes(
                gzip.decompress((landed / f"{name}.pwo.gz").read_bytes()))
            (job / DONE).write_text(f"ok (landed from {landed})\n")
    todo = [i for i in range(n) if not (dft / job_name(i) / DONE).is_file()]
    for start in range(0, max(len(todo), 1), jobs):
        report = run_jobs(plan_dir, jobs=jobs, only=todo[start:start + jobs] or None,
                          progress=False)
        for i in todo[start:start + jobs]:
            job = dft / job_name(i)
            if (job / DONE).is_file():
                (landed / f"{job.name}.pwo.gz").write_bytes(
                    gzip.compress((job / "espresso.pwo").read_bytes(), mtime=0))
                index[job.name] = _input_digest(job)
        index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
        done = sum((dft / job_name(i) / DONE).is_file() for i in range(n))
        print(f"{plan_dir.name}: {done}/{n} jobs finished and landed in {landed}", flush=True)
        if report.failed:
            return report
    return run_jobs(plan_dir, jobs=jobs, progress=False)


if __name__ == "__main__":
    sys.exit(main())
