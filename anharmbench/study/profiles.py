"""Sizes of the ``quick`` and ``paper`` study profiles.

``paper`` is the paper's setting (ten step sizes; 4000-step IDMD in 4I; 1346 reference-MD
snapshots in 3 S_C; the paper's architectures; the lone variant, as the paper measured its
MLIPs). ``quick`` runs the whole study on a 2-core machine: four step sizes, bundled plans
(the fewest evaluations group theory allows at overdetermination 3: 7x fewer than lone
over the paper's sets, same derivatives to 2e-5 relative on CRG), a 200-step IDMD (10
frames of 192 atoms), 50 reference-MD snapshots in S_C, and the trainers' quick profiles.
Both train every model with three seeds.

Why 50 snapshots: ``analysis/training_size.py`` on the default study (2026-12-03, 3 seeds
per size) ranks the reference-MD models (GNN vs BPNN) by mean relative RMSE per order.
At 25 snapshots order 2 is not resolved (BPNN 0.32+-0.06, GNN 0.32+-0.08); at 50 and
100 the GNN is better at every order 2-6 by more than the seeds' summed spreads. 50 is
the smallest size with the ranking of 100; it saves little time (a training costs ~80 s
either way, two thirds of it compiling the model for LAMMPS) but halves the MD.
"""

from __future__ import annotations

from dataclasses import dataclass

from anharmbench.datasets.md import IDMDSettings, RefMDSettings
from anharmbench.study.config import ModelConfig, StudyConfig

__all__ = ["ProfileSettings", "model_seeds", "profile_settings", "replica",
           "table_reading"]


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
    reading
        What Table I at these sizes can and cannot show (written under the table of a
        study that keeps the profile's dataset sizes); empty when nothing needs saying.
    """

    name: str
    n_steps: int
    variant: str
    n_seeds: int
    idmd: IDMDSettings
    refmd: RefMDSettings
    reading: str = ""


#: Under Table I of the quick profile (measured on the default study, 2026-12-03 and
#: 2026-12-07).
QUICK_READING = (
    "Quick profile: what this table can show. Models trained on the reference-MD set "
    "(50 snapshots) rank as in the paper: the GNN is better than the BPNN at every order "
    "2-6, by more than the spread over seeds, and this ranking is the same at 50 and 100 "
    "snapshots (analysis/training_size.py; at 25 snapshots order 2 is not resolved). "
    "What it cannot show: the paper's finding that the noiseless IDMD set teaches a GNN "
    "the third and fourth derivatives. The quick IDMD set has 9 training frames (200 MD "
    "steps, a frame every 20), and the models trained on it are at or above 1 (no better "
    "than a zero model) from order 3 up. Measured with analysis/training_size.py "
    "--idmd-steps (GNN, 3 seeds, each on its own IDMD trajectory, 2026-12-07): 18 frames "
    "(200 steps, a frame every 10) teach order 3 (0.28+-0.02) but not order 4 (2.9+-0.2); "
    "36 frames give 0.49+-0.04 and 1.19+-0.15, 72 frames (800 steps) 0.54+-0.05 and "
    "0.93+-0.12, so no IDMD size measured here, up to 72 frames and 16 minutes of "
    "stages, shows order 4; the paper profile (4000 steps, the paper's architecture and "
    "training) is the one meant to."
)


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
        RefMDSettings.quick(n_snapshots=50, equilibration_steps=200),
        QUICK_READING,
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


def table_reading(config: StudyConfig) -> str:
    """The profile's :attr:`ProfileSettings.reading` for the study it was measured on:
    the default study (crystal, reference, datasets, models and their seeds) run at that
    profile; else ``""`` (another study's table says nothing it was not measured on)."""
    from anharmbench.study.config import default_config

    default = default_config(config.profile)
    same = all(getattr(config, k) == getattr(default, k)
               for k in ("crystal", "reference", "datasets", "models", "derivative_sets",
                         "seed"))
    return profile_settings(config).reading if same else ""
