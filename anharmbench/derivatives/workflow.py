"""From a job description to irreducible derivatives: plan directories, collection, fit.

A :class:`DerivativeJob` names the crystal (primitive cell), the supercell (FTG), the
orders and the measurement settings. From it:

* :func:`prepare` builds the symmetry-adapted bases and the measurement plan;
* :func:`write_plan_directory` writes a self-contained directory of LAMMPS decks (one
  per chunk of configurations, each runnable by any ``lmp`` binary, e.g. as a job
  array) plus ``plan.json`` (the job, the potential, hashes);
* :func:`collect` reads finished chunks into the HDF5 store ``results.h5`` (missing
  chunks are listed, never guessed);
* :func:`evaluate_in_process` evaluates the same plan through the batch evaluator,
  resuming from ``results.h5``;
* :func:`fit_directory` fits and writes ``derivatives.h5`` with full provenance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench import __version__
from anharmbench.derivatives.fit import DerivativeResult, fit
from anharmbench.derivatives.io import (
    FORMAT,
    OrderRecord,
    read_derivatives_file,
    write_derivatives_file,
)
from anharmbench.derivatives.plan import MeasurementPlan, build_plan, geometric_steps
from anharmbench.derivatives.results import (
    Measurements,
    ResultStore,
    displacement_evaluator,
    measure,
)
from anharmbench.derivatives.steps import StepChoice, choose_steps
from anharmbench.lammps.batch import BatchEvaluator
from anharmbench.lammps.deck import (
    DeckResultError,
    read_deck_results,
    render_template,
    write_deck,
)
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import NotAtEquilibriumError, build_supercell, supercell_matrix
from anharmbench.symmetry import irreducible_basis

PLAN_MANIFEST = "plan.json"
RESULTS_FILE = "results.h5"
DERIVATIVES_FILE = "derivatives.h5"


@dataclass(frozen=True)
class DerivativeJob:
    """What to measure.

    Attributes
    ----------
    supercell
        3x3 integer supercell matrix (rows in the primitive basis).
    orders
        Derivative orders, each in 2..6.
    method
        ``"forces"`` (order n from (n-1)-th differences of forces) or ``"energies"``.
    variant
        ``"lone"`` or ``"bundled"`` (least squares, overdetermined by ``overdetermination``).
    qtuple
        Restrict to the derivatives of one Q-tuple (names such as ``"L"``, ``"G"`` or
        fractional q-points as strings), or ``None`` for all.
    h_range
        Smallest and largest step, Angstrom.
    h_ranges
        Per-order windows ``{order: (h_min, h_max)}`` that override ``h_range`` (e.g. the
        windows chosen by :func:`choose_job_steps`).
    n_steps
        Number of step sizes.
    overdetermination
        Bundled variant: equations per unknown.
    seed
        Seed of the bundled directions.
    """

    supercell: tuple[tuple[int, ...], ...]
    orders: tuple[int, ...]
    method: str = "forces"
    variant: str = "lone"
    qtuple: tuple[str, ...] | None = None
    h_range: tuple[float, float] = (0.01, 0.08)
    h_ranges: dict[int, tuple[float, float]] | None = None
    n_steps: int = 10
    overdetermination: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        mat = supercell_matrix(np.asarray(self.supercell))
        object.__setattr__(self, "supercell", tuple(tuple(int(v) for v in row) for row in mat))
        orders = tuple(sorted({int(n) for n in self.orders}))
        bad = [n for n in orders if not 2 <= n <= 6]
        if not orders or bad:
            raise ValueError(f"orders must be in 2..6, got {list(self.orders)}")
        object.__setattr__(self, "orders", orders)
        if self.method not in ("forces", "energies"):
            raise ValueError(f"method must be 'forces' or 'energies', not {self.method!r}")
        if self.variant not in ("lone", "bundled"):
            raise ValueError(f"variant must be 'lone' or 'bundled', not {self.variant!r}")
        if self.qtuple is not None:
            object.__setattr__(self, "qtuple", tuple(str(q) for q in self.qtuple))
        object.__setattr__(self, "h_range", tuple(float(h) for h in self.h_range))
        if self.h_ranges is not None:
            windows = {int(n): (float(w[0]), float(w[1])) for n, w in self.h_ranges.items()}
            for n, (lo, hi) in windows.items():
                if n not in orders:
                    raise ValueError(f"h_ranges names order {n}, which is not in {orders}")
                if not 0 < lo <= hi:
                    raise ValueError(f"step window of order {n} must satisfy 0 < h_min <= h_max")
            object.__setattr__(self, "h_ranges", windows)
        lo, hi = self.h_range
        if not 0 < lo <= hi:
            raise ValueError(f"h_range must satisfy 0 < h_min <= h_max, got {self.h_range}")

    def window(self, order: int) -> tuple[float, float]:
        """Step window ``(h_min, h_max)`` of one order, Angstrom."""
        if self.h_ranges is not None and order in self.h_ranges:
            return self.h_ranges[order]
        return self.h_range  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DerivativeJob:
        d = dict(data)
        if d.get("h_ranges") is not None:
            d["h_ranges"] = {int(n): tuple(w) for n, w in d["h_ranges"].items()}
        if d.get("qtuple") is not None:
            d["qtuple"] = tuple(d["qtuple"])
        return cls(**d)


@dataclass
class Prepared:
    """A job made concrete: structures, bases (by order) and the plan."""

    job: DerivativeJob
    primitive: Atoms
    supercell: Atoms
    bases: dict[int, Any]
    plan: MeasurementPlan
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[int, int]:
        return {n: len(b) for n, b in self.bases.items()}


def _parse_qtuple(qtuple: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for q in qtuple:
        toks = q.replace(",", " ").split()
        if len(toks) == 3:
            from fractions import Fraction

            out.append([float(Fraction(t)) for t in toks])
        else:
            out.append(q)
    return out


def job_bases(job: DerivativeJob, primitive: Atoms) -> dict[int, Any]:
    """The irreducible basis of every order of ``job`` (its Q-tuple, if any, applied)."""
    smat = np.asarray(job.supercell)
    bases: dict[int, Any] = {}
    for n in job.orders:
        kwargs: dict[str, Any] = {}
        if job.qtuple is not None:
            if len(job.qtuple) != n:
                raise ValueError(
                    f"the Q-tuple {list(job.qtuple)} has {len(job.qtuple)} entries but the "
                    f"order is {n}; give one q-point per derivative slot"
                )
            kwargs["qtuple"] = _parse_qtuple(job.qtuple)
        bases[n] = irreducible_basis(primitive, smat, order=n, **kwargs)
    return bases


def prepare(job: DerivativeJob, primitive: Atoms, *, count_naive: bool = False) -> Prepared:
    """Bases for every order of ``job`` and the measurement plan.

    ``count_naive`` also counts what measuring each order on its own would cost (for
    reports only; it doubles the planning time, minutes for a 64-atom order-3 plan).
    """
    bases = job_bases(job, primitive)
    plan = build_plan(
        bases,
        count_naive=count_naive and len(job.orders) > 1,
        method=job.method,  # type: ignore[arg-type]
        variant=job.variant,  # type: ignore[arg-type]
        steps={n: geometric_steps(*job.window(n), job.n_steps) for n in job.orders},
        overdetermination=job.overdetermination,
        seed=job.seed,
    )
    supercell = build_supercell(primitive, np.asarray(job.supercell))
    return Prepared(job, primitive.copy(), supercell, bases, plan)


# --------------------------------------------------------------------- decks
def atoms_record(atoms: Atoms) -> dict[str, Any]:
    """Symbols, cell and scaled positions of ``atoms`` as JSON-ready data."""
    return {
        "symbols": atoms.get_chemical_symbols(),
        "cell": np.asarray(atoms.cell.array).tolist(),
        "scaled_positions": atoms.get_scaled_positions().tolist(),
    }


def _atoms_from_dict(d: dict[str, Any]) -> Atoms:
    return Atoms(d["symbols"], cell=d["cell"], scaled_positions=d["scaled_positions"], pbc=True)


def write_plan_directory(
    directory: str | Path,
    prepared: Prepared,
    potential: LammpsPotential,
    *,
    chunk_size: int = 500,
) -> Path:
    """Write LAMMPS decks for every configuration of the plan, in chunks.

    Each ``chunk_XXXX/`` is a deck (``lmp -in in.evaluate``). ``plan.json`` records the
    job, primitive cell, potential and hashes so :func:`collect` and :func:`fit_directory`
    can rebuild and verify the plan.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plan = prepared.plan
    positions = prepared.supercell.positions[None] + plan.displacements
    chunks = []
    for c, start in enumerate(range(0, plan.n_evaluations, chunk_size)):
        name = f"chunk_{c:04d}"
        stop = min(start + chunk_size, plan.n_evaluations)
        write_deck(directory / name, potential, prepared.supercell, positions[start:stop])
        chunks.append({"name": name, "start": start, "stop": stop})
    manifest = {
        "format": FORMAT,
        "anharmbench": __version__,
        "job": prepared.job.to_dict(),
        "primitive": atoms_record(prepared.primitive),
        "potential": potential.to_dict(),
        "potential_hash": potential.content_hash(),
        "plan_hash": plan.hash,
        "n_evaluations": plan.n_evaluations,
        "counts": {str(n): k for n, k in prepared.counts().items()},
        "chunks": chunks,
    }
    (directory / PLAN_MANIFEST).write_text(json.dumps(manifest, indent=1))
    script = directory / "jobarray.sh"
    script.write_text(render_template("jobarray.sh.j2",
        directory_name=directory.name, n_chunks=len(chunks), chunks=[c["name"] for c in chunks]
    ))
    script.chmod(0o755)
    return directory


