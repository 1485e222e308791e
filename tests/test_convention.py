"""Our convention for irreducible derivatives (after Fu et al. 2019), and the
basis-independent figure.

Table I must not depend on how our invariant basis happens to be rotated inside a
multiplicity space (several tensors on one block multiset). These tests rotate the basis
inside every such space and show the reported values and the relative Frobenius figure
unchanged, while the raw coefficients change; and they check the reported values against
derivatives of the CRG energy taken directly along the symmetrized modes (a code path that
shares nothing with the basis). The crystal's orientation, the supercell normalisation and
the order-4 check in a supercell are in tests/test_table1_metric.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from anharmbench.derivatives.fit import fit
from anharmbench.derivatives.job import DerivativeJob, prepare
from anharmbench.derivatives.results import ase_evaluator, measure
from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import CONVENTIONAL, tho2_primitive
from anharmbench.symmetry import irreducible_basis
from anharmbench.symmetry.basis import IrreducibleBasis
from anharmbench.symmetry.convention import paper_convention


def _groups(basis: IrreducibleBasis) -> list[list[int]]:
    out: dict[tuple[int, ...], list[int]] = {}
    for k, t in enumerate(basis.tensors):
        out.setdefault(tuple(t.blocks), []).append(k)
    return list(out.values())


def _rotated(basis: IrreducibleBasis, rng: np.random.Generator
             ) -> tuple[IrreducibleBasis, np.ndarray]:
    """The basis rotated by a random orthogonal matrix inside every multiplicity space,
    and the (K, K) matrix Q with B'_a = sum_b Q_ab B_b (so d' = Q d keeps D)."""
    tensors = list(basis.tensors)
    Q = np.eye(len(basis))
    for members in _groups(basis):
        m = len(members)
        if m == 1:
            continue
        q, _ = np.linalg.qr(rng.normal(size=(m, m)))
        Q[np.ix_(members, members)] = q
        tables = [{tuple(i): (v, p) for i, v, p in zip(basis.tensors[k].indices.tolist(),
                                                       basis.tensors[k].values,
                                                       basis.tensors[k].perms, strict=True)}
                  for k in members]
        keys = sorted(set().union(*tables))
        perms = np.array([next(t[r][1] for t in tables if r in t) for r in keys])
        vals = np.array([[t.get(r, (0.0, 0))[0] for r in keys] for t in tables])  # (m, nnz)
        for a, k in enumerate(members):
            tensors[k] = replace(basis.tensors[k], indices=np.array(keys, dtype=np.int64),
                                 values=q[a] @ vals, perms=perms)
    return IrreducibleBasis(basis.symmetrized, basis.order, tensors), Q


@pytest.mark.parametrize(("supercell", "order"), [(CONVENTIONAL, 3), (np.eye(3, dtype=int), 4),
                                                  (np.eye(3, dtype=int), 5)])
def test_rotating_inside_multiplicity_spaces(supercell, order):
    basis = irreducible_basis(tho2_primitive(), supercell, order=order)
    assert max(len(g) for g in _groups(basis)) >= 2  # there is something to rotate
    rng = np.random.default_rng(7)
    d_ref = rng.normal(size=len(basis))
    d_mod = d_ref + 0.1 * rng.normal(size=len(basis))  # a "model" 10 % off
    rot, Q = _rotated(basis, rng)
    r_ref, r_mod = Q @ d_ref, Q @ d_mod
    # the same derivative tensor in both bases (Cartesian, over the FTG)
    if basis.modes.shape[0] ** order <= 5e7:
        np.testing.assert_allclose(rot.to_cartesian(r_ref), basis.to_cartesian(d_ref),
                                   atol=1e-12)
    # paper convention: the same values, component by component
    p0, p1 = paper_convention(basis), paper_convention(rot)
    np.testing.assert_array_equal(p0.components, p1.components)
    assert p0.labels == p1.labels
    np.testing.assert_allclose(p1.values(r_ref), p0.values(d_ref), rtol=0, atol=1e-12)
    np.testing.assert_allclose(p1.values(r_mod), p0.values(d_mod), rtol=0, atol=1e-12)
    # the basis-independent figure: unchanged
    frob0 = np.linalg.norm(d_mod - d_ref) / np.linalg.norm(d_ref)
    frob1 = np.linalg.norm(r_mod - r_ref) / np.linalg.norm(r_ref)
    assert frob1 == pytest.approx(frob0, rel=1e-12)
    # ... while the coefficient-based relative RMSE (the old Table I) is not
    old0 = np.sqrt(np.mean((d_mod - d_ref) ** 2)) / np.mean(np.abs(d_ref))
    old1 = np.sqrt(np.mean((r_mod - r_ref) ** 2)) / np.mean(np.abs(r_ref))
    assert abs(old1 - old0) > 1e-6 * old0


def test_paper_values_are_components_of_the_tensor():
    """p_k = D[r_k] through the dense mode tensor and through the Cartesian contraction
    with the mode vectors (two code paths of the basis)."""
    basis = irreducible_basis(tho2_primitive(), CONVENTIONAL, order=3)
    d = np.random.default_rng(1).normal(size=len(basis))
    pc = paper_convention(basis)
    T = basis.to_mode_tensor(d)
    np.testing.assert_allclose(pc.values(d), [pc.scale * T[tuple(r)] for r in pc.components],
                               atol=1e-13)
    for k in (0, 5, 17):
        vecs = [pc.vectors[:, i] for i in pc.components[k]]
        assert pc.scale * basis.contract(d, vecs) == pytest.approx(pc.values(d)[k], abs=1e-12)


def test_paper_values_equal_direct_derivatives_of_crg_energies():
    """On CRG (primitive cell, orders 2 and 3): each paper-convention derivative equals the
    mixed derivative of the energy along its symmetrized modes, taken by a central
    +-h stencil in those modes' amplitudes (error O(h^2); h = 0.005 A gives ~1e-4
    relative), which uses nothing of the basis but its mode vectors."""
    prim = tho2_primitive()
    prepared = prepare(DerivativeJob(supercell=np.eye(3, dtype=int), orders=(2, 3), n_steps=5),
                       prim)
    with LammpsCalculator(crg_potential(), prepared.supercell) as batch:
        evaluate = ase_evaluator(prepared.supercell, batch)
        data = measure(prepared.plan, evaluate)
        res = fit(prepared.plan, data.energies, data.forces)
        h = 0.005
        for n in (2, 3):
            basis = prepared.bases[n]
            pc = paper_convention(basis)
            p = pc.values(res.values[n])
            modes = pc.vectors  # the canonical modes on the lab supercell (prim: scale 1)
            for k, r in enumerate(pc.components):
                signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
                u = (signs * h) @ modes[:, r].T  # (2^n, 3N)
                e, _ = evaluate(u.reshape(len(signs), -1, 3))
                direct = float(np.prod(signs, axis=1) @ e) / (2 * h) ** n
                scale = max(abs(p).max(), 1.0)
                assert abs(direct - p[k]) < 2e-3 * scale, (n, pc.labels[k], direct, p[k])
