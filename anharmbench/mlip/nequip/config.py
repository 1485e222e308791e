"""Typed NequIP training settings (:class:`NequIPConfig`) and nequip's YAML config from them.

Two profiles: ``"paper"`` (6 A cutoff, four interaction blocks, E(3)-equivariant features
built from spherical harmonics of the edge directions and a Bessel radial basis) and
``"quick"`` (same cutoff, smaller network, trains on a 2-core CPU in minutes). The model is
float64 (finite differences of order 4 to 6 need it). :meth:`NequIPConfig.to_nequip` turns
it into nequip 0.19.1's Hydra/YAML training config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BEST_CKPT", "LAST_CKPT", "MONITOR", "PROFILES", "NequIPConfig"]

#: Checkpoints Lightning writes into the run directory.
BEST_CKPT = "best.ckpt"
LAST_CKPT = "last.ckpt"
#: Metric nequip reports per validation epoch and the checkpoint callback monitors.
MONITOR = "val0_epoch/weighted_sum"

PROFILES = ("paper", "quick")


@dataclass(frozen=True)
class NequIPConfig:
    """Typed NequIP training configuration (defaults: the ``"paper"`` profile).

    The paper (``shared/paper.md``) fixes the cutoff (6 A), the number of interaction
    blocks (4) and the E(3)-equivariant spherical-harmonic/radial-basis construction;
    its supplementary hyperparameters are not part of the project's copy, so the
    remaining values are NequIP's standard choices for a medium model.

    Attributes
    ----------
    profile
        ``"paper"`` or ``"quick"`` (informational; set by :meth:`from_profile`).
    r_max
        Cutoff radius of the graph, Angstrom.
    num_layers
        Interaction (convolution) blocks.
    l_max
        Largest rotation order of the spherical harmonics and features.
    parity
        Keep features of both parities (full E(3) rather than SE(3) equivariance).
    num_features
        Multiplicity of each irrep of the hidden features.
    num_bessels
        Bessel radial basis functions.
    polynomial_cutoff_p
        Exponent of the polynomial cutoff envelope.
    radial_mlp_depth, radial_mlp_width
        Hidden layers and width of the radial network of each block.
    model_dtype
        ``"float64"`` (needed for high-order finite differences) or ``"float32"``.
    seed
        Seed of the model initialisation and of the data order.
    max_epochs
        Training epochs.
    batch_size
        Frames per batch.
    learning_rate
        Adam learning rate (reduced on plateaus of the validation loss).
    lr_patience, lr_factor
        Epochs without improvement before the learning rate is multiplied by ``lr_factor``.
    ema_decay
        Decay of the exponential moving average of the weights used for evaluation.
    energy_weight, force_weight, stress_weight
        Loss weights of the per-atom energy, force and stress MSEs; ``stress_weight = 0``
        trains on energies and forces only.
    threads
        Torch/OpenMP threads of the training process.
    """

    profile: str = "paper"
    r_max: float = 6.0
    num_layers: int = 4
    l_max: int = 2
    parity: bool = True
    num_features: int = 32
    num_bessels: int = 8
    polynomial_cutoff_p: int = 6
    radial_mlp_depth: int = 2
    radial_mlp_width: int = 64
    model_dtype: str = "float64"
    seed: int = 1
    max_epochs: int = 500
    batch_size: int = 5
    learning_rate: float = 0.005
    lr_patience: int = 25
    lr_factor: float = 0.5
    ema_decay: float = 0.999
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 1.0
    threads: int = 2

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ profiles
    @classmethod
    def from_profile(cls, profile: str = "paper", **overrides: Any) -> NequIPConfig:
        """The ``"paper"`` or ``"quick"`` profile, with field overrides.

        ``"quick"``: 6 A cutoff, 2 blocks, ``l_max = 1``, 16 features, 40 epochs,
        float64 -- minutes on a 2-core CPU for datasets of a few hundred frames.
        """
        if profile not in PROFILES:
            raise ValueError(f"unknown NequIP profile {profile!r}; choose one of {PROFILES}")
        base: dict[str, Any] = {"profile": profile}
        if profile == "quick":
            base.update(
                num_layers=2,
                l_max=1,
                num_features=16,
                radial_mlp_depth=1,
                radial_mlp_width=32,
                max_epochs=40,
                learning_rate=0.01,
                lr_patience=5,
                ema_decay=0.99,
            )
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown NequIPConfig field(s) {sorted(unknown)}")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def quick(cls, **overrides: Any) -> NequIPConfig:
        """Shortcut for ``from_profile("quick", ...)``."""
        return cls.from_profile("quick", **overrides)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.model_dtype not in ("float64", "float32"):
            raise ValueError(
                f"model_dtype must be 'float64' or 'float32', got {self.model_dtype!r}"
            )
        if not (np.isfinite(self.r_max) and self.r_max > 0):
            raise ValueError(f"r_max must be a positive length in Angstrom, got {self.r_max}")
        for name in (
            "num_layers",
            "num_features",
            "num_bessels",
            "radial_mlp_depth",
            "radial_mlp_width",
            "max_epochs",
            "batch_size",
            "threads",
            "polynomial_cutoff_p",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.l_max, int) or self.l_max < 0:
            raise ValueError(f"l_max must be a non-negative integer, got {self.l_max!r}")
        if not (self.learning_rate > 0 and 0 < self.lr_factor < 1 and self.lr_patience >= 0):
            raise ValueError("learning_rate must be > 0, lr_factor in (0, 1), lr_patience >= 0")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1], got {self.ema_decay}")
        weights = (self.energy_weight, self.force_weight, self.stress_weight)
        if min(weights) < 0 or self.energy_weight + self.force_weight == 0:
            raise ValueError("loss weights must be >= 0 with energy or force weight > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse: ``NequIPConfig(**d)``)."""
        return dataclasses.asdict(self)

    # ------------------------------------------------------------------ nequip
    def to_nequip(
        self,
        dataset: str | Path,
        run_dir: str | Path,
        type_names: Sequence[str],
        *,
        with_stress: bool = True,
    ) -> dict[str, Any]:
        """nequip 0.19.1's training config (the dict ``nequip-train`` reads as YAML).

        Parameters
        ----------
        dataset
            Dataset directory with ``train.xyz``, ``val.xyz`` and ``test.xyz``.
        run_dir
            Run directory (Hydra's output directory: checkpoints, logs, metrics).
        type_names
            Chemical symbols the model knows, in the model's type order.
        with_stress
            Fit stresses (the frames must carry them) when ``stress_weight > 0``.
        """
        dataset = Path(dataset).resolve()
        run_dir = Path(run_dir).resolve()
        stress = with_stress and self.stress_weight > 0
        names = list(type_names)
        # with per_atom_energy: true, nequip's "total_energy" loss term is per atom
        loss_coeffs: dict[str, float] = {
            "total_energy": self.energy_weight,
            "forces": self.force_weight,
        }
        metric_coeffs: dict[str, float] = {
            "per_atom_energy_mae": self.energy_weight,
            "forces_mae": self.force_weight,
        }
        if stress:
            loss_coeffs["stress"] = self.stress_weight
            metric_coeffs["stress_mae"] = self.stress_weight
        loss_target = "EnergyForceStressLoss" if stress else "EnergyForceLoss"
        metric_target = "EnergyForceStressMetrics" if stress else "EnergyForceMetrics"
        loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": self.batch_size}
        return {
            "run": ["train", "val", "test"],
            "seed": self.seed,
            "hydra": {"run": {"dir": str(run_dir)}},
            "data": {
                "_target_": "nequip.data.datamodule.ASEDataModule",
                "seed": self.seed,
                "train_file_path": str(dataset / "train.xyz"),
                "val_file_path": str(dataset / "val.xyz"),
                "test_file_path": str(dataset / "test.xyz"),
                "transforms": [
                    {
                        "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                        "model_type_names": names,
                        "chemical_species_to_atom_type_map": {n: n for n in names},
                    },
                    {
                        "_target_": "nequip.data.transforms.NeighborListTransform",
                        "r_max": float(self.r_max),
                    },
                ],
                "train_dataloader": {**loader, "shuffle": True},
                "val_dataloader": dict(loader),
                "test_dataloader": dict(loader),
                "stats_manager": {
                    "_target_": "nequip.data.CommonDataStatisticsManager",
                    "type_names": names,
                },
            },
            "trainer": {
                "_target_": "lightning.Trainer",
                "max_epochs": self.max_epochs,
                "check_val_every_n_epoch": 1,
                "log_every_n_steps": 1,
                "accelerator": "cpu",
                "devices": 1,
                "enable_progress_bar": True,
                "logger": {
                    "_target_": "lightning.pytorch.loggers.CSVLogger",
                    "save_dir": str(run_dir),
                    "name": "metrics",
                    "version": "",
                },
                "callbacks": [
                    {
                        "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                        "monitor": MONITOR,
                        "dirpath": str(run_dir),
                        "filename": Path(BEST_CKPT).stem,
                        "save_top_k": 1,
                        "save_last": True,
                    },
                    {
                        "_target_": "lightning.pytorch.callbacks.LearningRateMonitor",
                        "logging_interval": "epoch",
                    },
                ],
            },
            "training_module": {
                "_target_": "nequip.train.EMALightningModule",
                "ema_decay": self.ema_decay,
                "loss": {
                    "_target_": f"nequip.train.{loss_target}",
                    "per_atom_energy": True,
                    "coeffs": loss_coeffs,
                },
                "val_metrics": {
                    "_target_": f"nequip.train.{metric_target}",
                    "coeffs": metric_coeffs,
                },
                "test_metrics": {
                    "_target_": f"nequip.train.{metric_target}",
                    "coeffs": metric_coeffs,
                },
                "optimizer": {"_target_": "torch.optim.Adam", "lr": self.learning_rate},
                "lr_scheduler": {
                    "scheduler": {
                        "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                        "factor": self.lr_factor,
                        "patience": self.lr_patience,
                    },
                    "monitor": MONITOR,
                    "interval": "epoch",
                    "frequency": 1,
                },
                "model": {
                    "_target_": "nequip.model.NequIPGNNModel",
                    "seed": self.seed,
                    "model_dtype": self.model_dtype,
                    "type_names": names,
                    "r_max": float(self.r_max),
                    "num_layers": self.num_layers,
                    "l_max": self.l_max,
                    "parity": self.parity,
                    "num_features": self.num_features,
                    "num_bessels": self.num_bessels,
                    "polynomial_cutoff_p": self.polynomial_cutoff_p,
                    "radial_mlp_depth": self.radial_mlp_depth,
                    "radial_mlp_width": self.radial_mlp_width,
                    "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
                    "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
                    "per_type_energy_scales": "${training_data_stats:forces_rms}",
                },
            },
        }
