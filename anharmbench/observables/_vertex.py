"""Shared helpers of the 4th-order diagrams (our own code: phono3py has no quartic vertex).

The vertex of a :class:`~anharmbench.observables.force_constants.LatticeTensor` is a sum
over views ``v`` of the FTG tensor contracted with, per slot, the phase
``exp(2 pi i q . L_v(i))`` of each FTG atom's image. Slots whose q-point is fixed (the
external phonon) are contracted first; the remaining ones are grouped by differences of
image cells, so that the mesh sums become matrix products with plane-wave matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from phonopy.physical_units import get_physical_units

from anharmbench.observables.force_constants import DerivativeSet, LatticeTensor, lattice_tensor
from anharmbench.observables.harmonic import Mesh, Phonons, solve_phonons
from anharmbench.observables.modes import ModeData, QPoints, resolve_qpoints

if TYPE_CHECKING:
    from phonopy import Phonopy


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


class DiagramPhonons(NamedTuple):
    """The harmonic phonons a quartic diagram sums over (from :func:`diagram_phonons`).

    Attributes
    ----------
    mesh
        The internal Gamma-centred mesh.
    temperatures
        ``(nT,)`` float64, K.
    qpoints
        ``(nq, 3)`` float64 fractional external q-points.
    positions
        ``(n_prim, 3)`` fractional positions of the primitive cell (unwrapped), the phase
        convention of the eigenvectors.
    external
        Phonons at the external q-points.
    internal
        Phonons at the mesh points (rows in mesh index order).
    """

    mesh: Mesh
    temperatures: np.ndarray
    qpoints: np.ndarray
    positions: np.ndarray
    external: Phonons
    internal: Phonons


def diagram_phonons(
    lt: LatticeTensor,
    phonon: Phonopy,
    qpoints: np.ndarray | Sequence[Sequence[float]],
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray,
    what: str,
) -> DiagramPhonons:
    """Harmonic phonons at the external q-points and on the mesh, in ``lt``'s convention.

    Parameters
    ----------
    lt
        The lattice tensor (its primitive cell fixes the eigenvector phases).
    phonon
        :class:`phonopy.Phonopy` with fc2.
    qpoints
        ``(nq, 3)`` fractional external q-points.
    mesh
        The internal mesh (numbers or a :class:`Mesh`).
    temperatures
        K (a number or ``(nT,)``).
    what
        The observable, for error messages.

    Raises
    ------
    ImaginaryModeError
        An imaginary harmonic mode at an external or mesh q-point.
    """
    mesh = mesh if isinstance(mesh, Mesh) else Mesh(mesh)
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    pos = lt.primitive.get_scaled_positions(wrap=False)
    ext = solve_phonons(phonon, q, what=what, fractional_positions=pos)
    mph = solve_phonons(phonon, mesh.qpoints, what=what, fractional_positions=pos)
    return DiagramPhonons(mesh, temps, q, pos, ext, mph)


def quartic_diagram(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    mesh: Sequence[int] | int | Mesh,
    what: str,
    from_tensor: Callable[[LatticeTensor, Phonopy, np.ndarray], ModeData],
) -> ModeData:
    """A quartic diagram of a potential: its order-4 lattice tensor fed to ``from_tensor``.

    Parameters
    ----------
    derivatives
        Orders 2 and 4 are needed.
    qpoints
        ``(nq, 3)`` fractional, a :class:`~anharmbench.observables.modes.QPath`, or
        ``"mesh"`` (the irreducible points of ``mesh``, weights in the result).
    mesh
        The internal mesh (and the one ``"mesh"`` refers to).
    what
        The observable, for error messages.
    from_tensor
        ``(order-4 lattice tensor, phonopy, (nq, 3) q-points) -> ModeData``.

    Returns
    -------
    ModeData
        With the path or mesh weights of ``qpoints`` and ``meta["ftg_order4"]``.
    """
    derivatives.require([2, 4], what)
    q, path, weights = resolve_qpoints(qpoints, derivatives.phonopy(), mesh)
    res = from_tensor(lattice_tensor(derivatives, 4), derivatives.phonopy(), q)
    res.set_origin(path, weights)
    res.meta["ftg_order4"] = derivatives.ftg(4).tolist()
    return res
