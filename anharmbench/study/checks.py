"""Load-time checks of a study config: everything that would stop the study after it started.

:func:`check_study` runs on every config that :func:`~anharmbench.study.config.load_config`
parsed (already valid field by field), so that a mistake fails in seconds, before the
reference and training stages run, rather than hours into them. It checks supercell names
(via the stages' own job constructor), the fields each kind needs (``pair_style`` of
``kind: lammps``, ``dataset`` of a trained model, ...), fields a kind would ignore, ASE
calculator factories (imported, not called), the input files the config names, unique
model labels and set names, and the datasets and derivative sets the models need.

Each problem is a :data:`Problem`, ``(path of the key, what is wrong and the fix)``;
every problem is reported at once, e.g. ``models.1.pair_style: model 'mine' is kind
'lammps' and needs pair_style (...); add it``.
"""

from __future__ import annotations

import difflib
import glob
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from anharmbench.study.labels import SEED_MARK, model_label
from anharmbench.study.usage_checks import (
    data_crystal_problems,
    model_orders_problems,
    model_settings_problems,
)

if TYPE_CHECKING:
    # Annotations only: config.py imports this module at its top to call check_study, so
    # a runtime import back would be a cycle. The checks need no model class at run time
    # (the default potential fields come from the model's own field definitions).
    from anharmbench.study.config import StudyConfig, _PotentialFields

__all__ = ["Problem", "check_study"]

#: A problem found by the load-time checks: (path of the key, what is wrong and the fix).
Problem = tuple[str, str]

#: Fields of :class:`_PotentialFields` that only ``kind: lammps`` reads.
_LAMMPS_FIELDS = ("elements", "pair_style", "pair_coeff", "atom_style", "charges",
                  "kspace_style", "commands", "files")
_LAMMPS_NEEDS = {
    "elements": "elements (chemical symbols in LAMMPS type order, e.g. elements: [O, Th])",
    "pair_style": "pair_style (the arguments of LAMMPS's pair_style command, e.g. "
                  "pair_style: 'eam/alloy')",
    "pair_coeff": "pair_coeff (the arguments of each pair_coeff command, e.g. "
                  "pair_coeff: ['* * ThO2.eam.alloy O Th'])",
}
_CALCULATOR_FIX = ("give calculator: 'package.module:factory', a callable that returns an ASE "
                   "calculator (e.g. 'ase.calculators.emt:EMT')")
_DATASETS = ("idmd (MD on the Taylor expansion of the reference derivatives), refmd (MD on "
             "the reference) or dft (the supercells of a phono3py reference)")


def _calculator_problem(spec: str | None) -> str | None:
    """What is wrong with an ASE calculator factory ``"module:attr"``, or ``None``.

    The module is imported (as the study will) but the factory is not called: building a
    calculator may load a model, which is the study's work, not the config check's.
    """
    if not spec:
        return f"kind 'ase' needs calculator; {_CALCULATOR_FIX}"
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        return f"{spec!r} is not of the form 'package.module:factory'; {_CALCULATOR_FIX}"
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # a user's module may fail in any way while importing
        return (f"cannot import module {module!r} of {spec!r} ({type(exc).__name__}: {exc}); "
                "install it, put it on PYTHONPATH or fix the module name")
    if not hasattr(mod, attr):
        close = difflib.get_close_matches(attr, [n for n in dir(mod) if not n.startswith("_")])
        maybe = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return (f"module {module!r} has no attribute {attr!r}{maybe}; name a function or class "
                f"of {module!r} that returns an ASE calculator")
    if not callable(getattr(mod, attr)):
        return (f"{spec!r} is not callable; name a function or class that returns an ASE "
                "calculator")
    return None


def _input_file_problem(value: str, base: Path | None) -> str | None:
    """``None`` if ``value`` (relative to the current directory) is a file, else why not.

    These paths (LAMMPS ``files``, ``crystal.structure``) are opened by the stages as
    written, i.e. relative to the current directory; the hint names the file when it is
    beside the config instead.
    """
    path = Path(value).resolve()
    if path.is_file():
        return None
    msg = (f"{path} does not exist (relative paths here are taken from the current "
           f"directory, {Path.cwd()})")
    if base is not None and not Path(value).is_absolute() and (base / value).is_file():
        msg += f"; the file is beside the config: give {(base / value).resolve()}"
    return msg + "; fix the path, or create the file before the run"


