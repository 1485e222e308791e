"""A study config is checked completely when it is loaded (issue 14, "validate at the door").

Every mistake that would otherwise stop the study after its reference or training stages
is refused by ``load_config`` with a :class:`ConfigError` naming the key's path and the
fix, and nothing is written. Also :meth:`LammpsPotential.from_file`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from anharmbench.observables import SunsetSampling
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.spec import LammpsPotential, PotentialError
from anharmbench.study import ConfigError, load_config

#: A valid user model of kind lammps (the CRG surface given by its LAMMPS fields).
_CRG = crg_potential()
LAMMPS_MODEL: dict = {
    "name": "mine",
    "kind": "lammps",
    "elements": list(_CRG.elements),
    "pair_style": _CRG.pair_style,
    "pair_coeff": list(_CRG.pair_coeff),
    "atom_style": _CRG.atom_style,
    "charges": dict(_CRG.charges),
    "kspace_style": _CRG.kspace_style,
    "commands": list(_CRG.commands),
    "files": [str(f) for f in _CRG.files],
}

#: A small valid study without datasets (no trained model), for one mistake to be added.
BASE: dict = {
    "derivative_sets": [{"name": "prim", "supercell": "prim", "orders": [2, 3]}],
    "datasets": {"idmd": False, "refmd": False},
    "models": [LAMMPS_MODEL],
    "observables": {"enabled": False},
}


def _write(tmp_path: Path, data: dict | str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _refused(path: Path, *words: str) -> str:
    """Load ``path``, expect a ConfigError holding every one of ``words``; its message."""
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in:\n{msg}"
    return msg


def _only(tmp_path: Path, *names: str) -> None:
    """Nothing but ``names`` (the config file, inputs the test made) is in ``tmp_path``."""
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(names)


def test_the_base_config_and_the_examples_load(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert [m.kind for m in cfg.models] == ["lammps"]
    load_config(None)
    root = Path(__file__).resolve().parents[1] / "examples"
    if (root.parents[1] / "shared" / "dft").is_dir():  # the examples' data beside the checkout
        for example in sorted(root.glob("*.yaml")):
            load_config(example)
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 1. LAMMPS fields of a kind
@pytest.mark.parametrize("field", ["pair_style", "pair_coeff", "elements"])
def test_a_lammps_model_without_a_needed_field_is_refused(tmp_path, field):
    model = {k: v for k, v in LAMMPS_MODEL.items() if k != field}
    path = _write(tmp_path, {**BASE, "models": [LAMMPS_MODEL, {**model, "name": "other"}]})
    _refused(path, f"models.1.{field}: model 'other' is kind 'lammps' and needs {field}",
             "add it")
    _only(tmp_path, "study.yaml")


def test_a_lammps_reference_without_pair_coeff_is_refused(tmp_path):
    ref = {k: v for k, v in LAMMPS_MODEL.items() if k not in ("pair_coeff", "name")}
    path = _write(tmp_path, {**BASE, "reference": ref})
    _refused(path, "reference.pair_coeff:", "needs pair_coeff", "e.g. pair_coeff:")
    _only(tmp_path, "study.yaml")


def test_lammps_fields_that_make_no_potential_are_refused(tmp_path):
    model = {**LAMMPS_MODEL, "atom_style": "atomic"}  # charges need atom_style charge
    path = _write(tmp_path, {**BASE, "models": [model]})
    _refused(path, "models.0: model 'mine' is not a valid LAMMPS potential",
             "atom_style is not 'charge'")
    _only(tmp_path, "study.yaml")


def test_a_potential_without_an_element_of_the_crystal_is_refused(tmp_path):
    model = {**LAMMPS_MODEL, "elements": ["O"], "charges": {"O": -2.0}}
    path = _write(tmp_path, {**BASE, "models": [model]})
    _refused(path, "models.0.elements: model 'mine' has no Th", "embedded ThO2")
    _only(tmp_path, "study.yaml")


def test_fields_that_the_kind_ignores_are_refused(tmp_path):
    path = _write(tmp_path, {**BASE, "models": [
        LAMMPS_MODEL, {"name": "u", "kind": "chgnet", "pair_style": "eam/alloy"},
        {**LAMMPS_MODEL, "name": "l", "calculator": "ase.calculators.emt:EMT"}]})
    _refused(path, "models.1.pair_style: only kind 'lammps' uses pair_style, model 'u' is kind "
             "'chgnet': remove it", "models.2.calculator: only kind 'ase' uses calculator")
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 2. ASE calculator factories
@pytest.mark.parametrize("spec,words", [
    ("no_such_module_xyz:make", ["cannot import module 'no_such_module_xyz'",
                                 "ModuleNotFoundError", "install it"]),
    ("ase.calculators.emt:EMTT", ["module 'ase.calculators.emt' has no attribute 'EMTT'",
                                  "did you mean 'EMT'"]),
    ("ase.calculators.emt", ["is not of the form 'package.module:factory'"]),
    ("ase.calculators.emt:parameters", ["is not callable"]),
])
def test_an_ase_calculator_that_cannot_be_found_is_refused(tmp_path, spec, words):
    path = _write(tmp_path, {**BASE, "models": [
        LAMMPS_MODEL, {"name": "calc", "kind": "ase", "calculator": spec}]})
    _refused(path, "models.1.calculator:", *words)
    _only(tmp_path, "study.yaml")


def test_an_ase_calculator_module_that_fails_to_import_is_refused(tmp_path, tmp_path_factory,
                                                                    monkeypatch):
    mods = tmp_path_factory.mktemp("modules")
    (mods / "broken_calc_mod.py").write_text("raise RuntimeError('no licence file')\n")
    monkeypatch.syspath_prepend(str(mods))
    path = _write(tmp_path, {**BASE, "reference": {"kind": "ase",
                                                   "calculator": "broken_calc_mod:make"}})
    _refused(path, "reference.calculator: cannot import module 'broken_calc_mod'",
             "RuntimeError: no licence file")
    _only(tmp_path, "study.yaml")


def test_an_ase_calculator_factory_is_imported_but_not_called(tmp_path, tmp_path_factory,
                                                                monkeypatch):
    mods = tmp_path_factory.mktemp("modules")
    (mods / "lazy_calc_mod.py").write_text(
        "def make():\n    raise AssertionError('called at load time')\n")
    monkeypatch.syspath_prepend(str(mods))
    path = _write(tmp_path, {**BASE, "models": [
        LAMMPS_MODEL, {"name": "calc", "kind": "ase", "calculator": "lazy_calc_mod:make"}]})
    assert load_config(path).models[1].calculator == "lazy_calc_mod:make"
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 3. supercells
@pytest.mark.parametrize("patch,where", [
    ({"derivative_sets": [{"name": "a", "supercell": "2x2x2", "orders": [2]}]},
     "derivative_sets.0.supercell: unknown supercell '2x2x2': use one of"),
    ({"datasets": {"idmd": False, "refmd": False, "idmd_supercell": "8I"}},
     "datasets.idmd_supercell: unknown supercell '8I'"),
    ({"datasets": {"idmd": False, "refmd": False, "refmd_supercell": "sc"}},
     "datasets.refmd_supercell: unknown supercell 'sc'"),
    ({"derivative_sets": [{"name": "a", "supercell": [[1, 0, 0], [0, 1, 0], [1, 0, 0]],
                           "orders": [2]}]},
     "derivative_sets.0.supercell: supercell matrix [[1, 0, 0], [0, 1, 0], [1, 0, 0]] is "
     "singular"),
])
def test_a_supercell_that_does_not_parse_is_refused(tmp_path, patch, where):
    path = _write(tmp_path, {**BASE, **patch})
    msg = _refused(path, where)
    assert "prim" in msg and "SC" in msg  # the names that exist
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 4. trained models
def test_a_trained_model_without_dataset_is_refused(tmp_path):
    path = _write(tmp_path, {**BASE, "models": [LAMMPS_MODEL, {"name": "G", "kind": "gap"}]})
    _refused(path, "models.1.dataset: model 'G' is kind 'gap', which is trained, and needs "
             "dataset: idmd", "refmd", "dft")
    _only(tmp_path, "study.yaml")


@pytest.mark.parametrize("model,reference,words", [
    ({"name": "B", "kind": "bpnn", "dataset": "idmd"}, None,
     ["models.0.dataset: dataset 'idmd' is disabled (datasets.idmd: false)"]),
    ({"name": "B", "kind": "bpnn", "dataset": "dft"}, None,
     ["models.0.dataset: dataset 'dft' is the supercells of a phono3py reference",
      "kind 'crg'"]),
])
def test_a_trained_model_whose_dataset_cannot_be_made_is_refused(tmp_path, model, reference,
                                                                  words):
    data = {**BASE, "models": [model]}
    if reference:
        data["reference"] = reference
    _refused(_write(tmp_path, data), *words)
    _only(tmp_path, "study.yaml")


def test_refmd_needs_a_lammps_reference(tmp_path):
    path = _write(tmp_path, {
        **BASE, "crystal": {"lattice_constant": 5.58},
        "reference": {"kind": "ase", "calculator": "ase.calculators.emt:EMT"},
        "datasets": {"idmd": False, "refmd": True},
        "models": [{"name": "N", "kind": "nequip", "dataset": "refmd"}]})
    _refused(path, "models.0.dataset: dataset 'refmd' is MD on the reference",
             "not 'ase'")
    _only(tmp_path, "study.yaml")


def test_idmd_needs_orders_2_to_4_in_the_derivative_sets(tmp_path):
    path = _write(tmp_path, {**BASE, "datasets": {"idmd": True, "refmd": False},
                             "models": [{"name": "G", "kind": "gap", "dataset": "idmd"}]})
    _refused(path, "derivative_sets: dataset idmd (of G) needs reference derivatives of orders "
             "2-4", "order(s) [4]", "datasets.idmd: false")
    _only(tmp_path, "study.yaml")


def test_models_and_sets_need_distinct_names(tmp_path):
    path = _write(tmp_path, {
        **BASE,
        "derivative_sets": [{"name": "p", "supercell": "prim", "orders": [2]},
                            {"name": "p", "supercell": "2I", "orders": [3]}],
        "models": [LAMMPS_MODEL, LAMMPS_MODEL]})
    _refused(path, "models.1.name: 'mine' is already the label of models.0",
             "derivative_sets.1.name: 'p' is already the name of derivative_sets.0")
    _only(tmp_path, "study.yaml")


def test_a_derivative_set_the_job_refuses_is_refused_at_load(tmp_path):
    path = _write(tmp_path, {**BASE, "derivative_sets": [
        {"name": "q", "supercell": "2I", "orders": [3], "qtuple": ["L", "L"]},
        {"name": "w", "supercell": "prim", "orders": [2], "h_range": [0.08, 0.01]}]})
    _refused(path, "derivative_sets.0.qtuple: ['L', 'L'] has 2 q-points but orders [3]",
             "derivative_sets.1: ", "h_min")
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 5. empty / not a mapping
@pytest.mark.parametrize("text", ["", "   \n\n", "# a comment only\n  # and another\n",
                                  "null\n", "~\n"])
def test_an_empty_config_is_refused(tmp_path, text):
    path = _write(tmp_path, text)
    _refused(path, f"study config {path} is empty; give a study config or omit the argument "
             "to run the default study")
    _only(tmp_path, "study.yaml")


@pytest.mark.parametrize("text,kind", [("- profile: quick\n", "list"), ("42\n", "int"),
                                       ("quick\n", "str")])
def test_a_config_that_is_not_a_mapping_is_refused(tmp_path, text, kind):
    path = _write(tmp_path, text)
    _refused(path, "must be a mapping of keys at the top level", "profile", f"not a {kind}")
    _only(tmp_path, "study.yaml")


def test_a_key_given_twice_is_refused(tmp_path):
    path = _write(tmp_path, "profile: quick\nmodels: []\nprofile: paper\n")
    _refused(path, "not valid YAML", "found the key 'profile' twice", "line 3")
    _only(tmp_path, "study.yaml")


def test_yaml_merge_keys_may_still_override(tmp_path):
    text = yaml.safe_dump(BASE) + ("executor:\n  <<: {kind: local-processes, workers: 2}\n"
                                   "  workers: 3\n")
    path = _write(tmp_path, text)
    assert load_config(path).executor.workers == 3
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 6. input files
def test_a_missing_potential_file_is_refused_with_its_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = {**LAMMPS_MODEL, "files": [*LAMMPS_MODEL["files"], "pots/ThO2.eam.alloy"]}
    path = _write(tmp_path, {**BASE, "models": [model]})
    _refused(path, f"models.0.files.1: potential file {tmp_path.resolve()}/pots/ThO2.eam.alloy "
             "does not exist", "relative paths here are taken from the current directory",
             "create the file before the run")
    _only(tmp_path, "study.yaml")


def test_a_missing_file_beside_the_config_gets_a_hint(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    (tmp_path / "cell.cif").write_text("data_x\n")
    path = _write(tmp_path, {**BASE, "crystal": {"structure": "cell.cif"}})
    _refused(path, "crystal.structure: structure file ", "cell.cif does not exist",
             f"the file is beside the config: give {tmp_path.resolve() / 'cell.cif'}")
    _only(tmp_path, "study.yaml", "cell.cif")


def test_missing_dft_reference_files_are_refused_relative_to_the_config(tmp_path):
    path = _write(tmp_path, {"reference": {"kind": "phono3py", "dataset": "dft/disp.yaml",
                                           "forces": "/nonexistent/FORCES_FC3",
                                           "outputs": "dft/vasprun-*.xml"}})
    base = tmp_path.resolve()
    msg = _refused(path, f"reference.dataset: {base}/dft/disp.yaml does not exist",
                   "reference.forces: /nonexistent/FORCES_FC3 does not exist",
                   f"reference.outputs: no file matches '{base}/dft/vasprun-*.xml'",
                   f"taken from the config file's folder, {base}")
    assert msg.count("\n") == 3  # all three at once, after the header
    _only(tmp_path, "study.yaml")


def test_a_plan_reference_without_its_files_is_refused(tmp_path):
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.json").write_text("{}")
    path = _write(tmp_path, {"reference": {"kind": "files", "plan": "plan"}})
    _refused(path, f"reference.plan: {tmp_path.resolve()}/plan/results.h5 does not exist",
             "anharmbench collect DIR --outputs GLOB")
    _only(tmp_path, "study.yaml", "plan", "plan.json")


def test_every_problem_is_listed_at_once(tmp_path):
    path = _write(tmp_path, {**BASE, "models": [
        {"name": "a", "kind": "lammps", "elements": ["O", "Th"]},
        {"name": "b", "kind": "nequip"},
        {"name": "c", "kind": "ase", "calculator": "no_such_module_xyz:f"}]})
    msg = _refused(path, "models.0.pair_style", "models.0.pair_coeff", "models.1.dataset",
                   "models.2.calculator")
    assert msg.startswith(f"invalid study config {path}:")
    _only(tmp_path, "study.yaml")


def test_the_cli_refuses_before_making_the_output_directory(tmp_path, capsys):
    from anharmbench.cli import main

    path = _write(tmp_path, {**BASE, "models": [{"name": "G", "kind": "gap"}]})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) != 0
    assert "models.0.dataset" in capsys.readouterr().err
    _only(tmp_path, "study.yaml")


# ------------------------------------------------------------- 7. LammpsPotential.from_file
def _potential_json(folder: Path, **changes: object) -> Path:
    data = {"elements": ["Ar"], "pair_style": "lj/cut 8.0", "pair_coeff": ["* * 0.0104 3.4"],
            "files": ["tables/ar.table"], "plugins": ["libpair.so"], **changes}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "argon.json"
    path.write_text(json.dumps(data))
    return path


def test_from_file_resolves_files_relative_to_the_json_file(tmp_path, monkeypatch):
    _potential_json(tmp_path / "pots")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    pot = LammpsPotential.from_file(Path("..") / "pots" / "argon.json")
    folder = (tmp_path / "pots").resolve()
    assert pot.files == (str(folder / "tables" / "ar.table"),)
    assert pot.plugins == (str(folder / "libpair.so"),)
    assert pot.name == "argon"  # the file's stem when the JSON names none
    assert pot.pair_style == "lj/cut 8.0" and pot.elements == ("Ar",)
    # an absolute path stays as it is; to_dict round-trips through from_file
    again = _potential_json(tmp_path / "b", **{k: v for k, v in pot.to_dict().items()})
    assert LammpsPotential.from_file(again) == pot
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["argon.json", "argon.json", "b",
                                                           "cwd", "pots"]


@pytest.mark.parametrize("text,words", [
    ('{"elements": ["Ar"], ', ["is not valid JSON"]),
    ('["Ar"]', ["expected a JSON object", "got a list"]),
    ('{"elements": ["Ar"], "pair_style": "lj/cut 8.0"}', ["missing field(s) ['pair_coeff']"]),
    ('{"elements": ["Ar"], "pair_style": "lj/cut 8.0", "pair_coeff": ["* * 1 1"], '
     '"pair_stlye": "x"}', ["unknown field(s) ['pair_stlye']", "allowed:"]),
    ('{"elements": "Ar", "pair_style": "lj/cut 8.0", "pair_coeff": ["* * 1 1"]}',
     ["field 'elements' must be a list of strings, got a string ('Ar')"]),
    ('{"elements": ["Ar"], "pair_style": "lj/cut 8.0", "pair_coeff": ["* * 1 1"], '
     '"masses": {"Ar": "heavy"}}',
     ["field 'masses' must be an object of numbers by element, got a string ('heavy') for "
      "'Ar'"]),
    ('{"elements": ["Xx"], "pair_style": "lj/cut 8.0", "pair_coeff": ["* * 1 1"]}',
     ["unknown element 'Xx'"]),
])
def test_from_file_names_the_file_and_the_problem(tmp_path, text, words):
    path = tmp_path / "pot.json"
    path.write_text(text)
    with pytest.raises(PotentialError) as err:
        LammpsPotential.from_file(path)
    msg = str(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    _only(tmp_path, "pot.json")


def test_from_file_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="potential file .*nope.json does not exist"):
        LammpsPotential.from_file(tmp_path / "nope.json")
    _only(tmp_path)


def test_the_json_field_types_cover_every_field():
    from anharmbench.potentials import spec

    assert set(spec._FIELD_TYPES) == set(LammpsPotential.__dataclass_fields__)


def test_sampled_sunset_settings_need_the_sampled_method(tmp_path):
    """Samples, seed or a target error given for the exact sunset would be ignored: refused,
    naming the key and the fix; with method: sampled they reach the observables stage."""
    data = {**BASE, "observables": {"sunset": {"samples": 4096, "seed": 3}}}
    _refused(_write(tmp_path, data), "observables.sunset", "samples, seed",
             "method: sampled")
    _only(tmp_path, "study.yaml")
    ok = {**BASE, "observables": {"sunset": {"method": "sampled", "samples": 4096,
                                             "target_error": 0.05}}}
    cfg = load_config(_write(tmp_path, ok, "ok.yaml"))
    kw = cfg.observables.sunset.sampling()
    assert kw == {"samples": 4096, "target_error": 0.05}
    assert SunsetSampling(**kw).pair_budget == 64 * 4096
