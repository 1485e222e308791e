"""Measurement plans: displacement directions, step sizes and the configurations to evaluate.

A plan measures the irreducible derivatives of several orders of one supercell (one set of
``modes``) by central finite differences along directions ``v`` in mode space (unit
vectors, so the Cartesian displacement ``u = t * modes @ v`` has norm ``|t|`` Angstrom).

Economy
-------
* Orders are planned from the highest down. A direction measured for order ``n`` at steps
  ``h`` is sampled at ``t = j h`` for the offsets ``j`` of the order-``n`` stencil
  (``j = +-1 .. +-p``, ``p = (m + 1) // 2``, ``m`` the finite-difference order); the
  stencil of every lower order is contained in it, so when the lower order uses the same
  steps (the default) the direction serves it at no cost, and new directions are only
  added for information still missing.
* Configurations are deduplicated: the undisplaced reference (``t = 0``) is evaluated
  once, and so are coinciding points of one direction (with the default geometric steps,
  ratio ``2^(1/3)``, ``2 h_i = h_(i+3)``).
* :attr:`MeasurementPlan.naive_evaluations` counts what measuring every order on its own
  would cost (its own directions, every ``(direction, step, offset)`` evaluated, one
  reference per order); :attr:`MeasurementPlan.n_evaluations` is what this plan costs.

Step sizes
----------
By default ten geometric steps from ``h_min = 0.01`` to ``h_max = 0.08`` Angstrom, shared
by all orders. Per-order steps can be given as a mapping; see
:func:`anharmbench.derivatives.steps.choose_steps` for the automatic choice of the range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.derivatives.directions import (
    Method,
    RowSpace,
    block_ranks,
    derivative_order,
    design_blocks,
    direction_key,
    select_bundled,
    select_lone,
)
from anharmbench.derivatives.stencils import Stencil, central_stencil

Variant = Literal["lone", "bundled"]
StepsSpec = np.ndarray | Mapping[int, np.ndarray] | None

DEFAULT_H_RANGE: tuple[float, float] = (0.01, 0.08)
DEFAULT_N_STEPS = 10
_PLAN_FORMAT = "anharmbench-plan-1"


def _t_key(t: float) -> float:
    return round(float(t), 12) + 0.0


def geometric_steps(h_min: float, h_max: float, n_steps: int = DEFAULT_N_STEPS) -> np.ndarray:
    """``n_steps`` geometric step sizes from ``h_min`` to ``h_max`` (Angstrom, float64)."""
    if not 0 < h_min <= h_max:
        raise ValueError(f"need 0 < h_min <= h_max, got {h_min}, {h_max}")
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    if n_steps == 1:
        return np.array([float(h_min)])
    return np.geomspace(h_min, h_max, n_steps)


@dataclass(frozen=True, eq=False)
class OrderMeasurement:
    """How one derivative order is measured.

    Attributes
    ----------
    order
        Energy derivative order ``n``.
    stencil
        Central stencil of the finite-difference order ``m`` (``n`` for energies,
        ``n - 1`` for forces).
    steps
        ``(S,)`` float64 step sizes ``h`` (Angstrom of displacement norm), increasing.
    directions
        ``(D,)`` int64 indices into :attr:`MeasurementPlan.directions`.
    configurations
        ``(D, S, P)`` int64 index of the configuration at ``t = offsets[p] * steps[s]``
        along direction ``d``.
    design
        ``(D, r, K)`` float64 design blocks (see
        :func:`anharmbench.derivatives.directions.design_blocks`).
    labels
        ``K`` labels of the irreducible derivatives.
    """

    order: int
    stencil: Stencil
    steps: np.ndarray
    directions: np.ndarray
    configurations: np.ndarray
    design: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_unknowns(self) -> int:
        """Number ``K`` of irreducible derivatives of this order."""
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class MeasurementPlan:
    """Everything needed to evaluate and fit one set of finite-difference measurements.

    Attributes
    ----------
    method
        ``"forces"`` (order ``n`` from ``(n-1)``-th differences of forces, LID_1-like) or
        ``"energies"`` (``n``-th differences of energies, LID_0-like).
    variant
        ``"lone"`` or ``"bundled"`` direction selection.
    modes
        ``(3N, M)`` float64 orthonormal mode vectors (shared by all bases).
    directions
        ``(D, M)`` float64 unit directions in mode space.
    direction_orders
        For each direction, the orders whose stencil and steps it is sampled at.
    measurements
        Per order, how it is measured.
    displacements
        ``(n_conf, N, 3)`` float64 Cartesian displacements (Angstrom) to evaluate.
    conf_direction
        ``(n_conf,)`` int64 direction of each configuration (-1: the reference).
    conf_amplitude
        ``(n_conf,)`` float64 signed amplitude ``t`` (Angstrom) of each configuration.
    naive_evaluations
        Evaluations needed if every order were measured on its own without any sharing
        (None when not counted).
    seed
        Seed of the random choices.
    """

    method: Method
    variant: Variant
    modes: np.ndarray
    directions: np.ndarray
    direction_orders: tuple[tuple[int, ...], ...]
    measurements: dict[int, OrderMeasurement]
    displacements: np.ndarray
    conf_direction: np.ndarray
    conf_amplitude: np.ndarray
    naive_evaluations: int | None
    seed: int
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", self._compute_hash())

    @property
    def orders(self) -> tuple[int, ...]:
        """Measured orders, increasing."""
        return tuple(sorted(self.measurements))

    @property
    def n_evaluations(self) -> int:
        """Number of configurations to evaluate (duplicates removed)."""
        return int(self.displacements.shape[0])

    @property
    def natoms(self) -> int:
        """Number of atoms ``N``."""
        return int(self.displacements.shape[1])

    @property
    def labels(self) -> dict[int, list[str]]:
        """Labels of the irreducible derivatives, keyed by order."""
        return {n: list(m.labels) for n, m in self.measurements.items()}

    @property
    def steps(self) -> dict[int, np.ndarray]:
        """Step sizes (Angstrom) keyed by order."""
        return {n: m.steps for n, m in self.measurements.items()}

    def summary(self) -> str:
        """One line per order: unknowns, directions, steps; then the evaluation counts."""
        lines = [f"{self.method}/{self.variant} plan {self.hash[:12]}"]
        for n, meas in sorted(self.measurements.items()):
            lines.append(
                f"  order {n}: {meas.n_unknowns} derivatives, {meas.directions.size} directions, "
                f"{meas.steps.size} steps {meas.steps[0]:.4g}..{meas.steps[-1]:.4g} A, "
                f"stencil {meas.stencil.offsets.tolist()}"
            )
        naive = "" if self.naive_evaluations is None else f" (naive: {self.naive_evaluations})"
        lines.append(f"  {self.n_evaluations} evaluations{naive}")
        return "\n".join(lines)

    def _compute_hash(self) -> str:
        h = hashlib.sha256()
        header = {
            "format": _PLAN_FORMAT,
            "method": self.method,
            "variant": self.variant,
            "orders": list(self.orders),
            "labels": {str(n): list(m.labels) for n, m in sorted(self.measurements.items())},
            "direction_orders": [list(o) for o in self.direction_orders],
            "shape": list(self.displacements.shape),
        }
        h.update(json.dumps(header, sort_keys=True).encode())

        def put(a: np.ndarray, decimals: int | None = 12) -> None:
            if decimals is not None:
                a = np.round(np.asarray(a, dtype="<f8"), decimals) + 0.0
            h.update(np.ascontiguousarray(a).tobytes())

        put(self.modes)
        put(self.directions)
        put(self.displacements)
        for _, meas in sorted(self.measurements.items()):
            put(meas.steps)
            put(meas.directions.astype("<i8"), None)
            put(meas.configurations.astype("<i8"), None)
        return h.hexdigest()


def _normalise_steps(steps: StepsSpec, orders: list[int], h_range: tuple[float, float],
                     n_steps: int) -> dict[int, np.ndarray]:
    if steps is None:
        common = geometric_steps(h_range[0], h_range[1], n_steps)
        return {n: common for n in orders}
    if isinstance(steps, Mapping):
        missing = [n for n in orders if n not in steps]
        if missing:
            raise ValueError(f"steps given for orders {sorted(steps)}, missing {missing}")
        raw = {n: np.asarray(steps[n], dtype=np.float64) for n in orders}
    else:
        arr = np.asarray(steps, dtype=np.float64)
        raw = {n: arr for n in orders}
    out = {}
    for n, arr in raw.items():
        arr = np.unique(np.atleast_1d(arr))
        if arr.size == 0 or np.any(arr <= 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"order {n}: step sizes must be positive and finite, got {arr}")
        out[n] = arr
    return out


def _steps_subset(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether every step of ``a`` is (to 1e-12 relative) a step of ``b``."""
    return bool(np.all(np.min(np.abs(a[:, None] / b[None, :] - 1.0), axis=1) < 1e-12))


