"""The "smaller" cases of issue 30, as a new user meets them: one clear line that says what
is wrong and what to do, the right exit status, and nothing on disk changed.

1. A truncated ``results.h5`` is *damaged* (delete it, run again; other results are kept),
   not "open in another process" -- which is what a real lock held by another process is.
2. ``anharmbench train`` on a folder that is not a dataset says what a dataset folder holds
   and which command makes one.
3. Relative file paths in a potential JSON are read from the JSON file's folder (also in
   ``pair_coeff``); a missing one is named with the JSON file, the key and the resolved path.
4. An unknown element in ``crystal.structure`` is refused with the symbol and the config key
   before the study starts (it was "internal error (KeyError)").
5. ``analysis/observables_figures.py`` ends in one line, exit status 2, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import h5py
import numpy as np
import pytest

from anharmbench.cli import main
from anharmbench.potentials import LammpsPotential
from anharmbench.potentials.crg import crg_potential

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "analysis" / "observables_figures.py"
# the smallest plan: primitive ThO2, order 2, 3 steps (12 configurations, seconds)
PLAN = ["plan", "--supercell", "prim", "--order", "2", "--steps", "3"]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (directories as ``dir``)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir()
            else hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


def _values(path: Path) -> dict[str, np.ndarray]:
    """Each order's derivative values in a ``derivatives.h5``."""
    with h5py.File(path, "r") as h5:
        return {k: np.asarray(h5[k]["values"]) for k in h5 if k.startswith("order_")}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stdout+stderr of ``anharmbench ARGV`` (argparse exits included)."""
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    cap = capsys.readouterr()
    return status, cap.out + cap.err


def check_refused(status: int, text: str, *words: str, absent: tuple[str, ...] = (),
                  expected: int = 2) -> None:
    """The exit status, every word (case-insensitive), none of ``absent``, no traceback."""
    assert status == expected, text
    low = text.lower()
    for w in words:
        assert w.lower() in low, f"{w!r} not in: {text}"
    for w in absent:
        assert w.lower() not in low, f"{w!r} in: {text}"
    assert "Traceback" not in text, text


def refused(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str], *words: str,
            absent: tuple[str, ...] = ()) -> str:
    """Run ``argv``: status 2, the words, and no file under ``root`` changed."""
    before = snapshot(root)
    status, text = run(argv, capsys)
    check_refused(status, text, *words, absent=absent)
    assert snapshot(root) == before, "the refused command changed files"
    return text


# ------------------------------------------------------------ 1. a damaged results.h5
@pytest.fixture(scope="module")
def evaluated_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plan directory evaluated in process (CRG at its equilibrium)."""
    d = tmp_path_factory.mktemp("plan") / "P"
    assert main([*PLAN, "--out", str(d)]) == 0
    assert main(["derivatives", str(d), "--evaluate"]) == 0
    return d


@pytest.fixture
def plan_copy(evaluated_plan: Path, tmp_path: Path) -> Path:
    d = tmp_path / "P"
    shutil.copytree(evaluated_plan, d)
    return d


@pytest.mark.parametrize("evaluate", [False, True], ids=["fit", "evaluate"])
def test_truncated_results_file_is_damaged_not_busy(plan_copy, capsys, evaluate):
    """h5py's "truncated file: eof = ..., sblock->base_addr ..." is not a lock (the old
    test matched "lock" in "sblock"); following the advice gives the same derivatives."""
    store = plan_copy / "results.h5"
    size = store.stat().st_size
    with open(store, "r+b") as fh:  # a copy or a write cut short
        fh.truncate(size // 2)
    argv = ["derivatives", str(plan_copy), *(["--evaluate"] if evaluate else [])]
    text = refused(argv, plan_copy.parent, capsys, "results.h5", "damaged", "truncated",
                   f"{size // 2} of its {size} bytes", "delete it", "run the same command",
                   "derivatives.h5", "kept", absent=("another process",))
    assert len(text.strip().splitlines()) == 1, text
    # the advice works: without the file, the run evaluates again and fits the same values
    want = _values(plan_copy / "derivatives.h5")
    store.unlink()
    assert run(["derivatives", str(plan_copy), "--evaluate"], capsys)[0] == 0
    got = _values(plan_copy / "derivatives.h5")
    assert got.keys() == want.keys() and want
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-10)


