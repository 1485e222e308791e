"""Derivative stages: one derivative set measured on one potential.

:func:`derivative_job` turns a config's set into a
:class:`~anharmbench.derivatives.workflow.DerivativeJob`, :func:`prepared_plan` builds its
plan once per crystal, and :func:`measure_derivative_set` measures it in a plan directory
(also used by :class:`anharmbench.benchmark.Benchmark`); :func:`derivative_stage` is that
as a study stage, keyed by the job, the crystal and the potential.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.derivatives.fit import Estimator
from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.derivatives.workflow import (
    DERIVATIVES_FILE,
    DerivativeJob,
    Prepared,
    atoms_record,
    prepare,
)
from anharmbench.errors import PlanDirectoryError
from anharmbench.executors import make_executor
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.study.config import DerivativeSetConfig, StudyConfig
from anharmbench.study.profiles import profile_settings
from anharmbench.study.runner import Stage

__all__ = ["CalculatorSpec", "derivative_job", "derivative_stage", "measure_derivative_set",
           "prepared_plan", "safe_name"]


@dataclass(frozen=True)
class CalculatorSpec:
    """An ASE calculator made by ``factory(*args)`` (``factory``: ``"module:function"``).

    A user's ``kind: ase`` model is a factory without arguments; a universal preset is its
    family's factory with the preset's name.
    """

    factory: str
    args: tuple[str, ...] = ()

    def key(self) -> str | dict[str, Any]:
        """What the stage's key records (the factory alone when it takes no arguments)."""
        return self.factory if not self.args else {"factory": self.factory,
                                                    "args": list(self.args)}


def _ase_calculator(spec: CalculatorSpec | None, name: str) -> Any:
    import importlib

    if spec is None or ":" not in spec.factory:
        raise ValueError(f"{name}: kind 'ase' needs calculator: 'package.module:factory'")
    module, _, attr = spec.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name}: cannot import the ASE calculator {spec.factory!r}: "
                         f"{exc}") from None
    return factory(*spec.args)


def derivative_job(dset: DerivativeSetConfig, n_steps: int, variant: str) -> DerivativeJob:
    """The :class:`DerivativeJob` of a derivative set (``n_steps`` and ``variant``: the
    profile's, where the set leaves them unset)."""
    from anharmbench.structures import supercell_matrix

    return DerivativeJob(
        supercell=supercell_matrix(dset.supercell if isinstance(dset.supercell, str)
                                   else np.asarray(dset.supercell)),
        orders=tuple(dset.orders),
        method=dset.method,
        variant=dset.variant or variant,
        qtuple=tuple(dset.qtuple) if dset.qtuple else None,
        h_range=dset.h_range,
        h_ranges={n: w for n, w in (dset.h_ranges or {}).items() if n in dset.orders} or None,
        n_steps=dset.n_steps or n_steps,
        overdetermination=dset.overdetermination,
    )


def _plan_key(job: DerivativeJob, prim: Atoms) -> str:
    return json.dumps({"job": job.to_dict(), "primitive": atoms_record(prim)}, sort_keys=True)


def prepared_plan(job: DerivativeJob, prim: Atoms, plans: dict[str, Prepared] | None = None
                  ) -> Prepared:
    """:func:`~anharmbench.derivatives.workflow.prepare` of ``job`` on ``prim``, built once
    per ``plans`` cache (by job and crystal): building a 64-atom order-3 plan takes
    minutes, and every potential is measured with the same plan."""
    key = _plan_key(job, prim)
    if plans is not None and key in plans:
        return plans[key]
    prepared = prepare(job, prim)
    if plans is not None:
        plans[key] = prepared
    return prepared


