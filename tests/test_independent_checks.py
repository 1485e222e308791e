"""Independent checks of the derivative engine, orders 2..6, on the real CRG ThO2 surface.

The exact-recovery tests (``tests/test_finite_differences.py``) build their surface from
toy bases written alongside the fit's ``energy_terms``/``force_terms``, so a normalisation
error shared by a basis and the fit could cancel there. Here every reference comes from
CRG itself (LAMMPS, the surface the project measures) through code that shares nothing
with our irreducible basis:

1. order 3 -- phono3py's own finite-displacement fc3 ("traditional" solver) in the 12-atom
   conventional cell S_C and in 2I (24 atoms, the paper's order-3 FTG), tensor by tensor,
   against our fc3 shipped to phono3py by :meth:`DerivativeSet.phono3py`;
2. order 4 -- symfc's fc4, fitted (with fc2 and fc3) to CRG forces of seeded random
   displacements of every atom of S_C, against our fc4 (:meth:`IrreducibleBasis.to_cartesian`);
3. orders 2..6 (the point is 5 and 6) -- directional derivatives ``d^n E(x0 + t u)/dt^n``
   of CRG *energies* along seeded random directions of the primitive cell by a central
   stencil written here, against the contraction of our dense Cartesian tensor.

What is checked on our side is everything between the CRG forces and a Cartesian tensor:
plan, finite differences, fit, extrapolation to zero step and the expansion of the
irreducible derivatives (``to_cartesian``) -- and, for order 3, the layout conversion to
phono3py. Agreement figures are printed (``pytest -s``). Runtime ~1 min on 2 cores
(2I: ~30 s of it).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from ase import Atoms

from anharmbench.derivatives.fit import DerivativeResult, fit
from anharmbench.derivatives.job import DerivativeJob, Prepared, prepare
from anharmbench.derivatives.results import ase_evaluator, measure
from anharmbench.lammps import LammpsCalculator
from anharmbench.observables.force_constants import DerivativeSet, phonopy_unit_cell
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import THO2_A0_CRG, supercell_matrix, tho2_primitive

#: CRG equilibrium lattice constant (Angstrom); the derivatives are taken at zero stress.
A0 = THO2_A0_CRG


@pytest.fixture(scope="module")
def crg() -> LammpsPotential:
    return crg_potential()


@pytest.fixture(scope="module")
def primitive() -> Atoms:
    prim = tho2_primitive(A0)
    assert abs(prim.cell.cellpar()[0] * math.sqrt(2) - 5.580101) < 1e-9
    return prim


def _measure(crg: LammpsPotential, primitive: Atoms, cell: str, orders: tuple[int, ...],
             **settings: object) -> tuple[Prepared, DerivativeResult]:
    """Our irreducible derivatives of ``orders`` in ``cell``, measured in process on CRG."""
    job = DerivativeJob(supercell=supercell_matrix(cell).tolist(), orders=orders,
                        **settings)  # type: ignore[arg-type]
    prepared = prepare(job, primitive)
    with LammpsCalculator(crg, prepared.supercell) as batch:
        data = measure(prepared.plan,
                       ase_evaluator(prepared.supercell, batch))
    # the order-6 tails are steep (|a| h_max^2 up to ~1.5x the derivative) and would warn;
    # what matters here is the agreement below, so report the flag instead of warning
    result = fit(prepared.plan, data.energies, data.forces, warn=False)
    for n in orders:
        print(f"  ours, {cell} order {n}: {len(prepared.bases[n])} derivatives, "
              f"{prepared.plan.n_evaluations} evaluations (whole plan), max rel. uncertainty "
              f"{result.relative_uncertainty[n].max():.1e}, poor tail fits "
              f"{int(result.poor_fit[n].sum())}")
    return prepared, result


# ============================================================================ order 3
#: phono3py displacement distances (Angstrom), each half the previous one.
FC3_DISTANCES = (0.03, 0.015, 0.0075)


def _deviations_shrink_as_square(what: str, theirs: dict[float, np.ndarray], ours: np.ndarray,
                                 scale: float, units: str) -> dict[float, float]:
    """Max |theirs[h] - ours| per step h (halved each time, decreasing); asserts that it
    shrinks 4x per halving (a step-squared error, no step-independent floor)."""
    steps = list(theirs)
    dev = {h: float(np.abs(theirs[h] - ours).max()) for h in steps}
    for h in steps:
        print(f"  {what} = {h:<7g}: max |theirs - ours| = {dev[h]:.3e} {units} "
              f"(relative to max |ours| = {scale:.2f}: {dev[h] / scale:.2e})")
    ratios = [dev[a] / dev[b] for a, b in zip(steps, steps[1:], strict=False)]
    print(f"  ratios at halved step: {', '.join(f'{r:.3f}' for r in ratios)} (h^2 error: 4)")
    for r in ratios:
        assert 3.6 < r < 4.4
    return dev


@pytest.mark.parametrize("cell", ["SC", "2I"])
def test_order3_matches_phono3py_finite_displacements(crg: LammpsPotential, primitive: Atoms,
                                                      cell: str) -> None:
    """Our fc3 against phono3py's own finite-displacement fc3, entry by entry.

    S_C (12 atoms, q-points G and X) and 2I (24 atoms, the paper's order-3 FTG, with L
    points and a non-diagonal supercell matrix).
    """
    from phono3py import Phono3py

    print()
    prepared, result = _measure(crg, primitive, cell, (2, 3), h_range=(0.01, 0.04), n_steps=3)
    ours = DerivativeSet.from_bases(
        "CRG", primitive, {n: (prepared.bases[n], result.values[n]) for n in (2, 3)}).phono3py()
    fc3_ours = np.asarray(ours.fc3)  # (N, N, N, 3, 3, 3) eV/A^3, phono3py's atom order
    natoms = len(prepared.supercell)
    assert fc3_ours.shape == (natoms,) * 3 + (3, 3, 3)
    scale = float(np.abs(fc3_ours).max())

    fc3_fd: dict[float, np.ndarray] = {}
    for d in FC3_DISTANCES:
        ph3 = Phono3py(phonopy_unit_cell(primitive), supercell_matrix=supercell_matrix(cell).T,
                       primitive_matrix="P", log_level=0)
        # same construction as ours.supercell, so the same atom order: compare index by index
        assert np.allclose(ph3.supercell.positions, ours.supercell.positions, atol=1e-10)
        # phono3py's systematic pairs, with the minus first displacement always. Its default
        # is_plusminus="auto" takes only +d for the first atom where symmetry maps it to -d;
        # in S_C that is harmless (ratios 3.998, 4.000), but in 2I (phono3py 4.10) it leaves
        # an O(d) error: deviation 8.2e-2, 2.6e-2, 1.2e-2 eV/A^3 at d = 0.03, 0.015, 0.0075
        # (ratios 3.17, 2.13), Richardson residual halving with d (7.5e-3, 3.8e-3), on entries
        # such as (O x, Th y, O x) 4.6-4.8 A apart where our value is 4.6e-5, and phono3py's
        # fc3 is then permutation-asymmetric by twice that floor. With +-d the same 2I
        # comparison converges as d^2 and its Richardson residual is 7.7e-7 eV/A^3.
        ph3.generate_displacements(distance=d, is_plusminus=True)
        positions = np.array([s.positions for s in ph3.supercells_with_displacements])
        sc = ph3.supercell
        ref = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        with LammpsCalculator(crg, ref) as batch:
            ph3.forces = batch.calculate_batch(positions, stress=False).forces
        # traditional solver, no symmetrisation: phono3py's plain finite differences
        ph3.produce_fc3(fc_calculator="traditional", is_compact_fc=False)
        fc3_fd[d] = np.asarray(ph3.fc3)
        print(f"  phono3py d = {d:g} A: {len(positions)} displaced supercells")

    # phono3py's fc3 is a central difference in both displacements, its error c d^2 + O(d^4):
    # halving d divides the deviation by 4 unless our fc3 were off by a d-independent amount
    # (a normalisation error would leave a floor and drive the ratio towards 1). Measured:
    # 4.00, 4.00 in both cells (the d^4 term and our error are < 1e-3 of the deviation).
    dev = _deviations_shrink_as_square("order 3, phono3py d", fc3_fd, fc3_ours, scale,
                                       "eV/A^3")
    # bound at the smallest d: the d^2 law fixed at the largest d predicts
    # dev(d_min) = dev(d_max) (d_min/d_max)^2 = 1/16 dev(d_max); allow 25 % for the d^4 term
    d_max, d_min = FC3_DISTANCES[0], FC3_DISTANCES[-1]
    predicted = dev[d_max] * (d_min / d_max) ** 2
    print(f"  bound at d = {d_min:g}: {1.25 * predicted:.3e} (d^2 law from d = {d_max:g})")
    assert dev[d_min] < 1.25 * predicted
    # and absolutely (a regression guard, not a derivation): 3e-4 of the largest fc3 entry;
    # measured 1.75e-4 (S_C) and 2.33e-4 (2I) at d = 0.0075 A
    assert dev[d_min] < 3e-4 * scale

    # Richardson (4 fc3(d/2) - fc3(d)) / 3 removes the d^2 term. With dev(d) = c d^2 + e d^4
    # on the worst entry, 4 dev(d1) - dev(d0) = -(3/4) e d0^4, and the residual at (d1, d2)
    # is e d1^4 / 4 = |4 dev(d1) - dev(d0)| / 48. Bound: 3x that estimate (the worst entries
    # of the three deviations need not coincide) plus 3 sigma of our own fc3.
    d0, d1, d2 = FC3_DISTANCES
    rich = (4.0 * fc3_fd[d2] - fc3_fd[d1]) / 3.0
    dev_rich = float(np.abs(rich - fc3_ours).max())
    d4_term = abs(4.0 * dev[d1] - dev[d0]) / 48.0
    # one sigma of any entry of our fc3: each basis tensor has unit Frobenius norm in mode
    # space and the modes are orthonormal, so every Cartesian entry of it is at most 1 in
    # magnitude, and independent errors sigma_k add up to at most sqrt(sum sigma_k^2)
    sigma_ours = float(np.sqrt(np.sum(result.uncertainties[3] ** 2)))
    bound = 3.0 * d4_term + 3.0 * sigma_ours
    print(f"  Richardson-extrapolated phono3py fc3 ({d1:g}, {d2:g}): max abs diff "
          f"{dev_rich:.3e} eV/A^3, relative {dev_rich / scale:.2e}; bound {bound:.2e} (d^4 "
          f"term {d4_term:.1e}, our one sigma {sigma_ours:.1e})")
    assert dev_rich < bound


# ============================================================================ order 4
#: Root-mean-square displacement per atom of symfc's random snapshots (Angstrom), halving.
FC4_AMPLITUDES = (0.04, 0.02, 0.01)
#: Random snapshots per amplitude, each also taken with the opposite sign.
FC4_PAIRS = 50


def test_order4_matches_symfc_fit(crg: LammpsPotential, primitive: Atoms) -> None:
    """Our S_C fc4 against symfc's fc4 fitted (orders 2, 3, 4) to CRG forces."""
    from symfc import Symfc
    from symfc.utils.utils import SymfcAtoms

    print()
    prepared, result = _measure(crg, primitive, "SC", (4,), variant="bundled",
                                overdetermination=1.5, h_range=(0.01, 0.04), n_steps=3)
    basis = prepared.bases[4]
    fc4_ours = basis.to_cartesian(result.values[4])  # (36,)*4 eV/A^4, our atom order
    scale = float(np.abs(fc4_ours).max())
    # one-sigma of any entry of our fc4: each basis tensor has unit Frobenius norm in mode
    # space and the modes are orthonormal, so every Cartesian entry of it is at most 1 in
    # magnitude, and independent errors sigma_k add up to at most sqrt(sum sigma_k^2)
    sigma_ours = float(np.sqrt(np.sum(result.uncertainties[4] ** 2)))

    atoms = prepared.supercell
    natoms = len(atoms)
    rng = np.random.default_rng(20240229)
    # every atom displaced independently, translations included: symfc's run() fits fc3 and
    # fc4 in bases without the sum rule, and translation-free snapshots (mean displacement
    # removed) left its fit singular: fc4 entries of ~4e4 eV/A^4 instead of ~1e2
    unit = rng.normal(size=(FC4_PAIRS, natoms, 3))
    unit /= np.sqrt((unit**2).sum(axis=2).mean(axis=1))[:, None, None]
    symfc_cell = SymfcAtoms(numbers=atoms.numbers, cell=np.asarray(atoms.cell.array),
                            scaled_positions=atoms.get_scaled_positions())
    fc4_fit: dict[float, np.ndarray] = {}
    sf = Symfc(symfc_cell, log_level=0)
    with LammpsCalculator(crg, atoms) as batch:
        evaluate = ase_evaluator(atoms, batch)
        for amp in FC4_AMPLITUDES:
            # +-u pairs: odd and even force terms decouple exactly in the least squares, so
            # fc4's bias comes from the 6th order (u^5 forces): c a^2 + O(a^4); the same
            # directions at every amplitude make c common to all (Richardson below)
            u = np.concatenate([amp * unit, -amp * unit])
            _, forces = evaluate(u)
            sf.displacements = u
            sf.forces = forces
            if amp == FC4_AMPLITUDES[0]:
                # what Symfc.run() does, with the basis (2.3 s) built once for all amplitudes;
                # re-solving was checked to reproduce run() bit for bit
                sf.compute_basis_set(orders=[2, 3, 4], apply_sum_rule=False)
            sf.solve(orders=[2, 3, 4], is_compact_fc=False)
            fc4 = np.asarray(sf.force_constants[4])  # (N, N, N, N, 3, 3, 3, 3)
            fc4_fit[amp] = fc4.transpose(0, 4, 1, 5, 2, 6, 3, 7).reshape((3 * natoms,) * 4)

    # the a^2 bias of the fit must shrink 4x per halving; a normalisation error of ours would
    # be an amplitude-independent floor (ratio -> 1). Measured 4.000, 4.002.
    dev = _deviations_shrink_as_square("order 4, symfc amplitude", fc4_fit, fc4_ours, scale,
                                       "eV/A^4")
    a0, a1, a2 = FC4_AMPLITUDES
    predicted = dev[a0] * (a2 / a0) ** 2
    print(f"  bound at amplitude {a2:g}: {1.25 * predicted:.3e} (a^2 law from {a0:g})")
    assert dev[a2] < 1.25 * predicted  # the a^2 law, 25 % for the a^4 term
    assert dev[a2] < 1e-3 * scale  # regression guard: measured 2.9e-4 of max |fc4|

    # Richardson (4 fc4(a/2) - fc4(a)) / 3 removes the a^2 bias. With dev(a) = c a^2 + e a^4
    # on the worst entry, 4 dev(a1) - dev(a0) = -(3/4) e a0^4, and the residual at (a1, a2)
    # is e a1^4 / 4 = |4 dev(a1) - dev(a0)| / 48. Bound: 3x that estimate (the worst entries
    # of the three deviations need not coincide) plus 3 sigma of our own fc4.
    rich = (4.0 * fc4_fit[a2] - fc4_fit[a1]) / 3.0
    dev_rich = float(np.abs(rich - fc4_ours).max())
    d4_term = abs(4.0 * dev[a1] - dev[a0]) / 48.0
    bound = 3.0 * d4_term + 3.0 * sigma_ours
    print(f"  Richardson-extrapolated symfc fc4 ({a1:g}, {a2:g}): max abs diff {dev_rich:.3e} "
          f"eV/A^4, relative {dev_rich / scale:.2e}; bound {bound:.2e} (a^4 term "
          f"{d4_term:.1e}, our one sigma {sigma_ours:.1e})")
    assert dev_rich < bound


