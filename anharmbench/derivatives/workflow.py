"""From a job description to irreducible derivatives: plan directories, collection, fit.

A :class:`DerivativeJob` names the crystal (primitive cell), the supercell (FTG), the
orders and the measurement settings. From it:

* :func:`prepare` builds the symmetry-adapted bases and the measurement plan
  (:mod:`~anharmbench.derivatives.job`);
* :func:`write_plan_directory` writes a self-contained directory of LAMMPS decks (one
  per chunk of configurations, each runnable by any ``lmp`` binary, e.g. as a job
  array) plus ``plan.json`` (the job, the potential, hashes); :func:`collect` reads
  finished chunks into ``results.h5`` (:mod:`~anharmbench.derivatives.directory`);
* :func:`evaluate_in_process` evaluates the same plan through an executor, resuming
  from ``results.h5`` and from collected decks;
* :func:`fit_directory` fits and writes ``derivatives.h5`` with full provenance
  (:func:`derivative_set`: the fit as a :class:`DerivativeSet`);
* :func:`measure_directory` -- the two above in one call.

Both routes check that the reference structure is at equilibrium on the potential
(forces and stress, :mod:`~anharmbench.derivatives.equilibrium`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench import __version__
from anharmbench.derivatives.derivative_set import DerivativeSet
from anharmbench.derivatives.directory import (
    DERIVATIVES_FILE,
    PLAN_MANIFEST,
    RESULTS_FILE,
    CollectReport,
    check_potential,
    collect,
    load_plan_directory,
    plan_identity,
    plan_potential,
    write_plan_directory,
)
from anharmbench.derivatives.equilibrium import (
    FORCE_TOL,
    STRESS_TOL_GPA,
    EquilibriumCheck,
    check_attrs,
    evaluate_reference,
    judge,
)
from anharmbench.derivatives.fit import DerivativeResult, Estimator, fit
from anharmbench.derivatives.io import read_derivatives_file
from anharmbench.derivatives.job import (
    MIN_STEPS,
    DerivativeJob,
    Prepared,
    atoms_from_record,
    atoms_record,
    job_bases,
    prepare,
)
from anharmbench.derivatives.results import (
    Measurements,
    ResultStore,
    ase_evaluator,
    measure,
)
from anharmbench.derivatives.sources import (
    DFT_ORIGIN,
    MixedSourcesError,
    check_one_origin,
    dft_files,
    origin,
    origin_digest,
    potential_source,
    stored_sources,
)
from anharmbench.derivatives.steps import StepChoice, choose_steps
from anharmbench.derivatives.units import check_energy_force_units
from anharmbench.errors import InputError, PlanDirectoryError
from anharmbench.lammps.calculator import LammpsCalculator
from anharmbench.lammps.deck import ENERGY_FILE, LOG_FILE
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import build_supercell

__all__ = [
    "DERIVATIVES_FILE", "MIN_STEPS", "PLAN_MANIFEST", "RESULTS_FILE", "CollectReport",
    "DerivativeJob", "EquilibriumCheck", "Prepared", "atoms_from_record", "atoms_record",
    "check_reference", "choose_job_steps", "collect", "derivative_set",
    "evaluate_in_process", "fit_directory", "job_bases", "load_derivatives",
    "load_plan_directory", "measure_directory", "plan_identity", "prepare",
    "save_derivatives", "store_measurements", "write_plan_directory",
]


def store_measurements(directory: str | Path, prepared: Prepared, data: Measurements) -> int:
    """Write already evaluated configurations of ``prepared.plan`` into the directory's store.

    Returns the number of configurations written. Raises ``ValueError`` when ``data``
    belongs to another plan.
    """
    if data.plan_hash != prepared.plan.hash:
        raise ValueError(
            f"measurements of plan {data.plan_hash[:12]} cannot fill plan "
            f"{prepared.plan.hash[:12]}"
        )
    manifest = json.loads((Path(directory) / PLAN_MANIFEST).read_text())
    store = ResultStore(Path(directory) / RESULTS_FILE, prepared.plan,
                        identity=manifest["identity"])
    idx = np.arange(prepared.plan.n_evaluations)
    with store.writer() as write:
        write(idx, data.energies, data.forces, _potential_source(manifest))
    return int(idx.size)


def _potential_source(manifest: dict[str, Any]) -> str:
    """The source of a configuration evaluated with the plan's own potential."""
    return potential_source(str(manifest["potential"].get("name", "?")),
                            manifest["potential_hash"])