def _rows(method: Method, modes: np.ndarray) -> int:
    return 1 if method == "energies" else int(modes.shape[1])


def _check_bases(bases: Mapping[int, DerivativeBasis]) -> tuple[list[int], np.ndarray]:
    if not bases:
        raise ValueError("no bases given")
    orders = sorted(bases)
    modes = np.asarray(bases[orders[0]].modes, dtype=np.float64)
    for n in orders:
        b = bases[n]
        if b.order != n:
            raise ValueError(f"basis keyed by order {n} reports order {b.order}")
        other = np.asarray(b.modes, dtype=np.float64)
        if other.shape != modes.shape or not np.allclose(other, modes, atol=1e-10):
            raise ValueError(f"basis of order {n} has different modes than order {orders[0]}")
    if modes.shape[0] % 3:
        raise ValueError(f"modes have {modes.shape[0]} rows, not a multiple of 3")
    return orders, modes


def _select(
    basis: DerivativeBasis, method: Method, variant: Variant, existing: np.ndarray,
    rng: np.random.Generator, overdetermination: float, max_coefficient: int,
    taken: set[bytes] | None = None,
) -> list[np.ndarray]:
    """New directions for one order, given the ``(E, r, K)`` blocks of reused ones."""
    if variant == "lone":
        space = RowSpace(len(basis))
        for block in existing:
            space.add(block)
        return select_lone(basis, method, space, rng, max_coefficient=max_coefficient)
    if variant == "bundled":
        return select_bundled(basis, method, existing, rng, overdetermination=overdetermination,
                              taken=taken)
    raise ValueError(f"unknown variant {variant!r}; expected 'lone' or 'bundled'")


