"""Single-threaded BLAS around many tiny LAPACK calls.

The symmetry construction makes thousands of small (<= a few hundred) dense eigen/SVD
calls; with a threaded BLAS on a busy machine the thread hand-offs cost more than the
arithmetic. ``single_blas_thread()`` limits BLAS to one thread inside the block
(threadpoolctl, which the executors' workers use as well; it does nothing when no BLAS
is found) and restores the previous counts when the block ends, also on an exception.

Scope. BLAS libraries keep one thread count per process (``openblas_set_num_threads``
has no per-thread form), so while a block is open *every* thread of the process runs
its BLAS calls single-threaded, not only the caller. The package opens these blocks only
around its own symmetry and sunset computations and starts no threads of its own (the
executors use processes). Blocks may nest or overlap between threads: the limit is set
when the first opens and the counts saved then are restored when the last closes (a
plain ``threadpool_limits`` per block would restore ``1`` when overlapping blocks close
out of order, leaving the process single-threaded).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["single_blas_thread"]


class _OneBlasThread:
    """Process-wide count of open blocks; the limit lives from the first open to the last
    close."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._limits: threadpool_limits | None = None

    def enter(self) -> None:
        with self._lock:
            if self._open == 0:
                self._limits = threadpool_limits(limits=1, user_api="blas")
            self._open += 1

    def exit(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and self._limits is not None:
                self._limits.restore_original_limits()
                self._limits = None


_ONE_THREAD = _OneBlasThread()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Context manager: BLAS runs single-threaded inside the block (process-wide; see the
    module docstring)."""
    _ONE_THREAD.enter()
    try:
        yield
    finally:
        _ONE_THREAD.exit()
