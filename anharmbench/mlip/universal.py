"""Universal (foundation) MLIPs as ready-made ASE calculators: CHGNet and SevenNet-0.

Presets (``UNIVERSAL_MODELS``), each a factory returning an ASE calculator on the CPU:

==============  ==========================================  ==========  =================
preset          calculator                                  package     weights
==============  ==========================================  ==========  =================
``chgnet``      ``chgnet.model.dynamics.CHGNetCalculator``  ``chgnet``  CHGNet 0.3.0
``sevennet-0``  ``sevenn.calculator.SevenNetCalculator``    ``sevenn``  SevenNet-0
                                                                        (11 Jul 2024)
==============  ==========================================  ==========  =================

Both packages come with ``pip install 'anharmbench[universal]'`` (pins in ``setup.cfg``).
In a study config, ``kind: ase`` with ``calculator:
"anharmbench.mlip.universal:chgnet_calculator"`` (or ``:sevennet_calculator``).

Offline loading
    The weights ship inside the wheels (``chgnet/pretrained/0.3.0/*.pth.tar``,
    ``sevenn/pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth``).
    The factories check that the file is there and hand its path to the package, so no
    download is ever attempted (sevenn would otherwise try one for a missing file);
    :func:`model_version` records the path, its size and SHA-256.

Precision: both models are float32
    Parameters and outputs are float32 (torch's default dtype; the calculators return
    float32 forces): residual forces of ideal diamond Si are ~2e-7 (SevenNet-0) and
    ~4e-6 eV/A (CHGNet), energies carry ~4e-6 eV of round-off on 8 atoms. A finite
    difference of order ``m`` divides that noise by ``h^m``. The calculators build float32
    inputs, so running the models in float64 is not an option; the step window is the
    remedy. Measured on Si (PBE lattice of /work/shared/dft/Si-PBE, 8-atom conventional
    cell, forces method, lone directions, geometric steps, fit extrapolated to zero step;
    ``benchmarks/bench_universal.py --derivatives``, per-step scans over 0.0025..0.2 A):

    * SevenNet-0 is smooth. Second order: per-step estimates agree to 1e-4 (relative) down
      to h = 0.0025 A, bend beyond ~0.05 A; third order: float32 noise reaches ~1-3 %
      of the smaller derivatives below 0.008 A, and from ~0.046 A some estimates jump by
      10-60 % (not an h^2 tail). Windows 0.005..0.04 A (order 2) and 0.01..0.04 A
      (order 3), 8 steps: relative uncertainties <= 9e-6 (order 2) and <= 7e-3 (median
      5e-4, order 3), no poor tail fit. The default 0.01..0.08 A gives 7e-4 and 0.2,
      with 6 of 13 third-order tail fits poor.
    * CHGNet (0.3.0) is not smooth at equilibrium on the 0.01 A scale: the restoring
      force of one displaced atom over its displacement is 11.3, 11.2, 10.6, 8.8, 8.2,
      7.6 eV/A^2 at u = 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.06 A (same in the 8- and 64-atom
      cells; SevenNet-0: 8.96..8.93). Its second derivatives at equilibrium need steps
      <= 3e-3 A: window 0.0003..0.003 A, 6 steps, relative uncertainties <= 5e-4 (values
      41.3, 21.1, 24.8, 35.6 eV/A^2 against 27.5, 10.0, 24.1, 26.9 from the default
      window, where all four tail fits are poor). No window gives usable third
      derivatives: 8 of 13 poor fits at 0.001..0.004 A (values of order 1e3 eV/A^3, the
      curvature of that non-smooth region), 13 of 13 at 0.01..0.08 A. CHGNet's
      anharmonic derivatives are therefore not comparable with a smooth reference.

Speed (``benchmarks/bench_universal.py``, this 2-core CPU shared with other jobs, one
torch thread): CHGNet 54 ms (8 Si atoms) and 290 ms (64 atoms) per energy+forces call,
SevenNet-0 108 ms and 680 ms; loading 2-10 s. With another busy process on the machine,
two torch threads were 4x slower than one (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = [
    "STEP_WINDOWS",
    "UNIVERSAL_MODELS",
    "UniversalModel",
    "UniversalModelError",
    "chgnet_calculator",
    "model_version",
    "sevennet_calculator",
    "universal_calculator",
    "weights_path",
]

EXTRA = "pip install 'anharmbench[universal]'"


class UniversalModelError(RuntimeError):
    """A universal-MLIP preset is unknown, its package is missing, or its weights are."""


@dataclass(frozen=True)
class UniversalModel:
    """One preset.

    Attributes
    ----------
    name
        Preset name (key of :data:`UNIVERSAL_MODELS`).
    package
        Distribution providing the model (``pip`` name).
    weights
        Name of the pretrained weights.
    factory
        ``module:function`` returning the ASE calculator (usable as a study's
        ``calculator:``).
    """

    name: str
    package: str
    weights: str
    factory: str


UNIVERSAL_MODELS: dict[str, UniversalModel] = {
    "chgnet": UniversalModel(
        "chgnet", "chgnet", "CHGNet 0.3.0", "anharmbench.mlip.universal:chgnet_calculator"
    ),
    "sevennet-0": UniversalModel(
        "sevennet-0", "sevenn", "SevenNet-0 (11Jul2024)",
        "anharmbench.mlip.universal:sevennet_calculator",
    ),
}

#: Step windows ``{preset: {order: (h_min, h_max)}}`` (Angstrom) measured on Si (see the
#: module docstring). CHGNet's third order has no reliable window; its entry is the
#: least bad one measured (0.001..0.004 A), so a fit with it will warn.
STEP_WINDOWS: dict[str, dict[int, tuple[float, float]]] = {
    "chgnet": {2: (0.0003, 0.003), 3: (0.001, 0.004)},
    "sevennet-0": {2: (0.005, 0.04), 3: (0.01, 0.04)},
}


def _import(package: str, module: str) -> Any:
    try:
        with warnings.catch_warnings():
            # sevenn and e3nn script modules with torch.jit at import, deprecated in torch
            # 2.13 (still works)
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script. is deprecated",
                                    category=DeprecationWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        raise UniversalModelError(
            f"the universal MLIP needs the package {package!r}, which cannot be imported "
            f"({exc}); install it with {EXTRA}"
        ) from exc


def weights_path(name: str) -> Path:
    """The packaged weights file of a preset (inside the installed wheel).

    Raises
    ------
    UniversalModelError
        Unknown preset, package missing, or the file absent from the installation (it
        would have to be downloaded, which the presets never do).
    """
    model = _preset(name)
    if model.name == "chgnet":
        mod = _import("chgnet", "chgnet.model.model")
        # CHGNet.load resolves this same relative path (chgnet 0.4.2)
        path = Path(mod.module_dir).parent / "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar"
    else:
        const = _import("sevenn", "sevenn._const")
        path = Path(const.SEVENNET_0_11Jul2024)
    if not path.is_file():
        raise UniversalModelError(
            f"the weights of {model.weights} are not in the installed {model.package} package "
            f"({path} is missing); reinstall it with {EXTRA} (the presets never download)"
        )
    return path.resolve()


def chgnet_calculator() -> Any:
    """CHGNet (0.3.0 weights) as an ASE calculator on the CPU, quiet.

    Returns
    -------
    chgnet.model.dynamics.CHGNetCalculator
        Energies (eV), forces (eV/A, float32), stress.
    """
    path = weights_path("chgnet")
    model_mod = _import("chgnet", "chgnet.model.model")
    dyn = _import("chgnet", "chgnet.model.dynamics")
    # chgnet prints its parameter count and device on load: keep stdout clean
    with contextlib.redirect_stdout(io.StringIO()):
        # mlp_out_bias=False and version as in CHGNet.load("0.3.0")
        model = model_mod.CHGNet.from_file(str(path), mlp_out_bias=False, version="0.3.0")
        calc = _quiet_chgnet_class(dyn.CHGNetCalculator)(model=model, use_device="cpu")
    return calc


def _quiet_chgnet_class(base: type) -> type:
    class QuietCHGNetCalculator(base):  # type: ignore[misc, valid-type]
        """CHGNetCalculator without chgnet's per-call torch warning."""

        def calculate(self, *args: Any, **kwargs: Any) -> None:
            with warnings.catch_warnings():
                # chgnet 0.4.2 makes a tensor from a requires_grad tensor in every call
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
                super().calculate(*args, **kwargs)

    return QuietCHGNetCalculator


