"""Universal (foundation) MLIPs as ready-made ASE calculators: CHGNet and SevenNet.

Presets (``UNIVERSAL_MODELS``), each a factory returning an ASE calculator on the CPU; every
one loads weights that ship inside its package's wheel:

========================  ====================================  ==========================
preset                    weights (package)                     notes
========================  ====================================  ==========================
``chgnet``                CHGNet 0.3.0 (``chgnet``)             the default CHGNet
``chgnet-0.2.0``          CHGNet 0.2.0                          ``mlp_out_bias`` as chgnet
``chgnet-r2scan``         CHGNet r2SCAN (transfer learned)      r2SCAN, not PBE
``sevennet-0``            SevenNet-0, 11 Jul 2024 (``sevenn``)  the default SevenNet
``sevennet-0-22may2024``  SevenNet-0, 22 May 2024
``sevennet-l3i5``         SevenNet-l3i5 (l_max 3, 5 layers)
``sevennet-mf-0-pbe``     SevenNet-MF-0, fidelity ``PBE``       multi-fidelity checkpoint
``sevennet-mf-0-r2scan``  SevenNet-MF-0, fidelity ``R2SCAN``
========================  ====================================  ==========================

:func:`resolve_preset` also takes the packages' own names (``7net-l3i5``, ``7net-mf-0``
with a modal, ``0.2.0``, ``r2scan``), as a study's ``settings: {model: ..., modal: ...}``.

Both packages come with ``pip install 'anharmbench[universal]'`` (pins in ``pyproject.toml``).
In a study config, ``kind: ase`` with ``calculator:
"anharmbench.mlip.universal:chgnet_calculator"`` (or ``:sevennet_calculator``).

Offline loading
    The weights ship inside the wheels (``chgnet/pretrained/<version>/*.pth.tar``,
    ``sevenn/pretrained_potentials/<name>/checkpoint_*.pth``).
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

In LAMMPS (the SevenNet presets)
    :func:`sevennet_lammps_potential` deploys a SevenNet preset once as TorchScript (what
    ``sevenn_get_model`` writes, with the preset's modal) into a per-user cache and returns a
    :class:`~anharmbench.potentials.spec.LammpsPotential` for ``pair_style e3gnn``, the
    plugin built from the sevenn wheel's own sources (``plugins/e3gnn``). It runs the same
    float32 network on the same graph: on rattled 8-atom Si and (triclinic) NaCl cells LAMMPS
    and the ASE calculator agree to <= 4e-6 eV in energy (two float32 ulps), <= 7e-7 eV/A
    in forces and <= 2e-8 eV/A^3 in stress (``tests/test_e3gnn_plugin.py``), with newton
    pair on or off. One MPI rank (serial deployment). Deploying takes 5-10 s, once.

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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from anharmbench.potentials.spec import (
    LammpsPotential,
    PotentialError,
    lammps_path_word,
    model_file_potential,
)

__all__ = [
    "STEP_WINDOWS",
    "UNIVERSAL_MODELS",
    "UniversalModel",
    "UniversalModelError",
    "chgnet_calculator",
    "deployed_metadata",
    "model_version",
    "sevennet_calculator",
    "sevennet_deployed_model",
    "sevennet_lammps_potential",
    "universal_calculator",
    "weights_path",
]

EXTRA = "pip install 'anharmbench[universal]'"


class UniversalModelError(RuntimeError):
    """A universal-MLIP preset is unknown, its package is missing, or its weights are.

    ``setting`` names the study setting at fault when the choice of weights is
    (``"model"`` or ``"modal"``), else ``None``.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


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
        ``module:function`` returning the ASE calculator of the family's default preset
        (usable as a study's ``calculator:``).
    file
        Where the weights are: for ``sevenn``, the name of their path in ``sevenn._const``;
        for ``chgnet``, their path below the package folder (as ``CHGNet.load`` has it).
    variant
        ``chgnet``: the ``version`` its loader passes (``0.2.0`` also sets
        ``mlp_out_bias``); ``sevenn``: the modal (fidelity) of a multi-fidelity checkpoint.
    """

    name: str
    package: str
    weights: str
    factory: str
    file: str
    variant: str | None = None

    @property
    def family(self) -> str:
        """``chgnet`` or ``sevennet``: the study's model kind, the step windows' key."""
        return "chgnet" if self.package == "chgnet" else "sevennet"


def _chgnet(name: str, weights: str, file: str, variant: str) -> UniversalModel:
    return UniversalModel(name, "chgnet", weights,
                          "anharmbench.mlip.universal:chgnet_calculator", file, variant)


def _sevennet(name: str, weights: str, file: str, modal: str | None = None) -> UniversalModel:
    return UniversalModel(name, "sevenn", weights,
                          "anharmbench.mlip.universal:sevennet_calculator", file, modal)


UNIVERSAL_MODELS: dict[str, UniversalModel] = {m.name: m for m in (
    _chgnet("chgnet", "CHGNet 0.3.0", "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
            "0.3.0"),
    _chgnet("chgnet-0.2.0", "CHGNet 0.2.0",
            "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar", "0.2.0"),
    _chgnet("chgnet-r2scan", "CHGNet r2SCAN",
            "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
            "r2scan"),
    _sevennet("sevennet-0", "SevenNet-0 (11Jul2024)", "SEVENNET_0_11Jul2024"),
    _sevennet("sevennet-0-22may2024", "SevenNet-0 (22May2024)", "SEVENNET_0_22May2024"),
    _sevennet("sevennet-l3i5", "SevenNet-l3i5", "SEVENNET_l3i5"),
    _sevennet("sevennet-mf-0-pbe", "SevenNet-MF-0 (PBE fidelity)", "SEVENNET_MF_0", "PBE"),
    _sevennet("sevennet-mf-0-r2scan", "SevenNet-MF-0 (R2SCAN fidelity)", "SEVENNET_MF_0",
              "R2SCAN"),
)}

#: The packages' own names of their weights -> preset (lower case); a multi-fidelity
#: checkpoint's name needs its modal (:func:`resolve_preset`)
_ALIASES: dict[str, dict[str, str]] = {
    "chgnet": {"chgnet": "chgnet", "0.3.0": "chgnet", "chgnet-0.3.0": "chgnet",
               "0.2.0": "chgnet-0.2.0", "chgnet-0.2.0": "chgnet-0.2.0",
               "r2scan": "chgnet-r2scan", "chgnet-r2scan": "chgnet-r2scan"},
    "sevennet": {"7net-0": "sevennet-0", "sevennet-0": "sevennet-0",
                 "7net-0_11jul2024": "sevennet-0", "sevennet-0_11jul2024": "sevennet-0",
                 "7net-0_22may2024": "sevennet-0-22may2024",
                 "sevennet-0_22may2024": "sevennet-0-22may2024",
                 "sevennet-0-22may2024": "sevennet-0-22may2024",
                 "7net-l3i5": "sevennet-l3i5", "sevennet-l3i5": "sevennet-l3i5",
                 "sevennet-mf-0-pbe": "sevennet-mf-0-pbe",
                 "sevennet-mf-0-r2scan": "sevennet-mf-0-r2scan"},
}
_MULTI_FIDELITY = {"7net-mf-0": "sevennet-mf-0", "sevennet-mf-0": "sevennet-mf-0"}


def resolve_preset(family: str, model: str | None = None, modal: str | None = None) -> str:
    """The preset a study's ``kind`` and ``settings: {model, modal}`` name.

    Parameters
    ----------
    family
        ``chgnet`` or ``sevennet``.
    model
        A preset name or the package's own name of the weights (case-insensitive); default:
        the family's default preset (``chgnet``: CHGNet 0.3.0, ``sevennet``: SevenNet-0).
    modal
        The fidelity of a multi-fidelity SevenNet checkpoint (``PBE`` or ``R2SCAN`` for
        ``7net-mf-0``); refused for the others.

    Raises
    ------
    UniversalModelError
        Unknown weights (the message lists the accepted names), a multi-fidelity checkpoint
        without its modal, or a modal given to one that has none.
    """
    if family not in _ALIASES:
        raise UniversalModelError(f"no universal family {family!r}; families: chgnet, sevennet")
    key = (model or ("chgnet" if family == "chgnet" else "sevennet-0")).lower()
    if family == "sevennet" and key in _MULTI_FIDELITY:
        modals = sorted(m.variant for m in UNIVERSAL_MODELS.values()
                        if m.name.startswith(_MULTI_FIDELITY[key] + "-") and m.variant)
        if modal is None or modal.upper() not in modals:
            raise UniversalModelError(
                f"{model!r} is a multi-fidelity checkpoint: give its modal, one of "
                f"{', '.join(modals)} (settings: {{model: {model}, modal: {modals[-1]}}}); "
                f"got {modal!r}", setting="model" if modal is None else "modal")
        return f"{_MULTI_FIDELITY[key]}-{modal.lower()}"
    if key not in _ALIASES[family]:
        raise UniversalModelError(
            f"{family} has no pretrained weights {model!r} in its wheel; accepted: "
            f"{', '.join(sorted(_ALIASES[family]))}"
            + (", or 7net-mf-0 with a modal" if family == "sevennet" else ""),
            setting="model")
    if modal is not None:
        raise UniversalModelError(f"{model or key!r} has one fidelity: remove modal {modal!r} "
                                  "(only 7net-mf-0 takes one)", setting="modal")
    return _ALIASES[family][key]


#: Step windows ``{family: {order: (h_min, h_max)}}`` (Angstrom) measured on Si with the
#: family's default preset (see the module docstring); the other checkpoints of a family
#: share its float32 network and get its windows. CHGNet's third order has no reliable
#: window; its entry is the least bad one measured (0.001..0.004 A), so a fit with it will
#: warn.
STEP_WINDOWS: dict[str, dict[int, tuple[float, float]]] = {
    "chgnet": {2: (0.0003, 0.003), 3: (0.001, 0.004)},
    "sevennet": {2: (0.005, 0.04), 3: (0.01, 0.04)},
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
    if model.package == "chgnet":
        mod = _import("chgnet", "chgnet.model.model")
        # CHGNet.load resolves these same relative paths (chgnet 0.4.2)
        path = Path(mod.module_dir).parent / model.file
    else:
        const = _import("sevenn", "sevenn._const")
        path = Path(getattr(const, model.file))
    if not path.is_file():
        raise UniversalModelError(
            f"the weights of {model.weights} are not in the installed {model.package} package "
            f"({path} is missing); reinstall it with {EXTRA} (the presets never download)"
        )
    return path.resolve()


@contextlib.contextmanager
def float32_default() -> Iterator[None]:
    """torch's default dtype set to float32 inside, the caller's restored after.

    torch's default dtype is process-wide, and nequip sets it to float64 for its own
    models; the float32 universal models then fail ("Float did not match Double").
    Loading and every call of the presets run inside this.
    """
    import torch

    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _float32_calls(calc: Any) -> Any:
    """``calc`` whose ``calculate`` runs under :func:`float32_default`."""
    inner = calc.calculate

    def calculate(*args: Any, **kwargs: Any) -> Any:
        with float32_default():
            return inner(*args, **kwargs)

    calc.calculate = calculate
    return calc


def chgnet_calculator(preset: str = "chgnet") -> Any:
    """CHGNet (default: the 0.3.0 weights) as an ASE calculator on the CPU, quiet.

    Parameters
    ----------
    preset
        A CHGNet preset of :data:`UNIVERSAL_MODELS`.

    Returns
    -------
    chgnet.model.dynamics.CHGNetCalculator
        Energies (eV), forces (eV/A, float32), stress.
    """
    spec = _preset(preset, "chgnet")
    path = weights_path(spec.name)
    model_mod = _import("chgnet", "chgnet.model.model")
    dyn = _import("chgnet", "chgnet.model.dynamics")
    # chgnet prints its parameter count and device on load: keep stdout clean
    with contextlib.redirect_stdout(io.StringIO()), float32_default():
        # mlp_out_bias and version as CHGNet.load(model_name) sets them
        model = model_mod.CHGNet.from_file(str(path), mlp_out_bias=spec.variant == "0.2.0",
                                           version=spec.variant)
        calc = _quiet_chgnet_class(dyn.CHGNetCalculator)(model=model, use_device="cpu")
    return _float32_calls(calc)


def _quiet_chgnet_class(base: type) -> type:
    class QuietCHGNetCalculator(base):  # type: ignore[misc, valid-type]
        """CHGNetCalculator without chgnet's per-call torch warning."""

        def calculate(self, *args: Any, **kwargs: Any) -> None:
            with warnings.catch_warnings():
                # chgnet 0.4.2 makes a tensor from a requires_grad tensor in every call
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
                super().calculate(*args, **kwargs)

    return QuietCHGNetCalculator


def sevennet_calculator(preset: str = "sevennet-0") -> Any:
    """SevenNet (default: SevenNet-0, 11 Jul 2024 weights) as an ASE calculator on the CPU.

    Parameters
    ----------
    preset
        A SevenNet preset of :data:`UNIVERSAL_MODELS` (a multi-fidelity one carries its
        modal).

    Returns
    -------
    sevenn.calculator.SevenNetCalculator
        Energies (eV), forces (eV/A, float32), stress.
    """
    spec = _preset(preset, "sevennet")
    path = weights_path(spec.name)
    calc_mod = _import("sevenn", "sevenn.calculator")
    with warnings.catch_warnings():
        # no CUDA tensor-product accelerators on this CPU-only install: expected
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script. is deprecated",
                                category=DeprecationWarning)
        # the explicit path (not "7net-0") makes a missing file an error, never a download
        with float32_default():
            calc = calc_mod.SevenNetCalculator(str(path), file_type="checkpoint", device="cpu",
                                               modal=spec.variant)
    return _float32_calls(calc)


