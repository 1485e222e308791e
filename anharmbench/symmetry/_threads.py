"""Best-effort limit of OpenBLAS threads around many tiny LAPACK calls.

The symmetry construction makes thousands of small (<= a few hundred) dense
eigen/SVD calls; with a threaded BLAS on a busy machine the thread hand-offs cost
more than the arithmetic. ``single_blas_thread()`` temporarily sets the thread
count of every OpenBLAS already loaded in the process to 1 (through ctypes, like
``threadpoolctl`` does) and restores it afterwards. It silently does nothing when
no OpenBLAS is found.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

__all__ = ["single_blas_thread"]

_SUFFIXES = ("64_", "_64_", "")
_PREFIXES = ("scipy_openblas_", "openblas_")


def _openblas_handles() -> list[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr]]:
    paths = set()
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and "openblas" in parts[-1] and ".so" in parts[-1]:
                    paths.add(parts[-1])
    except OSError:
        return []
    out = []
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for pre in _PREFIXES:
            found = False
            for suf in _SUFFIXES:
                try:
                    setf = getattr(lib, f"{pre}set_num_threads{suf}")
                    getf = getattr(lib, f"{pre}get_num_threads{suf}")
                except AttributeError:
                    continue
                setf.argtypes = [ctypes.c_int]
                getf.restype = ctypes.c_int
                out.append((setf, getf))
                found = True
                break
            if found:
                break
    return out


_HANDLES: list | None = None


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Context manager: OpenBLAS runs single-threaded inside the block."""
    global _HANDLES
    if _HANDLES is None:
        try:
            _HANDLES = _openblas_handles()
        except Exception:  # pragma: no cover - defensive
            _HANDLES = []
    saved = []
    for setf, getf in _HANDLES:
        try:
            saved.append((setf, int(getf())))
            setf(1)
        except Exception:  # pragma: no cover - defensive
            continue
    try:
        yield
    finally:
        for setf, n in saved:
            with contextlib.suppress(Exception):
                setf(n)
