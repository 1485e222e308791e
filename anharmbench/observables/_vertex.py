"""Shared helpers of the 4th-order diagrams (our own code: phono3py has no quartic vertex).

The vertex of a :class:`~anharmbench.observables.force_constants.LatticeTensor` is a sum
over views ``v`` of the FTG tensor contracted with, per slot, the phase
``exp(2 pi i q . L_v(i))`` of each FTG atom's image. Slots whose q-point is fixed (the
external phonon) are contracted first; the remaining ones are grouped by differences of
image cells, so that the mesh sums become matrix products with plane-wave matrices.
"""

from __future__ import annotations

import numpy as np
from phonopy.physical_units import get_physical_units

from anharmbench.observables.force_constants import LatticeTensor


def slot_weights(lt: LatticeTensor, cells: np.ndarray, evecs: np.ndarray, q: np.ndarray,
                 sign: int = 1) -> np.ndarray:
    """Per-atom slot vectors of a fixed external phonon in one view.

    Parameters
    ----------
    lt
        The lattice tensor (for ``kappa``).
    cells
        ``(N_S, 3)`` image cells ``L_v(i)`` of the view.
    evecs
        ``(3 n_prim, nj)`` complex cell-convention eigenvectors of the slot (already
        conjugated for a ``-q`` slot).
    q
        ``(3,)`` fractional q-point of the slot (``sign`` * external q).
    sign
        Phase sign (the slot's q is ``sign * q``).

    Returns
    -------
    numpy.ndarray
        ``(3 N_S, nj)`` complex128 ``W[3 i + a, j] = evecs[3 kappa(i) + a, j] exp(2 pi i
        sign q . L(i))``.
    """
    phase = np.exp(2j * np.pi * sign * (cells @ q))  # (N_S,)
    rows = (3 * lt.kappa[:, None] + np.arange(3)[None, :]).reshape(-1)
    return evecs[rows] * np.repeat(phase, 3)[:, None]


def real_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for complex ``a`` and real ``b`` without casting ``b`` to complex."""
    return (a.real @ b) + 1j * (a.imag @ b)


def unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of an integer array ``(m, d)`` and the inverse map ``(m,)``."""
    uniq, inv = np.unique(np.asarray(keys, dtype=np.int64), axis=0, return_inverse=True)
    return uniq, inv.reshape(-1)


def diagram_constants() -> dict[str, float]:
    """Unit factors of the diagrams in phonopy's units (frequencies in THz).

    Returns
    -------
    dict[str, float]
        ``loop``: ``Delta[THz] = loop / N * sum Phi~ (2n+1) / (nu nu')`` with ``Phi~`` in
        eV/(A^4 amu^2); ``sunset``: ``Gamma[THz] = sunset / N^2 * sum |Phi~|^2 F g /
        (nu0 nu1 nu2 nu3)`` with ``g`` in 1/THz. (The bubble is phono3py's own.)
    """
    u = get_physical_units()
    hbar = u.Hbar * u.EV  # J s
    w = 2 * np.pi * u.THz  # rad/s per THz
    phi4 = u.EV / u.Angstrom**4 / u.AMU**2
    return {
        # Delta_omega = hbar/(8 N omega0) sum Phi4 (2n+1)/omega'; Delta_nu = Delta_omega / w
        "loop": hbar * phi4 / 8.0 / w**3,
        # Gamma_omega = pi hbar^2/(96 N^2) sum |Phi4|^2/(w0 w1 w2 w3) F delta(omega);
        # delta(omega) = g(nu) / w, Gamma_nu = Gamma_omega / w
        "sunset": np.pi * hbar**2 * phi4**2 / 96.0 / w**6,
    }