#: File name of a serial TorchScript deployment (as ``sevenn_get_model`` names it).
DEPLOYED_NAME = "deployed_serial.pt"


def _default_sevennet_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anharmbench"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def sevennet_deployed_model(cache_dir: str | os.PathLike[str] | None = None,
                            preset: str = "sevennet-0") -> Path:
    """A SevenNet preset deployed for ``pair_style e3gnn`` (TorchScript), made once, cached.

    The file is what ``sevenn_get_model`` writes (``sevenn.scripts.deploy.deploy`` of the
    packaged checkpoint, with the preset's modal, no accelerator), stored as
    ``<cache_dir>/<preset>/sevenn-<version>_torch-<version>/deployed_serial.pt``: another
    preset, sevenn or torch gets its own file, and an existing file is reused. It is
    written by a separate Python process (a few seconds, once) to a temporary folder beside
    it and moved into place, so concurrent callers never see a partial file.

    Parameters
    ----------
    cache_dir
        Cache folder (default ``$XDG_CACHE_HOME/anharmbench``, i.e. ``~/.cache/anharmbench``).
    preset
        A SevenNet preset of :data:`UNIVERSAL_MODELS`.

    Returns
    -------
    pathlib.Path
        The deployed model (absolute path).

    Raises
    ------
    UniversalModelError
        sevenn (or torch) is not installed, or the weights are not in the wheel.
    """
    spec = _preset(preset, "sevennet")
    checkpoint = weights_path(spec.name)
    try:
        key = f"sevenn-{version('sevenn')}_torch-{version('torch')}"
    except PackageNotFoundError as exc:
        raise UniversalModelError(
            f"{spec.weights} needs sevenn and torch ({exc.name} is missing); install them "
            f"with {EXTRA}"
        ) from None
    folder = Path(cache_dir) if cache_dir is not None else _default_sevennet_cache()
    folder = (folder / spec.name / _safe(key)).resolve()
    path = folder / DEPLOYED_NAME
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    # a folder of our own, so the archive's inner name stays "deployed_serial"
    tmp = Path(tempfile.mkdtemp(prefix=".deploy-", dir=folder))
    try:
        # In a fresh interpreter: torch.jit.script of the model fails ("Couldn't find
        # method: 'forward' on class ... BesselBasis") in a process that has already
        # scripted and used sevenn's modules in some ways (the e3gnn tests, then a study,
        # reproduced), and the host may have changed torch's default dtype.
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _DEPLOY_CODE, str(checkpoint),
             str(tmp / DEPLOYED_NAME), spec.variant or ""],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not (tmp / DEPLOYED_NAME).is_file():
            raise UniversalModelError(
                f"deploying {spec.weights} ({checkpoint}) for pair_style e3gnn failed "
                f"(exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}"
            )
        os.replace(tmp / DEPLOYED_NAME, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


#: ``python -c`` body of the deployment: sevenn's own deploy, float32 (torch's default).
_DEPLOY_CODE = (
    "import sys\n"
    "from sevenn.scripts.deploy import deploy\n"
    "deploy(sys.argv[1], sys.argv[2], modal=sys.argv[3] or None)\n"
)


def deployed_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata a SevenNet deployment carries for ``pair_style e3gnn``.

    Read from the TorchScript archive (``<name>/extra/<key>``) without loading torch.

    Returns
    -------
    dict of str to str
        E.g. ``chemical_symbols_to_index`` (space-separated element names), ``cutoff``,
        ``num_species``, ``model_type``, ``version``, ``dtype``, ``time``.

    Raises
    ------
    PotentialError
        When the file is not a TorchScript archive with that metadata.
    """
    meta: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for item in zf.namelist():
                parts = item.split("/")
                if len(parts) == 3 and parts[1] == "extra" and parts[2]:
                    meta[parts[2]] = zf.read(item).decode().strip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise PotentialError(f"{path} is not a deployed SevenNet model: {exc}") from exc
    if "chemical_symbols_to_index" not in meta or "cutoff" not in meta:
        raise PotentialError(
            f"{path} lacks the metadata of a SevenNet deployment (chemical_symbols_to_index, "
            "cutoff); deploy it with sevenn_get_model (serial)"
        )
    return meta


def sevennet_lammps_potential(
    elements: Sequence[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    preset: str = "sevennet-0",
) -> LammpsPotential:
    """A SevenNet preset in LAMMPS: ``pair_style e3gnn`` with the cached deployment.

    Parameters
    ----------
    elements
        Chemical symbols in LAMMPS type order (type 1 = ``elements[0]``); each must be
        one of the preset's elements.
    cache_dir
        Where the deployment is cached (see :func:`sevennet_deployed_model`).
    name
        Name in reports (default ``<preset>-lammps``).
    preset
        A SevenNet preset of :data:`UNIVERSAL_MODELS` (default SevenNet-0).

    Returns
    -------
    LammpsPotential
        ``pair_style e3gnn``, ``pair_coeff * * <deployed_serial.pt> <elements...>``,
        ``newton on`` (SevenNet's documented setting and LAMMPS's default; newton pair
        off gives the same numbers, measured). Needs the
        ``e3gnn`` plugin (``python -m anharmbench.plugins build`` with sevenn installed);
        without it evaluating raises :class:`PotentialError` naming the missing style.

    Raises
    ------
    UniversalModelError
        sevenn or torch is not installed (``pip install 'anharmbench[universal]'``).
    PotentialError
        An element the preset does not describe.
    """
    elements = tuple(elements)
    spec = _preset(preset, "sevennet")
    path = sevennet_deployed_model(cache_dir, spec.name)
    known = deployed_metadata(path)["chemical_symbols_to_index"].split()
    unknown = [el for el in elements if el not in known]
    if unknown:
        raise PotentialError(
            f"{spec.weights} has no element(s) {unknown}; it describes {len(known)} "
            f"elements: {' '.join(known)}"
        )
    return model_file_potential(
        "e3gnn", path, elements, name=name or f"{spec.name}-lammps",
        word=lammps_path_word(path), commands=("newton on",)
    )


_FACTORIES: dict[str, Callable[[str], Any]] = {
    "chgnet": chgnet_calculator,
    "sevenn": sevennet_calculator,
}


def _preset(name: str, family: str | None = None) -> UniversalModel:
    key = name.lower()
    if key not in UNIVERSAL_MODELS:
        raise UniversalModelError(
            f"unknown universal MLIP {name!r}; presets: {', '.join(sorted(UNIVERSAL_MODELS))}"
        )
    model = UNIVERSAL_MODELS[key]
    if family is not None and model.family != family:
        raise UniversalModelError(f"{name!r} is a {model.family} preset, not {family}")
    return model


def universal_calculator(name: str) -> Any:
    """The ASE calculator of a preset (a key of :data:`UNIVERSAL_MODELS`, case-insensitive).

    Raises
    ------
    UniversalModelError
        Unknown name (the message lists the presets) or package/weights missing (the
        message names ``pip install 'anharmbench[universal]'``).
    """
    model = _preset(name)
    return _FACTORIES[model.package](model.name)


def model_version(name: str) -> dict[str, Any]:
    """Provenance of a preset: package and version, weights name, file, size and SHA-256.

    Returns
    -------
    dict
        ``{"preset", "package", "package_version", "weights", "weights_file",
        "weights_bytes", "weights_sha256", "variant", "torch", "dtype"}`` (``variant``: the
        CHGNet version or SevenNet modal the weights are loaded with).
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
        "variant": model.variant,
        "torch": torch_version,
        "dtype": "float32",
    }
