"""From evaluated energies/forces to irreducible derivatives extrapolated to zero step.

For each order ``n`` and each step ``h``:

1. central differences along every planned direction give directional derivatives
   (``n``-th of the energy, or ``(n-1)``-th of the forces projected on the modes, ``g = -modes.T
   @ F``);
2. a linear least-squares solve with the plan's design blocks gives ``d_k(h)``.

Then, for every derivative, the quadratic error tail ``d_k(h) = d_k(0) + a h^2`` (optionally
``+ b h^4``) is fitted across the steps and ``d_k(0)`` is the result. By default the fit is
weighted by ``h^m`` (``m`` the finite-difference order), i.e. it assumes the noise of
``d_k(h)`` grows like ``h^-m`` as the evaluator's noise is divided by ``h^m``. With
``tail="auto"`` the ``h^4`` term is used when there are at least five steps and an F-test
says it is warranted (p-value below ``f_test_pvalue``).

Uncertainties are one standard deviation of ``d_k(0)`` with two parts added in quadrature:

* statistical: from the covariance of the tail regression, scaled by its residuals;
* truncation: ``|d_k(0) - d_k'(0)|``, ``d_k'(0)`` the same fit without the largest step
  (three steps or more). The regression alone assumes the tail model is exact; the higher
  powers of ``h`` it leaves out bias ``d_k(0)`` by far more than its residuals say. On
  CRG's fourth order in S_C (``benchmarks/bench_uncertainty.py``), the regression sigma
  made the 4-step lone and bundled results differ from a 10-step lone reference by a
  median 11-12 sigma; with the truncation part the median is ~1 sigma.

A :class:`TailFitWarning` names the derivatives whose tail fit is poor: relative
uncertainty above ``max_rel_uncertainty``, or ``h^2`` correction at the largest step above
``max_rel_h2`` of the value (relative quantities use ``max(|d_k(0)|, scale_floor * max_j
|d_j(0)|)`` within the order as scale).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.stats

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.derivatives.plan import MeasurementPlan, OrderMeasurement
from anharmbench.derivatives.taylor_lines import LineFit, fit_lines, relative_scale

Tail = Literal["auto", "quadratic", "quartic"]
Weighting = Literal["uniform", "roundoff"]
Estimator = Literal["tail", "lines", "auto"]
ESTIMATORS: tuple[str, ...] = ("tail", "lines", "auto")


class TailFitWarning(UserWarning):
    """The extrapolation of some derivatives to zero step is unreliable."""


@dataclass(frozen=True)
class TailFit:
    """Extrapolation of step-dependent estimates to ``h = 0``.

    Attributes
    ----------
    values
        ``(K,)`` extrapolated ``d_k(0)``.
    uncertainties
        ``(K,)`` one-sigma uncertainties (NaN without residual degrees of freedom).
    h2
        ``(K,)`` coefficient ``a`` of ``h^2`` (units of ``values`` per Angstrom^2).
    h2_uncertainties
        ``(K,)`` standard error of ``a``.
    h4
        ``(K,)`` coefficient ``b`` of ``h^4`` (0 where not fitted).
    power
        ``(K,)`` int highest power of ``h`` in the model (0: no extrapolation, 2, 4).
    residual_rms
        ``(K,)`` root-mean-square residual of the (unweighted) tail fit.
    statistical
        ``(K,)`` the regression's one-sigma part of ``uncertainties``.
    truncation
        ``(K,)`` ``|values - values without the largest step|`` (0 with fewer than three
        steps); ``uncertainties = hypot(statistical, truncation)``.
    """

    values: np.ndarray
    uncertainties: np.ndarray
    h2: np.ndarray
    h2_uncertainties: np.ndarray
    h4: np.ndarray
    power: np.ndarray
    residual_rms: np.ndarray
    statistical: np.ndarray
    truncation: np.ndarray


def _poly_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, p: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted fit of ``y`` (S, K) with columns ``x**0..x**(p-1)``.

    Returns coefficients ``(p, K)``, their standard errors ``(p, K)`` and the weighted
    residual sums of squares ``(K,)``.
    """
    design = np.vander(x, p, increasing=True) * w[:, None]
    yw = y * w[:, None]
    coef, *_ = np.linalg.lstsq(design, yw, rcond=None)
    rss = np.sum((yw - design @ coef) ** 2, axis=0)
    dof = x.size - p
    if dof > 0:
        cov = np.diag(np.linalg.pinv(design.T @ design))
        sigma = np.sqrt(np.maximum(rss / dof, 0.0)[None, :] * cov[:, None])
    else:
        sigma = np.full(coef.shape, np.nan)
    return coef, sigma, rss