def test_results_file_that_is_not_hdf5_is_damaged(plan_copy, capsys):
    (plan_copy / "results.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    refused(["derivatives", str(plan_copy)], plan_copy.parent, capsys, "results.h5",
            "damaged", "not a readable HDF5 file", "delete it", absent=("another process",))


def test_results_file_locked_by_another_process_is_busy(plan_copy, capsys):
    """A real HDF5 lock held by another process: "open in another process", not damaged."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); "
         "print('open', flush=True); time.sleep(120)", str(plan_copy / "results.h5")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for argv in (["derivatives", str(plan_copy)],
                     ["derivatives", str(plan_copy), "--evaluate"]):
            refused(argv, plan_copy.parent, capsys, "results.h5", "open in another process",
                    "wait for it to finish", absent=("damaged", "truncated"))
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------- 2. train on a non-dataset folder
DATASET_WORDS = ("not a dataset folder", "train.xyz", "val.xyz", "test.xyz",
                 "manifest.json", "anharmbench dataset idmd|refmd")


@pytest.mark.parametrize("model", ["gap", "bpnn", "nequip", "chgnet", "sevennet"])
def test_train_on_a_folder_that_is_not_a_dataset(tmp_path, capsys, model):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("my notes\n")
    refused(["train", model, str(folder), str(tmp_path / "out")], tmp_path, capsys,
            str(folder), *DATASET_WORDS, absent=("no frames",))
    assert not (tmp_path / "out").exists()


def test_train_on_a_plan_directory(evaluated_plan, tmp_path, capsys):
    refused(["train", "gap", str(evaluated_plan), str(tmp_path / "out")],
            evaluated_plan.parent, capsys, *DATASET_WORDS, "plan directory")
    assert not (tmp_path / "out").exists()


def test_train_on_a_file_or_a_dataset_without_its_training_split(evaluated_plan, tmp_path,
                                                                 capsys):
    refused(["train", "gap", str(evaluated_plan / "plan.json"), str(tmp_path / "out")],
            evaluated_plan.parent, capsys, "plan.json", "is a file, not a dataset folder",
            "train.xyz", "anharmbench dataset")
    partial = tmp_path / "ds"
    partial.mkdir()
    (partial / "manifest.json").write_text(json.dumps({"kind": "idmd", "complete": True}))
    for name in ("val.xyz", "test.xyz"):
        (partial / name).write_text("")
    refused(["train", "gap", str(partial), str(tmp_path / "out")], tmp_path, capsys,
            "has no train.xyz", "a dataset folder holds", "anharmbench dataset")


# --------------------------------------------------- 3. relative paths in a potential JSON
@pytest.fixture
def crg_json_folder(tmp_path: Path) -> Path:
    """``pots/`` with the CRG setfl and a JSON naming it by a relative path, and ``cwd/``."""
    crg = crg_potential()
    pots = tmp_path / "pots"
    (pots / "tables").mkdir(parents=True)
    (tmp_path / "cwd").mkdir()
    shutil.copyfile(crg.files[0], pots / "tables" / "ThO2.eam.alloy")
    data = crg.to_dict()
    data["name"] = "mine"
    data["pair_coeff"] = ["* * coul/long", "* * eam/alloy tables/ThO2.eam.alloy O Th"]
    data["files"] = ["tables/ThO2.eam.alloy"]
    (pots / "mine.json").write_text(json.dumps(data))
    # the same with the file named in pair_coeff only
    (pots / "unlisted.json").write_text(json.dumps({**data, "files": []}))
    return tmp_path


@pytest.mark.parametrize("json_name", ["mine.json", "unlisted.json"])
def test_relative_file_in_a_potential_json_is_read_from_its_folder(
        crg_json_folder, evaluated_plan, capsys, monkeypatch, json_name):
    """Run from another folder: the potential's file is found beside the JSON, in process
    and in the plan's decks, and the derivatives are CRG's (the same file)."""
    monkeypatch.chdir(crg_json_folder / "cwd")
    full = str((crg_json_folder / "pots" / "tables" / "ThO2.eam.alloy").resolve())
    status, text = run([*PLAN, "--potential", f"../pots/{json_name}", "--out", "P"], capsys)
    assert status == 0, text
    status, text = run(["derivatives", "P", "--evaluate"], capsys)  # in process
    assert status == 0, text
    got = _values(crg_json_folder / "cwd" / "P" / "derivatives.h5")
    want = _values(evaluated_plan / "derivatives.h5")
    assert got.keys() == want.keys() and want
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9)
    # the deck carries a copy under the file's name (it runs in its own folder)
    deck = crg_json_folder / "cwd" / "P" / "chunk_0000"
    assert (deck / "ThO2.eam.alloy").read_bytes() == Path(full).read_bytes()
    assert "eam/alloy ThO2.eam.alloy O Th" in (deck / "potential.in").read_text()
    pot = LammpsPotential.from_file(Path("..") / "pots" / json_name)
    assert pot.files == (full,)
    assert pot.pair_coeff == ("* * coul/long", f"* * eam/alloy {full} O Th")


def test_missing_relative_file_names_the_json_the_key_and_the_resolved_path(
        crg_json_folder, capsys, monkeypatch):
    pots = crg_json_folder / "pots"
    data = json.loads((pots / "mine.json").read_text())
    data["files"] = ["tables/missing.eam.alloy"]
    data["pair_coeff"][1] = "* * eam/alloy tables/missing.eam.alloy O Th"
    (pots / "broken.json").write_text(json.dumps(data))
    monkeypatch.chdir(crg_json_folder / "cwd")
    resolved = str((pots / "tables" / "missing.eam.alloy").resolve())
    refused([*PLAN, "--potential", "../pots/broken.json", "--out", "P"], crg_json_folder,
            capsys, "../pots/broken.json", "'files'", "'tables/missing.eam.alloy'", resolved,
            "does not exist", "read from its folder")
    assert not (crg_json_folder / "cwd" / "P").exists()


def test_a_path_with_white_space_is_quoted_for_lammps(tmp_path):
    folder = tmp_path / "my pots"
    folder.mkdir()
    (folder / "Ar.table").write_text("")
    (folder / "ar.json").write_text(json.dumps({
        "elements": ["Ar"], "pair_style": "table linear 100",
        "pair_coeff": ["1 1 Ar.table LJ 8.0"], "files": ["Ar.table"]}))
    pot = LammpsPotential.from_file(folder / "ar.json")
    full = str((folder / "Ar.table").resolve())
    assert pot.files == (full,)
    assert pot.pair_coeff == (f'1 1 "{full}" LJ 8.0',)


# ------------------------------------------------ 4. unknown element in crystal.structure
POSCAR = """ThO2 with a typo
1.0
0.0 2.79 2.79
2.79 0.0 2.79
2.79 2.79 0.0
Th {second}
1 2
Direct
0 0 0
0.25 0.25 0.25
0.75 0.75 0.75
"""
XYZ = """3
Lattice="0.0 2.79 2.79 2.79 0.0 2.79 2.79 2.79 0.0" Properties=species:S:1:pos:R:3 pbc="T T T"
Th 0 0 0
Qq 1.395 1.395 1.395
O 4.185 4.185 4.185
"""


@pytest.mark.parametrize(("name", "text", "symbol"), [
    ("POSCAR", POSCAR.format(second="Xx"), "Xx"),
    ("cell.xyz", XYZ, "Qq"),
])
def test_unknown_element_in_crystal_structure(tmp_path, capsys, monkeypatch, name, text,
                                              symbol):
    """Refused when the config is read (before the reference check and before anything is
    written), naming the symbol, the file and the key; the plan command says the same."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    (tmp_path / "study.yaml").write_text(
        f"crystal: {{structure: {name}, lattice_constant: null}}\n")
    refused(["run", "study.yaml", "--out", "runs/x"], tmp_path, capsys, "study.yaml",
            "crystal.structure", f"unknown element '{symbol}'", name,
            absent=("internal error", "keyerror"))
    assert not (tmp_path / "runs").exists()
    refused(["plan", "--structure", name, "--order", "2", "--count-only"], tmp_path, capsys,
            f"unknown element '{symbol}'", name, absent=("internal error", "keyerror"))


