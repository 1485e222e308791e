"""Least-squares irreducible derivatives from displacement-force data (any displacements).

The finite-difference fit (:mod:`anharmbench.derivatives.fit`) needs our own plans; this
fits the same Taylor series to arbitrary displaced supercells (phono3py's systematic pairs,
symfc's random displacements, MD snapshots), in the irreducible basis, with one-sigma
uncertainties. It is written here rather than taken from symfc or hiPhive because it must
be expressed in our basis, so that its values and uncertainties are those of our labelled
derivatives; on random displacements it agrees with symfc to 1e-13 (tests/test_dft_import.py).
"""

from __future__ import annotations

import numpy as np

from anharmbench.symmetry import IrreducibleBasis

__all__ = ["least_squares_derivatives"]


def least_squares_derivatives(
    bases: dict[int, IrreducibleBasis],
    displacements: np.ndarray,
    forces: np.ndarray,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], float]:
    """Least-squares irreducible derivatives of several orders from displacement-force data.

    The model is the Taylor series of :mod:`anharmbench.derivatives.basis_protocol`,
    ``f_c = -sum_n (1/n!) sum_k d_k dB_k(c)/dc``, fitted on the mode-projected forces of
    every configuration (``M`` equations each) jointly for all orders of ``bases`` (all in
    one FTG). The one-sigma uncertainties are ``sqrt(s^2 [(A^T A)^-1]_kk)`` with
    ``s^2 = |r|^2 / (rows - K)``.

    Parameters
    ----------
    bases
        ``{n: basis}``, same modes (same FTG and atom order).
    displacements, forces
        ``(n_conf, N, 3)`` float64, Angstrom and eV/Angstrom, our atom order.

    Returns
    -------
    (values, sigmas, rms)
        ``{n: (K_n,)}`` eV/A^n twice, and the rms force residual per equation (eV/A).
        Derivatives the data do not determine get ``inf`` uncertainty.
    """
    from math import factorial

    orders = sorted(bases)
    U = bases[orders[0]].modes
    c = displacements.reshape(len(displacements), -1) @ U  # (n_conf, M)
    f = forces.reshape(len(forces), -1) @ U
    blocks = []
    for n in orders:
        ft = bases[n].force_terms(c)  # (n_conf, K, M)
        blocks.append(-np.transpose(ft, (0, 2, 1)).reshape(-1, ft.shape[1]) / factorial(n))
    A = np.concatenate(blocks, axis=1)
    b = f.reshape(-1)
    # column scaling keeps the normal matrix well conditioned (orders differ by h^(n-2))
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    As = A / scale
    Q, R = np.linalg.qr(As)
    diag = np.abs(np.diag(R))
    ok = diag > 1e-10 * diag.max()
    x = np.full(A.shape[1], np.nan)
    var = np.full(A.shape[1], np.inf)
    Rk = R[np.ix_(ok, ok)]
    x_ok = np.linalg.solve(Rk, Q[:, ok].T @ b)
    x[ok] = x_ok
    resid = b - As[:, ok] @ x_ok
    dof = max(A.shape[0] - int(ok.sum()), 1)
    s2 = float(resid @ resid) / dof
    Rinv = np.linalg.inv(Rk)
    var[ok] = s2 * np.sum(Rinv**2, axis=1)
    x /= scale
    sig = np.sqrt(var) / scale
    values: dict[int, np.ndarray] = {}
    sigmas: dict[int, np.ndarray] = {}
    start = 0
    for n in orders:
        k = len(bases[n])
        values[n], sigmas[n] = x[start:start + k], sig[start:start + k]
        start += k
    return values, sigmas, float(np.sqrt(s2))