def refuse_dft_completion(directory: Path, store_path: Path, manifest: dict[str, Any]) -> None:
    """Refuse evaluating with the plan's potential a plan that received DFT outputs.

    A DFT plan keeps its LAMMPS decks (and its potential in ``plan.json``), but its
    missing configurations must come from the same DFT code, never from that potential:
    fitted together, they give derivatives that are neither the code's nor the
    potential's. Nothing is written.
    """
    if not store_path.is_file():
        return
    done, sources, ref_source = stored_sources(store_path)
    dft = np.array([origin(str(x)) == DFT_ORIGIN for x in sources]) & done
    if not dft.any() and not ref_source.startswith("DFT output"):
        return
    missing = np.flatnonzero(~done)
    shown = ", ".join(str(int(i)) for i in missing[:8]) + (" ..." if missing.size > 8 else "")
    example = next(iter(dft_files(sources[dft]).keys()), ref_source)
    raise MixedSourcesError(
        f"{directory} received DFT outputs ({int(dft.sum())} of {done.size} configurations, "
        f"e.g. {example}); a plan holding DFT results is never completed with its LAMMPS "
        f"potential {manifest['potential'].get('name', '?')!r}. Collect the DFT outputs of "
        f"the {missing.size} missing configuration(s) ({shown}) with 'anharmbench collect "
        f"{directory} --outputs GLOB', then fit with 'anharmbench derivatives {directory}' "
        "(without --evaluate)")


def _has_deck_outputs(directory: Path, manifest: dict[str, Any]) -> bool:
    return any((directory / c["name"] / name).is_file()
               for c in [*manifest["chunks"], manifest["reference"]]
               for name in (ENERGY_FILE, LOG_FILE))


def check_reference(
    directory: str | Path,
    potential: LammpsPotential | None = None,
    *,
    loaded: tuple[Prepared, dict[str, Any]] | None = None,
    force_tol: float = FORCE_TOL,
    stress_tol_gpa: float = STRESS_TOL_GPA,
    allow_nonequilibrium: bool = False,
) -> EquilibriumCheck:
    """Evaluate (or read the collected) reference supercell of a plan directory and check
    that it is at equilibrium: forces and stress (:func:`~anharmbench.derivatives.
    equilibrium.judge`). The evaluation is stored in ``results.h5``.

    Raises
    ------
    NotAtEquilibriumError
        Not at equilibrium and ``allow_nonequilibrium`` is false.
    """
    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    potential = potential or plan_potential(manifest, directory)
    store = ResultStore(directory / RESULTS_FILE, prepared.plan,
                        identity=manifest["identity"])
    ref = store.reference()
    if ref is None:
        energy, forces, stress = evaluate_reference(potential, prepared.supercell)
        store.write_reference(energy, forces, stress, source="in process")
        ref = store.reference()
        assert ref is not None  # just written
    return judge(ref["forces"], ref["stress"], potential_name=potential.name,
                 source=ref["source"], force_tol=force_tol, stress_tol_gpa=stress_tol_gpa,
                 allow=allow_nonequilibrium)


