"""The front door: :class:`Benchmark`, one crystal, a reference and models, end to end.

In the manner of phonopy's ``Phonopy`` and symfc's ``Symfc``: one object that holds the
crystal and the potentials, and four steps that delegate to the package's stages (the same
code the study and the CLI run, :mod:`anharmbench.study.derivative_stages`,
:mod:`anharmbench.derivatives.workflow`, :mod:`anharmbench.study.report`,
:mod:`anharmbench.study.observables`):

1. :meth:`Benchmark.plan` -- the symmetry-adapted measurement plan of every derivative
   set (irreducible derivatives, displaced configurations);
2. :meth:`Benchmark.measure` -- the irreducible derivatives of the reference and of every
   model, a :class:`~anharmbench.derivatives.DerivativeSet` per potential (each set's
   ``derivatives.h5`` is kept under :attr:`Benchmark.directory`, and an interrupted
   measurement resumes);
3. :meth:`Benchmark.table` -- Table I: each model's error per order against the reference;
4. :meth:`Benchmark.observables` -- dispersion, linewidths, lineshifts and thermal
   conductivity of every potential (the paper's Figs. 2-5).

Example (the CRG reference against a model given as a LAMMPS potential; ~1 min)::

    from anharmbench import Benchmark
    from anharmbench.potentials import LammpsPotential
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import tho2_primitive

    bench = Benchmark(tho2_primitive(), crg_potential(),
                      models={"mine": LammpsPotential.from_file("mine.json")},
                      supercells={"2I": "2I"}, orders={"2I": [2, 3]},
                      directory="runs/bench")
    bench.plan()["2I"].plan.n_evaluations      # configurations per potential
    ders = bench.measure()                     # {"reference": DerivativeSet, "mine": ...}
    ders["mine"].values[3]                     # (K_3,) eV/A^3
    for row in bench.table():                  # Table I rows
        print(row["model"], row["order"], row["rel_rmse"])

The study (``anharmbench run``) adds what a config drives around these steps: training
the models on datasets it makes, a stage cache keyed by inputs, the report.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from anharmbench.derivatives.derivative_set import DerivativeSet
    from anharmbench.derivatives.fit import Estimator
    from anharmbench.derivatives.job import DerivativeJob, Prepared
    from anharmbench.derivatives.steps import StepChoice
    from anharmbench.observables.workflow import ObservableSet, ObservableSettings
    from anharmbench.potentials.spec import LammpsPotential

__all__ = ["REFERENCE", "Benchmark"]

#: The reference's label (Table I, files, observables).
REFERENCE = "reference"


@dataclass(frozen=True)
class _Set:
    """A named derivative set: what to measure (its job) and how the stages name it."""

    name: str
    job: DerivativeJob

    @property
    def orders(self) -> tuple[int, ...]:
        return tuple(self.job.orders)

    @property
    def qtuple(self) -> tuple[str, ...] | None:
        return self.job.qtuple


class Benchmark:
    """Irreducible derivatives of a reference and of models on one crystal, compared.

    Parameters
    ----------
    crystal
        The primitive cell (``ase.Atoms``, periodic), at equilibrium on the reference
        (forces and stress; checked before measuring).
    reference
        The reference potential: a :class:`~anharmbench.potentials.LammpsPotential`
        (evaluated in LAMMPS through ``executor``) or any ASE calculator (in this process).
        ``None``: plans only.
    models
        ``{label: potential}``, each a ``LammpsPotential`` or an ASE calculator, measured at
        the reference's structure.
    supercells
        ``{set name: FTG}``: a name (``prim``, ``2I``, ``SC``, ``4I``, ``3SC``) or a 3x3
        integer matrix (rows in the primitive basis).
    orders
        ``{set name: orders}`` for ``supercells`` (or one list for all of them), each in
        2..6.
    sets
        Instead of ``supercells``/``orders``: the study's derivative sets
        (:class:`~anharmbench.study.config.DerivativeSetConfig` or their dicts, e.g.
        ``{"name": "SC", "supercell": "SC", "orders": [4], "variant": "bundled"}``), or
        ``{name: DerivativeJob}``. Default (neither): the paper's sets (orders 2-3 in 2I,
        4 in S_C, 5 and 6).
    profile
        ``"quick"`` (four step sizes, bundled plans) or ``"paper"`` (ten steps, lone):
        the step count and variant of every set that gives none.
    executor, workers, address
        Where LAMMPS potentials are evaluated (:func:`anharmbench.executors.make_executor`:
        ``"auto"``, ``"in-process"``, ``"local-processes"``, ``"dask"``).
    directory
        Where plans, evaluations and ``derivatives.h5`` files are kept (one folder per
        potential and set, each with its inputs beside it in ``<set>.inputs.json``: the
        crystal, the profile, the set's job and the potential's identity); a later
        :class:`Benchmark` on the same folder with the same inputs resumes, one with other
        inputs is refused (:class:`~anharmbench.folder_record.FolderInputsError`, naming
        what differs) unless ``overwrite``. Default: a temporary folder removed with this
        object.
    calculator_names
        ``{label: name}`` for ASE calculators that cannot be fingerprinted by their class
        and settings (e.g. a torch model: :mod:`anharmbench.potentials.fingerprint`): the
        name (checkpoint and version, say) is stored and compared instead; without it
        the stored results of such a calculator are never reused.
    overwrite
        Discard the stored results of every potential and set whose stored inputs differ
        from these (or cannot be compared) and measure them again.
    estimator
        How evaluations become derivatives, for every potential and set
        (:func:`anharmbench.derivatives.fit.fit`): ``"tail"`` (default), ``"lines"`` (the
        joint Taylor fit along all of a plan's lines) or ``"auto"`` (per order the more
        precise of the two). Each fit is recorded in its ``derivatives.h5``; changing it
        refits the stored evaluations, it evaluates nothing again.

    Attributes
    ----------
    crystal : ase.Atoms
    potentials : dict[str, Any]
        ``{"reference": reference, **models}``.
    jobs : dict[str, DerivativeJob]
        What each derivative set measures (supercell, orders, steps, variant).
    directory : pathlib.Path
    derivatives : dict[str, DerivativeSet]
        What :meth:`measure` returned, by potential label.
    files : dict[str, dict[str, pathlib.Path]]
        ``{label: {set name: derivatives.h5}}`` of the measured sets.

    Raises
    ------
    ValueError
        A model labelled ``"reference"``, sets given twice or not at all consistently,
        a bad supercell, order or profile, or ``calculator_names`` for a label that is not
        an ASE calculator.
    """

    def __init__(
        self,
        crystal: Atoms,
        reference: Any,
        models: Mapping[str, Any] | None = None,
        supercells: Mapping[str, Any] | None = None,
        orders: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
        *,
        sets: Sequence[Any] | Mapping[str, DerivativeJob] | None = None,
        profile: str = "quick",
        executor: str = "auto",
        workers: int | None = None,
        address: str | None = None,
        directory: str | Path | None = None,
        calculator_names: Mapping[str, str] | None = None,
        overwrite: bool = False,
        estimator: Estimator = "tail",
    ) -> None:
        from anharmbench.derivatives.fit import ESTIMATORS
        from anharmbench.validation import check_structure

        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.estimator: Estimator = estimator

        check_structure(crystal, "the primitive cell")
        self.crystal = crystal.copy()
        models = dict(models or {})
        if REFERENCE in models:
            raise ValueError(f"a model cannot be labelled {REFERENCE!r} (the reference's "
                             "label); rename it")
        self.potentials: dict[str, Any] = {REFERENCE: reference, **models}
        if profile not in ("quick", "paper"):
            raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
        self.profile = profile
        self._sets = _resolve_sets(supercells, orders, sets, profile)
        self.jobs: dict[str, DerivativeJob] = {s.name: s.job for s in self._sets}
        self._executor = (executor, workers, address)
        self._directory = None if directory is None else Path(directory)
        self._calculator_names = _checked_names(calculator_names, self.potentials)
        self.overwrite = bool(overwrite)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._plans: dict[str, Prepared] = {}  # built plans, by job and crystal
        self.derivatives: dict[str, DerivativeSet] = {}
        self.files: dict[str, dict[str, Path]] = {}

    @property
    def directory(self) -> Path:
        """Where plans, evaluations and ``derivatives.h5`` are kept (a temporary folder,
        made on first use and removed with this object, unless one was given)."""
        if self._directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="anharmbench-")
            self._directory = Path(self._tmp.name)
        return self._directory

    def __repr__(self) -> str:
        return (f"Benchmark({self.crystal.get_chemical_formula()}, potentials="
                f"{list(self.potentials)}, sets={list(self.jobs)}, profile={self.profile!r})")

    # ------------------------------------------------------------------ 1. plan
    def plan(self, sets: Sequence[str] | None = None) -> dict[str, Prepared]:
        """The measurement plan of each derivative set (built once, shared by potentials).

        Parameters
        ----------
        sets
            Set names (default: all).

        Returns
        -------
        dict[str, Prepared]
            ``{set name: Prepared}``: ``bases`` (the irreducible bases by order,
            ``counts()`` their sizes), ``plan`` (``n_evaluations``, ``displacements``
            ``(n, N, 3)`` Angstrom, ``summary()``), ``supercell``.
        """
        from anharmbench.study.derivative_stages import prepared_plan

        return {name: prepared_plan(self.jobs[name], self.crystal, self._plans)
                for name in self._names(sets)}

    def choose_steps(self, name: str, *, allow_nonequilibrium: bool = False,
                     **choose_kwargs: Any) -> StepChoice:
        """Choose the step windows of set ``name`` by measuring on the reference (a
        LAMMPS potential), and measure that set with them from now on.

        :func:`anharmbench.derivatives.workflow.choose_job_steps`: each order's window
        moves down until the error tail is quadratic, up while noise dominates.

        Returns
        -------
        StepChoice
            The choice: windows, history, evaluations spent (``measurements``: those of
            the final plan, reusable by :meth:`write_plan`).
        """
        from anharmbench.derivatives.workflow import choose_job_steps

        job, choice = choose_job_steps(self.jobs[name], self.crystal,
                                       self._lammps(REFERENCE, "choosing steps"),
                                       allow_nonequilibrium=allow_nonequilibrium,
                                       **choose_kwargs)
        self.jobs[name] = job
        self._sets = [_Set(s.name, job) if s.name == name else s for s in self._sets]
        return choice

    def write_plan(self, name: str, out: str | Path, *, potential: str = REFERENCE,
                   chunk_size: int = 500, force: bool = False) -> Path:
        """Write set ``name``'s plan as a directory of LAMMPS decks for ``potential``
        (run them as a job array, then ``anharmbench collect`` and ``derivatives``).

        :func:`anharmbench.derivatives.workflow.write_plan_directory`; ``force``
        replaces a directory that holds another plan (its results are deleted).
        """
        from anharmbench.derivatives.workflow import write_plan_directory

        prepared = self.plan([name])[name]
        return write_plan_directory(out, prepared, self._lammps(potential, "writing decks"),
                                    chunk_size=chunk_size, force=force)

    # ------------------------------------------------------------------ 2. measure
    def measure(self, potentials: Sequence[str] | None = None, *,
                progress: bool = True) -> dict[str, DerivativeSet]:
        """Measure every derivative set on each potential: evaluations, fit,
        ``derivatives.h5`` (:func:`anharmbench.study.derivative_stages.measure_derivative_set`,
        the study's own stage).

        The reference must be at equilibrium (forces 1e-4 eV/A, stress 0.1 GPa); models
        are measured at the reference's structure (their residual stress is recorded in
        ``attrs["equilibrium"]``).

        Parameters
        ----------
        potentials
            Labels to measure (default: all, the reference first).
        progress
            Show the evaluations' progress.

        Returns
        -------
        dict[str, DerivativeSet]
            ``{label: DerivativeSet}`` of the potentials measured: ``values[n]``,
            ``uncertainties[n]`` (``(K_n,)`` eV/A^n), ``labels[n]``,
            ``supercell_matrices[n]``, ``bases[n]``. Each order comes from the first set
            without a Q-tuple that has it (else from the first that has it); every set is
            in :attr:`files`.
        """
        from anharmbench.derivatives.derivative_set import DerivativeSet
        from anharmbench.executors import make_executor
        from anharmbench.folder_record import write_record
        from anharmbench.potentials.spec import LammpsPotential
        from anharmbench.study.derivative_stages import measure_derivative_set, safe_name

        labels = list(self.potentials) if potentials is None else list(potentials)
        unknown = [x for x in labels if x not in self.potentials]
        if unknown:
            raise ValueError(f"unknown potential(s) {unknown}; known: {list(self.potentials)}")
        if self.potentials[REFERENCE] is None and labels:
            raise ValueError("this Benchmark has no reference potential (plans only); give "
                             "one to measure")
        kind, workers, address = self._executor
        inputs = self._checked_folder(labels)
        out: dict[str, DerivativeSet] = {}
        for label in labels:
            pot = self.potentials[label]
            lammps = pot if isinstance(pot, LammpsPotential) else None
            executor = (make_executor(kind, workers=workers, address=address)
                        if lammps is not None else None)
            parts: dict[str, DerivativeSet] = {}
            for s in self._sets:
                plan_dir = self.directory / safe_name(label) / safe_name(s.name)
                # recorded before the first result, so an interrupted measurement resumes
                write_record(plan_dir, inputs[label, s.name])
                summary = measure_derivative_set(
                    plan_dir, label, s.name, s.job,
                    self.crystal, lammps, None if lammps is not None else pot,
                    executor=executor, plans=self._plans, progress=progress,
                    estimator=self.estimator)
                path = Path(summary["derivatives"])
                self.files.setdefault(label, {})[s.name] = path
                bases = self.plan([s.name])[s.name].bases
                parts[s.name] = DerivativeSet.from_file(path, name=label, bases=bases)
            # full FTGs first: an order measured in full and for one Q-tuple is the full one
            first = sorted(parts, key=lambda n: self.jobs[n].qtuple is not None)
            out[label] = DerivativeSet.combine([parts[n] for n in first], name=label,
                                               duplicates="first")
        self.derivatives.update(out)
        return out

    # ------------------------------------------------------------------ 3. Table I
    def table(self, out: str | Path | None = None, *,
              truth_orders: Mapping[str, Sequence[int]] | None = None
              ) -> list[dict[str, Any]]:
        """Table I: each model's RMSE per order against the reference, over the mean
        reference magnitude (:func:`anharmbench.study.report.error_table`), with the
        derivatives in our convention (after Fu et al. 2019: per primitive cell, in the
        crystal's own frame; :meth:`DerivativeSet.reported`).

        Parameters
        ----------
        out
            Also write ``table1.csv`` and ``table1.md`` in this folder.
        truth_orders
            ``{dataset: orders}``: models labelled ``<name>@<dataset>`` are compared with
            the reference at these orders only and with zero at the others (e.g.
            ``{"idmd": (2, 3, 4)}`` for models trained on IDMD data).

        Returns
        -------
        list[dict]
            One row per (model, order): ``model``, ``dataset``, ``order``, ``n``,
            ``rel_rmse``, ``rel_frobenius``, ``rmse`` (eV/A^n), ``mean_abs_ref``,
            ``ref_sigma``, ``within_ref_uncertainty``, ... (the reference's own row has
            ``dataset == "self"``).
        """
        from anharmbench.study.report import error_table, write_table

        if REFERENCE not in self.files:
            self.measure()
        rows = error_table(self.files, truth_orders=truth_orders)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            write_table(rows, Path(out))
        return rows

    # ------------------------------------------------------------------ 4. observables
    def observables(
        self,
        settings: ObservableSettings | None = None,
        *,
        out: str | Path | None = None,
        workers: int | None = 1,
        figures: bool = True,
    ) -> dict[str, ObservableSet]:
        """Dispersion, bubble and sunset linewidths, loop lineshifts and kappa(T) of every
        measured potential (orders 2-4 over full FTGs), and the paper's figures.

        :func:`anharmbench.study.observables.compute_potentials` (the study's stage).

        Parameters
        ----------
        settings
            Meshes, temperatures, smearings; default: the quick profile's meshes (bubble
            path 8^3, loop 6^3, kappa 6^3) or, with ``profile="paper"``, the defaults of
            :class:`~anharmbench.observables.ObservableSettings`.
        out
            Folder of ``data/<label>/`` and ``figures/`` (default: ``directory/observables``).
        workers
            Processes side by side (None: one per core).
        figures
            Also draw the figures (the reference in black).

        Returns
        -------
        dict[str, ObservableSet]
            By label; a potential whose observables cannot be computed (e.g. imaginary
            modes) is left out with a warning naming why.
        """
        from anharmbench.observables.workflow import ObservableSettings, make_figures
        from anharmbench.study.observables import (
            QUICK_MESHES,
            compute_potentials,
            full_order_files,
            observable_orders,
        )

        if not self.files:
            self.measure()
        if settings is None:
            settings = ObservableSettings(**(QUICK_MESHES if self.profile == "quick" else {}))
        folder = Path(out) if out is not None else self.directory / "observables"
        jobs = {label: paths for label, files in self.files.items()
                if (paths := full_order_files(self._sets, files))}
        done, failed = compute_potentials(jobs, observable_orders(self._sets),
                                          folder / "data", settings, workers)
        for label, why in failed.items():
            warnings.warn(f"observables of {label!r} not computed: {why}", stacklevel=2)
        if figures and done:
            make_figures(list(done.values()), folder / "figures")
        return done

    # ------------------------------------------------------------------ helpers
    def _checked_folder(self, labels: Sequence[str]) -> dict[tuple[str, str], Any]:
        """The inputs of every (potential, set) about to be measured, compared with those
        stored in the folder: refused when any differs (all differences named), or those
        results discarded with ``overwrite``.

        Returns
        -------
        dict
            ``{(label, set name): MeasurementInputs}``.
        """
        from anharmbench.derivatives.directory import discard_plan_directory
        from anharmbench.folder_record import MeasurementInputs, folder_problems, refusal
        from anharmbench.potentials.fingerprint import potential_identity
        from anharmbench.study.derivative_stages import safe_name

        directory = self.directory  # made first: a temporary one is never reused
        inputs: dict[tuple[str, str], Any] = {}
        entries = []
        for label in labels:
            identity = potential_identity(self.potentials[label],
                                          self._calculator_names.get(label))
            if not identity.reliable and self._tmp is None:
                warnings.warn(
                    f"the calculator of {label!r} ({identity.cls}) cannot be fingerprinted "
                    f"({identity.why}): a later Benchmark on {directory} will not reuse "
                    f"its results unless calculator_names={{{label!r}: ...}} names it",
                    stacklevel=3)
            for s in self._sets:
                now = MeasurementInputs(label, s.name, self.crystal, self.profile, s.job,
                                        identity)
                inputs[label, s.name] = now
                entries.append((directory / safe_name(label) / safe_name(s.name), now))
        problems = folder_problems(entries)
        if problems and not self.overwrite:
            raise refusal(directory, problems)
        for plan_dir in problems:  # overwrite: these results are of other inputs
            discard_plan_directory(plan_dir)
        return inputs

    def _names(self, sets: Sequence[str] | None) -> list[str]:
        names = list(self.jobs) if sets is None else list(sets)
        unknown = [n for n in names if n not in self.jobs]
        if unknown:
            raise ValueError(f"unknown derivative set(s) {unknown}; known: {list(self.jobs)}")
        return names

    def _lammps(self, label: str, what: str) -> LammpsPotential:
        from anharmbench.potentials.spec import LammpsPotential

        pot = self.potentials.get(label)
        if not isinstance(pot, LammpsPotential):
            raise ValueError(f"{what} needs a LAMMPS potential; {label!r} is "
                             f"{type(pot).__name__}")
        return pot


def _resolve_sets(supercells: Mapping[str, Any] | None,
                  orders: Mapping[str, Sequence[int]] | Sequence[int] | None,
                  sets: Sequence[Any] | Mapping[str, DerivativeJob] | None,
                  profile: str) -> list[_Set]:
    """The named jobs of the constructor's set arguments."""
    from anharmbench.derivatives.job import DerivativeJob
    from anharmbench.study.config import PAPER_DERIVATIVE_SETS, DerivativeSetConfig, StudyConfig
    from anharmbench.study.derivative_stages import derivative_job
    from anharmbench.study.profiles import profile_settings

    if sets is not None and (supercells is not None or orders is not None):
        raise ValueError("give the derivative sets either as sets= or as supercells= and "
                         "orders=, not both")
    if supercells is not None:
        if orders is None:
            raise ValueError("supercells= needs orders= ({set name: [orders]} or one list)")
        per = orders if isinstance(orders, Mapping) else {k: orders for k in supercells}
        missing = sorted(set(supercells) ^ set(per))
        if missing:
            raise ValueError(f"supercells and orders name different sets: {missing}")
        sets = [{"name": k, "supercell": _supercell_value(v), "orders": list(per[k])}
                for k, v in supercells.items()]
    elif orders is not None:
        raise ValueError("orders= needs supercells= (the FTG of each set)")
    if sets is None:
        sets = [dict(d) for d in PAPER_DERIVATIVE_SETS]
    if isinstance(sets, Mapping):
        out = [_Set(str(k), v) for k, v in sets.items()]
        bad = [s.name for s in out if not isinstance(s.job, DerivativeJob)]
        if bad:
            raise ValueError(f"sets {bad}: a mapping of sets holds DerivativeJob values")
    else:
        settings = profile_settings(StudyConfig(profile=profile))  # type: ignore[arg-type]
        configs = [d if isinstance(d, DerivativeSetConfig) else DerivativeSetConfig(**d)
                   for d in sets]
        out = [_Set(c.name, derivative_job(c, settings.n_steps, settings.variant))
               for c in configs]
    names = [s.name for s in out]
    if not out or len(set(names)) != len(names):
        raise ValueError(f"derivative sets need distinct names, got {names}")
    return out


def _checked_names(names: Mapping[str, str] | None, potentials: Mapping[str, Any]
                   ) -> dict[str, str]:
    """``calculator_names``, each naming an ASE calculator of ``potentials``."""
    from anharmbench.potentials.spec import LammpsPotential

    out = {str(k): str(v) for k, v in (names or {}).items()}
    bad = [k for k in out if k not in potentials or potentials[k] is None
           or isinstance(potentials[k], LammpsPotential)]
    if bad:
        calcs = [k for k, v in potentials.items()
                 if v is not None and not isinstance(v, LammpsPotential)]
        raise ValueError(f"calculator_names: {bad} are not labels of ASE calculators (a "
                         "LAMMPS potential is identified by its content); ASE calculators "
                         f"here: {calcs}")
    empty = [k for k, v in out.items() if not v.strip()]
    if empty:
        raise ValueError(f"calculator_names: the names of {empty} are empty; give each "
                         "calculator a name that tells it apart (model and version)")
    return out


def _supercell_value(value: Any) -> Any:
    """A supercell name as is, a matrix as nested lists (the study config's forms)."""
    return value if isinstance(value, str) else np.asarray(value, dtype=int).tolist()
