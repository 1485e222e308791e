"""Economy: 3rd order in the 24-atom 2I cell of ThO2 on CRG, ours against phono3py.

Prints, for each route, the number of supercell evaluations and the deviation of its
third-order irreducible derivatives from a tight reference (our lone plan, ten steps,
extrapolated to zero step):

* ours, lone plan, ten steps 0.01..0.08 A (the reference itself; its internal
  consistency is shown by a second, independent step window 0.02..0.12 A);
* ours, lone plan, three steps, and one step (no extrapolation);
* ours, bundled plans (random directions, least squares overdetermined 1.2x and 3x);
* phono3py's own finite-displacement route (displacement 0.03 A, its default, and
  0.01 A), its fc3 projected onto our invariant basis.

Deviations are RMS over the irreducible derivatives divided by their mean magnitude
(the paper's Table I metric).

Usage: python benchmarks/bench_economy.py
"""

from __future__ import annotations

import time

import numpy as np
from phono3py import Phono3py

import anharmbench  # noqa: F401
from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import displacement_evaluator, measure_and_fit
from anharmbench.lammps import BatchEvaluator
from anharmbench.phonopy_interface import phonopy_atom_map, to_phonopy_atoms
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, tho2_primitive
from anharmbench.symmetry import irreducible_basis

A0 = 5.580101
S = 2 * np.eye(3, dtype=int)


def rel_rms(d: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((d - ref) ** 2)) / np.mean(np.abs(ref)))


def ours(basis, batch, atoms, h_range, n_steps, variant="lone", over=3.0):  # noqa: ANN001, ANN201
    plan = build_plan({3: basis}, method="forces", variant=variant, h_range=h_range,
                      n_steps=n_steps, overdetermination=over)
    t0 = time.perf_counter()
    res = measure_and_fit(plan, displacement_evaluator(batch, atoms.positions), warn=False)
    return res.values[3], plan.n_evaluations, time.perf_counter() - t0


def phono3py_route(prim, atoms, basis, batch, distance, plusminus):  # noqa: ANN001, ANN201
    ph3 = Phono3py(to_phonopy_atoms(prim), supercell_matrix=S.T, primitive_matrix=None)
    ph3.generate_displacements(distance=distance, is_plusminus=plusminus)
    cells = [c for c in ph3.supercells_with_displacements if c is not None]
    t0 = time.perf_counter()
    positions = np.array([c.positions for c in cells])
    perm = phonopy_atom_map(atoms, ph3)  # phonopy atom i is our atom perm[i]
    inv = np.argsort(perm)  # our atom j is phonopy atom inv[j]
    _, forces = batch(positions[:, inv])
    ph3.forces = forces[:, perm]
    ph3.produce_fc3(is_compact_fc=False)
    fc3 = np.asarray(ph3.fc3)  # (N, N, N, 3, 3, 3) in phonopy order
    n = len(atoms)
    ours_order = fc3[np.ix_(inv, inv, inv)].transpose(0, 3, 1, 4, 2, 5).reshape((3 * n,) * 3)
    return basis.from_cartesian(ours_order), len(cells), time.perf_counter() - t0


def main() -> None:
    prim = tho2_primitive(A0)
    atoms = build_supercell(prim, S)
    t0 = time.perf_counter()
    basis = irreducible_basis(prim, S, order=3)
    print(f"basis (2I, n=3): {len(basis)} irreducible derivatives in "
          f"{time.perf_counter() - t0:.1f} s")
    with BatchEvaluator(crg_potential(), atoms) as batch:
        ref, n_ref, t_ref = ours(basis, batch, atoms, (0.01, 0.08), 10)
        alt, n_alt, _ = ours(basis, batch, atoms, (0.02, 0.12), 10)
        few, n_few, t_few = ours(basis, batch, atoms, (0.01, 0.04), 3)
        rows = [
            ("ours lone, 10 steps 0.01-0.08 (reference)", n_ref, 0.0, t_ref),
            ("ours lone, 10 steps 0.02-0.12 (consistency)", n_alt, rel_rms(alt, ref), 0.0),
            ("ours lone, 3 steps 0.01-0.04", n_few, rel_rms(few, ref), t_few),
        ]
        for h in (0.03, 0.01):
            one, n_one, t_one = ours(basis, batch, atoms, (h, h), 1)
            rows.append((f"ours lone, 1 step {h} A (no extrapolation)", n_one, rel_rms(one, ref),
                         t_one))
        for over in (1.2, 3.0):
            for h_range, k in (((0.01, 0.04), 3), ((0.01, 0.01), 1)):
                b, n_b, t_b = ours(basis, batch, atoms, h_range, k, "bundled", over)
                rows.append((f"ours bundled x{over}, {k} step(s) {h_range[0]}-{h_range[1]}",
                             n_b, rel_rms(b, ref), t_b))
        for dist, pm in ((0.03, "auto"), (0.01, "auto"), (0.01, True)):
            d, n, t = phono3py_route(prim, atoms, basis, batch, dist, pm)
            rows.append((f"phono3py fd, {dist} A, plusminus={pm}", n, rel_rms(d, ref), t))
    print(f"{'route':46s} {'evaluations':>11s} {'rel. RMS dev.':>14s} {'time/s':>7s}")
    for name, n, dev, t in rows:
        print(f"{name:46s} {n:11d} {dev:14.2e} {t:7.1f}")


if __name__ == "__main__":
    main()
