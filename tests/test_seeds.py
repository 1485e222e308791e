"""Training seeds (issue 17, item 2): every trained model is trained once per seed, and
Table I pools a model's seeds into a mean and a sample standard deviation.

The pooled figures are checked against a separately written numpy computation on
replicas whose deviations from the reference are known by construction.
"""

from __future__ import annotations

import csv
import json
import shutil

import h5py
import numpy as np
import pytest
import yaml

from anharmbench.potentials.crg import crg_potential
from anharmbench.study import ConfigError, load_config, run_study
from anharmbench.study.labels import Label, model_label, parse_label
from anharmbench.study.report import error_table, write_table


def _crg_model(name: str) -> dict:
    d = crg_potential().to_dict()
    return {"name": name, "kind": "lammps", "elements": list(d["elements"]),
            "pair_style": d["pair_style"], "pair_coeff": list(d["pair_coeff"]),
            "atom_style": d["atom_style"], "charges": d["charges"],
            "kspace_style": d["kspace_style"], "commands": list(d["commands"]),
            "files": [str(crg_potential().files[0])]}


def _write(tmp_path, data: dict) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_labels_round_trip():
    assert model_label("GNN", "refmd") == "GNN@refmd"
    assert model_label("GNN", "refmd", 2025) == "GNN@refmd#2025"
    assert parse_label("GNN@refmd#2025") == Label("GNN", "refmd", 2025)
    assert parse_label("GNN@refmd#2025").model == "GNN@refmd"
    assert parse_label("reference") == Label("reference", "", None)
    assert parse_label("mine") == Label("mine", "", None)


def test_seeds_are_for_trained_models_and_names_keep_the_label_marks(tmp_path):
    bad = {"models": [{**_crg_model("mine"), "seeds": 3},
                      {"name": "a#b", "kind": "bpnn", "dataset": "refmd"}]}
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, bad))
    msg = str(err.value)
    assert "models.0.seeds: only trained models" in msg
    assert "models.1.name: 'a#b': '@' and '#' are reserved" in msg
    cfg = load_config(_write(tmp_path, {"models": [{"name": "B", "kind": "bpnn",
                                                    "dataset": "refmd", "seeds": 5}]}))
    from anharmbench.study.profiles import model_seeds

    assert model_seeds(cfg.models[0], cfg) == [2024, 2025, 2026, 2027, 2028]
    default = load_config(None)
    # the profile's number of seeds (issue 17: at least three)
    assert all(len(model_seeds(m, default)) == 3 for m in default.models)


@pytest.fixture(scope="module")
def reference_files(tmp_path_factory):
    """CRG's orders 2-3 in the primitive cell, through the study (a few seconds)."""
    tmp = tmp_path_factory.mktemp("ref")
    data = {"derivative_sets": [{"name": "prim", "supercell": "prim", "orders": [2, 3],
                                 "n_steps": 3}],
            "datasets": {"idmd": False, "refmd": False},
            "models": [_crg_model("copy")], "observables": {"enabled": False}}
    res = run_study(load_config(_write(tmp, data)), tmp / "study", verbose=False)
    return res.derivatives["reference"]["prim"]


