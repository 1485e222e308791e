"""Physics of the CRG ThO2 reference surface: the numpy implementation against itself
(derivatives, invariances, Ewald), and LAMMPS (setfl tables + coul/long + ewald) against it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator

from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import (
    COULOMB_CONSTANT,
    ELEMENTS,
    REGRESSION_GRID,
    CRGParameters,
    crg_potential,
    crg_regression_potential,
)
from anharmbench.potentials.crg_numpy import CRGNumpyCalculator, ewald_sum
from anharmbench.potentials.setfl import SetflGrid
from anharmbench.potentials.spec import LammpsPotential

A_TEST = 5.6  # Angstrom, near the CRG lattice parameter
NOTE_LAMMPS_ENERGY = -157.552359  # eV, 12-atom cell at a = 5.468 A, reference note (LAMMPS)
NOTE_EWALD_ENERGY = -157.5526  # eV, same cell, reference note (independent Ewald sum)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def setfl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private directory for the setfl files (the user cache is left alone)."""
    return tmp_path_factory.mktemp("crg_setfl")


@pytest.fixture(scope="module")
def lammps_crg(setfl_dir: Path) -> Iterator[LammpsCalculator]:
    calc = LammpsCalculator(crg_potential(setfl_dir))
    yield calc
    calc.release()


@pytest.fixture(scope="module")
def numpy_crg() -> CRGNumpyCalculator:
    return CRGNumpyCalculator()


def conventional_cell(seed: int | None = 0, a: float = A_TEST) -> Atoms:
    """12-atom cubic fluorite cell, optionally with seeded Gaussian displacements of 0.05 A."""
    atoms = bulk("ThO2", "fluorite", a=a, cubic=True)
    if seed is not None:
        atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=(len(atoms), 3))
    return atoms


def primitive_supercell(seed: int | None = 0) -> Atoms:
    """24-atom 2x2x2 supercell of the (triclinic, FCC) primitive cell, seeded displacements."""
    atoms = bulk("ThO2", "fluorite", a=A_TEST) * (2, 2, 2)
    if seed is not None:
        atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=(len(atoms), 3))
    return atoms


def energy_of(calc: Calculator, atoms: Atoms) -> float:
    work = atoms.copy()
    work.calc = calc
    return float(work.get_potential_energy())