def test_a_known_structure_file_passes_the_config_check(tmp_path, monkeypatch):
    """The same file with real symbols is read as the study's primitive cell."""
    from anharmbench.study.config import load_config
    from anharmbench.study.references import primitive_cell

    monkeypatch.chdir(tmp_path)
    (tmp_path / "POSCAR").write_text(POSCAR.format(second="O"))
    (tmp_path / "study.yaml").write_text("crystal: {structure: POSCAR, lattice_constant: null}\n")
    cell = primitive_cell(load_config("study.yaml"))
    assert cell.get_chemical_formula() == "O2Th"


# ------------------------------------------------------ 5. analysis/observables_figures.py
@pytest.fixture(scope="module")
def figures_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("observables_figures", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(module: ModuleType, argv: list[str], capsys: pytest.CaptureFixture[str]
            ) -> tuple[int, str]:
    capsys.readouterr()
    try:
        status = module.main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    cap = capsys.readouterr()
    return status, cap.out + cap.err


def test_observables_figures_from_the_command_line(tmp_path):
    """As the README runs it (its own process): a missing file is one line, exit 2."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--potential", "reference=nope.h5",
                           "--out", "figs"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    check_refused(proc.returncode, proc.stdout + proc.stderr, "nope.h5", "does not exist",
                  "--potential reference")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "words"), [
    ([], ["--out"]),
    (["--out", "figs"], ["--potential NAME=FILE", "--replot"]),
    (["--out", "figs", "--replot"], ["figs/data does not exist", "nothing to redraw"]),
    (["--out", "figs", "--potential", "plan_2i/derivatives.h5"],
     ["'plan_2i/derivatives.h5'", "expected NAME=FILE"]),
    (["--out", "figs", "--potential", "ref="], ["expected NAME=FILE"]),
    (["--out", "figs", "--potential", "ref=plan_2i/derivatives.h5"],
     ["plan_2i/derivatives.h5 does not exist"]),
])
def test_observables_figures_arguments(figures_script, tmp_path, capsys, monkeypatch, argv,
                                       words):
    monkeypatch.chdir(tmp_path)
    status, text = _script(figures_script, argv, capsys)
    check_refused(status, text, *words)
    assert sorted(tmp_path.iterdir()) == []


def test_observables_figures_bad_files(figures_script, evaluated_plan, tmp_path, capsys):
    """A folder, a file that is not HDF5, a name given twice, an empty data folder on
    --replot: each one line before any computing; no file of the plan changes."""
    before = snapshot(evaluated_plan)
    out = str(tmp_path / "figs")
    ders = str(evaluated_plan / "derivatives.h5")
    cases = [
        (["--potential", f"ref={evaluated_plan}"], ["is a folder", ders]),
        (["--potential", f"ref={evaluated_plan / 'plan.json'}"],
         ["plan.json", "not a readable HDF5 file"]),
        (["--potential", f"a={ders}", "--potential", f"a={ders}"], ["a given twice"]),
    ]
    for argv, words in cases:
        status, text = _script(figures_script, [*argv, "--out", out], capsys)
        check_refused(status, text, *words)
        assert not (tmp_path / "figs").exists(), argv
    (tmp_path / "figs" / "data" / "ref").mkdir(parents=True)
    status, text = _script(figures_script, ["--out", out, "--replot", "--potential", "ref"],
                           capsys)
    check_refused(status, text, "holds no observables of ref", "compute them first")
    assert snapshot(evaluated_plan) == before


def test_observables_figures_works_on_a_plan(figures_script, evaluated_plan, tmp_path, capsys):
    """Order 2 only: the dispersion is drawn, the rest is skipped with the reason."""
    out = tmp_path / "figs"
    status, text = _script(figures_script, [
        "--potential", f"ref={evaluated_plan / 'derivatives.h5'}", "--out", str(out),
        "--path-mesh", "4", "--loop-mesh", "4", "--kappa-mesh", "4"], capsys)
    assert status == 0, text
    assert "skipped kappa" in text and "order(s) [3] missing" in text
    assert (out / "figures" / "fig2_dispersion.png").is_file()
    status, text = _script(figures_script, ["--out", str(out), "--replot"], capsys)
    assert status == 0, text
    assert "dispersion:" in text
