"""Atomic writes and one writer per folder: a file is complete or absent, never mixed.

Readers of the project's files (plans, stage records, reports) trust what they find; a
run killed while writing must therefore leave the old file or none, not a truncated one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from anharmbench.errors import InputError


class FolderBusyError(InputError):
    """Another process is writing into the folder."""


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def exclusive_writer(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold ``folder/.lock`` (created with the folder) while one command writes there.

    A second writer is refused at once, naming the folder and the holder's pid; without
    this, two imports into one folder both report success and the later overwrites the
    earlier. On an error the lock file goes, and so does the folder if this call made it
    and nothing else was written.

    Raises
    ------
    FolderBusyError
        Another process holds the lock.
    """
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / ".lock"
    fh = open(lock_path, "a+")  # noqa: SIM115 - held open for the whole block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise FolderBusyError(
                f"{folder} is being written by {holder} ({what}); wait for it to finish, "
                "or give another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield folder
        finally:
            lock_path.unlink(missing_ok=True)
            fcntl.flock(fh, fcntl.LOCK_UN)
            if made and not any(folder.iterdir()):
                folder.rmdir()
    finally:
        fh.close()
