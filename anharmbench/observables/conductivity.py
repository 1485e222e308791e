"""Lattice thermal conductivity in the relaxation-time approximation (phono3py's machinery).

Three sets of lifetimes, one conductivity formula (phono3py's RTA, ``kappa = (1/(N V))
sum_lambda C_lambda v_lambda (x) v_lambda tau_lambda``, ``tau = 1 / (2 * 2 pi gamma)``,
group velocities and mode heat capacities from phono3py on the same mesh):

* ``"bubble"`` -- phono3py's own bubble ``gamma`` (paper's Fig. 5a);
* ``"sunset"`` -- our sunset ``gamma`` (:mod:`~anharmbench.observables.sunset`) at phono3py's
  irreducible q-points, handed to phono3py's conductivity calculator exactly as its
  ``read_gamma`` route does (``RTACalculator.gamma = ...``), so nothing but the linewidth
  differs (paper's Fig. 5b);
* ``"combined"`` -- both scattering channels together, ``gamma = gamma_bubble +
  gamma_sunset`` (Matthiessen's rule on the rates).

One broadening for the three: when a four-phonon lifetime is computed, the bubble (alone
and inside ``combined``) uses the sunset's Gaussian ``sigma``, so that the three curves of
one figure differ only by their diagrams (``meta["broadening"]`` says which); phono3py's
tetrahedron method is used for a bubble-only conductivity.

The sunset is the exact sum (``four_phonon="exact"``) or sampled (``"sampled"``,
:mod:`~anharmbench.observables.sunset_sampled`); sampled linewidths carry covariances,
propagated to ``kappa`` to first order (``d kappa / d gamma_lambda = -kappa_lambda /
gamma_lambda`` with phono3py's mode conductivities): ``KappaResult.kappa_stderr``.

``kappa`` is reported as the mean of the diagonal (``(k_xx + k_yy + k_zz) / 3``, W/(m K));
the full Voigt tensors are kept too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anharmbench.observables._phono3py_api import rta_calculator, run_with_gamma
from anharmbench.observables.bubble import prepared_phono3py
from anharmbench.observables.errors import ObservableError
from anharmbench.observables.force_constants import DerivativeSet, lattice_tensor
from anharmbench.observables.harmonic import Mesh
from anharmbench.observables.sunset import SunsetTiming, sunset_gamma_from_tensor
from anharmbench.observables.sunset_sampled import (
    SunsetSampling,
    sampled_sunset_gamma_from_tensor,
)

__all__ = ["DEFAULT_TEMPERATURES", "KappaResult", "thermal_conductivity"]

#: Default temperatures of the conductivity, K (the paper's range, every 200 K).
DEFAULT_TEMPERATURES = np.arange(300.0, 1501.0, 200.0)

LIFETIMES = ("bubble", "sunset", "combined")
FOUR_PHONON = ("exact", "sampled")


@dataclass(eq=False)
class KappaResult:
    """RTA conductivity of one potential for several lifetime models.

    Attributes
    ----------
    potential : str
    temperatures : numpy.ndarray
        ``(nT,)`` K.
    mesh : tuple[int, int, int]
    kappa : dict[str, numpy.ndarray]
        ``{lifetimes: (nT,)}`` mean diagonal conductivity, W/(m K).
    kappa_tensor : dict[str, numpy.ndarray]
        ``{lifetimes: (nT, 6)}`` Voigt ``xx, yy, zz, yz, xz, xy``, W/(m K).
    gamma : dict[str, numpy.ndarray]
        ``{lifetimes: (nT, n_ir, nb)}`` phono3py ``gamma`` (THz, half width) used.
    kappa_stderr : dict[str, numpy.ndarray]
        ``{lifetimes: (nT,)}`` standard error of ``kappa`` from a sampled sunset, W/(m K)
        (zero for the bubble); the 95 % interval is ``kappa +- 1.96 kappa_stderr``.
    gamma_stderr : dict[str, numpy.ndarray]
        ``{lifetimes: (nT, n_ir, nb)}`` standard errors of the sampled ``gamma``.
    qpoints : numpy.ndarray
        ``(n_ir, 3)`` irreducible q-points of the mesh (phono3py's).
    weights : numpy.ndarray
        ``(n_ir,)`` int multiplicities.
    frequencies : numpy.ndarray
        ``(n_ir, nb)`` THz.
    meta : dict
        Smearings, timings, provenance.
    """

    potential: str
    temperatures: np.ndarray
    mesh: tuple[int, int, int]
    kappa: dict[str, np.ndarray] = field(default_factory=dict)
    kappa_tensor: dict[str, np.ndarray] = field(default_factory=dict)
    gamma: dict[str, np.ndarray] = field(default_factory=dict)
    kappa_stderr: dict[str, np.ndarray] = field(default_factory=dict)
    gamma_stderr: dict[str, np.ndarray] = field(default_factory=dict)
    qpoints: np.ndarray | None = None
    weights: np.ndarray | None = None
    frequencies: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _rta_with_gamma(ph3: Any, temps: np.ndarray, gamma: np.ndarray) -> Any:
    """phono3py's RTA conductivity with a given ``gamma`` ``(nT, n_ir, nb)`` (THz)."""
    calc = rta_calculator(ph3.phph_interaction, temps)
    if calc.gamma is None or calc.gamma.shape[1:] != gamma.shape:
        raise ObservableError(
            f"gamma of shape {gamma.shape} does not match phono3py's irreducible grid "
            f"{None if calc.gamma is None else calc.gamma.shape[1:]}")
    return run_with_gamma(calc, gamma[None])


def _rta(ph3: Any, temps: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phono3py's RTA with ``gamma``: ``(kappa Voigt (nT, 6), mode kappa (nT, n_ir, nb))``.

    The mode conductivities (mean diagonal, multiplicities included) are divided by the
    number of grid points, so that they sum to ``kappa``.
    """
    calc = _rta_with_gamma(ph3, temps, gamma)
    mk = np.asarray(calc.mode_kappa)[0][..., :3].mean(axis=-1)
    return np.asarray(calc.kappa)[0], mk / float(np.sum(calc.grid_weights))


def _kappa_stderr(mode_kappa: np.ndarray, gamma: np.ndarray,
                  covariance: np.ndarray) -> np.ndarray:
    """First-order standard error ``(nT,)`` of ``kappa`` from the covariance of ``gamma``.

    ``kappa = sum_lambda kappa_lambda`` with ``kappa_lambda ~ 1 / gamma_lambda``, so
    ``d kappa / d gamma_lambda = -kappa_lambda / gamma_lambda``; q-points are independent,
    the branches of one q-point covary (``covariance (nT, n_ir, nb, nb)``).
    """
    g = np.where(gamma > 0, -mode_kappa / np.where(gamma > 0, gamma, 1.0), 0.0)
    return np.sqrt(np.maximum(np.einsum("tqa,tqab,tqb->t", g, covariance, g), 0.0))


def thermal_conductivity(
    derivatives: DerivativeSet,
    *,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = DEFAULT_TEMPERATURES,
    lifetimes: Sequence[str] | None = None,
    bubble_sigma: float | None = None,
    sigma: float = 0.1,
    sunset_pair_chunk: int = 256,
    four_phonon: str = "exact",
    sampling: SunsetSampling | None = None,
) -> KappaResult:
    """RTA conductivity with bubble, sunset and combined lifetimes.

    Parameters
    ----------
    derivatives
        Orders 2 (always), 3 (bubble, combined) and 4 (sunset, combined).
    mesh
        Sampling mesh (phono3py's and the sunset's internal sums).
    temperatures
        ``(nT,)`` K; default 300-1500 K in steps of 200 K.
    lifetimes
        Subset of ``("bubble", "sunset", "combined")``; default all those whose orders are
        present (at least the bubble).
    bubble_sigma
        Smearing of a bubble-only conductivity (THz); ``None``: phono3py's tetrahedron
        method. With a four-phonon lifetime the bubble uses ``sigma`` (one broadening).
    sigma
        Gaussian smearing of the sunset's energy conservation (THz), and of the bubble
        beside it.
    sunset_pair_chunk
        Passed to :func:`~anharmbench.observables.sunset.sunset_gamma_from_tensor`.
    four_phonon
        ``"exact"`` (every pair of the mesh) or ``"sampled"`` (with errors).
    sampling
        :class:`~anharmbench.observables.sunset_sampled.SunsetSampling` of a sampled sunset.

    Raises
    ------
    MissingOrderError
        A requested lifetime model lacks its order.
    ImaginaryModeError
        An imaginary harmonic mode on the mesh.
    """
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    if four_phonon not in FOUR_PHONON:
        raise ObservableError(f"four_phonon is one of {FOUR_PHONON}, got {four_phonon!r}")
    if sampling is not None and four_phonon != "sampled":
        raise ObservableError("sampling settings are given, but four_phonon is "
                              f"{four_phonon!r}: pass four_phonon='sampled' to use them")
    if lifetimes is None:
        have = set(derivatives.orders)
        lifetimes = ["bubble"] if 4 not in have else (
            list(LIFETIMES) if 3 in have else ["sunset"])
    lifetimes = list(lifetimes)
    bad = [x for x in lifetimes if x not in LIFETIMES]
    if bad or not lifetimes:
        raise ObservableError(f"lifetimes are among {LIFETIMES}, got {lifetimes}")
    need = {2}
    for x in lifetimes:
        need |= {"bubble": {3}, "sunset": {4}, "combined": {3, 4}}[x]
    derivatives.require(sorted(need), f"the thermal conductivity ({', '.join(lifetimes)})")
    with_fc3, with_fc4 = 3 in need, 4 in need
    what = "the thermal conductivity"
    # one broadening on one figure: the sunset's Gaussian for the bubble beside it
    three_sigma = float(sigma) if with_fc4 else bubble_sigma
    ph3 = prepared_phono3py(derivatives, mesh, three_sigma, what=what, with_fc3=with_fc3)
    out = KappaResult(derivatives.name, temps, mesh.numbers)
    out.meta.update({
        "bubble_sigma_THz": "tetrahedron" if three_sigma is None else float(three_sigma),
        "sunset_sigma_THz": float(sigma), "kappa_units": "W/(m K)", "method": "phono3py RTA",
        "broadening": ("tetrahedron method (bubble only)" if three_sigma is None else
                       f"Gaussian sigma = {float(three_sigma):g} THz"
                       + (" for bubble, sunset and combined" if with_fc4 else ""))})
    gam_b = None
    if with_fc3:
        ph3.run_thermal_conductivity(temperatures=temps)
        calc = ph3.thermal_conductivity
        gam_b = np.asarray(calc.gamma)[0]
        if "bubble" in lifetimes:
            out.kappa_tensor["bubble"] = np.asarray(calc.kappa)[0]
            out.gamma["bubble"] = gam_b
        info = calc
    else:
        info = rta_calculator(ph3.phph_interaction, temps)
    if with_fc4:
        qir = np.asarray(info.qpoints)
        tm = SunsetTiming()
        lt = lattice_tensor(derivatives, 4)
        if four_phonon == "sampled":
            sampling = sampling or SunsetSampling()
            sun = sampled_sunset_gamma_from_tensor(
                lt, derivatives.phonopy(), qir, mesh, temps, sigma=sigma, sampling=sampling,
                potential=derivatives.name, timing=tm)
            out.meta["sunset_sampling"] = sun.meta["sampling"]
        else:
            sun = sunset_gamma_from_tensor(
                lt, derivatives.phonopy(), qir, mesh, temps, sigma=sigma,
                pair_chunk=sunset_pair_chunk, potential=derivatives.name, timing=tm)
        out.meta["four_phonon"] = four_phonon
        out.meta["sunset_seconds"] = tm.seconds
        out.meta["sunset_pairs"] = tm.n_pairs
        gam_s = sun.values  # (nT, n_ir, nb)
        parts = {"sunset": gam_s}
        if "combined" in lifetimes:
            if gam_b is None:  # pragma: no cover - "combined" implies order 3
                raise ObservableError("combined lifetimes need the bubble")
            parts["combined"] = gam_b + gam_s
        for key, gam in parts.items():
            if key not in lifetimes:
                continue
            out.kappa_tensor[key], mode_kappa = _rta(ph3, temps, gam)
            out.gamma[key] = gam
            if sun.covariance is not None:
                out.kappa_stderr[key] = _kappa_stderr(mode_kappa, gam, sun.covariance)
                out.gamma_stderr[key] = sun.errors
        if sun.covariance is not None and "bubble" in lifetimes:
            out.kappa_stderr["bubble"] = np.zeros(len(temps))
    out.qpoints = np.asarray(info.qpoints)
    out.weights = np.asarray(info.grid_weights)
    out.frequencies = np.asarray(info.frequencies)  # already at the iterated grid points
    for key, t in out.kappa_tensor.items():
        out.kappa[key] = t[:, :3].mean(axis=1)
    return out
