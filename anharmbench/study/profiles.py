"""Sizes of the ``quick`` and ``paper`` study profiles.

``paper`` is the paper's setting (ten step sizes; 4000-step IDMD in 4I; 1346 reference-MD
snapshots in 3 S_C; the paper's architectures). ``quick`` runs the whole study on a
2-core machine in about half an hour: four step sizes, a 200-step IDMD (10 frames of 192
atoms), 100 reference-MD snapshots in S_C, and the trainers' quick profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from anharmbench.datasets.md import IDMDSettings, RefMDSettings
from anharmbench.study.config import StudyConfig

__all__ = ["ProfileSettings", "profile_settings"]


@dataclass(frozen=True)
class ProfileSettings:
    """Sizes the config leaves to the profile.

    Attributes
    ----------
    name
        ``"quick"`` or ``"paper"``.
    n_steps
        Finite-difference step sizes per derivative set (unless the set gives its own).
    idmd, refmd
        Dataset settings (the config's ``datasets`` entries override them).
    """

    name: str
    n_steps: int
    idmd: IDMDSettings
    refmd: RefMDSettings


def profile_settings(config: StudyConfig) -> ProfileSettings:
    """The :class:`ProfileSettings` of ``config.profile``."""
    if config.profile == "paper":
        return ProfileSettings("paper", 10, IDMDSettings.paper(), RefMDSettings.paper())
    return ProfileSettings(
        "quick",
        4,
        IDMDSettings.quick(n_steps=200, stride=20, test_steps=60, checkpoint_every=100),
        RefMDSettings.quick(n_snapshots=100, equilibration_steps=200),
    )
