"""Economy: 3rd order in 2I and 4th order in S_C of ThO2 on CRG, ours against phono3py/symfc.

Prints, for each route, the number of supercell evaluations, the group-theoretical least
number for our plans' method, stencil and steps (:func:`economy_bounds`; at the bundled
plan's overdetermination, at 1 for lone), and the deviation of the irreducible derivatives
from a tight reference (our lone plan, ten steps, extrapolated to zero step).

Third order, 2I (24 atoms):

* ours, lone plan, ten steps 0.01..0.08 A (the reference itself; its internal
  consistency is shown by a second, independent step window 0.02..0.12 A);
* ours, lone plan, three steps, and one step (no extrapolation);
* ours, bundled plans (random directions, least squares overdetermined 1.2x and 3x);
* phono3py's own finite-displacement route (displacement 0.03 A, its default, and
  0.01 A), its fc3 projected onto our invariant basis.

Fourth order, S_C (12 atoms): our lone and bundled plans, and symfc's fc4 fitted (orders 2-4)
to forces of seeded random +-u snapshots (RMS 0.02 A per atom, then Richardson-combined
with 0.04 A), projected onto our basis.

Deviations are RMS over the irreducible derivatives divided by their mean magnitude
(the paper's Table I metric).

Usage: python benchmarks/bench_economy.py
"""

from __future__ import annotations

import time

import numpy as np
from phono3py import Phono3py

from anharmbench.derivatives.plan import build_plan, economy_bounds
from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
from anharmbench.lammps import LammpsCalculator
from anharmbench.phonopy_interface import phonopy_atom_map, to_phonopy_atoms
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, tho2_primitive
from anharmbench.symmetry import irreducible_basis

A0 = 5.580101
S = 2 * np.eye(3, dtype=int)


def rel_rms(d: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((d - ref) ** 2)) / np.mean(np.abs(ref)))


def ours(basis, batch, atoms, h_range, n_steps, variant="lone", over=3.0):  # noqa: ANN001, ANN201
    """(values, evaluations, group-theory minimum, seconds) of one of our plans."""
    n = basis.order
    plan = build_plan({n: basis}, method="forces", variant=variant, h_range=h_range,
                      n_steps=n_steps, overdetermination=over)
    least = economy_bounds(plan, {n: basis}, over if variant == "bundled" else 1.0)[1]
    t0 = time.perf_counter()
    res = measure_and_fit(plan, ase_evaluator(atoms, batch), warn=False)
    return res.values[n], plan.n_evaluations, least, time.perf_counter() - t0


def symfc_fc4(atoms, basis, batch, amplitudes, pairs, seed=7):  # noqa: ANN001, ANN201
    """symfc's fc4 (orders 2-4 fitted to +-u random snapshots), Richardson-combined over
    the two amplitudes (a, a/2), on our basis; (values, evaluations, seconds)."""
    from symfc import Symfc
    from symfc.utils.utils import SymfcAtoms

    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(pairs, len(atoms), 3))
    unit /= np.sqrt((unit**2).sum(axis=2).mean(axis=1))[:, None, None]
    sf = Symfc(SymfcAtoms(numbers=atoms.numbers, cell=np.asarray(atoms.cell.array),
                          scaled_positions=atoms.get_scaled_positions()), log_level=0)
    evaluate = ase_evaluator(atoms, batch)
    t0 = time.perf_counter()
    fits = []
    for k, amp in enumerate(amplitudes):
        u = np.concatenate([amp * unit, -amp * unit])
        sf.displacements, sf.forces = u, evaluate(u)[1]
        if k == 0:
            sf.compute_basis_set(orders=[2, 3, 4], apply_sum_rule=False)
        sf.solve(orders=[2, 3, 4], is_compact_fc=False)
        fc4 = np.asarray(sf.force_constants[4])
        fits.append(fc4.transpose(0, 4, 1, 5, 2, 6, 3, 7).reshape((3 * len(atoms),) * 4))
    fc4 = fits[0] if len(fits) == 1 else (4.0 * fits[1] - fits[0]) / 3.0
    return (basis.from_cartesian(fc4), 2 * pairs * len(amplitudes),
            time.perf_counter() - t0)


def phono3py_route(prim, atoms, basis, batch, distance, plusminus):  # noqa: ANN001, ANN201
    ph3 = Phono3py(to_phonopy_atoms(prim), supercell_matrix=S.T, primitive_matrix="P")
    ph3.generate_displacements(distance=distance, is_plusminus=plusminus)
    cells = [c for c in ph3.supercells_with_displacements if c is not None]
    t0 = time.perf_counter()
    positions = np.array([c.positions for c in cells])
    perm = phonopy_atom_map(atoms, ph3)  # phonopy atom i is our atom perm[i]
    inv = np.argsort(perm)  # our atom j is phonopy atom inv[j]
    forces = batch.calculate_batch(positions[:, inv], stress=False).forces
    ph3.forces = forces[:, perm]
    ph3.produce_fc3(is_compact_fc=False)
    fc3 = np.asarray(ph3.fc3)  # (N, N, N, 3, 3, 3) in phonopy order
    n = len(atoms)
    ours_order = fc3[np.ix_(inv, inv, inv)].transpose(0, 3, 1, 4, 2, 5).reshape((3 * n,) * 3)
    return basis.from_cartesian(ours_order), len(cells), time.perf_counter() - t0


