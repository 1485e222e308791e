"""Issue 30: a folder reused with other inputs, and settings accepted and then ignored.

A :class:`~anharmbench.Benchmark` folder remembers what its results were measured with
(crystal, profile, job, potential or calculator fingerprint) and refuses other inputs,
naming stored vs now and the fix, without touching a file; a study config refuses every
key it would ignore (universal preset settings and datasets, a crystal beside DFT data,
model orders the reference lacks); ``plan --format`` refuses a format without a periodic
cell. Each case: the exception (or exit status), the message's key words, and the folder
unchanged (listing and SHA-256 of every file, before and after).

Cheap on purpose: the numpy CRG (an ASE calculator) on orders 2 of the 3-atom primitive
cell, measured once per module (~3 s); the config cases never build a model.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.calculators.emt import EMT

from anharmbench import Benchmark
from anharmbench.cli import main
from anharmbench.folder_record import FolderInputsError
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.crg_numpy import CRGNumpyCalculator
from anharmbench.potentials.fingerprint import potential_identity
from anharmbench.structures import tho2_primitive
from anharmbench.study import ConfigError, load_config
from anharmbench.study.models import universal_preset

SETS = {"prim": "prim"}
ORDERS = {"prim": [2]}


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path) -> SHA-256 of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _bench(directory: Path, **changes) -> Benchmark:
    args = {"crystal": tho2_primitive(), "reference": CRGNumpyCalculator(),
            "models": {"m": CRGNumpyCalculator()}, "profile": "quick"}
    args.update(changes)
    return Benchmark(args.pop("crystal"), args.pop("reference"), supercells=SETS,
                     orders=ORDERS, directory=directory, **args)


def _measure(bench: Benchmark) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tail-fit warnings of a four-step plan
        return bench.measure(progress=False)


def _measure_model(bench: Benchmark) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bench.measure(["m"], progress=False)  # a model needs no equilibrium


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """A folder with the reference and model 'm' measured (numpy CRG, quick)."""
    folder = tmp_path_factory.mktemp("measured")
    _measure(_bench(folder))
    return folder


@pytest.fixture
def folder(measured, tmp_path) -> Path:
    """A private copy of the measured folder."""
    out = tmp_path / "bench"
    shutil.copytree(measured, out)
    return out


def _refused(folder: Path, *words: str, **changes) -> str:
    """Measure on ``folder`` with ``changes``; expect FolderInputsError holding ``words``
    and no file changed; the message."""
    before = _snapshot(folder)
    with pytest.raises(FolderInputsError) as err:
        _measure(_bench(folder, **changes))
    msg = str(err.value)
    for w in (*words, "another directory", "overwrite=True"):
        assert w in msg, f"{w!r} not in:\n{msg}"
    assert _snapshot(folder) == before
    return msg


# ---------------------------------------------------------------- 1. a folder reused
def test_same_inputs_resume_without_writing(folder):
    """The same inputs reuse the stored results and write nothing."""
    before = _snapshot(folder)
    assert any(name.endswith("prim.inputs.json") for name in before)
    ders = _measure(_bench(folder))
    assert set(ders) == {"reference", "m"}
    assert _snapshot(folder) == before


def test_changed_crystal_is_refused(folder):
    msg = _refused(folder, "crystal: stored", "3.94573", "now", "3.9598",
                   crystal=tho2_primitive(5.6))
    assert "now O2Th" in msg


def test_other_calculator_under_the_same_label_is_refused(folder):
    """Another class (EMT) and the same class with other settings, both named."""
    msg = _refused(folder, "potential 'm'", "stored CRGNumpyCalculator", "now EMT",
                   models={"m": EMT()})
    assert "reference" not in msg.split("\n", 1)[1]  # only what differs is named
    _refused(folder, "potential 'm'", "alpha: stored 2.0, now 0.3",
             models={"m": CRGNumpyCalculator(alpha=0.3)})
    _refused(folder, "potential 'm'", "LAMMPS potential 'CRG-ThO2'",
             models={"m": crg_potential()})


def test_changed_profile_is_refused(folder):
    _refused(folder, "profile: stored 'quick', now 'paper'", "n_steps: stored 4, now 10",
             "variant: stored bundled, now lone", profile="paper")


class _Opaque(CRGNumpyCalculator):
    """The numpy CRG holding a value that cannot be compared (as a torch model would)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = object()