def _check_potential(cfg: _PotentialFields, kind: str, name: str, where: str, who: str,
                     base: Path | None, species: tuple[str, ...] | None) -> list[Problem]:
    """Problems of the potential fields of the reference or of one model."""
    problems: list[Problem] = []
    fields = type(cfg).model_fields  # those of _PotentialFields, defaults included
    for key in _LAMMPS_FIELDS:
        default = fields[key].get_default(call_default_factory=True)
        if kind != "lammps" and getattr(cfg, key) != default:
            problems.append((f"{where}.{key}", f"only kind 'lammps' uses {key}, {who} is kind "
                                               f"{kind!r}: remove it, or set kind: lammps"))
    if kind != "ase" and cfg.calculator is not None:
        problems.append((f"{where}.calculator", f"only kind 'ase' uses calculator, {who} is "
                                                f"kind {kind!r}: remove it, or set kind: ase"))
    if kind == "ase":
        msg = _calculator_problem(cfg.calculator)
        if msg:
            problems.append((f"{where}.calculator", msg))
    if kind != "lammps":
        return problems
    missing = [k for k in _LAMMPS_NEEDS if getattr(cfg, k) is None]
    problems += [(f"{where}.{k}", f"{who} is kind 'lammps' and needs {_LAMMPS_NEEDS[k]}; add it")
                 for k in missing]
    for j, f in enumerate(cfg.files):
        msg = _input_file_problem(f, base)
        if msg:
            problems.append((f"{where}.files.{j}", f"potential file {msg}"))
    if missing:
        return problems
    try:
        pot = cfg.lammps_potential(name)
    except ValueError as exc:  # PotentialError: the fields do not make a potential
        return [*problems, (where, f"{who} is not a valid LAMMPS potential: {exc}")]
    lacking = sorted(set(species or ()) - set(pot.elements))
    if lacking:
        problems.append((f"{where}.elements", f"{who} has no {', '.join(lacking)}, which the "
                         f"embedded ThO2 crystal holds; list every element of the crystal "
                         f"(elements: {list(pot.elements) + lacking}) or give crystal.structure"))
    return problems


def _check_reference(config: StudyConfig, base: Path | None,
                     species: tuple[str, ...] | None) -> list[Problem]:
    ref = config.reference
    problems = _check_potential(ref, ref.kind, ref.name, "reference", f"reference {ref.name!r}",
                                base, species)
    note = (" (relative paths in reference are taken from the config file's folder, "
            f"{base})") if base is not None else ""
    if ref.kind == "phono3py":
        for key in ("dataset", "forces"):
            value = getattr(ref, key)
            if value is not None and not Path(value).is_file():
                problems.append((f"reference.{key}", f"{value} does not exist{note}; fix the "
                                                     "path or copy the file there"))
        if ref.outputs is not None and not glob.glob(ref.outputs):
            problems.append(("reference.outputs", f"no file matches {ref.outputs!r}{note}; "
                                                  "fix the pattern or remove outputs"))
    for plan in ref.plan_dirs if ref.kind == "files" else []:
        needs = (("plan.json", "a plan directory (anharmbench plan --format ... --out DIR)"),
                 ("results.h5", "the collected DFT outputs (anharmbench collect DIR "
                                "--outputs GLOB)"))
        if not plan.is_dir():
            problems.append(("reference.plan", f"{plan} is not a directory{note}; it needs "
                                               f"{needs[0][1]}"))
        else:
            problems += [("reference.plan", f"{plan / f} does not exist; the plan needs {what}")
                         for f, what in needs if not (plan / f).is_file()]
            if (plan / "results.h5").is_file():  # every configuration DFT's, none missing
                from anharmbench.study.references import check_dft_results

                try:
                    check_dft_results(plan, plan / "results.h5")
                except (ValueError, OSError) as exc:
                    problems.append(("reference.plan",
                                     str(exc).removeprefix("reference.plan: ")))
    if ref.kind == "files" and all((p / "plan.json").is_file() for p in ref.plan_dirs):
        from anharmbench.study.references import plan_orders

        try:
            plan_orders(ref.plan_dirs)
        except (ValueError, OSError, KeyError) as exc:
            problems.append(("reference.plan", str(exc).removeprefix("reference.plan: ")))
    if (ref.kind == "ase" and config.crystal.structure is None
            and config.crystal.lattice_constant is None):
        problems.append(("crystal.lattice_constant", "null relaxes the lattice constant on the "
                         "reference, which needs a LAMMPS reference (kind crg or lammps); give "
                         "it when the reference is kind 'ase'"))
    return problems


