"""A joint Taylor fit along a plan's lines: every order from every evaluation at once.

The tail fit of :mod:`anharmbench.derivatives.fit` measures each order from its own
directions and extrapolates its stencil's ``h^2 (+ h^4)`` error to zero step. At high
order on a real surface that tail is not enough: the order-6 stencil reaches ``3 h``, and
where the evaluator's noise allows a step (Si PBE with pw.x: ``h >= 0.04`` A) the
surface's Taylor series already needs many more terms (on Si's primitive cell the tail
fit gave order 6 with uncertainties above the values).

Here every configuration of the plan lies on a line ``t -> t v_l`` through the reference,
and along it the measured quantity (the mode gradient ``g = -modes.T F`` for forces, the
energy for energies) is a polynomial whose low coefficients are the irreducible
derivatives::

    y_l(t) = y_0 + sum_n t^m_n / m_n! B_n(v_l) d_n + sum_{j in nuisance} a_lj t^j

(``m_n`` the finite-difference order of order ``n``, ``B_n`` its design block). The
coefficients of the plan's orders are shared by all lines; every other power of ``t`` up
to ``J`` (the orders the plan does not measure and the tail above its highest order) is a
free coefficient of each line and component, eliminated line by line (Frisch-Waugh-Lovell:
each line's data and design are projected off its own powers). So a line measured for
order 3 also informs order 6, and the order-6 lines pin order 3; nothing assumes the
tail's form beyond ``J``.

Model choice, per window ``|t| <= t_max`` (the plan's own amplitudes):

* ``J`` grows two powers at a time (one of each parity) from the highest order's power
  until an F-test says the next two add nothing (p >= ``f_test_pvalue``);
* the uncertainty is the regression's (scaled by the residuals) and, in quadrature, the
  change of the values when two more powers are added (the truncation, as the tail fit
  adds the change without its largest step);
* each order takes the window with the smallest root-mean-square relative uncertainty.

No library fits a shared-coefficient polynomial model over a plan's lines with per-line
nuisance terms (symfc and hiPhive fit force constants to displacement-force pairs, not
along lines with free higher orders), hence this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import factorial

import numpy as np
import scipy.linalg
import scipy.stats

from anharmbench.derivatives.basis_protocol import DerivativeBasis
from anharmbench.derivatives.directions import derivative_order, design_blocks
from anharmbench.derivatives.plan import MeasurementPlan

#: Most pairs of free powers added above the highest order: Si PBE needs two, a surface
#: that is not smooth along the lines (neighbours crossing a cutoff) would take any number
MAX_EXTRA_PAIRS = 5
#: Most windows tried (the plan's amplitudes, thinned evenly).
MAX_WINDOWS = 24
#: Windows whose relative uncertainty is within this factor of the best's count in the
#: truncation part (their spread).
WINDOW_TOLERANCE = 2.0


@dataclass(frozen=True)
class LineModel:
    """One fitted model: a window and the highest power of ``t``.

    Attributes
    ----------
    t_max
        Window ``|t| <= t_max`` (Angstrom).
    power
        Highest power ``J`` of ``t`` on each line.
    values, sigma
        ``{order: (K,)}`` float64 values and regression one-sigma uncertainties.
    rss, dof
        Residual sum of squares and its degrees of freedom.
    """

    t_max: float
    power: int
    values: dict[int, np.ndarray]
    sigma: dict[int, np.ndarray]
    rss: float
    dof: int

    @property
    def noise(self) -> float:
        """Residual standard deviation of one component (units of ``y``)."""
        return float(np.sqrt(self.rss / self.dof)) if self.dof > 0 else float("nan")


@dataclass(frozen=True)
class LineFit:
    """The chosen model of every order.

    Attributes
    ----------
    values, uncertainties
        ``{order: (K,)}`` float64 derivatives (eV/Angstrom^n) and one-sigma uncertainties.
    statistical, truncation
        ``{order: (K,)}`` the two parts of ``uncertainties`` (added in quadrature).
    t_max
        ``{order: float}`` the window chosen (Angstrom).
    power
        ``{order: int}`` the highest power of ``t`` of the chosen model.
    noise
        ``{order: float}`` residual standard deviation of the chosen model (eV/Angstrom
        for forces, eV for energies).
    """

    values: dict[int, np.ndarray]
    uncertainties: dict[int, np.ndarray]
    statistical: dict[int, np.ndarray]
    truncation: dict[int, np.ndarray]
    t_max: dict[int, float]
    power: dict[int, int]
    noise: dict[int, float]

    def summary(self) -> dict[str, dict[str, float | int]]:
        """JSON-ready record of the model choice, by order."""
        return {str(n): {"t_max_A": self.t_max[n], "power": self.power[n],
                         "noise": self.noise[n]} for n in sorted(self.values)}


class _Lines:
    """The plan's data arranged by line, and the projected least squares of one model."""

    def __init__(self, plan: MeasurementPlan, bases: Mapping[int, DerivativeBasis],
                 y: np.ndarray, reference: int | None, compress: bool = True) -> None:
        self.plan, self.y, self.reference, self.compress = plan, y, reference, compress
        self.orders = sorted(plan.measurements)
        self.powers = {n: derivative_order(n, plan.method) for n in self.orders}
        self.K = {n: plan.measurements[n].n_unknowns for n in self.orders}
        self.r = y.shape[1]
        # columns: y0 (r), then the orders' derivatives
        self.offsets: dict[int, int] = {}
        p = self.r
        for n in self.orders:
            self.offsets[n] = p
            p += self.K[n]
        self.n_cols = p
        self.blocks = {n: design_blocks(bases[n], plan.method, plan.directions)
                       for n in self.orders}  # (L, r, K)
        self.members = [np.flatnonzero(plan.conf_direction == ell)
                        for ell in range(len(plan.directions))]

    def solve(self, t_max: float, power: int) -> LineModel | None:
        """The projected least squares of one model (None when it is not determined)."""
        shared = sorted(set(self.powers.values()))
        free = [j for j in range(1, power + 1) if j not in shared]
        rows: list[np.ndarray] = []
        rhs: list[np.ndarray] = []
        n_rows, rss_out = 0, 0.0  # the full system's rows; the residual outside the kept span
        if self.reference is not None:  # the reference measures y0 directly
            ref_rows = np.zeros((self.r, self.n_cols))
            ref_rows[:, :self.r] = np.eye(self.r)
            rows.append(ref_rows)
            rhs.append(self.y[self.reference])
            n_rows += self.r
        for ell, idx in enumerate(self.members):
            t = self.plan.conf_amplitude[idx]
            keep = np.abs(t) <= t_max * (1 + 1e-9)
            t, yl = t[keep], self.y[idx[keep]]
            if t.size <= len(free):
                continue
            # orthonormal complement of the line's free powers (scaled for conditioning)
            x = t / t_max
            nuis = x[:, None] ** np.asarray(free, dtype=float)[None, :]
            z = scipy.linalg.null_space(nuis.T) if free else np.eye(t.size)
            if z.shape[1] == 0:
                continue
            # Along the line the model is sum_g phi_g(t) E_g (g: y0, then one power per
            # order), so the projected rows lie in span(z^T phi) x components: an
            # orthonormal basis Q of that span compresses the line to at most (1 + orders)
            # rows per component, exactly (the rest of z^T y is residual whatever the
            # coefficients); the global QR then runs on ~points/groups fewer rows.
            phi = np.column_stack([np.ones_like(t)] + [t ** self.powers[n]
                                                       / factorial(self.powers[n])
                                                       for n in self.orders])
            yz = z.T @ yl  # (a, r)
            if self.compress:
                q, rg = np.linalg.qr(z.T @ phi)  # (a, k), (k, G)
                bc = q.T @ yz  # (k, r)
                rss_out += float(np.sum((yz - q @ bc) ** 2))
            else:  # every projected point a row (the benchmark's baseline)
                rg, bc = z.T @ phi, yz
            n_rows += yz.size
            design = np.zeros((rg.shape[0], self.r, self.n_cols))
            design[:, :, :self.r] = rg[:, 0][:, None, None] * np.eye(self.r)[None]
            for g, n in enumerate(self.orders, start=1):
                design[:, :, self.offsets[n]:self.offsets[n] + self.K[n]] = (
                    rg[:, g][:, None, None] * self.blocks[n][ell][None])
            rows.append(design.reshape(-1, self.n_cols))
            rhs.append(bc.reshape(-1))
        if not rows:
            return None
        a = np.vstack(rows)
        b = np.concatenate(rhs)
        scale = np.linalg.norm(a, axis=0)
        if np.any(scale == 0):
            return None
        q, rr = np.linalg.qr(a / scale)
        diag = np.abs(np.diag(rr))
        if diag.min() <= diag.max() * 1e-12:
            return None
        coef = scipy.linalg.solve_triangular(rr, q.T @ b) / scale
        dof = n_rows - self.n_cols
        if dof <= 0:
            return None
        rss = float(np.sum((b - a @ coef) ** 2)) + rss_out
        r_inv = scipy.linalg.solve_triangular(rr, np.eye(self.n_cols))
        sigma = np.sqrt(np.sum(r_inv**2, axis=1) * rss / dof) / scale
        sl = {n: slice(self.offsets[n], self.offsets[n] + self.K[n]) for n in self.orders}
        return LineModel(t_max, power, {n: coef[sl[n]] for n in self.orders},
                         {n: sigma[sl[n]] for n in self.orders}, rss, dof)


