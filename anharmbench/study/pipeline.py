"""The study, stage by stage (``anharmbench run [CONFIG]``).

structure -> reference derivatives (one stage per derivative set) -> datasets (IDMD on
the Taylor Hamiltonian of the reference derivatives, reference MD) -> training (one stage
per model and dataset) -> model derivatives (per model and set) -> observables -> report.

Every stage is keyed by a hash of its inputs (:mod:`anharmbench.study.runner`); the
profile (:mod:`anharmbench.study.profiles`) fills sizes the config leaves unset.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

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
from anharmbench.study.config import (
    DerivativeSetConfig,
    ModelConfig,
    ReferenceConfig,
    StudyConfig,
)
from anharmbench.study.labels import model_label, parse_label
from anharmbench.study.profiles import model_seeds, profile_settings, replica
from anharmbench.study.runner import Stage, StageResult, StageRunner

__all__ = ["StudyResult", "derivative_job", "measure_derivative_set", "prepared_plan",
           "run_study", "safe_name"]



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


# ------------------------------------------------------------------- potentials
def _ase_calculator(spec: str | None, name: str) -> Any:
    import importlib

    if not spec or ":" not in spec:
        raise ValueError(f"{name}: kind 'ase' needs calculator: 'package.module:factory'")
    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name}: cannot import the ASE calculator {spec!r}: {exc}") from None
    return factory()


def reference_potential(cfg: ReferenceConfig) -> LammpsPotential | None:
    """The reference as a LAMMPS potential (``None`` for an ASE calculator)."""
    if cfg.kind == "crg":
        from anharmbench.potentials.crg import crg_potential

        return crg_potential()
    if cfg.kind == "lammps":
        return cfg.lammps_potential(cfg.name)
    return None


def primitive_cell(config: StudyConfig) -> Atoms:
    """The crystal's primitive cell (the embedded ThO2, scaled, or the config's file)."""
    from anharmbench.structures import tho2_primitive

    if config.crystal.structure is not None:
        from ase.io import read

        return read(config.crystal.structure)
    if config.crystal.lattice_constant is None:
        from anharmbench.structures import relax_cubic_lattice

        pot = reference_potential(config.reference)
        if pot is None:
            raise ValueError("crystal.lattice_constant: give it when the reference is an ASE "
                             "calculator")
        a0 = relax_cubic_lattice(pot)
        return tho2_primitive(a0)
    return tho2_primitive(config.crystal.lattice_constant)


# ------------------------------------------------------------------- DFT references
def _file_key(path: str | Path) -> str:
    from anharmbench.datasets.io import file_sha256

    return file_sha256(path)


def data_reference_stage(cfg: ReferenceConfig) -> Stage:
    """The reference derivatives from DFT data: an imported phonopy/phono3py dataset
    (``kind: phono3py``) or a plan directory run by a DFT code (``kind: files``)."""
    import glob

    if cfg.kind == "phono3py":
        dataset = Path(str(cfg.dataset))
        if not dataset.is_file():
            raise FileNotFoundError(f"reference.dataset: {dataset} not found")
        inputs: dict[str, Any] = {"kind": "phono3py", "dataset": _file_key(dataset),
                                  "name": cfg.name, "fc_calculator": cfg.fc_calculator}
        for key in ("forces",):
            if getattr(cfg, key):
                inputs[key] = _file_key(getattr(cfg, key))
        beside = [dataset.parent / f for f in ("FORCES_FC3", "FORCES_FC2", "FORCE_SETS")]
        inputs["beside"] = {p.name: _file_key(p) for p in beside if p.is_file()}
        if cfg.outputs:
            files = sorted(glob.glob(cfg.outputs))
            if not files:
                raise FileNotFoundError(f"reference.outputs: no file matches {cfg.outputs!r}")
            inputs["outputs"] = {Path(f).name + str(i): _file_key(f)
                                 for i, f in enumerate(files)}

        def run(directory: Path) -> dict[str, Any]:
            from anharmbench.dft.importer import import_dataset

            res = import_dataset(dataset, directory / "import", forces=cfg.forces,
                                 outputs=cfg.outputs, fc_calculator=cfg.fc_calculator,
                                 name=cfg.name, overwrite=True, progress=True)
            counts = {n: len(r.values) for n, r in res.orders.items()}
            return {"derivatives": str(res.path), "counts": counts,
                    "provenance": res.provenance,
                    "line": f"reference (imported {dataset.name}, {res.fc_calculator}): "
                    + ", ".join(f"order {n}: {k}" for n, k in counts.items())}

        return Stage("reference-import", inputs, run)

    plan = Path(str(cfg.plan))
    manifest, results = plan / "plan.json", plan / "results.h5"
    for f, what in ((manifest, "a plan directory (anharmbench plan --format ...)"),
                    (results, "collected DFT outputs (anharmbench collect DIR --outputs GLOB)")):
        if not f.is_file():
            raise FileNotFoundError(f"reference.plan: {f} not found; it needs {what}")

    def run_files(directory: Path) -> dict[str, Any]:
        from anharmbench.derivatives.fit import fit
        from anharmbench.derivatives.results import ResultStore
        from anharmbench.derivatives.workflow import load_plan_directory, save_derivatives

        prepared, man = load_plan_directory(plan)
        energies, forces, done = ResultStore(results, prepared.plan,
                                             identity=man["identity"]).load()
        if not done.all():
            raise ValueError(
                f"reference.plan: {int((~done).sum())} of {done.size} configurations of {plan} "
                "have no DFT result yet; run them and 'anharmbench collect "
                f"{plan} --outputs GLOB'")
        result = fit(prepared.plan, energies, forces)
        man = {**man, "potential": {"name": cfg.name, "kind": "files", "plan": str(plan)},
               "potential_hash": _file_key(results)}
        path = directory / DERIVATIVES_FILE
        save_derivatives(path, result, prepared, man)
        counts = {n: int(len(result.values[n])) for n in result.orders}
        return {"derivatives": str(path), "counts": counts,
                "line": f"reference (DFT plan {plan.name}): "
                + ", ".join(f"order {n}: {k}" for n, k in counts.items())}

    return Stage("reference-files", {"kind": "files", "plan": _file_key(manifest),
                                     "results": _file_key(results), "name": cfg.name},
                 run_files)


def data_reference_sets(config: StudyConfig, path: Path) -> list[DerivativeSetConfig]:
    """The derivative sets measured on the models: the FTGs and orders of the reference.

    Sets given in the config are checked against the reference (same supercell and
    orders); without them one set per FTG of the data is made.
    """
    from anharmbench.structures import supercell_matrix

    data = read_derivatives_file(path)
    by_ftg: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for n, rec in sorted(data.orders.items()):
        key = rec.supercell_matrix.tobytes()
        by_ftg.setdefault(key, (rec.supercell_matrix, []))[1].append(n)
    job = data.attrs.get("job") if isinstance(data.attrs.get("job"), dict) else {}
    if config.derivative_sets:
        for dset in config.derivative_sets:
            S = supercell_matrix(dset.supercell if isinstance(dset.supercell, str)
                                 else np.asarray(dset.supercell))
            hit = by_ftg.get(S.astype(np.int64).tobytes())
            if hit is None or not set(dset.orders) <= set(hit[1]):
                have = "; ".join(f"orders {o} in {m.tolist()}" for m, o in by_ftg.values())
                raise ValueError(
                    f"derivative_sets.{dset.name}: orders {dset.orders} in {S.tolist()} are not "
                    f"in the reference ({have}); leave derivative_sets out to use the "
                    "reference's")
        return list(config.derivative_sets)
    sets = []
    for S, orders in by_ftg.values():
        extra: dict[str, Any] = {}
        if job.get("kind") != "import":  # a plan run by DFT: measure models the same way
            for key in ("method", "variant", "h_range", "n_steps", "overdetermination"):
                if job.get(key) is not None:
                    extra[key] = job[key]
            if job.get("h_ranges"):
                extra["h_ranges"] = {int(k): v for k, v in job["h_ranges"].items()}
        sets.append(DerivativeSetConfig(name="ftg" + "".join(map(str, orders)),
                                        supercell=S.tolist(), orders=orders, **extra))
    return sets


def dft_dataset_stage(config: StudyConfig) -> Stage:
    """A training dataset from the DFT reference's supercells (energies and forces)."""
    ref = config.reference
    if ref.kind != "phono3py":
        raise ValueError("models with dataset: dft need reference kind 'phono3py' (a dataset "
                         "with supercell energies and forces, e.g. phono3py_params.yaml.xz)")
    seed = config.datasets.seed

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.datasets.dft import dataset_from_phono3py

        out = dataset_from_phono3py(str(ref.dataset), directory / "dataset", seed=seed,
                                    overwrite=True)
        from anharmbench.mlip.data import load_splits

        splits = load_splits(out, require=("train", "test"))
        counts = {"train": len(splits.train), "test": len(splits.test)}
        return {"dataset": str(out), "frames": counts,
                "line": f"dft dataset: frames {counts} from {Path(str(ref.dataset)).name}"}

    return Stage("dataset-dft", {"dataset": _file_key(str(ref.dataset)), "seed": seed}, run)


