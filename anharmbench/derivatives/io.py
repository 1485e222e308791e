"""``derivatives.h5``: the one file format of irreducible derivatives, read and written here.

Every producer (a plan fitted by :func:`~anharmbench.derivatives.workflow.fit_directory`,
a DFT dataset imported by :mod:`anharmbench.dft`) writes this layout, and every consumer
(Table I, observables, the Taylor Hamiltonian, figures) reads it through
:func:`read_derivatives_file`, so a DFT reference and a measured potential are
interchangeable downstream. :func:`read_derivative_set` and :func:`write_derivative_set`
convert between a file and the :class:`~anharmbench.derivatives.DerivativeSet` that the
stages pass on.

Layout (HDF5)
-------------
Root attributes: ``format`` (``anharmbench-derivatives-1``), ``anharmbench`` (version),
``plan_hash``, ``method``, ``job`` (JSON), ``potential`` (JSON, with ``name``),
``potential_hash``; optionally ``provenance`` (JSON) and ``complete`` (``True`` once the
file was fully written; files without it predate the flag and are accepted).

Groups ``primitive/`` and ``supercell/`` (``cell`` (3, 3) Angstrom, ``positions`` (N, 3)
Angstrom, ``numbers`` (N,), optionally ``masses`` (N,) amu), dataset
``supercell_matrix`` (3, 3) int: the FTG of the file (rows in the primitive basis).

Per order ``order_n/``: ``values`` and ``uncertainties`` (K,) float64 eV/A^n (one sigma),
``labels`` (K,) str, ``multiplicity`` (K,) int, and optionally ``supercell_matrix``
(3, 3) int when this order's FTG differs from the file's (e.g. a DFT dataset with fc2
in 4x4x4 and fc3 in 2x2x2 conventional cells), plus producer-specific datasets
(``steps``, ``raw``, ``poor_fit`` for finite differences).

Optional group ``nac/``: ``born`` (n_prim, 3, 3) e, ``dielectric`` (3, 3), attribute
``factor`` (phonopy's unit conversion factor), for LO-TO splitting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from collections.abc import Iterable

    from anharmbench.derivatives.derivative_set import DerivativeSet
    from anharmbench.symmetry import IrreducibleBasis

__all__ = [
    "FORMAT",
    "DerivativesFile",
    "DerivativesFileError",
    "OrderRecord",
    "atoms_from_group",
    "read_derivative_set",
    "read_derivatives_file",
    "write_atoms_group",
    "write_derivative_set",
    "write_derivatives_file",
]

FORMAT = "anharmbench-derivatives-1"


class DerivativesFileError(ValueError):
    """A ``derivatives.h5`` file is missing, unreadable, incomplete or of another format."""


@dataclass(frozen=True)
class OrderRecord:
    """The irreducible derivatives of one order, in their FTG.

    Attributes
    ----------
    order : int
    supercell_matrix : numpy.ndarray
        ``(3, 3)`` int64 FTG (rows in the primitive basis).
    labels : list[str]
        ``K`` labels (as :attr:`anharmbench.symmetry.IrreducibleBasis.labels`).
    values, uncertainties : numpy.ndarray
        ``(K,)`` float64, eV/Angstrom^n.
    extra : dict[str, numpy.ndarray]
        Producer-specific datasets (``steps``, ``raw``, ``poor_fit``, ``multiplicity``).
    """

    order: int
    supercell_matrix: np.ndarray
    labels: list[str]
    values: np.ndarray
    uncertainties: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivativesFile:
    """Everything in one ``derivatives.h5``.

    Attributes
    ----------
    path : pathlib.Path
    primitive : ase.Atoms
        Primitive cell (masses set when the file stores them).
    orders : dict[int, OrderRecord]
    attrs : dict[str, Any]
        Root attributes, JSON ones decoded (``job``, ``potential``, ``provenance``).
    nac : dict[str, Any] | None
        ``{"born": (n_prim, 3, 3), "dielectric": (3, 3), "factor": float}`` or ``None``.
    """

    path: Path
    primitive: Atoms
    orders: dict[int, OrderRecord]
    attrs: dict[str, Any]
    nac: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The potential's name recorded in the file (or the file's folder name)."""
        pot = self.attrs.get("potential")
        if isinstance(pot, dict) and pot.get("name"):
            return str(pot["name"])
        return self.path.parent.name or self.path.stem


