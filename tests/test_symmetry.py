"""Space group in a supercell, FTG q-points and the symmetrized displacement basis."""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from anharmbench.symmetry import (
    S_2I,
    S_C,
    S_PRIM,
    SupercellSymmetry,
    SymmetrizedModes,
    irreducible_basis,
    symmetrized_modes,
)
from anharmbench.symmetry._threads import single_blas_thread
from anharmbench.symmetry.linalg import canonical_basis
from anharmbench.symmetry.modes import MODES_CACHE_SIZE, _cached_modes, clear_modes_cache


@pytest.fixture(scope="module")
def tho2() -> Atoms:
    return bulk("ThO2", "fluorite", a=5.6)


@pytest.fixture(scope="module")
def sym_c(tho2: Atoms) -> SupercellSymmetry:
    return SupercellSymmetry(tho2, S_C)


@pytest.fixture(scope="module")
def sym_2i(tho2: Atoms) -> SupercellSymmetry:
    return SupercellSymmetry(tho2, S_2I)


# ----------------------------------------------------------------------------- the group
@pytest.mark.parametrize(
    ("S", "n_atoms", "order"),
    [(S_PRIM, 3, 48), (S_C, 12, 192), (S_2I, 24, 384)],
)
def test_group_sizes(tho2: Atoms, S: list, n_atoms: int, order: int) -> None:
    sym = SupercellSymmetry(tho2, S)
    assert sym.n_atoms == n_atoms == len(sym.supercell)
    assert sym.n_ops == 48
    assert sym.order == order == sym.perms.shape[0]


def test_permutations_map_positions(sym_c: SupercellSymmetry) -> None:
    """perm[g, a] sits at R x_a + tau + t modulo the supercell lattice."""
    frac = sym_c.supercell.positions @ np.linalg.inv(sym_c.lattice)
    Sinv = np.linalg.inv(sym_c.S.astype(float))
    for g in range(sym_c.order):
        i, t = sym_c.element(g)
        img = frac @ sym_c.rotations[i].T + sym_c.translations[i] + t
        d = (img - frac[sym_c.perms[g]]) @ Sinv
        assert np.allclose(d, np.rint(d), atol=1e-8)


def test_group_closed_and_matrices_orthogonal(sym_c: SupercellSymmetry) -> None:
    rng = np.random.default_rng(0)
    codes = {p.tobytes() for p in sym_c.perms}
    assert len(codes) == sym_c.order
    for _ in range(20):
        a, b = (int(x) for x in rng.integers(sym_c.order, size=2))
        assert sym_c.perms[a][sym_c.perms[b]].tobytes() in codes
        G = sym_c.matrix(a)
        assert abs(G @ G.T - np.eye(3 * sym_c.n_atoms)).max() < 1e-12
        u = rng.normal(size=(sym_c.n_atoms, 3))
        assert np.allclose(sym_c.apply(a, u).ravel(), G @ u.ravel())


