"""The study's reference: a potential, its primitive cell, or DFT data.

A reference potential (``kind: crg``, ``lammps`` or ``ase``) is measured like the models
(:mod:`anharmbench.study.derivative_stages`); DFT data give the reference derivatives
directly (:func:`data_reference_stage`: an imported phonopy/phono3py dataset or a plan
directory run by a DFT code), the derivative sets the models are measured on
(:func:`data_reference_sets`) and, for ``dataset: dft`` models, the training dataset of
the DFT supercells (:func:`dft_dataset_stage`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.derivatives.fit import ESTIMATORS
from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.derivatives.workflow import DERIVATIVES_FILE
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.study.config import DerivativeSetConfig, ReferenceConfig, StudyConfig
from anharmbench.study.runner import Stage

__all__ = ["check_dft_results", "data_reference_sets", "data_reference_stage",
           "dft_dataset_stage", "plan_orders", "primitive_cell", "reference_potential"]


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
        from anharmbench.validation import read_structure

        return read_structure(config.crystal.structure)
    if config.crystal.lattice_constant is None:
        from anharmbench.structures import relax_cubic_lattice

        pot = reference_potential(config.reference)
        if pot is None:
            raise ValueError("crystal.lattice_constant: give it when the reference is an ASE "
                             "calculator")
        a0 = relax_cubic_lattice(pot)
        return tho2_primitive(a0)
    return tho2_primitive(config.crystal.lattice_constant)


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
            from anharmbench.phonopy_interface import missing_born_warning

            warning = missing_born_warning(
                res.primitive, res.derivatives.nac if res.derivatives is not None else None,
                f"reference.dataset {dataset}")
            if warning:  # to study.log, with the stage's other warnings
                warnings.warn(warning, stacklevel=1)
            return {"derivatives": str(res.path), "counts": counts,
                    "provenance": res.provenance,
                    "line": f"reference (imported {dataset.name}, {res.fc_calculator}): "
                    + ", ".join(f"order {n}: {k}" for n, k in counts.items())}

        return Stage("reference-import", inputs, run)

    plans = cfg.plan_dirs
    for plan in plans:
        manifest, results = plan / "plan.json", plan / "results.h5"
        for f, what in ((manifest, "a plan directory (anharmbench plan --format ...)"),
                        (results, "collected DFT outputs (anharmbench collect DIR --outputs "
                                  "GLOB)")):
            if not f.is_file():
                raise FileNotFoundError(f"reference.plan: {f} not found; it needs {what}")
        check_dft_results(plan, results)  # before anything runs; again when the stage runs
    used = plan_orders(plans)
    estimators = {str(p): recorded_estimator(p) for p in plans}

    def run_files(directory: Path) -> dict[str, Any]:
        from anharmbench.derivatives.derivative_set import DerivativeSet
        from anharmbench.derivatives.fit import fit
        from anharmbench.derivatives.results import ResultStore
        from anharmbench.derivatives.workflow import (
            estimator_record,
            load_plan_directory,
            save_derivatives,
        )

        fitted: list[tuple[Path, Path, dict[str, Any]]] = []
        for i, plan in enumerate(plans):
            prepared, man = load_plan_directory(plan)
            check_dft_results(plan, plan / "results.h5")
            energies, forces, done = ResultStore(plan / "results.h5", prepared.plan,
                                                 identity=man["identity"]).load()
            # the estimator the plan's producer chose ('anharmbench derivatives DIR
            # --estimator'), never silently another
            kind = estimators[str(plan)]
            result = fit(prepared.plan, energies, forces, estimator=kind,
                         bases=prepared.bases)
            man = {**man, "potential": {"name": cfg.name, "kind": "files", "plan": str(plan)},
                   "potential_hash": _file_key(plan / "results.h5")}
            path = directory / (DERIVATIVES_FILE if len(plans) == 1
                                else f"plan{i}-{plan.name}" + "/" + DERIVATIVES_FILE)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_derivatives(path, result, prepared, man,
                             extra_attrs={"estimator": estimator_record(result)})
            fitted.append((plan, path, {**man["job"], "estimator": kind}))
        if len(plans) == 1:
            counts = {n: int(len(result.values[n])) for n in result.orders}
            return {"derivatives": str(path), "counts": counts,
                    "line": f"reference (DFT plan {plans[0].name}): "
                    + ", ".join(f"order {n}: {k}" for n, k in counts.items())}
        parts = [DerivativeSet.from_files(path, orders=used[str(plan)])
                 for plan, path, _ in fitted if used[str(plan)]]
        # each FTG's job, for measuring the models as its plan was (data_reference_sets)
        merged = DerivativeSet.combine(
            parts, cfg.name, attrs={"jobs": [job for plan, _, job in fitted if used[str(plan)]]})
        out = directory / DERIVATIVES_FILE
        merged.to_file(out)
        counts = {n: int(len(merged.values[n])) for n in sorted(merged.orders)}
        unused = {str(p): sorted(set(int(n) for n in job["orders"]) - set(used[str(p)]))
                  for p, _, job in fitted}
        note = "; ".join(f"{Path(p).name} orders {u} not used (a larger supercell has them)"
                         for p, u in unused.items() if u)
        return {"derivatives": str(out), "counts": counts, "orders_from": used,
                "line": "reference (DFT plans "
                + ", ".join(f"{Path(p).name}: orders {o}" for p, o in used.items())
                + (f"; {note}" if note else "") + "): "
                + ", ".join(f"order {n}: {k}" for n, k in counts.items())}

    return Stage("reference-files", {
        "kind": "files", "name": cfg.name,
        "estimators": estimators,
        **({"plan": _file_key(plans[0] / "plan.json"),
            "results": _file_key(plans[0] / "results.h5")} if len(plans) == 1 else
           {"plans": [{"plan": _file_key(p / "plan.json"),
                       "results": _file_key(p / "results.h5")} for p in plans]})},
        run_files)


def recorded_estimator(plan: Path) -> str:
    """The estimator a plan directory's own ``derivatives.h5`` records (``"tail"`` when it
    has none, as the plans of older versions)."""
    path = plan / DERIVATIVES_FILE
    if not path.is_file():
        return "tail"
    record = read_derivatives_file(path).attrs.get("estimator")
    kind = record.get("kind", "tail") if isinstance(record, dict) else "tail"
    if kind not in ESTIMATORS:
        raise ValueError(f"{path}: unknown estimator {kind!r} recorded; expected one of "
                         f"{ESTIMATORS}")
    return str(kind)


def plan_orders(plans: list[Path]) -> dict[str, list[int]]:
    """The orders each DFT plan gives: an order in several plans comes from the plan of the
    largest supercell (the most q-points).

    Raises
    ------
    ValueError
        An order in two plans whose supercells hold the same number of cells (no rule
        tells which one to trust).
    """
    import json

    jobs = [(p, json.loads((p / "plan.json").read_text())["job"]) for p in plans]
    size = {str(p): int(round(abs(np.linalg.det(np.asarray(j["supercell"], dtype=float)))))
            for p, j in jobs}
    owner: dict[int, Path] = {}
    for p, job in sorted(jobs, key=lambda x: -size[str(x[0])]):
        for n in sorted(int(k) for k in job["orders"]):
            if n in owner and size[str(owner[n])] == size[str(p)]:
                raise ValueError(
                    f"reference.plan: order {n} is in {owner[n]} and {p}, whose supercells "
                    f"hold the same number of cells ({size[str(p)]}); keep one of them in the "
                    "list")
            owner.setdefault(n, p)
    return {str(p): sorted(n for n, q in owner.items() if q == p) for p in plans}


def check_dft_results(plan: Path, results: Path) -> None:
    """Refuse a ``kind: files`` reference whose ``results.h5`` is not all DFT outputs.

    Every configuration must be done and read from a DFT output (its source records
    the file): a plan completed with its LAMMPS potential, or a store of an older
    version that did not record where its results came from, is not a DFT reference.
    """
    from anharmbench.derivatives.sources import (
        DFT_ORIGIN,
        MixedSourcesError,
        origin,
        stored_sources,
    )

    done, sources, _ = stored_sources(results)
    if not done.all():
        raise ValueError(
            f"reference.plan: {int((~done).sum())} of {done.size} configurations of {plan} "
            f"have no DFT result yet; run them and 'anharmbench collect {plan} --outputs GLOB'")
    unrecorded = [i for i, x in enumerate(sources) if not x]
    if unrecorded:
        raise MixedSourcesError(
            f"reference.plan: {results} does not record where {len(unrecorded)} of its "
            f"{done.size} results came from (configuration {unrecorded[0]}; written by an "
            "older anharmbench, or evaluated with a potential): a files reference takes DFT "
            f"outputs only. Move it away and collect them again: anharmbench collect {plan} "
            "--outputs GLOB")
    other = [(i, x) for i, x in enumerate(sources) if origin(x) != DFT_ORIGIN]
    if other:
        raise MixedSourcesError(
            f"reference.plan: {results} holds {len(other)} of {done.size} results computed "
            f"by {other[0][1]} (configuration {other[0][0]}), not by the DFT code"
            + (f", beside {done.size - len(other)} DFT outputs" if len(other) < done.size
               else "")
            + ": a files reference takes DFT outputs only, never completed with a "
            f"potential. Collect the DFT outputs of every configuration into a fresh "
            f"results.h5 (move it away; anharmbench collect {plan} --outputs GLOB)")


def data_reference_sets(config: StudyConfig, path: Path) -> list[DerivativeSetConfig]:
    """The derivative sets measured on the models: the FTGs and orders of the reference.

    Without sets in the config, one set per plan of the reference (its orders used, its
    job's steps and estimator), or per FTG of the data when no plan is recorded. Sets given
    in the config are checked against the reference: same supercell and orders, and where
    a plan run by a DFT code measured them, the same method, estimator and Q-tuple (what
    is measured, not only how precisely), so that Table I never joins a model's derivatives
    to a reference fitted another way.
    """
    from anharmbench.structures import supercell_matrix

    data = read_derivatives_file(path)
    by_ftg: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for n, rec in sorted(data.orders.items()):
        key = rec.supercell_matrix.tobytes()
        by_ftg.setdefault(key, (rec.supercell_matrix, []))[1].append(n)
    planned = _plan_sets(data, by_ftg)
    if not config.derivative_sets:
        return [dset for dset, _ in planned]
    for dset in config.derivative_sets:
        S = supercell_matrix(dset.supercell if isinstance(dset.supercell, str)
                             else np.asarray(dset.supercell)).astype(np.int64)
        hit = by_ftg.get(S.tobytes())
        if hit is None or not set(dset.orders) <= set(hit[1]):
            have = "; ".join(f"orders {o} in {m.tolist()}" for m, o in by_ftg.values())
            raise ValueError(
                f"derivative_sets.{dset.name}: orders {dset.orders} in {S.tolist()} are not "
                f"in the reference ({have}); leave derivative_sets out to use the "
                "reference's")
        for ref_set, from_plan in planned:
            if not from_plan or not np.array_equal(np.asarray(ref_set.supercell), S) \
                    or not set(dset.orders) & set(ref_set.orders):
                continue
            for key in ("method", "estimator", "qtuple"):
                mine, theirs = getattr(dset, key), getattr(ref_set, key)
                if mine != theirs:
                    raise ValueError(
                        f"derivative_sets.{dset.name}: {key} {mine!r}, but the reference's "
                        f"plan measured orders {ref_set.orders} of this supercell with "
                        f"{key} {theirs!r}; Table I would compare derivatives fitted two "
                        f"ways. Set {key}: {theirs!r}, or leave derivative_sets out (the "
                        "study then measures the models as each plan was)")
    return list(config.derivative_sets)


def _plan_sets(data: Any, by_ftg: dict[bytes, tuple[np.ndarray, list[int]]]
               ) -> list[tuple[DerivativeSetConfig, bool]]:
    """One set per plan of a reference file (or per FTG without plans), and whether a plan
    run by a DFT code measured it (its settings are then the set's)."""
    job = data.attrs.get("job") if isinstance(data.attrs.get("job"), dict) else {}
    if isinstance(data.attrs.get("estimator"), dict):  # one plan: the file records it
        job = {**job, "estimator": data.attrs["estimator"].get("kind", "tail")}
    # several DFT plans: each plan's orders are measured as that plan was (attrs["jobs"]);
    # two plans of one FTG (S_C orders 2-3 and S_C order 4) stay two sets, never one plan
    # with the first one's steps and estimator
    jobs = data.attrs.get("jobs") if isinstance(data.attrs.get("jobs"), list) else []
    groups: list[tuple[np.ndarray, list[int], dict[str, Any]]] = []
    for S, orders in by_ftg.values():
        mine = [j for j in jobs if np.array_equal(np.asarray(j.get("supercell")), S)]
        for j in mine:
            used = [n for n in orders if n in {int(k) for k in j.get("orders", [])}]
            if used:
                groups.append((S, used, j))
        if not mine:
            groups.append((S, orders, job))
    sets = []
    for S, orders, ftg_job in groups:
        extra: dict[str, Any] = {}
        from_plan = bool(ftg_job) and ftg_job.get("kind") != "import"
        if from_plan:  # a plan run by DFT: measure models the same way
            for key in ("method", "variant", "h_range", "n_steps", "overdetermination",
                        "estimator", "qtuple"):
                if ftg_job.get(key) is not None:
                    extra[key] = ftg_job[key]
            if ftg_job.get("h_ranges"):
                extra["h_ranges"] = {int(k): v for k, v in ftg_job["h_ranges"].items()
                                     if int(k) in orders}
        qtuple = extra.get("qtuple")  # one Q-tuple of the FTG: named by it too
        sets.append((DerivativeSetConfig(name="ftg" + "".join(map(str, orders))
                                         + ("-" + "".join(qtuple) if qtuple else ""),
                                         supercell=S.tolist(), orders=orders, **extra),
                     from_plan))
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
