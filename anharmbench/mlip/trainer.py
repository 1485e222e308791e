"""One interface to every model class: train on a dataset, deploy in LAMMPS, parity.

:class:`Trainer` is the interface (a base class holding the shared signatures and
checks); :data:`TRAINERS` maps a model kind (the study's
``kind``, the ``MODEL`` of ``anharmbench train``) to a thin class over the model's own
package, which holds all the logic:

* ``gap`` -- :func:`~anharmbench.mlip.gap.train_gap`; ``pair_style quip``;
* ``bpnn`` -- :func:`~anharmbench.mlip.bpnn.train` and
  :func:`~anharmbench.mlip.bpnn.export_pt2`; ``pair_style nequip``;
* ``nequip`` -- :func:`~anharmbench.mlip.nequip.train_nequip` (it compiles the model);
  ``pair_style nequip``;
* ``chgnet``, ``sevennet`` -- universal presets (:mod:`anharmbench.mlip.universal`),
  pre-trained: training records the shipped weights; SevenNet-0 deploys as
  ``pair_style e3gnn``, CHGNet runs through its ASE calculator only.

The same classes train on any dataset directory (IDMD, reference MD or DFT supercells).
Typical use::

    from anharmbench.mlip.trainer import trainer
    nequip = trainer("nequip")
    nequip.train("datasets/refmd", "models/nequip", nequip.config("quick", max_epochs=20))
    potential = nequip.deploy("models/nequip", ("Th", "O"))   # LammpsPotential
    result = nequip.parity("models/nequip", "datasets/refmd")  # ParityResult (test split)

Heavy packages (torch, quippy, nequip) are imported only when a method runs, so the
registry is cheap to import (the command line builds its choices from it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from anharmbench.mlip.parity import ParityResult
from anharmbench.potentials.spec import LammpsPotential

__all__ = [
    "TRAINERS",
    "BPNNTrainer",
    "CHGNetModel",
    "ConfigOption",
    "GapTrainer",
    "NequIPTrainer",
    "SevenNetModel",
    "Trainer",
    "trainer",
]

PROFILES = ("quick", "paper")
SPLITS = ("train", "val", "test")
#: A path argument as callers give it.
_Path = str | Path


@dataclass(frozen=True)
class ConfigOption:
    """A field of a model's training configuration that the command line may set.

    Attributes
    ----------
    name
        The configuration field (``--max-epochs`` sets ``max_epochs``).
    type
        Its type (``int``, ``float`` or ``str``); argparse converts with it.
    help
        One line for ``--help``.
    """

    name: str
    type: type
    help: str


class Trainer:
    """Train, deploy and evaluate one model class: the interface every model kind implements.

    ``out_dir`` is the model directory that :meth:`train` writes and :meth:`deploy` and
    :meth:`parity` read. The public methods hold the signatures and the checks shared by
    every model; a model kind fills in the hooks ``_config``, ``_fit``, ``_parity`` and
    :meth:`deploy`.
    """

    #: The model kind (key of :data:`TRAINERS`).
    name: ClassVar[str]
    #: One line saying what the model is (``anharmbench train --help``).
    summary: ClassVar[str]
    #: Configuration fields the command line offers as options.
    options: ClassVar[tuple[ConfigOption, ...]] = ()
    #: The trained model is compiled for LAMMPS (``compile_cache`` applies).
    compiled: ClassVar[bool] = False
    #: Nothing to fit: the weights ship with the package (profile and seed do not apply).
    pretrained: ClassVar[bool] = False

    def config(self, profile: str = "quick", *, seed: int | None = None, **overrides: Any) -> Any:
        """The typed training configuration of ``profile`` (``"quick"``/``"paper"``)."""
        seeded = overrides if seed is None else {"seed": seed, **overrides}
        return self._config(_profile(profile), **seeded)

    def train(
        self,
        dataset_dir: str | Path,
        out_dir: str | Path,
        config: Any = None,
        *,
        compile_cache: str | Path | None = None,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """Fit the model, ready to deploy; returns a JSON-serialisable summary."""
        return self._fit(dataset_dir, out_dir, config, compile_cache, overwrite)

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        """The LAMMPS potential of the trained model (``elements`` in LAMMPS type order)."""
        raise NotImplementedError  # pragma: no cover - every model kind defines it

    def parity(
        self,
        out_dir: str | Path,
        dataset_dir: str | Path,
        *,
        split: str = "test",
        elements: Sequence[str] | None = None,
        name: str | None = None,
    ) -> ParityResult:
        """Energy/force parity on a dataset split (write it with
        :func:`~anharmbench.mlip.parity.write_parity`)."""
        return self._parity(out_dir, _frames(dataset_dir, split), elements, name)

    # Hooks of a model kind; the public methods above checked their arguments.

    def _config(self, profile: str, **fields: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - every trained model kind defines it

    def _fit(
        self, dataset_dir: _Path, out_dir: _Path, config: Any, cache: _Path | None, overwrite: bool
    ) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - every model kind defines it

    def _parity(
        self, out_dir: _Path, frames: list[Any], elements: Sequence[str] | None, name: str | None
    ) -> ParityResult:
        raise NotImplementedError  # pragma: no cover - every model kind defines it


def _profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    return profile


def _frames(dataset_dir: str | Path, split: str) -> list[Any]:
    from anharmbench.mlip.data import load_splits

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return getattr(load_splits(dataset_dir, require=(split,)), split)


class _Deployed(Trainer):
    """Parity through the deployed LAMMPS potential (what derivatives and MD use)."""

    def _parity(
        self, out_dir: _Path, frames: list[Any], elements: Sequence[str] | None, name: str | None
    ) -> ParityResult:
        from anharmbench.lammps import LammpsCalculator
        from anharmbench.mlip.parity import calculator_parity

        potential = self.deploy(out_dir, elements)
        with LammpsCalculator(potential) as calc:
            return calculator_parity(name or potential.name, calc, frames)


class GapTrainer(_Deployed):
    """GAP (:mod:`anharmbench.mlip.gap`): gap_fit, then ``pair_style quip``."""

    name: ClassVar[str] = "gap"
    summary: ClassVar[str] = "GAP: QUIP's gap_fit with the paper's descriptors; pair_style quip"
    options: ClassVar[tuple[ConfigOption, ...]] = (
        ConfigOption("max_frames", int, "fit to at most this many training frames"),
        ConfigOption("max_atoms", int, "fit to at most this many training atoms"),
        ConfigOption("memory_limit_gb", float, "refuse a fit estimated above this (GB)"),
    )

    def _config(self, profile: str, **fields: Any) -> Any:
        from anharmbench.mlip.gap import GapConfig

        return getattr(GapConfig, profile)(**fields)  # GapConfig.quick / GapConfig.paper

    def _fit(
        self, dataset_dir: _Path, out_dir: _Path, config: Any, cache: _Path | None, overwrite: bool
    ) -> dict[str, Any]:
        from anharmbench.mlip.gap import train_gap

        del cache  # GAP is not compiled
        model = train_gap(dataset_dir, out_dir, config, overwrite=overwrite, progress=True)
        return {"model": str(model.xml)}

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        from anharmbench.mlip.gap import gap_potential

        return gap_potential(out_dir, elements)


class NequIPTrainer(_Deployed):
    """NequIP (:mod:`anharmbench.mlip.nequip`): nequip-train and nequip-compile, then
    ``pair_style nequip``."""

    name: ClassVar[str] = "nequip"
    summary: ClassVar[str] = "NequIP graph network: nequip-train, nequip-compile; pair_style nequip"
    compiled: ClassVar[bool] = True
    options: ClassVar[tuple[ConfigOption, ...]] = (
        ConfigOption("max_epochs", int, "training epochs"),
        ConfigOption("threads", int, "torch/OpenMP threads of the training process"),
    )

    def _config(self, profile: str, **fields: Any) -> Any:
        from anharmbench.mlip.nequip import NequIPConfig

        return NequIPConfig.from_profile(profile, **fields)

    def _fit(
        self, dataset_dir: _Path, out_dir: _Path, config: Any, cache: _Path | None, overwrite: bool
    ) -> dict[str, Any]:
        from anharmbench.mlip.nequip import train_nequip

        run = train_nequip(
            dataset_dir,
            out_dir,
            config,
            overwrite=overwrite,
            compile_model=True,
            progress=True,
            compile_cache=cache,
        )
        if run.model is None:
            raise RuntimeError(f"NequIP training in {out_dir} produced no compiled model")
        return {"model": str(run.model), "epochs": run.epochs, "metrics": run.metrics}

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        from anharmbench.mlip.nequip import nequip_potential, read_package_metadata

        found = sorted(Path(out_dir).rglob("*.nequip.pt2"))
        if not found:
            raise FileNotFoundError(f"no compiled NequIP model (*.nequip.pt2) in {out_dir}")
        if elements is None:
            elements = read_package_metadata(found[0])["type_names"].split()
        return nequip_potential(found[0], elements)


class BPNNTrainer(_Deployed):
    """Behler-Parrinello networks (:mod:`anharmbench.mlip.bpnn`): trained in torch,
    exported as an AOTInductor package for ``pair_style nequip``."""

    name: ClassVar[str] = "bpnn"
    summary: ClassVar[str] = "Behler-Parrinello network, n2p2 symmetry functions; pair_style nequip"
    compiled: ClassVar[bool] = True
    options: ClassVar[tuple[ConfigOption, ...]] = (
        ConfigOption("max_epochs", int, "training epochs (early stopping may end sooner)"),
        ConfigOption("threads", int, "torch threads"),
        ConfigOption("symmetry_functions", str, "'tho2' or the path of an n2p2 input.nn"),
    )

    def _config(self, profile: str, **fields: Any) -> Any:
        from anharmbench.mlip.bpnn.config import TrainConfig

        return getattr(TrainConfig, profile)(**fields)  # TrainConfig.quick / TrainConfig.paper

    def _fit(
        self, dataset_dir: _Path, out_dir: _Path, config: Any, cache: _Path | None, overwrite: bool
    ) -> dict[str, Any]:
        from anharmbench.mlip.bpnn.export import export_pt2
        from anharmbench.mlip.bpnn.train import train

        res = train(dataset_dir, out_dir, config, resume=not overwrite)
        package = export_pt2(out_dir, cache=cache)
        return {
            "model": str(package),
            "best_epoch": res.best_epoch,
            "stop": res.stop_reason,
            "seconds_per_epoch": res.seconds_per_epoch,
        }

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        from anharmbench.mlip.bpnn.export import bpnn_potential

        return bpnn_potential(out_dir, elements)


class _Universal(Trainer):
    """A universal MLIP preset (:mod:`anharmbench.mlip.universal`): its weights ship in
    its wheel, so there is nothing to fit; training records the weights used."""

    #: The preset's name in :data:`anharmbench.mlip.universal.UNIVERSAL_MODELS`.
    preset: ClassVar[str]
    pretrained: ClassVar[bool] = True
    #: The record :meth:`train` writes into the model directory.
    RECORD = "universal_model.json"

    def config(self, profile: str = "quick", *, seed: int | None = None, **overrides: Any) -> Any:
        """``None``: a pre-trained model has no training settings (profile and seed do
        not apply)."""
        _profile(profile)
        if overrides:
            raise ValueError(
                f"{self.name} is pre-trained: it takes no training settings, got "
                f"{sorted(overrides)}"
            )
        return None

    def _fit(
        self, dataset_dir: _Path, out_dir: _Path, config: Any, cache: _Path | None, overwrite: bool
    ) -> dict[str, Any]:
        """Write the shipped weights' record (path, size, SHA-256) to ``out_dir``."""
        from anharmbench.datasets.io import write_json_atomic
        from anharmbench.mlip.universal import model_version

        del dataset_dir, cache, overwrite
        if config is not None:
            raise ValueError(f"{self.name} is pre-trained: it takes no training config")
        version = model_version(self.preset)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(out_dir) / self.RECORD, version)
        return {"model": version}

    def _parity(
        self, out_dir: _Path, frames: list[Any], elements: Sequence[str] | None, name: str | None
    ) -> ParityResult:
        """Parity through the preset's own ASE calculator (the reference route)."""
        from anharmbench.mlip.parity import calculator_parity
        from anharmbench.mlip.universal import universal_calculator

        del out_dir, elements
        return calculator_parity(name or self.preset, universal_calculator(self.preset), frames)


