"""The ``paper()`` / ``quick()`` constructors shared by the settings classes.

A settings dataclass whose defaults are the paper's profile inherits :class:`Profiles`
and lists in ``QUICK`` the fields its short CI profile changes; both constructors take
field overrides on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

__all__ = ["Profiles"]


class Profiles:
    """``paper()``: the class defaults; ``quick()``: the defaults changed by ``QUICK``."""

    #: Fields (and values) the quick profile changes from the paper's defaults.
    QUICK: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def paper(cls, **overrides: Any) -> Self:
        """The paper's profile (the class defaults), with ``overrides``."""
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> Self:
        """The short profile for tests and CI (``QUICK``), with ``overrides``."""
        return cls(**{**cls.QUICK, **overrides})
