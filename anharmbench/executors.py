"""Where batches of displaced configurations are evaluated: in process, local workers, Dask.

The derivative engine (:func:`anharmbench.derivatives.measure`) calls an *evaluator*
``evaluate(displacements (n, N, 3) Angstrom) -> (energies (n,) eV, forces (n, N, 3)
eV/Angstrom)``. An :class:`Executor` makes one for a potential and a reference supercell:

* :class:`AutoExecutor` (the default of the study and of ``derivatives --evaluate``): in
  this process while a batch is cheap, local processes once a batch would take longer
  than worker start-up is worth (timed on its first configurations);
* :class:`InProcessExecutor`: one LAMMPS instance in this process
  (:meth:`~anharmbench.lammps.LammpsCalculator.calculate_batch`);
* :class:`LocalProcessExecutor`: ``workers`` processes on this machine, each with its own
  LAMMPS instance, every batch split evenly between them;
* :class:`DaskExecutor`: the workers of a Dask ``distributed`` cluster (a scheduler
  address, a ``LocalCluster``, or a dask-jobqueue cluster for Slurm/PBS).

The plain LAMMPS decks written by :func:`anharmbench.derivatives.write_plan_directory`
are the fourth route: run them as a job array with any ``lmp`` and ``collect`` them.

Every route evaluates a configuration with the same LAMMPS commands, so results agree to
round-off whichever executor ran them. Work travels as plain data (the potential's
:meth:`~anharmbench.potentials.spec.LammpsPotential.to_dict`, the structure's arrays and
the positions); each worker process keeps the LAMMPS instance of the last potential and
structure it saw, so consecutive batches of one plan reuse it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from ase import Atoms

from anharmbench.errors import AnharmbenchError
from anharmbench.potentials.spec import LammpsPotential

__all__ = [
    "AutoExecutor",
    "DaskExecutor",
    "Evaluator",
    "Executor",
    "InProcessExecutor",
    "LocalProcessExecutor",
    "make_executor",
]

class ExecutorError(AnharmbenchError, RuntimeError):
    """An executor cannot start (scheduler unreachable, missing extra)."""


#: evaluate(displacements (n, N, 3)) -> (energies (n,), forces (n, N, 3))
Evaluator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class Executor(Protocol):
    """Makes evaluators of displaced configurations of one supercell."""

    name: str

    def evaluator(self, potential: LammpsPotential, atoms: Atoms) -> Any:
        """Context manager yielding an :data:`Evaluator` (displacements from ``atoms``)."""
        ...


def _structure(atoms: Atoms) -> dict[str, Any]:
    return {
        "numbers": np.asarray(atoms.numbers).tolist(),
        "positions": np.asarray(atoms.positions).tolist(),
        "cell": np.asarray(atoms.cell[:]).tolist(),
    }


def _task_key(potential: dict[str, Any], structure: dict[str, Any]) -> str:
    text = json.dumps([potential, structure], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# One LAMMPS instance per worker process, for the last (potential, structure) it saw:
# the worker-local cache that lets consecutive batches of a plan skip LAMMPS set-up.
_WORKER_STATE: dict[str, Any] = {}


def evaluate_positions(
    potential: dict[str, Any], structure: dict[str, Any], positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces of ``positions`` (``(k, N, 3)`` Angstrom) in a worker process.

    Parameters
    ----------
    potential
        :meth:`LammpsPotential.to_dict` of the potential.
    structure
        ``{"numbers", "positions", "cell"}`` of the reference supercell (periodic).
    positions
        Absolute positions of the ``k`` configurations.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(k,)`` energies in eV and ``(k, N, 3)`` forces in eV/Angstrom.
    """
    import anharmbench  # noqa: F401  (loads libmpi for a fresh worker process)
    from anharmbench.lammps.calculator import LammpsCalculator

    key = _task_key(potential, structure)
    if _WORKER_STATE.get("key") != key:
        old = _WORKER_STATE.pop("calculator", None)
        if old is not None:
            old.release()
        atoms = Atoms(
            numbers=structure["numbers"],
            positions=structure["positions"],
            cell=structure["cell"],
            pbc=True,
        )
        _WORKER_STATE["calculator"] = LammpsCalculator(LammpsPotential.from_dict(potential),
                                                       atoms)
        _WORKER_STATE["key"] = key
    res = _WORKER_STATE["calculator"].calculate_batch(np.asarray(positions, dtype=float),
                                                      stress=False)
    return res.energies, res.forces