def load_plan_directory(directory: str | Path) -> tuple[Prepared, dict[str, Any]]:
    """Rebuild the plan of a directory and check it against the recorded hash."""
    directory = Path(directory)
    path = directory / PLAN_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a plan directory (anharmbench plan)")
    manifest = json.loads(path.read_text())
    prepared = prepare(
        DerivativeJob.from_dict(manifest["job"]), _atoms_from_dict(manifest["primitive"])
    )
    if prepared.plan.hash != manifest["plan_hash"]:
        raise ValueError(
            f"the plan rebuilt from {path} has hash {prepared.plan.hash[:16]}..., the directory "
            f"records {manifest['plan_hash'][:16]}...: it was written by a different version of "
            "anharmbench or edited; write the plan again"
        )
    return prepared, manifest


@dataclass(frozen=True)
class CollectReport:
    """What :func:`collect` found."""

    finished: list[str]
    missing: list[str]
    n_done: int
    n_total: int


def collect(directory: str | Path) -> CollectReport:
    """Read finished chunks of a plan directory into ``results.h5``.

    Chunks whose outputs are missing or truncated are reported, not read; already
    collected configurations are not read again.
    """
    directory = Path(directory)
    prepared, manifest = load_plan_directory(directory)
    store = ResultStore(directory / RESULTS_FILE, prepared.plan)
    done = store.done()
    finished, missing = [], []
    with store.writer() as write:
        for chunk in manifest["chunks"]:
            idx = np.arange(chunk["start"], chunk["stop"])
            if done[idx].all():
                finished.append(chunk["name"])
                continue
            try:
                res = read_deck_results(directory / chunk["name"])
            except DeckResultError:
                missing.append(chunk["name"])
                continue
            write(idx, res.energies, res.forces)
            finished.append(chunk["name"])
    n_done = int(store.done().sum())
    return CollectReport(finished, missing, n_done, prepared.plan.n_evaluations)


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
    store = ResultStore(Path(directory) / RESULTS_FILE, prepared.plan)
    idx = np.arange(prepared.plan.n_evaluations)
    with store.writer() as write:
        write(idx, data.energies, data.forces)
    return int(idx.size)


