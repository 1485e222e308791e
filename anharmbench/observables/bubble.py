"""Bubble diagram (cubic vertex): linewidths and frequency shifts, computed by phono3py.

Everything here is phono3py's (its imaginary and real self-energies of the bubble
diagram, Togo et al., PRB 91, 094306 (2015)), fed with our fc2 and fc3 from irreducible
derivatives (:meth:`~anharmbench.observables.force_constants.DerivativeSet.phono3py`). The
paper's Fig. 3 (Bandi, Jiang and Marianetti 2024) shows these linewidths along a
high-symmetry path for an acoustic and an optical branch.

Conventions (phono3py's): ``gamma = -Im Sigma(omega_lambda)`` in THz is the half width at
half maximum; the linewidth (FWHM) is ``2 gamma`` and the lifetime ``tau = 1 / (2 * 2 pi
gamma)``. ``delta = Re Sigma(omega_lambda)`` (THz) is the bubble frequency shift (negative:
softening), a principal value regularised by a smearing ``epsilon``. phono3py evaluates both
at the q-points of its mesh only: an external q-point must lie on the mesh
(:class:`~anharmbench.observables.errors.IncommensurateError` otherwise); along a path use
:func:`~anharmbench.observables.modes.lattice_points_on_path` (what :func:`bubble_gamma`
does for a :class:`QPath`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from anharmbench.observables.force_constants import DerivativeSet
from anharmbench.observables.harmonic import Mesh, solve_phonons
from anharmbench.observables.modes import (
    ModeData,
    QPath,
    QPoints,
    lattice_points_on_path,
    resolve_qpoints,
)

if TYPE_CHECKING:
    from phono3py import Phono3py

__all__ = ["bubble_gamma", "bubble_shift", "grid_points", "mesh_path", "prepared_phono3py"]


def prepared_phono3py(derivatives: DerivativeSet, mesh: Mesh, sigma: float | None,
                      *, what: str, with_fc3: bool = True) -> Phono3py:
    """phono3py with our fc2/fc3 on ``mesh``, harmonic phonons checked, interaction ready.

    Raises
    ------
    MissingOrderError
        Without orders 2 and 3.
    ImaginaryModeError
        An imaginary harmonic frequency on the mesh (q-point and branch in the message).
    """
    derivatives.require([2, 3] if with_fc3 else [2], what)
    solve_phonons(derivatives.phonopy(), mesh.qpoints, what=what,
                  fractional_positions=derivatives.primitive.get_scaled_positions(wrap=False))
    ph3 = derivatives.phono3py(mesh.numbers, sigmas=[sigma], with_fc3=with_fc3)
    if not with_fc3:
        n = len(ph3.supercell)
        ph3.fc3 = np.zeros((n, n, n, 3, 3, 3))
    ph3.init_phph_interaction()
    return ph3


def grid_points(ph3: Phono3py, mesh: Mesh, qpoints: np.ndarray, what: str) -> np.ndarray:
    """phono3py BZ-grid indices of fractional q-points on the mesh (IncommensurateError)."""
    from phonopy.phonon.grid import get_qpoints_from_bz_grid_points

    bz = ph3.grid
    gr = np.asarray(bz.grg2bzg)
    qs = get_qpoints_from_bz_grid_points(gr, bz)
    lookup = {int(i): int(g) for i, g in zip(mesh.index_of_address(np.rint(
        qs * np.asarray(mesh.numbers)).astype(np.int64)), gr, strict=True)}
    return np.array([lookup[mesh.index(q, what=f"{what}: q-point")] for q in qpoints],
                    dtype=np.int64)


def mesh_path(derivatives: DerivativeSet, mesh: Sequence[int] | int | Mesh,
              path: QPath | Sequence | None = None) -> QPath:
    """The q-points of ``mesh`` on a path (default the paper's Gamma-X-K-Gamma-L)."""
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    spec = None if path is None or isinstance(path, QPath) else path
    return lattice_points_on_path(derivatives.primitive, np.diag(mesh.numbers), spec)


def bubble_gamma(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    *,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    sigma: float | None = None,
) -> ModeData:
    """Bubble ``gamma`` (THz, half width) at q-points of the mesh, every branch (phono3py).

    Parameters
    ----------
    derivatives
        Orders 2 and 3 are needed.
    qpoints
        ``(nq, 3)`` fractional q-points on the mesh, a :class:`QPath` whose points are on it
        (:func:`mesh_path`), or ``"mesh"``: the irreducible q-points of the mesh (weights in
        the result).
    mesh
        phono3py's sampling mesh.
    temperatures
        ``(nT,)`` K.
    sigma
        Gaussian smearing (THz); ``None``: phono3py's tetrahedron method.

    Returns
    -------
    ModeData
        ``quantity="bubble_gamma"``, ``values`` ``(nT, nq, nb)`` THz.
    """
    def gammas(ph3: Phono3py, gps: np.ndarray, temps: np.ndarray) -> np.ndarray:
        vals = ph3.run_imag_self_energy(gps, temps, frequency_points_at_bands=True)
        return np.asarray(np.asarray(vals.gammas)[0], dtype=float)  # (nT, nq, nb)

    return _self_energy(
        derivatives, qpoints, mesh, temperatures, sigma, "the bubble linewidth",
        "bubble_gamma", gammas,
        lambda: {"sigma_THz": "tetrahedron" if sigma is None else float(sigma),
                 "code": "phono3py imaginary self-energy (bubble)",
                 "ftg_order3": derivatives.ftg(3).tolist(),
                 "convention": "gamma = -Im Sigma = half width; linewidth = 2 gamma"})


def bubble_shift(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    *,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    epsilon: float = 0.1,
) -> ModeData:
    """Bubble frequency shift ``Re Sigma(omega_lambda)`` (THz) from phono3py.

    ``epsilon`` (THz) regularises the principal value (phono3py's ``epsilons``).
    """
    def deltas(ph3: Phono3py, gps: np.ndarray, temps: np.ndarray) -> np.ndarray:
        _, out = ph3.run_real_self_energy(gps, temps, frequency_points_at_bands=True,
                                          epsilons=[float(epsilon)])
        d = np.asarray(out)[0]  # (nT, nq, nb) (phono3py 4.10: epsilon, temperature, gp, band)
        nb = 3 * len(derivatives.primitive)
        if d.shape != (len(temps), len(gps), nb) and d.shape == (len(gps), len(temps), nb):
            d = np.swapaxes(d, 0, 1)  # the layout its docstring gives
        return np.ascontiguousarray(d, dtype=float)

    return _self_energy(
        derivatives, qpoints, mesh, temperatures, epsilon, "the bubble frequency shift",
        "bubble_shift", deltas,
        lambda: {"epsilon_THz": float(epsilon), "code": "phono3py real self-energy (bubble)",
                 "sign": "positive = hardening"})


def _self_energy(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray,
    smearing: float | None,
    what: str,
    quantity: str,
    compute: Callable[[Phono3py, np.ndarray, np.ndarray], np.ndarray],
    meta: Callable[[], dict[str, Any]],
) -> ModeData:
    """A bubble self-energy part on the mesh's q-points: phono3py set up, ``compute`` run.

    Parameters
    ----------
    derivatives, qpoints, mesh, temperatures
        As in :func:`bubble_gamma`.
    smearing
        phono3py's ``sigma`` (THz; ``None``: tetrahedron method).
    what
        The observable, for error messages.
    quantity
        :attr:`ModeData.quantity` of the result.
    compute
        ``(phono3py, grid points (nq,), temperatures (nT,)) -> (nT, nq, nb)`` float64 THz.
    meta
        Returns what :attr:`ModeData.meta` records after the mesh; called after the run,
        so that it reads only what the run has checked is there.

    Returns
    -------
    ModeData
        The values at the q-points, with the path or the mesh weights they came with.
    """
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    derivatives.require([2, 3], what)
    q, path, weights = resolve_qpoints(qpoints, derivatives.phonopy(), mesh)
    ph3 = prepared_phono3py(derivatives, mesh, smearing, what=what)
    gps = grid_points(ph3, mesh, q, what)
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    values = compute(ph3, gps, temps)
    freqs, _, _ = ph3.get_phonon_data()
    return ModeData(quantity, derivatives.name, q, np.asarray(freqs)[gps], temps, values,
                    meta={"mesh": list(mesh.numbers), **meta()}).set_origin(path, weights)
