"""One AOTInductor compilation for every model that differs from another only in weights.

Compiling a traced model for LAMMPS (``torch._inductor.aoti_compile_and_package``) takes
60-90 s on a 2-core machine, most of it inductor's own Python code generation; the study
trains three seeds of each architecture on two datasets, and their traced graphs are the
same. torch keeps no cache for AOT compilation (its FX graph cache is bypassed in AOT
mode), so this module keeps one, written here because no library does:

* a *template* package is compiled with its weights in a separate blob
  (``aot_inductor.package_constants_on_disk_format = "binary_blob"``, not in the shared
  library) and with every tensor constant kept out of the generated code
  (``always_keep_tensor_constants``: inductor would otherwise inline small ones as literals);
* it is keyed by the exported graph's code and signature, its constants' names, shapes
  and dtypes, the inductor settings (package metadata included), torch's version and this
  CPU's vector instruction set; a constant that the compiled code does not read from the
  blob (unused, or folded into the code despite these settings) must also have the
  template's value, byte for byte;
* a later model with the same key gets a copy of the template whose blob holds its own
  weights. Packing takes about a second.

torch has no API that writes a package's weights (``AOTIModelPackageLoader.load_constants``
changes a loaded model only), so the blob layout is read from the generated wrapper's
``constants_info_`` table (torch 2.13) and proven before a template is kept: the template's
own blob must be rebuilt from its graph byte for byte. Callers still compare every package
with the eager model, reused or not.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "TEMPLATE_CONFIGS",
    "TemplateError",
    "aoti_compile",
    "compile_or_reuse",
    "pack_constants",
    "package_layout",
    "template_key",
]

#: Inductor settings that make a package reusable as a template (see the module docstring).
TEMPLATE_CONFIGS: dict[str, Any] = {
    "aot_inductor.package_constants_in_so": False,
    "aot_inductor.package_constants_on_disk_format": "binary_blob",
    "always_keep_tensor_constants": True,
    # folds a tensor whose entries are all equal (any one-element tensor) into a literal
    "joint_graph_constant_folding": False,
}

_INFO = re.compile(
    r"constants_info_\[(\d+)\]\.(original_fqn|data_size|from_folded) = (.*?);")


class TemplateError(RuntimeError):
    """A package cannot serve as a template (unexpected layout, folded constants...)."""


def _vec_isa() -> str:
    try:
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        return str(pick_vec_isa())
    except Exception:  # an older/newer torch: the machine name still separates CPUs
        return platform.processor() or "unknown"


def _constants(exported: torch.export.ExportedProgram) -> dict[str, torch.Tensor]:
    """The program's parameters, buffers and lifted constants, by fully qualified name."""
    out: dict[str, torch.Tensor] = {}
    for source in (exported.state_dict, exported.constants):
        for name, value in source.items():
            if isinstance(value, torch.Tensor):
                out[name] = value
    return out


