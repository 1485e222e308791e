"""The binary Taylor file read by ``pair_style taylor`` (``plugins/taylor``).

One module for the format: :func:`write_taylor_file` and :func:`read_taylor_file` move
the parts of a :class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` (symbols,
cell, reference positions, lattice translations, monomials) to and from the file, and
:func:`read_symbols` reads the header alone. The layout is :data:`FORMAT_DOC` (and
``plugins/README.md``). Our own format: the plugin needs a flat, mmap-friendly table of
monomials that no phonopy/hiPhive file holds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"ABTAYLOR"
END_MARKER = b"ENDTAYLR"
FORMAT_VERSION = 2
#: Versions this reader understands (1: no translation table, one identity row implied).
READABLE_VERSIONS = (1, 2)
NAME_LEN = 8
MAX_ORDER = 16

FORMAT_DOC = """\
Taylor file, format version 2 (little-endian, packed, no padding)
  char[8]          magic "ABTAYLOR"
  uint32           format version (2; version 1 has neither G nor the reserved word
                   nor the translation table, and means G = 1, the identity)
  uint32           N, number of atoms (atom i = LAMMPS atom ID i+1)
  uint32           E, number of distinct element names
  uint32           M, number of orders
  uint32           G, number of lattice translations (>= 1)            [version 2]
  uint32           0 (reserved)                                        [version 2]
  E x char[8]      element names, ASCII, NUL-padded
  N x uint32       element of each atom (0-based index into the names)
  9 x float64      cell, rows = lattice vectors a, b, c (Angstrom)
  3N x float64     reference positions x1 y1 z1 x2 ... (Angstrom, frame of the cell)
  G x N x uint32   translation table: row g gives the atom onto which each atom is
                   moved by the g-th translation (a group of lattice translations of
                   the cell, the identity among them)                  [version 2]
  M x {uint32 n, uint32 0, uint64 K}    order table (n strictly increasing, 1..16)
  per order, in table order:
    K*n x uint32   flat indices 3*atom + cart (cart 0,1,2 = x,y,z), term by term
    K x float64    coefficients (eV/Angstrom^n)
  char[8]          end marker "ENDTAYLR"
E(u) = sum over translations g, sum over terms of c * prod_j u[3 P[g, atom_j] + cart_j];
repeated terms add up. With G > 1 the file holds one term per translation orbit.
"""


class TaylorFormatError(ValueError):
    """A Taylor file or term set is malformed."""


@dataclass(frozen=True)
class TaylorFileContent:
    """What a Taylor file holds, as arrays (see :data:`FORMAT_DOC`).

    Attributes
    ----------
    symbols
        ``N`` chemical symbols.
    cell
        ``(3, 3)`` float64, Angstrom, rows = lattice vectors.
    reference
        ``(N, 3)`` float64 reference positions, Angstrom.
    translations
        ``(G, N)`` int64 translation table.
    orders
        ``{n: (flat (K, n) int64, coefficients (K,) float64)}``.
    """

    symbols: tuple[str, ...]
    cell: np.ndarray
    reference: np.ndarray
    translations: np.ndarray
    orders: dict[int, tuple[np.ndarray, np.ndarray]]


def element_names(symbols: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The file's element-name table: distinct symbols in order of first appearance."""
    return tuple(dict.fromkeys(symbols))


def write_taylor_file(path: str | Path, content: TaylorFileContent) -> Path:
    """Write ``content`` as a format-2 Taylor file (the terms as given, no reordering).

    Raises
    ------
    TaylorFormatError
        An element name longer than 8 bytes, or too many atoms for 32-bit indices.
    """
    names = element_names(content.symbols)
    for name in names:
        if len(name.encode("ascii")) > NAME_LEN:
            raise TaylorFormatError(f"element name {name!r} longer than {NAME_LEN} bytes")
    elem_index = {name: i for i, name in enumerate(names)}
    n_atoms = len(content.symbols)
    if 3 * n_atoms >= 2**31:
        raise TaylorFormatError(f"{n_atoms} atoms is too many for the file format")
    table = np.asarray(content.translations)
    chunks = [
        MAGIC,
        struct.pack("<6I", FORMAT_VERSION, n_atoms, len(names), len(content.orders),
                    len(table), 0),
        b"".join(name.encode("ascii").ljust(NAME_LEN, b"\0") for name in names),
        np.array([elem_index[s] for s in content.symbols], dtype="<u4").tobytes(),
        np.asarray(content.cell, dtype="<f8").tobytes(),
        np.asarray(content.reference, dtype="<f8").tobytes(),
        table.astype("<u4").tobytes(),
    ]
    for n, (_, coef) in content.orders.items():
        chunks.append(struct.pack("<IIQ", n, 0, len(coef)))
    for flat, coef in content.orders.values():
        chunks.append(np.asarray(flat).astype("<u4").tobytes())
        chunks.append(np.asarray(coef).astype("<f8").tobytes())
    chunks.append(END_MARKER)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(chunks))
    return path


