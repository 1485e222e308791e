"""Running nequip's console tools (``nequip-train``, ``nequip-compile``) as subprocesses.

The tool's output goes to a log file; a person follows a bar of epochs (or the echoed
output); a failure raises :class:`NequIPError` quoting the end of the log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["NequIPError"]


class NequIPError(RuntimeError):
    """Training or compiling a NequIP model failed; the message quotes the tool's output."""


def _nequip_script(name: str) -> list[str]:
    """Command that runs the nequip console script ``name`` with this interpreter."""
    exe = Path(sys.executable).parent / name
    if exe.is_file():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        raise NequIPError(
            f"{name} not found beside {sys.executable} or on PATH; install NequIP with "
            "pip install -e '.[nequip]'"
        )
    return [found]


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class _EpochBar:
    """A tqdm bar of training epochs, read from Lightning's ``Epoch N`` progress text.

    The tool's own output (Lightning's per-batch bars, Hydra and nequip INFO lines) goes
    to the log file only; this bar is what a person follows on the terminal.
    """

    _EPOCH = re.compile(rb"Epoch (\d+)")

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=True)

    def __call__(self, chunk: bytes) -> None:
        found = self._EPOCH.findall(chunk)
        if found:
            # "Epoch N" is shown while epoch N (0-based) runs: N epochs are done
            done = min(int(found[-1]), self.bar.total)
            if done > self.bar.n:
                self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _run_tool(
    cmd: list[str],
    what: str,
    log: Path,
    *,
    threads: int,
    progress: bool | Callable[[bytes], None],
    timeout: float | None,
) -> None:
    """Run a nequip tool; its output goes to ``log``.

    ``progress``: ``True`` echoes the output on stderr too; a callable receives every
    chunk of output instead (e.g. :class:`_EpochBar`); ``False`` shows nothing.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(threads)
        )
        if proc.stdout is None:
            raise NequIPError(f"could not capture the output of {what}")
        start = time.monotonic()
        try:
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
                fh.write(chunk)
                if callable(progress):
                    progress(chunk)
                elif progress:
                    sys.stderr.write(chunk.decode(errors="replace"))
                    sys.stderr.flush()
                if timeout is not None and time.monotonic() - start > timeout:
                    proc.kill()
                    raise NequIPError(f"{what} took longer than {timeout:.0f} s; see {log}")
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise NequIPError(f"{what} failed (exit {code}); last lines of {log}:\n{tail}")
