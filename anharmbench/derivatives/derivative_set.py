"""The irreducible derivatives of one potential, as every stage passes them on.

A :class:`DerivativeSet` holds, for one potential and one primitive cell, the irreducible
derivatives of several orders, each measured in its own FTG supercell (the paper: orders
2 and 3 in 2I, order 4 in S_C), in the order-generic ``{order: ...}`` style of hiPhive's
and symfc's force constants:

* ``values[n]`` and ``uncertainties[n]`` -- ``(K_n,)`` float64, eV/Angstrom^n (one sigma);
* ``labels[n]`` -- the ``K_n`` labels of the irreducible basis
  (:attr:`anharmbench.symmetry.IrreducibleBasis.labels`);
* ``supercell_matrices[n]`` -- ``(3, 3)`` int64, the FTG (rows in the primitive basis);
* ``bases[n]`` -- the :class:`~anharmbench.symmetry.IrreducibleBasis`, given by the
  producer or rebuilt from the primitive cell and the FTG on first use (labels checked);
* ``extra[n]`` -- producer-specific arrays (``steps``, ``raw``, ``poor_fit``,
  ``multiplicity``, the reported ``paper_values`` ...; :meth:`DerivativeSet.reported`).

It is immutable: its arrays are read-only copies, its mappings read-only, and what is
derived from it (dense tensors, phonopy objects) is computed once and cached.

Producers: :meth:`DerivativeSet.from_result` (a fit of a measured plan),
:meth:`DerivativeSet.from_bases` (values in given bases), :meth:`DerivativeSet.from_file`
and :meth:`DerivativeSet.from_files` (``derivatives.h5``, any producer). Consumers: Table I
(:mod:`anharmbench.study.report`), the observables (:mod:`anharmbench.observables`), the
Taylor Hamiltonian of the IDMD; :meth:`DerivativeSet.to_file` writes the one on-disk form
(:mod:`anharmbench.derivatives.io`). :meth:`DerivativeSet.phonopy` and
:meth:`DerivativeSet.phono3py` hand the force constants to phonopy and phono3py.

The module is this one class (its constructors, checks and accessors) and is longer than
most for that reason: the file format, the fits and the phonopy bridge it calls live in
their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from anharmbench.errors import InputError
from anharmbench.symmetry import IrreducibleBasis, irreducible_basis

if TYPE_CHECKING:
    from phono3py import Phono3py
    from phonopy import Phonopy

    from anharmbench.derivatives.fit import DerivativeResult
    from anharmbench.derivatives.job import Prepared
    from anharmbench.symmetry.convention import ReportedValues

__all__ = ["MAX_DENSE", "DerivativeSet", "DerivativeSetError", "MissingOrderError"]

#: Largest dense FTG tensor formed by :meth:`DerivativeSet.cartesian` (entries).
MAX_DENSE = 5e7


class DerivativeSetError(InputError):
    """Derivatives that do not form a consistent set (shapes, orders, crystal, labels)."""


class MissingOrderError(DerivativeSetError):
    """The set lacks an order that is needed (e.g. fc4 for the sunset linewidth)."""


def _frozen(a: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``a``."""
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _same_crystal(a: Atoms, b: Atoms, tol: float = 1e-6) -> bool:
    if len(a) != len(b) or list(a.numbers) != list(b.numbers):
        return False
    if not np.allclose(a.cell.array, b.cell.array, atol=tol):
        return False
    d = a.get_scaled_positions(wrap=False) - b.get_scaled_positions(wrap=False)
    return bool(np.abs(d - np.rint(d)).max() < tol)


