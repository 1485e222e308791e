"""Finite-difference measurement of irreducible derivatives on toy bases.

The toy bases are the invariant symmetric tensors of a small group of signed mode
permutations acting on an ``M``-dimensional mode space (the trivial group gives all
symmetric tensors); they implement :class:`DerivativeBasis`.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from math import factorial
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from ase import Atoms

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.derivatives.fit import TailFitWarning, fit, fit_tail
from anharmbench.derivatives.plan import MeasurementPlan, build_plan
from anharmbench.derivatives.results import (
    NonFiniteEvaluationError,
    PlanMismatchError,
    ResultStore,
    ase_evaluator,
    displacement_evaluator,
    load_result,
    measure,
    save_result,
)
from anharmbench.derivatives.stencils import central_stencil
from anharmbench.derivatives.steps import choose_steps
from anharmbench.potentials.taylor_calculators import CartesianTaylorCalculator
from anharmbench.potentials.taylor_cartesian import TaylorTerms

# ----------------------------------------------------------------------------- toy bases

GroupElement = tuple[tuple[int, ...], tuple[int, ...]]  # (permutation, signs) of the modes


class ToyBasis:
    """Orthonormal basis of the symmetric ``n``-tensors on ``M`` modes invariant under a
    group of signed permutations of the modes.

    The symmetrised unit tensors ``S_a`` (``a`` a multiset of modes, Frobenius norm 1) are
    mapped to ``+-S_g(a)`` by the group; the invariant tensors are the non-vanishing orbit
    sums. ``B(c, ..., c) = sum_a C[k, a] sqrt(n! / prod(mult!)) c^a``.
    """

    def __init__(self, modes: np.ndarray, order: int,
                 group: list[GroupElement] | None = None) -> None:
        self._modes = modes
        self._order = order
        m = modes.shape[1]
        multisets = list(itertools.combinations_with_replacement(range(m), order))
        index = {a: i for i, a in enumerate(multisets)}
        self.exponents = np.zeros((len(multisets), m), dtype=np.int64)
        for i, a in enumerate(multisets):
            for j, cnt in Counter(a).items():
                self.exponents[i, j] = cnt
        mult = np.array([factorial(order) / np.prod([factorial(int(e)) for e in row])
                         for row in self.exponents])
        self.norms = np.sqrt(mult)
        group = group or [(tuple(range(m)), (1,) * m)]
        rows, labels, seen = [], [], set()
        for a in multisets:
            if a in seen:
                continue
            vec = np.zeros(len(multisets))
            orbit = set()
            for perm, signs in group:
                image = tuple(sorted(perm[i] for i in a))
                vec[index[image]] += np.prod([signs[i] for i in a])
                orbit.add(image)
            seen |= orbit
            if np.linalg.norm(vec) > 1e-12:
                rows.append(vec / np.linalg.norm(vec))
                labels.append(" + ".join("".join(map(str, o)) for o in sorted(orbit)))
        self.coef = np.array(rows).reshape(len(rows), len(multisets))
        self._coef_sparse = scipy.sparse.csr_array(self.coef)
        self._labels = labels

    @property
    def order(self) -> int:
        return self._order

    @property
    def modes(self) -> np.ndarray:
        return self._modes

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def __len__(self) -> int:
        return self.coef.shape[0]

    def energy_terms(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        mono = np.prod(c[..., None, :] ** self.exponents, axis=-1) * self.norms
        flat = mono.reshape(-1, mono.shape[-1])
        return (self._coef_sparse @ flat.T).T.reshape(*c.shape[:-1], len(self))

    def to_cartesian(self, d: np.ndarray) -> np.ndarray:
        """Dense ``sum_k d_k B_k`` in Cartesian coordinates, ``(3N,) * n`` (as
        :meth:`IrreducibleBasis.to_cartesian`): ``S_a`` has ``1/sqrt(mult)`` in each of the
        ``mult`` distinct index orders of ``a``."""
        n, m = self._order, self._modes.shape[1]
        values = (np.asarray(d, dtype=float) @ self.coef) / self.norms
        t = np.zeros((m,) * n)
        for a, value in zip(itertools.combinations_with_replacement(range(m), n), values,
                            strict=True):
            for p in set(itertools.permutations(a)):
                t[p] = value
        for _ in range(n):
            t = np.tensordot(t, self._modes, axes=([0], [1]))
        return t

    def force_terms(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        m = c.shape[-1]
        pw = c[..., None, :] ** self.exponents  # (..., A, M)
        grads = []
        for i in range(m):
            lower = np.maximum(self.exponents[:, i] - 1, 0)
            others = np.ones(pw.shape[:-1])
            for j in range(m):
                if j != i:
                    others = others * pw[..., j]
            grads.append(self.exponents[:, i] * c[..., None, i] ** lower * others)
        g = np.stack(grads, axis=-1) * self.norms[:, None]  # (..., A, M)
        lead = g.shape[:-2]
        flat = np.moveaxis(g.reshape(-1, *g.shape[-2:]), 1, 0).reshape(g.shape[-2], -1)
        out = (self._coef_sparse @ flat).reshape(len(self), flat.shape[1] // m, m)
        return np.moveaxis(out, 0, 1).reshape(*lead, len(self), m)


def random_modes(natoms: int, m: int, seed: int) -> np.ndarray:
    """``(3N, M)`` orthonormal columns orthogonal to rigid translations."""
    rng = np.random.default_rng(seed)
    trans = np.kron(np.ones((natoms, 1)), np.eye(3)) / np.sqrt(natoms)
    x = rng.standard_normal((3 * natoms, m))
    x -= trans @ (trans.T @ x)
    q, _ = np.linalg.qr(x)
    return q


def toy_bases(m: int = 4, natoms: int = 3, orders: tuple[int, ...] = (2, 3, 4, 5, 6),
              group: list[GroupElement] | None = None, seed: int = 1) -> dict[int, ToyBasis]:
    modes = random_modes(natoms, m, seed)
    return {n: ToyBasis(modes, n, group) for n in orders}


def random_coefficients(bases: dict[int, ToyBasis], seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(len(b)) for n, b in bases.items()}


def reference_positions(natoms: int) -> np.ndarray:
    return np.arange(3 * natoms, dtype=float).reshape(natoms, 3) * 0.7


class TaylorSurface:
    """The Taylor series ``E_0 + sum_n (1/n!) sum_k d_k B_k(c, ..., c)`` of the toy bases as
    a batch evaluator of displacements: :class:`TaylorTerms` plus the constant ``E_0``."""

    def __init__(self, bases: dict[int, ToyBasis], coefficients: dict[int, np.ndarray],
                 energy0: float = 0.0) -> None:
        natoms = next(iter(bases.values())).modes.shape[0] // 3
        self.atoms = Atoms(f"H{natoms}", positions=reference_positions(natoms),
                           cell=np.eye(3) * 10.0, pbc=True)
        self.terms = TaylorTerms.from_irreducible(self.atoms, bases, coefficients)
        self.energy0 = energy0

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, f = self.terms.energies_forces(u)
        return e + self.energy0, f


def max_rel_error(values: np.ndarray, truth: np.ndarray) -> float:
    return float(np.max(np.abs(values - truth)) / np.max(np.abs(truth)))


# ----------------------------------------------------------------------------- toy basis sanity


def test_toy_basis_is_orthonormal_and_consistent() -> None:
    sign_flip: list[GroupElement] = [((0, 1, 2, 3), (1, 1, 1, 1)), ((0, 1, 2, 3), (1, 1, -1, -1))]
    for group in (None, sign_flip):
        bases = toy_bases(group=group)
        for n, b in bases.items():
            assert isinstance(b, DerivativeBasis)
            assert np.allclose(b.coef @ b.coef.T, np.eye(len(b)))
            c = np.random.default_rng(n).standard_normal((3, 4))
            eps = 1e-6
            num = np.stack([(b.energy_terms(c + eps * e) - b.energy_terms(c - eps * e)) / (2 * eps)
                            for e in np.eye(4)], axis=-1)
            assert np.allclose(num, b.force_terms(c), rtol=1e-6, atol=1e-6)
            # the dense Cartesian tensor is the same polynomial: D(u, ..., u) = sum_k d_k B_k(c)
            d = np.random.default_rng(10 + n).standard_normal(len(b))
            u = np.random.default_rng(20 + n).standard_normal(b.modes.shape[0])
            contracted = b.to_cartesian(d)
            for _ in range(n):
                contracted = contracted @ u
            assert contracted == pytest.approx(b.energy_terms(b.modes.T @ u) @ d, rel=1e-10)
    assert len(toy_bases(group=sign_flip)[3]) < len(toy_bases()[3])


SIGN_FLIP: list[GroupElement] = [((0, 1, 2, 3), (1, 1, 1, 1)), ((0, 1, 2, 3), (1, 1, -1, -1))]
SWAP_FLIP: list[GroupElement] = [
    ((0, 1, 2, 3), (1, 1, 1, 1)), ((1, 0, 2, 3), (1, 1, 1, 1)),
    ((0, 1, 2, 3), (1, 1, -1, -1)), ((1, 0, 2, 3), (1, 1, -1, -1)),
]
INVERSION: list[GroupElement] = [((0, 1, 2, 3), (1, 1, 1, 1)), ((0, 1, 2, 3), (-1, -1, -1, -1))]
GROUPS = {"trivial": None, "sign_flip": SIGN_FLIP, "swap_flip": SWAP_FLIP}
H_RANGE = (0.05, 0.2)  # toy "Angstrom"; random O(1) coefficients


class NoisyPotential:
    """A Taylor potential plus seeded Gaussian noise on energies and forces."""

    def __init__(self, potential: TaylorSurface, sigma: float, seed: int = 0) -> None:
        self.potential = potential
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, f = self.potential(u)
        return (e + self.sigma * self.rng.standard_normal(e.shape),
                f + self.sigma * self.rng.standard_normal(f.shape))


def run(plan: MeasurementPlan, evaluate, **kw):  # noqa: ANN001, ANN201
    data = measure(plan, evaluate)
    return fit(plan, data.energies, data.forces, **kw)


# ----------------------------------------------------------------------------- stencils


def test_central_stencils() -> None:
    assert central_stencil(1).offsets.tolist() == [-1, 1]
    assert central_stencil(2).weights.tolist() == [1.0, -2.0, 1.0]
    assert central_stencil(6).weights.tolist() == [1.0, -6.0, 15.0, -20.0, 15.0, -6.0, 1.0]
    # exact on polynomials of degree m+1, O(h^2) beyond
    for m in range(1, 7):
        st = central_stencil(m)
        for h in (0.3, 0.1):
            for q in range(m + 2):
                est = st.weights @ (st.offsets * h) ** q / h**m
                assert est == pytest.approx(factorial(m) if q == m else 0.0, abs=1e-9)


# ----------------------------------------------------------------------------- Taylor potential


def test_taylor_potential_forces_and_ase_calculator() -> None:
    bases = toy_bases(orders=(2, 3, 4))
    coef = random_coefficients(bases, 0)
    pot = TaylorSurface(bases, coef, energy0=1.5)
    rng = np.random.default_rng(0)
    u = 0.1 * rng.standard_normal((5, 3, 3))
    e, f = pot(u)
    assert e.shape == (5,) and f.shape == (5, 3, 3)
    eps = 1e-6
    for i, j in itertools.product(range(3), range(3)):
        du = np.zeros((3, 3))
        du[i, j] = eps
        num = -(pot(u + du)[0] - pot(u - du)[0]) / (2 * eps)
        assert np.allclose(num, f[:, i, j], atol=1e-7)
    assert np.allclose(f.sum(axis=1), 0.0, atol=1e-12)  # modes orthogonal to translations
    assert pot(np.zeros((1, 3, 3)))[0][0] == 1.5  # the energy0 given above
    # second derivative along a mode direction is sum_k d_k B_k(v, v)
    v = np.eye(4)[1]
    d2 = (pot((0.01 * bases[2].modes @ v).reshape(1, 3, 3))[0]
          + pot((-0.01 * bases[2].modes @ v).reshape(1, 3, 3))[0] - 3.0) / 1e-4
    assert d2[0] == pytest.approx(bases[2].energy_terms(v) @ coef[2], rel=1e-3)
    # ASE calculator (no E_0), including wrapped positions in a periodic cell
    atoms = Atoms("H3", positions=reference_positions(3), cell=np.eye(3) * 10.0, pbc=True)
    atoms.positions = atoms.positions + u[2]
    atoms.calc = CartesianTaylorCalculator(pot.terms)
    assert atoms.get_potential_energy() + pot.energy0 == pytest.approx(e[2], abs=1e-12)
    assert np.allclose(atoms.get_forces(), f[2], atol=1e-12)
    atoms.positions = atoms.positions + np.array([10.0, 0.0, -10.0])
    assert atoms.get_potential_energy() + pot.energy0 == pytest.approx(e[2], abs=1e-9)
    # the ASE adapter and the position adapter agree with the direct evaluation
    atoms0 = Atoms("H3", positions=reference_positions(3), cell=np.eye(3) * 10.0, pbc=True)
    e2, f2 = ase_evaluator(atoms0, CartesianTaylorCalculator(pot.terms))(u)

    def by_positions(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = [pot.terms.evaluate(p) for p in positions]
        return np.array([o[0] for o in out]) + pot.energy0, np.array([o[1] for o in out])

    e3, f3 = displacement_evaluator(by_positions, reference_positions(3))(u)
    assert np.allclose(e2 + pot.energy0, e) and np.allclose(f2, f)
    assert np.allclose(e3, e) and np.allclose(f3, f)


# ----------------------------------------------------------------------------- exact recovery


@pytest.mark.parametrize(
    ("method", "variant", "group"),
    [("forces", "lone", "trivial"), ("energies", "lone", "trivial"),
     ("forces", "lone", "swap_flip"), ("forces", "bundled", "sign_flip"),
     ("energies", "bundled", "swap_flip")],
)
def test_exact_recovery(method: str, variant: str, group: str) -> None:
    """A Taylor series of orders 2..6 gives back its coefficients.

    Achieved (max relative error over an order, M = 4, E_0 = -3 eV, ten steps 0.05..0.2):
    forces 2e-15, 2e-15, 2e-14, 2e-12, 4e-11 (orders 2..6); energies 1e-14, 9e-14, 1e-11,
    2e-10, 2e-8. Energies lose ~eps |E| / h^n at order n: with E_0 = -150 eV the order-6
    error of the energies method is ~2e-6 at these steps (larger steps are needed there).
    """
    bases = toy_bases(group=GROUPS[group])
    coef = random_coefficients(bases, 3)
    pot = TaylorSurface(bases, coef, energy0=-3.0)
    plan = build_plan(bases, method=method, variant=variant, h_range=H_RANGE)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TailFitWarning)  # large h^2 terms are exact here
        res = run(plan, pot)
    assert res.plan_hash == plan.hash
    for n in (2, 3, 4, 5, 6):
        err = max_rel_error(res.values[n], coef[n])
        assert err < (1e-8 if n <= 4 else 1e-6), (n, err)
        assert res.labels[n] == bases[n].labels
        assert res.raw[n].shape == (10, len(bases[n]))
        assert np.all(res.uncertainties[n] < 1e-6 * np.max(np.abs(coef[n])))


def test_vanishing_orders_are_handled() -> None:
    """Under mode inversion all odd-order tensors vanish: those orders have no unknowns."""
    bases = toy_bases(group=INVERSION, orders=(2, 3, 4))
    assert len(bases[3]) == 0
    coef = random_coefficients(bases, 1)
    pot = TaylorSurface(bases, coef)
    plan = build_plan(bases, method="forces", h_range=H_RANGE)
    res = run(plan, pot)
    assert res.values[3].shape == (0,)
    for n in (2, 4):
        assert max_rel_error(res.values[n], coef[n]) < 1e-8


# ----------------------------------------------------------------------------- quadratic tail


def test_fit_tail_removes_analytic_h2() -> None:
    h = np.geomspace(0.01, 0.08, 10)
    d0 = np.array([1.0, -2.0, 0.0])
    a = np.array([50.0, 3.0, -7.0])
    tf = fit_tail(h, d0 + a * h[:, None] ** 2)
    assert np.allclose(tf.values, d0, atol=1e-12) and np.allclose(tf.h2, a, rtol=1e-8)
    assert np.all(tf.power == 2)
    b = np.array([1e4, 0.0, 2e3])
    tf4 = fit_tail(h, d0 + a * h[:, None] ** 2 + b * h[:, None] ** 4)
    assert np.allclose(tf4.values, d0, atol=1e-10) and tf4.power[0] == 4


def test_uncertainty_covers_the_truncation_error() -> None:
    """A quadratic tail fitted to data with an h^4 term (four steps, no noise): the
    regression's sigma is smaller than the bias of d(0), the uncertainty with the
    truncation part (the fit without the largest step) covers it; an exact quadratic has
    no truncation part."""
    h = np.geomspace(0.01, 0.08, 4)
    d0, a, b = np.array([1.0, -2.0]), np.array([50.0, 3.0]), np.array([2e4, -5e3])
    tf = fit_tail(h, d0 + a * h[:, None] ** 2 + b * h[:, None] ** 4, tail="quadratic")
    err = np.abs(tf.values - d0)
    assert np.all(err > tf.statistical) and np.all(err < tf.uncertainties)
    np.testing.assert_allclose(tf.uncertainties, np.hypot(tf.statistical, tf.truncation))
    exact = fit_tail(h, d0 + a * h[:, None] ** 2, tail="quadratic")
    assert np.all(exact.truncation < 1e-12) and np.all(exact.values == pytest.approx(d0))


@pytest.mark.parametrize("method", ["forces", "energies"])
def test_quadratic_tail_is_extrapolated_away(method: str) -> None:
    """Orders 2 and 4 only: the order-2 estimates carry an exact h^2 error from order 4."""
    bases = toy_bases(orders=(2, 3, 4))
    coef = random_coefficients(bases, 5)
    coef[3][:] = 0.0
    coef[4] *= 20.0  # strong contamination
    pot = TaylorSurface(bases, coef)
    plan = build_plan(bases, method=method, h_range=(0.02, 0.16))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TailFitWarning)
        res = run(plan, pot, tail="quadratic")
    steps = res.steps[2]
    dev = res.raw[2] - coef[2]
    assert np.max(np.abs(dev[-1])) > 1e-2 * np.max(np.abs(coef[2]))  # visibly contaminated
    assert np.allclose(dev, steps[:, None] ** 2 * res.h2_coefficients[2], atol=1e-10)
    assert max_rel_error(res.values[2], coef[2]) < 1e-10
    assert np.all(res.tail_power[2] == 2)


# ----------------------------------------------------------------------------- economy & hash


def test_plan_shares_configurations_between_orders() -> None:
    bases = toy_bases()
    for method in ("forces", "energies"):
        plan = build_plan(bases, method=method)  # type: ignore[arg-type]
        assert plan.n_evaluations < plan.naive_evaluations
        assert plan.n_evaluations < 0.6 * plan.naive_evaluations
        # one undisplaced configuration, shared by every order (E0 of the energy stencils,
        # the central point of the odd orders' force stencils), marked by direction -1
        n_zero = int((np.abs(plan.displacements).max(axis=(1, 2)) == 0).sum())
        assert np.sum(plan.conf_direction < 0) == n_zero == 1
        flat = np.round(plan.displacements.reshape(plan.n_evaluations, -1), 12) + 0.0
        assert np.unique(flat, axis=0).shape[0] == plan.n_evaluations  # no duplicates
        # the stencil of the highest order contains the lower ones: order 2 costs nothing extra
        cfg6 = set(plan.measurements[6].configurations.ravel().tolist())
        cfg2 = set(plan.measurements[2].configurations.ravel().tolist())
        assert cfg2 <= cfg6 | {0}
        # every configuration is used by some order
        used = set().union(*(set(m.configurations.ravel().tolist())
                             for m in plan.measurements.values()))
        assert used == set(range(plan.n_evaluations))
        # unit directions, displacement norms equal |t|
        assert np.allclose(np.linalg.norm(plan.directions, axis=1), 1.0)
        norms = np.linalg.norm(plan.displacements.reshape(plan.n_evaluations, -1), axis=1)
        assert np.allclose(norms, np.abs(plan.conf_amplitude))
    # stable hash
    a = build_plan(bases, method="forces")
    b = build_plan(toy_bases(), method="forces")
    assert a.hash == b.hash and len(a.hash) == 64
    assert build_plan(bases, method="forces", h_range=(0.01, 0.1)).hash != a.hash
    assert build_plan(bases, method="energies").hash != a.hash
    assert build_plan(bases, method="forces", variant="bundled", seed=1).hash != build_plan(
        bases, method="forces", variant="bundled", seed=2).hash


def test_bundled_is_overdetermined() -> None:
    bases = toy_bases(orders=(2, 3, 4))
    for factor in (1.0, 3.0):
        plan = build_plan(bases, method="energies", variant="bundled", overdetermination=factor)
        for n, meas in plan.measurements.items():
            assert meas.directions.size >= factor * meas.n_unknowns
            assert np.linalg.matrix_rank(meas.design.reshape(-1, meas.n_unknowns)) == len(bases[n])


# ----------------------------------------------------------------------------- resumption


class CountingEvaluator:
    """Counts evaluated configurations; raises once ``fail_after`` would be exceeded."""

    def __init__(self, potential: TaylorSurface, fail_after: int | None = None) -> None:
        self.potential = potential
        self.fail_after = fail_after
        self.seen: list[np.ndarray] = []

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_done = sum(x.shape[0] for x in self.seen)
        if self.fail_after is not None and n_done + u.shape[0] > self.fail_after:
            raise RuntimeError("evaluator interrupted")
        self.seen.append(np.array(u))
        return self.potential(u)


def test_resume_from_store(tmp_path: Path) -> None:
    bases = toy_bases(orders=(2, 3, 4))
    coef = random_coefficients(bases, 2)
    pot = TaylorSurface(bases, coef)
    plan = build_plan(bases, method="forces", h_range=H_RANGE)
    n = plan.n_evaluations
    store = tmp_path / "fd.h5"
    first = CountingEvaluator(pot, fail_after=n // 2)
    with pytest.raises(RuntimeError, match="interrupted"):
        measure(plan, first, store=store, batch_size=16)
    n_first = sum(x.shape[0] for x in first.seen)
    assert 0 < n_first <= n // 2
    second = CountingEvaluator(pot)
    data = measure(plan, second, store=store, batch_size=16)
    n_second = sum(x.shape[0] for x in second.seen)
    assert n_first + n_second == n and data.n_evaluated == n_second
    evaluated = np.concatenate(first.seen + second.seen).reshape(n, -1)
    assert np.unique(np.round(evaluated, 12), axis=0).shape[0] == n  # nothing evaluated twice
    full = measure(plan, pot)
    assert np.array_equal(data.energies, full.energies) and np.array_equal(data.forces, full.forces)
    res_resumed = fit(plan, data.energies, data.forces)
    res_full = fit(plan, full.energies, full.forces)
    for k in plan.orders:
        assert np.array_equal(res_resumed.values[k], res_full.values[k])
    # results round-trip through HDF5
    save_result(res_full, tmp_path / "derivatives.h5")
    loaded = load_result(tmp_path / "derivatives.h5")
    assert loaded.plan_hash == plan.hash and loaded.labels == res_full.labels
    for k in plan.orders:
        assert np.array_equal(loaded.values[k], res_full.values[k])
        assert np.array_equal(loaded.raw[k], res_full.raw[k])
    # a finished store evaluates nothing
    third = CountingEvaluator(pot)
    assert measure(plan, third, store=store).n_evaluated == 0 and not third.seen
    # another plan on the same file is refused
    other = build_plan(bases, method="forces", h_range=(0.01, 0.1))
    with pytest.raises(PlanMismatchError, match="belongs to plan"):
        measure(other, pot, store=store)


# ----------------------------------------------------------------------------- failures


def test_nan_forces_name_the_configuration(tmp_path: Path) -> None:
    bases = toy_bases(orders=(2, 3))
    pot = TaylorSurface(bases, random_coefficients(bases, 0))
    plan = build_plan(bases, method="forces", h_range=H_RANGE)
    bad = 37

    def evaluate(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, f = pot(u)
        hit = np.flatnonzero(np.all(np.isclose(u, plan.displacements[bad]), axis=(1, 2)))
        f[hit, 1, 2] = np.nan
        return e, f

    with pytest.raises(NonFiniteEvaluationError, match=f"configuration {bad} ") as info:
        measure(plan, evaluate, store=tmp_path / "s.h5", batch_size=10)
    assert info.value.index == bad
    _, _, done = ResultStore(tmp_path / "s.h5", plan).load()
    assert done[:bad].all() and not done[bad:].any()  # finished ones kept, bad one not stored
    with pytest.raises(ValueError, match="configuration 3 has non-finite"):
        fit(plan, None, np.where(np.arange(plan.n_evaluations)[:, None, None] == 3, np.nan, 0.0)
            * np.ones((1, 3, 3)))


def test_noisy_potential_warns_with_labels() -> None:
    bases = toy_bases()
    coef = random_coefficients(bases, 4)
    noisy = NoisyPotential(TaylorSurface(bases, coef), 1e-5)
    plan = build_plan(bases, method="forces", h_range=(0.03, 0.12))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = run(plan, noisy)
    messages = [str(w.message) for w in rec if issubclass(w.category, TailFitWarning)]
    order6 = [m for m in messages if m.startswith("order 6: poor quadratic-tail fit")]
    assert len(order6) == 1
    assert res.poor_fit[6].any()
    flagged = [res.labels[6][k] for k in np.flatnonzero(res.poor_fit[6])]
    assert f"'{flagged[0]}' (rel. unc." in order6[0]
    assert not res.poor_fit[2].any()  # low orders are fine with this noise
    assert not any(m.startswith("order 2") for m in messages)
    # the noise-free potential gives no warning with the same plan
    with warnings.catch_warnings():
        warnings.simplefilter("error", TailFitWarning)
        run(plan, noisy.potential)


# ----------------------------------------------------------------------------- step choice


def test_choose_steps_moves_the_window() -> None:
    bases = toy_bases(orders=(2, 3, 4))
    coef = random_coefficients(bases, 3)
    pot = TaylorSurface(bases, coef, energy0=-3.0)
    # a window far beyond the quadratic regime of order 2 is narrowed
    ch = choose_steps(bases, pot, h_range=(0.1, 0.8))
    assert ch.steps[2].max() < 0.8 and ch.history[0][2][2] > 0.1 >= ch.history[-1][2][2]
    assert max_rel_error(ch.result.values[2], coef[2]) < 1e-10
    assert ch.result.plan_hash == ch.plan.hash
    # a noisy evaluator in a too-small window: the high orders move to larger steps
    noisy = NoisyPotential(pot, 1e-6, seed=1)
    start = run(build_plan(bases, h_range=(0.0025, 0.02)), noisy, warn=False)
    ch = choose_steps(bases, noisy, h_range=(0.0025, 0.02))
    assert ch.steps[4].min() > 0.0025 and ch.steps[3].min() > 0.0025
    for n in (3, 4):  # measured (2026-12-02): 0.019 (order 3) and 1.4e-5 (order 4) of it
        assert max_rel_error(ch.result.values[n], coef[n]) < 0.1 * max_rel_error(
            start.values[n], coef[n])
    assert ch.n_evaluations < sum(len(h) for h in ch.history) * ch.plan.n_evaluations
