"""Evaluating a plan through a batch callable, with a resumable HDF5 store.

The evaluator is any callable ``evaluate(displacements) -> (energies, forces)`` with
``displacements`` ``(n, N, 3)`` Angstrom from the reference, ``energies`` ``(n,)`` eV and
``forces`` ``(n, N, 3)`` eV/Angstrom (the ``energies_forces`` method of a
:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` is one).
An ASE calculator is adapted with :func:`ase_evaluator`, in batches through the
calculator's ``calculate_batch`` when it has one
(:class:`~anharmbench.lammps.LammpsCalculator`: one LAMMPS instance), else one
configuration at a time::

    with LammpsCalculator(potential, atoms) as calc:
        data = measure(plan, ase_evaluator(atoms, calc), store="tho2_plan.h5")
    result = fit(plan, data.energies, data.forces)

A plain function of absolute positions is adapted with :func:`displacement_evaluator`.

Store layout (HDF5): attributes ``format``, ``plan_hash``, ``method``, ``n_configurations``,
``natoms``; datasets ``displacements`` ``(n_conf, N, 3)``, ``energies`` ``(n_conf,)``,
``forces`` ``(n_conf, N, 3)`` (NaN until evaluated), ``done`` ``(n_conf,)`` bool and
``source`` ``(n_conf,)`` str, where each result came from (a potential's hash, an ASE
calculator, a DFT output file and its SHA-256: :mod:`~anharmbench.derivatives.sources`;
stores of older versions lack it and read as ``""``). Results are written and flushed
after every batch, so an interrupted measurement resumes after the last finished batch;
finished configurations are never evaluated again.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm import tqdm

from anharmbench.derivatives.fit import DerivativeResult, fit
from anharmbench.derivatives.plan import MeasurementPlan
from anharmbench.errors import AnharmbenchError, InputError

Evaluator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: ``write(indices, energies, forces, source)`` of :meth:`ResultStore.writer`.
Writer = Callable[..., None]

_STORE_FORMAT = "anharmbench-fd-store-1"


class PlanMismatchError(InputError):
    """An existing store belongs to a different plan, structure or potential."""


class StoreBusyError(AnharmbenchError, RuntimeError):
    """Another process holds the store open."""


class StoreDamagedError(PlanMismatchError):
    """The store is truncated or not HDF5 (a plan mismatch in that it cannot be used)."""


class NonFiniteEvaluationError(ValueError):
    """An evaluator returned NaN or infinite energy or forces.

    Attributes
    ----------
    index
        Index of the configuration in the plan.
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Measurements:
    """Evaluated configurations of a plan.

    Attributes
    ----------
    plan_hash
        Hash of the plan.
    energies
        ``(n_conf,)`` float64, eV.
    forces
        ``(n_conf, N, 3)`` float64, eV/Angstrom.
    n_evaluated
        Configurations evaluated by this call (the rest came from the store).
    """

    plan_hash: str
    energies: np.ndarray
    forces: np.ndarray
    n_evaluated: int