def fit_tail(
    steps: np.ndarray,
    raw: np.ndarray,
    *,
    tail: Tail = "auto",
    weighting: Weighting = "uniform",
    noise_power: int = 0,
    f_test_pvalue: float = 0.01,
) -> TailFit:
    """Fit ``d(h) = d(0) + a h^2 (+ b h^4)`` for every column of ``raw``.

    Parameters
    ----------
    steps
        ``(S,)`` step sizes (Angstrom).
    raw
        ``(S, K)`` estimates at each step.
    tail
        ``"quadratic"``, ``"quartic"`` or ``"auto"`` (quartic where an F-test warrants it;
        needs ``S >= 5``).
    weighting
        ``"uniform"`` (ordinary least squares) or ``"roundoff"`` (weights ``h^noise_power``,
        for noise that grows like ``h^-noise_power``, i.e. the finite-difference order).
    noise_power
        Exponent of the ``"roundoff"`` weights.
    f_test_pvalue
        Significance level of the ``h^4`` term with ``tail="auto"``.

    Returns
    -------
    TailFit
        ``uncertainties`` include the truncation part (see the module docstring).
    """
    tf = _fit_tail(steps, raw, tail=tail, weighting=weighting, noise_power=noise_power,
                   f_test_pvalue=f_test_pvalue)
    steps = np.asarray(steps, dtype=np.float64)
    if steps.size < 3:
        return tf
    keep = steps < steps.max()
    if np.count_nonzero(keep) < 2:
        return tf
    without = _fit_tail(steps[keep], np.asarray(raw, dtype=np.float64)[keep], tail=tail,
                        weighting=weighting, noise_power=noise_power,
                        f_test_pvalue=f_test_pvalue)
    truncation = np.abs(tf.values - without.values)
    return replace(tf, uncertainties=np.hypot(tf.statistical, truncation),
                   truncation=truncation)