def build_plan(
    bases: Mapping[int, DerivativeBasis],
    *,
    method: Method = "forces",
    variant: Variant = "lone",
    steps: StepsSpec = None,
    h_range: tuple[float, float] = DEFAULT_H_RANGE,
    n_steps: int = DEFAULT_N_STEPS,
    overdetermination: float = 3.0,
    seed: int = 0,
    max_coefficient: int = 3,
    count_naive: bool = True,
) -> MeasurementPlan:
    """Plan the finite-difference measurement of the irreducible derivatives.

    Parameters
    ----------
    bases
        Derivative bases keyed by order (all with the same ``modes``).
    method
        ``"forces"``: order ``n`` from ``(n-1)``-th central differences of the forces
        projected on the modes. ``"energies"``: from ``n``-th central differences of the
        energy.
    variant
        ``"lone"``: simple directions (single modes, then integer combinations of 2, 3, ...
        modes of each derivative's support), just enough to determine every derivative.
        ``"bundled"``: seeded random directions in the span of each derivative's modes,
        until ``overdetermination * K`` independent equations per order.
    steps
        Step sizes ``h`` (Angstrom of displacement norm): one array for all orders, or a
        mapping order -> array. Default: ``n_steps`` geometric steps over ``h_range``.
    h_range
        ``(h_min, h_max)`` in Angstrom when ``steps`` is None.
    n_steps
        Number of steps when ``steps`` is None.
    overdetermination
        Bundled variant: ratio of equations to unknowns per order.
    seed
        Seed of every random choice (plans are reproducible).
    max_coefficient
        Lone variant: largest integer weight of a mode in a direction.
    count_naive
        Also plan every order on its own to report
        :attr:`MeasurementPlan.naive_evaluations` (doubles the planning time; None if False).

    Returns
    -------
    MeasurementPlan
    """
    orders, modes = _check_bases(bases)
    if method not in ("forces", "energies"):
        raise ValueError(f"unknown method {method!r}; expected 'forces' or 'energies'")
    steps_by_order = _normalise_steps(steps, orders, h_range, n_steps)
    stencils = {n: central_stencil(derivative_order(n, method)) for n in orders}
    nonzero = {n: {int(j) for j in stencils[n].offsets if j != 0} for n in orders}

    dirs: list[np.ndarray] = []
    dir_orders: list[set[int]] = []
    index: dict[bytes, int] = {}
    used: dict[int, list[int]] = {}
    for n in sorted(orders, reverse=True):
        basis = bases[n]
        rng = np.random.default_rng([seed, n])
        used[n] = []
        if len(basis) == 0:
            continue
        reusable = [d for d in range(len(dirs)) if any(
            nonzero[n] <= nonzero[o] and _steps_subset(steps_by_order[n], steps_by_order[o])
            for o in dir_orders[d])]
        existing = (design_blocks(basis, method, np.array([dirs[d] for d in reusable]))
                    if reusable else np.zeros((0, _rows(method, modes), len(basis))))
        used[n].extend(reusable)
        taken = {direction_key(dirs[d]) for d in reusable}
        for v in _select(basis, method, variant, existing, rng, overdetermination,
                         max_coefficient, taken):
            key = direction_key(v)
            if key not in index:
                index[key] = len(dirs)
                dirs.append(v)
                dir_orders.append(set())
            d = index[key]
            dir_orders[d].add(n)
            if d not in used[n]:
                used[n].append(d)

    # configurations
    natoms = modes.shape[0] // 3
    m_dim = modes.shape[1]
    directions = np.array(dirs, dtype=np.float64).reshape(len(dirs), m_dim)
    cart = (directions @ modes.T).reshape(len(dirs), natoms, 3)
    conf_key: dict[tuple[int, float], int] = {}
    conf_dir: list[int] = []
    conf_t: list[float] = []
    if any(0 in stencils[n].offsets.tolist() for n in orders if len(bases[n])):
        conf_key[(-1, 0.0)] = 0
        conf_dir.append(-1)
        conf_t.append(0.0)
    for d in range(len(dirs)):
        for n in sorted(dir_orders[d]):
            for h in steps_by_order[n]:
                for j in stencils[n].offsets:
                    if j == 0:
                        continue
                    key = (d, _t_key(j * h))
                    if key not in conf_key:
                        conf_key[key] = len(conf_dir)
                        conf_dir.append(d)
                        conf_t.append(float(j * h))
    conf_direction = np.array(conf_dir, dtype=np.int64)
    conf_amplitude = np.array(conf_t, dtype=np.float64)
    displacements = np.zeros((len(conf_dir), natoms, 3))
    moved = conf_direction >= 0
    displacements[moved] = conf_amplitude[moved, None, None] * cart[conf_direction[moved]]

    measurements: dict[int, OrderMeasurement] = {}
    for n in orders:
        st = stencils[n]
        dsel = np.array(sorted(used[n]), dtype=np.int64)
        cfg = np.empty((dsel.size, steps_by_order[n].size, st.offsets.size), dtype=np.int64)
        for a, d in enumerate(dsel):
            for s, h in enumerate(steps_by_order[n]):
                for p, j in enumerate(st.offsets):
                    key = (-1, 0.0) if j == 0 else (int(d), _t_key(j * h))
                    cfg[a, s, p] = conf_key[key]
        design = (design_blocks(bases[n], method, directions[dsel]) if dsel.size
                  else np.zeros((0, _rows(method, modes), len(bases[n]))))
        measurements[n] = OrderMeasurement(
            order=n, stencil=st, steps=steps_by_order[n], directions=dsel, configurations=cfg,
            design=design, labels=tuple(bases[n].labels),
        )

    naive = (_naive_count(bases, method, variant, stencils, steps_by_order, seed,
                          overdetermination, max_coefficient) if count_naive else None)
    return MeasurementPlan(
        method=method, variant=variant, modes=modes, directions=directions,
        direction_orders=tuple(tuple(sorted(o)) for o in dir_orders), measurements=measurements,
        displacements=displacements, conf_direction=conf_direction,
        conf_amplitude=conf_amplitude, naive_evaluations=naive, seed=seed,
    )


