"""Sizes of the ``quick`` and ``paper`` study profiles.

``paper`` is the paper's setting (ten step sizes; 4000-step IDMD in 4I; 1346 reference-MD
snapshots in 3 S_C; the paper's architectures; the lone variant, as the paper measured its
MLIPs). ``quick`` runs the whole study on a 2-core machine: four step sizes, bundled plans
(the fewest evaluations group theory allows at overdetermination 3: 7x fewer than lone
over the paper's sets, same derivatives to 2e-5 relative on CRG), a 200-step IDMD (10
frames of 192 atoms), 100 reference-MD snapshots in S_C, and the trainers' quick profiles.
Both train every model with three seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from anharmbench.datasets.md import IDMDSettings, RefMDSettings
from anharmbench.study.config import ModelConfig, StudyConfig

__all__ = ["ProfileSettings", "model_seeds", "profile_settings", "replica"]


@dataclass(frozen=True)
class ProfileSettings:
    """Sizes the config leaves to the profile.

    Attributes
    ----------
    name
        ``"quick"`` or ``"paper"``.
    n_steps
        Finite-difference step sizes per derivative set (unless the set gives its own).
    variant
        Finite-difference variant of every derivative set that gives none: ``"lone"`` (the
        paper's LID) or ``"bundled"`` (the fewest evaluations group theory allows at
        ``overdetermination``; 7x fewer over the paper's sets).
    n_seeds
        Training seeds per trained model (unless the model gives ``seeds``): Table I gives
        the mean and spread over them.
    idmd, refmd
        Dataset settings (the config's ``datasets`` entries override them).
    """

    name: str
    n_steps: int
    variant: str
    n_seeds: int
    idmd: IDMDSettings
    refmd: RefMDSettings


def profile_settings(config: StudyConfig, profile: str | None = None) -> ProfileSettings:
    """The :class:`ProfileSettings` of ``profile`` (default ``config.profile``)."""
    if (profile or config.profile) == "paper":
        return ProfileSettings("paper", 10, "lone", 3, IDMDSettings.paper(), RefMDSettings.paper())
    return ProfileSettings(
        "quick",
        4,
        "bundled",
        3,
        IDMDSettings.quick(n_steps=200, stride=20, test_steps=60, checkpoint_every=100),
        RefMDSettings.quick(n_snapshots=100, equilibration_steps=200),
    )


def model_seeds(model: ModelConfig, config: StudyConfig) -> list[int]:
    """The training seeds of a trained model: ``config.seed``, ``config.seed + 1``, ...

    As many as the model's ``seeds``, else its profile's ``n_seeds``; the first one is the
    seed of a study run before seeds existed.
    """
    n = model.seeds or profile_settings(config, model.profile).n_seeds
    return [config.seed + i for i in range(n)]


def replica(seed: int, config: StudyConfig) -> int | None:
    """The seed a model's label and stage carry: ``None`` for the first seed
    (``config.seed``, the plain label of a study run before seeds existed), else ``seed``."""
    return None if seed == config.seed else seed