def measure_derivative_set(
    plan_dir: Path,
    label: str,
    set_name: str,
    job: DerivativeJob,
    prim: Atoms,
    potential: LammpsPotential | None,
    calculator: Any = None,
    *,
    executor: Any = None,
    plans: dict[str, Prepared] | None = None,
    progress: bool = True,
    batch_size: int = 64,
    estimator: Estimator = "tail",
) -> dict[str, Any]:
    """Measure one derivative set of one potential in ``plan_dir``: plan directory,
    evaluations (resumed from ``results.h5``), fit, ``derivatives.h5``.

    Parameters
    ----------
    plan_dir
        The plan directory (created; an unfinished one is continued).
    label
        The potential's label; ``"reference"`` must be at equilibrium, a model is
        measured at the reference's structure whatever its own equilibrium (its residual
        stress is recorded).
    set_name
        The derivative set's name (for the summary line).
    job, prim
        What to measure, on which primitive cell.
    potential
        A LAMMPS potential (evaluated through ``executor``), or ``None`` for ``calculator``.
    calculator
        An ASE calculator (in this process) when ``potential`` is ``None``.
    executor
        An :mod:`anharmbench.executors` executor (default: in process).
    plans
        Built plans by job and crystal (:func:`prepared_plan`), shared by the callers.
    progress, batch_size
        Progress bar; configurations per evaluator call.
    estimator
        How the evaluations become derivatives (:func:`~anharmbench.derivatives.fit.fit`).

    Returns
    -------
    dict
        ``derivatives`` (the file), ``counts`` and ``max_relative_uncertainty`` by order,
        ``evaluations``, ``equilibrium`` (the recorded check) and a one-line summary
        ``line`` (the study stage's summary).
    """
    from anharmbench.derivatives.directory import plan_differences
    from anharmbench.derivatives.workflow import (
        load_plan_directory,
        measure_directory,
        write_plan_directory,
    )

    if potential is None and calculator is None:
        raise ValueError(f"{label}: give a LAMMPS potential or an ASE calculator")
    pot = potential
    if pot is None:
        pot = LammpsPotential(elements=tuple(sorted(set(prim.get_chemical_symbols()))),
                              pair_style="zero 1.0", pair_coeff=("* *",),
                              name=f"{label} (ASE calculator; decks not runnable)")
    loaded = None
    if (plan_dir / "plan.json").is_file():
        try:
            loaded = load_plan_directory(plan_dir)
        except PlanDirectoryError:
            # an unfinished stage of an older version: its results cannot be tied to
            # this job, so this stage's own scratch plan is measured again
            shutil.rmtree(plan_dir)
    if loaded is not None:
        # a plan of another job, crystal or LAMMPS potential is never resumed as this one
        diffs = plan_differences(loaded[1], job, prim, pot)
        if diffs:
            raise PlanDirectoryError(
                f"{plan_dir} holds the plan of other inputs (changed: {'; '.join(diffs)}); "
                "its results would be returned as these. Measure in another directory, or "
                "discard it first")
    if loaded is None:
        prepared = prepared_plan(job, prim, plans)
        write_plan_directory(plan_dir, prepared, pot)
        loaded = (prepared, json.loads((plan_dir / "plan.json").read_text()))
    if plans is not None:
        plans[_plan_key(job, prim)] = loaded[0]
    prepared = loaded[0]
    allow = label != "reference"
    identity = loaded[1]["identity"]
    if potential is None:
        from anharmbench.derivatives.results import ResultStore, ase_evaluator, measure
        from anharmbench.derivatives.sources import ase_source

        store = ResultStore(plan_dir / "results.h5", prepared.plan, identity=identity)
        if store.reference() is None:
            ref = prepared.supercell.copy()
            ref.calc = calculator
            store.write_reference(ref.get_potential_energy(), ref.get_forces(),
                                  ref.get_stress(voigt=True), source="ASE calculator")
        measure(prepared.plan, ase_evaluator(prepared.supercell, calculator),
                store=plan_dir / "results.h5", identity=identity, progress=progress,
                batch_size=batch_size, source=ase_source(label))
    result = measure_directory(plan_dir, potential, evaluate=potential is not None,
                               loaded=loaded, executor=executor, allow_nonequilibrium=allow,
                               progress=progress, batch_size=batch_size, estimator=estimator)
    equilibrium = json.loads(
        read_derivatives_file(plan_dir / DERIVATIVES_FILE).attrs["equilibrium"])
    counts = {n: int(len(result.values[n])) for n in result.orders}
    worst = {n: float(np.nanmax(result.relative_uncertainty[n]))
             if len(result.values[n]) else 0.0 for n in result.orders}
    return {
        "derivatives": str(plan_dir / DERIVATIVES_FILE),
        "counts": counts,
        "evaluations": int(prepared.plan.n_evaluations),
        "max_relative_uncertainty": worst,
        "equilibrium": equilibrium,
        "line": f"{label} {set_name}: "
        + ", ".join(f"order {n}: {k}" for n, k in counts.items())
        + f" ({prepared.plan.n_evaluations} evaluations)",
    }


def derivative_stage(
    label: str,
    dset: DerivativeSetConfig,
    prim: Atoms,
    potential: LammpsPotential | None,
    calculator_spec: str | CalculatorSpec | None,
    upstream: dict[str, Any],
    config: StudyConfig,
    plans: dict[str, Any] | None = None,
) -> Stage:
    """Measure one derivative set on one potential (LAMMPS through the executor, or ASE):
    :func:`measure_derivative_set` in the stage's ``plan/``.

    ``plans`` is the study's cache of built plans (:class:`Prepared`) by job and crystal,
    shared by the stages of one run so that each plan is built once.
    """
    settings = profile_settings(config)
    job = derivative_job(dset, settings.n_steps, settings.variant)
    # a user's kind: ase model gives its factory as a string
    spec = (CalculatorSpec(calculator_spec) if isinstance(calculator_spec, str)
            else calculator_spec)
    executor_cfg = config.executor

    def run(directory: Path) -> dict[str, Any]:
        executor = calculator = None
        if potential is not None:
            executor = make_executor(executor_cfg.kind, workers=executor_cfg.workers,
                                     address=executor_cfg.address)
        else:
            calculator = _ase_calculator(spec, label)
        return measure_derivative_set(directory / "plan", label, dset.name, job, prim,
                                      potential, calculator, executor=executor, plans=plans,
                                      estimator=dset.estimator)

    pot_id = (potential.content_hash() if potential is not None
              else spec.key() if spec is not None else None)
    inputs = {
        "job": job.to_dict(),
        "estimator": dset.estimator,
        "primitive": atoms_record(prim),
        "potential": pot_id,
        **upstream,
    }
    return Stage(f"derivatives-{safe_name(label)}-{safe_name(dset.name)}", inputs, run)


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits and ``-_.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