def _print(title: str, rows: list) -> None:  # noqa: ANN001
    print(f"\n{title}")
    print(f"{'route':50s} {'evaluations':>11s} {'minimum':>8s} {'x min':>6s} "
          f"{'rel. RMS dev.':>14s} {'time/s':>7s}")
    for name, n, least, dev, t in rows:
        ratio = f"{n / least:6.2f}" if least else f"{'-':>6s}"
        print(f"{name:50s} {n:11d} {least or '-':>8} {ratio} {dev:14.2e} {t:7.1f}")


def third_order() -> None:
    prim = tho2_primitive(A0)
    atoms = build_supercell(prim, S)
    t0 = time.perf_counter()
    basis = irreducible_basis(prim, S, order=3)
    print(f"basis (2I, n=3): {len(basis)} irreducible derivatives in "
          f"{time.perf_counter() - t0:.1f} s")
    with LammpsCalculator(crg_potential(), atoms) as batch:
        ref, n_ref, m_ref, t_ref = ours(basis, batch, atoms, (0.01, 0.08), 10)
        alt, n_alt, m_alt, _ = ours(basis, batch, atoms, (0.02, 0.12), 10)
        few, n_few, m_few, t_few = ours(basis, batch, atoms, (0.01, 0.04), 3)
        rows = [
            ("ours lone, 10 steps 0.01-0.08 (reference)", n_ref, m_ref, 0.0, t_ref),
            ("ours lone, 10 steps 0.02-0.12 (consistency)", n_alt, m_alt, rel_rms(alt, ref),
             0.0),
            ("ours lone, 3 steps 0.01-0.04", n_few, m_few, rel_rms(few, ref), t_few),
        ]
        for h in (0.03, 0.01):
            one, n_one, m_one, t_one = ours(basis, batch, atoms, (h, h), 1)
            rows.append((f"ours lone, 1 step {h} A (no extrapolation)", n_one, m_one,
                         rel_rms(one, ref), t_one))
        for over in (1.2, 3.0):
            for h_range, k in (((0.01, 0.04), 3), ((0.01, 0.01), 1)):
                b, n_b, m_b, t_b = ours(basis, batch, atoms, h_range, k, "bundled", over)
                rows.append((f"ours bundled x{over}, {k} step(s) {h_range[0]}-{h_range[1]}",
                             n_b, m_b, rel_rms(b, ref), t_b))
        for dist, pm in ((0.03, "auto"), (0.01, "auto"), (0.01, True)):
            d, n, t = phono3py_route(prim, atoms, basis, batch, dist, pm)
            rows.append((f"phono3py fd, {dist} A, plusminus={pm}", n, 0, rel_rms(d, ref), t))
    _print("third order, 2I (24 atoms)", rows)


def fourth_order() -> None:
    from anharmbench.structures import CONVENTIONAL

    prim = tho2_primitive(A0)
    atoms = build_supercell(prim, CONVENTIONAL)
    basis = irreducible_basis(prim, CONVENTIONAL, order=4)
    print(f"\nbasis (S_C, n=4): {len(basis)} irreducible derivatives")
    with LammpsCalculator(crg_potential(), atoms) as batch:
        ref, n_ref, m_ref, t_ref = ours(basis, batch, atoms, (0.01, 0.08), 10)
        rows = [("ours lone, 10 steps 0.01-0.08 (reference)", n_ref, m_ref, 0.0, t_ref)]
        for variant, over, h_range, k in (("lone", 1.0, (0.01, 0.08), 4),
                                          ("bundled", 3.0, (0.01, 0.08), 4),
                                          ("bundled", 1.5, (0.01, 0.04), 3),
                                          ("bundled", 1.2, (0.01, 0.04), 3)):
            d, n, least, t = ours(basis, batch, atoms, h_range, k, variant, over)
            tag = f"ours {variant}" + (f" x{over}" if variant == "bundled" else "")
            rows.append((f"{tag}, {k} steps {h_range[0]}-{h_range[1]}", n, least,
                         rel_rms(d, ref), t))
        for pairs in (50, 100):
            d, n, t = symfc_fc4(atoms, basis, batch, (0.04, 0.02), pairs)
            rows.append((f"symfc fc2-4 fit, {pairs} +-u pairs, 0.04+0.02 A Richardson", n, 0,
                         rel_rms(d, ref), t))
    _print("fourth order, S_C (12 atoms)", rows)


def main() -> None:
    third_order()
    fourth_order()


if __name__ == "__main__":
    main()