def atoms_from_group(g: h5py.Group) -> Atoms:
    """The structure of a ``primitive/`` or ``supercell/`` group (masses if stored)."""
    atoms = Atoms(numbers=g["numbers"][...], positions=g["positions"][...],
                  cell=g["cell"][...], pbc=True)
    if "masses" in g:
        atoms.set_masses(np.asarray(g["masses"][...], dtype=float))
    return atoms


def write_atoms_group(h5: h5py.Group, name: str, atoms: Atoms, *, masses: bool = True) -> None:
    """Write ``atoms`` as group ``name`` (``cell``, ``positions``, ``numbers``, ``masses``)."""
    g = h5.create_group(name)
    g["cell"] = np.asarray(atoms.cell.array)
    g["positions"] = atoms.positions
    g["numbers"] = atoms.numbers
    if masses:
        g["masses"] = atoms.get_masses()


_JSON_ATTRS = ("job", "jobs", "potential", "provenance", "estimator")


def read_derivatives_file(path: str | Path) -> DerivativesFile:
    """Read a ``derivatives.h5`` (any producer).

    Raises
    ------
    DerivativesFileError
        No such file, not HDF5, another format, or a file whose writer did not finish.
    """
    path = Path(path)
    if not path.is_file():
        raise DerivativesFileError(f"{path}: no such derivatives file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DerivativesFileError(f"{path} is not a readable HDF5 file ({exc})") from None
    with h5:
        fmt = h5.attrs.get("format")
        if fmt != FORMAT:
            raise DerivativesFileError(
                f"{path} is not an anharmbench derivatives file (format {fmt!r}); give the "
                "derivatives.h5 of a plan (anharmbench derivatives) or of an import "
                "(anharmbench import)")
        if "complete" in h5.attrs and not bool(h5.attrs["complete"]):
            raise DerivativesFileError(f"{path} was not completely written; produce it again")
        attrs: dict[str, Any] = {}
        for key, val in h5.attrs.items():
            if key in _JSON_ATTRS:
                try:
                    val = json.loads(val)
                except (TypeError, ValueError):
                    pass
            attrs[key] = val
        prim = atoms_from_group(h5["primitive"])
        S_file = np.asarray(h5["supercell_matrix"][...], dtype=np.int64)
        orders: dict[int, OrderRecord] = {}
        for key in sorted(h5):
            if not key.startswith("order_"):
                continue
            n = int(key.split("_")[1])
            g = h5[key]
            S = (np.asarray(g["supercell_matrix"][...], dtype=np.int64)
                 if "supercell_matrix" in g else S_file)
            labels = [s.decode() if isinstance(s, bytes) else str(s) for s in g["labels"][...]]
            extra = {k: np.asarray(g[k][...]) for k in g
                     if k not in ("values", "uncertainties", "labels", "supercell_matrix")}
            orders[n] = OrderRecord(n, S, labels, np.asarray(g["values"][...], dtype=float),
                                    np.asarray(g["uncertainties"][...], dtype=float), extra)
        nac = None
        if "nac" in h5:
            g = h5["nac"]
            nac = {"born": np.asarray(g["born"][...], dtype=float),
                   "dielectric": np.asarray(g["dielectric"][...], dtype=float)}
            if "factor" in g.attrs:
                nac["factor"] = float(g.attrs["factor"])
    return DerivativesFile(path, prim, orders, attrs, nac)


def write_derivatives_file(
    path: str | Path,
    *,
    primitive: Atoms,
    supercell_matrix: np.ndarray,
    supercell: Atoms,
    orders: Mapping[int, OrderRecord],
    attrs: Mapping[str, Any],
    nac: Mapping[str, Any] | None = None,
) -> Path:
    """Write a ``derivatives.h5`` atomically (temporary file, renamed when complete).

    Parameters
    ----------
    path
        Output file (replaced).
    primitive, supercell
        Primitive cell and the file's FTG supercell.
    supercell_matrix
        ``(3, 3)`` int, the file's FTG; orders whose record has another matrix store
        their own.
    orders
        ``{n: OrderRecord}``.
    attrs
        Root attributes; ``job``, ``potential`` and ``provenance`` are JSON-encoded.
    nac
        Born charges and dielectric tensor (see the module docstring) or ``None``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    S_file = np.asarray(supercell_matrix, dtype=np.int64)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["format"] = FORMAT
            h5.attrs["complete"] = False
            for key, val in attrs.items():
                h5.attrs[key] = json.dumps(val, default=str) if key in _JSON_ATTRS else val
            write_atoms_group(h5, "primitive", primitive)
            write_atoms_group(h5, "supercell", supercell, masses=False)
            h5["supercell_matrix"] = S_file
            for n, rec in sorted(orders.items()):
                g = h5.create_group(f"order_{n}")
                g.attrs["units"] = f"eV/A^{n}"
                g["values"] = np.asarray(rec.values, dtype=float)
                g["uncertainties"] = np.asarray(rec.uncertainties, dtype=float)
                g["labels"] = np.array(rec.labels, dtype=h5py.string_dtype())
                if not np.array_equal(rec.supercell_matrix, S_file):
                    g["supercell_matrix"] = np.asarray(rec.supercell_matrix, dtype=np.int64)
                for k, v in rec.extra.items():
                    g[k] = v
            if nac is not None:
                g = h5.create_group("nac")
                g["born"] = np.asarray(nac["born"], dtype=float)
                g["dielectric"] = np.asarray(nac["dielectric"], dtype=float)
                if nac.get("factor") is not None:
                    g.attrs["factor"] = float(nac["factor"])
            h5.attrs["complete"] = True
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ------------------------------------------------------------------ DerivativeSet <-> file
#: Root attributes that :func:`write_derivatives_file` sets itself (not provenance).
_FILE_ATTRS = ("format", "complete")


def read_derivative_set(path: str | Path, name: str | None = None, *,
                        orders: Iterable[int] | None = None,
                        bases: Mapping[int, IrreducibleBasis] | None = None) -> DerivativeSet:
    """One ``derivatives.h5`` as a :class:`~anharmbench.derivatives.DerivativeSet`.

    Parameters
    ----------
    path
        The file (any producer).
    name
        Label; default: the potential's name in the file.
    orders
        Keep only these orders (default: all).
    bases
        Bases of its orders already at hand (e.g. the plan's; checked against the file's
        labels and FTGs), so that they are not rebuilt.

    Returns
    -------
    DerivativeSet
        ``attrs``: the root attributes (``job``, ``potential``, ``provenance`` decoded),
        ``extra``: each order's other datasets, ``sources``: the file.

    Raises
    ------
    DerivativesFileError
        No such file, not HDF5, another format, or an incomplete file.
    MissingOrderError
        An order of ``orders`` is not in the file.
    """
    from anharmbench.derivatives.derivative_set import DerivativeSet, MissingOrderError

    data = read_derivatives_file(path)
    keep = sorted(data.orders) if orders is None else sorted(set(int(n) for n in orders))
    missing = sorted(set(keep) - set(data.orders))
    if missing:
        raise MissingOrderError(f"order(s) {missing} not found in {path}")
    recs = {n: data.orders[n] for n in keep}
    return DerivativeSet(
        name if name is not None else data.name, data.primitive,
        values={n: r.values for n, r in recs.items()},
        labels={n: r.labels for n, r in recs.items()},
        supercell_matrices={n: r.supercell_matrix for n, r in recs.items()},
        uncertainties={n: r.uncertainties for n, r in recs.items()},
        extra={n: r.extra for n, r in recs.items()},
        nac=data.nac,
        attrs={k: v for k, v in data.attrs.items() if k not in _FILE_ATTRS},
        sources={n: str(path) for n in recs},
        bases={n: b for n, b in (bases or {}).items() if n in recs},
    )


def write_derivative_set(derivatives: DerivativeSet, path: str | Path) -> Path:
    """Write a :class:`~anharmbench.derivatives.DerivativeSet` as ``derivatives.h5``
    (atomically); :func:`read_derivative_set` reads it back exactly.

    The file's FTG (root ``supercell_matrix`` and ``supercell/``) is the highest order's;
    other orders in another FTG carry their own. ``attrs`` become the root attributes,
    with ``potential: {"name": name}`` when they name none.
    """
    from anharmbench.structures import build_supercell

    if not derivatives.orders:
        raise DerivativesFileError(f"{derivatives.name!r} has no derivatives to write")
    attrs = dict(derivatives.attrs)
    attrs.setdefault("potential", {"name": derivatives.name})
    S = np.array(derivatives.supercell_matrices[derivatives.orders[-1]])
    records = {n: OrderRecord(n, np.array(derivatives.supercell_matrices[n]),
                              list(derivatives.labels[n]), np.array(derivatives.values[n]),
                              np.array(derivatives.uncertainties[n]),
                              {k: np.array(v) for k, v in derivatives.extra[n].items()})
               for n in derivatives.orders}
    primitive = derivatives.primitive
    return write_derivatives_file(
        path, primitive=primitive, supercell_matrix=S, supercell=build_supercell(primitive, S),
        orders=records, attrs=attrs,
        nac=None if derivatives.nac is None else dict(derivatives.nac))
