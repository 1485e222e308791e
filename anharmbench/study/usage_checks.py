"""Load-time checks that nothing in a study config is accepted and then ignored.

Run by :func:`anharmbench.study.checks.check_study` beside its other checks; each returns
:data:`~anharmbench.study.checks.Problem` tuples ``(path of the key, what is wrong and the
fix)``:

* :func:`model_settings_problems` -- ``settings`` of a model that is not trained: only
  ``h_ranges`` (its step windows) is read, and for the universal presets ``model`` (which
  weights in the wheel; SevenNet's multi-fidelity one with its ``modal``) and ``device``
  (the CPU); a
  ``dataset`` on a universal preset (they are not trained here);
* :func:`data_crystal_problems` -- ``crystal.structure`` or ``crystal.lattice_constant``
  beside a DFT reference, whose data fix the crystal;
* :func:`model_orders_problems` -- a model whose ``orders`` share none with the
  reference's, which would end with an empty Table I.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anharmbench.study.config import ModelConfig, StudyConfig

__all__ = ["data_crystal_problems", "model_orders_problems", "model_settings_problems"]

Problem = tuple[str, str]

#: The only device of the presets (float32 on the CPU, one torch thread).
PRESET_DEVICES = ("cpu",)
#: The settings each kind of model that is not trained reads.
_READ = {"lammps": ("h_ranges",), "ase": ("h_ranges",),
         "chgnet": ("h_ranges", "model", "device"),
         "sevennet": ("h_ranges", "model", "modal", "device")}


def _torch_note() -> str:
    try:
        torch = version("torch")
    except PackageNotFoundError:
        return ""
    return f"; torch {torch} here is a CPU build" if "+cpu" in torch else ""


def _windows_problem(value: Any) -> str | None:
    """Why ``h_ranges`` is not ``{order: [h_min, h_max]}`` with 0 < h_min < h_max, or None."""
    if not isinstance(value, Mapping) or not value:
        return "h_ranges must map orders to step windows, e.g. {2: [0.005, 0.04]}"
    for n, w in value.items():
        try:
            order = int(n)
            lo, hi = (float(x) for x in w)
        except (TypeError, ValueError):
            return f"h_ranges.{n}: give an order 2..6 and [h_min, h_max] in Angstrom, got {w!r}"
        if not 2 <= order <= 6 or not 0 < lo < hi:
            return (f"h_ranges.{n}: {w!r} is not a window 0 < h_min < h_max of an order "
                    "2..6")
    return None


def _preset_value_problems(model: ModelConfig, where: str) -> list[Problem]:
    out: list[Problem] = []
    from anharmbench.mlip.universal import UniversalModelError
    from anharmbench.study.models import universal_preset

    try:
        universal_preset(model)
    except UniversalModelError as exc:
        out.append((f"{where}.settings.{exc.setting or 'model'}", f"{exc}; for weights not "
                    "in the wheels use kind: ase with calculator: 'module:factory'"))
    device = model.settings.get("device")
    if device is not None and str(device).lower() not in PRESET_DEVICES:
        out.append((f"{where}.settings.device", f"device {device!r} is not supported: the "
                    f"universal presets run on the CPU (float32, one torch thread"
                    f"{_torch_note()}); settings.device accepts "
                    f"{', '.join(repr(d) for d in PRESET_DEVICES)}, or remove it"))
    return out


def model_settings_problems(config: StudyConfig) -> list[Problem]:
    """Settings and datasets of models that are not trained, which nothing would read."""
    problems: list[Problem] = []
    for i, model in enumerate(config.models):
        if model.trained:
            continue  # the trainer's own config refuses keys it does not know
        where, read = f"models.{i}", _READ[model.kind]
        for key in sorted(set(model.settings) - set(read)):
            problems.append((f"{where}.settings.{key}", f"model {model.name!r} is kind "
                             f"{model.kind!r}, which reads only settings "
                             f"{', '.join(read)}; remove {key}"))
        if "h_ranges" in model.settings:
            msg = _windows_problem(model.settings["h_ranges"])
            if msg:
                problems.append((f"{where}.settings.h_ranges", msg))
        if model.universal:
            problems += _preset_value_problems(model, where)
            if model.dataset is not None:
                problems.append((f"{where}.dataset", f"model {model.name!r} is the universal "
                                 f"preset {model.kind!r}, which is not trained here, so "
                                 f"dataset {model.dataset!r} would be ignored; remove it "
                                 "(datasets are for kinds gap, bpnn and nequip)"))
    return problems


def data_crystal_problems(config: StudyConfig) -> list[Problem]:
    """A crystal given beside a DFT reference, whose data fix the crystal."""
    if not config.reference.is_data:
        return []
    given = sorted(k for k in ("structure", "lattice_constant")
                   if k in config.crystal.model_fields_set)
    return [(f"crystal.{k}", f"the reference is DFT data (kind {config.reference.kind!r}), "
             f"whose primitive cell is the crystal of the study; crystal.{k} would be "
             "ignored: remove it (crystal.name may stay: it names the crystal in the report)")
            for k in given]


def _reference_orders(config: StudyConfig) -> tuple[set[int], str] | None:
    """The orders the reference will have and how to name them (None: unknown yet)."""
    ref = config.reference
    if config.derivative_sets:
        # a data reference's sets are checked against the data when the study runs
        orders = {n for d in config.derivative_sets for n in d.orders}
        return orders, "the reference's derivative_sets"
    if ref.kind == "phono3py":
        one = Path(str(ref.dataset)).name.lower().startswith("phonopy")
        return ({2}, "a phonopy dataset") if one else ({2, 3}, "a phono3py dataset")
    if ref.kind == "files":
        try:
            orders = {int(n) for p in ref.plan_dirs
                      for n in json.loads((p / "plan.json").read_text())["job"]["orders"]}
            return orders, "the plan " + ", ".join(str(p) for p in ref.plan_dirs)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the reference check names what is wrong with the plan
    return None


def model_orders_problems(config: StudyConfig) -> list[Problem]:
    """Models whose ``orders`` share none with the reference's (an empty Table I)."""
    found = _reference_orders(config)
    if found is None:
        return []
    orders, source = found
    problems: list[Problem] = []
    for i, model in enumerate(config.models):
        if model.orders is not None and not set(model.orders) & orders:
            problems.append((f"models.{i}.orders", f"model {model.name!r} has orders "
                             f"{sorted(set(model.orders))}, but the reference has orders "
                             f"{sorted(orders)} ({source}): nothing would be compared; give "
                             "orders the reference has, or remove orders (every set)"))
    return problems
