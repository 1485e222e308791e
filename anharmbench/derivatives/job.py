"""What to measure: a :class:`DerivativeJob`, and the job made concrete (:func:`prepare`).

A job names the crystal's supercell (FTG), the orders and the finite-difference settings;
:func:`prepare` builds the irreducible bases (by order) and the measurement plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.derivatives.plan import MeasurementPlan, build_plan, geometric_steps
from anharmbench.errors import InputError
from anharmbench.structures import build_supercell, supercell_matrix
from anharmbench.symmetry import irreducible_basis
from anharmbench.validation import check_structure

#: Fewest step sizes that give the zero-step extrapolation an uncertainty.
MIN_STEPS = 3


@dataclass(frozen=True)
class DerivativeJob:
    """What to measure.

    Attributes
    ----------
    supercell
        3x3 integer supercell matrix (rows in the primitive basis).
    orders
        Derivative orders, each in 2..6.
    method
        ``"forces"`` (order n from (n-1)-th differences of forces) or ``"energies"``.
    variant
        ``"lone"`` or ``"bundled"`` (least squares, overdetermined by ``overdetermination``).
    qtuple
        Restrict to the derivatives of one Q-tuple (names such as ``"L"``, ``"G"`` or
        fractional q-points as strings), or ``None`` for all.
    h_range
        Smallest and largest step, Angstrom.
    h_ranges
        Per-order windows ``{order: (h_min, h_max)}`` that override ``h_range`` (e.g. the
        windows chosen by :func:`choose_job_steps`).
    n_steps
        Number of step sizes.
    overdetermination
        Bundled variant: equations per unknown.
    seed
        Seed of the bundled directions.
    """

    supercell: tuple[tuple[int, ...], ...]
    orders: tuple[int, ...]
    method: str = "forces"
    variant: str = "lone"
    qtuple: tuple[str, ...] | None = None
    h_range: tuple[float, float] = (0.01, 0.08)
    h_ranges: dict[int, tuple[float, float]] | None = None
    n_steps: int = 10
    overdetermination: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        mat = supercell_matrix(np.asarray(self.supercell))
        object.__setattr__(self, "supercell", tuple(tuple(int(v) for v in row) for row in mat))
        orders = tuple(sorted({int(n) for n in self.orders}))
        bad = [n for n in orders if not 2 <= n <= 6]
        if not orders or bad:
            raise InputError(f"orders must be in 2..6, got {list(self.orders)}")
        object.__setattr__(self, "orders", orders)
        if self.method not in ("forces", "energies"):
            raise InputError(f"method must be 'forces' or 'energies', not {self.method!r}")
        if self.variant not in ("lone", "bundled"):
            raise InputError(f"variant must be 'lone' or 'bundled', not {self.variant!r}")
        if self.qtuple is not None:
            object.__setattr__(self, "qtuple", tuple(str(q) for q in self.qtuple))
        object.__setattr__(self, "h_range", tuple(float(h) for h in self.h_range))
        if self.h_ranges is not None:
            windows = {int(n): (float(w[0]), float(w[1])) for n, w in self.h_ranges.items()}
            for n, (lo, hi) in windows.items():
                if n not in orders:
                    raise InputError(f"h_ranges names order {n}, which is not in {orders}")
                if not 0 < lo <= hi:
                    raise InputError(f"step window of order {n} must satisfy 0 < h_min <= h_max")
            object.__setattr__(self, "h_ranges", windows)
        lo, hi = self.h_range
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise InputError(f"the step window must satisfy 0 < h_min <= h_max, got "
                             f"{self.h_range} A; e.g. --h-min 0.01 --h-max 0.08")
        if hi > 1.0:
            raise InputError(f"the largest step {hi:g} A is beyond any harmonic regime "
                             "(and may swap atoms); steps are in Angstrom, e.g. 0.01..0.08")
        if int(self.n_steps) < MIN_STEPS:
            # d(h) = d0 + a h^2 has two unknowns: a third step is what estimates the error
            raise InputError(
                f"{self.n_steps} step size(s) cannot give an uncertainty: the extrapolation "
                f"to zero step fits d0 + a h^2 and needs at least {MIN_STEPS} steps; "
                f"give {MIN_STEPS} or more (--steps, or n_steps in a study config)")
        object.__setattr__(self, "n_steps", int(self.n_steps))
        if not (np.isfinite(self.overdetermination) and self.overdetermination >= 1.0):
            raise InputError(f"overdetermination must be >= 1 (equations per unknown), got "
                             f"{self.overdetermination}")

    def window(self, order: int) -> tuple[float, float]:
        """Step window ``(h_min, h_max)`` of one order, Angstrom."""
        if self.h_ranges is not None and order in self.h_ranges:
            return self.h_ranges[order]
        return self.h_range  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DerivativeJob:
        d = dict(data)
        if d.get("h_ranges") is not None:
            d["h_ranges"] = {int(n): tuple(w) for n, w in d["h_ranges"].items()}
        if d.get("qtuple") is not None:
            d["qtuple"] = tuple(d["qtuple"])
        return cls(**d)


@dataclass
class Prepared:
    """A job made concrete: structures, bases (by order) and the plan."""

    job: DerivativeJob
    primitive: Atoms
    supercell: Atoms
    bases: dict[int, Any]
    plan: MeasurementPlan
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[int, int]:
        return {n: len(b) for n, b in self.bases.items()}


def _parse_qtuple(qtuple: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for q in qtuple:
        toks = q.replace(",", " ").split()
        if len(toks) == 3:
            from fractions import Fraction

            out.append([float(Fraction(t)) for t in toks])
        else:
            out.append(q)
    return out


def job_bases(job: DerivativeJob, primitive: Atoms) -> dict[int, Any]:
    """The irreducible basis of every order of ``job`` (its Q-tuple, if any, applied)."""
    check_structure(primitive, "the primitive cell")  # before spglib sees it
    smat = np.asarray(job.supercell)
    bases: dict[int, Any] = {}
    for n in job.orders:
        kwargs: dict[str, Any] = {}
        if job.qtuple is not None:
            if len(job.qtuple) != n:
                raise InputError(
                    f"the Q-tuple {list(job.qtuple)} has {len(job.qtuple)} entries but the "
                    f"order is {n}; give one q-point per derivative slot"
                )
            kwargs["qtuple"] = _parse_qtuple(job.qtuple)
        bases[n] = irreducible_basis(primitive, smat, order=n, **kwargs)
    return bases


def prepare(job: DerivativeJob, primitive: Atoms, *, count_naive: bool = False) -> Prepared:
    """Bases for every order of ``job`` and the measurement plan.

    ``count_naive`` also counts what measuring each order on its own would cost (for
    reports only; it doubles the planning time, minutes for a 64-atom order-3 plan).
    """
    bases = job_bases(job, primitive)
    plan = build_plan(
        bases,
        count_naive=count_naive and len(job.orders) > 1,
        method=job.method,  # type: ignore[arg-type]
        variant=job.variant,  # type: ignore[arg-type]
        steps={n: geometric_steps(*job.window(n), job.n_steps) for n in job.orders},
        overdetermination=job.overdetermination,
        seed=job.seed,
    )
    supercell = build_supercell(primitive, np.asarray(job.supercell))
    return Prepared(job, primitive.copy(), supercell, bases, plan)


def atoms_record(atoms: Atoms) -> dict[str, Any]:
    """Symbols, cell and scaled positions of ``atoms`` as JSON-ready data."""
    return {
        "symbols": atoms.get_chemical_symbols(),
        "cell": np.asarray(atoms.cell.array).tolist(),
        "scaled_positions": atoms.get_scaled_positions().tolist(),
    }


def atoms_from_record(d: dict[str, Any]) -> Atoms:
    """The inverse of :func:`atoms_record` (periodic in all directions)."""
    return Atoms(d["symbols"], cell=d["cell"], scaled_positions=d["scaled_positions"], pbc=True)
