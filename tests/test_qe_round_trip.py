"""A real DFT code in the loop: Quantum ESPRESSO's pw.x runs the inputs ``plan`` writes.

Route: ``plan --format espresso-in --dft-settings`` (no potential, no LAMMPS decks) ->
``dft run`` (pw.x, two jobs at a time) -> ``collect`` -> ``derivatives``, for Si's
primitive cell at orders 2-3. Independent check: a frozen phonon computed directly with
ASE's ``Espresso`` calculator (its own input file, pw.x's symmetry on), from forces along
the Raman mode: its frequency (order 2) and its third derivative along [111] (order 3).

Skipped without ``pw.x`` and Si.pbe-rrkj.UPF (``.ci/run`` installs Debian's
quantum-espresso when it can). Cheap settings (20 Ry, 4x4x4 k): both routes use the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from anharmbench.cli import main

PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
UPF = "Si.pbe-rrkj.UPF"
A_SI = 5.47  # Angstrom; the tests need no equilibrium (frozen phonon at the same lattice)
ECUT, KPTS = 20, (4, 4, 4)

pytestmark = pytest.mark.skipif(
    shutil.which("pw.x") is None or not (PSEUDO_DIR / UPF).is_file(),
    reason="Quantum ESPRESSO (pw.x and its Si pseudopotential) is not installed: "
    "apt-get install quantum-espresso quantum-espresso-data")

SETTINGS = f"""
input_data:
  system: {{ecutwfc: {ECUT}}}
