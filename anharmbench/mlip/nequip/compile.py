"""Compiling a checkpoint into an AOTInductor package for ``pair_style nequip``; its metadata.

:func:`compile_nequip` runs ``nequip-compile CKPT OUT.nequip.pt2 --mode aotinductor
--device cpu --target pair_nequip`` (30-70 s; needs a C++ compiler; the package runs only
with this torch version and on CPUs with this machine's instruction set). The torch
version is then stamped into the package's metadata (``torch_version``) so that
``pair_style nequip`` refuses a package from another torch. The TorchScript route
(``--mode torchscript``) is refused by nequip 0.19.1 on torch >= 2.10, so it is not
offered here. With a cache, the compile runs :mod:`anharmbench.mlip.nequip.cached_compile`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

from anharmbench.mlip.nequip.runner import NequIPError, _nequip_script, _run_tool
from anharmbench.potentials.spec import PotentialError

__all__ = ["PACKAGE_MODEL", "compile_nequip", "read_package_metadata", "stamp_package"]

#: Model name inside an AOTInductor package (nequip-compile's and torch's default).
PACKAGE_MODEL = "model"


def _package_metadata_entries(zf: zipfile.ZipFile) -> list[str]:
    return [
        n
        for n in zf.namelist()
        if f"/data/aotinductor/{PACKAGE_MODEL}/" in n and n.endswith("_metadata.json")
    ]


def read_package_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an AOTInductor package (``.pt2``), as ``pair_style nequip`` reads it.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    PotentialError
        When it is not an AOTInductor package holding a model named ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NequIP model file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _package_metadata_entries(zf)
            if not entries:
                raise PotentialError(
                    f"{path} holds no AOTInductor model named {PACKAGE_MODEL!r}; compile the "
                    "checkpoint with nequip-compile --mode aotinductor --target pair_nequip"
                )
            wrapper = [n for n in entries if n.endswith(".wrapper_metadata.json")]
            data = json.loads(zf.read((wrapper or entries)[0]))
    except zipfile.BadZipFile as exc:
        raise PotentialError(f"{path} is not an AOTInductor package (.pt2): {exc}") from exc
    return {str(k): str(v) for k, v in data.items()}


def stamp_package(path: str | Path, extra: dict[str, str]) -> None:
    """Add ``extra`` keys to the metadata of an AOTInductor package, in place.

    The package is a zip archive; its metadata files are rewritten, every other entry
    is copied unchanged (same names, same compression).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        targets = set(_package_metadata_entries(src))
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename in targets:
                meta = json.loads(data)
                meta.update({str(k): str(v) for k, v in extra.items()})
                data = json.dumps(meta).encode()
            dst.writestr(info, data, compress_type=info.compress_type)
    os.replace(tmp, path)


def compile_nequip(
    checkpoint: str | Path,
    output: str | Path | None = None,
    *,
    threads: int = 2,
    progress: bool = False,
    timeout: float | None = 1800.0,
    cache: str | Path | None = None,
) -> Path:
    """Compile a checkpoint into an AOTInductor package for ``pair_style nequip``.

    Runs ``nequip-compile CKPT OUT --mode aotinductor --device cpu --target pair_nequip``
    (about a minute; needs a C++ compiler) and stamps ``torch_version`` into the package
    metadata. The package runs only with this torch version and on CPUs with this
    machine's instruction set (inductor compiles with ``-march=native``).

    Parameters
    ----------
    checkpoint
        ``best.ckpt`` (or any nequip checkpoint / ``.nequip.zip`` package).
    output
        Output file, must end with ``.nequip.pt2`` (default: beside the checkpoint,
        ``model.nequip.pt2``).
    threads
        Threads of the compile process.
    progress
        Show nequip-compile's log on stderr.
    timeout
        Seconds before giving up.
    cache
        Directory of compiled templates (:mod:`anharmbench.mlip.aoti_cache`): a
        checkpoint of the same architecture as an earlier one reuses its compilation
        (:mod:`anharmbench.mlip.nequip.cached_compile`); when that fails, it is compiled afresh.

    Returns
    -------
    pathlib.Path
        The package.
    """
    import torch

    checkpoint = Path(checkpoint).resolve()
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    out = Path(output) if output is not None else checkpoint.with_name("model.nequip.pt2")
    out = out.resolve()
    if not out.name.endswith(".nequip.pt2"):
        raise ValueError(f"the compiled model's name must end with .nequip.pt2, got {out.name}")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise NequIPError("nequip-compile needs a C++ compiler (c++ or g++) on PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name[: -len(".nequip.pt2")] + ".partial.nequip.pt2")
    arguments = [
        str(checkpoint),
        str(partial),
        "--mode",
        "aotinductor",
        "--device",
        "cpu",
        "--target",
        "pair_nequip",
    ]
    commands = [[*_nequip_script("nequip-compile"), *arguments]]
    if cache is not None:
        cached = [
            sys.executable,
            "-m",
            "anharmbench.mlip.nequip.cached_compile",
            str(Path(cache).resolve()),
            *arguments,
        ]
        commands.insert(0, cached)
    for k, cmd in enumerate(commands):
        try:
            _run_tool(
                cmd,
                "nequip-compile",
                out.with_name(out.name + ".log"),
                threads=threads,
                progress=progress,
                timeout=timeout,
            )
            break
        except NequIPError:
            partial.unlink(missing_ok=True)
            if k == len(commands) - 1:
                raise
    stamp_package(partial, {"torch_version": torch.__version__.split("+")[0]})
    os.replace(partial, out)
    return out
