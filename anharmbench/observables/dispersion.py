"""Phonon dispersion along a path (phonopy's Fourier interpolation of our fc2).

The paper's Fig. 2 shows the bands of several potentials on one plot, the q-points where
the irreducible derivatives were explicitly measured (the FTG of the second order, 2I in
the paper) as dots and the Fourier interpolation as lines. :func:`dispersion` returns
both: frequencies on a dense path and at the FTG q-points that lie on it (found exactly,
also on equivalent images such as X' = X + G).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anharmbench.observables.force_constants import DerivativeSet
from anharmbench.observables.harmonic import IMAGINARY_TOL
from anharmbench.observables.modes import QPath, band_path, lattice_points_on_path
from anharmbench.symmetry import format_qpoint

__all__ = ["Dispersion", "dispersion"]


@dataclass(eq=False)
class Dispersion:
    """Bands of one potential along a path.

    Attributes
    ----------
    potential : str
    path : QPath
        Dense path (``qpoints``, ``distances``, ticks).
    frequencies : numpy.ndarray
        ``(nq, nb)`` THz (imaginary modes negative).
    ftg_qpoints : numpy.ndarray
        ``(m, 3)`` FTG q-points on the path (fractional).
    ftg_distances : numpy.ndarray
        ``(m,)`` their abscissas.
    ftg_frequencies : numpy.ndarray
        ``(m, nb)`` THz: the explicitly measured frequencies.
    ftg : numpy.ndarray
        ``(3, 3)`` FTG supercell matrix of order 2.
    """

    potential: str
    path: QPath
    frequencies: np.ndarray
    ftg_qpoints: np.ndarray
    ftg_distances: np.ndarray
    ftg_frequencies: np.ndarray
    ftg: np.ndarray


def dispersion(derivatives: DerivativeSet, path: Sequence | None = None,
               npoints: int = 51) -> Dispersion:
    """Phonon bands of ``derivatives`` (order 2) along ``path`` (default Gamma-X-K-Gamma-L).

    Imaginary modes are kept (negative, phonopy's convention) and reported in a warning
    naming the first q-point and branch: a dispersion is how one sees them.

    Parameters
    ----------
    derivatives
        Needs order 2.
    path
        Segments of ``(label, fractional q)`` nodes (:data:`~anharmbench.observables.modes.
        PAPER_PATH` by default).
    npoints
        Points per leg of the dense path.
    """
    derivatives.require([2], "the phonon dispersion")
    prim = derivatives.primitive
    S = derivatives.ftg(2)
    ftg = lattice_points_on_path(prim, S, path)
    dense = band_path(prim, path, npoints, extra=ftg.qpoints)
    phonon = derivatives.phonopy()
    phonon.run_qpoints(dense.qpoints)
    freqs = np.asarray(phonon.qpoints.frequencies, dtype=float)
    phonon.run_qpoints(ftg.qpoints)
    ffreqs = np.asarray(phonon.qpoints.frequencies, dtype=float)
    bad = np.argwhere(freqs < -IMAGINARY_TOL)
    if len(bad):
        iq, j = bad[0]
        warnings.warn(
            f"{derivatives.name}: imaginary harmonic frequency {freqs[iq, j]:.3f} THz at q = "
            f"{format_qpoint(dense.qpoints[iq])}, branch {j} ({len(bad)} path points x "
            "branches imaginary); plotted as negative", stacklevel=2)
    return Dispersion(derivatives.name, dense, freqs, ftg.qpoints, ftg.distances, ffreqs, S)