def _check_models(config: StudyConfig, base: Path | None,
                  species: tuple[str, ...] | None) -> list[Problem]:
    problems: list[Problem] = []
    ref = config.reference
    labels: dict[str, int] = {}
    for i, model in enumerate(config.models):
        where, who = f"models.{i}", f"model {model.name!r}"
        problems += _check_potential(model, model.kind, model.name, where, who, base, species)
        label = model_label(model.name, model.dataset)
        if label == "reference" or label in labels:
            other = "the reference" if label == "reference" else f"models.{labels[label]}"
            problems.append((f"{where}.name", f"{label!r} is already the label of {other}; "
                                              "give each model its own name (or dataset)"))
        labels.setdefault(label, i)
        bad = [n for n in model.orders or () if not 2 <= n <= 6]
        if bad:
            problems.append((f"{where}.orders", f"orders must be in 2..6, got {model.orders}"))
        if set(model.name) & {"@", SEED_MARK}:
            problems.append((f"{where}.name", f"{model.name!r}: '@' and '{SEED_MARK}' are "
                             "reserved for labels (name@dataset#seed); rename the model"))
        if not model.trained:
            if model.seeds is not None:
                problems.append((f"{where}.seeds", f"only trained models (gap, bpnn, nequip) "
                                 f"have seeds; {who} is kind {model.kind!r}; remove seeds"))
            continue
        if model.dataset is None:
            problems.append((f"{where}.dataset", f"{who} is kind {model.kind!r}, which is "
                             f"trained, and needs dataset: {_DATASETS}; add it"))
        elif model.dataset == "dft" and ref.kind != "phono3py":
            problems.append((f"{where}.dataset", f"dataset 'dft' is the supercells of a "
                             f"phono3py reference, but the reference is kind {ref.kind!r}; "
                             "use idmd or refmd, or a reference of kind phono3py"))
        elif model.dataset in ("idmd", "refmd") and not getattr(config.datasets, model.dataset):
            problems.append((f"{where}.dataset", f"dataset {model.dataset!r} is disabled "
                             f"(datasets.{model.dataset}: false); enable it or train {who} on "
                             "another dataset"))
        elif model.dataset == "refmd" and ref.kind not in ("crg", "lammps"):
            problems.append((f"{where}.dataset", "dataset 'refmd' is MD on the reference, which "
                             f"needs a LAMMPS reference (kind crg or lammps), not {ref.kind!r}; "
                             "use another dataset"))
    return problems


def _check_derivative_sets(config: StudyConfig) -> list[Problem]:
    # the stages' own job constructor, so that the check and the run cannot disagree
    from anharmbench.study.derivative_stages import derivative_job
    from anharmbench.study.profiles import profile_settings

    problems: list[Problem] = []
    settings = profile_settings(config)
    names: dict[str, int] = {}
    for i, dset in enumerate(config.derivative_sets):
        if dset.name in names:
            problems.append((f"derivative_sets.{i}.name", f"{dset.name!r} is already the name "
                             f"of derivative_sets.{names[dset.name]}; give each set its own"))
        names.setdefault(dset.name, i)
        if dset.qtuple is not None:
            bad = [n for n in dset.orders if n != len(dset.qtuple)]
            if bad:
                problems.append((f"derivative_sets.{i}.qtuple", f"{dset.qtuple} has "
                                 f"{len(dset.qtuple)} q-points but orders {bad} need one per "
                                 "derivative slot; give a set per order"))
        try:
            derivative_job(dset, settings.n_steps, settings.variant)
        except ValueError as exc:
            problems.append((f"derivative_sets.{i}", str(exc)))
    idmd_users = [m.name for m in config.models if m.trained and m.dataset == "idmd"]
    if config.datasets.idmd and idmd_users and not config.reference.is_data:
        full = {n for d in config.derivative_sets if not d.qtuple for n in d.orders}
        missing = [n for n in (2, 3, 4) if n not in full]
        if missing:
            problems.append(("derivative_sets", f"dataset idmd (of {', '.join(idmd_users)}) "
                             "needs reference derivatives of orders 2-4 over full FTGs; order(s) "
                             f"{missing} are in no derivative set without a qtuple: add one, "
                             "or set datasets.idmd: false"))
    return problems


def check_study(config: StudyConfig, base: Path | None) -> list[Problem]:
    """Every problem of a parsed config that would stop the study after it started.

    An empty list means the study can start; otherwise ``load_config`` reports them all.

    Parameters
    ----------
    config
        The config (already valid field by field).
    base
        The config file's folder, for hints on relative paths; ``None`` without a file.
    """
    problems: list[Problem] = []
    if config.crystal.structure is not None:
        msg = _input_file_problem(config.crystal.structure, base)
        if msg:
            problems.append(("crystal.structure", f"structure file {msg}"))
        else:
            # read it now: an unknown element or overlapping atoms would otherwise stop
            # the study after its reference check, as an internal error
            from anharmbench.errors import StructureError
            from anharmbench.validation import read_structure

            try:
                read_structure(config.crystal.structure)
            except StructureError as exc:
                problems.append(("crystal.structure", str(exc)))
    # the embedded crystal is ThO2; the others' elements are known only once read
    species = (("O", "Th") if config.crystal.structure is None
               and not config.reference.is_data else None)
    problems += _check_reference(config, base, species)
    problems += _check_models(config, base, species)
    problems += _check_derivative_sets(config)
    # keys that would be accepted and then ignored (settings, a crystal beside DFT data,
    # a model's orders the reference lacks)
    problems += data_crystal_problems(config)
    problems += model_settings_problems(config)
    problems += model_orders_problems(config)
    return problems
