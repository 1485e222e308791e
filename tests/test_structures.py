"""Structures, supercells, lattice relaxation and the equilibrium guard."""

from __future__ import annotations

import numpy as np
import pytest

from anharmbench.cli import main
from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.crg_numpy import CRGNumpyCalculator
from anharmbench.structures import (
    NotAtEquilibriumError,
    build_supercell,
    check_equilibrium,
    relax_cubic_lattice,
    supercell_matrix,
    tho2_primitive,
)


@pytest.mark.parametrize(
    ("name", "natoms"), [("prim", 3), ("SC", 12), ("2I", 24), ("4I", 192), ("3SC", 324)]
)
def test_named_supercells(name, natoms):
    prim = tho2_primitive(5.6)
    sc = build_supercell(prim, name)
    assert len(sc) == natoms
    assert sc.get_volume() == pytest.approx(prim.get_volume() * natoms / 3)


def test_conventional_cell_is_cubic():
    sc = build_supercell(tho2_primitive(5.6), "SC")
    np.testing.assert_allclose(np.abs(sc.cell.array), 5.6 * np.eye(3), atol=1e-12)


def test_supercell_from_nine_integers():
    np.testing.assert_array_equal(supercell_matrix("2 0 0 0 2 0 0 0 2"), 2 * np.eye(3))


@pytest.mark.parametrize("bad", ["1 0 0 0 1 0 1 1 0", "1 2 3", "2.5 0 0 0 1 0 0 0 1", "huge"])
def test_bad_supercell_matrices_are_refused(bad):
    with pytest.raises(ValueError, match="singular|9 integers|integers|unknown supercell"):
        supercell_matrix(bad)


def test_relaxed_lattice_constant_agrees_between_lammps_and_numpy():
    """Zero-pressure a0 from LAMMPS and from the independent implementation agree."""
    lmp = relax_cubic_lattice(tho2_primitive, LammpsCalculator(crg_potential()))
    ref = relax_cubic_lattice(tho2_primitive, CRGNumpyCalculator())
    assert abs(lmp.pressure) < 1e-6  # GPa
    assert lmp.a0 == pytest.approx(ref.a0, abs=1e-7)
    assert 5.5 < lmp.a0 < 5.65  # CRG's a0 is close to experiment (5.597 A)


def test_equilibrium_guard_names_the_residual():
    calc = LammpsCalculator(crg_potential())
    sc = build_supercell(tho2_primitive(5.58), "SC")
    assert check_equilibrium(sc, calc) < 1e-10  # fluorite: forces vanish by symmetry
    sc.positions[3] += [0.01, 0.0, 0.0]
    with pytest.raises(NotAtEquilibriumError, match=r"residual force \d\.\d+e-0\d eV/A on atom"):
        check_equilibrium(sc, calc)


def test_doctor_is_green(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[  ok] reference surface" in out
