"""The anharmonic Taylor-series Hamiltonian from irreducible derivatives.

:func:`taylor_expansion` turns irreducible derivatives of orders 2..n, each measured in
its own FTG supercell, into the real-space expansion of a commensurate MD cell as
:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` (LAMMPS ``pair_style
taylor`` or the numpy
:class:`~anharmbench.potentials.taylor_calculators.CartesianTaylorCalculator`).

Modules
-------
* :mod:`~anharmbench.hamiltonian.expansion` -- :func:`taylor_expansion`,
  :func:`expand_order` (one order) and the image schemes.
* :mod:`~anharmbench.hamiltonian.sites` -- :class:`SupercellSites`,
  :func:`check_commensurate`, nearest periodic images, :class:`ExpansionError`.
* :mod:`~anharmbench.hamiltonian.folding` -- :func:`fold_terms`,
  :func:`fold_to_supercell`, :func:`folding_deviation` (the expansion folded back onto
  an FTG).
"""

from anharmbench.hamiltonian.expansion import (
    PAPER_FTG,
    ExpansionReport,
    OrderDerivatives,
    expand_order,
    taylor_expansion,
)
from anharmbench.hamiltonian.folding import fold_terms, fold_to_supercell, folding_deviation
from anharmbench.hamiltonian.sites import ExpansionError, SupercellSites, check_commensurate

__all__ = [
    "PAPER_FTG",
    "ExpansionError",
    "ExpansionReport",
    "OrderDerivatives",
    "SupercellSites",
    "check_commensurate",
    "expand_order",
    "fold_terms",
    "fold_to_supercell",
    "folding_deviation",
    "taylor_expansion",
]