class DerivativeSet:
    """Irreducible derivatives of one potential, keyed by order, each in its own FTG.

    Parameters
    ----------
    name
        Label of the potential (tables, plots, files), e.g. ``"reference"``, ``"GNN"``.
    primitive
        Primitive cell at the structure where the derivatives were taken (masses as
        set on it, else ASE's); copied.
    values
        ``{n: (K_n,)}`` float64 irreducible derivatives, eV/Angstrom^n.
    labels
        ``{n: K_n labels}`` (:attr:`~anharmbench.symmetry.IrreducibleBasis.labels`).
    supercell_matrices
        ``{n: (3, 3)}`` int FTG of each order (rows in the primitive basis).
    uncertainties
        ``{n: (K_n,)}`` one-sigma uncertainties, eV/Angstrom^n; NaN where not given.
    extra
        ``{n: {name: array}}`` producer-specific datasets (stored beside the values in
        ``derivatives.h5``).
    nac
        Non-analytical term correction (LO-TO splitting) in phonopy's ``nac_params``
        form: ``born`` ``(n_prim, 3, 3)`` (e), ``dielectric`` ``(3, 3)``, optional
        ``factor``; ``None`` for none.
    attrs
        Provenance: the root attributes of ``derivatives.h5`` (plan hash, method, job,
        potential, equilibrium check, ...).
    sources
        ``{n: where the order came from}`` (file names), for messages.
    bases
        ``{n: IrreducibleBasis}`` known to the producer (checked against ``labels`` and
        the FTG); the others are rebuilt on first use.

    Raises
    ------
    DerivativeSetError
        Inconsistent orders, shapes, FTGs, bases or crystal.

    Examples
    --------
    >>> ref = DerivativeSet.from_files(["plan_2i/derivatives.h5",
    ...                                 "plan_sc/derivatives.h5"], name="reference")
    ...                                                           # doctest: +SKIP
    >>> ref.orders, ref.values[2].shape, ref.supercell_matrices[4]   # doctest: +SKIP
    >>> ref.phonopy().run_qpoints([[0.5, 0.5, 0.0]])                # doctest: +SKIP
    """

    __slots__ = ("_attrs", "_bases_given", "_cache", "_extra", "_labels", "_name", "_nac",
                 "_primitive", "_sources", "_supercell_matrices", "_uncertainties", "_values")

    def __init__(
        self,
        name: str,
        primitive: Atoms,
        values: Mapping[int, Any],
        labels: Mapping[int, Sequence[str]],
        supercell_matrices: Mapping[int, Any],
        uncertainties: Mapping[int, Any] | None = None,
        *,
        extra: Mapping[int, Mapping[str, Any]] | None = None,
        nac: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
        sources: Mapping[int, str] | None = None,
        bases: Mapping[int, IrreducibleBasis] | None = None,
    ) -> None:
        orders = sorted(int(n) for n in values)
        for what, given in (("labels", labels), ("supercell_matrices", supercell_matrices)):
            if sorted(int(n) for n in given) != orders:
                raise DerivativeSetError(
                    f"{name!r}: {what} has orders {sorted(given)}, values {orders}")
        for what, given in (("uncertainties", uncertainties), ("extra", extra),
                            ("bases", bases), ("sources", sources)):
            stray = sorted(set(int(n) for n in (given or {})) - set(orders))
            if stray:
                raise DerivativeSetError(
                    f"{name!r}: {what} has order(s) {stray} that have no values")
        vals: dict[int, np.ndarray] = {}
        labs: dict[int, tuple[str, ...]] = {}
        ftgs: dict[int, np.ndarray] = {}
        unc: dict[int, np.ndarray] = {}
        for n in orders:
            v = np.asarray(values[n], dtype=np.float64).reshape(-1)
            lab = tuple(str(s) for s in labels[n])
            if v.shape != (len(lab),):
                raise DerivativeSetError(
                    f"order {n} of {name!r}: {v.size} values for {len(lab)} labels")
            S = np.asarray(supercell_matrices[n])
            if S.shape != (3, 3) or not np.allclose(S, np.rint(S)) or \
                    round(abs(np.linalg.det(S))) == 0:
                raise DerivativeSetError(
                    f"order {n} of {name!r}: the FTG must be a non-singular 3x3 integer "
                    f"matrix, got {S.tolist()}")
            u = np.full(v.shape, np.nan) if uncertainties is None or n not in uncertainties \
                else np.asarray(uncertainties[n], dtype=np.float64).reshape(-1)
            if u.shape != v.shape:
                raise DerivativeSetError(
                    f"order {n} of {name!r}: {u.size} uncertainties for {v.size} values")
            vals[n], labs[n], unc[n] = _frozen(v), lab, _frozen(u)
            ftgs[n] = _frozen(np.rint(S), dtype=np.int64)
        prim = primitive.copy()
        prim.calc = None
        set_ = object.__setattr__
        set_(self, "_name", str(name))
        set_(self, "_primitive", prim)
        set_(self, "_values", MappingProxyType(vals))
        set_(self, "_labels", MappingProxyType(labs))
        set_(self, "_supercell_matrices", MappingProxyType(ftgs))
        set_(self, "_uncertainties", MappingProxyType(unc))
        set_(self, "_extra", MappingProxyType({
            n: MappingProxyType({k: _frozen(a) for k, a in (extra or {}).get(n, {}).items()})
            for n in orders}))
        set_(self, "_nac", None if nac is None else MappingProxyType(
            {k: (_frozen(v, dtype=np.float64) if k != "factor" else float(v))
             for k, v in nac.items() if v is not None}))
        set_(self, "_attrs", MappingProxyType(dict(attrs or {})))
        set_(self, "_sources", MappingProxyType({int(n): str(s)
                                                 for n, s in (sources or {}).items()}))
        set_(self, "_bases_given", MappingProxyType(dict(bases or {})))
        set_(self, "_cache", {})
        for n, basis in self._bases_given.items():
            self._check_basis(n, basis)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"a DerivativeSet is immutable (cannot set {key!r}); make a new "
                             "one (e.g. with select or renamed)")

    def __reduce__(self) -> tuple[Any, ...]:
        # plain data: the read-only mappings, the caches and the bases (their symmetry
        # objects hold caches of their own) do not pickle; the bases are rebuilt on use
        return (_rebuild, ({**self._state(), "bases": None},))

    def _state(self) -> dict[str, Any]:
        return {"name": self._name, "primitive": self._primitive,
                "values": dict(self._values), "labels": dict(self._labels),
                "supercell_matrices": dict(self._supercell_matrices),
                "uncertainties": dict(self._uncertainties),
                "extra": {n: dict(e) for n, e in self._extra.items()},
                "nac": None if self._nac is None else dict(self._nac),
                "attrs": dict(self._attrs), "sources": dict(self._sources),
                "bases": dict(self._bases_given)}

    # ------------------------------------------------------------------ data
    @property
    def name(self) -> str:
        """Label of the potential."""
        return self._name

    @property
    def primitive(self) -> Atoms:
        """The primitive cell (a copy: the set's own cannot be changed through it)."""
        return self._primitive.copy()

    @property
    def orders(self) -> tuple[int, ...]:
        """Orders present, increasing."""
        return tuple(self._values)

    @property
    def values(self) -> Mapping[int, np.ndarray]:
        """``{n: (K_n,)}`` float64 irreducible derivatives, eV/Angstrom^n (read-only)."""
        return self._values

    @property
    def uncertainties(self) -> Mapping[int, np.ndarray]:
        """``{n: (K_n,)}`` float64 one-sigma uncertainties, eV/Angstrom^n (NaN: unknown)."""
        return self._uncertainties

    @property
    def labels(self) -> Mapping[int, tuple[str, ...]]:
        """``{n: K_n labels}`` of the irreducible basis."""
        return self._labels

    @property
    def supercell_matrices(self) -> Mapping[int, np.ndarray]:
        """``{n: (3, 3)}`` int64 FTG of each order (rows in the primitive basis)."""
        return self._supercell_matrices

    @property
    def extra(self) -> Mapping[int, Mapping[str, np.ndarray]]:
        """``{n: {name: array}}`` producer-specific datasets (read-only)."""
        return self._extra

    @property
    def nac(self) -> Mapping[str, Any] | None:
        """Born charges, dielectric tensor (and ``factor``) for LO-TO splitting, or None."""
        return self._nac

    @property
    def attrs(self) -> Mapping[str, Any]:
        """Provenance (the root attributes of ``derivatives.h5``)."""
        return self._attrs

    @property
    def sources(self) -> Mapping[int, str]:
        """``{n: file}`` where each order came from (empty for sets made in memory)."""
        return self._sources

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {len(self._values[n])} in S="
                          f"{self._supercell_matrices[n].tolist()}" for n in self.orders)
        return f"DerivativeSet({self._name!r}, {{{parts}}})"

    # ------------------------------------------------------------------ access
    def require(self, orders: Iterable[int], what: str) -> None:
        """Raise :class:`MissingOrderError` unless every order in ``orders`` is present.

        Parameters
        ----------
        orders
            Orders needed, e.g. ``(2, 4)`` for the loop shift.
        what
            What needs them, for the message.
        """
        orders = sorted(set(int(n) for n in orders))
        missing = sorted(set(orders) - set(self.orders))
        if missing:
            raise MissingOrderError(
                f"{what} needs derivatives of order(s) {orders}, but {self._name!r} has "
                f"order(s) {list(self.orders)} only: order(s) {missing} missing. Measure them "
                "(anharmbench plan/derivatives) and pass their derivatives.h5 too.")

    def basis(self, order: int) -> IrreducibleBasis:
        """The irreducible basis of ``order`` (the producer's, or rebuilt and checked).

        Raises
        ------
        MissingOrderError
            The order is absent, or holds a Q-tuple subset of its FTG's derivatives.
        DerivativeSetError
            Labels that do not match the rebuilt basis.
        """
        self.require([order], f"the basis of order {order}")
        if order in self._bases_given:
            return self._bases_given[order]
        key = ("basis", order)
        if key not in self._cache:
            basis = irreducible_basis(self._primitive, self._supercell_matrices[order],
                                      order=order)
            where = self._sources.get(order, repr(self._name))
            labels = list(self._labels[order])
            if labels != list(basis.labels):
                if set(labels) < set(basis.labels):
                    raise MissingOrderError(
                        f"{where}: order {order} holds {len(labels)} of the {len(basis)} "
                        "irreducible derivatives of its FTG (a Q-tuple-restricted job); this "
                        "needs them all")
                raise DerivativeSetError(
                    f"{where}: the order-{order} labels do not match the irreducible basis "
                    "rebuilt here (written by another version of anharmbench?)")
            self._cache[key] = basis
        return self._cache[key]

    def reported(self, order: int) -> ReportedValues:
        """The order's derivatives as Table I reports them: our convention (after Fu et al.
        2019; :mod:`anharmbench.symmetry.convention`), per primitive cell and in the
        crystal's own frame.

        Stored values of the current convention are used as they are; values of an older
        one (or none: files written before it) are recomputed from the coefficients, which
        is the upgrade of an old ``derivatives.h5``.
        """
        from anharmbench.symmetry.convention import (
            CONVENTION,
            ReportedValues,
            paper_datasets,
            per_cell_scale,
        )

        self.require([order], f"the reported order-{order} derivatives")
        key = ("reported", order)
        if key not in self._cache:
            extra = self._extra[order]
            stored = extra.get("paper_convention")
            current = stored is not None and bytes(np.asarray(stored).item()) == CONVENTION.encode()
            data = extra if current else paper_datasets(
                self._reporting_basis(order), np.array(self._values[order]),
                np.array(self._uncertainties[order]))
            self._cache[key] = ReportedValues(
                values=_frozen(data["paper_values"], float),
                uncertainties=_frozen(data["paper_uncertainties"], float),
                labels=tuple(x.decode() if isinstance(x, bytes) else str(x)
                             for x in np.asarray(data["paper_labels"]).tolist()),
                scale=per_cell_scale(
                    abs(round(np.linalg.det(self._supercell_matrices[order]))), order))
        return self._cache[key]

    def _reporting_basis(self, order: int) -> IrreducibleBasis:
        """The basis of ``order``, also for a Q-tuple-restricted job (from its record)."""
        try:
            return self.basis(order)
        except MissingOrderError:
            job = self._attrs.get("job")
            if not job:
                raise
        import json

        from anharmbench.derivatives.job import DerivativeJob, job_bases

        basis = job_bases(DerivativeJob.from_dict(json.loads(job) if isinstance(job, str)
                                                  else dict(job)), self._primitive)[order]
        if list(basis.labels) != list(self._labels[order]):
            raise DerivativeSetError(
                f"{self._sources.get(order, repr(self._name))}: the order-{order} labels do not "
                "match the basis of the job it records; re-fit it (anharmbench derivatives DIR)")
        return basis

    @property
    def bases(self) -> Mapping[int, IrreducibleBasis]:
        """``{n: IrreducibleBasis}`` of every order (rebuilt where not given; minutes for a
        64-atom order 3)."""
        return MappingProxyType({n: self.basis(n) for n in self.orders})

    def _check_basis(self, n: int, basis: IrreducibleBasis) -> None:
        if int(basis.order) != n:
            raise DerivativeSetError(
                f"derivatives keyed as order {n} have a basis of order {basis.order}")
        if list(basis.labels) != list(self._labels[n]):
            raise DerivativeSetError(
                f"order {n} of {self._name!r}: the basis's labels are not the set's")
        if not np.array_equal(np.asarray(basis.sym.S), self._supercell_matrices[n]):
            raise DerivativeSetError(
                f"order {n} of {self._name!r}: the basis is of FTG "
                f"{np.asarray(basis.sym.S).tolist()}, not {self._supercell_matrices[n].tolist()}")
        if not _same_crystal(self._primitive, basis.sym.prim):
            raise DerivativeSetError(
                f"order {n} of {self._name!r} was measured on another primitive cell "
                "(lattice constant or positions differ) than the set's")

    def check_finite(self) -> DerivativeSet:
        """``self``, or :class:`DerivativeSetError` if a value is NaN or infinite."""
        for n in self.orders:
            if not np.isfinite(self._values[n]).all():
                raise DerivativeSetError(
                    f"order {n} of {self._name!r}: the derivatives contain NaN or infinity")
        return self

    def ftg(self, order: int) -> np.ndarray:
        """FTG supercell matrix ``(3, 3)`` int64 of ``order`` (rows in the primitive basis)."""
        self.require([order], f"the FTG of order {order}")
        return self._supercell_matrices[order]

    def ftg_qpoints(self, order: int) -> np.ndarray:
        """FTG q-points ``(D, 3)`` float64 (fractional) where order ``order`` was measured."""
        return np.asarray(self.basis(order).sym.qpoints, dtype=float)

    def supercell(self, order: int) -> Atoms:
        """The FTG supercell of ``order`` (atom order of every FTG tensor)."""
        return self.basis(order).sym.supercell

    def cartesian(self, order: int) -> np.ndarray:
        """Dense FTG tensor ``(3N_S,)*n`` float64, eV/Angstrom^n (atom order of the FTG),
        read-only, computed once."""
        self.require([order], f"the order-{order} force constants")
        key = ("cartesian", order)
        if key not in self._cache:
            basis = self.basis(order)
            n3 = int(basis.modes.shape[0])
            if float(n3) ** order > MAX_DENSE:
                raise DerivativeSetError(
                    f"order {order} in an FTG of {n3 // 3} atoms needs a dense {n3}^{order} "
                    "tensor; use a smaller FTG for this order")
            phi = basis.to_cartesian(np.array(self._values[order]))
            phi.setflags(write=False)
            self._cache[key] = phi
        return self._cache[key]

    def derived(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per set and ``key`` (the set never changes, so what
        is derived from it stays valid), e.g. the observables' real-space tensors."""
        key = ("derived", key)
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # ------------------------------------------------------------------ new sets
    def select(self, orders: Iterable[int]) -> DerivativeSet:
        """The set with only ``orders`` (each must be present)."""
        keep = sorted(set(int(n) for n in orders))
        self.require(keep, "the selection")
        state = self._state()
        for field in ("values", "labels", "supercell_matrices", "uncertainties", "extra",
                      "sources", "bases"):
            state[field] = {n: v for n, v in state[field].items() if n in keep}
        return DerivativeSet(**state)

    def renamed(self, name: str) -> DerivativeSet:
        """The same derivatives under another label."""
        return DerivativeSet(**{**self._state(), "name": name})

    # ------------------------------------------------------------------ producers
    @classmethod
    def from_bases(
        cls,
        name: str,
        primitive: Atoms,
        orders: Mapping[int, tuple[IrreducibleBasis, Any]],
        uncertainties: Mapping[int, Any] | None = None,
        *,
        nac: Mapping[str, Any] | None = None,
    ) -> DerivativeSet:
        """From values in known bases: ``orders = {n: (basis_n, values_n)}``.

        ``basis_n`` is built on ``primitive`` in its FTG ``basis_n.sym.S``; values must be
        finite.
        """
        return cls(
            name, primitive,
            values={n: v for n, (_, v) in orders.items()},
            labels={n: list(b.labels) for n, (b, _) in orders.items()},
            supercell_matrices={n: np.asarray(b.sym.S) for n, (b, _) in orders.items()},
            uncertainties=uncertainties, nac=nac,
            bases={n: b for n, (b, _) in orders.items()},
        ).check_finite()

    @classmethod
    def from_result(
        cls,
        result: DerivativeResult,
        prepared: Prepared,
        *,
        name: str,
        attrs: Mapping[str, Any] | None = None,
    ) -> DerivativeSet:
        """From a fit (:func:`~anharmbench.derivatives.fit.fit`) of a prepared plan.

        ``extra`` holds, per order, ``multiplicity``, ``steps`` (Angstrom), ``raw``
        (per-step estimates), ``poor_fit`` and the reported (our convention) datasets
        (:func:`anharmbench.symmetry.convention.paper_datasets`), as ``derivatives.h5``
        stores them.
        """
        from anharmbench.symmetry.convention import paper_datasets

        S = np.asarray(prepared.job.supercell, dtype=np.int64)
        extra = {
            n: {"multiplicity": np.array([t.multiplicity for t in prepared.bases[n].tensors]),
                "steps": result.steps[n], "raw": result.raw[n], "poor_fit": result.poor_fit[n],
                **paper_datasets(prepared.bases[n], result.values[n],
                                 result.uncertainties[n])}
            for n in result.orders
        }
        return cls(
            name, prepared.primitive,
            values={n: result.values[n] for n in result.orders},
            labels={n: list(result.labels[n]) for n in result.orders},
            supercell_matrices={n: S for n in result.orders},
            uncertainties={n: result.uncertainties[n] for n in result.orders},
            extra=extra, attrs=attrs,
            bases={n: prepared.bases[n] for n in result.orders},
        )

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None, *,
                  orders: Iterable[int] | None = None,
                  bases: Mapping[int, IrreducibleBasis] | None = None) -> DerivativeSet:
        """Read one ``derivatives.h5`` (measured or imported):
        :func:`anharmbench.derivatives.io.read_derivative_set` (its parameters)."""
        from anharmbench.derivatives.io import read_derivative_set

        return read_derivative_set(path, name, orders=orders, bases=bases)

    @classmethod
    def from_files(
        cls,
        paths: str | Path | Sequence[str | Path],
        name: str | None = None,
        *,
        orders: Iterable[int] | None = None,
        masses: Mapping[str, float] | None = None,
    ) -> DerivativeSet:
        """Read several ``derivatives.h5`` of one potential and primitive cell into one set.

        Parameters
        ----------
        paths
            One or several files (e.g. the 2I file for orders 2-3 and the S_C file for
            order 4).
        name
            Label; default: the potential's name in the first file.
        orders
            Keep only these orders (default: all orders of all files).
        masses
            ``{symbol: amu}`` overriding the masses (default: the file's, else ASE's).

        ``attrs`` and ``nac`` are the first file's that has them.

        Raises
        ------
        DerivativeSetError
            Files of different sources (potentials, DFT data: their ``potential_hash``)
            or primitive cells, or an order present in two files.
        MissingOrderError
            An order of ``orders`` is in none of the files.
        """
        from anharmbench.derivatives.joins import check_same_source

        if isinstance(paths, (str, Path)):
            paths = [paths]
        if not paths:
            raise DerivativeSetError("no derivatives files given")
        parts = [cls.from_file(p) for p in paths]
        check_same_source(parts)
        return cls.combine(parts, name, orders=orders, masses=masses)

    @classmethod
    def combine(
        cls,
        parts: Sequence[DerivativeSet],
        name: str | None = None,
        *,
        orders: Iterable[int] | None = None,
        masses: Mapping[str, float] | None = None,
        duplicates: str = "error",
        attrs: Mapping[str, Any] | None = None,
    ) -> DerivativeSet:
        """One set from sets of the same potential and primitive cell (e.g. one per FTG).

        Parameters
        ----------
        parts
            The sets, in order of preference.
        name
            Label; default: the first part's.
        orders
            Keep only these orders (default: all orders of all parts).
        masses
            ``{symbol: amu}`` overriding the masses (default: the first part's).
        duplicates
            An order in two parts: ``"error"``, or ``"first"`` (the first part's is kept).
        attrs
            Root attributes added to (or replacing those of) the first part's.

        ``attrs`` are the first part's (updated by ``attrs``) and ``nac`` the first part's
        that has it.

        Raises
        ------
        DerivativeSetError
            Parts of different primitive cells, or (``duplicates="error"``) an order in
            two parts.
        MissingOrderError
            An order of ``orders`` is in none of the parts.
        """
        if duplicates not in ("error", "first"):
            raise ValueError(f"duplicates is 'error' or 'first', got {duplicates!r}")
        if not parts:
            raise DerivativeSetError("no derivative sets given")
        wanted = None if orders is None else set(int(n) for n in orders)
        first = parts[0]
        where: dict[int, str] = {}
        for part in parts:
            if not _same_crystal(first._primitive, part._primitive):
                raise DerivativeSetError(
                    f"{part._describe()} was measured on a different primitive cell than "
                    f"{first._describe()}")
            for n in part.orders:
                if (wanted is None or n in wanted) and n in where and duplicates == "error":
                    raise DerivativeSetError(
                        f"order {n} is in both {where[n]} and {part._describe(n)}; pass one "
                        "of them (or select orders)")
                where.setdefault(n, part._describe(n))
        if wanted is not None:
            missing = sorted(wanted - set(where))
            if missing:
                raise MissingOrderError(
                    f"order(s) {missing} not found in {[p._describe() for p in parts]}")
        prim = first._primitive.copy()
        if masses:
            prim.set_masses([masses.get(s, m) for s, m in
                             zip(prim.get_chemical_symbols(), prim.get_masses(), strict=True)])
        state: dict[str, Any] = {
            "name": name if name is not None else first.name, "primitive": prim,
            "values": {}, "labels": {}, "supercell_matrices": {}, "uncertainties": {},
            "extra": {}, "sources": {}, "bases": {},
            "nac": next((p.nac for p in parts if p.nac is not None), None),
            "attrs": {**first.attrs, **(attrs or {})}}
        for part in parts:
            for n in part.orders:
                if (wanted is not None and n not in wanted) or n in state["values"]:
                    continue
                for field in ("values", "labels", "supercell_matrices", "uncertainties",
                              "extra", "sources"):
                    got = getattr(part, field)
                    if n in got:
                        state[field][n] = got[n]
                if n in part._bases_given:
                    state["bases"][n] = part._bases_given[n]
        return cls(**state)

    def _describe(self, order: int | None = None) -> str:
        """Where the set (or its ``order``) came from, for messages."""
        if order is not None and order in self._sources:
            return self._sources[order]
        files = sorted(set(self._sources.values()))
        return ", ".join(files) if files else repr(self._name)

    # ------------------------------------------------------------------ the file
    def to_file(self, path: str | Path) -> Path:
        """Write ``derivatives.h5``: :func:`anharmbench.derivatives.io.write_derivative_set`
        (:meth:`from_file` reads it back exactly)."""
        from anharmbench.derivatives.io import write_derivative_set

        return write_derivative_set(self, path)

    # ------------------------------------------------------------------ ecosystem
    def phonopy(self) -> Phonopy:
        """:class:`phonopy.Phonopy` with the fc2 of the order-2 FTG (full layout, eV/A^2),
        built once (:func:`anharmbench.phonopy_interface.derivatives_phonopy`) and shared
        by the callers of this set (phonopy keeps its last calculation on the object)."""
        from anharmbench.phonopy_interface import derivatives_phonopy

        self.require([2], "the harmonic phonons")
        return self.derived("phonopy", lambda: derivatives_phonopy(self))

    def phono3py(self, mesh: Sequence[int] | int | None = None, *,
                 sigmas: Sequence[float | None] | None = None, with_fc3: bool = True,
                 log_level: int = 0) -> Phono3py:
        """A new :class:`phono3py.Phono3py` carrying our fc2 and fc3 (full layouts):
        :func:`anharmbench.phonopy_interface.derivatives_phono3py` (its parameters)."""
        from anharmbench.phonopy_interface import derivatives_phono3py

        self.require([2, 3] if with_fc3 else [2],
                     "phono3py (fc2 and fc3)" if with_fc3 else "phono3py (fc2)")
        return derivatives_phono3py(self, mesh, sigmas=sigmas, with_fc3=with_fc3,
                                    log_level=log_level)


def _rebuild(state: dict[str, Any]) -> DerivativeSet:
    return DerivativeSet(**state)
