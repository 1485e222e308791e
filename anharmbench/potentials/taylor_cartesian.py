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

Three consumers share this description:

* :meth:`TaylorTerms.write` / :meth:`TaylorTerms.read`: the binary file read by the
  LAMMPS pair style ``taylor`` (``plugins/taylor``; format in ``plugins/README.md``
  and :data:`FORMAT_DOC`);
* :class:`CartesianTaylorCalculator`: an independent numpy ASE calculator;
* :func:`taylor_potential`: the :class:`~anharmbench.potentials.LammpsPotential` that
  runs the file in LAMMPS (``pair_style taylor``).

Stress convention (both implementations): the reference lattice is strained with the
cell, so ``u -> (1 + eps) u`` and ``stress = (1/V) dE/d(eps)
= -(1/V) sym(sum_i u_i (x) f_i)`` (ASE sign, eV/Angstrom^3). It vanishes at ``u = 0``
and does not depend on the choice of origin.
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers

from anharmbench.potentials.spec import LammpsPotential, PotentialError

MAGIC = b"ABTAYLOR"
END_MARKER = b"ENDTAYLR"
FORMAT_VERSION = 1
NAME_LEN = 8
MAX_ORDER = 16

FORMAT_DOC = """\
Taylor file, format version 1 (little-endian, packed, no padding)
  char[8]          magic "ABTAYLOR"
  uint32           format version (1)
  uint32           N, number of atoms (atom i = LAMMPS atom ID i+1)
  uint32           E, number of distinct element names
  uint32           M, number of orders
  E x char[8]      element names, ASCII, NUL-padded
  N x uint32       element of each atom (0-based index into the names)
  9 x float64      cell, rows = lattice vectors a, b, c (Angstrom)
  3N x float64     reference positions x1 y1 z1 x2 ... (Angstrom, frame of the cell)
  M x {uint32 n, uint32 0, uint64 K}    order table (n strictly increasing, 1..16)
  per order, in table order:
    K*n x uint32   flat indices 3*atom + cart (cart 0,1,2 = x,y,z), term by term
    K x float64    coefficients (eV/Angstrom^n)
  char[8]          end marker "ENDTAYLR"
E(u) = sum over all terms of c * prod_j u[index_j]; repeated terms add up.
"""


class TaylorFormatError(ValueError):
    """A Taylor file or term set is malformed."""


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


