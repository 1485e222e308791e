"""The displacement generator: plan directories of LAMMPS decks, collection, fit, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from anharmbench.cli import main
from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.derivatives.workflow import (
    DerivativeJob,
    collect,
    evaluate_in_process,
    fit_directory,
    load_derivatives,
    prepare,
    write_plan_directory,
)
from anharmbench.lammps.deck import lmp_executable, run_deck
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import CONVENTIONAL, NotAtEquilibriumError, tho2_primitive

A0 = 5.580101


@pytest.fixture(scope="module")
def prepared():
    job = DerivativeJob(supercell=CONVENTIONAL, orders=(2, 3), n_steps=4)
    return prepare(job, tho2_primitive(A0))


def test_decks_run_by_lmp_equal_in_process(tmp_path, prepared):
    """Every chunk run by the standalone lmp binary gives the in-process derivatives."""
    potential = crg_potential()
    a, b = tmp_path / "decks", tmp_path / "inproc"
    write_plan_directory(a, prepared, potential, chunk_size=40)
    shutil.copytree(a, b)

    rep = collect(a)
    assert rep.n_done == 0 and len(rep.missing) == len(rep.finished) + len(rep.missing)
    manifest = json.loads((a / "plan.json").read_text())
    # half of the chunks as tasks of the plan's job-array script, half by run_deck
    lmp = lmp_executable()
    env = {**os.environ, "LMP": " ".join(lmp)} if len(lmp) == 1 else None
    for i, chunk in enumerate(manifest["chunks"]):
        if i % 2 == 0 and env is not None:
            subprocess.run(["bash", str(a / "jobarray.sh")], env={**env, "TASK_ID": str(i)},
                           check=True)
        else:
            run_deck(a / chunk["name"])
    run_deck(a / "reference")  # the equilibrium check of the deck route
    rep = collect(a)
    assert rep.missing == [] and rep.n_done == rep.n_total == prepared.plan.n_evaluations
    res_decks = fit_directory(a)
    # the reference deck's forces and stress (CRG at its equilibrium a: ~2e-5 GPa)
    eq = json.loads(read_derivatives_file(a / "derivatives.h5").attrs["equilibrium"])
    assert eq["checked"] and eq["source"] == "reference deck"
    assert eq["max_force"] < 1e-8 and eq["max_stress_gpa"] < 1e-3

    m = evaluate_in_process(b)
    assert m.n_evaluated == prepared.plan.n_evaluations
    res_inproc = fit_directory(b)
    for n in (2, 3):
        np.testing.assert_allclose(res_decks.values[n], res_inproc.values[n], rtol=1e-9, atol=1e-9)
    stored = load_derivatives(a / "derivatives.h5")
    np.testing.assert_array_equal(stored[3]["values"], res_decks.values[3])
    assert list(stored[2]["labels"]) == res_decks.labels[2]


def test_partial_run_resumes_without_reevaluating(tmp_path, prepared):
    potential = crg_potential()
    d = tmp_path / "plan"
    write_plan_directory(d, prepared, potential, chunk_size=40)
    run_deck(d / "chunk_0000")
    rep = collect(d)
    assert rep.n_done == 40 and "chunk_0000" not in rep.missing
    with pytest.raises(ValueError, match="not evaluated yet"):
        fit_directory(d)
    m = evaluate_in_process(d)
    assert m.n_evaluated == prepared.plan.n_evaluations - 40  # finished ones are kept


def test_edited_plan_directory_is_refused(tmp_path, prepared):
    d = tmp_path / "plan"
    write_plan_directory(d, prepared, crg_potential(), chunk_size=1000)
    manifest = json.loads((d / "plan.json").read_text())
    manifest["job"]["n_steps"] = 5
    (d / "plan.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="hash"):
        collect(d)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--order", "3", "--supercell", "1 0 0 0 1 0 1 1 0"], "singular"),
        (["--order", "3", "--steps", "2"], "must be >= 3"),
    ],
)
def test_bad_job_input(args, message, capsys):
    try:
        status = main(["plan", "--count-only", *args])
    except SystemExit as exc:  # argparse's own range checks
        status = exc.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_count_only_cli_small(capsys):
    assert main(["plan", "--supercell", "SC", "--order", "2", "--order", "3", "--count-only"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "irreducible derivatives: 46"  # 9 + 37, see tests/test_invariants.py
    assert int(out[1].split(":")[1]) > 0


def test_count_only_cli(capsys):
    """The issue's example: 3rd order in the 24-atom 2I cell (plan building takes ~5 s)."""
    assert main(["plan", "--supercell", "2 0 0 0 2 0 0 0 2", "--order", "3", "--count-only"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "irreducible derivatives: 155"
    assert out[1].startswith("evaluations: ")


def test_auto_steps_move_a_too_large_window_down(tmp_path, capsys):
    """Started far too large (0.1..0.8 A, where the h^4 terms spoil the quadratic tail), the
    automatic choice moves the window down; the evaluations it made are stored, so the fit
    needs no more."""
    out = tmp_path / "auto"
    args = ["plan", "--supercell", "prim", "--order", "3", "--h-min", "0.1", "--h-max", "0.8",
            "--auto-steps", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    job = json.loads((out / "plan.json").read_text())["job"]
    lo, hi = job["h_ranges"]["3"]
    assert hi < 0.8 and lo < 0.1
    assert f"order 3: steps {lo:.4g}..{hi:.4g} A" in text
    assert "stored the" in text
    res = fit_directory(out)  # everything is in results.h5 already
    assert float(res.relative_uncertainty[3].max()) < 1e-5
    assert float(res.relative_h2[3].max()) < 0.1


def test_structure_off_equilibrium_is_refused(tmp_path):
    """An internal coordinate off its equilibrium value (O shifted along x) is refused."""
    prim = tho2_primitive(A0)
    prim.positions[1] += [0.02, 0.0, 0.0]
    job = DerivativeJob(supercell=CONVENTIONAL, orders=(2,), n_steps=3)
    d = write_plan_directory(tmp_path / "p", prepare(job, prim), crg_potential())
    with pytest.raises(NotAtEquilibriumError, match="residual force .* on atom"):
        evaluate_in_process(d)