def evaluate_in_process(
    directory: str | Path,
    potential: LammpsPotential | None = None,
    *,
    progress: bool = False,
    force_tol: float = FORCE_TOL,
    stress_tol_gpa: float = STRESS_TOL_GPA,
    allow_nonequilibrium: bool = False,
    loaded: tuple[Prepared, dict[str, Any]] | None = None,
    executor: Any = None,
    batch_size: int = 256,
) -> Measurements:
    """Evaluate a plan directory's configurations through an executor (resumable).

    The undisplaced supercell must be at equilibrium on the potential (residual forces
    below ``force_tol`` eV/Angstrom and stress below ``stress_tol_gpa`` GPa), else
    :class:`NotAtEquilibriumError` before any work is spent (``allow_nonequilibrium``
    goes on and the fit marks the output). ``potential`` must be the one the directory
    was planned for (default: that one). Deck outputs already in the directory are
    collected first, so configurations run as decks are not evaluated again.
    ``loaded`` is the result of :func:`load_plan_directory`, to avoid rebuilding the plan.
    ``executor`` is an :mod:`anharmbench.executors` executor (default: in process, one
    LAMMPS instance); finished configurations are stored in ``results.h5`` batch by
    batch, so an interrupted run continues where it stopped.

    Raises
    ------
    PlanDirectoryError
        ``potential`` is not the plan's, or a deck in the directory is not the plan's.
    """
    from anharmbench.executors import InProcessExecutor

    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    potential = potential or plan_potential(manifest, directory)
    check_potential(manifest, potential, directory)
    refuse_dft_completion(directory, directory / RESULTS_FILE, manifest)
    if _has_deck_outputs(directory, manifest):
        report = collect(directory, loaded=(prepared, manifest))
        if report.refused:
            raise PlanDirectoryError(
                "deck outputs in the plan directory cannot be trusted: " + "; ".join(
                    f"{name}: {why}" for name, why in report.refused.items()))
    executor = executor or InProcessExecutor()
    # the executor starts first: an unreachable cluster leaves the directory untouched
    with executor.evaluator(potential, prepared.supercell) as evaluate:
        check_reference(directory, potential, loaded=(prepared, manifest), force_tol=force_tol,
                        stress_tol_gpa=stress_tol_gpa,
                        allow_nonequilibrium=allow_nonequilibrium)
        return measure(
            prepared.plan, evaluate, store=directory / RESULTS_FILE, progress=progress,
            batch_size=batch_size, identity=manifest["identity"],
            source=_potential_source(manifest),
        )


def choose_job_steps(
    job: DerivativeJob,
    primitive: Atoms,
    potential: LammpsPotential,
    *,
    force_tol: float = FORCE_TOL,
    stress_tol_gpa: float = STRESS_TOL_GPA,
    allow_nonequilibrium: bool = False,
    **choose_kwargs: Any,
) -> tuple[DerivativeJob, StepChoice]:
    """Choose each order's step window by measuring in process (automatic step range).

    Runs :func:`anharmbench.derivatives.steps.choose_steps` from ``job.h_range`` with
    :class:`~anharmbench.lammps.LammpsCalculator` batches on ``potential`` and returns
    ``job`` with the chosen per-order windows in ``h_ranges`` (write it as a plan
    directory, or evaluate it, as any job). The reference supercell is checked for
    equilibrium first (forces and stress).

    Returns
    -------
    (DerivativeJob, StepChoice)
        The job with ``h_ranges`` set, and the choice (history, evaluations spent).
    """
    from dataclasses import replace

    bases = job_bases(job, primitive)
    supercell = build_supercell(primitive, np.asarray(job.supercell))
    with LammpsCalculator(potential, supercell) as calc:
        ref = calc.calculate_batch(supercell.positions[None], stress=True)
        judge(ref.forces[0], ref.stresses[0], potential_name=potential.name,
              source="in process", force_tol=force_tol, stress_tol_gpa=stress_tol_gpa,
              allow=allow_nonequilibrium)
        evaluate = ase_evaluator(supercell, calc)
        choice = choose_steps(
            bases,
            evaluate,
            method=job.method,  # type: ignore[arg-type]
            variant=job.variant,  # type: ignore[arg-type]
            h_range=job.h_range,
            n_steps=job.n_steps,
            overdetermination=job.overdetermination,
            seed=job.seed,
            **choose_kwargs,
        )
    windows = {n: (float(h.min()), float(h.max())) for n, h in choice.steps.items()}
    return replace(job, h_ranges=windows), choice