def _naive_count(
    bases: Mapping[int, DerivativeBasis], method: Method, variant: Variant,
    stencils: dict[int, Stencil], steps: dict[int, np.ndarray], seed: int,
    overdetermination: float, max_coefficient: int,
) -> int:
    """Evaluations if each order were measured on its own, every sample evaluated."""
    total = 0
    for n, basis in bases.items():
        if len(basis) == 0:
            continue
        rng = np.random.default_rng([seed, n])
        empty = np.zeros((0, _rows(method, np.asarray(basis.modes)), len(basis)))
        n_dirs = len(_select(basis, method, variant, empty, rng, overdetermination,
                             max_coefficient))
        offs = stencils[n].offsets.tolist()
        total += n_dirs * sum(1 for j in offs if j != 0) * steps[n].size + (1 if 0 in offs else 0)
    return total


@dataclass(frozen=True)
class EconomyBound:
    """The group-theoretical least number of evaluations of one order (or a whole plan).

    Along one direction, the order-``n`` derivative gives at most ``r_max`` independent
    equations (the rank of a generic direction's design block: 1 with energies, up to the
    number of modes with forces), so ``K`` unknowns at ``overdetermination`` need at least
    ``ceil(overdetermination * K / r_max)`` directions, each sampled at the ``points``
    distinct nonzero displacements of the stencil and steps. Directions are shared by
    orders, so a plan needs at least the largest of its orders' bounds (plus the
    undisplaced reference when a stencil holds it).

    Attributes
    ----------
    order, unknowns, r_max, directions, points, evaluations
        ``directions = ceil(overdetermination * unknowns / r_max)``,
        ``evaluations = directions * points``.
    """

    order: int
    unknowns: int
    r_max: int
    directions: int
    points: int
    evaluations: int