# ------------------------------------------------------------------- stages
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

    Returns
    -------
    dict
        ``derivatives`` (the file), ``counts`` and ``max_relative_uncertainty`` by order,
        ``evaluations``, ``equilibrium`` (the recorded check) and a one-line summary
        ``line`` (the study stage's summary).
    """
    from anharmbench.derivatives.workflow import (
        load_plan_directory,
        measure_directory,
        write_plan_directory,
    )

    if potential is None and calculator is None:
        raise ValueError(f"{label}: give a LAMMPS potential or an ASE calculator")
    loaded = None
    if (plan_dir / "plan.json").is_file():
        try:
            loaded = load_plan_directory(plan_dir)
        except PlanDirectoryError:
            # an unfinished stage of an older version: its results cannot be tied to
            # this job, so this stage's own scratch plan is measured again
            shutil.rmtree(plan_dir)
    if loaded is None:
        prepared = prepared_plan(job, prim, plans)
        pot = potential
        if pot is None:
            pot = LammpsPotential(elements=tuple(sorted(set(prim.get_chemical_symbols()))),
                                  pair_style="zero 1.0", pair_coeff=("* *",),
                                  name=f"{label} (ASE calculator; decks not runnable)")
        write_plan_directory(plan_dir, prepared, pot)
        loaded = (prepared, json.loads((plan_dir / "plan.json").read_text()))
    if plans is not None:
        plans[_plan_key(job, prim)] = loaded[0]
    prepared = loaded[0]
    allow = label != "reference"
    identity = loaded[1]["identity"]
    if potential is None:
        from anharmbench.derivatives.results import ResultStore, ase_evaluator, measure

        store = ResultStore(plan_dir / "results.h5", prepared.plan, identity=identity)
        if store.reference() is None:
            ref = prepared.supercell.copy()
            ref.calc = calculator
            store.write_reference(ref.get_potential_energy(), ref.get_forces(),
                                  ref.get_stress(voigt=True), source="ASE calculator")
        measure(prepared.plan, ase_evaluator(prepared.supercell, calculator),
                store=plan_dir / "results.h5", identity=identity, progress=progress,
                batch_size=batch_size)
    result = measure_directory(plan_dir, potential, evaluate=potential is not None,
                               loaded=loaded, executor=executor, allow_nonequilibrium=allow,
                               progress=progress, batch_size=batch_size)
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
    calculator_spec: str | None,
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
    executor_cfg = config.executor

    def run(directory: Path) -> dict[str, Any]:
        executor = calculator = None
        if potential is not None:
            executor = make_executor(executor_cfg.kind, workers=executor_cfg.workers,
                                     address=executor_cfg.address)
        else:
            calculator = _ase_calculator(calculator_spec, label)
        return measure_derivative_set(directory / "plan", label, dset.name, job, prim,
                                      potential, calculator, executor=executor, plans=plans)

    pot_id = potential.content_hash() if potential is not None else calculator_spec
    inputs = {
        "job": job.to_dict(),
        "primitive": atoms_record(prim),
        "potential": pot_id,
        **upstream,
    }
    return Stage(f"derivatives-{safe_name(label)}-{safe_name(dset.name)}", inputs, run)


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits and ``-_.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def idmd_stage(config: StudyConfig, prim: Atoms, ref_files: dict[int, Path],
               upstream: dict[str, Any]) -> Stage:
    """IDMD: the Taylor Hamiltonian of the reference derivatives (orders 2-4) in the MD
    cell, NVE at the profile's temperature."""
    settings = profile_settings(config)
    ds = config.datasets
    idmd = _overridden(settings.idmd, n_steps=ds.idmd_steps, test_steps=ds.idmd_test_steps,
                       seed=ds.seed)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.datasets import run_idmd
        from anharmbench.derivatives import DerivativeSet
        from anharmbench.hamiltonian import taylor_expansion

        ham = directory / "hamiltonian.taylor"
        data_dir = directory / "dataset"
        if ham.is_file():
            terms: Any = ham
        else:
            files = sorted({str(p) for p in ref_files.values()})
            ref = DerivativeSet.from_files(files, name="reference")
            derivs = {n: (ref.basis(n), np.array(ref.values[n]))
                      for n in (2, 3, 4) if n in ref.orders}
            terms = taylor_expansion(ref.primitive, derivs, ds.idmd_supercell,
                                     require_orders=(2, 3, 4))
            tmp = terms.write(directory / "hamiltonian.taylor.tmp")
            tmp.replace(ham)
            terms = ham
        res = run_idmd(terms, data_dir, idmd, progress=True)
        return _dataset_summary("idmd", res)

    inputs = {"settings": _asdict(idmd), "supercell": ds.idmd_supercell, **upstream}
    return Stage("dataset-idmd", inputs, run)


def refmd_stage(config: StudyConfig, potential: LammpsPotential) -> Stage:
    """Reference MD: NVT on the reference surface at 2000 K and 3000 K."""
    settings = profile_settings(config)
    ds = config.datasets
    refmd = _overridden(settings.refmd, supercell=ds.refmd_supercell,
                        n_snapshots=ds.refmd_snapshots, seed=ds.seed)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.datasets import run_refmd

        kwargs: dict[str, Any] = {}
        if config.reference.kind != "crg":
            kwargs["potential"] = potential
        res = run_refmd(directory / "dataset", refmd, progress=True, **kwargs)
        return _dataset_summary("refmd", res)

    inputs = {"settings": _asdict(refmd), "potential": potential.content_hash()}
    return Stage("dataset-refmd", inputs, run)


def _overridden(settings: Any, **values: Any) -> Any:
    """``settings`` (a frozen dataclass) with the fields of ``values`` that are not None."""
    return replace(settings, **{k: v for k, v in values.items() if v is not None})


def _asdict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(obj), default=str))


