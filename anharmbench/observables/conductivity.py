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

__all__ = ["DEFAULT_TEMPERATURES", "KappaResult", "thermal_conductivity"]

#: Default temperatures of the conductivity, K (the paper's range, every 200 K).
DEFAULT_TEMPERATURES = np.arange(300.0, 1501.0, 200.0)

LIFETIMES = ("bubble", "sunset", "combined")


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


def thermal_conductivity(
    derivatives: DerivativeSet,
    *,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = DEFAULT_TEMPERATURES,
    lifetimes: Sequence[str] | None = None,
    bubble_sigma: float | None = None,
    sigma: float = 0.1,
    sunset_pair_chunk: int = 256,
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
        Smearing of the bubble (THz); ``None``: phono3py's tetrahedron method.
    sigma
        Gaussian smearing of the sunset's energy conservation (THz).
    sunset_pair_chunk
        Passed to :func:`~anharmbench.observables.sunset.sunset_gamma_from_tensor`.

    Raises
    ------
    MissingOrderError
        A requested lifetime model lacks its order.
    ImaginaryModeError
        An imaginary harmonic mode on the mesh.
    """
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
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
    with_fc3 = 3 in need
    what = "the thermal conductivity"
    ph3 = prepared_phono3py(derivatives, mesh, bubble_sigma, what=what, with_fc3=with_fc3)
    out = KappaResult(derivatives.name, temps, mesh.numbers)
    out.meta.update({"bubble_sigma_THz": "tetrahedron" if bubble_sigma is None
                     else float(bubble_sigma), "sunset_sigma_THz": float(sigma),
                     "kappa_units": "W/(m K)", "method": "phono3py RTA"})
    gam_b = None
    ref_calc = None
    if with_fc3:
        ph3.run_thermal_conductivity(temperatures=temps)
        ref_calc = ph3.thermal_conductivity
        gam_b = np.asarray(ref_calc.gamma)[0]
        if "bubble" in lifetimes:
            out.kappa_tensor["bubble"] = np.asarray(ref_calc.kappa)[0]
            out.gamma["bubble"] = gam_b
    if "sunset" in lifetimes or "combined" in lifetimes:
        probe = ref_calc
        if probe is None:
            probe = rta_calculator(ph3.phph_interaction, temps)
        qir = np.asarray(probe.qpoints)
        tm = SunsetTiming()
        sun = sunset_gamma_from_tensor(
            lattice_tensor(derivatives, 4), derivatives.phonopy(), qir, mesh, temps,
            sigma=sigma, pair_chunk=sunset_pair_chunk, potential=derivatives.name, timing=tm)
        gam_s = sun.values  # (nT, n_ir, nb)
        out.meta["sunset_seconds"] = tm.seconds
        if "sunset" in lifetimes:
            out.kappa_tensor["sunset"] = np.asarray(_rta_with_gamma(ph3, temps, gam_s).kappa)[0]
            out.gamma["sunset"] = gam_s
        if "combined" in lifetimes:
            if gam_b is None:  # pragma: no cover - "combined" implies order 3
                raise ObservableError("combined lifetimes need the bubble")
            gam_bc = gam_b
            if bubble_sigma is None or float(bubble_sigma) != float(sigma):
                # one broadening for both diagrams: the bubble again with the sunset's
                # Gaussian (its tetrahedron width would not add consistently)
                ph3g = prepared_phono3py(derivatives, mesh, sigma, what=what, with_fc3=True)
                ph3g.run_thermal_conductivity(temperatures=temps)
                if not np.allclose(np.asarray(ph3g.thermal_conductivity.qpoints), qir):
                    raise ObservableError("the Gaussian bubble's q-points differ from the "
                                          "sunset's; cannot combine them")
                gam_bc = np.asarray(ph3g.thermal_conductivity.gamma)[0]
            out.meta["combined_broadening"] = f"Gaussian sigma = {float(sigma):g} THz (both)"
            gam_c = gam_bc + gam_s
            out.kappa_tensor["combined"] = np.asarray(
                _rta_with_gamma(ph3, temps, gam_c).kappa)[0]
            out.gamma["combined"] = gam_c
    info = ref_calc if ref_calc is not None else probe
    out.qpoints = np.asarray(info.qpoints)
    out.weights = np.asarray(info.grid_weights)
    out.frequencies = np.asarray(info.frequencies)  # already at the iterated grid points
    for key, t in out.kappa_tensor.items():
        out.kappa[key] = t[:, :3].mean(axis=1)
    return out