def _windows(plan: MeasurementPlan) -> np.ndarray:
    amps = np.unique(np.round(np.abs(plan.conf_amplitude[plan.conf_direction >= 0]), 10))
    if amps.size > MAX_WINDOWS:
        amps = amps[np.unique(np.linspace(0, amps.size - 1, MAX_WINDOWS).round().astype(int))]
    return amps


def relative_scale(values: np.ndarray, floor: float) -> np.ndarray:
    """``max(|d_k|, floor * max_j |d_j|)`` (tiny where all vanish): what an order's
    relative uncertainties are relative to, in both fits."""
    s = np.maximum(np.abs(values), floor * np.max(np.abs(values), initial=0.0))
    return np.where(s > 0, s, np.finfo(float).tiny)


def fit_lines(
    plan: MeasurementPlan,
    bases: Mapping[int, DerivativeBasis],
    energies: np.ndarray | None,
    forces: np.ndarray | None,
    *,
    f_test_pvalue: float = 0.01,
    scale_floor: float = 1e-3,
    compress_lines: bool = True,
) -> LineFit:
    """Irreducible derivatives of every order of a plan from one joint Taylor fit.

    Parameters
    ----------
    plan
        The measurement plan (the reference ``t = 0``, where the plan has it, is shared
        by all lines).
    bases
        ``{order: basis}`` of every order of the plan (the plan's own, e.g.
        :attr:`~anharmbench.derivatives.job.Prepared.bases`).
    energies
        ``(n_conf,)`` float64 energies (eV), for the energies method.
    forces
        ``(n_conf, N, 3)`` float64 forces (eV/Angstrom), for the forces method.
    f_test_pvalue
        Significance level at which two more powers of ``t`` are kept.
    scale_floor
        Relative uncertainties use ``max(|d_k|, scale_floor * max_j |d_j|)``.
    compress_lines
        Reduce each line to its span before the global QR (exact; ``False`` keeps every
        projected point as a row, the baseline of ``benchmarks/bench_lines_fit.py``).

    Returns
    -------
    LineFit

    Raises
    ------
    ValueError
        Without the basis of an order, or when no window determines the derivatives.
    """
    refs = np.flatnonzero(plan.conf_direction < 0)
    missing = [n for n in plan.measurements if n not in bases]
    if missing:
        raise ValueError(f"the joint Taylor fit needs the bases of orders {missing}")
    if plan.method == "forces":
        if forces is None:
            raise ValueError("the forces method needs forces")
        y = -(np.asarray(forces, dtype=np.float64).reshape(len(forces), -1) @ plan.modes)
    else:
        if energies is None:
            raise ValueError("the energies method needs energies")
        y = np.asarray(energies, dtype=np.float64)[:, None]
    lines = _Lines(plan, bases, y, int(refs[0]) if refs.size else None, compress_lines)
    models = [m for m in (_choose_power(lines, float(w), f_test_pvalue)
                          for w in _windows(plan)) if m is not None]
    if not models:
        raise ValueError(
            "no window of the plan's amplitudes determines every order by a joint Taylor "
            "fit (too few points per line); use the tail fit (estimator 'tail')")
    out: dict[str, dict] = {k: {} for k in ("values", "stat", "trunc", "t_max", "power",
                                            "noise")}
    for n in lines.orders:
        crit = [float(np.sqrt(np.mean(
            (np.hypot(c.sigma[n], np.abs(c.values[n] - m.values[n]))
             / relative_scale(c.values[n], scale_floor)) ** 2))) for c, m in models]
        i = int(np.argmin(crit))
        chosen, more = models[i]
        # truncation: the change with two more powers, or the spread of the windows that
        # are about as good (the window is a choice too), whichever is larger
        trunc = np.abs(chosen.values[n] - more.values[n])
        for c, k in zip(models, crit, strict=True):
            if k <= WINDOW_TOLERANCE * crit[i]:
                trunc = np.maximum(trunc, np.abs(chosen.values[n] - c[0].values[n]))
        out["values"][n], out["stat"][n], out["trunc"][n] = (chosen.values[n],
                                                             chosen.sigma[n], trunc)
        out["t_max"][n], out["power"][n], out["noise"][n] = (chosen.t_max, chosen.power,
                                                             chosen.noise)
    return LineFit(
        values=out["values"],
        uncertainties={n: np.hypot(out["stat"][n], out["trunc"][n]) for n in lines.orders},
        statistical=out["stat"], truncation=out["trunc"], t_max=out["t_max"],
        power=out["power"], noise=out["noise"],
    )


def _choose_power(lines: _Lines, t_max: float, f_test_pvalue: float
                  ) -> tuple[LineModel, LineModel] | None:
    """The model of one window with the fewest powers the F-test accepts, and the model
    with two more. Where every added pair stays significant up to the most the lines'
    points allow (a smooth surface above round-off), the last two models that fit; None
    when the window holds fewer than two."""
    prev = lines.solve(t_max, max(lines.powers.values()) + 2)
    last: tuple[LineModel, LineModel] | None = None
    if prev is None:
        return None
    for _ in range(MAX_EXTRA_PAIRS):
        nxt = lines.solve(t_max, prev.power + 2)
        if nxt is None:
            return last
        f_stat = ((prev.rss - nxt.rss) / (prev.dof - nxt.dof)) / max(
            nxt.rss / nxt.dof, np.finfo(float).tiny)
        if float(scipy.stats.f.sf(f_stat, prev.dof - nxt.dof, nxt.dof)) >= f_test_pvalue:
            return prev, nxt
        last = (prev, nxt)
        prev = nxt
    return last
