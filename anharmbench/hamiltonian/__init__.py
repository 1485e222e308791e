"""The anharmonic Taylor-series Hamiltonian from irreducible derivatives.

:func:`taylor_expansion` turns irreducible derivatives of orders 2..n, each measured in
its own FTG supercell, into the real-space expansion of a commensurate MD cell as
:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` (LAMMPS ``pair_style
taylor`` or the numpy
:class:`~anharmbench.potentials.taylor_calculators.CartesianTaylorCalculator`).
"""

from anharmbench.hamiltonian.expansion import (
    PAPER_FTG,
    ExpansionError,
    ExpansionReport,
    OrderDerivatives,
    SupercellSites,
    check_commensurate,
    expand_order,
    fold_terms,
    fold_to_supercell,
    folding_deviation,
    taylor_expansion,
)

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