def test_singular_supercell_raises(tho2: Atoms) -> None:
    with pytest.raises(ValueError, match="singular"):
        SupercellSymmetry(tho2, [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ValueError, match="3x3"):
        SupercellSymmetry(tho2, [[1, 0], [0, 1]])


def test_non_preserving_supercell_warns_and_keeps_subgroup(tho2: Atoms) -> None:
    with pytest.warns(UserWarning, match="do not preserve"):
        sym = SupercellSymmetry(tho2, np.diag([1, 1, 2]))
    assert sym.n_ops < 48 and 48 % sym.n_ops == 0
    ST = sym.S.T.astype(float)
    for r in sym.rotations:
        m = np.linalg.solve(ST, r @ ST)
        assert np.allclose(m, np.rint(m))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SupercellSymmetry(tho2, S_C)  # cubic cell: no warning


def test_ftg_qpoints_and_stars(sym_2i: SupercellSymmetry, sym_c: SupercellSymmetry) -> None:
    assert len(sym_2i.qpoints) == 8
    assert sorted((n, len(s)) for n, s in zip(sym_2i.star_names, sym_2i.stars, strict=True)) == [
        ("G", 1),
        ("L", 4),
        ("X", 3),
    ]
    assert sorted(sym_c.star_names) == ["G", "X"]
    # commensurability: S q integer
    for q in sym_2i.qpoints:
        assert np.allclose(sym_2i.S @ q, np.rint(sym_2i.S @ q))
    assert sym_c.find_qpoint([0.5, 0.5, 0.5]) is None  # L not in the S_C FTG
    assert sym_2i.find_qpoint([0.5, 0.5, 0.5]) is not None
    with pytest.raises(ValueError, match="not commensurate"):
        sym_c.qpoint_index("L")


def test_4i_stars_named(tho2: Atoms) -> None:
    sym = SupercellSymmetry(tho2, 4)
    assert sum(len(s) for s in sym.stars) == 64
    for name in ("G", "X", "L", "W"):
        assert name in sym.star_names
    assert any(n.startswith("(") for n in sym.star_names)  # others as fractions


# ----------------------------------------------------------------------------- modes
@pytest.mark.parametrize("S", [S_PRIM, S_C, S_2I])
def test_modes_orthonormal_translation_free_and_invariant(tho2: Atoms, S: list) -> None:
    modes = symmetrized_modes(tho2, S)
    sym = modes.sym
    U = modes.modes
    assert U.shape == (3 * sym.n_atoms, 3 * sym.n_atoms - 3)
    assert abs(U.T @ U - np.eye(U.shape[1])).max() < 1e-12
    assert abs(sym.translation_vectors().T @ U).max() < 1e-12
    assert sum(b.dim for b in modes.blocks) == U.shape[1]
    rng = np.random.default_rng(1)
    for g in rng.integers(sym.order, size=8):
        G = sym.matrix(int(g))
        for b in modes.blocks:
            B = U[:, b.slice]
            GB = G @ B
            assert abs(GB - B @ (B.T @ GB)).max() < 1e-12  # block is G-invariant


def test_prim_labels(tho2: Atoms) -> None:
    modes = symmetrized_modes(tho2, S_PRIM)
    assert modes.labels == ["G:T2g", "G:T1u"]
    assert [b.dim for b in modes.blocks] == [3, 3]


def test_2i_labels(tho2: Atoms) -> None:
    modes = symmetrized_modes(tho2, S_2I)
    labels = modes.labels
    for expected in ("G:T2g", "G:T1u", "X:A2u", "L:Eg", "X:Eg"):
        assert expected in labels
    assert any(lab.startswith("X:Eu") for lab in labels)
    assert any(lab.startswith("L:Eu") for lab in labels)
    # dimensions: star size x little-group irrep dimension
    for b in modes.blocks:
        irrep = b.irrep
        d = 2 if irrep.startswith("E") else (3 if irrep.startswith("T") else 1)
        assert b.dim == len(b.qpoints) * d


def test_modes_deterministic(tho2: Atoms) -> None:
    a = SymmetrizedModes(SupercellSymmetry(tho2, S_2I), seed=0).modes
    b = SymmetrizedModes(SupercellSymmetry(tho2, S_2I), seed=0).modes
    assert np.array_equal(a, b)


def test_modes_cache_is_bounded_shared_and_read_only(tho2: Atoms) -> None:
    """The cache of :func:`symmetrized_modes` hands one read-only object to every caller,
    keeps its own copy of the cell, holds at most MODES_CACHE_SIZE supercells and can be
    emptied."""
    clear_modes_cache()
    prim = tho2.copy()
    a = symmetrized_modes(prim, S_PRIM)
    assert symmetrized_modes(prim, S_PRIM) is a
    assert symmetrized_modes(prim, np.array(S_PRIM)) is a
    for array in (a.modes, a.blocks[0].E, a.blocks[0].qpoints, a.sym.rotations,
                  *a.mtable(a.blocks[0])):
        with pytest.raises(ValueError, match="read-only"):
            array[(0,) * array.ndim] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.blocks[0].start = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.blocks[0].qpos[0] = 1  # type: ignore[index]
    before = a.modes.copy()
    prim.positions += 0.3  # the caller's cell changes, the cached modes do not
    assert a.sym.prim is not prim and np.array_equal(a.modes, before)
    assert symmetrized_modes(prim, S_PRIM) is not a  # another key
    for seed in range(1, MODES_CACHE_SIZE + 1):
        symmetrized_modes(tho2, S_PRIM, seed=seed)
    assert _cached_modes.cache_info().currsize == MODES_CACHE_SIZE
    assert symmetrized_modes(tho2, S_PRIM, seed=MODES_CACHE_SIZE) is symmetrized_modes(
        tho2, S_PRIM, seed=MODES_CACHE_SIZE)
    clear_modes_cache()
    assert _cached_modes.cache_info().currsize == 0
    assert np.array_equal(symmetrized_modes(tho2, S_PRIM).modes, before)


def test_single_blas_thread_restores_after_overlapping_blocks() -> None:
    """Blocks closed out of order (as two threads may) keep BLAS at one thread until the
    last closes, then restore the count they found, also after an exception."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    start = counts()
    if not start or min(start) < 2:
        pytest.skip("no BLAS running more than one thread")
    first, second = single_blas_thread(), single_blas_thread()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert counts() == [1] * len(start)  # the second block is still open
    second.__exit__(None, None, None)
    assert counts() == start
    with pytest.raises(RuntimeError), single_blas_thread():
        raise RuntimeError
    assert counts() == start


def test_2i_second_order_count_from_irrep_multiplicities(tho2: Atoms) -> None:
    """Harmonic count = sum over (star, irrep) of m(m+1)/2 (real q: 2q = 0 in 2I)."""
    modes = symmetrized_modes(tho2, S_2I)
    assert (2 * modes.sym.qn % modes.sym.n_cells == 0).all()
    mult = Counter((b.star, b.irrep) for b in modes.blocks)
    expected = sum(m * (m + 1) // 2 for m in mult.values())
    # Gamma 2 (T1u, T2g) + L 8 (A1g, 2 A2u, Eg, 2 Eu) + X 7 (A1g, A2u, B2u, Eg, 2 Eu)
    assert expected == 17
    assert len(irreducible_basis(modes, order=2)) == expected


def test_canonical_basis_is_basis_independent() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 3))
    Q1 = canonical_basis(X)
    Q2 = canonical_basis(X @ rng.normal(size=(3, 3)))
    assert np.allclose(Q1, Q2, atol=1e-12)
    assert np.allclose(Q1.T @ Q1, np.eye(3))
    Z = rng.normal(size=(6, 2)) + 1j * rng.normal(size=(6, 2))
    W = canonical_basis(Z)
    assert np.allclose(W, canonical_basis(Z @ (rng.normal(size=(2, 2)) + 1j)), atol=1e-12)
