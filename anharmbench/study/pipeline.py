"""The study, stage by stage (``anharmbench run [CONFIG]``): :func:`run_study`.

structure -> reference derivatives (one stage per derivative set) -> datasets (IDMD on
the Taylor Hamiltonian of the reference derivatives, reference MD) -> training (one stage
per model and dataset) -> model derivatives (per model and set) -> observables -> report.

The stages are built by :mod:`~anharmbench.study.references` (the reference and DFT
data), :mod:`~anharmbench.study.derivative_stages`, :mod:`~anharmbench.study.dataset_stages`,
:mod:`~anharmbench.study.models` (training and deployment),
:mod:`~anharmbench.study.observables` and :mod:`~anharmbench.study.report`. Every stage is
keyed by a hash of its inputs (:mod:`anharmbench.study.runner`); the profile
(:mod:`anharmbench.study.profiles`) fills sizes the config leaves unset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.study.config import StudyConfig
from anharmbench.study.dataset_stages import idmd_reference_files, idmd_stage, refmd_stage
from anharmbench.study.derivative_stages import derivative_stage, safe_name
from anharmbench.study.labels import parse_label
from anharmbench.study.references import (
    data_reference_sets,
    data_reference_stage,
    dft_dataset_stage,
    primitive_cell,
    reference_potential,
)
from anharmbench.study.runner import Stage, StageResult, StageRunner

__all__ = ["StudyResult", "run_study"]


@dataclass
class StudyResult:
    """What :func:`run_study` produced.

    Attributes
    ----------
    directory
        The study directory.
    stages
        Every stage by name.
    derivatives
        ``{potential label: {set name: derivatives.h5 path}}``; the reference is
        ``"reference"``, models are ``"<name>@<dataset>"`` (or ``"<name>"``), and a
        trained model's further seeds ``"<name>@<dataset>#<seed>"``
        (:mod:`anharmbench.study.labels`).
    report
        Files of the report stage by kind.
    """

    directory: Path
    stages: dict[str, StageResult] = field(default_factory=dict)
    derivatives: dict[str, dict[str, Path]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


class DatasetProvider:
    """The training datasets of the study, run as stages when a training seed first needs
    one (``get(name, seed)`` -> ``(dataset directory, stage key)``)."""

    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner
        self._stages: dict[str, Callable[[int | None], Stage]] = {}
        self._got: dict[str, tuple[Path, str]] = {}  # by stage name: each runs (or is
        # found done) once per study, so its log line and timing are those of that run

    def add(self, name: str, stage: Callable[[int | None], Stage]) -> None:
        """Register the stage builder of dataset ``name`` (by training seed); the first
        seed's dataset runs now, as before the seeds redrew their data."""
        self._stages[name] = stage
        self.get(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._stages

    def get(self, name: str, seed: int | None) -> tuple[Path, str]:
        """The dataset ``name`` of training seed ``seed`` (None: the first)."""
        stage = self._stages[name](seed)
        if stage.name not in self._got:
            res = self._runner.run(stage)
            self._got[stage.name] = (Path(res.summary["dataset"]), res.key)
        return self._got[stage.name]


def _fixed_data(stage: Stage, seed: int | None) -> Stage:
    """A dataset that is the same for every training seed (the DFT supercells)."""
    return stage


def run_study(config: StudyConfig, directory: str | Path, *, verbose: bool = True
              ) -> StudyResult:
    """Run (or continue) the study of ``config`` in ``directory``.

    Returns
    -------
    StudyResult
    """
    # the model kinds import their trainers (torch): only when a study runs
    from anharmbench.study.models import deployed_models, model_windows
    from anharmbench.study.report import write_report

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps(config.model_dump(mode="json"), indent=1) + "\n"
    )
    runner = StageRunner(directory, verbose=verbose)
    out = StudyResult(directory)
    plans: dict[str, Any] = {}  # built plans shared by the derivative stages of this run
    try:
        ref: dict[str, Path] = {}
        if config.reference.is_data:
            # DFT data: the crystal and the derivative sets are the data's
            ref_file = Path(runner.run(data_reference_stage(config.reference))
                            .summary["derivatives"])
            config = config.model_copy(
                update={"derivative_sets": data_reference_sets(config, ref_file)})
            prim = read_derivatives_file(ref_file).primitive
            ref_pot = None
            ref = {dset.name: ref_file for dset in config.derivative_sets}
        else:
            prim = primitive_cell(config)
            ref_pot = reference_potential(config.reference)
            for dset in config.derivative_sets:
                st = derivative_stage("reference", dset, prim, ref_pot,
                                      config.reference.calculator, {}, config, plans)
                ref[dset.name] = Path(runner.run(st).summary["derivatives"])
        out.derivatives["reference"] = ref
        # datasets: one per training seed unless pinned (dataset_stages.data_seed)
        needed = {m.dataset for m in config.models if m.trained}
        datasets = DatasetProvider(runner)
        if config.datasets.idmd and "idmd" in needed:
            by_order = idmd_reference_files(config, ref)
            up = {"reference": {k: runner.results[f"derivatives-reference-{safe_name(k)}"].key
                                for k in ref}}
            # partial, not a lambda: the names below are rebound by the model loop
            datasets.add("idmd", partial(idmd_stage, config, prim, by_order, up))
        if config.datasets.refmd and "refmd" in needed:
            if ref_pot is None:
                raise ValueError("reference MD needs a LAMMPS reference (kind crg or lammps)")
            datasets.add("refmd", partial(refmd_stage, config, ref_pot))
        if "dft" in needed:  # the DFT supercells are the data: one set for every seed
            datasets.add("dft", partial(_fixed_data, dft_dataset_stage(config)))
        # models
        parity: dict[str, Path] = {}
        elements = tuple(sorted(set(prim.get_chemical_symbols())))
        for model in config.models:
            for label, pot, upstream, calc_spec in deployed_models(model, config, datasets,
                                                                   elements, runner, parity):
                sets: dict[str, Path] = {}
                for dset in config.derivative_sets:
                    if model.orders is not None and not set(dset.orders) & set(model.orders):
                        continue
                    dset = model_windows(dset, model)
                    st = derivative_stage(label, dset, prim, pot, calc_spec, upstream, config,
                                          plans)
                    sets[dset.name] = Path(runner.run(st).summary["derivatives"])
                out.derivatives[label] = sets
        # observables and report
        obs: dict[str, Any] = {}
        if config.observables.enabled:
            from anharmbench.study.observables import observables_stage

            # one model per label: the first seed's (the seeds' spread is in Table I)
            first = {k: v for k, v in out.derivatives.items() if parse_label(k).seed is None}
            st = observables_stage(config, prim, first,
                                   {k: r.key for k, r in runner.results.items()})
            if st is not None:
                obs = runner.run(st).summary
        out.report = write_report(directory, config, out.derivatives, parity, obs,
                                  runner.timings())
        out.stages = dict(runner.results)
    finally:
        runner.close()
    return out
