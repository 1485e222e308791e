"""Taylor-series (polynomial) Hamiltonians in Cartesian atomic displacements.

A :class:`TaylorTerms` is the energy of a periodic cell as a polynomial in the
displacements ``u_i = x_i - xref_i`` (Angstrom) of its atoms from a reference
structure::

    E(u) = sum_n sum_k c_nk * prod_{j=1..n} u[q_nkj]          (eV)

where ``q = 3 * atom + cart`` flattens an (atom, Cartesian direction) pair and
``c_nk`` is in eV/Angstrom^n. Each term is a *monomial*: a multiset of ``n`` index
pairs with one coefficient. In the canonical form (:meth:`TaylorTerms.canonical`,
always used by :meth:`TaylorTerms.write`) the ``n`` flat indices of a term are sorted,
each distinct multiset appears once, and the coefficient already holds the ``1/n!``
and multiplicity factors of the symmetric derivative tensor::

    c_m = Phi_m / prod_r (k_r!)      for a multiset m whose distinct indices repeat k_r times

with ``Phi`` the symmetric n-th derivative of the energy, so that
``E = sum_n (1/n!) Phi^(n) u^n`` (:meth:`TaylorTerms.from_tensors` and
:meth:`TaylorTerms.to_tensor` convert). The displacement of an atom is the lattice
image of ``x_i - xref_i`` nearest in fractional coordinates, so atoms may cross the
periodic boundary.

It is the one Taylor-series evaluator of the package. Its sources are dense symmetric
derivative tensors (:meth:`TaylorTerms.from_tensors`), irreducible derivatives of a small
cell (:meth:`TaylorTerms.from_irreducible`) and the real-space expansion of a crystal
(:func:`anharmbench.hamiltonian.taylor_expansion`). Its consumers:

* :meth:`TaylorTerms.write` / :meth:`TaylorTerms.read`: the binary file read by the
  LAMMPS pair style ``taylor`` (``plugins/taylor``; format in ``plugins/README.md``
  and :data:`~anharmbench.potentials.taylor_file.FORMAT_DOC`);
* :class:`~anharmbench.potentials.taylor_calculators.CartesianTaylorCalculator`: an
  independent numpy ASE calculator;
* :meth:`TaylorTerms.energies_forces`: a batch evaluator of displacements, as
  :func:`anharmbench.derivatives.measure` takes it (a surface with known derivatives);
* :func:`~anharmbench.potentials.taylor_calculators.taylor_potential`: the
  :class:`~anharmbench.potentials.LammpsPotential` that runs the file in LAMMPS
  (``pair_style taylor``).

Lattice translations
--------------------
A Hamiltonian of a supercell of ``G`` primitive cells that is invariant under the
lattice translations holds each monomial ``G`` times, once per translate. A
:class:`TaylorTerms` may hold one *representative* per translation orbit instead, with
the ``(G, N)`` table of the translations (``translations[g, J]`` = the atom onto which
atom ``J`` is moved)::

    E(u) = sum_n sum_g sum_k c_nk * prod_j u[3 translations[g, atom_kj] + cart_kj]

which is ``G`` times smaller in memory and on file (a 4I expansion: 64 translations).
:meth:`TaylorTerms.expanded` gives the full form; both evaluators (numpy and the
plugin) generate the images on the fly.

Stress convention (both implementations): the reference lattice is strained with the
cell, so ``u -> (1 + eps) u`` and ``stress = (1/V) dE/d(eps)
= -(1/V) sym(sum_i u_i (x) f_i)`` (ASE sign, eV/Angstrom^3). It vanishes at ``u = 0``
and does not depend on the choice of origin.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from anharmbench.potentials.monomials import (
    check_translations,
    flat_translation_table,
    merge_monomials,
    multiplicity_factorials,
    orbit_representatives,
)
from anharmbench.potentials.taylor_file import (
    MAX_ORDER,
    TaylorFileContent,
    TaylorFormatError,
    element_names,
    read_symbols,
    read_taylor_file,
    write_taylor_file,
)

__all__ = [
    "CartesianBasis",
    "OrderTerms",
    "TaylorFormatError",
    "TaylorTerms",
    "read_symbols",
]


class OrderTerms(NamedTuple):
    """The terms of one order ``n``.

    Attributes
    ----------
    indices
        ``(K, n, 2)`` int64: ``(atom, cart)`` of each factor, atom 0-based, cart 0..2.
    coefficients
        ``(K,)`` float64 monomial coefficients, eV/Angstrom^n.
    """

    indices: np.ndarray
    coefficients: np.ndarray

    @classmethod
    def from_flat(cls, flat: np.ndarray, coefficients: np.ndarray) -> OrderTerms:
        """Terms from ``(K, n)`` flat indices ``3 * atom + cart`` and their coefficients.

        Writes the ``(atom, cart)`` pairs in place (no ``np.stack`` of two temporaries:
        that took ~10 s for the ~20 million terms of a 4I expansion).
        """
        flat = np.asarray(flat, dtype=np.int64)
        indices = np.empty((*flat.shape, 2), dtype=np.int64)
        np.floor_divide(flat, 3, out=indices[..., 0])
        np.remainder(flat, 3, out=indices[..., 1])
        return cls(indices, coefficients)


class CartesianBasis(Protocol):
    """A basis of irreducible derivatives that expands them to a dense Cartesian tensor
    (as :class:`anharmbench.symmetry.IrreducibleBasis` does)."""

    @property
    def order(self) -> int:
        """The derivative order ``n``."""
        ...

    def __len__(self) -> int:
        """Number of irreducible derivatives ``K``."""
        ...

    def to_cartesian(self, d: np.ndarray) -> np.ndarray:
        """Dense ``(3N,) * n`` tensor (eV/Angstrom^n) of the ``(K,)`` derivatives ``d``."""
        ...


@dataclass(frozen=True, eq=False)
class TaylorTerms:
    """A polynomial energy in the displacements of the atoms of one periodic cell.

    Parameters
    ----------
    symbols
        Chemical symbol of each of the ``N`` atoms.
    reference
        ``(N, 3)`` reference positions, Angstrom (Cartesian, frame of ``cell``).
    cell
        ``(3, 3)`` cell, rows are the lattice vectors, Angstrom.
    orders
        ``{n: OrderTerms}``: the monomials of each order ``n >= 1`` (see the module
        docstring for the meaning of the coefficients).
    translations
        ``(G, N)`` int table of lattice translations of the cell (row ``g``: the atom
        onto which each atom is moved), a group; every monomial stands for the sum of its
        ``G`` translates (see the module docstring). Default: the identity alone.
    """

    symbols: tuple[str, ...]
    reference: np.ndarray
    cell: np.ndarray
    orders: dict[int, OrderTerms]
    translations: np.ndarray | None = None

    def __post_init__(self) -> None:
        symbols = tuple(str(s) for s in self.symbols)
        reference = np.array(self.reference, dtype=float)
        cell = np.array(self.cell, dtype=float)
        n_atoms = len(symbols)
        if n_atoms == 0:
            raise TaylorFormatError("a Taylor model needs at least one atom")
        for s in set(symbols):
            if s not in atomic_numbers:
                raise TaylorFormatError(f"unknown element {s!r}")
        if reference.shape != (n_atoms, 3):
            raise TaylorFormatError(
                f"reference positions have shape {reference.shape}, expected ({n_atoms}, 3)"
            )
        if cell.shape != (3, 3) or not np.isfinite(cell).all():
            raise TaylorFormatError(f"cell must be a finite (3, 3) array, got {cell.tolist()}")
        if abs(np.linalg.det(cell)) < 1e-8:
            raise TaylorFormatError(f"the cell {cell.tolist()} is degenerate")
        if not np.isfinite(reference).all():
            raise TaylorFormatError("reference positions contain NaN or infinite values")
        if self.translations is None:
            table = np.arange(n_atoms, dtype=np.int64)[None, :]
        else:
            table = np.array(self.translations, dtype=np.int64)
            check_translations(table, symbols, reference, cell)
        orders: dict[int, OrderTerms] = {}
        for n, terms in sorted(dict(self.orders).items()):
            n = int(n)
            idx, coef = terms
            idx = np.asarray(idx, dtype=np.int64)
            coef = np.asarray(coef, dtype=float).reshape(-1)
            if not 1 <= n <= MAX_ORDER:
                raise TaylorFormatError(f"order {n} is outside 1..{MAX_ORDER}")
            if idx.size == 0:
                idx = idx.reshape(0, n, 2)
            if idx.shape != (len(coef), n, 2):
                raise TaylorFormatError(
                    f"order {n}: indices have shape {idx.shape}, expected ({len(coef)}, {n}, 2)"
                )
            if idx.size and (
                idx[..., 0].min() < 0
                or idx[..., 0].max() >= n_atoms
                or idx[..., 1].min() < 0
                or idx[..., 1].max() > 2
            ):
                raise TaylorFormatError(
                    f"order {n}: atom indices must lie in 0..{n_atoms - 1} and Cartesian "
                    "indices in 0..2"
                )
            if not np.isfinite(coef).all():
                raise TaylorFormatError(f"order {n}: non-finite coefficients")
            orders[n] = OrderTerms(idx, coef)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "translations", table)

    # ----------------------------------------------------------- structure
    @property
    def natoms(self) -> int:
        """Number of atoms ``N``."""
        return len(self.symbols)

    @property
    def n_translations(self) -> int:
        """Number ``G`` of translations each stored monomial stands for."""
        assert self.translations is not None  # set in __post_init__
        return len(self.translations)

    @property
    def elements(self) -> tuple[str, ...]:
        """Distinct element names in order of first appearance (the file's name table)."""
        return element_names(self.symbols)

    def n_terms(self) -> dict[int, int]:
        """Number of stored terms of each order (one per translation orbit when ``G > 1``)."""
        return {n: len(t.coefficients) for n, t in self.orders.items()}

    def flat_indices(self, n: int) -> np.ndarray:
        """``(K, n)`` flat indices ``3 * atom + cart`` of the stored terms of order ``n``."""
        idx = self.orders[n].indices
        return idx[..., 0] * 3 + idx[..., 1]

    @classmethod
    def from_atoms(
        cls,
        atoms: Atoms,
        orders: dict[int, OrderTerms] | None = None,
        translations: np.ndarray | None = None,
    ) -> TaylorTerms:
        """Terms about the structure ``atoms`` (its symbols, positions and cell)."""
        return cls(
            symbols=tuple(atoms.get_chemical_symbols()),
            reference=np.array(atoms.positions, dtype=float),
            cell=np.array(atoms.cell.array, dtype=float),
            orders=dict(orders or {}),
            translations=translations,
        )

    def with_orders(self, orders: dict[int, OrderTerms]) -> TaylorTerms:
        """The same structure and translations with other terms."""
        return TaylorTerms(self.symbols, self.reference, self.cell, orders, self.translations)

    def atoms(self) -> Atoms:
        """The reference structure as periodic ``ase.Atoms``."""
        return Atoms(self.symbols, positions=self.reference, cell=self.cell, pbc=True)

    def expanded(self, orders: tuple[int, ...] | None = None) -> TaylorTerms:
        """The same polynomial with every translate stored (``G = 1``), canonical.

        Parameters
        ----------
        orders
            Only these orders (default all). Memory grows ``G`` times: meant for small
            cells, one order at a time, or for comparisons.
        """
        table3 = flat_translation_table(self.translations)
        base = 3 * self.natoms
        out: dict[int, OrderTerms] = {}
        for n in self.orders if orders is None else orders:
            if n not in self.orders:
                continue
            flat = self.flat_indices(n)
            coef = self.orders[n].coefficients
            every = table3[:, flat].reshape(-1, n)
            merged, summed = merge_monomials(every, np.tile(coef, len(table3)), base)
            keep = summed != 0.0
            out[n] = OrderTerms.from_flat(merged[keep], summed[keep])
        return TaylorTerms(self.symbols, self.reference, self.cell, out)

    # ----------------------------------------------------- canonical form
    def canonical(self, *, drop_zeros: bool = True) -> TaylorTerms:
        """Canonical form: one sorted term per translation orbit of multisets, terms sorted.

        The polynomial is unchanged: each term is replaced by its orbit's representative
        (:func:`orbit_representatives`; with ``G = 1`` the sorted term itself) and
        coefficients of equal terms are added.
        """
        return self.with_orders({n: OrderTerms.from_flat(flat, coef) for n, (flat, coef)
                                 in self._canonical_flat(drop_zeros).items()})

    def _canonical_flat(self, drop_zeros: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{n: (flat indices (K, n), coefficients (K,))}`` of the canonical form."""
        out = {}
        for n in self.orders:
            flat = orbit_representatives(self.flat_indices(n), self.translations)
            uniq, summed = merge_monomials(flat, self.orders[n].coefficients, 3 * self.natoms)
            if drop_zeros:
                keep = summed != 0.0
                uniq, summed = uniq[keep], summed[keep]
            out[n] = (uniq, summed)
        return out

    @classmethod
    def from_tensors(
        cls, atoms: Atoms, tensors: dict[int, np.ndarray], *, atol: float = 0.0
    ) -> TaylorTerms:
        """Terms from dense symmetric derivative tensors (small cells only).

        Parameters
        ----------
        atoms
            Reference structure.
        tensors
            ``{n: Phi}`` with ``Phi`` of shape ``(3N,) * n`` or ``(N, 3) * n``, the n-th
            derivatives of the energy, eV/Angstrom^n; ``E = sum_n Phi u^n / n!``. Only
            the entries with sorted indices are read (``Phi`` is taken as symmetric).
        atol
            Entries with ``|Phi| <= atol`` are dropped.
        """
        n3 = 3 * len(atoms)
        orders: dict[int, OrderTerms] = {}
        for n, phi in tensors.items():
            phi = np.asarray(phi, dtype=float).reshape((n3,) * n)
            combos = np.array(
                list(itertools.combinations_with_replacement(range(n3), n)), dtype=np.int64
            ).reshape(-1, n)
            values = phi[tuple(combos.T)]
            coef = values / multiplicity_factorials(combos)
            keep = np.abs(values) > atol
            combos, coef = combos[keep], coef[keep]
            orders[int(n)] = OrderTerms.from_flat(combos, coef)
        return cls.from_atoms(atoms, orders)

    @classmethod
    def from_irreducible(
        cls,
        atoms: Atoms,
        bases: Mapping[int, CartesianBasis],
        coefficients: Mapping[int, np.ndarray],
        *,
        atol: float = 0.0,
    ) -> TaylorTerms:
        """Terms from irreducible derivatives measured in the cell of ``atoms`` (small cells).

        ``E(u) = sum_n (1/n!) Phi_n u^n`` with ``Phi_n = bases[n].to_cartesian(d_n)``:
        the Taylor series whose irreducible derivatives are ``coefficients`` (a surface
        with known derivatives, for exact-recovery tests).

        Parameters
        ----------
        atoms
            Reference structure, the cell the bases were built for (``3N`` rows of modes).
        bases
            Basis of each order, keyed by order (only the orders of ``coefficients`` are
            used).
        coefficients
            ``(K_n,)`` irreducible derivatives (eV/Angstrom^n) keyed by order ``n``.
        atol
            Cartesian entries with ``|Phi| <= atol`` are dropped (:meth:`from_tensors`).

        Raises
        ------
        ValueError
            When an order has no basis, or the number of coefficients or the size of a
            basis's tensor does not match.
        """
        n3 = 3 * len(atoms)
        tensors: dict[int, np.ndarray] = {}
        for n in sorted(coefficients):
            if n not in bases:
                raise ValueError(
                    f"coefficients of order {n} but no basis of that order: pass bases[{n}]"
                )
            d = np.asarray(coefficients[n], dtype=float)
            if d.shape != (len(bases[n]),):
                raise ValueError(
                    f"order {n}: {d.shape} coefficients for a basis of {len(bases[n])} tensors"
                )
            phi = np.asarray(bases[n].to_cartesian(d), dtype=float)
            if phi.shape != (n3,) * n:
                raise ValueError(
                    f"order {n}: the basis gives a tensor of shape {phi.shape} for "
                    f"{len(atoms)} atoms, expected {(n3,) * n}; build the bases for this cell"
                )
            tensors[int(n)] = phi
        return cls.from_tensors(atoms, tensors, atol=atol)

    def to_tensor(self, n: int) -> np.ndarray:
        """Dense symmetric n-th derivative tensor ``(3N,) * n`` (eV/Angstrom^n; small cells)."""
        n3 = 3 * self.natoms
        phi = np.zeros((n3,) * n)
        if n not in self.orders:
            return phi
        full = self.expanded((n,))
        flat = full.flat_indices(n)
        values = full.orders[n].coefficients * multiplicity_factorials(flat)
        for p in itertools.permutations(range(n)):
            phi[tuple(flat[:, list(p)].T)] = values
        return phi

    # ---------------------------------------------------------- evaluation
    def displacements(self, positions: np.ndarray) -> np.ndarray:
        """``(N, 3)`` displacements (Angstrom) of ``positions`` from the reference.

        Each is the lattice image of ``x_i - xref_i`` nearest in fractional
        coordinates (the same rule as the LAMMPS pair style).
        """
        d = np.asarray(positions, dtype=float) - self.reference
        frac = d @ np.linalg.inv(self.cell)
        frac -= np.rint(frac)
        return frac @ self.cell

    def energy_and_gradient(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and gradient ``dE/du`` ``(N, 3)`` (eV/Angstrom) at displacements ``u``.

        Each stored term is evaluated once per translation ``g`` on the displacements
        seen from it, ``u_g = u[table_g]``; its gradient goes back to the moved atoms.
        """
        uf = np.asarray(u, dtype=float).reshape(-1)
        if uf.shape != (3 * self.natoms,):
            raise ValueError(f"displacements have {uf.size} entries, expected {3 * self.natoms}")
        energy, grad = self._energies_gradients(uf[None])
        return float(energy[0]), grad[0].reshape(self.natoms, 3)

    def energies_forces(self, displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies and forces of a batch of displacements from the reference.

        The batch evaluator of :func:`anharmbench.derivatives.measure`. Displacements are
        taken as given (no lattice image is chosen: see :meth:`displacements`); the result
        of a configuration does not depend on the batch it is evaluated in.

        Parameters
        ----------
        displacements
            ``(n, N, 3)`` float64 displacements, Angstrom.

        Returns
        -------
        energies : numpy.ndarray
            ``(n,)`` float64, eV.
        forces : numpy.ndarray
            ``(n, N, 3)`` float64, eV/Angstrom.
        """
        u = np.asarray(displacements, dtype=float)
        if u.ndim != 3 or u.shape[1:] != (self.natoms, 3):
            raise ValueError(
                f"displacements have shape {u.shape}, expected (n, {self.natoms}, 3)"
            )
        energies, grad = self._energies_gradients(u.reshape(len(u), -1))
        return energies, -grad.reshape(u.shape)

    #: Bytes of per-term work arrays per chunk of configurations in a batch.
    _CHUNK_BYTES = 64 * 2**20

    def _energies_gradients(self, uf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies ``(C,)`` and gradients ``(C, 3N)`` of flat displacements ``(C, 3N)``.

        Configurations are evaluated in chunks that bound the ``(chunk, K, n)`` work
        arrays. Within a configuration the terms are summed in the same order whatever the
        chunk (bincount: numpy's row sums and BLAS change their order with the shape), so
        results do not depend on the batching.
        """
        n_conf, n3 = uf.shape
        energies = np.zeros(n_conf)
        grad = np.zeros((n_conf, n3))
        table3 = flat_translation_table(self.translations)
        for n, terms in self.orders.items():
            coef = terms.coefficients
            if not len(coef):
                continue
            flat = self.flat_indices(n)
            step = max(1, self._CHUNK_BYTES // (8 * 4 * len(coef) * (n + 1)))
            for a in range(0, n_conf, step):
                block = np.ascontiguousarray(uf[a : a + step])
                size = len(block)
                # bincount target of (configuration, index) in a (size, 3N) block
                targets = (np.arange(size)[:, None, None] * n3 + flat[None]).reshape(-1)
                rows = np.repeat(np.arange(size), len(coef))  # configuration of each term
                for moved in table3:  # a permutation: no index repeats in grad[:, moved]
                    seen = block[:, moved]
                    # factor s of every term, (size, K) each; prefix[s] = f_0 ... f_s
                    factors = [seen[:, flat[:, s]] for s in range(n)]
                    prefix = [factors[0]]
                    for f in factors[1:]:
                        prefix.append(prefix[-1] * f)
                    energies[a : a + size] += np.bincount(
                        rows, weights=(prefix[-1] * coef).reshape(-1), minlength=size
                    )
                    # d/du of slot s: coef * (f_0 ... f_{s-1}) * (f_{s+1} ... f_{n-1})
                    partial = np.empty((size, len(coef), n))
                    suffix = None
                    for s in range(n - 1, -1, -1):
                        part = coef if s == 0 else coef * prefix[s - 1]
                        partial[:, :, s] = part if suffix is None else part * suffix
                        suffix = factors[s] if suffix is None else factors[s] * suffix
                    grad[a : a + size, moved] += np.bincount(
                        targets, weights=partial.reshape(-1), minlength=size * n3
                    ).reshape(size, n3)
        return energies, grad

    def evaluate(self, positions: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy, forces and stress at ``(N, 3)`` positions (Angstrom).

        Returns
        -------
        energy : float
            eV.
        forces : numpy.ndarray
            ``(N, 3)``, eV/Angstrom.
        stress : numpy.ndarray
            ``(6,)`` Voigt (xx, yy, zz, yz, xz, xy), eV/Angstrom^3, ASE sign:
            ``-(1/V) sym(sum_i u_i (x) f_i)``.
        """
        u = self.displacements(positions)
        energy, grad = self.energy_and_gradient(u)
        forces = -grad
        w = u.T @ forces
        s = -0.5 * (w + w.T) / abs(np.linalg.det(self.cell))
        stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return energy, forces, stress

    # -------------------------------------------------------------- file I/O
    def write(self, path: str | Path) -> Path:
        """Write the canonical form to the binary Taylor file ``path``.

        Format: :data:`anharmbench.potentials.taylor_file.FORMAT_DOC`.
        """
        content = TaylorFileContent(
            symbols=self.symbols,
            cell=self.cell,
            reference=self.reference,
            translations=np.asarray(self.translations),
            orders=self._canonical_flat(drop_zeros=False),  # flat, as the file stores them
        )
        return write_taylor_file(path, content)

    @classmethod
    def read(cls, path: str | Path) -> TaylorTerms:
        """Read a Taylor file written by :meth:`write` (or any writer of the format).

        Raises
        ------
        FileNotFoundError
            Naming ``path`` when it does not exist.
        TaylorFormatError
            When the file is truncated, corrupt or of an unknown format version, or its
            translation table is not a group of lattice translations.
        """
        c = read_taylor_file(path)
        orders = {n: OrderTerms.from_flat(flat, coef) for n, (flat, coef) in c.orders.items()}
        try:
            return cls(c.symbols, c.reference, c.cell, orders, c.translations)
        except TaylorFormatError as exc:
            raise TaylorFormatError(f"{path}: {exc}") from None
