"""The two private phono3py APIs we use, in one place (tested against phono3py 4.10).

phono3py has no public way to run its RTA conductivity with linewidths computed
elsewhere (the sunset, or bubble + sunset); ``phono3py.conductivity.factory`` and the
calculator's ``gamma`` setter (the route of its own ``--read-gamma``) do it. If a phono3py
release moves them, only this module changes; ``tests/test_private_apis.py`` checks that
the route still reproduces phono3py's own conductivity from its own linewidths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: phono3py versions this adapter was tested with (pyproject.toml pins the same range).
TESTED = ">=4.10,<4.11"


def rta_calculator(interaction: Any, temperatures: np.ndarray) -> Any:
    """phono3py's standard RTA conductivity calculator for an ``Interaction``, not run."""
    from phono3py.conductivity.factory import conductivity_calculator

    return conductivity_calculator(interaction, temperatures, [None], method="std-rta")


def run_with_gamma(calculator: Any, gamma: np.ndarray) -> Any:
    """Run ``calculator`` with linewidths ``gamma`` ``(n_sigma, nT, n_ir, nb)`` (THz) in
    place of its own (the ``--read-gamma`` route); returns the calculator."""
    calculator.gamma = np.ascontiguousarray(gamma, dtype=float)
    calculator.run()
    return calculator