def _dataset_summary(kind: str, res: Any) -> dict[str, Any]:
    splits = res.manifest.get("splits", {})
    counts = {k: v["frames"] for k, v in splits.items() if isinstance(v, dict)}
    temps = [tr.temperature for tr in res.trajectories.values()]
    t_lo = min(t["min"] for t in temps) if temps else float("nan")
    t_hi = max(t["max"] for t in temps) if temps else float("nan")
    return {
        "dataset": str(res.directory),
        "frames": counts,
        "temperature_range": [t_lo, t_hi],
        "line": f"{kind}: frames {counts}, T {t_lo:.0f}-{t_hi:.0f} K",
    }


# ------------------------------------------------------------------- the study
def run_study(config: StudyConfig, directory: str | Path, *, verbose: bool = True
              ) -> StudyResult:
    """Run (or continue) the study of ``config`` in ``directory``.

    Returns
    -------
    StudyResult
    """
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
        # datasets
        datasets: dict[str, tuple[Path, str]] = {}
        needed = {m.dataset for m in config.models if m.trained}
        if config.datasets.idmd and "idmd" in needed:
            by_order = _order_files(config, ref)
            up = {"reference": {k: runner.results[f"derivatives-reference-{safe_name(k)}"].key
                                for k in ref}}
            res = runner.run(idmd_stage(config, prim, by_order, up))
            datasets["idmd"] = (Path(res.summary["dataset"]), res.key)
        if config.datasets.refmd and "refmd" in needed:
            if ref_pot is None:
                raise ValueError("reference MD needs a LAMMPS reference (kind crg or lammps)")
            res = runner.run(refmd_stage(config, ref_pot))
            datasets["refmd"] = (Path(res.summary["dataset"]), res.key)
        if "dft" in needed:
            res = runner.run(dft_dataset_stage(config))
            datasets["dft"] = (Path(res.summary["dataset"]), res.key)
        # models
        parity: dict[str, Path] = {}
        elements = tuple(sorted(set(prim.get_chemical_symbols())))
        for model in config.models:
            for label, pot, upstream, calc_spec in _deployed(model, config, datasets,
                                                             elements, runner, parity):
                sets: dict[str, Path] = {}
                for dset in config.derivative_sets:
                    if model.orders is not None and not set(dset.orders) & set(model.orders):
                        continue
                    dset = _model_windows(dset, model)
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


