"""Irreducible derivative bases: counts, invariance, orthonormality, round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from ase import Atoms
from ase.build import bulk

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.symmetry import (
    S_2I,
    S_C,
    S_PRIM,
    IrreducibleBasis,
    SupercellSymmetry,
    invariant_count,
    invariant_count_stars,
    irreducible_basis,
    symmetrized_modes,
)

CELLS = {"prim": S_PRIM, "SC": S_C, "2I": S_2I}


@pytest.fixture(scope="module")
def tho2() -> Atoms:
    return bulk("ThO2", "fluorite", a=5.6)


_BASES: dict[tuple[str, int], IrreducibleBasis] = {}


def basis(prim: Atoms, cell: str, n: int) -> IrreducibleBasis:
    key = (cell, n)
    if key not in _BASES:
        _BASES[key] = irreducible_basis(prim, CELLS[cell], n)
    return _BASES[key]


def apply_to_tensor(T: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``T'(u_1..u_n) = T(G^T u_1, ...)``: transform every slot by ``G``."""
    for _ in range(T.ndim):
        T = np.tensordot(T, G, axes=([0], [1]))
    return T


# ----------------------------------------------------------------------------- counts
@pytest.mark.parametrize(
    ("cell", "n"),
    [("prim", n) for n in range(2, 7)] + [("SC", n) for n in (2, 3, 4)] + [("2I", 2), ("2I", 3)],
)
def test_count_equals_character_theory(tho2: Atoms, cell: str, n: int) -> None:
    sym = SupercellSymmetry(tho2, CELLS[cell])
    assert len(basis(tho2, cell, n)) == invariant_count(sym, n)


def test_known_counts(tho2: Atoms) -> None:
    table = {("prim", 2): 2, ("prim", 3): 2, ("prim", 4): 7, ("prim", 5): 6, ("prim", 6): 18}
    table |= {("SC", 2): 9, ("SC", 3): 37, ("SC", 4): 386, ("2I", 2): 17, ("2I", 3): 155}
    for (cell, n), k in table.items():
        assert len(basis(tho2, cell, n)) == k, (cell, n)


def test_prim_harmonic_physics(tho2: Atoms) -> None:
    B = basis(tho2, "prim", 2)
    assert len(B) == 2
    joined = " ".join(B.labels)
    assert "T2g" in joined and "T1u" in joined
    assert B.labels == ["G:T2g G:T2g", "G:T1u G:T1u"]
    assert [t.units for t in B.tensors] == ["eV/A^2", "eV/A^2"]


def test_qtuple_restricted_count(tho2: Atoms) -> None:
    """5th order at Q = (L, L, G, G, G): one q-tuple orbit; count by star characters."""
    B = irreducible_basis(tho2, S_2I, 5, qtuple=("L", "L", "G", "G", "G"))
    sym = SupercellSymmetry(tho2, S_2I)
    assert len(B) == invariant_count_stars(sym, ["L", "L", "G", "G", "G"]) == 228
    assert all(lab.count("L:") == 2 and lab.count("G:") == 3 for lab in B.labels)
    # the Gamma-only 5th-order set is the primitive-cell set
    G5 = irreducible_basis(tho2, S_2I, 5, qtuple=("G",) * 5)
    assert len(G5) == len(basis(tho2, "prim", 5)) == 6


def test_qtuple_errors(tho2: Atoms) -> None:
    with pytest.raises(ValueError, match="reciprocal lattice vector"):
        irreducible_basis(tho2, S_2I, 3, qtuple=("L", "G", "G"))
    with pytest.raises(ValueError, match="not commensurate"):
        irreducible_basis(tho2, S_C, 2, qtuple=("L", "L"))
    with pytest.raises(ValueError, match="entries"):
        irreducible_basis(tho2, S_2I, 3, qtuple=("X", "X"))
    # three distinct X points do conserve momentum
    B = irreducible_basis(tho2, S_2I, 3, qtuple=("X", (0.5, 0.5, 0.0), (0.0, 0.5, 0.5)))
    assert len(B) == invariant_count_stars(SupercellSymmetry(tho2, S_2I), ["X"] * 3) == 18


@pytest.mark.parametrize("n", [1, 7, 0])
def test_order_out_of_range(tho2: Atoms, n: int) -> None:
    with pytest.raises(ValueError, match="order"):
        irreducible_basis(tho2, S_PRIM, n)


# ----------------------------------------------------------------------------- tensors
def gram(B: IrreducibleBasis) -> np.ndarray:
    """Frobenius Gram matrix of the full M^n tensors, from the sparse storage."""
    M, n = B.M, B.order
    rows, cols, vals = [], [], []
    for k, t in enumerate(B.tensors):
        code = np.zeros(len(t.values), dtype=np.int64)
        for s in range(n):
            code = code * M + t.indices[:, s]
        rows.append(np.full(len(code), k))
        cols.append(code)
        vals.append(t.values * np.sqrt(t.perms))
    X = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(B), M**n),
    )
    return (X @ X.T).toarray()


@pytest.mark.parametrize(("cell", "n"), [("prim", 6), ("SC", 4), ("2I", 3)])
def test_orthonormal(tho2: Atoms, cell: str, n: int) -> None:
    B = basis(tho2, cell, n)
    assert abs(gram(B) - np.eye(len(B))).max() < 1e-12


