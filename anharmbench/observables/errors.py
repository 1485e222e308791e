"""Errors raised by the observables: bad input is refused with a message that says why.

A set of derivatives that lacks an order an observable needs raises the derivative set's
:class:`~anharmbench.derivatives.derivative_set.MissingOrderError` (re-exported here);
what the observables themselves refuse is an :class:`ObservableError`.
"""

from __future__ import annotations

from anharmbench.derivatives.derivative_set import MissingOrderError

__all__ = [
    "ImaginaryModeError",
    "IncommensurateError",
    "MissingOrderError",
    "ObservableError",
]


class ObservableError(ValueError):
    """An observable cannot be computed from the input as given."""


class ImaginaryModeError(ObservableError):
    """A harmonic frequency is imaginary at some q-point (named in the message).

    Attributes
    ----------
    qpoint : tuple[float, float, float]
        Fractional q-point (primitive reciprocal basis) of the first imaginary mode.
    branch : int
        Branch index (0-based, frequencies sorted increasing, imaginary ones negative).
    frequency : float
        Its frequency in THz (negative: imaginary, phonopy's convention).
    """

    def __init__(self, message: str, qpoint: tuple[float, float, float], branch: int,
                 frequency: float) -> None:
        super().__init__(message)
        self.qpoint = qpoint
        self.branch = branch
        self.frequency = frequency


class IncommensurateError(ObservableError):
    """A q-point or supercell is not commensurate with the mesh or FTG it must lie on."""
