"""Running ``gap_fit``: finding it, its argument list, the watched subprocess and its log.

The argument list is built here (no shell); the run follows gap_fit's log for a progress
line and reads the process's peak resident memory from ``/proc``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from anharmbench.mlip.gap.config import GapConfig, _num
from anharmbench.mlip.gap.errors import GapFitError
from anharmbench.mlip.gap.memory import MemoryEstimate

__all__ = ["find_gap_fit", "gap_argv"]

#: Lines of gap_fit's log quoted in an error.
LOG_TAIL_LINES = 30


def find_gap_fit() -> str:
    """Path of the ``gap_fit`` executable (the quippy-ase wheel's, else on ``PATH``).

    Raises
    ------
    GapFitError
        When quippy-ase is not installed.
    """
    spec = importlib.util.find_spec("quippy")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            exe = Path(root) / "gap_fit"
            if exe.is_file() and os.access(exe, os.X_OK):
                return str(exe)
    exe = shutil.which("gap_fit") or shutil.which("gap_fit", path=str(Path(sys.executable).parent))
    if exe is None:
        raise GapFitError(
            "gap_fit was not found: it comes with the quippy-ase wheel; install it with "
            "pip install -e '.[gap]' (or make setup)"
        )
    return exe


def gap_argv(
    config: GapConfig,
    *,
    gap_fit: str,
    train_file: str,
    model_file: str,
    e0: Mapping[str, float],
) -> list[str]:
    """The argument list of one gap_fit run (each ``key=value`` one argument).

    Energies, forces and virials are read from the dataset's keys ``energy``, ``forces``
    and ``virial`` (:mod:`anharmbench.datasets.io`); with ``use_virials=False`` the
    virial and stress keys point at names the frames do not have.
    """
    e0_text = "{" + ":".join(f"{s}:{_num(v)}" for s, v in e0.items()) + "}"
    sigma = (
        "{"
        + " ".join(_num(v) for v in (config.energy_sigma, config.force_sigma, config.virial_sigma))
        + " 0.0}"
    )
    virial_key = "virial" if config.use_virials else "no_virial_fitted"
    return [
        gap_fit,
        f"at_file={train_file}",
        f"gap={config.gap_string()}",
        f"e0={e0_text}",
        f"default_sigma={sigma}",
        f"sparse_jitter={_num(config.sparse_jitter)}",
        "energy_parameter_name=energy",
        "force_parameter_name=forces",
        f"virial_parameter_name={virial_key}",
        "stress_parameter_name=no_stress_fitted",
        "config_type_parameter_name=config_type",
        "sparse_separate_file=F",
        "do_copy_at_file=F",
        f"rnd_seed={int(config.seed) % 2**31}",
        f"gap_file={model_file}",
    ]


def _stage(log: Path, n_coordinates: list[int]) -> str:
    """A short description of what gap_fit is doing, from the end of its log."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            tail = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return "starting"
    if not n_coordinates[0]:
        try:
            text = log.read_text(errors="replace")
            n_coordinates[0] = text.count("New GAP:")
        except OSError:
            pass
    for line in reversed(tail):
        line = line.strip()
        if line.startswith("Started sparse covariance matrix calculation of coordinate"):
            k = line.rsplit(" ", 1)[-1]
            total = n_coordinates[0] or "?"
            return f"covariance {k}/{total}"
        if line.startswith(("Started CUR", "Finished CUR")):
            return "choosing sparse points (CUR)"
        if "Solve linear system" in line or "Using LAPACK" in line:
            return "solving"
        if line.startswith("Number of descriptors") or "Memory Estimate" in line:
            return "descriptors"
        if line.startswith("XYZ file read") or line.startswith("Descriptors have been parsed"):
            return "reading frames"
    return "starting"


def _rss_bytes(pid: int) -> tuple[float | None, float | None]:
    """Current and peak (high-water) resident set size of a running process, bytes.

    Read from ``/proc/<pid>/status`` (Linux). The peak is that of the program itself:
    ``getrusage``'s ``ru_maxrss`` of a child would also count the forked Python
    interpreter before ``exec``.
    """
    rss = hwm = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = float(line.split()[1]) * 1024.0
            elif line.startswith("VmHWM:"):
                hwm = float(line.split()[1]) * 1024.0
    except (OSError, IndexError, ValueError):
        return None, None
    return rss, hwm


def _log_tail(log: Path, n: int = LOG_TAIL_LINES) -> str:
    """The last ``n`` lines of a log, preceded by any abort/error lines found earlier."""
    try:
        lines = log.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log written)"
    tail = lines[-n:]
    errors = [
        ln.strip()
        for ln in lines[:-n]
        if "ABORT" in ln or "ERROR" in ln or ln.startswith(("STOP", "Error", "error"))
    ]
    head = ("gap_fit reported:\n" + "\n".join(errors) + "\n...\n") if errors else ""
    return head + "\n".join(tail)


def _run_gap_fit(
    argv: list[str],
    cwd: Path,
    log: Path,
    *,
    progress: Callable[[str], None] | None,
    estimate: MemoryEstimate,
    interval: float = 1.0,
) -> dict[str, float]:
    """Run gap_fit, report progress, return wall time and peak RSS (bytes)."""
    start = time.perf_counter()
    n_coordinates = [0]
    last = 0.0
    peak = 0.0
    # unbuffered Fortran output: the log (and the progress line) follow gap_fit live,
    # and an abort message lands where it happened rather than before the output
    env = {**os.environ, "GFORTRAN_UNBUFFERED_PRECONNECTED": "y"}
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv built here, no shell
                argv,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            raise GapFitError(f"cannot run gap_fit ({argv[0]}): {exc}") from exc
        try:
            while proc.poll() is None:
                rss, hwm = _rss_bytes(proc.pid)
                peak = max(peak, hwm or 0.0, rss or 0.0)
                now = time.perf_counter()
                if progress is not None and now - last >= interval:
                    last = now
                    rss_text = f"{rss / 1e9:.2f} GB" if rss is not None else "?"
                    progress(
                        f"gap_fit {_clock(now - start)}  RSS {rss_text} "
                        f"(est. peak {estimate.peak_gb:.1f} GB)  {_stage(log, n_coordinates)}"
                    )
                time.sleep(0.05)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return {
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak,
        "returncode": float(proc.returncode),
    }


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class _ProgressLine:
    """Print progress on one rewritten line of stderr (a TTY) or every 30 s (a log)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0
        self.width = 0

    def __call__(self, text: str) -> None:
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
            self.stream.flush()
        elif time.perf_counter() - self.last >= 30.0:
            self.last = time.perf_counter()
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self, final: str | None = None) -> None:
        """End the line; ``final`` (if given) is printed last in any case."""
        if final is not None:
            self.last = -1e9
            self(final)
        if self.tty and self.width:
            self.stream.write("\n")
        self.stream.flush()


def _gap_fit_reported_peak(log: Path) -> str | None:
    """gap_fit's own "PEAK" line of its memory estimate, e.g. ``"690 MB"``."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("PEAK"):
                return line.split(None, 1)[1].strip()
    except OSError:
        return None
    return None
