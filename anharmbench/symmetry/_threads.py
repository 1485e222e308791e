"""Single-threaded BLAS around many tiny LAPACK calls.

The symmetry construction makes thousands of small (<= a few hundred) dense eigen/SVD
calls; with a threaded BLAS on a busy machine the thread hand-offs cost more than the
arithmetic. ``single_blas_thread()`` limits every BLAS loaded in the process to one
thread inside the block and restores the counts afterwards (threadpoolctl, which the
executors' workers use as well; it does nothing when no BLAS is found).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["single_blas_thread"]


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Context manager: BLAS runs single-threaded inside the block."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
