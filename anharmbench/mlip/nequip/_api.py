"""The private nequip API we use, in one place (tested against nequip 0.19.1).

nequip's ASE calculator reads a training checkpoint or a packaged model only through its
private ``NequIPCalculator._from_saved_model`` (the public ``from_compiled_model`` needs a
compiled model, which takes minutes to build); if a release renames it, only this module
changes, and ``tests/test_private_apis.py`` says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: nequip versions this adapter was tested with (setup.cfg pins nequip==0.19.1).
TESTED = "==0.19.1"


def calculator_from_saved_model(calculator_cls: Any, path: str | Path, device: str) -> Any:
    """``NequIPCalculator`` of a checkpoint or package; type names are chemical symbols."""
    return calculator_cls._from_saved_model(
        str(path), device=device, chemical_species_to_atom_type_map=True
    )


def run_compile_with(argv: list[str], compile_fn: Any) -> None:
    """Run ``nequip-compile`` (``argv`` as on its command line) in this process with its
    AOTInductor step replaced by ``compile_fn(exported, package_path, inductor_configs,
    compile)``, where ``compile(exported, package_path, inductor_configs)`` is torch's own.

    nequip's ``aot_export_model`` looks ``torch._inductor.aoti_compile_and_package`` up when
    it calls it; the replacement holds for this call only. Everything else (loading,
    tracing, metadata, nequip's own comparison of the package with the eager model) stays
    nequip's.
    """
    import torch._inductor
    from nequip.scripts.compile import main

    original = torch._inductor.aoti_compile_and_package

    def compile(exported: Any, package_path: str, inductor_configs: dict[str, Any]) -> str:
        return str(original(exported, package_path=package_path, inductor_configs=inductor_configs))

    def replacement(
        exported: Any,
        package_path: str | None = None,
        inductor_configs: dict[str, Any] | None = None,
    ) -> str:
        return compile_fn(exported, str(package_path), dict(inductor_configs or {}), compile)

    torch._inductor.aoti_compile_and_package = replacement  # type: ignore[assignment]
    try:
        main(argv)
    finally:
        torch._inductor.aoti_compile_and_package = original  # type: ignore[assignment]