def efs(calc: Calculator, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    work = atoms.copy()
    work.calc = calc
    return (
        float(work.get_potential_energy()),
        work.get_forces(),
        work.get_stress(voigt=False),
    )


def strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    """``atoms`` under the homogeneous strain ``eps`` (3x3, symmetric): r -> r (1 + eps)."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def third_directional_derivative(
    energy: Callable[[np.ndarray], float], positions: np.ndarray, u: np.ndarray, h: float
) -> float:
    """d^3 E / ds^3 along ``positions + s u`` by the 4-point central difference (eV/A^3)."""
    e = [energy(positions + k * h * u) for k in (2, 1, -1, -2)]
    return (e[0] - 2.0 * e[1] + 2.0 * e[2] - e[3]) / (2.0 * h**3)


# ----------------------------------------------------------------- numpy: self-consistency
def test_numpy_forces_are_minus_energy_gradient(numpy_crg: CRGNumpyCalculator) -> None:
    """Every force component of the 12-atom cell (pairs in the taper region included)."""
    atoms = conventional_cell(seed=1)
    _, forces, _ = efs(numpy_crg, atoms)
    h = 1e-4
    fd = np.zeros_like(forces)
    for i in range(len(atoms)):
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, c] += h
            minus.positions[i, c] -= h
            fd[i, c] = -(energy_of(numpy_crg, plus) - energy_of(numpy_crg, minus)) / (2 * h)
    # truncation h^2/6 |E'''| ~ 1e-8 * O(10) eV/A^3, round-off ~1e-13 eV / h ~ 1e-9 eV/A
    assert np.abs(forces).max() > 0.5
    np.testing.assert_allclose(forces, fd, rtol=0, atol=1e-6)


def test_numpy_forces_triclinic_directional(numpy_crg: CRGNumpyCalculator) -> None:
    """-F.u = dE/ds along random directions in the triclinic 24-atom cell."""
    atoms = primitive_supercell(seed=2)
    _, forces, _ = efs(numpy_crg, atoms)
    rng = np.random.default_rng(3)
    h = 1e-4
    for _ in range(2):
        u = rng.normal(size=forces.shape)
        u /= np.linalg.norm(u)
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions += h * u
        minus.positions -= h * u
        slope = (energy_of(numpy_crg, plus) - energy_of(numpy_crg, minus)) / (2 * h)
        assert slope == pytest.approx(-float(np.sum(forces * u)), abs=1e-7)


def test_numpy_stress_is_strain_derivative(numpy_crg: CRGNumpyCalculator) -> None:
    """stress = (1/V) dE/d(strain), all six components, in a sheared and rattled cell."""
    atoms = strained(
        conventional_cell(seed=4),
        np.array([[0.01, 0.004, -0.003], [0.004, -0.006, 0.002], [-0.003, 0.002, 0.003]]),
    )
    _, _, stress = efs(numpy_crg, atoms)
    volume = atoms.get_volume()
    h = 1e-5
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            eps = np.zeros((3, 3))
            eps[a, b] += h / 2
            eps[b, a] += h / 2
            de = energy_of(numpy_crg, strained(atoms, eps)) - energy_of(
                numpy_crg, strained(atoms, -eps)
            )
            fd[a, b] = fd[b, a] = de / (2 * h) / volume
    # |stress| ~ 1e-2 eV/A^3; truncation ~ h^2 |E'''|/V ~ 1e-10, round-off 1e-13/(h V) ~ 1e-10
    assert np.abs(stress).max() > 1e-3
    np.testing.assert_allclose(stress, fd, rtol=0, atol=1e-8)


def test_numpy_rigid_motion_invariance(numpy_crg: CRGNumpyCalculator) -> None:
    """Rigid translation leaves E, F, stress unchanged; a rotation rotates F and stress."""
    atoms = primitive_supercell(seed=5)
    e0, f0, s0 = efs(numpy_crg, atoms)

    moved = atoms.copy()
    moved.positions += np.array([0.37, -1.21, 2.9])
    e1, f1, s1 = efs(numpy_crg, moved)
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0, atol=1e-9)
    np.testing.assert_allclose(s1, s0, atol=1e-11)

    # rotation R about a generic axis: cell rows and positions as r -> R r
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    angle = 0.7
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
    turned = atoms.copy()
    turned.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    turned.positions = atoms.positions @ rot.T
    e2, f2, s2 = efs(numpy_crg, turned)
    assert e2 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f2, f0 @ rot.T, atol=1e-9)
    np.testing.assert_allclose(s2, rot @ s0 @ rot.T, atol=1e-11)


def test_ewald_independent_of_alpha() -> None:
    """The Ewald split is arbitrary: alpha = 0.6 (mostly real space) and 2.5 (mostly
    reciprocal) must give the same energy, forces and stress."""
    atoms = primitive_supercell(seed=6)
    results = [efs(CRGNumpyCalculator(alpha=alpha), atoms) for alpha in (0.6, 2.5)]
    (e_a, f_a, s_a), (e_b, f_b, s_b) = results
    assert e_a == pytest.approx(e_b, abs=1e-9)
    np.testing.assert_allclose(f_a, f_b, atol=1e-9)
    np.testing.assert_allclose(s_a, s_b, atol=1e-11)


def test_ewald_madelung_constant_rocksalt() -> None:
    """The Ewald sum alone reproduces the NaCl Madelung constant 1.747564594633."""
    r0 = 2.8
    atoms = bulk("NaCl", "rocksalt", a=2 * r0)
    q = np.array([1.0, -1.0])
    for alpha in (0.8, 1.6):
        energy, forces, _ = ewald_sum(atoms.positions, atoms.cell.array, q, alpha, 12.0)
        madelung = -energy * r0 / COULOMB_CONSTANT
        assert madelung == pytest.approx(1.747564594633, abs=1e-10)
        np.testing.assert_allclose(forces, 0.0, atol=1e-10)


# ------------------------------------------------------------------- LAMMPS against numpy
@pytest.mark.parametrize("make", [conventional_cell, primitive_supercell], ids=["conv12", "prim24"])
def test_lammps_matches_numpy(
    make: Callable[[int | None], Atoms],
    lammps_crg: LammpsCalculator,
    numpy_crg: CRGNumpyCalculator,
) -> None:
    """Tables + coul/long + ewald reproduce the analytic surface.

    Tolerances, from the error sources (measured values in brackets, 12 / 24 atoms):
    * LAMMPS ewald truncates the k sum at kspace_accuracy = 1e-10 relative, i.e. an rms
      force error ~1.4e-9 eV/A per atom; its energy error grows with N (~1e-10 eV/atom)
      [dE 4e-10 / 2.4e-9 eV, dF 3e-10 / 6e-10 eV/A, dS 4e-11 / 1.1e-10 eV/A^3];
    * coul/long's approximate erfc at alpha = 2/A: < 1e-10 eV per cell;
    * setfl tabulation (dr 2.5e-4 A): ~1e-12 eV, ~1e-11 eV/A.
    So: energy 2e-10 |E| (~3e-8 eV, 10x the measured), forces 1e-8 eV/A, stress 1e-9 eV/A^3
    (the stress itself is ~1e-2 eV/A^3).
    """
    atoms = make(7)
    e_l, f_l, s_l = efs(lammps_crg, atoms)
    e_n, f_n, s_n = efs(numpy_crg, atoms)
    assert e_l == pytest.approx(e_n, abs=2e-10 * abs(e_n))
    np.testing.assert_allclose(f_l, f_n, rtol=0, atol=1e-8)
    np.testing.assert_allclose(s_l, s_n, rtol=0, atol=1e-9)


def test_regression_energy(setfl_dir: Path) -> None:
    """The note's regression cell: 12 atoms, a = 5.468 A, 10 A cutoff, nr 1000, dr 0.01.

    Our numpy Ewald and LAMMPS (with alpha = 2/A, where coul/long's erfc is accurate) agree
    at -157.552608 eV (to 3e-8 eV: the coarse dr = 0.01 A table has a Hermite value error
    ~ dr^4 |f| / 384 ~ 1e-8 eV per bond), matching the note's independent Ewald value -157.5526. The
    note's LAMMPS number -157.552359 is 2.5e-4 eV (1.6e-6 relative) higher: it carries the
    Coulomb error of the note's own LAMMPS setup (LAMMPS's automatic alpha ~0.4-0.6 with
    the A&S erfc or with coul/long tables gives -157.55266 ... -157.55275 here, so that error
    is of this size, though no setting we tried reproduces the note's value exactly). We check
    it at 3e-4 eV and the exact value tightly.
    """
    atoms = conventional_cell(seed=None, a=5.468)
    e_numpy = energy_of(CRGNumpyCalculator(grid=REGRESSION_GRID), atoms)
    lmp = LammpsCalculator(crg_regression_potential(setfl_dir))
    try:
        e_lammps = energy_of(lmp, atoms)
    finally:
        lmp.release()
    assert e_numpy == pytest.approx(NOTE_EWALD_ENERGY, abs=1e-4)
    assert e_lammps == pytest.approx(e_numpy, abs=1e-7)
    assert e_lammps == pytest.approx(NOTE_LAMMPS_ENERGY, abs=3e-4)


def test_tabulation_error_far_below_fd_noise(
    setfl_dir: Path, numpy_crg: CRGNumpyCalculator
) -> None:
    """Third directional derivatives (central differences, h = 0.02 A) of LAMMPS and numpy.

    The finite-difference error floor of this stencil is its own truncation error,
    estimated as |D3(h) - D3(h/2)| (1.3e-3 and 3.4e-3 eV/A^3 for |D3| = 2.9 and 11.3 here).

    1. The eam/alloy part alone (charges zero on both sides): the difference is tabulation +
       round-off only. Measured 4e-9 eV/A^3, i.e. ~3e-6 of the truncation error and at the
       round-off floor of the stencil (energy noise ~5e-15 eV x 1.6 / h^3 ~ 1e-9). Bound
       5e-8 and 1e-4 of the truncation; a 2e-3 A grid (5e-7) would fail it.
    2. The full surface: measured 5e-8 - 1.4e-7 eV/A^3, independent of kspace_accuracy
       (1e-10 ... 1e-13) and of the grid, so it is round-off of the Ewald sums (total
       Coulomb terms ~5e2 eV, eps x 5e2 x 1.6 / h^3 ~ 1e-8 - 1e-7). Bound 1e-6 and 1e-3 of
       the truncation error.
    """
    atoms = conventional_cell(seed=8)
    h = 0.02
    rng = np.random.default_rng(9)
    directions = [rng.normal(size=(len(atoms), 3)) for _ in range(2)]
    directions = [u / np.linalg.norm(u) for u in directions]

    grid = SetflGrid()
    setfl = crg_potential(setfl_dir, grid=grid).files[0]
    eam_only = LammpsPotential(
        elements=ELEMENTS, pair_style="eam/alloy", pair_coeff=(f"* * {setfl} O Th",)
    )
    neutral = dataclasses.replace(CRGParameters(), q_th=0.0, q_o=0.0)
    pairs = [
        (LammpsCalculator(eam_only), CRGNumpyCalculator(neutral, grid), 5e-8, 1e-4),
        (LammpsCalculator(crg_potential(setfl_dir, grid=grid)), numpy_crg, 1e-6, 1e-3),
    ]
    try:
        for lmp, ref, abs_tol, rel_tol in pairs:
            work_l, work_n = atoms.copy(), atoms.copy()
            work_l.calc, work_n.calc = lmp, ref

            def e_l(x: np.ndarray, w: Atoms = work_l) -> float:
                w.positions = x
                return float(w.get_potential_energy())

            def e_n(x: np.ndarray, w: Atoms = work_n) -> float:
                w.positions = x
                return float(w.get_potential_energy())

            for u in directions:
                d3_l = third_directional_derivative(e_l, atoms.positions, u, h)
                d3_n = third_directional_derivative(e_n, atoms.positions, u, h)
                d3_half = third_directional_derivative(e_n, atoms.positions, u, h / 2)
                truncation = abs(d3_n - d3_half)
                assert abs(d3_n) > 1.0  # a genuinely anharmonic direction
                assert truncation > 1e-4
                assert abs(d3_l - d3_n) < abs_tol
                assert abs(d3_l - d3_n) < rel_tol * truncation
    finally:
        for lmp, *_ in pairs:
            lmp.release()


def test_taper_removes_cutoff_jumps(lammps_crg: LammpsCalculator) -> None:
    """A neighbour shell crossing the cutoff under isotropic strain.

    At a = 24/sqrt(18) = 5.657 A the O-O shell (a/2) sqrt(18) and the Th-Th shell a sqrt(9/2)
    sit exactly at 12 A. The fourth difference of E(a) (step 2e-3 A) across that point is
    -1.6e-3 eV with a hard cutoff (the shell's energy jumps in), but with the taper it is
    3.2e-9 eV, as smooth as 0.05 A away (3.0e-9, E''''(a) delta^4). LAMMPS (tapered tables)
    gives the same fourth difference to 2e-11 eV.
    """
    a_cross = 24.0 / math.sqrt(18.0)
    delta = 2e-3

    def fourth_difference(calc: Calculator, center: float) -> float:
        e = [
            energy_of(calc, conventional_cell(None, a=center + delta * (k - 0.3)))
            for k in range(-2, 3)
        ]
        return e[0] - 4 * e[1] + 6 * e[2] - 4 * e[3] + e[4]

    tapered = CRGNumpyCalculator()
    hard = CRGNumpyCalculator(grid=SetflGrid(taper_start=None))
    d4_cross = fourth_difference(tapered, a_cross)
    d4_away = fourth_difference(tapered, a_cross + 0.05)
    d4_hard = fourth_difference(hard, a_cross)
    assert abs(d4_hard) > 1e-4
    assert abs(d4_cross) < 1e-8
    assert abs(d4_cross - d4_away) < 0.3 * abs(d4_away)
    assert fourth_difference(lammps_crg, a_cross) == pytest.approx(d4_cross, abs=1e-10)