def _deployed(model: ModelConfig, config: StudyConfig, datasets: dict[str, tuple[Path, str]],
              elements: tuple[str, ...], runner: StageRunner, parity: dict[str, Path]
              ) -> Iterator[tuple[str, LammpsPotential | None, dict[str, Any], str | None]]:
    """``(label, LAMMPS potential or None, stage upstream, ASE calculator spec)`` of each
    instance of ``model``: one per training seed for a trained model (trained here, its
    parity added to ``parity``), else the model itself."""
    from anharmbench.study import models as model_kinds

    if not model.trained:
        label = model_label(model.name, model.dataset)
        if model.kind == "lammps":
            yield label, model.lammps_potential(model.name), {}, None
        elif model.universal:
            yield (label, *_universal_model(model, elements))
        else:
            yield label, None, {}, model.calculator
        return
    if model.dataset not in datasets:
        raise ValueError(f"model {model_label(model.name, model.dataset)}: dataset "
                         f"{model.dataset!r} is disabled in datasets")
    data_dir, data_key = datasets[model.dataset]
    for seed in model_seeds(model, config):
        label = model_label(model.name, model.dataset, replica(seed, config))
        tres = runner.run(model_kinds.training_stage(model, config, data_dir, data_key,
                                                     elements, seed,
                                                     runner.root / "cache" / "aoti"))
        if "parity" in tres.summary:
            parity[label] = Path(tres.summary["parity"])
        yield (label, model_kinds.deployed_potential(model, tres.directory, elements),
               {"model": tres.key}, None)