# ============================================================================ orders 2..6
#: Random unit directions of the primitive cell (9 Cartesian components).
N_DIRECTIONS = 4
#: Steps (Angstrom) of the directional stencils, h2 = h1 / 2. The O(h^6) stencil's truncation
#: error falls 64x per halving while its round-off (energy noise ~1e-12 eV times
#: sqrt(sum w^2) <= 82, over h^n) grows 2^n x. Measured on these directions: at h = 0.01 the
#: order-6 estimates scatter by ~10 eV/A^6 (round-off), at 0.02 and 0.04 they agree to ~1;
#: order 5 is best at 0.02 (1e-3 eV/A^5 against 1e-2 at 0.01).
DIRECTIONAL_STEPS = (0.04, 0.02)
#: Accuracy order of the central stencils (error O(h^STENCIL_ACCURACY)).
STENCIL_ACCURACY = 6


def central_weights(n: int, half_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``j`` and weights ``w`` with ``f^(n)(0) ~ sum_j w_j f(j h) / h^n``.

    Solved exactly (fractions) from the Taylor conditions ``sum_j w_j j^k = n! delta_kn``,
    ``k < 2 half_width + 1``; written here rather than taken from the derivative engine.
    """
    offsets = list(range(-half_width, half_width + 1))
    m = len(offsets)
    rows = [[Fraction(j) ** k for j in offsets] + [Fraction(math.factorial(n) if k == n else 0)]
            for k in range(m)]
    for c in range(m):  # Gauss-Jordan on the (nonsingular) Vandermonde system
        pivot = next(r for r in range(c, m) if rows[r][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        rows[c] = [x / rows[c][c] for x in rows[c]]
        for r in range(m):
            if r != c and rows[r][c] != 0:
                f = rows[r][c]
                rows[r] = [x - f * y for x, y in zip(rows[r], rows[c], strict=True)]
    return np.array(offsets, dtype=float), np.array([float(row[m]) for row in rows])


def _half_width(n: int, accuracy: int = STENCIL_ACCURACY) -> int:
    """Half width ``p`` of the central stencil of derivative ``n`` with error O(h^accuracy)."""
    # 2p + 1 points fix the Taylor terms up to h^(2p); by parity the error of the n-th
    # derivative is O(h^(2p + 2 - n)) for n even and O(h^(2p + 1 - n)) for n odd
    return (n + accuracy - 2) // 2 if n % 2 == 0 else (n + accuracy - 1) // 2


def _contract(tensor: np.ndarray, u: np.ndarray) -> float:
    """``sum Phi[i, j, ...] u_i u_j ...`` of a dense ``(3N,)*n`` tensor."""
    out = tensor
    for _ in range(tensor.ndim):
        out = out @ u
    return float(out)


def test_directional_derivatives_orders_2_to_6(crg: LammpsPotential, primitive: Atoms) -> None:
    """Our primitive-cell tensors of orders 2..6 along random directions, against CRG energies."""
    print()
    orders = (2, 3, 4, 5, 6)
    prepared, result = _measure(crg, primitive, "prim", orders, h_range=(0.02, 0.08), n_steps=5)
    atoms = prepared.supercell
    rng = np.random.default_rng(17)
    dirs = rng.normal(size=(N_DIRECTIONS, len(atoms) * 3))
    # drop the translation (the energy cannot see it) and normalise: |u| = 1 Angstrom
    dirs = (dirs.reshape(N_DIRECTIONS, -1, 3) - dirs.reshape(N_DIRECTIONS, -1, 3).mean(axis=1,
            keepdims=True)).reshape(N_DIRECTIONS, -1)
    dirs /= np.linalg.norm(dirs, axis=1)[:, None]

    with LammpsCalculator(crg, atoms) as batch:
        evaluate = ase_evaluator(atoms, batch)
        for n in orders:
            tensor = prepared.bases[n].to_cartesian(result.values[n])  # (9,)*n eV/A^n
            # one sigma of D(u..u) from our fit: |B_k(u..u)| <= ||B_k||_F |u|^n = 1
            sigma_ours = float(np.sqrt(np.sum(result.uncertainties[n] ** 2)))
            offsets, weights = central_weights(n, _half_width(n))
            h1, h2 = DIRECTIONAL_STEPS
            worst_abs = worst_rel = 0.0
            for u in dirs:
                fd = {}
                for h in (h1, h2):
                    disp = (offsets[:, None] * h * u[None, :]).reshape(len(offsets), -1, 3)
                    energies, _ = evaluate(disp)
                    fd[h] = float(weights @ energies) / h**n
                ours = _contract(tensor, u)
                diff = abs(fd[h2] - ours)
                # FD error at h2: the O(h^6) truncation there is 1/64 of that at h1, so
                # |fd(h1) - fd(h2)| ~ 63 err(h2); it also holds the round-off of fd(h2).
                # Bound: twice that, plus 3 sigma of ours
                bound = 2.0 * abs(fd[h1] - fd[h2]) + 3.0 * sigma_ours
                print(f"  order {n}: d^{n}E/dt^{n} FD(h={h2:g}) {fd[h2]:14.6f}, ours "
                      f"{ours:14.6f}, diff {diff:.2e} (rel {diff / abs(ours):.1e}), bound "
                      f"{bound:.1e} [|FD(h={h1:g}) - FD(h={h2:g})| {abs(fd[h1] - fd[h2]):.1e}, "
                      f"sigma ours {sigma_ours:.1e}]")
                worst_abs = max(worst_abs, diff)
                worst_rel = max(worst_rel, diff / abs(ours))
                assert diff < bound
            print(f"  order {n}: max abs diff {worst_abs:.3e} eV/A^{n}, max rel diff "
                  f"{worst_rel:.2e} over {N_DIRECTIONS} directions")
