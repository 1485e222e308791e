"""Stages keyed by a hash of their inputs: rerun skips what is done, resumes what is not.

A :class:`Stage` names its inputs (JSON-serialisable settings plus the keys of the stages
it reads from) and a function that fills a directory. :class:`StageRunner` runs it in
``<root>/stages/<name>-<key>/``, where ``key`` is the SHA-256 of the stage name and
inputs: a changed setting gives a new key and reruns that stage and those downstream of
it (their inputs hold the upstream keys), nothing else. A stage is done when its
``stage.json`` exists (written atomically last, with the stage's summary and timing);
an interrupted stage reruns in the same directory, and the stage functions themselves
continue from what they stored (result stores, MD checkpoints, training checkpoints).

Every stage logs a start line and a one-line summary to ``<root>/study.log`` and stdout;
its warnings go to ``study.log`` only (the summary line counts them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Stage", "StageResult", "StageRunner"]

STAGE_FILE = "stage.json"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


@dataclass(frozen=True)
class Stage:
    """One unit of the study.

    Attributes
    ----------
    name
        Unique, file-name safe (e.g. ``"derivatives-GNN-idmd-2I"``).
    inputs
        Everything the output depends on, JSON-serialisable (upstream stage keys
        included).
    run
        ``run(directory) -> summary``: fills ``directory`` and returns a JSON-serialisable
        summary (its ``"line"`` entry, if any, is the stage's log line).
    """

    name: str
    inputs: dict[str, Any]
    run: Callable[[Path], dict[str, Any]] = field(compare=False)

    @property
    def key(self) -> str:
        return hashlib.sha256(_canonical([self.name, self.inputs]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its directory, key, summary, and whether it ran now."""

    name: str
    key: str
    directory: Path
    summary: dict[str, Any]
    skipped: bool
    seconds: float


class StageRunner:
    """Run stages under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, *, verbose: bool = True) -> None:
        self.root = Path(root)
        (self.root / "stages").mkdir(parents=True, exist_ok=True)
        self.results: dict[str, StageResult] = {}
        self.log = logging.getLogger(f"anharmbench.study.{id(self)}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self._file = logging.FileHandler(self.root / "study.log")
        self._file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(self._file)
        if verbose:
            stream = logging.StreamHandler()
            stream.setFormatter(logging.Formatter("[study] %(message)s"))
            self.log.addHandler(stream)

    def close(self) -> None:
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)

    def directory(self, stage: Stage) -> Path:
        return self.root / "stages" / f"{stage.name}-{stage.key}"

    def run(self, stage: Stage) -> StageResult:
        """Run ``stage`` unless its ``stage.json`` exists; return its result."""
        directory = self.directory(stage)
        marker = directory / STAGE_FILE
        if marker.is_file():
            record = json.loads(marker.read_text())
            res = StageResult(stage.name, stage.key, directory, record["summary"], True,
                              float(record["seconds"]))
            self.log.info("%-34s done before (%s)", stage.name, _line(res.summary))
            self.results[stage.name] = res
            return res
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "inputs.json").write_text(_canonical(stage.inputs) + "\n")
        self.log.info("%-34s started", stage.name)
        t0 = time.perf_counter()
        # a stage's warnings (tail fits, convergence) go to the log file, not the
        # terminal, which keeps one line per stage and its progress bar
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                summary = stage.run(directory)
            except Exception as exc:
                self._log_warnings(stage.name, caught)
                self.log.info("%-34s FAILED: %s", stage.name,
                              str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                raise
        self._log_warnings(stage.name, caught)
        seconds = time.perf_counter() - t0
        record = {"name": stage.name, "key": stage.key, "seconds": seconds, "summary": summary}
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
        os.replace(tmp, marker)
        res = StageResult(stage.name, stage.key, directory, summary, False, seconds)
        more = f" ({len(caught)} warning{'s' * (len(caught) != 1)} in study.log)" if caught else ""
        self.log.info("%-34s %6.1f s  %s%s", stage.name, seconds, _line(summary), more)
        self.results[stage.name] = res
        return res

    def _log_warnings(self, name: str, caught: list[warnings.WarningMessage]) -> None:
        """Write a stage's warnings to ``study.log`` only (not to the terminal)."""
        for w in caught:
            self._file.handle(self.log.makeRecord(
                self.log.name, logging.WARNING, w.filename, w.lineno or 0,
                "%-34s %s: %s", (name, w.category.__name__, w.message), None))

    def timings(self) -> list[tuple[str, float, bool]]:
        """``(stage, seconds, skipped)`` of every stage run or found so far."""
        return [(r.name, r.seconds, r.skipped) for r in self.results.values()]


def _line(summary: dict[str, Any]) -> str:
    return str(summary.get("line", "")) if isinstance(summary, dict) else ""
