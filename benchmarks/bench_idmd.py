"""IDMD speed: the Taylor pair style in LAMMPS against hiPhive's ForceConstantCalculator.

A Taylor Hamiltonian with orders 2-4 of CRG ThO2 is expanded into the MD cell (default
4I, 192 atoms, as the paper's IDMD) and both codes run NVE velocity-Verlet steps on the
same tensors:

* ours: ``pair_style taylor`` (plugins/taylor) driven by LAMMPS ``fix nve``;
* hiPhive 1.5: ``ForceConstantCalculator`` (numba kernels) driven by ASE's
  ``VelocityVerlet``, with the same monomials converted into hiPhive's sorted-cluster
  force constants. Before timing, both give the same forces on a random displacement
  (printed), so the comparison is of one Hamiltonian.

The derivatives are measured here on CRG, all orders in the 12-atom S_C FTG (fast); pass
``--paper-ftg`` for the paper's FTGs (2nd and 3rd order in 2I, 4th in S_C). Steps per
second and the ratio are printed; the full 4000-step IDMD time follows from them.

Usage: python benchmarks/bench_idmd.py [--target 4I] [--steps 50] [--paper-ftg]
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet

from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
from anharmbench.hamiltonian.expansion import taylor_expansion
from anharmbench.lammps import LammpsCalculator
from anharmbench.lammps.system import LammpsSystem
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.taylor_calculators import CartesianTaylorCalculator, taylor_potential
from anharmbench.potentials.taylor_cartesian import TaylorTerms
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive
from anharmbench.symmetry import irreducible_basis

A0 = 5.580101


CACHE = Path.home() / ".cache" / "anharmbench" / "benchmarks"


def measure_derivatives(prim, ftg: dict[int, str]) -> dict[int, tuple]:  # noqa: ANN001
    """CRG irreducible derivatives ``{n: (basis, values)}``, each order in its FTG.

    Values are cached in ``~/.cache/anharmbench/benchmarks`` (keyed by FTG and orders);
    the bases are rebuilt (fast) and their labels checked against the cache's.
    """
    out = {}
    for name in sorted(set(ftg.values())):
        orders = [n for n, s in ftg.items() if s == name]
        smat = supercell_matrix(name)
        bases = {n: irreducible_basis(prim, smat, order=n) for n in orders}
        cache = CACHE / f"idmd_crg_{name}_{''.join(map(str, orders))}.npz"
        if cache.is_file():
            data = np.load(cache)
            if all(list(data[f"labels_{n}"]) == list(bases[n].labels) for n in orders):
                for n in orders:
                    out[n] = (bases[n], data[f"values_{n}"])
                print(f"  orders {orders} in {name}: cached in {cache}")
                continue
        atoms = build_supercell(prim, smat)
        plan = build_plan(bases, h_range=(0.005, 0.04), n_steps=6)
        with LammpsCalculator(crg_potential(), atoms) as batch:
            res = measure_and_fit(plan, ase_evaluator(atoms, batch), warn=False)
        for n in orders:
            out[n] = (bases[n], res.values[n])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            **{f"values_{n}": res.values[n] for n in orders},
            **{f"labels_{n}": np.array(bases[n].labels) for n in orders},
        )
        print(f"  measured orders {orders} in {name}: {plan.n_evaluations} evaluations")
    return out


def to_hiphive(terms: TaylorTerms):  # noqa: ANN201
    """The same polynomial as hiPhive ``SortedForceConstants``.

    hiPhive keys a tensor by its sorted atom cluster and sums the full Cartesian tensor
    with ``1/prod(k_r!)`` (``k_r``: repeats of an atom); our canonical monomial
    coefficient is ``Phi / prod(k_r!)`` over repeated (atom, cart) pairs. Every
    permutation of the factors that keeps the atom sequence sorted writes the same
    ``Phi`` into the cluster's tensor (vectorised over all monomials of an order).
    """
    from hiphive.force_constants import SortedForceConstants

    canon = terms.expanded()  # every translate, canonical
    fc_dict: dict[tuple[int, ...], np.ndarray] = {}
    for n, ot in canon.orders.items():
        if n < 2:
            continue
        idx = ot.indices  # (K, n, 2)
        flat = idx[..., 0] * 3 + idx[..., 1]
        atoms_ = idx[..., 0]
        carts = idx[..., 1]
        # Phi = c * prod over distinct indices of k! = c * prod over factors (k!)^(1/k)
        fact = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
        rep = np.ones(len(flat))
        for k in range(n):
            same = (flat == flat[:, [k]]).sum(axis=1)
            rep *= fact[same] ** (1.0 / same)
        phi = ot.coefficients * rep
        clusters, cid = np.unique(atoms_, axis=0, return_inverse=True)
        cid = cid.ravel()
        fc = np.zeros((len(clusters), 3**n))
        weights = 3 ** np.arange(n - 1, -1, -1)
        for perm in itertools.permutations(range(n)):
            perm = list(perm)
            ok = np.all(atoms_[:, perm] == atoms_, axis=1)
            if not ok.any():
                continue
            fc[cid[ok], carts[ok][:, perm] @ weights] = phi[ok]
        for c, tensor in zip(clusters, fc.reshape((len(clusters),) + (3,) * n), strict=True):
            fc_dict[tuple(int(a) for a in c)] = tensor
    atoms = terms.atoms()
    return SortedForceConstants(fc_dict, atoms), atoms


def time_lammps(path: Path, terms: TaylorTerms, atoms, steps: int, temp: float) -> float:  # noqa: ANN001
    elements = tuple(sorted(set(terms.symbols)))
    with LammpsSystem(taylor_potential(path, elements), atoms) as system:
        system.command("timestep 0.004")
        system.command(f"velocity all create {temp} 4928459 mom yes dist gaussian")
        system.command("fix integrate all nve")
        system.command("run 2 pre yes post no")
        t0 = time.perf_counter()
        system.command(f"run {steps} pre no post no")
        return steps / (time.perf_counter() - t0)


def time_hiphive(fcs, atoms, steps: int, temp: float) -> float:  # noqa: ANN001
    from hiphive.calculators import ForceConstantCalculator

    md_atoms = atoms.copy()
    md_atoms.calc = ForceConstantCalculator(fcs)
    thermalize_momenta(md_atoms, temp, rng=np.random.default_rng(1))
    dyn = VelocityVerlet(md_atoms, timestep=4.0 * units.fs)
    dyn.run(2)  # numba compilation
    t0 = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="4I", help="MD cell (default 4I, 192 atoms)")
    parser.add_argument("--steps", type=int, default=50, help="timed MD steps per code")
    parser.add_argument("--temperature", type=float, default=2000.0)
    parser.add_argument("--paper-ftg", action="store_true", help="2nd, 3rd in 2I; 4th in SC")
    args = parser.parse_args()

    prim = tho2_primitive(A0)
    ftg = {2: "2I", 3: "2I", 4: "SC"} if args.paper_ftg else {2: "SC", 3: "SC", 4: "SC"}
    t0 = time.perf_counter()
    derivs = measure_derivatives(prim, ftg)
    print(f"derivatives: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    terms = taylor_expansion(prim, derivs, args.target)
    n_terms = terms.n_terms()
    print(f"expansion into {args.target} ({len(terms.symbols)} atoms): {n_terms} monomials "
          f"x {terms.n_translations} translations, "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    fcs, atoms = to_hiphive(terms)
    print(f"conversion to hiPhive force constants: {time.perf_counter() - t0:.1f} s")

    from hiphive.calculators import ForceConstantCalculator

    rng = np.random.default_rng(0)
    probe = atoms.copy()
    probe.positions += rng.normal(scale=0.05, size=probe.positions.shape)
    probe.calc = CartesianTaylorCalculator(terms)
    f_ours = probe.get_forces()
    probe.calc = ForceConstantCalculator(fcs)
    f_hip = probe.get_forces()
    print(f"same Hamiltonian: max |F_ours - F_hiphive| = {np.abs(f_ours - f_hip).max():.2e} "
          f"eV/A (max |F| {np.abs(f_ours).max():.2f})")

    with tempfile.TemporaryDirectory() as tmp:
        path = terms.write(Path(tmp) / "model.taylor")
        ours = time_lammps(path, terms, atoms, args.steps, args.temperature)
    hip = time_hiphive(fcs, atoms, args.steps, args.temperature)
    print(f"{'route':40s} {'steps/s':>9s} {'4000 steps':>11s}")
    print(f"{'LAMMPS pair_style taylor (ours)':40s} {ours:9.2f} {4000 / ours / 60:9.1f} min")
    print(f"{'hiPhive ForceConstantCalculator + ASE':40s} {hip:9.2f} {4000 / hip / 60:9.1f} min")
    print(f"ratio ours / hiPhive: {ours / hip:.1f}x")


if __name__ == "__main__":
    main()
