"""Real-space Taylor expansion of a crystal from irreducible derivatives measured in FTGs.

The irreducible derivatives of order ``n`` are measured in a supercell ``S_n`` of the
primitive cell (a finite translation group, FTG; the paper uses 2I for orders 2 and 3 and
the conventional cubic cell S_C for order 4). They fix the ``S_n``-periodic Cartesian
derivative tensor ``Phi_S`` (:meth:`IrreducibleBasis.to_cartesian`). This module spreads
each ``Phi_S`` over the atoms of a larger, commensurate MD cell ``T`` (``T = M S_n``, ``M``
an integer matrix; rows are supercell vectors in the primitive basis, as in
``ase.build.make_supercell``) and returns the polynomial as
:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms`, which runs in LAMMPS as
``pair_style taylor``::

    E_T(u) = sum_n (1/n!) sum_{J_1..J_n} Phi_T(J_1..J_n) u_{J_1} ... u_{J_n}      (eV)

Periodic images (how ``Phi_S`` is distributed)
----------------------------------------------
Every ``S``-atom ``i`` (primitive site ``kappa`` in cell ``l``) has ``r = N_T / N_S`` images
in ``T``. ``Phi_T(J) = w(J) Phi_S(fold J)`` with weights ``w`` chosen so that

* **folding is exact**: for every ``J_1``, ``sum over J_2..J_n folding onto (i_2..i_n)``
  of ``w(J) = 1``. Then an ``S``-periodic displacement gives ``E_T = (N_T/N_S) E_S`` and
  the ``T``-expansion has exactly the measured derivatives at the FTG q-points of ``S``
  (the definition of Fourier interpolation);
* the tensor stays **symmetric** in its slots, invariant under the space group and under
  all primitive translations of ``T``;
* the **acoustic sum rule** holds in ``T`` (``sum_{J_n} Phi_T(J_1..J_n) = 0``), so a
  rigid translation changes neither energy nor forces and the forces sum to zero, as
  for any MLIP trained on the data.

Two schemes are implemented (``images=``):

``"pair"`` (default for ``n = 2``)
    The Wigner-Seitz rule of harmonic Fourier interpolation: ``J_2`` takes the images of
    ``i_2`` nearest to ``J_1`` (the ``S``-lattice translates ``x_{i_2} + S^T m``), ties
    shared equally. ``w(J_1, J_2) = g_{J_1}(J_2)`` is symmetric and the sum rule holds.
    For ``n >= 3`` an anchor atom breaks either the slot symmetry or the sum rule, so this
    rule is refused there.
``"centers"`` (default for ``n >= 3``)
    The cluster is cut out around a *center* ``C``: each slot takes the image of its atom
    nearest to ``C`` (inside the Wigner-Seitz cell of the ``S`` lattice about ``C``), and
    the result is averaged over *views* ``v = (C, d)``::

        Phi_T(J) = Phi_S(fold J) (1/Z) sum_v prod_k g_v(J_k),   Z = (views per cell) N_S/N_prim

    Centers are a set of sites invariant under the space group (default: the orbit of
    the primitive cell's first atom, the Th sites of ThO2). An atom on the boundary of
    the Wigner-Seitz cell has several equidistant images; sharing each such tie equally
    and independently in every slot multiplies the number of terms (``m^k`` for ``k``
    tied slots), so ties are instead broken consistently within a view by an
    infinitesimal shift of the center along a direction ``d`` (the image with the largest
    projection on ``d`` wins), and the views use every point-group image ``R d`` of one
    generic direction (:data:`~anharmbench.hamiltonian.sites.TIE_DIRECTION`): ties are
    shared equally over the views, and the set of views, hence the expansion, is
    invariant under the space group.
    Because a slot's weight depends only on its own atom and the view, the sum over one
    slot's images is 1 in every view: folding, the sum rule and slot symmetry are
    exact. Clusters are compact: all their atoms lie in one Wigner-Seitz cell of the
    ``S`` lattice. (A "minimal total distance from the first atom" rule couples the slots
    through the anchor and breaks the sum rule beyond order 2.)

    Size for ThO2 in 4I (CRG or random invariant derivatives): order 3 from 2I gives
    5.4e6 monomials, order 4 from S_C 1.4e7 (one image per FTG term and translation
    would be 4e5 and 1e6, without the sum rule; all three atomic sites as centers with
    ties shared slot by slot give 1.8e7 and 1.6e8). ``pair_style taylor`` evaluates the
    1.96e7 terms of orders 2-4 (3.1e5 stored, times 64 translations) at ~8.5 steps/s
    on one core (``benchmarks/bench_idmd.py``).

Cost and memory
---------------
Nothing of size ``(3 N_T)^n`` is formed. ``Phi_S`` is made dense in the FTG (small: at
most 5e7 entries, :meth:`IrreducibleBasis.to_cartesian`), its nonzero sorted components
are pushed through the image maps of the centers of one primitive cell, merged, and
reduced to one representative per orbit of the ``G = N_T / N_prim`` primitive
translations of ``T``. The result stores those representatives with the translation
table (:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` ``translations``);
nothing replicates them (the plugin and the numpy evaluator generate the images as
they sum). ThO2 orders 2-4 of CRG in 4I: 0.7 s, a 7 MB file, and the paper profile's
IDMD process peaks at 0.5 GB (``benchmarks/bench_taylor_memory.py``; storing every
translate took 9 s, 449 MB and 3.0 GB).

Modules: the site and image bookkeeping is in :mod:`anharmbench.hamiltonian.sites`, the
check that the expansion folds back onto the FTG derivatives in
:mod:`anharmbench.hamiltonian.folding`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms

from anharmbench.hamiltonian.sites import (
    TIE_DIRECTION,
    ExpansionError,
    SupercellSites,
    _ImageMaps,
    _same_structure,
    check_commensurate,
)
from anharmbench.potentials.monomials import (
    merge_monomials,
    multiplicity_factorials,
    orbit_representatives,
)
from anharmbench.potentials.taylor_cartesian import OrderTerms, TaylorTerms
from anharmbench.structures import supercell_matrix
from anharmbench.symmetry import S_2I, S_C, IrreducibleBasis

__all__ = ["PAPER_FTG", "ExpansionReport", "OrderDerivatives", "expand_order", "taylor_expansion"]

ImageScheme = Literal["auto", "pair", "centers"]

#: The FTG of each order in the paper: 2nd and 3rd order in 2I, 4th order in S_C.
PAPER_FTG: dict[int, np.ndarray] = {
    2: np.array(S_2I, dtype=np.int64),
    3: np.array(S_2I, dtype=np.int64),
    4: np.array(S_C, dtype=np.int64),
}

#: Largest dense FTG tensor formed (entries), as in :meth:`IrreducibleBasis.to_cartesian`.
MAX_DENSE = 5e7


OrderDerivatives = tuple[IrreducibleBasis, np.ndarray]
"""``(basis, values)``: an irreducible basis of one order in its FTG and the ``(K,)``
derivatives ``d_k`` (eV/Angstrom^n) in that basis."""


# ----------------------------------------------------------------- sparse helpers
def _sorted_components(phi: np.ndarray, drop_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero entries of a symmetric tensor with sorted indices as monomials.

    Returns ``(flat (K, n) int64, coefficients (K,))`` with ``c = Phi / prod k_r!``.
    """
    n = phi.ndim
    thr = drop_tol * float(np.abs(phi).max()) if phi.size else 0.0
    nz = np.flatnonzero(np.abs(phi.reshape(-1)) > thr)
    idx = np.stack(np.unravel_index(nz, phi.shape), axis=1).astype(np.int64)
    keep = np.all(idx[:, 1:] >= idx[:, :-1], axis=1) if n > 1 else np.ones(len(idx), bool)
    idx = idx[keep]
    vals = phi.reshape(-1)[nz[keep]]
    return idx, vals / multiplicity_factorials(idx)


