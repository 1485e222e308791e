"""``nequip-compile`` with the compilation cache of :mod:`anharmbench.mlip.aoti_cache`.

``python -m anharmbench.mlip.nequip.cached_compile CACHE_DIR <nequip-compile arguments>``
runs nequip's own compile command, except that its AOTInductor step reuses a template of
the same traced model from ``CACHE_DIR`` when there is one (same architecture, other
weights; seconds instead of a minute) and keeps a new template otherwise. nequip still
compares the package with the eager model afterwards.
:func:`anharmbench.mlip.nequip.compile_nequip` runs this in a subprocess, as it runs
``nequip-compile`` without a cache; it is not a user command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> None:
    from anharmbench.mlip.aoti_cache import compile_or_reuse
    from anharmbench.mlip.nequip._api import run_compile_with

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit(
            "usage: python -m anharmbench.mlip.nequip.cached_compile CACHE_DIR "
            "<nequip-compile arguments>"
        )
    cache = Path(args.pop(0))

    def compile_fn(exported: Any, package: str, configs: dict[str, Any], compile: Any) -> str:
        out, reused = compile_or_reuse(exported, package, configs, cache, compile)
        print(
            f"anharmbench: {'reused a compiled template' if reused else 'compiled'} ({cache})",
            flush=True,
        )
        return str(out)

    run_compile_with(args, compile_fn)


if __name__ == "__main__":
    main()