def template_key(exported: torch.export.ExportedProgram, inductor_configs: dict[str, Any]) -> str:
    """Hash of everything a template's generated code depends on, except weight values."""
    consts = {name: [list(t.shape), list(t.stride()), str(t.dtype)]
              for name, t in sorted(_constants(exported).items())}
    text = json.dumps({
        "code": exported.graph_module.code,
        "signature": str(exported.graph_signature),
        "constants": consts,
        "configs": {k: repr(v) for k, v in sorted(inductor_configs.items())},
        "torch": torch.__version__,
        "isa": _vec_isa(),
        "machine": platform.machine(),
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _entries(zf: zipfile.ZipFile) -> tuple[str, str]:
    wrappers = [n for n in zf.namelist() if n.endswith(".wrapper.cpp")]
    blobs = [n for n in zf.namelist() if n.endswith("_weights.blob")]
    if len(wrappers) != 1 or len(blobs) != 1:
        raise TemplateError(
            f"expected one wrapper and one weight blob in the package, found "
            f"{len(wrappers)} and {len(blobs)} (compile it with TEMPLATE_CONFIGS)")
    return wrappers[0], blobs[0]


def package_layout(package: str | Path) -> list[tuple[str, int]]:
    """``(constant's qualified name, bytes in the blob)`` in blob order, from the wrapper.

    Raises
    ------
    TemplateError
        No blob, a constant folded at compile time (its value would not come from the
        graph), or sizes that do not add up to the blob's.
    """
    with zipfile.ZipFile(package) as zf:
        wrapper, blob = _entries(zf)
        source = zf.read(wrapper).decode()
        blob_size = zf.getinfo(blob).file_size
    rows: dict[int, dict[str, str]] = {}
    for index, field, value in _INFO.findall(source):
        rows.setdefault(int(index), {})[field] = value
    if not rows or sorted(rows) != list(range(len(rows))):
        raise TemplateError("the wrapper's constants_info_ table is missing or has gaps")
    layout = []
    for k in range(len(rows)):
        row = rows[k]
        if row.get("from_folded") != "false":
            raise TemplateError(f"constant {k} is folded at compile time")
        layout.append((row["original_fqn"].strip('"'), int(row["data_size"])))
    if sum(size for _, size in layout) != blob_size:
        raise TemplateError("the constants' sizes do not add up to the weight blob's size")
    return layout


def _storage_bytes(t: torch.Tensor) -> bytes:
    # inductor writes a constant's whole storage (torch/_inductor/codecache.py)
    storage = t.detach().cpu().untyped_storage()
    if storage.nbytes() == 0:
        return b""
    return torch.empty(0, dtype=torch.uint8).set_(storage).numpy().tobytes()


def pack_constants(layout: Sequence[tuple[str, int]],
                   exported: torch.export.ExportedProgram) -> bytes:
    """The weight blob of ``exported``'s constants in a template's ``layout``."""
    consts = _constants(exported)
    out = bytearray()
    for name, size in layout:
        if name not in consts:
            raise TemplateError(f"the program has no constant {name!r}")
        raw = _storage_bytes(consts[name])
        if len(raw) > size:
            raise TemplateError(f"constant {name!r} holds {len(raw)} bytes, the blob {size}")
        out += raw + bytes(size - len(raw))
    return bytes(out)


def _write_with_blob(template: Path, out: Path, blob: bytes) -> None:
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(out, "w") as dst:
        _, blob_name = _entries(src)
        for info in src.infolist():
            data = blob if info.filename == blob_name else src.read(info.filename)
            dst.writestr(info, data, compress_type=info.compress_type)


def aoti_compile(exported: torch.export.ExportedProgram, package: str,
                 inductor_configs: dict[str, Any]) -> str:
    """``torch._inductor.aoti_compile_and_package`` (the default compiler)."""
    return str(torch._inductor.aoti_compile_and_package(
        exported, package_path=package, inductor_configs=inductor_configs))


def compile_or_reuse(
    exported: torch.export.ExportedProgram,
    package: str | Path,
    inductor_configs: dict[str, Any],
    cache: str | Path | None,
    compile_fn: Callable[[torch.export.ExportedProgram, str, dict[str, Any]], str] = aoti_compile,
) -> tuple[Path, bool]:
    """Compile ``exported`` into ``package``, or reuse a template of the same program.

    Parameters
    ----------
    exported
        The program (``torch.export.export``); its weights are parameters, buffers or
        lifted constants.
    package
        Output path of the package.
    inductor_configs
        The caller's settings (metadata included); :data:`TEMPLATE_CONFIGS` are added.
    cache
        Directory of templates (created when a template is kept); None compiles without.
    compile_fn
        ``(exported, package path, configs) -> path`` (default :func:`aoti_compile`).

    Returns
    -------
    (pathlib.Path, bool)
        The package, and whether a template was reused (nothing compiled).
    """
    package = Path(package)
    configs = {**inductor_configs, **TEMPLATE_CONFIGS}
    key = template_key(exported, configs)
    template = Path(cache) / f"{key}.pt2" if cache is not None else None
    if template is not None and template.is_file():
        try:
            layout = package_layout(template)
            record = json.loads(template.with_suffix(".json").read_text())
            if record["package_sha256"] != _file_hash(template):
                raise TemplateError("the template and its record do not belong together")
            if _absent_hashes(layout, exported) != record["absent"]:
                raise TemplateError("a constant that the code does not read has changed")
            blob = pack_constants(layout, exported)
        except (TemplateError, zipfile.BadZipFile, OSError, ValueError, KeyError):
            pass  # compile below; the new package replaces the template
        else:
            _write_with_blob(template, package, blob)
            return package, True

    out = Path(compile_fn(exported, str(package), configs))
    if template is not None:
        try:
            layout = package_layout(out)
            with zipfile.ZipFile(out) as zf:
                kept = zf.read(_entries(zf)[1])
            proven = pack_constants(layout, exported) == kept
        except TemplateError:
            proven = False
        if proven:  # the layout is proven: keep the template (atomically)
            template.parent.mkdir(parents=True, exist_ok=True)
            tag = f".{os.getpid()}.partial"
            partial = template.with_name(template.name + tag)
            shutil.copyfile(out, partial)
            os.replace(partial, template)
            record = template.with_suffix(".json")
            partial = record.with_name(record.name + tag)
            partial.write_text(json.dumps({"absent": _absent_hashes(layout, exported),
                                           "package_sha256": _file_hash(template)}))
            os.replace(partial, record)
    return out, False


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _absent_hashes(layout: Sequence[tuple[str, int]],
                   exported: torch.export.ExportedProgram) -> dict[str, str]:
    """sha256 of every constant of ``exported`` that ``layout`` does not hold."""
    held = {name for name, _ in layout}
    return {name: hashlib.sha256(_storage_bytes(t)).hexdigest()
            for name, t in sorted(_constants(exported).items()) if name not in held}
