"""Training a NequIP model with ``nequip-train`` into a run directory (resumable).

:func:`train_nequip` runs ``nequip-train`` on a dataset directory
(``train.xyz``/``val.xyz``/``test.xyz`` of :mod:`anharmbench.datasets`, labels
``energy``/``forces``/``stress``) into a run directory that keeps the config
(``config.yaml``, ``anharmbench_nequip.json``, Hydra's ``.hydra/``), the metrics
(``metrics/metrics.csv``), the log (``anharmbench_train.log``) and the checkpoints
(``best.ckpt``, ``last.ckpt``). Progress is shown; a rerun resumes from ``last.ckpt``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anharmbench.mlip.nequip.compile import compile_nequip
from anharmbench.mlip.nequip.config import BEST_CKPT, LAST_CKPT, NequIPConfig
from anharmbench.mlip.nequip.runner import NequIPError, _EpochBar, _nequip_script, _run_tool

__all__ = ["NequIPRun", "train_nequip"]

#: The project's record of the typed config inside a run directory.
CONFIG_RECORD = "anharmbench_nequip.json"
#: nequip's config file inside a run directory.
NEQUIP_CONFIG = "config.yaml"
#: Written when nequip-train has finished its train, val and test stages.
DONE_MARKER = "finished"


@dataclass(frozen=True)
class NequIPRun:
    """Outcome of :func:`train_nequip`.

    Attributes
    ----------
    run_dir
        The run directory.
    best_checkpoint
        ``best.ckpt`` (lowest validation loss; EMA weights).
    last_checkpoint
        ``last.ckpt`` (resume point).
    model
        The compiled ``.nequip.pt2`` package, or None when not compiled.
    seconds
        Wall time of this call's training, s.
    epochs
        Epochs completed (all calls together).
    metrics
        Last validation and test metrics nequip logged (name -> value; eV, eV/A, eV/A^3).
    type_names
        The model's type names (chemical symbols), in its type order.
    """

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    model: Path | None
    seconds: float
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    type_names: tuple[str, ...] = ()


#: Lightning's CSVLogger starts ``metrics/metrics.csv`` afresh when training resumes from
#: a checkpoint; the rows of earlier calls are kept beside it under this prefix.
_EARLIER_METRICS = "metrics-before-resume-"


def _keep_metrics(run_dir: Path) -> None:
    """Move ``metrics/metrics.csv`` aside before a resume, numbered in call order."""
    path = run_dir / "metrics" / "metrics.csv"
    if path.is_file():
        k = len(list(path.parent.glob(f"{_EARLIER_METRICS}*.csv")))
        os.replace(path, path.with_name(f"{_EARLIER_METRICS}{k:03d}.csv"))


def _metrics(run_dir: Path) -> tuple[int, dict[str, float]]:
    """Epochs completed and the last value of every metric, over all training calls.

    Reads the rows kept by :func:`_keep_metrics` (earlier calls, oldest first), then
    ``metrics/metrics.csv``; Lightning numbers epochs from the start of the run in both.
    """
    folder = run_dir / "metrics"
    paths = [*sorted(folder.glob(f"{_EARLIER_METRICS}*.csv")), folder / "metrics.csv"]
    import csv

    last: dict[str, float] = {}
    epochs = 0
    for path in paths:
        if not path.is_file():
            continue
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            for key, value in row.items():
                if value in (None, ""):
                    continue
                try:
                    number = float(value)
                except ValueError:
                    continue
                if key != "epoch":
                    last[key] = number
            # epochs completed = rows holding a training-epoch loss
            if row.get("epoch") and any(
                k.startswith("train_loss_epoch/") and v for k, v in row.items()
            ):
                epochs = max(epochs, int(float(row["epoch"])) + 1)
    return epochs, last


def train_nequip(
    dataset: str | Path,
    run_dir: str | Path,
    config: NequIPConfig | None = None,
    *,
    type_names: Sequence[str] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    compile_model: bool = True,
    progress: bool = True,
    compile_cache: str | Path | None = None,
    timeout: float | None = None,
) -> NequIPRun:
    """Train a NequIP model on a dataset directory (and compile it for LAMMPS).

    Parameters
    ----------
    dataset
        Dataset directory of :mod:`anharmbench.datasets` (``train.xyz``, ``val.xyz``,
        ``test.xyz`` with energies, forces and stresses).
    run_dir
        Run directory; created if needed.
    config
        Training configuration (default: the ``"paper"`` profile).
    type_names
        Model type names in order (default: the species of the training split, sorted).
    resume
        Continue an interrupted run from ``last.ckpt`` of the same configuration.
    overwrite
        Delete an existing run directory of a different configuration first.
    compile_model
        Compile ``best.ckpt`` to ``model.nequip.pt2`` (:func:`compile_nequip`) afterwards.
    progress
        Show a bar of epochs on stderr; nequip's own output (Lightning bars, Hydra and
        nequip log lines) goes to ``anharmbench_train.log`` in ``run_dir`` in any case.
    compile_cache
        Directory of compiled templates shared by models of one architecture
        (:func:`compile_nequip`'s ``cache``).
    timeout
        Seconds after which training is stopped with :class:`NequIPError`.

    Raises
    ------
    anharmbench.mlip.data.DatasetError
        When the dataset is missing, incomplete or unlabelled.
    NequIPError
        When the run directory holds another configuration, or nequip fails.
    """
    from anharmbench.mlip.data import load_splits

    config = config if config is not None else NequIPConfig()
    dataset = Path(dataset).resolve()
    run_dir = Path(run_dir).resolve()
    splits = load_splits(dataset, require=("train", "val", "test"))
    names = tuple(type_names) if type_names is not None else splits.species
    with_stress = all(
        a.calc is not None and "stress" in a.calc.results for a in (*splits.train, *splits.val)
    )
    record = {
        "format": "anharmbench-nequip-run-1",
        "config": config.to_dict(),
        "dataset": str(dataset),
        "type_names": list(names),
        "with_stress": with_stress,
    }

    record_path = run_dir / CONFIG_RECORD
    if record_path.is_file():
        old = json.loads(record_path.read_text())
        if {k: old.get(k) for k in record if k != "format"} != {
            k: v for k, v in record.items() if k != "format"
        }:
            if not overwrite:
                raise NequIPError(
                    f"run directory {run_dir} holds a training run of another configuration "
                    f"or dataset (see {record_path}); choose a new directory or pass "
                    "overwrite=True (--overwrite) to start again"
                )
            shutil.rmtree(run_dir)
        elif not resume:
            if not overwrite:
                raise NequIPError(
                    f"run directory {run_dir} already holds this run; pass resume=True to "
                    "continue it or overwrite=True to start again"
                )
            shutil.rmtree(run_dir)
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise NequIPError(
                f"run directory {run_dir} is not empty and holds no NequIP run of anharmbench; "
                "choose a new directory or pass overwrite=True"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1) + "\n")

    import yaml

    nequip_cfg = config.to_nequip(dataset, run_dir, names, with_stress=with_stress)
    (run_dir / NEQUIP_CONFIG).write_text(yaml.safe_dump(nequip_cfg, sort_keys=False))

    best, last = run_dir / BEST_CKPT, run_dir / LAST_CKPT
    finished = best.is_file() and (run_dir / DONE_MARKER).is_file()
    start = time.perf_counter()
    if not finished:
        cmd = [
            *_nequip_script("nequip-train"),
            "-cp",
            str(run_dir),
            "-cn",
            Path(NEQUIP_CONFIG).stem,
        ]
        if last.is_file():
            cmd.append(f"++ckpt_path={last}")
            _keep_metrics(run_dir)
        bar = _EpochBar(config.max_epochs, "nequip-train") if progress else None
        try:
            _run_tool(
                cmd,
                "nequip-train",
                run_dir / "anharmbench_train.log",
                threads=config.threads,
                progress=bar or False,
                timeout=timeout,
            )
        finally:
            if bar is not None:
                bar.close()
        if not best.is_file():
            raise NequIPError(f"nequip-train finished without writing {best}")
        (run_dir / DONE_MARKER).write_text("train, val and test finished\n")
    seconds = time.perf_counter() - start
    epochs, metrics = _metrics(run_dir)

    model = None
    if compile_model:
        # the compile log goes to its file: the terminal keeps the epoch bar only
        model = compile_nequip(
            best,
            run_dir / "model.nequip.pt2",
            threads=config.threads,
            progress=False,
            cache=compile_cache,
        )
    return NequIPRun(
        run_dir=run_dir,
        best_checkpoint=best,
        last_checkpoint=last,
        model=model,
        seconds=seconds,
        epochs=epochs,
        metrics=metrics,
        type_names=names,
    )
