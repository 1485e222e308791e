"""Loop lineshift: the first-order self-energy of the quartic vertex (our own code).

phono3py has no production quartic vertex (``phono3py.phonon4`` is an experimental,
unvectorized port), so this diagram is ours. The loop diagram of Bandi, Jiang and
Marianetti (2024, Fig. 4) is the static, first-order-in-``Phi4`` self-energy of their ref.
[4] (Xiao and Marianetti, PRB 107, 094303 (2023)); the paper prints no formula, so we use
the standard one in the paper's Hamiltonian convention
(``H = sum_n (1/n!) sum Phi^(n) u^n``, derivatives in eV/A^n)::

    Delta_l = (hbar / (8 N omega_l)) sum_{l'} Phi~(l, -l, l', -l') (2 n_l' + 1) / omega_l'

where ``l = lambda = (q, j)``, ``N`` the number of mesh points ``q'``, ``n`` the Bose-Einstein
occupation and ``Phi~`` the mass-reduced Fourier transform of the fourth derivatives
contracted with eigenvectors (:mod:`anharmbench.observables.force_constants`). This is
``Delta = (1/hbar) d<H4>/d n_lambda`` for ``H4 = (1/4!) sum Phi(l1..l4) A_l1..A_l4``
(``A = a + a^dagger``, ``Phi(l1..l4) = (hbar/2)^2 N^-1 Phi~ / sqrt(w1 w2 w3 w4)``); a
positive quartic term hardens the mode. For a single mode ``H = p^2/2m + m w^2 x^2/2 +
Phi4 x^4 / 24`` it gives ``Delta = hbar Phi4 (2n + 1) / (8 m^2 w^2)``, the exact first-order
splitting ``E_{n+1} - E_n - hbar w`` averaged thermally. Shifts are returned in THz
(``Delta / 2 pi``); they are real and at ``T = 0`` contain the zero-point term.

The external q-point may be any point (a path); ``q'`` runs over a Gamma-centred mesh.
Vectorization: for each external q the slots of ``lambda`` and ``-lambda`` are contracted
with the FTG tensor view by view, the rest is grouped by the difference of the image cells
of the ``q'`` slots, and the mesh sum is one matrix product with plane waves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from anharmbench.observables._vertex import (
    diagram_constants,
    diagram_phonons,
    quartic_diagram,
    real_matmul,
    slot_weights,
    unique_rows,
)
from anharmbench.observables.errors import ObservableError
from anharmbench.observables.force_constants import DerivativeSet, LatticeTensor
from anharmbench.observables.harmonic import (
    CUTOFF_FREQUENCY,
    Mesh,
    Phonons,
    average_degenerate,
    bose_einstein,
)
from anharmbench.observables.modes import ModeData, QPoints

if TYPE_CHECKING:
    from phonopy import Phonopy

__all__ = ["loop_shift", "loop_shift_from_tensor", "loop_vertex"]


def loop_vertex(lt: LatticeTensor, q: np.ndarray, ext: Phonons, iq: int,
                mesh: Mesh, mesh_ph: Phonons) -> np.ndarray:
    """``Phi~(q j, -q j, q' j', -q' j')`` for every branch ``j``, mesh point ``q'`` and ``j'``.

    Parameters
    ----------
    lt
        Order-4 lattice tensor.
    q
        ``(3,)`` fractional external q-point.
    ext
        Phonons holding the external q-point at row ``iq``.
    mesh, mesh_ph
        The mesh and its phonons (rows in mesh index order).

    Returns
    -------
    numpy.ndarray
        ``(N, nb, nb)`` float64 ``[q', j, j']`` in eV/(Angstrom^4 amu^2) (real: the vertex
        is Hermitian in its two pairs).
    """
    if lt.order != 4:
        raise ObservableError(f"the loop needs the order-4 tensor, got order {lt.order}")
    e0 = ext.cell_eigenvectors[iq]  # (nb, nb) [a, j]
    nb, npr, ns = e0.shape[0], lt.n_prim, lt.n_atoms_ftg
    keys_all, blocks = [], []
    for cells, w, phi in lt.views():
        w0 = slot_weights(lt, cells, e0, q, +1)  # slot 0: +q
        w1 = slot_weights(lt, cells, e0.conj(), q, -1)  # slot 1: -q
        t = real_matmul(w0.T, phi.reshape(3 * ns, -1)).reshape(nb, 3 * ns, 9 * ns * ns)
        y = np.einsum("jyr,yj->jr", t, w1, optimize=True).reshape(nb, ns, 3, ns, 3)
        # group slots 2, 3 by D = L(i2) - L(i3) and (kappa2, kappa3)
        d = cells[:, None, :] - cells[None, :, :]  # (ns, ns, 3)
        keys_all.append(d.reshape(-1, 3))
        blocks.append(w * y.transpose(1, 3, 0, 2, 4).reshape(ns * ns, nb, 3, 3))
    uniq, inv = unique_rows(np.concatenate(keys_all))
    k2 = np.tile(np.repeat(lt.kappa, ns), len(blocks))
    k3 = np.tile(np.tile(lt.kappa, ns), len(blocks))
    B = np.zeros((len(uniq), npr, npr, nb, 3, 3), dtype=complex)
    np.add.at(B, (inv, k2, k3), np.concatenate(blocks))
    B = B.transpose(0, 3, 1, 4, 2, 5).reshape(len(uniq), nb * 3 * npr * 3 * npr)
    plane = np.exp(2j * np.pi * (mesh.qpoints @ uniq.T))  # (N, nD)
    C = (plane @ B).reshape(mesh.size, nb, 3 * npr, 3 * npr)
    E = mesh_ph.cell_eigenvectors  # (N, a, j')
    M = np.einsum("xjab,xak,xbk->xjk", C, E, E.conj(), optimize=True)
    return M.real


def loop_shift_from_tensor(
    lt: LatticeTensor,
    phonon: Phonopy,
    qpoints: np.ndarray | Sequence[Sequence[float]],
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    *,
    average_degenerate_branches: bool = True,
    potential: str = "",
) -> ModeData:
    """Loop lineshifts from a quartic lattice tensor and harmonic phonons.

    Parameters
    ----------
    lt
        Order-4 :class:`LatticeTensor`.
    phonon
        :class:`phonopy.Phonopy` with fc2 (the harmonic phonons).
    qpoints
        ``(nq, 3)`` fractional external q-points (any; e.g. a path).
    mesh
        The internal ``q'`` mesh (Gamma centred).
    temperatures
        ``(nT,)`` K.
    average_degenerate_branches
        Average over degenerate branches (basis independent).
    potential
        Name recorded in the result.

    Returns
    -------
    ModeData
        ``quantity="loop_shift"``, ``values`` ``(nT, nq, nb)`` THz.

    Raises
    ------
    ImaginaryModeError
        An imaginary harmonic mode at an external or mesh q-point.
    """
    mesh, temps, q, _, ext, mph = diagram_phonons(lt, phonon, qpoints, mesh, temperatures,
                                                  "the loop lineshift")
    nu_m = mph.frequencies
    ok_m = nu_m > CUTOFF_FREQUENCY
    inv_m = np.where(ok_m, 1.0 / np.where(ok_m, nu_m, 1.0), 0.0)
    occ = np.stack([np.where(ok_m, 2.0 * bose_einstein(nu_m, T) + 1.0, 0.0) for T in temps])
    c = diagram_constants()["loop"] / mesh.size
    out = np.zeros((len(temps), len(q), ext.n_branches))
    for iq in range(len(q)):
        M = loop_vertex(lt, q[iq], ext, iq, mesh, mph)  # (N, j, j')
        s = np.einsum("xjk,txk->tj", M, occ * inv_m[None])  # (nT, j)
        nu0 = ext.frequencies[iq]
        ok0 = nu0 > CUTOFF_FREQUENCY
        out[:, iq] = np.where(ok0[None], c * s / np.where(ok0, nu0, 1.0)[None], 0.0)
    if average_degenerate_branches:
        out = average_degenerate(out, ext.frequencies)
    return ModeData("loop_shift", potential, q, ext.frequencies, temps, out,
                    meta={"mesh": list(mesh.numbers), "diagram": "loop (first-order, Phi4)",
                          "sign": "positive = hardening"})


def loop_shift(
    derivatives: DerivativeSet,
    qpoints: QPoints,
    mesh: Sequence[int] | int | Mesh,
    temperatures: Sequence[float] | np.ndarray = (300.0,),
    *,
    average_degenerate_branches: bool = True,
) -> ModeData:
    """Loop lineshifts (THz) of a potential at q-points, along a path or on the mesh.

    Needs orders 2 (phonons) and 4 (vertex). ``qpoints``: ``(nq, 3)`` fractional, a
    :class:`~anharmbench.observables.modes.QPath`, or ``"mesh"`` (the irreducible points of
    ``mesh``, weights in the result); the rest as :func:`loop_shift_from_tensor`.
    """
    return quartic_diagram(
        derivatives, qpoints, mesh, "the loop lineshift",
        lambda lt, phonon, q: loop_shift_from_tensor(
            lt, phonon, q, mesh, temperatures,
            average_degenerate_branches=average_degenerate_branches, potential=derivatives.name))
