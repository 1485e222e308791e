"""LAMMPS through ASE: agreement with an independent implementation, batch and deck paths."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones

from anharmbench.lammps import (
    LammpsCalculator,
    LammpsError,
    NonFiniteResultError,
)
from anharmbench.lammps.deck import DeckResultError, read_deck_results, run_deck, write_deck
from anharmbench.potentials import LammpsPotential, PotentialError

from .conftest import LJ_EPS, LJ_RC, LJ_SIGMA


def _ase_lj(atoms: Atoms) -> Atoms:
    ref = atoms.copy()
    ref.calc = LennardJones(sigma=LJ_SIGMA, epsilon=LJ_EPS, rc=LJ_RC, smooth=False)
    return ref


def test_calculator_matches_ase_lennard_jones(lj_potential, rattled_argon):
    """Energy, forces and stress agree with ASE's own LJ on a rotated triclinic cell."""
    atoms = rattled_argon.copy()
    atoms.calc = LammpsCalculator(lj_potential)
    ref = _ase_lj(rattled_argon)
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), ref.get_stress(), atol=1e-13)


def test_calculator_follows_cell_changes(lj_potential, rattled_argon):
    atoms = rattled_argon.copy()
    atoms.calc = LammpsCalculator(lj_potential)
    atoms.get_potential_energy()
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
    ref = _ase_lj(atoms)
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)


def test_forces_are_minus_gradient(lj_potential, rattled_argon):
    atoms = rattled_argon.copy()
    atoms.calc = LammpsCalculator(lj_potential)
    f = atoms.get_forces()
    h = 1e-5
    for i, a in [(0, 0), (3, 2), (5, 1)]:
        e = []
        for s in (h, -h):
            atoms.positions[i, a] += s
            e.append(atoms.get_potential_energy())
            atoms.positions[i, a] -= s
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(f[i, a], abs=1e-9)


def test_batch_equals_calculator(lj_potential, rattled_argon, rng):
    disp = rng.normal(scale=0.03, size=(5, len(rattled_argon), 3))
    positions = rattled_argon.positions + disp
    with LammpsCalculator(lj_potential, rattled_argon) as batch:
        res = batch.calculate_batch(positions)
    for k in range(5):
        ref = _ase_lj(rattled_argon)
        ref.positions = positions[k]
        assert res.energies[k] == pytest.approx(ref.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(res.forces[k], ref.get_forces(), atol=1e-12)
        np.testing.assert_allclose(res.stresses[k], ref.get_stress(), atol=1e-13)


def test_deck_run_by_lmp_binary_equals_batch(tmp_path, lj_potential, rattled_argon, rng):
    """The rendered deck, run by the standalone lmp executable, reproduces the library path."""
    positions = rattled_argon.positions + rng.normal(scale=0.03, size=(3, len(rattled_argon), 3))
    deck = write_deck(tmp_path / "deck", lj_potential, rattled_argon, positions)
    with pytest.raises(DeckResultError, match="missing LAMMPS output"):
        read_deck_results(deck.directory)
    res = run_deck(deck.directory)
    with LammpsCalculator(lj_potential, rattled_argon) as batch:
        ref = batch.calculate_batch(positions)
    np.testing.assert_allclose(res.energies, ref.energies, atol=1e-12)
    np.testing.assert_allclose(res.forces, ref.forces, atol=1e-12)
    np.testing.assert_allclose(res.stresses, ref.stresses, atol=1e-12)
    # a truncated output is refused, not misread
    ffile = deck.directory / "forces.dump"
    ffile.write_text("\n".join(ffile.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(DeckResultError, match="interrupted"):
        read_deck_results(deck.directory)


# ------------------------------------------------------------------ bad input
def test_unknown_element_is_named(lj_potential):
    atoms = Atoms("ArNe", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[4, 4, 4], pbc=True)
    atoms.calc = LammpsCalculator(lj_potential)
    with pytest.raises(PotentialError, match=r"\['Ne'\]"):
        atoms.get_potential_energy()


def test_unknown_element_in_description():
    with pytest.raises(PotentialError, match="unknown element 'Xx'"):
        LammpsPotential(elements=("Xx",), pair_style="lj/cut 5", pair_coeff=("* * 1 1",))


def test_malformed_pair_style_gives_lammps_message(rattled_argon):
    pot = LammpsPotential(elements=("Ar",), pair_style="lj/cut", pair_coeff=("* * 0.01 3.4",))
    rattled_argon.calc = LammpsCalculator(pot)
    with pytest.raises(LammpsError, match="pair_style lj/cut"):
        rattled_argon.get_potential_energy()


def test_unavailable_pair_style_is_named(rattled_argon):
    pot = LammpsPotential(elements=("Ar",), pair_style="nosuchstyle 5.0", pair_coeff=("* *",))
    rattled_argon.calc = LammpsCalculator(pot)
    with pytest.raises(PotentialError, match="'nosuchstyle' .* not available"):
        rattled_argon.get_potential_energy()


def test_missing_potential_file_is_named(tmp_path, rattled_argon):
    missing = tmp_path / "nope.eam.alloy"
    pot = LammpsPotential(
        elements=("Ar",),
        pair_style="eam/alloy",
        pair_coeff=(f"* * {missing} Ar",),
        files=(str(missing),),
    )
    rattled_argon.calc = LammpsCalculator(pot)
    with pytest.raises(FileNotFoundError, match="nope.eam.alloy"):
        rattled_argon.get_potential_energy()


def test_nan_forces_are_an_error_naming_the_configuration(lj_potential, rattled_argon):
    positions = np.repeat(rattled_argon.positions[None], 3, axis=0)
    positions[2, 1] = positions[2, 0]  # two atoms on top of each other
    with LammpsCalculator(lj_potential, rattled_argon) as batch, pytest.raises(
        NonFiniteResultError, match="configuration 2"
    ):
        batch.calculate_batch(positions)


def test_degenerate_cell_is_refused(lj_potential):
    atoms = Atoms("Ar2", positions=[[0, 0, 0], [1, 1, 0]], cell=[[4, 0, 0], [0, 4, 0], [4, 4, 0]],
                  pbc=True)
    atoms.calc = LammpsCalculator(lj_potential)
    with pytest.raises(ValueError, match="degenerate"):
        atoms.get_potential_energy()


def test_mpi_is_loaded_with_lammps_not_with_the_package():
    """``import anharmbench`` (and its numerical subpackages) maps no MPI library; the
    first LAMMPS instance of the package loads it (``_lammps_env.import_lammps``)."""
    code = textwrap.dedent(
        """
        import anharmbench, anharmbench.derivatives, anharmbench.symmetry
        def mpi_mapped():
            with open("/proc/self/maps") as maps:
                return any("libmpi" in line for line in maps)
        print(mpi_mapped())
        from anharmbench.lammps import open_lammps
        lmp = open_lammps()
        print(mpi_mapped(), lmp.version() > 0)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["False", "True True"]