def evaluate_in_process(
    directory: str | Path,
    potential: LammpsPotential | None = None,
    *,
    progress: bool = False,
    force_tol: float = 1e-4,
    loaded: tuple[Prepared, dict[str, Any]] | None = None,
    executor: Any = None,
    batch_size: int = 256,
) -> Measurements:
    """Evaluate a plan directory's configurations through an executor (resumable).

    The undisplaced supercell must be at equilibrium on the potential (largest residual
    force below ``force_tol``, eV/Angstrom), else :class:`NotAtEquilibriumError`.
    ``loaded`` is the result of :func:`load_plan_directory`, to avoid rebuilding the plan.
    ``executor`` is an :mod:`anharmbench.executors` executor (default: in process, one
    LAMMPS instance); finished configurations are stored in ``results.h5`` batch by
    batch, so an interrupted run continues where it stopped.
    """
    from anharmbench.executors import InProcessExecutor

    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    potential = potential or LammpsPotential.from_dict(manifest["potential"])
    executor = executor or InProcessExecutor()
    with executor.evaluator(potential, prepared.supercell) as evaluate:
        _check_equilibrium(evaluate, len(prepared.supercell), potential, force_tol)
        return measure(
            prepared.plan, evaluate, store=directory / RESULTS_FILE, progress=progress,
            batch_size=batch_size,
        )