@pytest.mark.parametrize(("cell", "n"), [("prim", 4), ("prim", 6), ("SC", 3), ("SC", 4), ("2I", 3)])
def test_cartesian_tensors_symmetric_invariant_asr(tho2: Atoms, cell: str, n: int) -> None:
    B = basis(tho2, cell, n)
    sym = B.sym
    rng = np.random.default_rng(n)
    # random combination (checks all basis tensors at once) and a few single ones
    ds = [rng.normal(size=len(B))]
    ds += [np.eye(len(B))[k] for k in rng.choice(len(B), size=min(3, len(B)), replace=False)]
    trans = sym.translation_vectors()
    for d in ds:
        T = B.to_cartesian(d)
        scale = np.abs(T).max()
        assert scale > 0
        for i in range(n - 1):  # adjacent transpositions generate S_n
            p = list(range(n))
            p[i], p[i + 1] = p[i + 1], p[i]
            assert abs(T - np.transpose(T, p)).max() < 1e-12 * max(1.0, scale)
        assert abs(np.tensordot(T, trans, axes=([0], [0]))).max() < 1e-12 * max(1.0, scale)
        for g in rng.integers(sym.order, size=4):
            G = sym.matrix(int(g)).toarray()
            assert abs(apply_to_tensor(T, G) - T).max() < 1e-12 * max(1.0, scale)


@pytest.mark.parametrize(("cell", "n"), [("prim", 2), ("prim", 6), ("SC", 4), ("2I", 3)])
def test_round_trip(tho2: Atoms, cell: str, n: int) -> None:
    B = basis(tho2, cell, n)
    rng = np.random.default_rng(7)
    d = rng.normal(size=len(B))
    T = B.to_cartesian(d)
    assert abs(B.from_cartesian(T) - d).max() < 1e-12
    assert abs(B.to_cartesian(B.from_cartesian(T)) - T).max() < 1e-12


@pytest.mark.parametrize(("cell", "n"), [("prim", 3), ("prim", 6), ("SC", 4), ("2I", 3)])
def test_energy_and_force_terms(tho2: Atoms, cell: str, n: int) -> None:
    B = basis(tho2, cell, n)
    assert isinstance(B, DerivativeBasis)
    M = B.M
    rng = np.random.default_rng(11)
    c = rng.normal(size=M)
    E = B.energy_terms(c)
    F = B.force_terms(c)
    assert E.shape == (len(B),) and F.shape == (len(B), M)
    # Euler: c . grad B_k(c..c) = n B_k(c..c)
    assert np.allclose(F @ c, n * E, atol=1e-12 * max(1.0, np.abs(E).max()))
    # central finite differences of energy_terms (exact for polynomials up to h^2 terms)
    h = 1e-4
    eye = np.eye(M)
    cols = rng.choice(M, size=min(M, 6), replace=False)
    plus = B.energy_terms(c[None, :] + h * eye[cols])
    minus = B.energy_terms(c[None, :] - h * eye[cols])
    fd = (plus - minus) / (2 * h)
    assert np.allclose(fd.T, F[:, cols], atol=1e-6 * max(1.0, np.abs(F).max()))
    # vectorised over leading dims
    cc = rng.normal(size=(2, 3, M))
    assert B.energy_terms(cc).shape == (2, 3, len(B))
    assert np.allclose(B.energy_terms(cc)[1, 2], B.energy_terms(cc[1, 2]))
    assert np.allclose(B.force_terms(cc)[0, 1], B.force_terms(cc[0, 1]))
    # consistency with the Cartesian tensor: D(u, ..., u) with u = modes c
    d = rng.normal(size=len(B))
    u = B.modes @ c
    if (3 * B.sym.n_atoms) ** n <= 2e6:
        T = B.to_cartesian(d)
        for _ in range(n):
            T = T @ u
        assert np.isclose(T, E @ d, rtol=1e-10, atol=1e-12)
    assert np.isclose(B.contract(d, [u] * n), E @ d, rtol=1e-10, atol=1e-12)
    # Cartesian energy/forces helpers (Taylor term and its negative gradient)
    ucart = u.reshape(-1, 3)
    e = B.cartesian_energy(d, ucart)
    assert np.isclose(e, E @ d / math.factorial(n))
    f = B.cartesian_forces(d, ucart)
    assert np.allclose(f.reshape(-1), -(B.modes @ (d @ F)) / math.factorial(n))


def test_block_array_and_metadata(tho2: Atoms) -> None:
    B = basis(tho2, "SC", 3)
    modes = B.symmetrized
    U = B.modes
    for t in B.tensors[:10]:
        arr = t.block_array(modes)
        assert arr.shape == tuple(modes.blocks[b].dim for b in t.blocks)
        assert np.count_nonzero(np.abs(arr) > 1e-14) <= t.multiplicity
        assert t.multiplicity == int(t.perms.sum()) and t.order == 3
        assert np.isclose(np.sum(t.perms * t.values**2), 1.0)
        # the block array reproduces B(c, c, c) on the blocks' modes
        c = np.random.default_rng(0).normal(size=B.M)
        k = B.tensors.index(t)
        cs = [c[modes.blocks[b].slice] for b in t.blocks]
        groups = {}
        for s, b in enumerate(t.blocks):
            groups.setdefault(b, []).append(s)
        # number of distinct slot assignments of the block multiset
        nassign = math.factorial(3) // math.prod(math.factorial(len(g)) for g in groups.values())
        val = np.einsum("abc,a,b,c->", arr, *cs) * nassign
        assert np.isclose(val, B.energy_terms(c)[k])
    assert U.shape[1] == B.M


def test_deterministic(tho2: Atoms) -> None:
    m = symmetrized_modes(tho2, S_2I)
    a = irreducible_basis(m, order=3)
    b = irreducible_basis(m, order=3)
    assert a.labels == b.labels
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        assert np.array_equal(ta.indices, tb.indices) and np.array_equal(ta.values, tb.values)