def read_taylor_file(path: str | Path) -> TaylorFileContent:
    """Read a Taylor file of format 1 or 2.

    Raises
    ------
    FileNotFoundError
        Naming ``path`` when it does not exist.
    TaylorFormatError
        When the file is truncated, corrupt or of an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Taylor file {path} does not exist")
    reader = _Reader(path.read_bytes(), path)
    head = _read_header(reader)
    n_atoms = len(head.symbols)
    cell = reader.array("<f8", 9).reshape(3, 3)
    reference = reader.array("<f8", 3 * n_atoms).reshape(n_atoms, 3)
    if head.n_translations == 0:  # version 1: the identity alone
        translations = np.arange(n_atoms, dtype=np.int64)[None]
    else:
        translations = reader.array("<u4", head.n_translations * n_atoms).astype(np.int64)
        translations = translations.reshape(head.n_translations, n_atoms)
        if translations.max() >= n_atoms:
            raise TaylorFormatError(f"{path}: translation table has an atom index >= N")
    table = [struct.unpack("<IIQ", reader.take(16)) for _ in range(head.n_orders)]
    orders: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for n, _, k in table:
        if not 1 <= n <= MAX_ORDER or n in orders or (orders and n < max(orders)):
            raise TaylorFormatError(f"{path}: invalid order table {table}")
        flat = reader.array("<u4", k * n).astype(np.int64).reshape(k, n)
        coef = reader.array("<f8", k)
        if flat.size and flat.max() >= 3 * n_atoms:
            raise TaylorFormatError(f"{path}: order {n} has an index >= 3N = {3 * n_atoms}")
        orders[n] = (flat, coef)
    if reader.take(8) != END_MARKER or reader.remaining:
        raise TaylorFormatError(f"{path}: missing end marker or trailing bytes (corrupt file)")
    return TaylorFileContent(head.symbols, cell, reference, translations, orders)


def read_symbols(path: str | Path) -> tuple[str, ...]:
    """Chemical symbol of each atom of a Taylor file, from its header only.

    Raises as :func:`read_taylor_file` does for a missing file or a bad header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Taylor file {path} does not exist")
    with path.open("rb") as fh:
        head = fh.read(32)
        n_atoms, n_names = struct.unpack("<2I", head[12:20]) if len(head) == 32 else (0, 0)
        # bounded by the file's size: a corrupt header must not ask for gigabytes
        rest = min(NAME_LEN * n_names + 4 * n_atoms, path.stat().st_size - len(head))
        head += fh.read(max(rest, 0))
    return _read_header(_Reader(head, path)).symbols


@dataclass(frozen=True)
class _Header:
    symbols: tuple[str, ...]
    n_orders: int
    n_translations: int  # 0 for version 1


def _read_header(reader: _Reader) -> _Header:
    """Check magic and version; the atoms' symbols and the table sizes."""
    path = reader.path
    if reader.take(8) != MAGIC:
        raise TaylorFormatError(f"{path} is not a Taylor file (bad magic number)")
    version, n_atoms, n_names, n_orders = struct.unpack("<4I", reader.take(16))
    if version not in READABLE_VERSIONS:
        raise TaylorFormatError(
            f"{path} has format version {version}; this reader understands "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    n_translations = struct.unpack("<2I", reader.take(8))[0] if version >= 2 else 0
    if (n_atoms == 0 or n_names == 0 or n_names > n_atoms or n_orders > 64
            or (version >= 2 and n_translations == 0)):
        raise TaylorFormatError(
            f"{path}: invalid header (atoms {n_atoms}, elements {n_names}, orders {n_orders}, "
            f"translations {n_translations})"
        )
    raw = reader.take(NAME_LEN * n_names)
    names = [
        raw[i * NAME_LEN : (i + 1) * NAME_LEN].rstrip(b"\0").decode("ascii")
        for i in range(n_names)
    ]
    elem = reader.array("<u4", n_atoms)
    if elem.max() >= n_names:
        raise TaylorFormatError(f"{path}: element index out of range")
    return _Header(tuple(names[i] for i in elem), n_orders, n_translations)


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