def test_unfingerprintable_calculator_needs_a_name(tmp_path):
    """A calculator with an opaque attribute is measured once (with a warning), then its
    stored results are refused until it is named; a named one resumes, another name is
    refused."""
    assert not potential_identity(_Opaque()).reliable
    assert "'model' is a object" in str(potential_identity(_Opaque()).why)
    folder = tmp_path / "bench"
    with pytest.warns(UserWarning, match="cannot be fingerprinted"):
        _bench(folder, models={"m": _Opaque()}).measure(["m"], progress=False)
    _refused(folder, "cannot be fingerprinted", "calculator_names", models={"m": _Opaque()})
    named = tmp_path / "named"
    _measure_model(_bench(named, models={"m": _Opaque()}, calculator_names={"m": "opaque v1"}))
    before = _snapshot(named)
    _measure_model(_bench(named, models={"m": _Opaque()}, calculator_names={"m": "opaque v1"}))
    assert _snapshot(named) == before
    _refused(named, "named 'opaque v1'", "named 'opaque v2'", models={"m": _Opaque()},
             calculator_names={"m": "opaque v2"})
    with pytest.raises(ValueError, match="not labels of ASE calculators"):
        _bench(named, calculator_names={"x": "y"})


def test_overwrite_measures_the_new_inputs(folder):
    """overwrite=True discards the stored results of what changed and measures again:
    the new crystal's derivatives, not the stored ones; then they are the stored ones."""
    old = _measure_model(_bench(folder))
    strained = tho2_primitive(5.6)
    new = _measure_model(_bench(folder, crystal=strained, overwrite=True))
    assert not np.allclose(new["m"].values[2], old["m"].values[2])
    before = _snapshot(folder)
    again = _measure_model(_bench(folder, crystal=strained))  # stored now: reused
    np.testing.assert_array_equal(again["m"].values[2], new["m"].values[2])
    assert _snapshot(folder) == before
    with pytest.raises(FolderInputsError, match="crystal: stored"):
        _measure_model(_bench(folder))


def test_results_without_a_record_are_refused(folder):
    """A folder written before the record existed cannot be matched to any inputs."""
    for rec in folder.rglob("*.inputs.json"):
        rec.unlink()
    _refused(folder, "without a record of their inputs")


# ---------------------------------------------------------------- 2. settings ignored
_DFT = {"reference": {"kind": "phono3py", "dataset": "phono3py_disp.yaml"},
        "datasets": {"idmd": False, "refmd": False}, "observables": {"enabled": False}}


def _config_refused(tmp_path: Path, data: dict, *words: str) -> str:
    (tmp_path / "phono3py_disp.yaml").write_text("")  # only its existence is checked
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in:\n{msg}"
    assert _snapshot(tmp_path) == before
    return msg


def test_sevennet_model_and_device_are_refused(tmp_path):
    """Weights that are not in the wheel, a multi-fidelity checkpoint without its modal (or
    a modal on a checkpoint that has none) and a CUDA device are refused at validation (no
    model is loaded), naming what is accepted; the wheel's checkpoints on the CPU are
    accepted."""
    model = {"name": "S", "kind": "sevennet", "settings": {"model": "7net-omat",
                                                           "device": "cuda"}}
    _config_refused(tmp_path, {**_DFT, "models": [model]},
                    "models.0.settings.model", "'7net-omat'", "7net-l3i5", "7net-0",
                    "kind: ase", "models.0.settings.device", "'cuda'", "CPU", "'cpu'")
    model = {"name": "S", "kind": "sevennet", "settings": {"model": "7net-mf-0"}}
    _config_refused(tmp_path, {**_DFT, "models": [model]}, "models.0.settings.model",
                    "multi-fidelity", "PBE, R2SCAN")
    model = {"name": "S", "kind": "sevennet", "settings": {"model": "7net-l3i5",
                                                           "modal": "PBE"}}
    _config_refused(tmp_path, {**_DFT, "models": [model]}, "models.0.settings.modal",
                    "one fidelity", "remove modal")
    # unknown weights with a modal: the weights are at fault, not the modal
    model = {"name": "S", "kind": "sevennet", "settings": {"model": "7net-omat",
                                                           "modal": "PBE"}}
    msg = _config_refused(tmp_path, {**_DFT, "models": [model]}, "models.0.settings.model",
                          "'7net-omat'")
    assert "models.0.settings.modal" not in msg
    model = {"name": "C", "kind": "chgnet", "settings": {"model": "0.1.0"}}
    _config_refused(tmp_path, {**_DFT, "models": [model]}, "models.0.settings.model",
                    "'0.1.0'", "0.2.0", "r2scan")
    model = {"name": "S", "kind": "sevennet", "settings": {"batch": 4}}
    _config_refused(tmp_path, {**_DFT, "models": [model]}, "models.0.settings.batch",
                    "reads only settings h_ranges, model, modal, device")
    ok = [{"name": "S", "kind": "sevennet", "settings": {"model": "7net-0", "device": "cpu",
                                                         "h_ranges": {3: [0.01, 0.05]}}},
          {"name": "L", "kind": "sevennet", "settings": {"model": "7net-l3i5"}},
          {"name": "M", "kind": "sevennet", "settings": {"model": "7net-mf-0",
                                                         "modal": "PBE"}},
          {"name": "C", "kind": "chgnet", "settings": {"model": "0.2.0"}}]
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({**_DFT, "models": ok}))
    models = load_config(tmp_path / "ok.yaml").models
    assert [universal_preset(m) for m in models] == [
        "sevennet-0", "sevennet-l3i5", "sevennet-mf-0-pbe", "chgnet-0.2.0"]