def _unique_rows(flat: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(flat, axis=0, return_inverse=True)`` for ``(K, n)`` indices below ``base``.

    numpy's row-wise unique sorts rows as opaque records, about 40 s for the 14 million
    fourth-order terms of a 4I expansion. When ``base**n`` fits in int64 each row is
    encoded as one integer in base ``base`` (its order is the rows' lexicographic order),
    and rows that are already strictly increasing (an expansion's own output) are
    returned as they are.
    """
    n = flat.shape[1]
    if n == 0 or base**n >= 2**63:
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        return uniq, inverse.reshape(-1)
    key = np.zeros(len(flat), dtype=np.int64)
    for k in range(n):
        key = key * base + flat[:, k]
    if np.all(key[1:] > key[:-1]):
        return flat, np.arange(len(flat))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return flat[first], inverse.reshape(-1)


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
    """

    symbols: tuple[str, ...]
    reference: np.ndarray
    cell: np.ndarray
    orders: dict[int, OrderTerms]

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

    # ----------------------------------------------------------- structure
    @property
    def natoms(self) -> int:
        """Number of atoms ``N``."""
        return len(self.symbols)

    @property
    def elements(self) -> tuple[str, ...]:
        """Distinct element names in order of first appearance (the file's name table)."""
        return tuple(dict.fromkeys(self.symbols))

    def n_terms(self) -> dict[int, int]:
        """Number of stored terms of each order."""
        return {n: len(t.coefficients) for n, t in self.orders.items()}

    def flat_indices(self, n: int) -> np.ndarray:
        """``(K, n)`` flat indices ``3 * atom + cart`` of the terms of order ``n``."""
        idx = self.orders[n].indices
        return idx[..., 0] * 3 + idx[..., 1]

    @classmethod
    def from_atoms(cls, atoms: Atoms, orders: dict[int, OrderTerms] | None = None) -> TaylorTerms:
        """Terms about the structure ``atoms`` (its symbols, positions and cell)."""
        return cls(
            symbols=tuple(atoms.get_chemical_symbols()),
            reference=np.array(atoms.positions, dtype=float),
            cell=np.array(atoms.cell.array, dtype=float),
            orders=dict(orders or {}),
        )

    def with_orders(self, orders: dict[int, OrderTerms]) -> TaylorTerms:
        """The same structure with other terms."""
        return TaylorTerms(self.symbols, self.reference, self.cell, orders)

    def atoms(self) -> Atoms:
        """The reference structure as periodic ``ase.Atoms``."""
        return Atoms(self.symbols, positions=self.reference, cell=self.cell, pbc=True)

    # ----------------------------------------------------- canonical form
    def canonical(self, *, drop_zeros: bool = True) -> TaylorTerms:
        """Canonical form: sorted factors, one term per multiset, terms sorted.

        The polynomial is unchanged: coefficients of repeated multisets are added.
        """
        return self.with_orders({n: OrderTerms.from_flat(flat, coef) for n, (flat, coef)
                                 in self._canonical_flat(drop_zeros).items()})

    def _canonical_flat(self, drop_zeros: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{n: (flat indices (K, n), coefficients (K,))}`` of the canonical form."""
        out = {}
        for n in self.orders:
            flat = np.sort(self.flat_indices(n), axis=1)
            coef = self.orders[n].coefficients
            if len(coef):
                uniq, inverse = _unique_rows(flat, 3 * self.natoms)
                summed = np.bincount(inverse.reshape(-1), weights=coef, minlength=len(uniq))
            else:
                uniq, summed = flat.reshape(0, n), coef
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
            coef = values / _multiplicity_factorials(combos)
            keep = np.abs(values) > atol
            combos, coef = combos[keep], coef[keep]
            orders[int(n)] = OrderTerms.from_flat(combos, coef)
        return cls.from_atoms(atoms, orders)

    def to_tensor(self, n: int) -> np.ndarray:
        """Dense symmetric n-th derivative tensor ``(3N,) * n`` (eV/Angstrom^n; small cells)."""
        n3 = 3 * self.natoms
        phi = np.zeros((n3,) * n)
        if n not in self.orders:
            return phi
        canon = self.canonical()
        flat = canon.flat_indices(n)
        values = canon.orders[n].coefficients * _multiplicity_factorials(flat)
        for idx, v in zip(flat, values, strict=True):
            for perm in set(itertools.permutations(idx.tolist())):
                phi[perm] = v
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
        """Energy (eV) and gradient ``dE/du`` ``(N, 3)`` (eV/Angstrom) at displacements ``u``."""
        uf = np.asarray(u, dtype=float).reshape(-1)
        if uf.shape != (3 * self.natoms,):
            raise ValueError(f"displacements have {uf.size} entries, expected {3 * self.natoms}")
        energy = 0.0
        grad = np.zeros(3 * self.natoms)
        for n, terms in self.orders.items():
            coef = terms.coefficients
            if not len(coef):
                continue
            flat = self.flat_indices(n)
            factors = uf[flat]  # (K, n)
            prefix = np.ones((len(coef), n + 1))
            prefix[:, 1:] = np.cumprod(factors, axis=1)
            suffix = np.ones((len(coef), n + 1))
            suffix[:, :-1] = np.cumprod(factors[:, ::-1], axis=1)[:, ::-1]
            energy += float(coef @ prefix[:, n])
            partial = coef[:, None] * prefix[:, :n] * suffix[:, 1:]
            grad += np.bincount(flat.reshape(-1), weights=partial.reshape(-1), minlength=grad.size)
        return energy, grad.reshape(self.natoms, 3)

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
        """Write the canonical form to the binary Taylor file ``path`` (see :data:`FORMAT_DOC`)."""
        canon = self._canonical_flat(drop_zeros=False)  # flat, as the file stores them
        names = self.elements
        for name in names:
            if len(name.encode("ascii")) > NAME_LEN:
                raise TaylorFormatError(f"element name {name!r} longer than {NAME_LEN} bytes")
        elem_index = {name: i for i, name in enumerate(names)}
        n_atoms = self.natoms
        if 3 * n_atoms >= 2**31:
            raise TaylorFormatError(f"{n_atoms} atoms is too many for the file format")
        chunks = [
            MAGIC,
            struct.pack("<4I", FORMAT_VERSION, n_atoms, len(names), len(canon)),
            b"".join(name.encode("ascii").ljust(NAME_LEN, b"\0") for name in names),
            np.array([elem_index[s] for s in self.symbols], dtype="<u4").tobytes(),
            self.cell.astype("<f8").tobytes(),
            self.reference.astype("<f8").tobytes(),
        ]
        for n, (_, coef) in canon.items():
            chunks.append(struct.pack("<IIQ", n, 0, len(coef)))
        for flat, coef in canon.values():
            chunks.append(flat.astype("<u4").tobytes())
            chunks.append(coef.astype("<f8").tobytes())
        chunks.append(END_MARKER)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(chunks))
        return path

    @classmethod
    def read(cls, path: str | Path) -> TaylorTerms:
        """Read a Taylor file written by :meth:`write` (or any writer of the format).

        Raises
        ------
        FileNotFoundError
            Naming ``path`` when it does not exist.
        TaylorFormatError
            When the file is truncated, corrupt or of another format version.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Taylor file {path} does not exist")
        reader = _Reader(path.read_bytes(), path)
        symbols, n_orders = _read_header(reader)
        n_atoms = len(symbols)
        cell = reader.array("<f8", 9).reshape(3, 3)
        reference = reader.array("<f8", 3 * n_atoms).reshape(n_atoms, 3)
        table = [struct.unpack("<IIQ", reader.take(16)) for _ in range(n_orders)]
        orders: dict[int, OrderTerms] = {}
        for n, _, k in table:
            if not 1 <= n <= MAX_ORDER or n in orders or (orders and n < max(orders)):
                raise TaylorFormatError(f"{path}: invalid order table {table}")
            flat = reader.array("<u4", k * n).astype(np.int64).reshape(k, n)
            coef = reader.array("<f8", k)
            if flat.size and flat.max() >= 3 * n_atoms:
                raise TaylorFormatError(f"{path}: order {n} has an index >= 3N = {3 * n_atoms}")
            orders[n] = OrderTerms.from_flat(flat, coef)
        if reader.take(8) != END_MARKER or reader.remaining:
            raise TaylorFormatError(f"{path}: missing end marker or trailing bytes (corrupt file)")
        return cls(symbols, reference, cell, orders)


def read_symbols(path: str | Path) -> tuple[str, ...]:
    """Chemical symbol of each atom of a Taylor file, from its header only.

    Raises as :meth:`TaylorTerms.read` does for a missing file or a bad header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Taylor file {path} does not exist")
    with path.open("rb") as fh:
        head = fh.read(24)
        n_atoms, n_names = struct.unpack("<2I", head[12:20]) if len(head) == 24 else (0, 0)
        # bounded by the file's size: a corrupt header must not ask for gigabytes
        rest = min(NAME_LEN * n_names + 4 * n_atoms, path.stat().st_size - len(head))
        head += fh.read(rest)
    return _read_header(_Reader(head, path))[0]


def _read_header(reader: _Reader) -> tuple[tuple[str, ...], int]:
    """Check magic and version; the atoms' symbols and the number of orders."""
    path = reader.path
    if reader.take(8) != MAGIC:
        raise TaylorFormatError(f"{path} is not a Taylor file (bad magic number)")
    version, n_atoms, n_names, n_orders = struct.unpack("<4I", reader.take(16))
    if version != FORMAT_VERSION:
        raise TaylorFormatError(
            f"{path} has format version {version}; this reader understands {FORMAT_VERSION}"
        )
    if n_atoms == 0 or n_names == 0 or n_names > n_atoms or n_orders > 64:
        raise TaylorFormatError(
            f"{path}: invalid header (atoms {n_atoms}, elements {n_names}, orders {n_orders})"
        )
    raw = reader.take(NAME_LEN * n_names)
    names = [
        raw[i * NAME_LEN : (i + 1) * NAME_LEN].rstrip(b"\0").decode("ascii")
        for i in range(n_names)
    ]
    elem = reader.array("<u4", n_atoms)
    if elem.max() >= n_names:
        raise TaylorFormatError(f"{path}: element index out of range")
    return tuple(names[i] for i in elem), n_orders


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise TaylorFormatError(
                f"Taylor file {self.path} is truncated ({len(self.data)} bytes; needed "
                f"{self.pos + size})"
            )
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * int(count)
        return np.frombuffer(self.take(size), dtype=dtype).astype(dtype[1:], copy=True)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


def _multiplicity_factorials(flat: np.ndarray) -> np.ndarray:
    """``prod_r k_r!`` for each row of ``(K, n)`` indices (``k_r`` = repeat counts)."""
    out = np.ones(len(flat))
    for row, idx in enumerate(np.asarray(flat)):
        _, counts = np.unique(idx, return_counts=True)
        out[row] = math.prod(math.factorial(int(c)) for c in counts)
    return out


class CartesianTaylorCalculator(Calculator):
    """Numpy ASE calculator of a :class:`TaylorTerms` model (reference for ``pair_style taylor``).

    The atoms must be the model's structure: same number and order of atoms, same
    symbols and the same cell (in the same Cartesian frame); positions may be anywhere
    (displacements use the nearest lattice image).

    Parameters
    ----------
    terms
        The model.

    Notes
    -----
    ``results``: ``energy``/``free_energy`` (eV), ``forces`` ``(N, 3)`` (eV/Angstrom),
    ``stress`` ``(6,)`` Voigt (eV/Angstrom^3, ASE sign; see the module docstring).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, terms: TaylorTerms, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.terms = terms

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        assert self.atoms is not None
        terms = self.terms
        if tuple(self.atoms.get_chemical_symbols()) != terms.symbols:
            raise ValueError(
                f"the atoms ({self.atoms.get_chemical_formula()}, {len(self.atoms)} atoms) are "
                f"not the Taylor model's structure ({terms.natoms} atoms, same order of species)"
            )
        if not np.allclose(self.atoms.cell.array, terms.cell, rtol=0, atol=1e-8):
            raise ValueError(
                "the cell of the atoms differs from the Taylor model's cell; the model is "
                "defined for its reference cell only"
            )
        energy, forces, stress = terms.evaluate(self.atoms.positions)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces,
            "stress": stress,
        }


def taylor_potential(
    path: str | Path,
    elements: tuple[str, ...] | list[str] | None = None,
    *,
    name: str | None = None,
) -> LammpsPotential:
    """The LAMMPS potential that evaluates the Taylor file ``path`` (``pair_style taylor``).

    Parameters
    ----------
    path
        The Taylor file (:meth:`TaylorTerms.write`); stored as an absolute path.
    elements
        Element of each LAMMPS atom type, in type order. Default: the file's element
        names (read from its header, so the file must exist).
    name
        Name of the potential in reports (default ``taylor:<file name>``).

    Returns
    -------
    LammpsPotential
        ``pair_style taylor``, ``pair_coeff * * <path> <elements...>``, ``files=(path,)``.
        The pair style comes from the auto-loaded plugin (``make setup`` builds it).
    """
    path = Path(path).absolute()
    if any(c.isspace() for c in str(path)):
        raise PotentialError(
            f"the Taylor file path {str(path)!r} contains white space, which a LAMMPS "
            "pair_coeff line cannot hold; move the file"
        )
    if elements is None:
        elements = tuple(dict.fromkeys(read_symbols(path)))
    elements = tuple(elements)
    return LammpsPotential(
        elements=elements,
        pair_style="taylor",
        pair_coeff=(f"* * {path} {' '.join(elements)}",),
        files=(str(path),),
        name=name or f"taylor:{path.name}",
    )
