"""Collecting DFT outputs of a plan directory into its ``results.h5``.

All outputs are read and matched (:mod:`anharmbench.dft.outputs`) before anything is
written, so one bad file leaves ``results.h5`` as it was.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from anharmbench.dft.inputs import job_name
from anharmbench.dft.outputs import OutputError, match_outputs, read_output

#: Largest force difference (eV/A) between a new output and an already stored result of
#: the same configuration that still counts as the same result.
FORCE_ATOL = 1e-8


@dataclass(frozen=True)
class OutputsReport:
    """What :func:`collect_outputs` did.

    Attributes
    ----------
    n_files
        Output files read.
    n_new
        Configurations written to ``results.h5`` by this call.
    n_already
        Outputs of configurations already stored with the same forces (left as stored).
    n_done
        Configurations done in ``results.h5`` now.
    n_total
        Configurations of the plan.
    missing
        ``(k,)`` int, configurations still missing, increasing.
    store
        Path of ``results.h5``.
    """

    n_files: int
    n_new: int
    n_already: int
    n_done: int
    n_total: int
    missing: np.ndarray
    store: Path

    def missing_text(self, show: int = 8) -> str:
        """``'3 (job_00003), 7 (job_00007), ... and 5 more'`` for the first ``show``."""
        items = [f"{int(i)} ({job_name(int(i))})" for i in self.missing[:show]]
        more = self.missing.size - len(items)
        return ", ".join(items) + (f", ... and {more} more" if more > 0 else "")


def _find(directory: Path, pattern: str) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(directory / pattern)
    return [Path(p) for p in sorted(glob.glob(full, recursive=True)) if Path(p).is_file()]


def _stored(path: Path, plan_hash: str, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(forces, done)`` of an existing store, read-only (opening it for writing could
    touch the file before every output is known to be good)."""
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as h5:
            stored = str(h5.attrs.get("plan_hash", ""))
            if stored != plan_hash:
                raise ValueError(
                    f"{path} belongs to plan {stored[:16]}..., not to this plan "
                    f"{plan_hash[:16]}...; move it away or write the plan again"
                )
            return np.asarray(h5["forces"][...]), np.asarray(h5["done"][...], dtype=bool)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it as HDF5 ({exc}); move it away") from exc


def collect_outputs(directory: str | Path, pattern: str,
                    format: str | None = None) -> OutputsReport:
    """Read DFT outputs, match them to the plan's configurations and store their results.

    Parameters
    ----------
    directory
        Plan directory (``anharmbench plan --out``).
    pattern
        Glob of output files, relative to ``directory`` or absolute (``**`` recurses),
        e.g. ``'dft/job_*/vasprun.xml'``.
    format
        ASE format of the outputs (``vasp-xml``, ``espresso-out``, ``extxyz``, ...);
        ``None`` lets ASE tell.

    Returns
    -------
    OutputsReport

    Raises
    ------
    OutputError
        No file matches; a file is unreadable, truncated, without forces, of another
        structure or cell, matches no configuration or the same one as another file;
        an already stored configuration has different forces than its new output.
        ``results.h5`` is not changed (nor created) in any of these cases.
    ValueError, FileNotFoundError
        Not a plan directory, or ``results.h5`` belongs to another plan.
    """
    from anharmbench.derivatives.results import ResultStore
    from anharmbench.derivatives.workflow import RESULTS_FILE, load_plan_directory

    directory = Path(directory)
    prepared, _ = load_plan_directory(directory)
    plan = prepared.plan
    files = _find(directory, pattern)
    if not files:
        where = pattern if os.path.isabs(pattern) else f"{directory}/{pattern}"
        raise OutputError(
            f"no file matches {where!r}; check the pattern (quote it so the shell does not "
            "expand it) and that the jobs have finished"
        )
    frames = [read_output(p, format) for p in files]
    positions = prepared.supercell.positions[None] + plan.displacements
    matched = match_outputs(frames, prepared.supercell, positions)
    if plan.method == "energies":
        lacking = np.flatnonzero(np.isnan(matched.energies))
        if lacking.size:
            raise OutputError(
                f"{matched.paths[int(lacking[0])]}: has no energy, and this plan measures "
                "energies (--method energies); use outputs with energies"
            )
    store_path = directory / RESULTS_FILE
    old = _stored(store_path, plan.hash, plan.n_evaluations)
    new = np.ones(matched.indices.size, dtype=bool)
    if old is not None:
        forces_old, done_old = old
        for j, i in enumerate(matched.indices):
            if not done_old[i]:
                continue
            diff = float(np.abs(forces_old[i] - matched.forces[j]).max())
            if not diff <= FORCE_ATOL:  # also NaN
                raise OutputError(
                    f"{matched.paths[j]}: configuration {int(i)} ({job_name(int(i))}) is "
                    f"already in {store_path} with other forces (max difference {diff:.3g} "
                    "eV/A); remove the wrong output, or move results.h5 away to collect "
                    "everything afresh"
                )
            new[j] = False
    if new.any():
        store = ResultStore(store_path, plan)
        with store.writer() as write:
            write(matched.indices[new], matched.energies[new], matched.forces[new])
        done = store.done()
    else:  # nothing new: leave the file untouched
        done = old[1] if old is not None else np.zeros(plan.n_evaluations, dtype=bool)
    return OutputsReport(
        n_files=len(files), n_new=int(new.sum()), n_already=int((~new).sum()),
        n_done=int(done.sum()), n_total=plan.n_evaluations,
        missing=np.flatnonzero(~done), store=store_path,
    )