def _fit_tail(
    steps: np.ndarray,
    raw: np.ndarray,
    *,
    tail: Tail,
    weighting: Weighting,
    noise_power: int,
    f_test_pvalue: float,
) -> TailFit:
    """The tail regression of :func:`fit_tail`, statistical uncertainty only."""
    steps = np.asarray(steps, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    n_s, n_k = raw.shape
    if n_s == 1:
        z = np.zeros(n_k)
        return TailFit(raw[0].copy(), np.full(n_k, np.nan), z, np.full(n_k, np.nan), z.copy(),
                       np.zeros(n_k, dtype=np.int64), z.copy(), np.full(n_k, np.nan), z.copy())
    hmax = float(steps.max())
    x = (steps / hmax) ** 2
    w = (steps / hmax) ** noise_power if weighting == "roundoff" else np.ones(n_s)
    if weighting not in ("uniform", "roundoff"):
        raise ValueError(f"unknown weighting {weighting!r}")
    if tail not in ("auto", "quadratic", "quartic"):
        raise ValueError(f"unknown tail {tail!r}")
    c2, s2, rss2 = _poly_fit(x, raw, w, 2)
    coef = np.vstack([c2, np.zeros((1, n_k))])
    sigma = s2
    quartic = np.zeros(n_k, dtype=bool)
    if (tail == "quartic" and n_s >= 3) or (tail == "auto" and n_s >= 5):
        c4, s4, rss4 = _poly_fit(x, raw, w, 3)
        if tail == "quartic":
            quartic[:] = True
        else:
            dof = n_s - 3
            with np.errstate(divide="ignore", invalid="ignore"):
                f_stat = (rss2 - rss4) / (rss4 / dof)
            pval = np.where(rss4 > 0, scipy.stats.f.sf(np.nan_to_num(f_stat, posinf=1e300), 1, dof),
                            np.where(rss2 > 0, 0.0, 1.0))
            quartic = pval < f_test_pvalue
        coef[:, quartic] = c4[:, quartic]
        sigma = np.where(quartic[None, :], s4[:2], s2)
    resid = raw - np.vander(x, 3, increasing=True) @ coef
    return TailFit(
        values=coef[0],
        uncertainties=sigma[0],
        h2=coef[1] / hmax**2,
        h2_uncertainties=sigma[1] / hmax**2,
        h4=coef[2] / hmax**4,
        power=np.where(quartic, 4, 2).astype(np.int64),
        residual_rms=np.sqrt(np.mean(resid**2, axis=0)),
        statistical=sigma[0],
        truncation=np.zeros(n_k),
    )


@dataclass(frozen=True, eq=False)
class DerivativeResult:
    """Irreducible derivatives extrapolated to zero step, with diagnostics.

    All dicts are keyed by order ``n``; arrays of length ``K_n`` follow the basis order.

    Attributes
    ----------
    method
        ``"forces"`` or ``"energies"``.
    plan_hash
        Hash of the plan measured.
    values
        ``(K,)`` float64 ``d_k`` in eV/Angstrom^n.
    uncertainties
        ``(K,)`` float64 one-sigma uncertainties, eV/Angstrom^n.
    labels
        ``K`` labels.
    steps
        ``(S,)`` step sizes (Angstrom).
    raw
        ``(S, K)`` per-step least-squares estimates ``d_k(h)``, eV/Angstrom^n.
    h2_coefficients
        ``(K,)`` coefficient of ``h^2`` of the tail, eV/Angstrom^(n+2).
    h2_uncertainties
        ``(K,)`` standard error of ``h2_coefficients``.
    tail_power
        ``(K,)`` highest power of ``h`` fitted (2 or 4; 0 with a single step).
    relative_h2
        ``(K,)`` ``|a| h_max^2`` over the derivative's scale.
    relative_uncertainty
        ``(K,)`` uncertainty over the derivative's scale.
    poor_fit
        ``(K,)`` bool, the tail fit failed the quality thresholds.
    step_residuals
        ``(S,)`` root-mean-square residual of the per-step least squares (units of the
        directional derivatives), a consistency check of the directions.
    estimator
        ``"tail"`` (each order's steps extrapolated to zero), ``"lines"`` (the joint Taylor
        fit of :mod:`anharmbench.derivatives.taylor_lines`, whose choice of window and
        powers ``line_fit`` holds) or ``"auto"`` (per order, the one of the two with the
        smaller uncertainty); the per-step diagnostics are the tail fit's either way.
    chosen
        ``{order: "tail" | "lines"}``, the estimator each order's values come from.
    """

    method: str
    plan_hash: str
    values: dict[int, np.ndarray]
    uncertainties: dict[int, np.ndarray]
    labels: dict[int, list[str]]
    steps: dict[int, np.ndarray]
    raw: dict[int, np.ndarray]
    h2_coefficients: dict[int, np.ndarray]
    h2_uncertainties: dict[int, np.ndarray]
    tail_power: dict[int, np.ndarray]
    relative_h2: dict[int, np.ndarray]
    relative_uncertainty: dict[int, np.ndarray]
    poor_fit: dict[int, np.ndarray]
    step_residuals: dict[int, np.ndarray]
    estimator: str = "tail"
    line_fit: LineFit | None = None
    chosen: dict[int, str] = field(default_factory=dict)

    @property
    def orders(self) -> tuple[int, ...]:
        """Orders present, increasing."""
        return tuple(sorted(self.values))

    def value(self, order: int, label: str) -> tuple[float, float]:
        """``(value, uncertainty)`` of the derivative with this label."""
        k = self.labels[order].index(label)
        return float(self.values[order][k]), float(self.uncertainties[order][k])


def directional_derivatives(
    meas: OrderMeasurement, method: str, modes: np.ndarray,
    energies: np.ndarray | None, forces: np.ndarray | None, reference: int | None,
) -> np.ndarray:
    """Central-difference directional derivatives of one order.

    Returns
    -------
    np.ndarray
        ``(D * r, S)`` float64: for energies ``r = 1`` (eV/Angstrom^n), for forces
        ``r = M`` components of the ``(n-1)``-th derivative of the mode gradient
        (eV/Angstrom^n), matching ``meas.design.reshape(D * r, K)``.
    """
    st = meas.stencil
    scale = meas.steps ** float(st.derivative)
    cfg = meas.configurations
    if method == "energies":
        if energies is None:
            raise ValueError("the energies method needs energies")
        e = energies - (energies[reference] if reference is not None else 0.0)
        y = np.einsum("dsp,p->ds", e[cfg], st.weights) / scale[None, :]
        return y
    if forces is None:
        raise ValueError("the forces method needs forces")
    used = np.unique(cfg)
    g = np.zeros((forces.shape[0], modes.shape[1]))
    g[used] = -(forces[used].reshape(used.size, -1) @ modes)
    y = np.einsum("dspm,p->dms", g[cfg], st.weights) / scale[None, None, :]
    return y.reshape(-1, meas.steps.size)


def fit(
    plan: MeasurementPlan,
    energies: np.ndarray | None = None,
    forces: np.ndarray | None = None,
    *,
    tail: Tail = "auto",
    weighting: Weighting = "roundoff",
    max_rel_uncertainty: float = 1e-2,
    max_rel_h2: float = 0.5,
    scale_floor: float = 1e-3,
    warn: bool = True,
    estimator: Estimator = "tail",
    bases: Mapping[int, DerivativeBasis] | None = None,
) -> DerivativeResult:
    """Irreducible derivatives from evaluated configurations of a plan.

    Parameters
    ----------
    plan
        The measurement plan.
    energies
        ``(n_conf,)`` float64 energies (eV); needed for the energies method.
    forces
        ``(n_conf, N, 3)`` float64 forces (eV/Angstrom); needed for the forces method.
    tail, weighting
        Tail model and weights, see :func:`fit_tail`. The default ``"roundoff"`` weights
        step ``h`` by ``h^m`` (``m`` the finite-difference order), appropriate when the
        evaluator's noise (round-off, SCF or tabulation noise) is amplified as ``h^-m``;
        ``"uniform"`` is ordinary least squares.
    max_rel_uncertainty, max_rel_h2, scale_floor
        Quality thresholds of the tail fit (see module docstring).
    warn
        Emit a :class:`TailFitWarning` per order with poor fits.
    estimator
        ``"tail"`` (default): each order from its own directions, extrapolated to zero
        step. ``"lines"``: every order from one joint Taylor fit along all of the plan's
        lines (:func:`~anharmbench.derivatives.taylor_lines.fit_lines`; needs ``bases``),
        for high orders of noisy evaluators, where the tail's ``h^2 + h^4`` is not enough.
        ``"auto"``: both, and per order the one whose uncertainties are smaller (root mean
        square relative to the tail's values); the joint fit is fragile where the surface
        is not smooth along the lines (a machine-learned potential whose neighbours cross
        their cutoff), the tail fit at high orders of a smooth noisy surface.
    bases
        ``{order: basis}`` of the plan, for ``estimator="lines"`` or ``"auto"``.

    Returns
    -------
    DerivativeResult

    Raises
    ------
    ValueError
        On wrong shapes or non-finite data in a configuration the fit uses, an unknown
        estimator, or ``"lines"`` or ``"auto"`` without ``bases``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    if estimator != "tail" and bases is None:
        raise ValueError(f"the {estimator!r} estimator needs the plan's bases "
                         "(bases=prepared.bases)")
    n_conf = plan.n_evaluations
    e = None if energies is None else np.asarray(energies, dtype=np.float64)
    f = None if forces is None else np.asarray(forces, dtype=np.float64)
    if e is not None and e.shape != (n_conf,):
        raise ValueError(f"energies have shape {e.shape}, expected ({n_conf},)")
    if f is not None and f.shape != (n_conf, plan.natoms, 3):
        raise ValueError(f"forces have shape {f.shape}, expected ({n_conf}, {plan.natoms}, 3)")
    data = e if plan.method == "energies" else f
    if data is not None:
        bad = np.flatnonzero(~np.isfinite(data.reshape(n_conf, -1)).all(axis=1))
        if bad.size:
            raise ValueError(f"configuration {int(bad[0])} has non-finite data "
                             f"({bad.size} configurations in total)")
    refs = np.flatnonzero(plan.conf_direction < 0)
    reference = int(refs[0]) if refs.size else None

    # the joint fit replaces the values; the per-step estimates stay as diagnostics
    lines = None
    if estimator != "tail" and bases is not None:
        try:
            lines = fit_lines(plan, bases, e, f)
        except ValueError:
            if estimator == "lines":
                raise
    chosen: dict[int, str] = {}
    out: dict[str, dict[int, np.ndarray]] = {k: {} for k in (
        "values", "unc", "raw", "h2", "h2unc", "power", "rel_h2", "rel_unc", "poor", "res")}
    for n, meas in sorted(plan.measurements.items()):
        k_n, s_n = meas.n_unknowns, meas.steps.size
        if k_n == 0:
            for key in out:
                out[key][n] = np.zeros((s_n, 0) if key == "raw" else (s_n if key == "res" else 0))
            continue
        y = directional_derivatives(meas, plan.method, plan.modes, e, f, reference)
        a = meas.design.reshape(-1, k_n)
        sol, _, rank, _ = scipy.linalg.lstsq(a, y)
        if rank < k_n:
            raise ValueError(f"order {n}: design has rank {rank} < {k_n} unknowns")
        raw = sol.T
        tf = fit_tail(meas.steps, raw, tail=tail, weighting=weighting,
                      noise_power=meas.stencil.derivative)
        if lines is not None and (estimator == "lines" or _smaller(
                lines.uncertainties[n], tf.uncertainties, tf.values, scale_floor)):
            tf = replace(tf, values=lines.values[n], uncertainties=lines.uncertainties[n])
            chosen[n] = "lines"
        else:
            chosen[n] = "tail"
        scale = relative_scale(tf.values, scale_floor)
        rel_h2 = np.abs(tf.h2) * meas.steps.max() ** 2 / scale
        rel_unc = tf.uncertainties / scale
        poor = np.nan_to_num(rel_unc) > max_rel_uncertainty
        if chosen[n] == "tail":  # the h^2 tail is the tail fit's model, not the joint fit's
            poor |= rel_h2 > max_rel_h2
        out["values"][n], out["unc"][n], out["raw"][n] = tf.values, tf.uncertainties, raw
        out["h2"][n], out["h2unc"][n], out["power"][n] = tf.h2, tf.h2_uncertainties, tf.power
        out["rel_h2"][n], out["rel_unc"][n], out["poor"][n] = rel_h2, rel_unc, poor
        out["res"][n] = np.sqrt(np.mean((a @ sol - y) ** 2, axis=0))
        if warn and poor.any():
            idx = np.flatnonzero(poor)
            shown = ", ".join(
                f"{meas.labels[i]!r} (rel. unc. {rel_unc[i]:.1e}"
                + (")" if chosen[n] == "lines" else f", rel. h^2 {rel_h2[i]:.1e})")
                for i in idx[:10])
            more = f" and {idx.size - 10} more" if idx.size > 10 else ""
            what = ("joint Taylor fit" if chosen[n] == "lines" else "quadratic-tail fit")
            warnings.warn(
                f"order {n}: poor {what} for {idx.size} of {k_n} derivatives: "
                f"{shown}{more}", TailFitWarning, stacklevel=2)
    return DerivativeResult(
        method=plan.method, plan_hash=plan.hash, values=out["values"],
        uncertainties=out["unc"], labels=plan.labels, steps=plan.steps, raw=out["raw"],
        h2_coefficients=out["h2"], h2_uncertainties=out["h2unc"], tail_power=out["power"],
        relative_h2=out["rel_h2"], relative_uncertainty=out["rel_unc"], poor_fit=out["poor"],
        step_residuals=out["res"], estimator=estimator, line_fit=lines, chosen=chosen,
    )


def _smaller(a: np.ndarray, b: np.ndarray, values: np.ndarray, floor: float) -> bool:
    """Whether uncertainties ``a`` are smaller than ``b`` (root mean square, relative to
    ``values`` with the fit's scale floor); NaN counts as infinite."""
    scale = relative_scale(values, floor)

    def rms(u: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.nan_to_num(u / scale, nan=np.inf) ** 2)))

    return rms(a) < rms(b)