#: Universal presets: the study's model kind -> the name in anharmbench.mlip.universal.
_UNIVERSAL = {"chgnet": "chgnet", "sevennet": "sevennet-0"}


def _universal_model(model: ModelConfig, elements: tuple[str, ...]
                     ) -> tuple[LammpsPotential | None, dict[str, Any], str | None]:
    """(LAMMPS potential or None, stage upstream, ASE calculator spec) of a preset.

    SevenNet-0 runs as ``pair_style e3gnn`` when that plugin is built, else through its
    ASE calculator (as CHGNet always does); the choice is part of the stage's key.
    """
    from anharmbench.mlip import universal

    name = _UNIVERSAL[model.kind]
    version = universal.model_version(name)
    lammps_route = getattr(universal, "sevennet_lammps_potential", None)
    if model.kind == "sevennet" and lammps_route is not None and _has_pair_style("e3gnn"):
        return lammps_route(elements=elements), {"model": version, "route": "lammps"}, None
    factory = {"chgnet": "chgnet_calculator", "sevennet": "sevennet_calculator"}[model.kind]
    return None, {"model": version, "route": "ase"}, f"anharmbench.mlip.universal:{factory}"


def _has_pair_style(style: str) -> bool:
    """Whether the plugin of ``style`` is built (building the plugins on first use)."""
    from anharmbench.plugins import ensure_plugins

    return any(p.name.startswith(style) for p in ensure_plugins([style]))


def _model_windows(dset: DerivativeSetConfig, model: ModelConfig) -> DerivativeSetConfig:
    """The set with the model's own step windows: ``settings: {h_ranges: {n: [lo, hi]}}``
    or, for a universal preset, the windows measured for its float32 surface."""
    windows: dict[int, tuple[float, float]] = {}
    if model.universal:
        from anharmbench.mlip.universal import STEP_WINDOWS

        windows.update(STEP_WINDOWS.get(_UNIVERSAL[model.kind], {}))
    given = model.settings.get("h_ranges") if not model.trained else None
    if given:
        windows.update({int(n): (float(w[0]), float(w[1])) for n, w in given.items()})
    windows = {n: w for n, w in windows.items() if n in dset.orders}
    if not windows:
        return dset
    return dset.model_copy(update={"h_ranges": {**(dset.h_ranges or {}), **windows}})


def _order_files(config: StudyConfig, ref: dict[str, Path]) -> dict[int, Path]:
    """The reference derivative file holding each order 2-4 over the full basis."""
    by_order: dict[int, Path] = {}
    for dset in config.derivative_sets:
        if dset.qtuple:
            continue
        for n in dset.orders:
            if n in (2, 3, 4) and n not in by_order:
                by_order[n] = ref[dset.name]
    missing = [n for n in (2, 3, 4) if n not in by_order]
    if missing:
        raise ValueError(
            f"IDMD needs reference derivatives of orders 2-4 over full FTGs; order(s) {missing} "
            "are in no derivative set without a qtuple (add one, or set datasets.idmd: false)"
        )
    return by_order