def test_dataset_on_a_universal_preset_is_refused(tmp_path):
    _config_refused(tmp_path, {**_DFT, "models": [{"name": "C", "kind": "chgnet",
                                                  "dataset": "idmd"}]},
                    "models.0.dataset", "not trained", "remove it")


def test_crystal_beside_a_dft_reference_is_refused(tmp_path):
    data = {**_DFT, "crystal": {"lattice_constant": 5.43, "structure": "POSCAR"},
            "models": [{"name": "S", "kind": "sevennet"}]}
    (tmp_path / "POSCAR").write_text("")
    msg = _config_refused(tmp_path, data, "crystal.lattice_constant", "crystal.structure",
                          "DFT data", "remove it")
    assert "crystal.name may stay" in msg


def test_model_orders_outside_the_reference_are_refused(tmp_path):
    """A model of order 4 against a reference of orders 2-3 (CRG sets, or a phono3py
    dataset) would end with an empty Table I."""
    crg = crg_potential()
    model = {"name": "mine", "kind": "lammps", "orders": [4], "elements": list(crg.elements),
             "pair_style": crg.pair_style, "pair_coeff": list(crg.pair_coeff),
             "atom_style": crg.atom_style, "charges": dict(crg.charges),
             "kspace_style": crg.kspace_style, "commands": list(crg.commands),
             "files": [str(f) for f in crg.files]}
    data = {"derivative_sets": [{"name": "prim", "supercell": "prim", "orders": [2, 3]}],
            "datasets": {"idmd": False, "refmd": False}, "observables": {"enabled": False},
            "models": [model]}
    _config_refused(tmp_path, data, "models.0.orders", "orders [4]", "orders [2, 3]")
    _config_refused(tmp_path, {**_DFT, "models": [{"name": "S", "kind": "sevennet",
                                                  "orders": [4]}]},
                    "models.0.orders", "orders [4]", "orders [2, 3]", "phono3py dataset")


def test_plan_format_without_a_cell_is_refused(tmp_path, capsys):
    """plan --format xyz (no lattice) exits 2 before writing; extxyz keeps the cell."""
    args = ["plan", "--supercell", "prim", "--order", "2", "--steps", "3"]
    out = tmp_path / "xyz"
    assert main([*args, "--format", "xyz", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for w in ("'xyz'", "periodic cell", "extxyz"):
        assert w in err, err
    assert not out.exists() and _snapshot(tmp_path) == {}
    out = tmp_path / "extxyz"
    assert main([*args, "--format", "extxyz", "--out", str(out)]) == 0
    text = (out / "dft" / "job_00000" / "structure.xyz").read_text()
    assert "Lattice=" in text and 'pbc="T T T"' in text


def test_plan_directory_of_another_job_is_not_resumed(folder):
    """The study's own stage (measure_derivative_set) refuses a plan directory of another
    job or crystal even without the facade's record, naming the change."""
    from anharmbench.errors import PlanDirectoryError
    from anharmbench.study.derivative_stages import measure_derivative_set

    bench = _bench(folder, profile="paper")
    before = _snapshot(folder)
    with pytest.raises(PlanDirectoryError, match="n_steps: 4 -> 10"):
        measure_derivative_set(folder / "m" / "prim", "m", "prim", bench.jobs["prim"],
                               bench.crystal, None, CRGNumpyCalculator(), progress=False)
    with pytest.raises(PlanDirectoryError, match="lattice"):
        measure_derivative_set(folder / "m" / "prim", "m", "prim", _bench(folder).jobs["prim"],
                               tho2_primitive(5.6), None, CRGNumpyCalculator(), progress=False)
    assert _snapshot(folder) == before
