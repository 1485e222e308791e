"""Irreducible derivatives of the CRG surface through LAMMPS, against phonopy."""

from __future__ import annotations

import numpy as np
import pytest

from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
from anharmbench.lammps import LammpsCalculator
from anharmbench.phonopy_interface import (
    fc2_to_phonopy,
    make_phonopy,
    phonopy_fd_force_constants,
)
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive
from anharmbench.symmetry import SupercellSymmetry, irreducible_basis

A0 = 5.580101  # CRG lattice constant (tests/test_structures.py relaxes it)


@pytest.mark.parametrize("cell", ["SC", "2I"])
def test_second_order_matches_phonopy_at_every_ftg_qpoint(cell):
    """Frequencies from our irreducible derivatives equal phonopy's own route to 1e-3 THz."""
    prim = tho2_primitive(A0)
    smat = supercell_matrix(cell)
    atoms = build_supercell(prim, smat)
    potential = crg_potential()

    basis = irreducible_basis(prim, smat, order=2)
    plan = build_plan({2: basis}, method="forces", variant="lone")
    with LammpsCalculator(potential, atoms) as batch:
        result = measure_and_fit(plan, ase_evaluator(atoms, batch))
    fc_ours = basis.to_cartesian(result.values[2])

    phonon_ours = make_phonopy(prim, smat)
    phonon_ours.force_constants = fc2_to_phonopy(fc_ours, atoms, phonon_ours)
    qpoints = SupercellSymmetry(prim, smat).qpoints
    ours = _frequencies(phonon_ours, qpoints)

    # phonopy's own finite-displacement route, at two displacement sizes: its O(h^2) error
    # shrinks toward our zero-step extrapolation
    dev = {}
    for h in (0.01, 0.002):
        phonon_fd = make_phonopy(prim, smat)
        assert phonopy_fd_force_constants(phonon_fd, LammpsCalculator(potential), distance=h) > 0
        dev[h] = np.abs(ours - _frequencies(phonon_fd, qpoints)).max()
    assert dev[0.002] < 1e-3  # THz, at every FTG q-point
    assert dev[0.002] < dev[0.01] / 10  # ~ (0.01/0.002)^2 = 25 for an O(h^2) error
    # the acoustic sum rule holds exactly in our force constants
    assert np.abs(_frequencies(phonon_ours, [[0, 0, 0]])[0, :3]).max() < 1e-6


def _frequencies(phonon, qpoints) -> np.ndarray:
    phonon.run_qpoints(np.asarray(qpoints, dtype=float))
    return phonon.qpoints.frequencies
