"""Typed settings and outcome of a BPNN training run.

:func:`~.train.train` takes a :class:`TrainConfig` and returns a :class:`TrainResult`;
:func:`continue_config` changes the settings a resumed run may change
(:data:`RESUMABLE_CHANGES`), and :class:`TrainingError` is raised when a run cannot
start or resume as asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from anharmbench.datasets.profiles import Profiles
from anharmbench.mlip.bpnn.model import BPNN, NetworkConfig
from anharmbench.mlip.bpnn.scaling import SCALING_TYPES

__all__ = [
    "RESUMABLE_CHANGES",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "continue_config",
]

#: Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = frozenset(
    {
        "max_epochs",
        "patience",
        "progress",
        "threads",
        "min_learning_rate",
        "cache_mb",
    }
)


class TrainingError(RuntimeError):
    """Training cannot start or resume as asked (settings, data, or files)."""


@dataclass(frozen=True)
class TrainConfig(Profiles):
    """Settings of a training run.

    ``paper()``: the paper's architecture (2 x 21, tanh, 41/46 inputs), trained to
    convergence; ``quick()``: a short run for tests and CI, same architecture, 30 epochs
    at most (:class:`~anharmbench.datasets.profiles.Profiles`).

    Attributes
    ----------
    hidden, activation
        Architecture of each element's network (the paper: 2 x 21; tanh).
    symmetry_functions
        ``"tho2"`` (:func:`~.symmetry_functions.default_tho2_set`, 41/46 inputs, for Th-O;
        :func:`~.symmetry_functions.default_set` for other elements) or the
        path of an n2p2 ``input.nn`` whose ``symfunction_short`` lines to use.
    elements
        Model elements in type order (default: order of first appearance in the first
        training frame, ``("Th", "O")`` for ThO2).
    scaling, scale_min, scale_max
        Symmetry-function scaling (a name of ``SCALING_TYPES``) and its target range.
    energy_weight, force_weight
        ``w_E``, ``w_F`` of the loss.
    learning_rate, lr_factor, lr_patience, min_learning_rate
        Adam's initial rate; factor and patience (epochs) of the plateau reduction;
        training stops when the rate falls below ``min_learning_rate``.
    batch_size
        Frames per optimizer step.
    max_epochs, patience
        Epoch limit; early stopping after ``patience`` epochs without a better
        validation loss.
    seed
        Seeds the initial weights and the shuffling.
    cache_mb
        Memory for precomputed symmetry functions and their derivatives (the
        training set, then the validation set, is cached when it fits; else they
        are recomputed every epoch, which gives the same numbers more slowly).
    threads
        ``torch.set_num_threads`` during training (``None``: leave as is).
    progress
        Show a bar of epochs on stderr (the per-epoch lines go to ``train.log`` in the
        model directory in any case).
    """

    hidden: tuple[int, ...] = (21, 21)
    activation: str = "tanh"
    symmetry_functions: str = "tho2"
    elements: tuple[str, ...] | None = None
    scaling: str = "scale_center"
    scale_min: float = 0.0
    scale_max: float = 1.0
    energy_weight: float = 1.0
    force_weight: float = 1.0
    learning_rate: float = 1e-3
    lr_factor: float = 0.5
    lr_patience: int = 25
    min_learning_rate: float = 1e-6
    batch_size: int = 4
    max_epochs: int = 2000
    patience: int = 100
    seed: int = 0
    cache_mb: float = 2000.0
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.elements is not None:
            object.__setattr__(self, "elements", tuple(self.elements))
        NetworkConfig(self.hidden, self.activation)  # validates
        if self.scaling not in SCALING_TYPES:
            raise ValueError(f"scaling {self.scaling!r}: use one of {sorted(SCALING_TYPES)}")
        for name in ("batch_size", "max_epochs", "patience", "lr_patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("energy_weight", "force_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.energy_weight == 0 and self.force_weight == 0:
            raise ValueError("energy_weight and force_weight are both 0: nothing to fit")
        if not (self.learning_rate > 0 and 0 < self.lr_factor < 1):
            raise ValueError("learning_rate must be > 0 and lr_factor in (0, 1)")

    QUICK: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "learning_rate": 3e-3,
            "batch_size": 2,
            "max_epochs": 30,
            "patience": 10,
            "lr_patience": 5,
        }
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["elements"] = None if self.elements is None else list(self.elements)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys rejected)."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training setting(s) {sorted(unknown)}")
        return cls(**data)


@dataclass
class TrainResult:
    """Outcome of :func:`~.train.train`.

    Attributes
    ----------
    directory
        The output directory (a model directory).
    model
        The best model (by validation loss).
    history
        One record per epoch: ``epoch``, ``loss`` (training), ``val_loss``,
        ``val_energy_rmse`` (eV/atom), ``val_force_rmse`` (eV/A), ``lr``, ``seconds``.
    best_epoch
        Epoch of the best model (1-based).
    stop_reason
        ``"max_epochs"``, ``"early_stopping"`` or ``"min_learning_rate"``.
    resumed_from
        Epoch the run resumed after (0 for a fresh run).
    """

    directory: Path
    model: BPNN
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = ""
    resumed_from: int = 0

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of the epochs run here, s."""
        times = [h["seconds"] for h in self.history[self.resumed_from :]]
        return float(np.mean(times)) if times else float("nan")


def continue_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with settings that a resumed run may change
    (``max_epochs``, ``patience``, ``progress``, ``threads``, ``min_learning_rate``)."""
    bad = set(changes) - RESUMABLE_CHANGES
    if bad:
        raise ValueError(f"{sorted(bad)} cannot change when resuming a run")
    return replace(config, **changes)