pseudopotentials: {{Si: {UPF}}}
pseudo_dir: {PSEUDO_DIR}
kpts: [{KPTS[0]}, {KPTS[1]}, {KPTS[2]}]
"""


@pytest.fixture(scope="module")
def si_plan(tmp_path_factory) -> Path:
    """The plan, run by pw.x, collected and fitted."""
    from ase.build import bulk

    d = tmp_path_factory.mktemp("qe")
    bulk("Si", "diamond", a=A_SI).write(d / "si.cif")
    (d / "qe.yaml").write_text(SETTINGS)
    plan = d / "P"
    assert main(["plan", "--structure", str(d / "si.cif"), "--supercell", "prim", "--order",
                 "2", "--order", "3", "--steps", "3", "--variant", "bundled", "--format",
                 "espresso-in", "--dft-settings", str(d / "qe.yaml"), "--out", str(plan)]) == 0
    assert main(["dft", "run", str(plan), "--jobs", "2"]) == 0
    assert main(["collect", str(plan), "--outputs", "dft/job_*/espresso.pwo"]) == 0
    # 5.47 A is not PBE's equilibrium at 20 Ry: measured there on purpose
    assert main(["derivatives", str(plan), "--allow-nonequilibrium"]) == 0
    return plan


def _frozen_phonon(base, e: np.ndarray, tmp_path: Path,
                   alphas: tuple[float, ...]) -> dict[float, float]:
    """Force along the mode ``e`` ``(N, 3)`` of ``base`` at amplitude alpha (A), by ASE's
    Espresso calculator."""
    from ase.calculators.espresso import Espresso, EspressoProfile

    out = {}
    for a in alphas:
        atoms = base.copy()
        atoms.positions += a * e
        atoms.calc = Espresso(
            profile=EspressoProfile(command="pw.x", pseudo_dir=str(PSEUDO_DIR)),
            directory=str(tmp_path / f"fp_{a:+.3f}"), pseudopotentials={"Si": UPF},
            input_data={"control": {"tprnfor": True},
                        "system": {"ecutwfc": ECUT, "ecutrho": 8 * ECUT},  # the plan default
                        "electrons": {"conv_thr": 1e-12}}, kpts=KPTS)
        out[a] = float(np.sum(atoms.get_forces() * e))
    return out


def test_pw_x_runs_the_plans_inputs_and_matches_a_frozen_phonon(si_plan, tmp_path):
    from anharmbench.observables.force_constants import load_derivative_set

    dset = load_derivative_set(si_plan / "derivatives.h5")
    ph = dset.phonopy()
    ph.run_qpoints([[0, 0, 0]])
    raman = float(ph.qpoints.frequencies[0][-1])
    # D(e, e, e) of order 3 along the Raman mode of the plan's own cell (which the
    # frozen phonon displaces too), sublattices moved apart along [111]: the cubic
    # invariant of the T2g mode is x y z, zero along a cube axis
    sc = dset.supercell(3)
    assert len(sc) == 2
    e = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) / np.sqrt(6)
    d3 = dset.bases[3].contract(dset.values[3], [e.reshape(-1)] * 3)

    h = 0.02
    f = _frozen_phonon(sc, e, tmp_path, (-2 * h, -h, h, 2 * h))
    # f(a) = -k a - D3 a^2 / 2 - ...: Richardson of the odd and even parts
    k = -(4 * (f[h] - f[-h]) / (2 * h) - (f[2 * h] - f[-2 * h]) / (4 * h)) / 3
    c3 = -(4 * (f[h] + f[-h]) / h**2 - (f[2 * h] + f[-2 * h]) / (4 * h**2)) / 3
    mass = 28.085
    nu = 15.633302 * np.sqrt(k / mass)
    print(f"Raman mode: plan route {raman:.4f} THz, frozen phonon {nu:.4f} THz; "
          f"D3(e,e,e): plan route {d3:.4f}, frozen phonon {c3:.4f} eV/A^3")
    assert raman == pytest.approx(nu, abs=0.05)
    assert d3 == pytest.approx(c3, rel=0.03)


def test_unconverged_job_is_refused_and_rerun_on_request(si_plan, tmp_path, capsys):
    """A job whose SCF stops unconverged is marked failed (never done), reported, left
    alone by the next run, rerun with --rerun-failed; collect refuses its output."""
    from anharmbench.dft.runner import DONE, FAILED

    plan = tmp_path / "P"
    shutil.copytree(si_plan, plan)
    job = plan / "dft" / "job_00003"
    for name in (DONE, "espresso.pwo"):
        (job / name).unlink()
    pwi = job / "espresso.pwi"
    good = pwi.read_text()
    pwi.write_text(good.replace("&ELECTRONS\n", "&ELECTRONS\n   electron_maxstep = 1\n"
                                "   scf_must_converge = .false.\n"))
    capsys.readouterr()
    assert main(["dft", "run", str(plan), "--only", "3"]) == 1
    out = capsys.readouterr().out
    assert "job_00003" in out and "did not converge" in out and "--rerun-failed" in out
    assert (job / FAILED).is_file() and not (job / DONE).is_file()
    assert main(["collect", str(plan), "--outputs", "dft/job_0000[3]/espresso.pwo"]) == 2
    assert "did not converge" in capsys.readouterr().err
    # the next run leaves it alone; --rerun-failed runs it again (fixed input)
    assert main(["dft", "run", str(plan), "--only", "3"]) == 1
    assert "earlier run" in capsys.readouterr().out
    pwi.write_text(good)
    assert main(["dft", "run", str(plan), "--only", "3", "--rerun-failed"]) == 0
    assert (job / DONE).is_file() and not (job / FAILED).is_file()


def test_dft_plan_has_no_potential_and_refuses_evaluation(si_plan, capsys):
    assert not list(si_plan.glob("chunk_*")) and not (si_plan / "jobarray.sh").exists()
    assert main(["derivatives", str(si_plan), "--evaluate"]) == 2
    assert "is a DFT plan" in capsys.readouterr().err


@pytest.mark.parametrize("bad,words", [
    ("pseudopotentials: {}", ["pseudopotentials", "Si"]),
    ("input_data: {system: {}}", ["ecutwfc"]),
    ("kpts: [4, 4]", ["kpts"]),
    ("smearing: gauss", ["smearing", "Extra inputs"]),
    ("pseudo_dir: /nonexistent", ["not found"]),
])
def test_bad_settings_are_refused_before_writing(bad, words, tmp_path, capsys):
    import yaml
    from ase.build import bulk

    bulk("Si", "diamond", a=A_SI).write(tmp_path / "si.cif")
    settings = yaml.safe_load(SETTINGS)
    settings.update(yaml.safe_load(bad))
    (tmp_path / "qe.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "P"
    assert main(["plan", "--structure", str(tmp_path / "si.cif"), "--supercell", "prim",
                 "--order", "2", "--steps", "3", "--format", "espresso-in", "--dft-settings",
                 str(tmp_path / "qe.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert not out.exists()