def economy_bounds(plan: MeasurementPlan, bases: Mapping[int, DerivativeBasis],
                   overdetermination: float = 1.0, seed: int = 0
                   ) -> tuple[dict[int, EconomyBound], int]:
    """Per-order :class:`EconomyBound` of ``plan`` and the plan's least evaluation count.

    ``overdetermination``: equations per unknown required (the bundled variant's; 1 for a
    plan that only determines the derivatives, as the lone variant does).
    """
    rng = np.random.default_rng(seed)
    out: dict[int, EconomyBound] = {}
    reference = False
    for n, meas in plan.measurements.items():
        basis = bases[n]
        if len(basis) == 0:
            continue
        m = plan.modes.shape[1]
        draws = rng.standard_normal((4, m))  # generic directions: the largest block rank
        r_max = int(np.max(block_ranks(design_blocks(basis, plan.method, draws))))
        n_dirs = int(np.ceil(overdetermination * len(basis) / max(r_max, 1) - 1e-9))
        points = len({_t_key(j * h) for h in meas.steps for j in meas.stencil.offsets if j})
        reference |= 0 in meas.stencil.offsets.tolist()
        out[n] = EconomyBound(n, len(basis), r_max, n_dirs, points, n_dirs * points)
    total = max((b.evaluations for b in out.values()), default=0) + int(reference)
    return out, total
