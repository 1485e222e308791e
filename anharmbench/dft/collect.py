"""Collecting DFT outputs of a plan directory into its ``results.h5``.

All outputs are read and matched (:mod:`anharmbench.dft.outputs`) before anything is
written, so one bad file leaves ``results.h5`` as it was.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anharmbench.datasets.io import file_sha256
from anharmbench.derivatives.sources import DFT_ORIGIN, dft_source, origin
from anharmbench.dft.inputs import job_name, reference_index
from anharmbench.dft.outputs import Matched, OutputError, match_outputs, read_output

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
    has_reference
        The undisplaced supercell's output (equilibrium check) is stored.
    reference_job
        Its job folder.
    """

    n_files: int
    n_new: int
    n_already: int
    n_done: int
    n_total: int
    missing: np.ndarray
    store: Path
    has_reference: bool = False
    reference_job: str = ""

    def missing_text(self, show: int = 8) -> str:
        """``'3 (job_00003), 7 (job_00007), ... and 5 more'`` for the first ``show``."""
        items = [f"{int(i)} ({job_name(int(i))})" for i in self.missing[:show]]
        more = self.missing.size - len(items)
        return ", ".join(items) + (f", ... and {more} more" if more > 0 else "")


def _find(directory: Path, pattern: str) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(directory / pattern)
    return [Path(p) for p in sorted(glob.glob(full, recursive=True)) if Path(p).is_file()]


def _refuse_other_forces(path: Path, what: str, stored: np.ndarray, new: np.ndarray,
                         store_path: Path) -> None:
    """Refuse an output of ``what`` already stored with other forces (beyond FORCE_ATOL)."""
    diff = float(np.abs(stored - new).max())
    if not diff <= FORCE_ATOL:  # also NaN
        raise OutputError(
            f"{path}: {what} is already in {store_path} with other forces (max difference "
            f"{diff:.3g} eV/A); remove the wrong output, or move results.h5 away to collect "
            "everything afresh")


def _refuse_other_origin(sources: np.ndarray, done: np.ndarray, store_path: Path) -> None:
    """Refuse collecting DFT outputs into a store holding results of a potential."""
    other = [(i, str(s)) for i, (s, d) in enumerate(zip(sources, done, strict=True))
             if d and s and origin(str(s)) != DFT_ORIGIN]
    if other:
        i, what = other[0]
        raise OutputError(
            f"{store_path} holds {len(other)} configuration(s) computed by {what} (e.g. "
            f"configuration {i}); DFT outputs are never mixed with them. Collect into a "
            "fresh plan directory (or move results.h5 away to collect every configuration "
            "from DFT)")


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
        an already stored configuration has different forces than its new output;
        ``results.h5`` holds results of a potential (never mixed with DFT's).
        ``results.h5`` is not changed (nor created) in any of these cases. Each stored
        configuration records its output file and that file's SHA-256 as its source.
    ValueError, FileNotFoundError
        Not a plan directory, or ``results.h5`` belongs to another plan.
    """
    from anharmbench.derivatives.results import ResultStore
    from anharmbench.derivatives.workflow import RESULTS_FILE, load_plan_directory

    directory = Path(directory)
    prepared, manifest = load_plan_directory(directory)
    plan = prepared.plan
    files = _find(directory, pattern)
    if not files:
        where = pattern if os.path.isabs(pattern) else f"{directory}/{pattern}"
        raise OutputError(
            f"no file matches {where!r}; check the pattern (quote it so the shell does not "
            "expand it) and that the jobs have finished"
        )
    frames = [read_output(p, format) for p in files]
    # the undisplaced supercell (equilibrium check): a configuration of the plan, or an
    # extra candidate n (the extra job of plan --format)
    ref_index, extra = reference_index(plan.displacements)
    positions = prepared.supercell.positions[None] + plan.displacements
    if extra:
        positions = np.concatenate([positions, prepared.supercell.positions[None]])
    matched = match_outputs(frames, prepared.supercell, positions)
    is_ref = matched.indices == ref_index
    reference = frames[int(np.flatnonzero(is_ref)[0])] if is_ref.any() else None
    if extra and is_ref.any():
        keep = ~is_ref
        matched = Matched(matched.indices[keep], matched.forces[keep], matched.energies[keep],
                          [p for p, k in zip(matched.paths, keep, strict=True) if k])
    if plan.method == "energies":
        lacking = np.flatnonzero(np.isnan(matched.energies))
        if lacking.size:
            raise OutputError(
                f"{matched.paths[int(lacking[0])]}: has no energy, and this plan measures "
                "energies (--method energies); use outputs with energies"
            )
    store_path = directory / RESULTS_FILE
    existing = None  # checked (plan, structure, potential) and read here, not written
    if store_path.exists():
        existing = ResultStore(store_path, plan, identity=manifest["identity"])
    _, forces_old, done_old = existing.load() if existing is not None else (None, None, None)
    if existing is not None:
        _refuse_other_origin(existing.sources(), done_old, store_path)
    stored_ref = existing.reference() if existing is not None else None
    if reference is not None and stored_ref is not None:
        _refuse_other_forces(reference.path, f"the reference supercell "
                             f"({job_name(ref_index)})", stored_ref["forces"],
                             reference.forces, store_path)
        reference = None  # the same: leave the store untouched
    new = np.ones(matched.indices.size, dtype=bool)
    if done_old is not None:
        for j, i in enumerate(matched.indices):
            if done_old[i]:
                _refuse_other_forces(matched.paths[j], f"configuration {int(i)} "
                                     f"({job_name(int(i))})", forces_old[i], matched.forces[j],
                                     store_path)
                new[j] = False
    if new.any() or reference is not None:
        store = existing or ResultStore(store_path, plan, identity=manifest["identity"])
        digests: dict[Path, str] = {}
        sources = [dft_source(p, digests.setdefault(p, file_sha256(p)))
                   for p, k in zip(matched.paths, new, strict=True) if k]
        with store.writer() as write:
            write(matched.indices[new], matched.energies[new], matched.forces[new], sources)
        if reference is not None:
            stress = reference.stress if reference.stress is not None else np.full(6, np.nan)
            store.write_reference(np.nan if reference.energy is None else reference.energy,
                                  reference.forces, stress,
                                  source=f"DFT output {reference.path.name}")
        done = store.done()
    else:  # nothing new: leave the file untouched
        done = done_old if done_old is not None else np.zeros(plan.n_evaluations, dtype=bool)
    has_reference = reference is not None or stored_ref is not None
    return OutputsReport(
        n_files=len(files), n_new=int(new.sum()), n_already=int((~new).sum()),
        n_done=int(done.sum()), n_total=plan.n_evaluations,
        missing=np.flatnonzero(~done), store=store_path, has_reference=has_reference,
        reference_job=job_name(ref_index),
    )
