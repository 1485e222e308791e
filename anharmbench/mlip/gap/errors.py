"""The errors of the GAP subpackage (one base class, one per failure kind)."""

from __future__ import annotations

__all__ = ["GapError", "GapFitError", "GapMemoryError", "GapModelError"]


class GapError(RuntimeError):
    """Base class of the errors of :mod:`anharmbench.mlip.gap`."""


class GapFitError(GapError):
    """``gap_fit`` is missing or failed; the message quotes the tail of its log."""


class GapMemoryError(GapError):
    """The estimated peak memory of a fit exceeds what this machine (or the profile) allows."""


class GapModelError(ValueError):
    """A model file is not a GAP xml, or does not describe the requested species."""
