"""Automatic choice of the step range, order by order.

Finite-difference estimates ``d_k(h)`` suffer from two errors: the truncation error
``a h^2 + b h^4 + ...`` (large steps) and the noise of the evaluator amplified by
``h^-m`` (small steps, ``m`` the finite-difference order). The quadratic-tail extrapolation
removes the ``h^2`` term, so a good window is one where that term is visible but small and
the noise is negligible.

:func:`choose_steps` starts from a window (default ``0.01..0.08`` Angstrom, ten geometric
steps), measures and fits, and for each order looks at two numbers from
:func:`anharmbench.derivatives.fit.fit`, both relative to the derivative's scale and
maximised over the order's derivatives:

* ``rel_h2``: the part of the ``h^2`` correction at the largest step that is significant,
  ``max(0, |a| - 3 sigma_a) h_max^2`` (a noisy, insignificant ``a`` does not count);
* ``rel_unc``: the uncertainty of the extrapolated value.

Both are taken as the 90% quantile over the order's derivatives (``quantile``).

Rules (one window shift by a factor ``shift``, default 2, per iteration and order):

1. ``rel_h2 > max_rel_h2`` (default 0.1): the window reaches beyond the quadratic regime
   (there the uncertainty itself is mostly the misfit of the unmodelled ``h^4`` terms);
   shift the window down (``h -> h / shift``);
2. otherwise, ``rel_unc > max_rel_uncertainty`` (default 1e-3): the estimates are
   noise-limited; shift the window up if ``rel_h2 * shift^2 <= max_rel_h2``, i.e. if the
   tail stays quadratic;
3. otherwise (or when the rule's condition fails) the order's window is accepted.

Every shift is checked once measured: when the new uncertainty is above
``max_rel_uncertainty`` and worse than before the shift (the noise, amplified as ``h^-m``
for an ``m``-th difference, won over the truncation error, or the reverse), the order goes
back to its previous window and stops there.
An order never shifts back in the direction opposite to its first shift (no oscillation),
stays within ``h_bounds``, and the loop stops after ``max_iter`` iterations. With the default
geometric steps (ratio ``2^(1/3)``) a shift by 2 keeps seven of the ten steps, and the
configurations already evaluated are reused (cached by content), so each shift costs about
three new steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.derivatives.directions import Method
from anharmbench.derivatives.fit import DerivativeResult, TailFitWarning, fit
from anharmbench.derivatives.plan import (
    DEFAULT_H_RANGE,
    DEFAULT_N_STEPS,
    MeasurementPlan,
    Variant,
    build_plan,
    geometric_steps,
)
from anharmbench.derivatives.results import Evaluator, Measurements, measure


@dataclass(frozen=True)
class StepChoice:
    """Outcome of :func:`choose_steps`.

    Attributes
    ----------
    steps
        Chosen ``(S,)`` step sizes (Angstrom) per order; pass to ``build_plan(steps=...)``.
    plan
        The plan measured with these steps.
    result
        Its fitted derivatives.
    history
        Per iteration, per order: ``(h_min, h_max, rel_h2, rel_unc)``.
    n_evaluations
        Distinct configurations evaluated over all iterations.
    measurements
        The evaluated configurations of ``plan`` (to store them, e.g. in a plan
        directory's results, instead of evaluating them again).
    """

    steps: dict[int, np.ndarray]
    plan: MeasurementPlan
    result: DerivativeResult
    history: list[dict[int, tuple[float, float, float, float]]]
    n_evaluations: int
    measurements: Measurements | None = None


class _CachedEvaluator:
    """Evaluate each distinct displacement once (keyed by content rounded to 1e-12 A)."""

    def __init__(self, evaluate: Evaluator) -> None:
        self.evaluate = evaluate
        self.cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def __call__(self, displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = [(np.round(u, 12) + 0.0).tobytes() for u in displacements]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            e, f = self.evaluate(displacements[missing])
            for j, i in enumerate(missing):
                self.cache[keys[i]] = (float(e[j]), np.array(f[j]))
        energies = np.array([self.cache[k][0] for k in keys])
        forces = np.array([self.cache[k][1] for k in keys]).reshape(displacements.shape)
        return energies, forces


def _window_metrics(result: DerivativeResult, n: int, significance: float, quantile: float
                    ) -> tuple[float, float]:
    """Significant relative h^2 term and relative uncertainty of an order (quantile over
    its derivatives)."""
    if result.values[n].size == 0:
        return 0.0, 0.0
    h2 = np.abs(result.h2_coefficients[n])
    h2_sig = np.maximum(h2 - significance * np.nan_to_num(result.h2_uncertainties[n]), 0.0)
    # relative_h2 = |a| h_max^2 / scale, so rescale by the significant fraction of |a|
    frac = np.divide(h2_sig, h2, out=np.zeros_like(h2), where=h2 > 0)
    rel_h2 = float(np.quantile(result.relative_h2[n] * frac, quantile))
    rel_unc = float(np.quantile(np.nan_to_num(result.relative_uncertainty[n]), quantile))
    return rel_h2, rel_unc


def choose_steps(
    bases: Mapping[int, DerivativeBasis],
    evaluate: Evaluator,
    *,
    method: Method = "forces",
    variant: Variant = "lone",
    h_range: tuple[float, float] = DEFAULT_H_RANGE,
    n_steps: int = DEFAULT_N_STEPS,
    shift: float = 2.0,
    max_rel_h2: float = 0.1,
    max_rel_uncertainty: float = 1e-3,
    significance: float = 3.0,
    quantile: float = 0.9,
    h_bounds: tuple[float, float] = (1e-4, 1.0),
    max_iter: int = 6,
    batch_size: int = 256,
    **plan_kwargs: Any,
) -> StepChoice:
    """Choose a step window per order by measuring (see the module docstring).

    Parameters
    ----------
    bases
        Derivative bases keyed by order.
    evaluate
        Batch evaluator of displacements (see :func:`anharmbench.derivatives.results.measure`).
    method, variant
        As in :func:`anharmbench.derivatives.plan.build_plan`.
    h_range
        Initial ``(h_min, h_max)`` in Angstrom.
    n_steps
        Steps per window.
    shift
        Factor by which a window moves.
    max_rel_h2, max_rel_uncertainty
        Thresholds of the rules.
    significance
        The ``h^2`` coefficient counts beyond ``significance`` standard errors.
    quantile
        The per-order metrics are this quantile over the order's derivatives (1.0: the
        worst derivative; below 1 a few ill-determined derivatives do not steer the window).
    h_bounds
        No step leaves ``[h_bounds[0], h_bounds[1]]`` (Angstrom).
    max_iter
        Maximum number of measure-and-fit rounds.
    batch_size
        Passed to :func:`measure`.
    **plan_kwargs
        Further arguments of :func:`build_plan` (e.g. ``seed``, ``overdetermination``).

    Returns
    -------
    StepChoice
    """
    if shift <= 1.0:
        raise ValueError("shift must be > 1")
    orders = sorted(bases)
    window = {n: (float(h_range[0]), float(h_range[1])) for n in orders}
    direction = dict.fromkeys(orders, 0)
    active = set(orders)
    previous: dict[int, tuple[tuple[float, float], float]] = {}
    reverted: set[int] = set()
    cached = _CachedEvaluator(evaluate)
    history: list[dict[int, tuple[float, float, float, float]]] = []
    plan: MeasurementPlan | None = None
    result: DerivativeResult | None = None
    for _ in range(max_iter):
        steps = {n: geometric_steps(*window[n], n_steps) for n in orders}
        plan = build_plan(bases, method=method, variant=variant, steps=steps, **plan_kwargs)
        data = measure(plan, cached, batch_size=batch_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TailFitWarning)
            result = fit(plan, data.energies, data.forces, warn=False)
        record = {}
        for n in orders:
            rel_h2, rel_unc = _window_metrics(result, n, significance, quantile)
            record[n] = (*window[n], rel_h2, rel_unc)
            if n not in active:
                continue
            if n in previous and rel_unc > max(max_rel_uncertainty, previous[n][1]):
                window[n] = previous[n][0]  # the last shift made things worse: undo it
                active.discard(n)
                reverted.add(n)
                continue
            lo, hi = window[n]
            move = 0
            if rel_h2 > max_rel_h2:
                move = -1
            elif rel_unc > max_rel_uncertainty:
                move = 1 if rel_h2 * shift**2 <= max_rel_h2 else 0
            if move and direction[n] == -move:
                move = 0
            if move == -1 and lo / shift < h_bounds[0]:
                move = 0
            if move == 1 and hi * shift > h_bounds[1]:
                move = 0
            if move == 0:
                active.discard(n)
            else:
                previous[n] = (window[n], rel_unc)
                direction[n] = move
                window[n] = (lo * shift**move, hi * shift**move)
        history.append(record)
        if not active:
            break
    assert plan is not None and result is not None
    if active or reverted:  # the final windows were not the last measured: measure them
        steps = {n: geometric_steps(*window[n], n_steps) for n in orders}
        plan = build_plan(bases, method=method, variant=variant, steps=steps, **plan_kwargs)
        data = measure(plan, cached, batch_size=batch_size)
        result = fit(plan, data.energies, data.forces, warn=False)
    return StepChoice(steps=plan.steps, plan=plan, result=result, history=history,
                      n_evaluations=len(cached.cache), measurements=data)