def fit_directory(
    directory: str | Path,
    *,
    loaded: tuple[Prepared, dict[str, Any]] | None = None,
    force_tol: float = FORCE_TOL,
    stress_tol_gpa: float = STRESS_TOL_GPA,
    allow_nonequilibrium: bool = False,
    estimator: Estimator = "tail",
    **fit_kwargs: Any,
) -> DerivativeResult:
    """Fit the collected results of a plan directory and write ``derivatives.h5``.

    ``estimator`` is :func:`~anharmbench.derivatives.fit.fit`'s (``"tail"`` or ``"lines"``);
    the file records it (attribute ``estimator``: the kind and, for the joint Taylor fit,
    each order's window and powers), and refitting needs no new evaluation.

    The reference evaluation stored with the results (in process, or the collected
    ``reference`` deck) is checked for equilibrium (forces and stress) and the check is
    recorded in ``derivatives.h5`` (attribute ``equilibrium``). Without a reference
    evaluation (DFT outputs collected without one) the file records it as unchecked.
    ``loaded`` is the result of :func:`load_plan_directory`, to avoid rebuilding the plan.
    Results of DFT outputs give a ``derivatives.h5`` named ``DFT`` and hashed by their
    files (not by the plan's LAMMPS potential); ``sources`` records their origin.

    Raises
    ------
    NotAtEquilibriumError
        The reference is not at equilibrium and ``allow_nonequilibrium`` is false.
    MixedSourcesError
        The configurations come from two sources (a potential and DFT outputs).
    InputError
        A configuration has non-finite data.
    ForceUnitError
        DFT forces that do not match their energies' units
        (:mod:`~anharmbench.derivatives.units`).
    """
    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the decks and 'anharmbench collect', or evaluate in process"
        )
    store = ResultStore(path, prepared.plan, identity=manifest["identity"])
    energies, forces, done = store.load()
    sources = store.sources()
    # one origin only (never a potential's results beside DFT's), checked first: it
    # names the mix even while configurations are still missing
    where = check_one_origin(sources, done, str(path))
    if not done.all():
        raise ValueError(
            f"{int((~done).sum())} of {done.size} configurations are not evaluated yet; run the "
            "missing chunks and collect again (anharmbench collect lists them)"
        )
    check_finite_results(path, prepared.plan.method, energies, forces, sources)
    ref = store.reference()
    check = None if ref is None else judge(
        ref["forces"], ref["stress"], potential_name=manifest["potential"].get("name", "?"),
        source=ref["source"], force_tol=force_tol, stress_tol_gpa=stress_tol_gpa,
        allow=allow_nonequilibrium)
    extra = check_attrs(check, "no reference evaluation was collected")
    extra["sources"] = json.dumps({"origin": where or "not recorded (older anharmbench)",
                                   "dft_files": dft_files(sources)})
    if where == DFT_ORIGIN:
        check_energy_force_units(prepared.plan.displacements, forces, energies, str(path))
        # the derivatives are the DFT code's, not the plan's LAMMPS potential's: name and
        # hash them by their files, so they are never joined with that potential's
        manifest = {**manifest, "potential": {"name": "DFT", "kind": "files",
                                              "plan": str(directory.resolve())},
                    "potential_hash": origin_digest(list(sources))}
    result = fit(prepared.plan, energies, forces, estimator=estimator, bases=prepared.bases,
                 **fit_kwargs)
    extra["estimator"] = estimator_record(result)
    save_derivatives(directory / DERIVATIVES_FILE, result, prepared, manifest,
                     extra_attrs=extra)
    return result


def estimator_record(result: DerivativeResult) -> dict[str, Any]:
    """What ``derivatives.h5`` records of how its values were estimated."""
    rec: dict[str, Any] = {"kind": result.estimator,
                           "chosen": {str(n): c for n, c in sorted(result.chosen.items())}}
    if result.line_fit is not None:
        rec["lines"] = result.line_fit.summary()
    return rec


def check_finite_results(path: Path, method: str, energies: np.ndarray, forces: np.ndarray,
                         sources: np.ndarray) -> None:
    """Refuse non-finite results of the quantity a plan fits, naming the store, the
    configuration and where it came from (a fit would spread them over every derivative)."""
    data = energies[:, None] if method == "energies" else forces.reshape(len(forces), -1)
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{path}: configuration {i} ({sources[i] or 'source not recorded'}) has non-finite "
            f"{'energy' if method == 'energies' else 'forces'} ({bad.size} configuration(s) "
            "in all); evaluate or collect it again")