def sevennet_calculator() -> Any:
    """SevenNet-0 (11 Jul 2024 weights) as an ASE calculator on the CPU.

    Returns
    -------
    sevenn.calculator.SevenNetCalculator
        Energies (eV), forces (eV/A, float32), stress.
    """
    path = weights_path("sevennet-0")
    calc_mod = _import("sevenn", "sevenn.calculator")
    with warnings.catch_warnings():
        # no CUDA tensor-product accelerators on this CPU-only install: expected
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script. is deprecated",
                                category=DeprecationWarning)
        # the explicit path (not "7net-0") makes a missing file an error, never a download
        return calc_mod.SevenNetCalculator(str(path), file_type="checkpoint", device="cpu")


_FACTORIES: dict[str, Callable[[], Any]] = {
    "chgnet": chgnet_calculator,
    "sevennet-0": sevennet_calculator,
}


def _preset(name: str) -> UniversalModel:
    key = name.lower()
    if key not in UNIVERSAL_MODELS:
        raise UniversalModelError(
            f"unknown universal MLIP {name!r}; presets: {', '.join(sorted(UNIVERSAL_MODELS))}"
        )
    return UNIVERSAL_MODELS[key]


def universal_calculator(name: str) -> Any:
    """The ASE calculator of a preset (``"chgnet"`` or ``"sevennet-0"``, case-insensitive).

    Raises
    ------
    UniversalModelError
        Unknown name (the message lists the presets) or package/weights missing (the
        message names ``pip install 'anharmbench[universal]'``).
    """
    return _FACTORIES[_preset(name).name]()


def model_version(name: str) -> dict[str, Any]:
    """Provenance of a preset: package and version, weights name, file, size and SHA-256.

    Returns
    -------
    dict
        ``{"preset", "package", "package_version", "weights", "weights_file",
        "weights_bytes", "weights_sha256", "torch", "dtype"}``.
    """
    model = _preset(name)
    try:
        pkg_version = version(model.package)
    except PackageNotFoundError:
        raise UniversalModelError(
            f"{model.package} is not installed; install it with {EXTRA}"
        ) from None
    path = weights_path(model.name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        torch_version = version("torch")
    except PackageNotFoundError:  # pragma: no cover - both packages depend on torch
        torch_version = "missing"
    return {
        "preset": model.name,
        "package": model.package,
        "package_version": pkg_version,
        "weights": model.weights,
        "weights_file": path.name,
        "weights_bytes": path.stat().st_size,
        "weights_sha256": digest,
        "torch": torch_version,
        "dtype": "float32",
    }
