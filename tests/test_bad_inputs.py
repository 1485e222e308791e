"""Bad and unusual inputs, as a new user gives them: one clear line, exit status 2 (1 for
"not finished yet"), nothing on disk changed, and never a silently wrong result.

Each case runs the CLI (``anharmbench.cli.main``) and asserts the exit status, that the
message names the problem, and that the files under the test's folder are byte for byte
what they were before (a snapshot of every file's SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

from anharmbench.cli import main
from anharmbench.lammps.deck import run_deck
from anharmbench.potentials.crg import crg_potential

A0 = 5.580101  # CRG equilibrium lattice constant (anharmbench.reference_check)
# the smallest plan of the default: primitive ThO2, orders 2 and 3, 3 steps (13 configurations)
PLAN = ["plan", "--supercell", "prim", "--order", "2", "--order", "3", "--steps", "3"]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (directories as ``dir``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stdout+stderr of ``anharmbench ARGV`` (argparse exits included)."""
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    cap = capsys.readouterr()
    return status, cap.out + cap.err


def refused(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str], *words: str,
            status: int = 2) -> str:
    """Run ``argv``; assert ``status``, every word in the message, and no change on disk."""
    before = snapshot(root)
    got, text = run(argv, capsys)
    assert got == status, text
    low = text.lower()
    for w in words:
        assert w.lower() in low, f"{w!r} not in: {text}"
    assert "Traceback" not in text
    assert snapshot(root) == before, "the refused command changed files"
    return text


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An evaluated plan directory of the default (CRG at its equilibrium)."""
    d = tmp_path_factory.mktemp("base") / "P"
    assert main([*PLAN, "--out", str(d)]) == 0
    assert main(["derivatives", str(d), "--evaluate"]) == 0
    return d


@pytest.fixture
def fresh_plan(base_plan: Path, tmp_path: Path) -> Path:
    """A copy of the base plan without its results."""
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    for f in ("results.h5", "derivatives.h5"):
        (d / f).unlink()
    return d


# ------------------------------------------------------------------- numbers (argparse)
@pytest.mark.parametrize(("extra", "words"), [
    (["--chunk-size", "0"], ["--chunk-size", ">= 1"]),
    (["--chunk-size", "-5"], ["--chunk-size", ">= 1"]),
    (["--steps", "1"], ["--steps", ">= 3"]),
    (["--steps", "2"], ["--steps", ">= 3"]),
    (["--h-min", "0"], ["--h-min", "(0"]),
    (["--h-min", "nan"], ["--h-min"]),
    (["--h-max", "5"], ["--h-max", "1]"]),
    (["--overdetermination", "0.5"], ["--overdetermination"]),
    (["--a", "-1"], ["--a"]),
    (["--a", "inf"], ["--a"]),
    (["--jobs-per-task", "0"], ["--jobs-per-task"]),
    (["--steps", "three"], ["--steps", "integer"]),
])
def test_plan_numbers_out_of_range(extra, words, tmp_path, capsys):
    argv = [*PLAN, *extra, "--out", str(tmp_path / "out")]  # the last --steps wins
    refused(argv, tmp_path, capsys, *words)
    assert not (tmp_path / "out").exists()


def test_order_outside_2_to_6(tmp_path, capsys):
    refused(["plan", "--order", "7", "--count-only"], tmp_path, capsys, "--order",
            "invalid choice")


def test_window_upside_down(tmp_path, capsys):
    refused([*PLAN, "--h-min", "0.05", "--h-max", "0.01", "--out", str(tmp_path / "o")],
            tmp_path, capsys, "h_min <= h_max")


@pytest.mark.parametrize(("supercell", "word"), [
    ("1 0 0 0 1 0 1 1 0", "singular"),
    ("XYZ", "XYZ"),
    ("1 2 3", "9 integers"),
])
def test_bad_supercell(supercell, word, tmp_path, capsys):
    refused(["plan", "--order", "2", "--supercell", supercell, "--count-only"], tmp_path,
            capsys, word)


def test_qtuple_of_the_wrong_length(tmp_path, capsys):
    refused(["plan", "--order", "3", "--supercell", "2I", "--qtuple", "L", "L", "--count-only"],
            tmp_path, capsys, "q-tuple", "order is 3")


@pytest.mark.parametrize(("argv", "word"), [
    (["derivatives", "D", "--workers", "0"], "--workers"),
    (["observables", "f.h5", "--mesh", "0", "--out", "o"], "--mesh"),
    (["observables", "f.h5", "--temperatures", "-5", "--out", "o"], "--temperatures"),
    (["deck", "o", "--configurations", "0"], "--configurations"),
    (["deck", "o", "--rattle", "-0.1"], "--rattle"),
])
def test_other_numbers_out_of_range(argv, word, tmp_path, capsys):
    refused(argv, tmp_path, capsys, word)


# ------------------------------------------------------------------------- structures
def _structure_file(tmp_path: Path, kind: str) -> Path:
    atoms = bulk("ThO2", "fluorite", a=A0)
    path = tmp_path / "s.extxyz"
    if kind == "nan":
        atoms.positions[1, 0] = np.nan
    elif kind == "overlap":
        atoms = atoms + Atoms("O", positions=[atoms.positions[1] + 0.1])
    elif kind == "slab":
        atoms.pbc = [True, True, False]
    elif kind == "unknown-element":
        path = tmp_path / "POSCAR"
        path.write_text("ThO2\n1.0\n0 2.79 2.79\n2.79 0 2.79\n2.79 2.79 0\nXx O\n1 2\n"
                        "Direct\n0 0 0\n0.25 0.25 0.25\n0.75 0.75 0.75\n")
        return path
    elif kind == "garbage":
        path = tmp_path / "s.cif"
        path.write_text("this is not a crystal\n")
        return path
    write(path, atoms, format="extxyz")
    return path


@pytest.mark.parametrize(("kind", "words"), [
    ("nan", ["non-finite", "atom"]),  # spglib used to segfault on this
    ("overlap", ["overlapping", "apart"]),
    ("slab", ["periodic", "pbc"]),
    ("unknown-element", ["cannot read", "POSCAR"]),
    ("garbage", ["cannot read", "s.cif"]),
])
def test_bad_structure_files(kind, words, tmp_path, capsys):
    path = _structure_file(tmp_path, kind)
    refused(["plan", "--structure", str(path), "--order", "2", "--supercell", "prim",
             "--out", str(tmp_path / "o")], tmp_path, capsys, *words)


def test_missing_structure_file(tmp_path, capsys):
    refused(["plan", "--structure", str(tmp_path / "nope.cif"), "--order", "2",
             "--count-only"], tmp_path, capsys, "does not exist", "nope.cif")


# ------------------------------------------------------------------------- potentials
def _potential_json(tmp_path: Path, data: object, name: str = "pot.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_potential_file_missing(tmp_path, capsys):
    refused([*PLAN, "--potential", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")],
            tmp_path, capsys, "nope.json")


def test_potential_file_not_json(tmp_path, capsys):
    p = _potential_json(tmp_path, "{elements: [Th, O]")
    refused([*PLAN, "--potential", str(p), "--out", str(tmp_path / "o")], tmp_path, capsys,
            "pot.json", "json")


def test_potential_file_names_a_missing_file(tmp_path, capsys):
    p = _potential_json(tmp_path, {"elements": ["Th", "O"], "pair_style": "eam/alloy",
                                   "pair_coeff": ["* * ThO2.eam Th O"],
                                   "files": ["ThO2.eam"]})
    refused([*PLAN, "--potential", str(p), "--out", str(tmp_path / "o")], tmp_path, capsys,
            "ThO2.eam", "does not exist")


def test_potential_without_an_element_of_the_crystal(tmp_path, capsys):
    p = _potential_json(tmp_path, {"elements": ["Th"], "pair_style": "zero 5.0",
                                   "pair_coeff": ["* *"]})
    refused([*PLAN, "--potential", str(p), "--out", str(tmp_path / "o")], tmp_path, capsys,
            "['O']", "does not describe")


def test_potential_with_swapped_elements_is_refused_by_its_stress(tmp_path, capsys):
    """Fluorite forces vanish by symmetry whatever the potential: only the stress shows
    that Th and O were given to the CRG surface in the wrong order."""
    pot = crg_potential().to_dict()
    pot["elements"] = list(reversed(pot["elements"]))
    pot["masses"] = {}
    pot["charges"] = {k: -v for k, v in pot.get("charges", {}).items()} or {}
    if not pot["charges"]:
        pot.pop("charges")
    p = _potential_json(tmp_path, pot)
    d = tmp_path / "P"
    assert run([*PLAN, "--potential", str(p), "--out", str(d)], capsys)[0] == 0
    text = refused(["derivatives", str(d), "--evaluate"], tmp_path / "P" / "chunk_0000",
                   capsys, "not at equilibrium", "stress", "GPa")
    assert "--allow-nonequilibrium" in text
    assert not (d / "derivatives.h5").exists()


# ------------------------------------------------------- plan directories and identity
def test_replanning_with_another_lattice_constant_is_refused(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    refused([*PLAN, "--a", "5.6", "--out", str(d)], tmp_path, capsys, "holds another plan",
            "lattice", "--force")


def test_replanning_with_another_potential_is_refused(base_plan, tmp_path, capsys):
    pot = crg_potential().to_dict()
    pot["name"] = "CRG-copy"
    p = _potential_json(tmp_path, pot)
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    refused([*PLAN, "--potential", str(p), "--out", str(d)], tmp_path, capsys,
            "holds another plan", "potential (name)")


def test_replanning_with_other_steps_is_refused(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    argv = [*PLAN, "--steps", "4", "--out", str(d)]
    refused(argv, tmp_path, capsys, "n_steps: 3 -> 4")


def test_replanning_the_same_plan_keeps_its_results(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    before = snapshot(tmp_path)
    assert run([*PLAN, "--out", str(d)], capsys)[0] == 0
    assert snapshot(tmp_path) == before


def test_force_discards_the_old_plan_and_its_results(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    assert run([*PLAN, "--a", "5.6", "--out", str(d), "--force"], capsys)[0] == 0
    assert not (d / "results.h5").exists() and not (d / "derivatives.h5").exists()
    # a/2 of the FCC primitive cell with --a 5.6
    assert json.loads((d / "plan.json").read_text())["primitive"]["cell"][0][1] == 2.8


def test_plan_into_a_directory_that_is_not_a_plan(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    refused([*PLAN, "--out", str(tmp_path / "mine")], tmp_path, capsys, "not a plan directory")


def test_derivatives_of_a_folder_that_is_not_a_plan(tmp_path, capsys):
    refused(["derivatives", str(tmp_path)], tmp_path, capsys, "not a plan directory")


def test_derivatives_before_anything_was_evaluated(fresh_plan, capsys):
    refused(["derivatives", str(fresh_plan)], fresh_plan, capsys, "results.h5 not found")


def test_derivatives_with_configurations_missing(fresh_plan, capsys):
    run_deck(fresh_plan / "chunk_0000")
    run_deck(fresh_plan / "reference")
    assert run(["collect", str(fresh_plan)], capsys)[0] == 0
    # all 13 fit in one chunk: remove half of them from the store by hand
    import h5py

    with h5py.File(fresh_plan / "results.h5", "r+") as h5:
        h5["done"][5:] = False
    refused(["derivatives", str(fresh_plan)], fresh_plan, capsys, "not evaluated yet")


def test_results_of_another_lattice_constant_are_refused(base_plan, tmp_path, capsys):
    """The same plan (same displacements) at another a: its results.h5 must not be used."""
    other = tmp_path / "other"
    assert run([*PLAN, "--a", "5.6", "--out", str(other)], capsys)[0] == 0
    shutil.copy(base_plan / "results.h5", other / "results.h5")
    refused(["derivatives", str(other)], tmp_path, capsys, "another structure or potential")


def test_damaged_results_file(fresh_plan, capsys):
    (fresh_plan / "results.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    refused(["derivatives", str(fresh_plan)], fresh_plan, capsys, "damaged", "results.h5")


def test_results_file_open_in_another_process(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); "
         "print('open', flush=True); time.sleep(60)", str(d / "results.h5")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        refused(["derivatives", str(d)], tmp_path, capsys, "open in another process")
    finally:
        holder.kill()
        holder.wait()


def test_half_written_plan_manifest(fresh_plan, capsys):
    text = (fresh_plan / "plan.json").read_text()
    (fresh_plan / "plan.json").write_text(text[: len(text) // 2])
    refused(["derivatives", str(fresh_plan)], fresh_plan, capsys, "plan.json", "not valid json")


def test_edited_plan_manifest(fresh_plan, capsys):
    m = json.loads((fresh_plan / "plan.json").read_text())
    m["job"]["h_range"] = [0.02, 0.08]
    (fresh_plan / "plan.json").write_text(json.dumps(m))
    refused(["derivatives", str(fresh_plan)], fresh_plan, capsys, "edited")


def test_evaluating_with_changed_potential_files_is_refused(fresh_plan, capsys):
    m = json.loads((fresh_plan / "plan.json").read_text())
    m["potential_hash"] = "0" * 64  # as if a file the potential reads had changed since
    m_text = json.dumps(m)
    (fresh_plan / "plan.json").write_text(m_text)
    refused(["derivatives", str(fresh_plan), "--evaluate"], fresh_plan, capsys, "edited")


# ------------------------------------------------------------------------- deck route
def test_collect_refuses_an_edited_potential_deck(fresh_plan, capsys):
    run_deck(fresh_plan / "chunk_0000")
    pin = fresh_plan / "chunk_0000" / "potential.in"
    pin.write_text(pin.read_text().replace("pair_style", "pair_style ", 1))
    text = refused(["collect", str(fresh_plan)], fresh_plan, capsys, "refused chunk_0000",
                   "potential.in", "differs")
    assert "not run yet" in text


def test_collect_refuses_a_deck_copied_from_another_plan(fresh_plan, tmp_path, capsys):
    other = tmp_path / "other"
    assert run([*PLAN, "--a", "5.6", "--out", str(other)], capsys)[0] == 0
    run_deck(other / "chunk_0000")
    shutil.rmtree(fresh_plan / "chunk_0000")
    shutil.copytree(other / "chunk_0000", fresh_plan / "chunk_0000")
    refused(["collect", str(fresh_plan)], fresh_plan, capsys, "refused chunk_0000",
            "configs.dump", "differs")


def test_collect_shows_lammps_own_error(fresh_plan, capsys):
    (fresh_plan / "chunk_0000" / "log.lammps").write_text(
        "LAMMPS (22 Jul 2025)\nERROR: Unrecognized pair style 'crg' (src/force.cpp:275)\n")
    refused(["collect", str(fresh_plan)], fresh_plan, capsys, "failed chunk_0000",
            "Unrecognized pair style", status=1)


def test_collect_reports_a_truncated_output(fresh_plan, capsys):
    run_deck(fresh_plan / "chunk_0000")
    e = fresh_plan / "chunk_0000" / "energies.dat"
    e.write_text("".join(e.read_text().splitlines(keepends=True)[:4]))
    before = snapshot(fresh_plan)
    status, text = run(["collect", str(fresh_plan)], capsys)
    assert status == 1 and "failed chunk_0000" in text and "interrupted" in text
    assert "results.h5" not in {p.split("/")[0] for p in snapshot(fresh_plan)} - set(before)


def test_deck_route_checks_equilibrium_by_stress(tmp_path, capsys):
    """A cell 0.3 % too large (1.7 GPa on CRG) is refused on the deck route too; insisting
    marks the output."""
    d = tmp_path / "P"
    assert run([*PLAN, "--a", "5.597", "--out", str(d)], capsys)[0] == 0
    for deck in ("chunk_0000", "reference"):
        run_deck(d / deck)
    assert run(["collect", str(d)], capsys)[0] == 0
    refused(["derivatives", str(d)], tmp_path, capsys, "stress 1.71 GPa", "reference deck")
    assert run(["derivatives", str(d), "--allow-nonequilibrium"], capsys)[0] == 0
    from anharmbench.derivatives.io import read_derivatives_file

    eq = json.loads(read_derivatives_file(d / "derivatives.h5").attrs["equilibrium"])
    assert eq["accepted"] and not eq["passed"] and abs(eq["max_stress_gpa"] - 1.7125) < 1e-3


def test_evaluate_uses_collected_decks(fresh_plan, capsys):
    run_deck(fresh_plan / "chunk_0000")
    status, text = run(["derivatives", str(fresh_plan), "--evaluate"], capsys)
    assert status == 0
    assert "measured" not in text  # every configuration came from the deck's outputs
    assert "reference at equilibrium" in text


def test_jobarray_runs_from_a_spool_copy(tmp_path, capsys):
    """Run from a scheduler's spool copy with no venv on PATH, the script finds the plan
    directory and the wheel's lmp by the absolute paths it was written with."""
    plan = tmp_path / "Q"
    assert run([*PLAN, "--out", str(plan)], capsys)[0] == 0
    spool = tmp_path / "spool" / "jobarray.sh"
    spool.parent.mkdir()
    shutil.copy(plan / "jobarray.sh", spool)
    env = {"PATH": "/usr/bin:/bin", "TASK_ID": "1"}  # no venv on PATH: the script names lmp
    proc = subprocess.run(["bash", str(spool)], env=env, cwd=tmp_path, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (plan / "reference" / "energies.dat").is_file()  # task 1 is the reference deck


# --------------------------------------------------------------- executors and configs
def test_unreachable_dask_scheduler(base_plan, tmp_path, capsys):
    d = tmp_path / "P"
    shutil.copytree(base_plan, d)
    import h5py

    with h5py.File(d / "results.h5", "r+") as h5:
        h5["done"][0] = False
    t0 = time.perf_counter()
    before = snapshot(tmp_path)
    refused(["derivatives", str(d), "--evaluate", "--executor", "dask", "--address",
             "tcp://127.0.0.1:9"], d / "chunk_0000", capsys, "cannot reach the Dask scheduler")
    changed = {k for k, v in snapshot(tmp_path).items() if before.get(k) != v}
    assert changed == set(), changed
    # a guard against a hang, not a speed test: the executor's connect timeout is 10 s
    assert time.perf_counter() - t0 < 60


def test_empty_study_config(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("# nothing yet\n")
    refused(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o")], tmp_path,
            capsys, "is empty")


def test_study_config_model_without_pair_style(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(
        "models:\n  - {name: M, kind: lammps, elements: [Th, O], pair_coeff: ['* *']}\n")
    refused(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o")], tmp_path,
            capsys, "pair_style")


def test_import_of_a_missing_dataset(tmp_path, capsys):
    refused(["import", str(tmp_path / "phono3py_disp.yaml"), "--out", str(tmp_path / "o")],
            tmp_path, capsys, "phono3py_disp.yaml")


def test_observables_of_a_missing_file(tmp_path, capsys):
    refused(["observables", str(tmp_path / "d.h5"), "--out", str(tmp_path / "o")], tmp_path,
            capsys, "d.h5")


def test_observables_of_a_half_written_file(base_plan, tmp_path, capsys):
    import h5py

    f = tmp_path / "derivatives.h5"
    shutil.copy(base_plan / "derivatives.h5", f)
    with h5py.File(f, "r+") as h5:
        h5.attrs["complete"] = False
    refused(["observables", str(f), "--out", str(tmp_path / "o")], tmp_path, capsys,
            "derivatives.h5")


# ------------------------------------------------------------------ the CLI's own rules
def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys,
                                                                     monkeypatch):
    import anharmbench.cli as cli

    def broken(args: object) -> int:
        raise TypeError("unsupported operand")

    parser = cli.build_parser

    def patched():  # noqa: ANN202 - the parser with 'doctor' broken
        p = parser()
        p._subparsers._group_actions[0].choices["doctor"].set_defaults(func=broken)
        return p

    monkeypatch.setattr(cli, "build_parser", patched)
    status, text = run(["doctor"], capsys)
    assert status == 3 and "internal error (TypeError: unsupported operand)" in text
    assert "--debug" in text and "Traceback" not in text
    with pytest.raises(TypeError):
        main(["doctor", "--debug"])