#: Thread-count variables of the BLAS/OpenMP runtimes a worker may load (numpy's
#: OpenBLAS, LAMMPS's OpenMP, torch's MKL/OpenMP inside pair styles).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_worker() -> None:
    """Initialise a worker process to run one thread of arithmetic.

    The executors run one worker per core; a worker whose BLAS or OpenMP runtime
    starts a thread per core as well oversubscribes the machine (and OpenBLAS threads
    spin while they wait), which is what made two workers slower than one process.
    The variables cover runtimes loaded later (LAMMPS, torch); threadpoolctl limits the
    ones already loaded (numpy's OpenBLAS, imported with this module).
    """
    import os

    from threadpoolctl import threadpool_limits

    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(1)


def worker_count(workers: int | None) -> int:
    """``workers``, or one per core when None."""
    return workers or os.cpu_count() or 1


def worker_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """``workers`` spawned processes, each running one thread of arithmetic.

    Spawned, not forked: a forked child would inherit this process's MPI/LAMMPS (and
    torch) state.
    """
    ctx = multiprocessing.get_context("spawn")
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx,
                                                  initializer=single_threaded_worker)


def _split(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, min(parts, n) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _gather(
    displacements: np.ndarray,
    reference: np.ndarray,
    submit: Callable[[np.ndarray], Any],
    result: Callable[[Any], tuple[np.ndarray, np.ndarray]],
    parts: int,
) -> tuple[np.ndarray, np.ndarray]:
    positions = reference[None] + np.asarray(displacements, dtype=float)
    pieces = _split(len(positions), parts)
    futures = [submit(positions[s]) for s in pieces]
    outs = [result(f) for f in futures]
    if not outs:
        return np.zeros(0), np.zeros((0, *reference.shape))
    return (
        np.concatenate([o[0] for o in outs]),
        np.concatenate([o[1] for o in outs]),
    )


@dataclass(frozen=True)
class InProcessExecutor:
    """Evaluate in this process with one LAMMPS instance (the default)."""

    name: str = "in-process"

    @contextmanager
    def evaluator(self, potential: LammpsPotential, atoms: Atoms) -> Iterator[Evaluator]:
        from anharmbench.derivatives.results import ase_evaluator
        from anharmbench.lammps.calculator import LammpsCalculator

        with LammpsCalculator(potential, atoms) as calc:
            yield ase_evaluator(atoms, calc)


@dataclass(frozen=True)
class LocalProcessExecutor:
    """Evaluate in ``workers`` local processes (spawned, each with its own LAMMPS).

    Parameters
    ----------
    workers
        Number of processes; each batch is split evenly between them.
    """

    workers: int = 2
    name: str = "local-processes"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @contextmanager
    def evaluator(self, potential: LammpsPotential, atoms: Atoms) -> Iterator[Evaluator]:
        pot, struct = potential.to_dict(), _structure(atoms)
        reference = np.asarray(atoms.positions, dtype=float)
        with worker_pool(self.workers) as pool:

            def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return _gather(
                    displacements,
                    reference,
                    lambda pos: pool.submit(evaluate_positions, pot, struct, pos),
                    lambda fut: fut.result(),
                    self.workers,
                )

            yield evaluate


@dataclass(frozen=True)
class AutoExecutor:
    """In this process while batches are cheap, ``workers`` local processes once not.

    Most plans of a study take a few seconds in process, less than starting workers
    (about 1.5 s) and loading the potential in each; a slow potential (GAP: 0.1-0.3 s per
    evaluation) on a large plan takes minutes. The first :attr:`probe` configurations of
    a batch are evaluated here and timed; when the rest of the batch would take longer
    than :attr:`threshold` seconds, the workers start and take over the rest of the plan.
    Results are the same either way (each configuration is evaluated by the same LAMMPS
    commands).

    Parameters
    ----------
    workers
        Processes once started (None: one per core); 1 never starts any.
    threshold
        Seconds of remaining work in a batch above which the workers start.
    probe
        Configurations timed in process first.
    """

    workers: int | None = None
    threshold: float = 4.0
    probe: int = 4
    name: str = "auto"

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @contextmanager
    def evaluator(self, potential: LammpsPotential, atoms: Atoms) -> Iterator[Evaluator]:
        workers = worker_count(self.workers)
        with ExitStack() as stack:
            here = stack.enter_context(InProcessExecutor().evaluator(potential, atoms))
            remote: list[Evaluator] = []

            def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                if remote:
                    return remote[0](displacements)
                n = min(self.probe, len(displacements))
                start = time.perf_counter()
                e0, f0 = here(displacements[:n])
                rest = displacements[n:]
                if not len(rest):
                    return e0, f0
                per = (time.perf_counter() - start) / max(n, 1)
                if workers > 1 and per * len(rest) > self.threshold:
                    remote.append(stack.enter_context(
                        LocalProcessExecutor(workers).evaluator(potential, atoms)))
                    e1, f1 = remote[0](rest)
                else:
                    e1, f1 = here(rest)
                return np.concatenate([e0, e1]), np.concatenate([f0, f1])

            yield evaluate


@dataclass(frozen=True)
class DaskExecutor:
    """Evaluate on the workers of a Dask ``distributed`` cluster.

    Parameters
    ----------
    address
        Scheduler address (``"tcp://host:8786"``), or ``None`` to start a
        ``LocalCluster`` of ``workers`` single-threaded worker processes for the run.
    workers
        Local cluster size, and the number of pieces each batch is split into.
    cluster
        An existing cluster object (e.g. a dask-jobqueue ``SLURMCluster``), used when
        given instead of ``address``.
    connect_timeout
        Seconds to wait for the scheduler at ``address``.
    """

    address: str | None = None
    workers: int = 2
    cluster: Any = None
    name: str = "dask"
    connect_timeout: float = 10.0

    @contextmanager
    def evaluator(self, potential: LammpsPotential, atoms: Atoms) -> Iterator[Evaluator]:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is an optional extra
            raise ExecutorError(
                "the Dask executor needs dask.distributed: pip install -e '.[dask]'"
            ) from exc
        pot, struct = potential.to_dict(), _structure(atoms)
        reference = np.asarray(atoms.positions, dtype=float)
        own_cluster = None
        if self.cluster is not None:
            client = Client(self.cluster)
        elif self.address is not None:
            try:
                client = Client(self.address, timeout=self.connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {self.address!r} within "
                    f"{self.connect_timeout:g} s ({type(exc).__name__}: {exc}); start it "
                    "('dask scheduler' and 'dask worker ADDRESS') or check the address, or "
                    "leave out --address to use a local cluster") from exc
        else:
            import dask

            # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which
            # makes glibc return memory on nearly every free: LAMMPS's per-evaluation
            # allocations then ran 1.5x slower than in this process. Unset it (glibc's
            # adaptive default) for our own cluster; the thread variables stay at 1.
            # The workers' statistical profiler (a stack sample every 10 ms, taking the
            # GIL) feeds only the dashboard, which this cluster does not start: off.
            with dask.config.set(
                {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                 "distributed.worker.profile.enabled": False}
            ):
                own_cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR,
                )
            client = Client(own_cluster)
        try:
            names = sorted(client.scheduler_info().get("workers", {}))
            parts = max(1, len(names) or self.workers)
            turn = itertools.count()

            def submit(pos: np.ndarray) -> Any:
                # each piece of a batch starts on its own worker instead of where the
                # scheduler puts it (a preference, not a rule: allow_other_workers)
                where = [names[next(turn) % len(names)]] if names else None
                return client.submit(evaluate_positions, pot, struct, pos, pure=False,
                                     workers=where, allow_other_workers=True)

            def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return _gather(displacements, reference, submit, lambda fut: fut.result(),
                               parts)

            yield evaluate
        finally:
            client.close()
            if own_cluster is not None:
                own_cluster.close()


def make_executor(kind: str = "auto", *, workers: int | None = None,
                  address: str | None = None
                  ) -> AutoExecutor | InProcessExecutor | LocalProcessExecutor | DaskExecutor:
    """The executor named ``kind``: ``"auto"``, ``"in-process"``, ``"local-processes"`` or
    ``"dask"``, with ``workers`` processes or Dask workers (None: one per core)."""
    if kind == "auto":
        return AutoExecutor(workers=workers)
    if kind == "in-process":
        return InProcessExecutor()
    if kind == "local-processes":
        return LocalProcessExecutor(workers=worker_count(workers))
    if kind == "dask":
        return DaskExecutor(address=address, workers=worker_count(workers))
    raise ValueError(
        f"unknown executor {kind!r}; use 'auto', 'in-process', 'local-processes' or 'dask'"
    )