def derivative_set(
    result: DerivativeResult, prepared: Prepared, manifest: dict[str, Any],
    *, extra_attrs: dict[str, Any] | None = None,
) -> DerivativeSet:
    """The fitted derivatives of a plan as a :class:`DerivativeSet`, with provenance.

    ``attrs`` (the root attributes of ``derivatives.h5``): the anharmbench version, plan
    hash, method, job, potential description and hash, the plan's identity, and
    ``extra_attrs`` (e.g. the equilibrium check). The name is the potential's.
    """
    attrs = {"anharmbench": __version__, "plan_hash": result.plan_hash,
             "method": result.method, "job": prepared.job.to_dict(),
             "potential": manifest["potential"],
             "potential_hash": manifest["potential_hash"],
             "identity": manifest.get("identity", ""), **(extra_attrs or {})}
    return DerivativeSet.from_result(result, prepared,
                                     name=str(manifest["potential"].get("name", "potential")),
                                     attrs=attrs)


def save_derivatives(
    path: str | Path, result: DerivativeResult, prepared: Prepared, manifest: dict[str, Any],
    *, extra_attrs: dict[str, Any] | None = None,
) -> None:
    """Write derivatives with provenance to HDF5 (layout: :mod:`anharmbench.derivatives.io`).

    :func:`derivative_set` written by :meth:`DerivativeSet.to_file`: root attributes
    (format, version, plan hash, potential description and hash, job), ``primitive/`` and
    ``supercell/`` structures, and per order ``order_n/`` with ``values`` and
    ``uncertainties`` (eV/A^n), ``labels``, ``multiplicity``, ``steps`` (A), ``raw``
    (per-step estimates), ``poor_fit`` and the reported values (our convention). Written atomically.
    """
    derivative_set(result, prepared, manifest, extra_attrs=extra_attrs).to_file(path)


def measure_directory(
    directory: str | Path,
    potential: LammpsPotential | None = None,
    *,
    evaluate: bool = True,
    loaded: tuple[Prepared, dict[str, Any]] | None = None,
    executor: Any = None,
    allow_nonequilibrium: bool = False,
    progress: bool = False,
    batch_size: int = 256,
    estimator: Estimator = "tail",
) -> DerivativeResult:
    """Evaluate what a plan directory is missing (``evaluate``), fit, write ``derivatives.h5``.

    :func:`evaluate_in_process` (through ``executor``, resumable) then
    :func:`fit_directory`; the route of ``anharmbench derivatives DIR --evaluate``, of the
    study and of :class:`anharmbench.Benchmark`.

    Parameters
    ----------
    directory
        A plan directory (:func:`write_plan_directory`).
    potential
        The potential it was planned for (default: the one in ``plan.json``).
    evaluate
        Evaluate the configurations not yet in ``results.h5`` first (else fit what the
        decks or DFT outputs gave).
    loaded
        :func:`load_plan_directory` of ``directory`` (building a plan can take minutes).
    executor
        An :mod:`anharmbench.executors` executor (default: in process).
    allow_nonequilibrium
        Measure and fit a reference that is not at equilibrium (marked in the file).
    progress
        Show the evaluations' progress bar.
    batch_size
        Configurations per executor call (and per flush of ``results.h5``).
    estimator
        ``"tail"`` or ``"lines"`` (:func:`~anharmbench.derivatives.fit.fit`).

    Returns
    -------
    DerivativeResult
        The fit, with its diagnostics.
    """
    loaded = loaded or load_plan_directory(directory)
    if evaluate:
        evaluate_in_process(directory, potential, progress=progress, loaded=loaded,
                            executor=executor, allow_nonequilibrium=allow_nonequilibrium,
                            batch_size=batch_size)
    return fit_directory(directory, loaded=loaded, allow_nonequilibrium=allow_nonequilibrium,
                         estimator=estimator)


def load_derivatives(path: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """Values, uncertainties and labels by order from ``derivatives.h5``."""
    data = read_derivatives_file(path)
    return {n: {"values": r.values, "uncertainties": r.uncertainties,
                "labels": np.array(r.labels)} for n, r in data.orders.items()}
