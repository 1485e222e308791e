"""The Taylor-series Hamiltonian: FTG derivatives -> real-space expansion of an MD cell.

Random invariant coefficients (random ``values_n`` in the irreducible bases of ThO2: 2I
for orders 2 and 3, S_C for order 4) are seeded; every identity checked here is exact in
exact arithmetic, so the tolerances are round-off (1e-10 relative).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anharmbench.hamiltonian import (
    PAPER_FTG,
    ExpansionError,
    SupercellSites,
    expand_order,
    fold_terms,
    fold_to_supercell,
    folding_deviation,
    taylor_expansion,
)
from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.taylor_calculators import CartesianTaylorCalculator, taylor_potential
from anharmbench.potentials.taylor_cartesian import TaylorTerms
from anharmbench.structures import build_supercell, tho2_primitive
from anharmbench.symmetry import S_2I, S_C, SupercellSymmetry, irreducible_basis

A0 = 5.580101
T_2SC = 2 * np.array(S_C)
T_SC_X2 = np.array([[2, 0, 0], [0, 1, 0], [0, 0, 1]]) @ np.array(S_C)  # 24 atoms
T_2I_X2 = np.diag([4, 2, 2])  # 48 atoms, two 2I cells


# ----------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def prim():
    return tho2_primitive(A0)


@pytest.fixture(scope="module")
def random_derivatives(prim):
    """``{n: (basis, values)}``: 2I for n = 2, 3 and S_C for n = 4, seeded."""
    rng = np.random.default_rng(20240229)
    out = {}
    for n, S in ((2, S_2I), (3, S_2I), (4, S_C)):
        basis = irreducible_basis(prim, S, n)
        out[n] = (basis, rng.normal(size=len(basis)))
    return out


@pytest.fixture(scope="module")
def model_4i(prim, random_derivatives):
    """Orders 2 and 3 (from 2I) in 4I (192 atoms)."""
    ders = {n: random_derivatives[n] for n in (2, 3)}
    return taylor_expansion(prim, ders, "4I")


@pytest.fixture(scope="module")
def model_2sc(prim, random_derivatives):
    """Orders 2, 3 (from 2I) in 2 S_C (96 atoms)."""
    ders = {n: random_derivatives[n] for n in (2, 3)}
    return taylor_expansion(prim, ders, T_2SC)


@pytest.fixture(scope="module")
def model_2i_x2(prim, random_derivatives):
    """Orders 2, 3 (from 2I) in two 2I cells (48 atoms)."""
    ders = {n: random_derivatives[n] for n in (2, 3)}
    return taylor_expansion(prim, ders, T_2I_X2)


@pytest.fixture(scope="module")
def quartic_2sc(prim, random_derivatives):
    """Order 4 (from S_C) in 2 S_C (96 atoms)."""
    return taylor_expansion(prim, {4: random_derivatives[4]}, T_2SC)


@pytest.fixture(scope="module")
def quartic_sc_x2(prim, random_derivatives):
    """Order 4 (from S_C) in two S_C cells (24 atoms)."""
    return taylor_expansion(prim, {4: random_derivatives[4]}, T_SC_X2)


def _energy(terms: TaylorTerms, u: np.ndarray, n: int | None = None) -> float:
    """Energy of one order (or all) by direct summation of every translate of every
    stored monomial (eV), written apart from ``TaylorTerms.energy_and_gradient``."""
    u = np.asarray(u, dtype=float).reshape(-1, 3)
    total = 0.0
    for k in terms.orders if n is None else [n]:
        idx = terms.orders[k].indices  # (K, n, 2): atom, cart
        coef = terms.orders[k].coefficients
        for perm in terms.translations:  # atom J -> perm[J]
            total += float(coef @ np.prod(u[perm[idx[..., 0]], idx[..., 1]], axis=1))
    return total


def _replicate(prim, u_s: np.ndarray, S, T) -> np.ndarray:
    """The S-periodic displacement ``u_s`` (atoms of S) on the atoms of T."""
    ssites = SupercellSites.build(prim, np.asarray(S))
    tsites = SupercellSites.build(prim, np.asarray(T))
    return u_s[ssites.index(tsites.kappa, tsites.cells)]


def _tsc(T) -> np.ndarray:
    from anharmbench.structures import supercell_matrix

    return supercell_matrix(T)


# ----------------------------------------------------------------- (a) folding
@pytest.mark.parametrize(("order", "target"), [(2, "4I"), (3, "4I"), (4, "2SC")])
def test_s_periodic_energy_is_ratio_times_ftg_energy(
    prim, random_derivatives, model_4i, quartic_2sc, order, target
):
    """E_T(u replicated) = (N_T/N_S) E_S(u) per order, E_S from the irreducible basis."""
    basis, values = random_derivatives[order]
    model = model_4i if target == "4I" else quartic_2sc
    T = _tsc("4I") if target == "4I" else T_2SC
    rng = np.random.default_rng(order)
    for _ in range(3):
        u_s = rng.normal(scale=0.1, size=(basis.sym.n_atoms, 3))
        e_s = float(basis.cartesian_energy(values, u_s))
        e_t = _energy(model, _replicate(prim, u_s, basis.sym.S, T), order)
        ratio = model.natoms / basis.sym.n_atoms
        assert e_t == pytest.approx(ratio * e_s, rel=1e-10, abs=1e-14)


def test_expansion_in_the_ftg_itself_is_the_ftg_tensor(prim, random_derivatives):
    """T = S: the expansion is the dense FTG tensor, term by term."""
    for n, S in ((3, S_2I), (4, S_C)):
        basis, values = random_derivatives[n]
        terms = taylor_expansion(prim, {n: (basis, values)}, S)
        dense = basis.to_cartesian(values)
        ref = TaylorTerms.from_tensors(build_supercell(prim, S), {n: dense})
        assert np.abs(terms.to_tensor(n) - dense).max() < 1e-12 * np.abs(dense).max()
        assert terms.n_terms()[n] <= ref.canonical().n_terms()[n]


# ----------------------------------------------------------------- (b) derivatives back
def test_folded_derivatives_equal_the_input(prim, random_derivatives, model_4i, quartic_2sc):
    """Folding the T tensor onto the FTG and projecting gives the input derivatives."""
    dev = folding_deviation(model_4i, prim, {n: random_derivatives[n] for n in (2, 3)})
    dev.update(folding_deviation(quartic_2sc, prim, {4: random_derivatives[4]}))
    assert set(dev) == {2, 3, 4}
    assert max(dev.values()) < 1e-10, dev
    # and the folded tensor lies in the span of the invariant basis (no stray part)
    basis, values = random_derivatives[3]
    phi = fold_to_supercell(model_4i, prim, S_2I, 3)
    assert (
        np.abs(phi - basis.to_cartesian(basis.from_cartesian(phi))).max()
        < 1e-10 * np.abs(phi).max()
    )


def test_finite_difference_engine_measures_the_input(prim):
    """The derivative engine (lone, forces) run on a Hamiltonian built from orders 2 and 3
    in S_C and expanded into 2 S_C, restricted to S_C-periodic displacements, returns the
    input derivatives."""
    from anharmbench.derivatives.plan import build_plan
    from anharmbench.derivatives.results import measure_and_fit

    rng = np.random.default_rng(77)
    bases = {n: irreducible_basis(prim, S_C, n) for n in (2, 3)}
    values = {n: rng.normal(size=len(b)) for n, b in bases.items()}
    terms = taylor_expansion(prim, {n: (bases[n], values[n]) for n in bases}, T_2SC)
    folded = fold_terms(terms, prim, S_C)  # E_T(u replicated) * N_S / N_T, sparse
    n_s = len(build_supercell(prim, S_C))
    ssites = SupercellSites.build(prim, S_C)
    image = SupercellSites.build(prim, T_2SC).index(ssites.kappa, ssites.cells)  # S atom in T

    def evaluate(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.empty(len(displacements))
        f = np.empty(displacements.shape)
        for k, u in enumerate(displacements):
            if k < 5:  # the first few through the T model itself
                e_t, g_t = terms.energy_and_gradient(_replicate(prim, u, S_C, T_2SC))
                e[k], f[k] = e_t * n_s / terms.natoms, -g_t[image]
            else:  # the rest through its sparse S_C restriction, for speed
                e[k], g = folded.energy_and_gradient(u)
                f[k] = -g
        return e, f

    plan = build_plan(bases, method="forces", variant="lone", n_steps=3, count_naive=False)
    result = measure_and_fit(plan, evaluate, warn=False)
    for n in (2, 3):
        assert np.abs(result.values[n] - values[n]).max() < 1e-7 * np.abs(values[n]).max(), n


# ----------------------------------------------------------------- (c) LAMMPS vs numpy
@pytest.mark.parametrize("case", ["orders23_2Ix2", "order4_SCx2"])
def test_plugin_matches_numpy_calculator(tmp_path, model_2i_x2, quartic_sc_x2, case):
    terms = model_2i_x2 if case == "orders23_2Ix2" else quartic_sc_x2
    path = terms.write(tmp_path / f"{case}.taylor")
    atoms = terms.atoms()
    rng = np.random.default_rng(5)
    positions = atoms.positions[None] + rng.normal(scale=0.05, size=(3, len(atoms), 3))
    calc = CartesianTaylorCalculator(terms)
    with LammpsCalculator(taylor_potential(path), atoms) as batch:
        res = batch.calculate_batch(positions)
    for k in range(len(positions)):
        probe = atoms.copy()
        probe.positions = positions[k]
        probe.calc = calc
        f_ref = probe.get_forces()
        assert np.abs(res.forces[k] - f_ref).max() < 1e-10
        assert res.energies[k] == pytest.approx(probe.get_potential_energy(), abs=1e-10)
        assert np.abs(res.stresses[k] - probe.get_stress()).max() < 1e-12


# ----------------------------------------------------------------- (c') stored per orbit
def test_translation_storage_is_the_full_expansion(tmp_path, model_4i):
    """4I (64 primitive translations): the expansion stores one monomial per translation
    orbit; every translate of them (``expanded``) is the same polynomial, in numpy and in
    pair_style taylor, to 1e-10, and the file is ~64 times smaller."""
    assert model_4i.n_translations == 64
    full = model_4i.expanded()
    assert full.n_translations == 1
    n_rep, n_full = sum(model_4i.n_terms().values()), sum(full.n_terms().values())
    assert 60 * n_rep < n_full <= 64 * n_rep  # translates coincide only rarely
    small = model_4i.write(tmp_path / "orbits.taylor")
    big = full.write(tmp_path / "full.taylor")
    assert small.stat().st_size * 30 < big.stat().st_size
    atoms = model_4i.atoms()
    rng = np.random.default_rng(64)
    positions = atoms.positions[None] + rng.normal(scale=0.05, size=(2, len(atoms), 3))
    results = []
    for path in (small, big):
        with LammpsCalculator(taylor_potential(path), atoms) as batch:
            results.append(batch.calculate_batch(positions))
    for k, pos in enumerate(positions):
        u = model_4i.displacements(pos)
        e_rep, g_rep = model_4i.energy_and_gradient(u)
        e_full, g_full = full.energy_and_gradient(u)
        scale = np.abs(g_full).max()
        assert e_rep == pytest.approx(e_full, rel=1e-10, abs=1e-12)
        assert np.abs(g_rep - g_full).max() < 1e-10 * scale
        for res in results:
            assert res.energies[k] == pytest.approx(e_full, rel=1e-10, abs=1e-10)
            assert np.abs(res.forces[k] + g_full).max() < 1e-10 * max(scale, 1.0)


# ----------------------------------------------------------------- (d) translations
def test_rigid_translation_changes_nothing(model_2i_x2, quartic_sc_x2):
    """Acoustic sum rule in T: E(u + c) = E(u), F(u + c) = F(u), sum of forces = 0."""
    rng = np.random.default_rng(11)
    for terms in (model_2i_x2, quartic_sc_x2):
        u = rng.normal(scale=0.05, size=(terms.natoms, 3))
        c = rng.normal(scale=0.2, size=3)
        e0, g0 = terms.energy_and_gradient(u)
        e1, g1 = terms.energy_and_gradient(u + c)
        scale = np.abs(g0).max()
        assert e1 == pytest.approx(e0, rel=1e-10, abs=1e-12)
        assert np.abs(g1 - g0).max() < 1e-10 * scale
        assert np.abs(g0.sum(axis=0)).max() < 1e-10 * scale
        # a pure translation has zero energy and force
        e_t, g_t = terms.energy_and_gradient(np.broadcast_to(c, u.shape))
        assert abs(e_t) < 1e-12 and np.abs(g_t).max() < 1e-10


def test_expansion_is_invariant_under_the_space_group(prim, model_2sc):
    """E(g u) = E(u) for elements g of the space group restricted to T (rotations about
    every kind of center, with translations)."""
    sym = SupercellSymmetry(prim, T_2SC)
    rng = np.random.default_rng(8)
    u = rng.normal(scale=0.05, size=(model_2sc.natoms, 3))
    e0 = _energy(model_2sc, u)
    for g in rng.choice(sym.order, size=6, replace=False):
        assert _energy(model_2sc, sym.apply(int(g), u)) == pytest.approx(e0, rel=1e-10)


# ----------------------------------------------------------------- real surface
def test_crg_derivatives_expand_exactly(prim):
    """Orders 2 and 3 of the CRG surface measured in S_C, expanded into 2 S_C: the
    expansion reproduces the measured derivatives and, for an S_C-periodic displacement,
    the CRG energy to the order of the truncation."""
    from anharmbench.derivatives.plan import build_plan
    from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
    from anharmbench.potentials.crg import crg_potential

    bases = {n: irreducible_basis(prim, S_C, n) for n in (2, 3)}
    plan = build_plan(bases, method="forces", variant="lone", n_steps=4, count_naive=False)
    atoms_s = build_supercell(prim, S_C)
    potential = crg_potential()
    with LammpsCalculator(potential, atoms_s) as batch:
        result = measure_and_fit(plan, ase_evaluator(atoms_s, batch), warn=False)
        ders = {n: (bases[n], result.values[n]) for n in (2, 3)}
        terms = taylor_expansion(prim, ders, T_2SC, require_orders=(2, 3))
        assert max(folding_deviation(terms, prim, ders).values()) < 1e-10
        # an S_C-periodic displacement of 0.01 A: CRG vs the cubic expansion
        rng = np.random.default_rng(3)
        u_s = rng.normal(size=(len(atoms_s), 3))
        u_s -= u_s.mean(axis=0)
        u_s *= 0.01 / np.abs(u_s).max()
        e_ref = batch.calculate_batch(atoms_s.positions[None] + u_s[None]).energies[0]
        e_eq = batch.calculate_batch(atoms_s.positions[None]).energies[0]
    e_t = _energy(terms, _replicate(prim, u_s, S_C, T_2SC)) * len(atoms_s) / terms.natoms
    e_harm = sum(float(bases[n].cartesian_energy(ders[n][1], u_s)) for n in (2,))
    # the truncation error is O(u^4): below 1e-3 of the harmonic energy at 0.01 A
    assert abs(e_t - (e_ref - e_eq)) < 1e-3 * abs(e_harm)


# ----------------------------------------------------------------- bad input
def test_bad_input_is_refused_before_any_work(prim, random_derivatives):
    ders = dict(random_derivatives)
    with pytest.raises(ExpansionError, match="not commensurate"):
        taylor_expansion(prim, ders, "3SC")  # 3 S_C is not a supercell of 2I
    with pytest.raises(ExpansionError, match=r"order\(s\) \[4\] are missing"):
        taylor_expansion(prim, {n: ders[n] for n in (2, 3)}, "4I", require_orders=(2, 3, 4))
    with pytest.raises(ExpansionError, match="not in the expected"):
        taylor_expansion(prim, {4: ders[4]}, "4I", expected_ftg={4: np.eye(3)})
    with pytest.raises(ExpansionError, match="different primitive cell"):
        taylor_expansion(tho2_primitive(5.6), ders, "4I")
    with pytest.raises(ExpansionError, match="keyed as order 3"):
        taylor_expansion(prim, {3: ders[2]}, "4I")
    with pytest.raises(ExpansionError, match="values for a basis"):
        taylor_expansion(prim, {2: (ders[2][0], ders[2][1][:-1])}, "4I")
    with pytest.raises(ExpansionError, match="pair"):
        expand_order(prim, ders[3][0], ders[3][1], "4I", images="pair")
    # the paper's FTGs are accepted as expected
    taylor_expansion(prim, {2: ders[2]}, "2I", expected_ftg=PAPER_FTG)


def test_ftg_terms_are_sparse_and_counted(prim, random_derivatives):
    """Order 4 is built term by term (no dense (3 N_T)^n); sizes stay bounded."""
    reports: list = []
    taylor_expansion(prim, {4: random_derivatives[4]}, T_SC_X2, reports=reports)
    (rep,) = reports
    assert rep.scheme == "centers" and rep.order == 4
    n_t = 3 * 24
    assert rep.n_terms < math.comb(n_t + 3, 4)  # fewer than all symmetric components


@pytest.mark.slow
def test_paper_hamiltonian_from_the_crg_surface(tmp_path, prim):
    """The paper's construction end to end (~2 min): CRG orders 2, 3 measured in 2I and
    order 4 in S_C, expanded into 4I (192 atoms, ~2e7 terms); exact folding; for an
    S_C-periodic displacement (all of its q-points are in both FTGs) the expansion equals
    CRG up to fifth order; a short NVE run through the plugin stays bounded."""
    from anharmbench.datasets import IDMDSettings, run_idmd
    from anharmbench.derivatives.plan import build_plan
    from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
    from anharmbench.potentials.crg import crg_potential

    potential = crg_potential()
    ders = {}
    for S, orders in ((S_2I, (2, 3)), (S_C, (4,))):
        bases = {n: irreducible_basis(prim, S, n) for n in orders}
        plan = build_plan(bases, method="forces", variant="lone", count_naive=False)
        atoms_s = build_supercell(prim, S)
        with LammpsCalculator(potential, atoms_s) as batch:
            res = measure_and_fit(
                plan, ase_evaluator(atoms_s, batch), warn=False
            )
        ders.update({n: (bases[n], res.values[n]) for n in orders})
    terms = taylor_expansion(prim, ders, "4I", require_orders=(2, 3, 4), expected_ftg=PAPER_FTG)
    assert max(folding_deviation(terms, prim, ders).values()) < 1e-10

    atoms_c = build_supercell(prim, S_C)
    rng = np.random.default_rng(4)
    u_c = rng.normal(size=(len(atoms_c), 3))
    u_c *= 0.02 / np.abs(u_c).max()
    with LammpsCalculator(potential, atoms_c) as batch:
        e = batch.calculate_batch(atoms_c.positions[None] + np.stack([0 * u_c, u_c])).energies
    e_t = _energy(terms, _replicate(prim, u_c, S_C, _tsc("4I"))) * len(atoms_c) / terms.natoms
    basis2, values2 = ders[2]
    e_harm = float(basis2.cartesian_energy(values2, _replicate(prim, u_c, S_C, S_2I)))
    e_harm *= len(atoms_c) / basis2.sym.n_atoms  # per S_C cell
    assert abs(e_t - (e[1] - e[0])) < 1e-4 * abs(e_harm)

    res = run_idmd(
        terms,
        tmp_path / "idmd",
        IDMDSettings.quick(
            n_steps=20, stride=10, test_steps=10, init="harmonic", checkpoint_every=10
        ),
    )
    assert res.trajectories["train"].energy_drift["max_abs_per_atom"] < 0.01