def _check_equilibrium(evaluate: Any, natoms: int, potential: LammpsPotential,
                       force_tol: float) -> None:
    """Raise :class:`NotAtEquilibriumError` when the undisplaced supercell has a residual
    force above ``force_tol`` (eV/Angstrom) on ``potential``."""
    residual = evaluate(np.zeros((1, natoms, 3)))[1][0]
    worst = int(np.argmax(np.linalg.norm(residual, axis=1)))
    size = float(np.linalg.norm(residual[worst]))
    if size > force_tol:
        raise NotAtEquilibriumError(
            f"the reference supercell is not at equilibrium on potential "
            f"{potential.name!r}: residual force {size:.3e} eV/A on atom {worst} exceeds "
            f"{force_tol:.1e} eV/A; relax the structure (lattice constant and internal "
            "coordinates) on this potential first"
        )


def choose_job_steps(
    job: DerivativeJob,
    primitive: Atoms,
    potential: LammpsPotential,
    *,
    force_tol: float = 1e-4,
    **choose_kwargs: Any,
) -> tuple[DerivativeJob, StepChoice]:
    """Choose each order's step window by measuring in process (automatic step range).

    Runs :func:`anharmbench.derivatives.steps.choose_steps` from ``job.h_range`` with
    the batch evaluator on ``potential`` and returns ``job`` with the chosen per-order
    windows in ``h_ranges`` (write it as a plan directory, or evaluate it, as any job).

    Returns
    -------
    (DerivativeJob, StepChoice)
        The job with ``h_ranges`` set, and the choice (history, evaluations spent).
    """
    from dataclasses import replace

    bases = job_bases(job, primitive)
    supercell = build_supercell(primitive, np.asarray(job.supercell))
    with BatchEvaluator(potential, supercell) as batch:
        evaluate = displacement_evaluator(batch, supercell.positions)
        _check_equilibrium(evaluate, len(supercell), potential, force_tol)
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
    **fit_kwargs: Any,
) -> DerivativeResult:
    """Fit the collected results of a plan directory and write ``derivatives.h5``.

    ``loaded`` is the result of :func:`load_plan_directory`, to avoid rebuilding the plan.
    """
    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the decks and 'anharmbench collect', or evaluate in process"
        )
    store = ResultStore(path, prepared.plan)
    energies, forces, done = store.load()
    if not done.all():
        raise ValueError(
            f"{int((~done).sum())} of {done.size} configurations are not evaluated yet; run the "
            "missing chunks and collect again (anharmbench collect lists them)"
        )
    result = fit(prepared.plan, energies, forces, **fit_kwargs)
    save_derivatives(directory / DERIVATIVES_FILE, result, prepared, manifest)
    return result


def save_derivatives(
    path: str | Path, result: DerivativeResult, prepared: Prepared, manifest: dict[str, Any]
) -> None:
    """Write derivatives with provenance to HDF5 (layout: :mod:`anharmbench.derivatives.io`).

    Root attributes (format, version, plan hash, potential description and hash, job),
    ``primitive/`` and ``supercell/`` structures, and per order ``order_n/`` with
    ``values`` and ``uncertainties`` (eV/A^n), ``labels``, ``multiplicity``, ``steps``
    (A), ``raw`` (per-step estimates) and ``poor_fit``. Written atomically.
    """
    S = np.asarray(prepared.job.supercell, dtype=np.int64)
    records = {
        n: OrderRecord(
            n, S, list(result.labels[n]), result.values[n], result.uncertainties[n],
            {"multiplicity": np.array([t.multiplicity for t in prepared.bases[n].tensors]),
             "steps": result.steps[n], "raw": result.raw[n], "poor_fit": result.poor_fit[n]})
        for n in result.orders
    }
    write_derivatives_file(
        path, primitive=prepared.primitive, supercell_matrix=S, supercell=prepared.supercell,
        orders=records,
        attrs={"anharmbench": __version__, "plan_hash": result.plan_hash,
               "method": result.method, "job": prepared.job.to_dict(),
               "potential": manifest["potential"],
               "potential_hash": manifest["potential_hash"]})


def load_derivatives(path: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """Values, uncertainties and labels by order from ``derivatives.h5``."""
    data = read_derivatives_file(path)
    return {n: {"values": r.values, "uncertainties": r.uncertainties,
                "labels": np.array(r.labels)} for n, r in data.orders.items()}