def _replica(ref_file, dest, scale: dict[int, float]):
    """A copy of ``ref_file`` whose order-n values are multiplied by ``1 + scale[n]``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ref_file, dest)
    with h5py.File(dest, "r+") as h5:
        for n, s in scale.items():
            for key in ("values", "paper_values"):
                h5[f"order_{n}/{key}"][...] = h5[f"order_{n}/{key}"][...] * (1 + s)
    return dest


def test_table1_gives_mean_and_spread_over_seeds(reference_files, tmp_path):
    scales = {None: {2: 0.01, 3: 0.10}, 2025: {2: 0.03, 3: -0.20}, 2026: {2: -0.02, 3: 0.40}}
    files = {"reference": {"prim": reference_files}}
    # replicas before the first seed: the pooling does not depend on the dict's order
    for seed in (2026, 2025, None):
        files[model_label("M", "refmd", seed)] = {
            "prim": _replica(reference_files, tmp_path / str(seed) / "d.h5", scales[seed])}
    rows = {(r["model"], r["order"]): r for r in error_table(files)}
    with h5py.File(reference_files) as h5:
        for n in (2, 3):
            p = h5[f"order_{n}/paper_values"][...]
            d = h5[f"order_{n}/values"][...]
            # separately: |s| |p| is each replica's deviation, by construction
            per_seed = [abs(scales[s][n]) * np.sqrt(np.mean(p**2)) / np.mean(np.abs(p))
                        for s in (None, 2025, 2026)]
            frob = [abs(scales[s][n]) for s in (None, 2025, 2026)]  # ||s d|| / ||d||
            row = rows[("M", n)]
            assert row["n_seeds"] == 3 and row["n"] == len(p) == len(d)
            assert row["rel_rmse"] == pytest.approx(np.mean(per_seed), rel=1e-12)
            assert row["rel_rmse_spread"] == pytest.approx(np.std(per_seed, ddof=1), rel=1e-12)
            assert row["rel_frobenius"] == pytest.approx(np.mean(frob), rel=1e-12)
            assert row["rel_frobenius_spread"] == pytest.approx(np.std(frob, ddof=1), rel=1e-12)
            got = [float(v) for v in row["rel_rmse_per_seed"].split(";")]
            assert got == pytest.approx(per_seed, rel=1e-5)  # in seed order
            assert rows[("reference", n)]["n_seeds"] == 1
            assert np.isnan(rows[("reference", n)]["rel_rmse_spread"])
    md = write_table(list(rows.values()), tmp_path)["table_md"].read_text()
    r3 = rows[("M", 3)]
    assert f"{r3['rel_rmse']:.4f}±{r3['rel_rmse_spread']:.4f}" in md
    assert "| M (3 seeds) |" in md


@pytest.mark.slow  # trains three BPNNs (~4 min); the e2e study test covers the seeds path
def test_study_trains_once_per_seed_and_resumes_seed_by_seed(tmp_path):
    """Two seeds of a small BPNN: two training stages whose models differ, Table I's mean
    and spread are those of the two seeds' own figures; asking for a third seed trains only
    that one."""
    data = {
        "derivative_sets": [{"name": "prim", "supercell": "prim", "orders": [2],
                             "n_steps": 3}],
        "datasets": {"idmd": False, "refmd_supercell": "SC", "refmd_snapshots": 24},
        "models": [{"name": "B", "kind": "bpnn", "dataset": "refmd", "seeds": 2,
                    "settings": {"max_epochs": 3}}],
        "observables": {"enabled": False},
    }
    res = run_study(load_config(_write(tmp_path, data)), tmp_path / "study", verbose=False)
    assert {"train-B-refmd", "train-B-refmd-seed2025"} <= set(res.stages)
    assert {"B@refmd", "B@refmd#2025"} <= set(res.derivatives)
    row = next(r for r in csv.DictReader(open(res.report["table_csv"])) if r["model"] == "B")
    a, b = (float(v) for v in row["rel_rmse_per_seed"].split(";"))
    assert a != b  # the seeds give different models
    assert float(row["rel_rmse"]) == pytest.approx((a + b) / 2, rel=1e-5)
    assert float(row["rel_rmse_spread"]) == pytest.approx(abs(a - b) / np.sqrt(2), rel=1e-4)
    data["models"][0]["seeds"] = 3
    more = run_study(load_config(_write(tmp_path, data)), tmp_path / "study", verbose=False)
    ran = sorted(k for k, v in more.stages.items() if not v.skipped)
    assert ran == ["dataset-refmd-seed2026", "derivatives-B_refmd_2026-prim",
                   "train-B-refmd-seed2026"]  # the third seed draws its own data too
    row = next(r for r in csv.DictReader(open(more.report["table_csv"])) if r["model"] == "B")
    assert row["n_seeds"] == "3" and row["rel_rmse_per_seed"].startswith(f"{a:.6g};{b:.6g};")
    # each seed's dataset is one stage of MD on the reference (the stage of a later seed
    # once hashed the previous seed's trained model as its potential)
    stages = sorted((tmp_path / "study" / "stages").glob("dataset-refmd*"))
    assert len(stages) == 3
    crg = crg_potential().content_hash()
    assert all(json.loads((d / "inputs.json").read_text())["potential"] == crg for d in stages)


def test_each_seed_redraws_its_dataset_unless_pinned(tmp_path):
    """The spread over seeds includes the data: each training seed's reference-MD set is
    another trajectory (other frames), the first seed keeps the study's own set, and
    ``datasets.pin`` gives every seed that one set."""
    from ase.io import read

    from anharmbench.study.dataset_stages import refmd_stage
    from anharmbench.study.runner import StageRunner

    data = {"datasets": {"idmd": False, "refmd_supercell": "SC", "refmd_snapshots": 4},
            "models": [{"name": "B", "kind": "bpnn", "dataset": "refmd"}]}
    config = load_config(_write(tmp_path, data))
    pot = crg_potential()
    first, second = refmd_stage(config, pot, None), refmd_stage(config, pot, config.seed + 1)
    assert refmd_stage(config, pot, config.seed).inputs == first.inputs
    assert first.name == "dataset-refmd" and second.name == "dataset-refmd-seed2025"
    runner = StageRunner(tmp_path / "run", verbose=False)
    try:
        frames = [read(runner.run(s).directory / "dataset" / "train.xyz", index=":")
                  for s in (first, second)]
    finally:
        runner.close()
    a, b = (np.array([f.positions for f in fr]) for fr in frames)
    assert a.shape == b.shape and np.abs(a - b).max() > 0.05  # Angstrom: other frames
    pinned = load_config(_write(tmp_path, {**data, "datasets": {**data["datasets"],
                                                                "pin": True}}))
    again = refmd_stage(pinned, pot, pinned.seed + 1)
    assert again.name == "dataset-refmd"
    assert again.inputs == refmd_stage(pinned, pot, None).inputs
