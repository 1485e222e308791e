"""The observables stage of the study (Figs. 2-5): filled in from :mod:`anharmbench.observables`."""

from __future__ import annotations

from typing import Any

from ase import Atoms

from anharmbench.study.config import StudyConfig
from anharmbench.study.runner import Stage

__all__ = ["observables_stage"]


def observables_stage(config: StudyConfig, prim: Atoms, derivatives: dict[str, Any],
                      upstream: dict[str, str]) -> Stage | None:
    """The stage computing every potential's observables, or None when not available."""
    return None