def _substitute(
    flat_s: np.ndarray,
    coef: np.ndarray,
    slot_images: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Replace each factor ``v[i a]`` by ``sum_J g(J) u[J a]`` (slot by slot).

    ``slot_images[s] = (start, atom, weight)``: the images of ``S`` atom ``i`` for slot
    ``s`` are ``atom[start[i]:start[i+1]]`` with weights ``weight[...]``.
    """
    K, n = flat_s.shape
    out = np.empty((K, n), dtype=np.int64)
    c = coef.copy()
    cur_flat = flat_s
    for s in range(n):
        start, atom, weight = slot_images[s]
        i = cur_flat[:, s] // 3
        cart = cur_flat[:, s] % 3
        cnt = start[i + 1] - start[i]
        if np.all(cnt == 1):
            pos = start[i]
            out[:, s] = 3 * atom[pos] + cart
            c = c * weight[pos]
            continue
        rep = np.repeat(np.arange(len(c)), cnt)
        offs = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pos = start[i][rep] + offs
        cur_flat = cur_flat[rep]
        out = out[rep]
        out[:, s] = 3 * atom[pos] + cur_flat[:, s] % 3
        c = c[rep] * weight[pos]
    return out, c


def _representatives(
    flat: np.ndarray, coef: np.ndarray, tgt: SupercellSites
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One monomial per translation orbit of ``T``, equal orbits merged.

    The expansion is the sum of the translates of the monomials of one primitive cell
    (``flat``) over the primitive translations of ``T``; it is stored as these
    representatives and the translation table (``G`` times less memory than the
    translates, which coincide for a cluster invariant under a translation of a small
    ``T`` and are then summed, as the full form would).

    Returns
    -------
    tuple of numpy.ndarray
        ``(K, n)`` representatives, ``(K,)`` coefficients, ``(G, N_T)`` translation table.
    """
    table = tgt.translation_table()
    reps = orbit_representatives(flat, table)
    reps, rcoef = merge_monomials(reps, coef, 3 * tgt.natoms)
    return reps, rcoef, table


def _csr(
    owner: np.ndarray, atom: np.ndarray, weight: np.ndarray, n_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n_s)
    start = np.concatenate([[0], np.cumsum(counts)])
    return start, atom[order], weight[order]


# ----------------------------------------------------------------- one order
@dataclass(frozen=True)
class ExpansionReport:
    """What :func:`expand_order` did for one order.

    Attributes
    ----------
    order
        ``n``.
    ftg
        ``(3, 3)`` FTG supercell matrix ``S``.
    scheme
        ``"pair"`` or ``"centers"``.
    ftg_components
        Nonzero sorted components of ``Phi_S`` used.
    n_terms
        Monomials stored: one per translation orbit of ``T``.
    n_translations
        Primitive translations of ``T`` (``G``); the full expansion has about
        ``G * n_terms`` monomials.
    seconds
        Wall time.
    """

    order: int
    ftg: np.ndarray
    scheme: str
    ftg_components: int
    n_terms: int
    n_translations: int
    seconds: float


def expand_order(
    prim: Atoms,
    basis: IrreducibleBasis,
    values: np.ndarray,
    target: str | np.ndarray | Sequence[Sequence[int]],
    *,
    images: ImageScheme = "auto",
    centers: np.ndarray | None = None,
    drop_tol: float = 1e-12,
) -> tuple[OrderTerms, ExpansionReport]:
    """The order-``n`` terms of the expansion in ``T`` from derivatives measured in an FTG.

    Parameters
    ----------
    prim
        Primitive cell at equilibrium (the expansion point; the basis must be built on it).
    basis
        Irreducible basis of order ``n`` in its FTG ``S`` (``irreducible_basis(prim, S, n)``).
    values
        ``(K,)`` float64 irreducible derivatives, eV/Angstrom^n.
    target
        The MD cell ``T``: a name (``"4I"``, ``"3SC"``, ...) or a ``(3, 3)`` integer matrix;
        must satisfy ``T = M S`` with ``M`` integer.
    images
        ``"pair"`` (Wigner-Seitz about the first atom; order 2 only), ``"centers"``
        (Wigner-Seitz about centers, any order) or ``"auto"`` (pair for ``n = 2``, centers
        above). See the module docstring.
    centers
        ``(c, 3)`` fractional coordinates (primitive basis) of the centers of the
        ``"centers"`` scheme, one primitive cell's worth; default the sites equivalent to
        the first atom of ``prim`` (Th in ThO2). Must be invariant under the space group
        (mod lattice vectors) for the expansion to be.
    drop_tol
        FTG components with ``|Phi| <= drop_tol * max |Phi|`` are dropped (round-off of the
        mode-to-Cartesian transformation).

    Returns
    -------
    terms : OrderTerms
        Monomials of order ``n`` on the atoms of ``build_supercell(prim, T)``, one per
        orbit of the primitive translations of ``T`` (sorted factors, each orbit once):
        the expansion is the sum over the translation table
        ``SupercellSites.build(prim, T).translation_table()`` of their translates
        (:class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` with
        ``translations``).
    report : ExpansionReport

    Raises
    ------
    ExpansionError
        Different structure, incommensurate ``T``, wrong number of values, or the pair
        scheme above order 2.
    """
    t0 = time.perf_counter()
    n = int(basis.order)
    T = supercell_matrix(target)
    S = np.asarray(basis.sym.S, dtype=np.int64)
    diff = _same_structure(prim, basis.sym.prim)
    if diff is not None:
        raise ExpansionError(
            f"the order-{n} derivatives were measured on a different primitive cell than the "
            f"one asked for ({diff})"
        )
    check_commensurate(T, S, n)
    vals = np.asarray(values, dtype=float).reshape(-1)
    if vals.shape != (len(basis),):
        raise ExpansionError(
            f"order {n}: {vals.size} derivative values for a basis of {len(basis)} tensors"
        )
    if not np.isfinite(vals).all():
        raise ExpansionError(f"order {n}: the derivative values contain NaN or infinity")
    scheme = ("pair" if n == 2 else "centers") if images == "auto" else images
    if scheme not in ("pair", "centers"):
        raise ExpansionError(f"unknown image scheme {images!r} (auto, pair or centers)")
    if scheme == "pair" and n != 2:
        raise ExpansionError(
            "the pair (first-atom) image rule breaks the acoustic sum rule or the slot "
            f"symmetry at order {n} > 2; use images='centers'"
        )
    n3s = int(basis.modes.shape[0])
    if float(n3s) ** n > MAX_DENSE:
        raise ExpansionError(
            f"order {n} in an FTG of {n3s // 3} atoms needs a dense {n3s}^{n} tensor; "
            "use a smaller FTG for this order"
        )
    ftg = SupercellSites.build(prim, S, basis.sym.supercell)
    tgt = SupercellSites.build(prim, T)
    maps = _ImageMaps(prim, ftg, tgt)
    phi = basis.to_cartesian(vals)
    flat_s, coef_s = _sorted_components(phi, drop_tol)
    n_cells_s = ftg.natoms // len(prim)
    A = np.asarray(prim.cell.array, dtype=float)
    base = 3 * tgt.natoms

    pieces_f: list[np.ndarray] = []
    pieces_c: list[np.ndarray] = []
    if scheme == "pair":
        # E2 = 1/2 sum_{J1} sum_{i2} Phi_S(fold J1, i2) sum_{J2 -> i2} g_{J1}(J2) u_J1 u_J2
        full = np.stack(np.nonzero(np.abs(phi) > drop_tol * np.abs(phi).max()), axis=1)
        for kappa in range(len(prim)):
            i1 = int(ftg.index(np.array(kappa), np.zeros(3, dtype=np.int64)))
            j1 = int(tgt.index(np.array(kappa), np.zeros(3, dtype=np.int64)))
            rows = full[full[:, 0] // 3 == i1]
            owner, atom, weight = maps.images(maps.xprim[kappa] @ A)
            start, img_atom, img_w = _csr(owner, atom, weight, ftg.natoms)
            # slot 0 is J1 itself: S atom i1 -> T atom j1 with weight 1
            first = (
                np.concatenate([np.zeros(i1 + 1, np.int64), np.ones(ftg.natoms - i1, np.int64)]),
                np.array([j1], dtype=np.int64),
                np.ones(1),
            )
            f, c = _substitute(
                rows, 0.5 * phi[rows[:, 0], rows[:, 1]], [first, (start, img_atom, img_w)]
            )
            pieces_f.append(f)
            pieces_c.append(c)
    else:
        if centers is None:
            frac_centers = maps.xprim[np.unique(basis.sym.prim_perm[:, 0])]
        else:
            frac_centers = np.asarray(centers, dtype=float)
        if frac_centers.ndim != 2 or frac_centers.shape[1] != 3 or len(frac_centers) == 0:
            raise ExpansionError("centers must be a non-empty (c, 3) array of fractions")
        rotations = basis.sym.cart_rotations
        directions = rotations @ TIE_DIRECTION
        z = len(frac_centers) * len(directions) * n_cells_s
        for fc in frac_centers:
            # views that give the same image map are evaluated once, with their count
            seen: dict[bytes, int] = {}
            views: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            counts: list[int] = []
            for direction in directions:
                owner, atom, weight = maps.images(fc @ A, direction)
                slot = _csr(owner, atom, weight, ftg.natoms)
                key = b"".join(x.tobytes() for x in slot)
                if key not in seen:
                    seen[key] = len(views)
                    views.append(slot)
                    counts.append(0)
                counts[seen[key]] += 1
            for slot, cnt in zip(views, counts, strict=True):
                f, c = _substitute(flat_s, coef_s * (cnt / z), [slot] * n)
                pieces_f.append(f)
                pieces_c.append(c)
    home_f, home_c = merge_monomials(np.concatenate(pieces_f), np.concatenate(pieces_c), base)
    flat_t, coef_t, table = _representatives(home_f, home_c, tgt)
    keep = coef_t != 0.0
    flat_t, coef_t = flat_t[keep], coef_t[keep]
    terms = OrderTerms.from_flat(flat_t, coef_t)
    report = ExpansionReport(
        order=n,
        ftg=S.copy(),
        scheme=scheme,
        ftg_components=len(coef_s),
        n_terms=len(coef_t),
        n_translations=len(table),
        seconds=time.perf_counter() - t0,
    )
    return terms, report


# ----------------------------------------------------------------- all orders
def taylor_expansion(
    prim: Atoms,
    derivatives: Mapping[int, OrderDerivatives],
    target: str | np.ndarray | Sequence[Sequence[int]],
    *,
    require_orders: Sequence[int] | None = None,
    expected_ftg: Mapping[int, np.ndarray | Sequence[Sequence[int]] | str] | None = None,
    images: ImageScheme = "auto",
    centers: np.ndarray | None = None,
    drop_tol: float = 1e-12,
    reports: list[ExpansionReport] | None = None,
) -> TaylorTerms:
    """Taylor-series Hamiltonian of the MD cell ``T`` from derivatives of several orders.

    Parameters
    ----------
    prim
        Primitive cell at equilibrium on the surface the derivatives come from.
    derivatives
        ``{n: (basis_n, values_n)}``, each basis in its own FTG ``S_n`` of ``prim``.
    target
        The MD cell (name or ``(3, 3)`` integer matrix), commensurate with every ``S_n``.
    require_orders
        Orders that must be present (e.g. ``(2, 3, 4)``); a missing one is an error.
    expected_ftg
        ``{n: S}``: refuse derivatives of order ``n`` measured in another FTG (lattice
        equality: ``S_n S^-1`` unimodular). E.g. :data:`PAPER_FTG`.
    images, centers, drop_tol
        See :func:`expand_order`.
    reports
        If given, one :class:`ExpansionReport` per order is appended.

    Returns
    -------
    TaylorTerms
        About ``build_supercell(prim, T)`` (its symbols, positions and cell), orders
        sorted, one monomial per orbit of the primitive translations of ``T`` with their
        table (``translations``; :meth:`TaylorTerms.expanded` gives every translate).

    Raises
    ------
    ExpansionError
        Before any work: a missing order, an order key that disagrees with its basis, a
        basis of another structure or FTG, or a ``T`` not commensurate with some ``S_n``.
    """
    T = supercell_matrix(target)
    if not derivatives:
        raise ExpansionError("no derivatives given")
    missing = sorted(set(require_orders or ()) - set(derivatives))
    if missing:
        raise ExpansionError(
            f"derivatives of order(s) {missing} are missing (given: {sorted(derivatives)})"
        )
    for n, (basis, values) in sorted(derivatives.items()):
        if int(basis.order) != int(n):
            raise ExpansionError(
                f"derivatives keyed as order {n} have a basis of order {basis.order}"
            )
        diff = _same_structure(prim, basis.sym.prim)
        if diff is not None:
            raise ExpansionError(
                f"the order-{n} derivatives were measured on a different primitive cell ({diff})"
            )
        S = np.asarray(basis.sym.S, dtype=np.int64)
        if expected_ftg is not None and n in expected_ftg:
            E = (
                supercell_matrix(expected_ftg[n])
                if isinstance(expected_ftg[n], str)
                else (np.asarray(expected_ftg[n], dtype=np.int64))
            )
            U = S @ np.linalg.inv(E)
            if not (np.allclose(U, np.rint(U), atol=1e-8) and abs(round(np.linalg.det(U))) == 1):
                raise ExpansionError(
                    f"the order-{n} derivatives were measured in the FTG S = {S.tolist()}, "
                    f"not in the expected {E.tolist()}"
                )
        check_commensurate(T, S, n)
        if np.asarray(values).size != len(basis):
            raise ExpansionError(
                f"order {n}: {np.asarray(values).size} values for a basis of {len(basis)} tensors"
            )
    tgt = SupercellSites.build(prim, T)
    orders: dict[int, OrderTerms] = {}
    for n, (basis, values) in sorted(derivatives.items()):
        terms, report = expand_order(
            prim, basis, values, T, images=images, centers=centers, drop_tol=drop_tol
        )
        orders[int(n)] = terms
        if reports is not None:
            reports.append(report)
    return TaylorTerms.from_atoms(tgt.atoms, orders, translations=tgt.translation_table())
