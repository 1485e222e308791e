"""Fitting a GAP with ``gap_fit``: frame choice, e0, memory check, the run, the record.

:func:`train_gap` refuses to start when the estimated peak memory
(:func:`~anharmbench.mlip.gap.memory.estimate_gap_memory`) cannot fit, runs gap_fit
with a progress line, and writes a model directory
(:mod:`anharmbench.mlip.gap.model` lists its files).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.io import write

from anharmbench.datasets.io import file_sha256, software_versions, write_json_atomic
from anharmbench.mlip.data import DatasetSplits, load_splits
from anharmbench.mlip.gap.config import GapConfig
from anharmbench.mlip.gap.errors import GapFitError, GapMemoryError
from anharmbench.mlip.gap.memory import (
    _frames_that_fit,
    _memory_allowance,
    _warn_if_busy,
    estimate_gap_memory,
    machine_memory,
)
from anharmbench.mlip.gap.model import (
    COMMAND_JSON,
    COMMAND_TXT,
    LOG_FILE,
    MODEL_RECORD,
    MODEL_XML,
    TRAIN_XYZ,
    GapModel,
)
from anharmbench.mlip.gap.runner import (
    LOG_TAIL_LINES,
    _clock,
    _gap_fit_reported_peak,
    _log_tail,
    _ProgressLine,
    _run_gap_fit,
    find_gap_fit,
    gap_argv,
)

__all__ = ["train_gap"]


def train_gap(
    dataset: str | Path | DatasetSplits,
    model_dir: str | Path,
    config: GapConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool | Callable[[str], None] = True,
    gap_fit: str | None = None,
) -> GapModel:
    """Fit a GAP to the training split of a dataset with gap_fit.

    Parameters
    ----------
    dataset
        A dataset directory (IDMD or reference MD) or its :class:`DatasetSplits`.
    model_dir
        Output directory (created); see the module docstring for its files.
    config
        Fit settings (default :meth:`GapConfig.paper`).
    overwrite
        Replace an existing model in ``model_dir``.
    progress
        ``True``: a progress line on stderr; a callable receives the line instead;
        ``False``: silent.
    gap_fit
        The gap_fit executable (default :func:`find_gap_fit`).

    Returns
    -------
    GapModel

    Raises
    ------
    GapMemoryError
        When the estimated peak memory does not fit (the message gives the estimate, the
        machine's memory and how many frames would fit).
    GapFitError
        When gap_fit is missing or fails (the message quotes the end of its log).
    FileExistsError
        When ``model_dir`` holds a model and ``overwrite`` is false.
    """
    config = config if config is not None else GapConfig.paper()
    splits = dataset if isinstance(dataset, DatasetSplits) else load_splits(dataset)
    model_dir = Path(model_dir)
    xml = model_dir / MODEL_XML
    if xml.exists() and not overwrite:
        raise FileExistsError(f"{xml} exists; pass overwrite=True to train again")
    exe = gap_fit if gap_fit is not None else find_gap_fit()

    chosen = _select_frames(splits.train, config)
    frames = [splits.train[i] for i in chosen]
    species = tuple(
        sorted(
            {s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: -atomic_numbers[s]
        )
    )
    if config.use_virials:
        no_virial = [i for i, a in zip(chosen, frames, strict=True) if "virial" not in a.info]
        if no_virial:
            raise ValueError(
                f"training frames {no_virial[:5]} of {splits.directory} have no 'virial'; "
                "set use_virials=False or regenerate the dataset"
            )

    estimate = estimate_gap_memory(frames, config)
    allowance, where = _memory_allowance(config)
    if estimate.peak_bytes > allowance:
        fit = _frames_that_fit(frames, config, allowance)
        hint = (
            f"at most {fit} of these frames fit: set max_frames={fit} (or max_atoms), "
            "fewer sparse points, or a smaller 3-body cutoff"
            if fit > 0
            else "not even one frame fits: reduce the descriptors (3-body cutoff, SOAP n_max/l_max)"
        )
        raise GapMemoryError(
            f"gap_fit would need about {estimate.describe()}; {where}. Refusing to start: {hint}."
        )

    _warn_if_busy(estimate)

    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in (xml, model_dir / MODEL_RECORD):
        stale.unlink(missing_ok=True)
    train_file = model_dir / TRAIN_XYZ
    write(train_file, frames, format="extxyz")
    e0 = _e0_values(config, frames, species)
    argv = gap_argv(config, gap_fit=exe, train_file=TRAIN_XYZ, model_file=MODEL_XML, e0=e0)
    write_json_atomic(model_dir / COMMAND_JSON, {"argv": argv, "cwd": str(model_dir.resolve())})
    (model_dir / COMMAND_TXT).write_text(
        f"cd {shlex.quote(str(model_dir.resolve()))} && {shlex.join(argv)}\n"
    )

    line = _ProgressLine() if progress is True else None
    report: Callable[[str], None] | None = None
    if line is not None:
        report = line
    elif callable(progress):
        report = progress
    log = model_dir / LOG_FILE
    final = None
    try:
        run = _run_gap_fit(argv, model_dir, log, progress=report, estimate=estimate)
        final = (
            f"gap_fit finished in {_clock(run['wall_seconds'])} (exit "
            f"{int(run['returncode'])}), peak RSS {run['peak_rss_bytes'] / 1e9:.2f} GB "
            f"(estimated {estimate.peak_gb:.2f} GB)"
        )
    finally:
        if line is not None:
            line.close(final)
        elif report is not None and final is not None:
            report(final)
    if run["returncode"] != 0 or not xml.is_file():
        why = (
            f"exit status {int(run['returncode'])}"
            if run["returncode"] != 0
            else f"it exited normally but wrote no {xml.name}"
        )
        raise GapFitError(
            f"gap_fit failed ({why}) after {run['wall_seconds']:.1f} s in {model_dir}; "
            f"command in {model_dir / COMMAND_TXT}. Last {LOG_TAIL_LINES} lines of "
            f"{log}:\n{_log_tail(log)}"
        )

    versions = software_versions()
    try:
        from importlib.metadata import version

        versions["quippy-ase"] = version("quippy-ase")
    except Exception:  # pragma: no cover - metadata missing
        versions["quippy-ase"] = "unknown"
    record = {
        "format": "anharmbench-gap-1",
        "model_file": MODEL_XML,
        "species": list(species),
        "config": config.to_dict(),
        "e0": e0,
        "gap_string": config.gap_string(),
        "cutoff": config.cutoff(),
        "dataset": {
            "directory": str(splits.directory.resolve()),
            "kind": splits.kind,
            "train_frames_available": len(splits.train),
            "train_frames_used": chosen,
            "train_file": TRAIN_XYZ,
            "train_sha256": file_sha256(train_file),
            "atoms": estimate.n_atoms,
        },
        "command": argv,
        "memory": {
            "estimate_bytes": estimate.peak_bytes,
            "estimate_gap_fit_style_bytes": estimate.gap_fit_bytes,
            "estimate_terms_bytes": estimate.terms,
            "measured_peak_rss_bytes": run["peak_rss_bytes"],
            "gap_fit_report_peak": _gap_fit_reported_peak(log),
            "machine": machine_memory(),
        },
        "wall_seconds": run["wall_seconds"],
        "model_sha256": file_sha256(xml),
        "versions": versions,
    }
    write_json_atomic(model_dir / MODEL_RECORD, record)
    return GapModel(directory=model_dir, xml=xml, species=species, record=record)


def _select_frames(frames: list[Atoms], config: GapConfig) -> list[int]:
    """Indices of the training frames to fit (a seeded subset when limited)."""
    n = len(frames)
    keep = n
    if config.max_frames is not None:
        keep = min(keep, int(config.max_frames))
    if config.max_atoms is not None:
        per_frame = max(1.0, float(np.mean([len(a) for a in frames])))
        keep = min(keep, max(1, int(config.max_atoms // per_frame)))
    if keep >= n:
        return list(range(n))
    rng = np.random.default_rng(config.seed)
    return sorted(int(i) for i in rng.choice(n, size=keep, replace=False))


def _e0_values(config: GapConfig, frames: Sequence[Atoms], species: Sequence[str]) -> dict:
    """e0 per species, eV/atom."""
    if isinstance(config.e0, str):  # "average"
        per_atom = [float(a.calc.results["energy"]) / len(a) for a in frames]  # type: ignore[union-attr]
        value = float(np.mean(per_atom))
        return {s: value for s in species}
    if isinstance(config.e0, Mapping):
        missing = [s for s in species if s not in config.e0]
        if missing:
            raise ValueError(f"e0 has no value for {missing} (training species {list(species)})")
        return {s: float(config.e0[s]) for s in species}
    return {s: float(config.e0) for s in species}