class ResultStore:
    """HDF5 store of evaluated configurations of one plan.

    Parameters
    ----------
    path
        File path; created if missing.
    plan
        The plan; an existing file must carry the same plan hash.

    Raises
    ------
    PlanMismatchError
        The file exists and holds another plan.
    """

    def __init__(self, path: str | Path, plan: MeasurementPlan, *,
                 identity: str | None = None) -> None:
        self.path = Path(path)
        self.plan = plan
        self.identity = identity
        if self.path.exists():
            with open_store(self.path, "r") as h5:
                self._check(h5)
            return
        # built under a temporary name: a killed run leaves no half-made store
        n, natoms = plan.n_evaluations, plan.natoms
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["format"] = _STORE_FORMAT
                h5.attrs["plan_hash"] = plan.hash
                if identity is not None:
                    h5.attrs["identity"] = identity
                h5.attrs["method"] = plan.method
                h5.attrs["n_configurations"] = n
                h5.attrs["natoms"] = natoms
                h5.create_dataset("displacements", data=plan.displacements)
                h5.create_dataset("energies", data=np.full(n, np.nan))
                h5.create_dataset("forces", data=np.full((n, natoms, 3), np.nan))
                h5.create_dataset("done", data=np.zeros(n, dtype=bool))
                _source_dataset(h5, n)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _check(self, h5: h5py.File) -> None:
        if h5.attrs.get("format") != _STORE_FORMAT or "done" not in h5:
            raise PlanMismatchError(
                f"{self.path} exists and is not a measurement store; move it away")
        stored = str(h5.attrs["plan_hash"])
        if stored != self.plan.hash:
            raise PlanMismatchError(
                f"store {self.path} belongs to plan {stored[:16]}..., not to this plan "
                f"{self.plan.hash[:16]}... (different bases, method, directions or steps); "
                "use another file"
            )
        if self.identity is not None and str(h5.attrs.get("identity", "")) != self.identity:
            why = ("was written without a record of the structure and potential (older "
                   "anharmbench)" if "identity" not in h5.attrs else
                   "holds results of another structure or potential for the same plan")
            raise PlanMismatchError(
                f"store {self.path} {why}; its results cannot be used for this plan. Move it "
                "away (or write the plan again with --force) and evaluate again")

    def write_reference(self, energy: float, forces: np.ndarray, stress: np.ndarray,
                        *, source: str) -> None:
        """Store the undisplaced supercell's energy (eV), forces ``(N, 3)`` (eV/A) and
        stress ``(6,)`` (Voigt, eV/A^3), the data of the equilibrium check."""
        with open_store(self.path, "r+") as h5:
            if "reference" in h5:
                del h5["reference"]
            g = h5.create_group("reference")
            g.attrs["energy"] = float(energy)
            g.attrs["source"] = source
            g.create_dataset("forces", data=np.asarray(forces, dtype=np.float64))
            g.create_dataset("stress", data=np.asarray(stress, dtype=np.float64))

    def reference(self) -> dict[str, Any] | None:
        """The stored reference evaluation (see :meth:`write_reference`), or ``None``."""
        with open_store(self.path, "r") as h5:
            if "reference" not in h5:
                return None
            g = h5["reference"]
            return {"energy": float(g.attrs["energy"]), "source": str(g.attrs["source"]),
                    "forces": np.asarray(g["forces"][...]),
                    "stress": np.asarray(g["stress"][...])}

    def done(self) -> np.ndarray:
        """``(n_conf,)`` bool, configurations already evaluated."""
        with open_store(self.path, "r") as h5:
            return np.asarray(h5["done"][...], dtype=bool)

    def sources(self) -> np.ndarray:
        """``(n_conf,)`` object array of str: where each result came from (``""``: not
        evaluated, or not recorded by an older version)."""
        with open_store(self.path, "r") as h5:
            if "source" not in h5:
                return np.full(int(h5["done"].shape[0]), "", dtype=object)
            return np.array([s.decode() if isinstance(s, bytes) else str(s)
                             for s in h5["source"][...]], dtype=object)

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(energies, forces, done)``; unevaluated entries are NaN."""
        with open_store(self.path, "r") as h5:
            return (np.asarray(h5["energies"][...]), np.asarray(h5["forces"][...]),
                    np.asarray(h5["done"][...], dtype=bool))

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """Context yielding ``write(indices, energies, forces, source)``, flushing every
        call; ``source`` is one string for all, or one per index (see
        :mod:`~anharmbench.derivatives.sources`)."""
        with open_store(self.path, "r+") as h5:
            if "source" not in h5:  # a store of an older version: unrecorded until written
                _source_dataset(h5, int(h5["done"].shape[0]))

            def write(idx: np.ndarray, e: np.ndarray, f: np.ndarray,
                      source: str | Sequence[str] = "") -> None:
                if idx.size == 0:
                    return
                order = np.argsort(idx)  # h5py fancy indexing needs increasing indices
                src = np.array([source] * idx.size if isinstance(source, str) else source,
                               dtype=object)
                idx = idx[order]
                h5["energies"][idx] = e[order]
                h5["forces"][idx] = f[order]
                h5["source"][idx] = src[order]
                h5["done"][idx] = True
                h5.flush()
            yield write


def _source_dataset(h5: h5py.File, n: int) -> None:
    h5.create_dataset("source", data=np.full(n, "", dtype=object), dtype=h5py.string_dtype())


def open_store(path: Path, mode: str) -> h5py.File:
    """Open an HDF5 file, turning h5py's errors into ones that say what to do.

    Raises
    ------
    StoreBusyError
        Another process holds the file's lock (HDF5 file locking: ``unable to lock file``).
    StoreDamagedError
        The file is truncated, not HDF5, or otherwise unreadable.
    InputError
        This user may not open the file.
    """
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        text = str(exc)
        if _is_lock_error(exc):
            raise StoreBusyError(
                f"{path} is open in another process (an evaluation or collection still "
                "running?); wait for it to finish or stop it, then try again") from exc
        if exc.errno == errno.EACCES:
            # not damaged: deleting it would be the wrong advice
            raise InputError(f"{path} cannot be opened ({mode!r}): permission denied; "
                             "give this user read and write access to it") from exc
        truncated = _TRUNCATED.search(text)
        if truncated is not None:
            what = (f"it is truncated ({truncated['eof']} of its {truncated['stored']} bytes "
                    "are there; a copy or a run was cut short while writing it)")
        else:
            first = text.splitlines()[0] if text else type(exc).__name__
            what = f"not a readable HDF5 file ({first})"
        raise StoreDamagedError(
            f"{path} is damaged: {what}. Delete it and run the same command again: it "
            "holds only finished evaluations of one plan, which are evaluated again "
            "(finished LAMMPS outputs in a plan's chunk folders are read again); every "
            "other file, derivatives.h5 and other plans' results included, is kept") from exc


# h5py's wording (HDF5 1.10-2.0): "truncated file: eof = 4000, sblock->base_addr = 0,
# stored_eof = 17800" for a cut-short file; "unable to lock file, errno = 11" for a lock
# held elsewhere. Matching a bare "lock" also hits "sblock" in the first.
_TRUNCATED = re.compile(r"truncated file: eof = (?P<eof>\d+).*?stored_eof = (?P<stored>\d+)")
_LOCK_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})


def _is_lock_error(exc: OSError) -> bool:
    """Whether h5py refused to open a file because another process holds its lock."""
    # h5py puts flock's errno on the exception (a truncated file has none)
    return "unable to lock file" in str(exc).lower() or exc.errno in _LOCK_ERRNOS


def _check_batch(plan: MeasurementPlan, idx: np.ndarray, e: Any, f: Any
                 ) -> tuple[np.ndarray, np.ndarray, int | None]:
    e = np.asarray(e, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if e.shape != (idx.size,):
        raise ValueError(f"evaluator returned energies of shape {e.shape}, expected ({idx.size},)")
    if f.shape != (idx.size, plan.natoms, 3):
        raise ValueError(f"evaluator returned forces of shape {f.shape}, "
                         f"expected ({idx.size}, {plan.natoms}, 3)")
    ok = np.isfinite(e) & np.isfinite(f.reshape(idx.size, -1)).all(axis=1)
    bad = np.flatnonzero(~ok)
    return e, f, (int(bad[0]) if bad.size else None)


def measure(
    plan: MeasurementPlan,
    evaluate: Evaluator,
    *,
    store: str | Path | None = None,
    batch_size: int = 256,
    progress: bool = False,
    identity: str | None = None,
    source: str = "",
) -> Measurements:
    """Evaluate the configurations of a plan (resuming from a store if given).

    Parameters
    ----------
    plan
        The plan.
    evaluate
        ``evaluate(displacements (n, N, 3) Angstrom) -> (energies (n,) eV, forces (n, N, 3)
        eV/Angstrom)``; see :func:`displacement_evaluator` for position-based evaluators.
    store
        HDF5 file keeping finished configurations (keyed by plan hash and configuration
        index); created if missing, resumed if present.
    batch_size
        Configurations per call of ``evaluate`` (and per flush of the store).
    progress
        Show a progress bar (configurations done of the plan's, rate, time left; stderr).
    identity
        Identity of the plan directory (structure, potential; see
        :func:`anharmbench.derivatives.directory.plan_identity`) that the store must carry.
    source
        What evaluates (:func:`~anharmbench.derivatives.sources.potential_source`,
        :func:`~anharmbench.derivatives.sources.ase_source`), recorded per configuration.

    Returns
    -------
    Measurements

    Raises
    ------
    PlanMismatchError
        ``store`` holds another plan.
    NonFiniteEvaluationError
        A configuration gave NaN/inf energy or forces (its index is in the message; the
        finished configurations before it in its batch are stored).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n, natoms = plan.n_evaluations, plan.natoms
    rs = ResultStore(store, plan, identity=identity) if store is not None else None
    if rs is not None:
        energies, forces, done = rs.load()
    else:
        energies, forces = np.full(n, np.nan), np.full((n, natoms, 3), np.nan)
        done = np.zeros(n, dtype=bool)
    todo = np.flatnonzero(~done)
    n_evaluated = 0

    def run(write: Writer | None) -> None:
        nonlocal n_evaluated
        with tqdm(total=n, initial=n - todo.size, unit="conf", desc="evaluations",
                  disable=not progress, leave=False, dynamic_ncols=True) as bar:
            for a in range(0, todo.size, batch_size):
                run_batch(todo[a : a + batch_size], write)
                bar.update(min(batch_size, todo.size - a))

    def run_batch(idx: np.ndarray, write: Writer | None) -> None:
        nonlocal n_evaluated
        try:
            out = evaluate(plan.displacements[idx])
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note(f"while evaluating configurations {int(idx[0])}..{int(idx[-1])} "
                             f"(batch of {idx.size}) of plan {plan.hash[:12]}")
            raise
        e, f, bad = _check_batch(plan, idx, *out)
        good = slice(None) if bad is None else slice(0, bad)
        energies[idx[good]], forces[idx[good]] = e[good], f[good]
        if write is not None:
            write(idx[good], e[good], f[good], source)
        n_evaluated += idx[good].size
        if bad is not None:
            i = int(idx[bad])
            what = "energy" if not np.isfinite(e[bad]) else "forces"
            raise NonFiniteEvaluationError(
                f"configuration {i} of plan {plan.hash[:12]} gave a non-finite {what} "
                f"(direction {int(plan.conf_direction[i])}, amplitude "
                f"{plan.conf_amplitude[i]:.6g} A)", i)

    if rs is not None:
        with rs.writer() as write:
            run(write)
    else:
        run(None)
    return Measurements(plan_hash=plan.hash, energies=energies, forces=forces,
                        n_evaluated=n_evaluated)


def measure_and_fit(
    plan: MeasurementPlan,
    evaluate: Evaluator,
    *,
    store: str | Path | None = None,
    batch_size: int = 256,
    **fit_kwargs: Any,
) -> DerivativeResult:
    """:func:`measure` then :func:`anharmbench.derivatives.fit.fit`."""
    data = measure(plan, evaluate, store=store, batch_size=batch_size)
    return fit(plan, data.energies, data.forces, **fit_kwargs)


_RESULT_FIELDS = ("values", "uncertainties", "steps", "raw", "h2_coefficients",
                  "h2_uncertainties", "tail_power", "relative_h2", "relative_uncertainty",
                  "poor_fit", "step_residuals")


def save_result(result: DerivativeResult, path: str | Path) -> None:
    """Write a :class:`DerivativeResult` to an HDF5 file (one group ``order_n`` per order).

    Parameters
    ----------
    result
        The fitted derivatives.
    path
        Output file (overwritten).
    """
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = "anharmbench-derivatives-1"
        h5.attrs["method"] = result.method
        h5.attrs["plan_hash"] = result.plan_hash
        for n in result.orders:
            g = h5.create_group(f"order_{n}")
            g.create_dataset("labels", data=np.array(result.labels[n], dtype=object),
                             dtype=h5py.string_dtype())
            for name in _RESULT_FIELDS:
                g.create_dataset(name, data=getattr(result, name)[n])


def load_result(path: str | Path) -> DerivativeResult:
    """Read a :class:`DerivativeResult` written by :func:`save_result`."""
    fields: dict[str, dict[int, np.ndarray]] = {name: {} for name in _RESULT_FIELDS}
    labels: dict[int, list[str]] = {}
    with h5py.File(path, "r") as h5:
        method, plan_hash = str(h5.attrs["method"]), str(h5.attrs["plan_hash"])
        for key in h5:
            n = int(key.split("_")[1])
            labels[n] = [x.decode() if isinstance(x, bytes) else str(x)
                         for x in h5[key]["labels"][...]]
            for name in _RESULT_FIELDS:
                fields[name][n] = np.asarray(h5[key][name][...])
    return DerivativeResult(method=method, plan_hash=plan_hash, labels=labels, **fields)


def displacement_evaluator(
    evaluator: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    reference_positions: np.ndarray,
) -> Evaluator:
    """Adapt a function of absolute positions to displacements.

    Parameters
    ----------
    evaluator
        ``evaluator(positions (n, N, 3) Angstrom) -> (energies (n,) eV, forces (n, N, 3)
        eV/Angstrom)``.
    reference_positions
        ``(N, 3)`` positions (Angstrom) of the undisplaced structure, in the frame the
        evaluator expects.

    Returns
    -------
    Evaluator
        ``evaluate(displacements) -> (energies, forces)``.
    """
    ref = np.array(reference_positions, dtype=np.float64)

    def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, f = evaluator(ref[None] + np.asarray(displacements, dtype=np.float64))
        return np.asarray(e), np.asarray(f)

    return evaluate


def ase_evaluator(atoms: Atoms, calculator: Calculator) -> Evaluator:
    """Evaluate displacements of ``atoms`` with an ASE calculator.

    Batches go through :func:`anharmbench.lammps.batch.calculate_batch`: the calculator's
    own ``calculate_batch`` when it has one (:class:`~anharmbench.lammps.LammpsCalculator`),
    else one ASE calculation per configuration.

    Parameters
    ----------
    atoms
        The reference structure (copied): cell, species and undisplaced positions.
    calculator
        Any ASE calculator providing energy and forces.

    Returns
    -------
    Evaluator
        ``evaluate(displacements (n, N, 3) Angstrom) -> (energies (n,) eV, forces (n, N, 3)
        eV/Angstrom)``.
    """
    from anharmbench.lammps.batch import calculate_batch

    base = atoms.copy()

    def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = base.positions[None] + np.asarray(displacements, dtype=np.float64)
        res = calculate_batch(calculator, base, positions, stress=False)
        return res.energies, res.forces

    return evaluate
