"""CRG ThO2 derivatives measured by the project's finite differences (tests' helper)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

#: the CRG surface's lattice constant at 0 K (A)
A0_THO2 = 5.580101


def measure_crg(prim: Atoms, S, orders) -> dict:
    """CRG irreducible derivatives of ``orders`` in supercell ``S`` by the project's finite
    differences: ``{order: (basis, values)}``."""
    import warnings

    from anharmbench.derivatives.plan import build_plan
    from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import build_supercell
    from anharmbench.symmetry import irreducible_basis

    atoms = build_supercell(prim, np.asarray(S))
    bases = {n: irreducible_basis(prim, S, order=n) for n in orders}
    plan = build_plan(bases, method="forces", variant="lone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LammpsCalculator(crg_potential(), atoms) as batch:
            res = measure_and_fit(plan, ase_evaluator(atoms, batch))
    return {n: (bases[n], res.values[n]) for n in orders}