class CHGNetModel(_Universal):
    """CHGNet 0.3.0; it runs through its ASE calculator only (no LAMMPS pair style)."""

    name: ClassVar[str] = "chgnet"
    summary: ClassVar[str] = "CHGNet 0.3.0, pre-trained; its ASE calculator (no LAMMPS pair style)"
    preset: ClassVar[str] = "chgnet"

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        from anharmbench.mlip.universal import UniversalModelError

        raise UniversalModelError(
            "CHGNet has no LAMMPS pair style here: evaluate it with its ASE calculator, "
            "anharmbench.mlip.universal.universal_calculator('chgnet')"
        )


class SevenNetModel(_Universal):
    """SevenNet-0, deployed as ``pair_style e3gnn`` (the plugin built from sevenn)."""

    name: ClassVar[str] = "sevennet"
    summary: ClassVar[str] = "SevenNet-0, pre-trained; pair_style e3gnn"
    preset: ClassVar[str] = "sevennet-0"

    def deploy(self, out_dir: str | Path, elements: Sequence[str] | None = None) -> LammpsPotential:
        from anharmbench.mlip.universal import sevennet_lammps_potential

        if elements is None:
            raise ValueError(
                "SevenNet-0 describes most of the periodic table: pass elements=(...) in "
                "LAMMPS type order"
            )
        return sevennet_lammps_potential(elements)


#: Model kind -> trainer class.
TRAINERS: dict[str, type[Trainer]] = {
    cls.name: cls for cls in (GapTrainer, BPNNTrainer, NequIPTrainer, CHGNetModel, SevenNetModel)
}


def trainer(name: str) -> Trainer:
    """The trainer of model kind ``name`` (a key of :data:`TRAINERS`)."""
    try:
        return TRAINERS[name]()
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; choose one of {sorted(TRAINERS)}") from None
