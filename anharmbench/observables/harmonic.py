"""Harmonic phonons (phonopy) on meshes and paths, in the conventions of the diagrams.

phonopy computes the frequencies and eigenvectors (its Fourier interpolation of the fc2 of
the order-2 FTG). This module adds what the anharmonic diagrams need:

* :class:`Mesh` -- a Gamma-centred ``n1 x n2 x n3`` mesh of fractional q-points in the
  primitive reciprocal basis (index ``(i1 n2 + i2) n3 + i3`` for ``q = (i1/n1, i2/n2,
  i3/n3)``), with index arithmetic for momentum conservation and a clear error for a
  q-point that is not on it;
* :func:`solve_phonons` -- frequencies and eigenvectors at a set of q-points, refusing
  imaginary modes (naming the q-point and branch), and the *cell-convention* eigenvectors
  ``e~(k a; q j) = e(k a; q j) exp(2 pi i q . x_k) / sqrt(m_k)`` (1/sqrt(amu)) that turn
  our lattice tensors into normal-coordinate vertices
  (:mod:`anharmbench.observables.force_constants`);
* :func:`bose_einstein` -- occupations in phonopy's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from phonopy.physical_units import get_physical_units

from anharmbench.observables.errors import ImaginaryModeError, IncommensurateError
from anharmbench.symmetry import format_qpoint

if TYPE_CHECKING:
    from ase import Atoms
    from phonopy import Phonopy

__all__ = [
    "IMAGINARY_TOL",
    "irreducible_qpoints",
    "Mesh",
    "Phonons",
    "bose_einstein",
    "degenerate_sets",
    "solve_phonons",
]

#: Frequencies below ``-IMAGINARY_TOL`` (THz) are imaginary modes, not round-off.
IMAGINARY_TOL = 1e-3
#: Modes below this frequency (THz) are left out of the diagrams (the acoustic modes at
#: Gamma), as phono3py's ``cutoff_frequency``.
CUTOFF_FREQUENCY = 1e-4
#: Frequencies closer than this (THz) are degenerate (phono3py's threshold).
DEGENERACY_TOL = 1e-4


@dataclass(frozen=True)
class Mesh:
    """Gamma-centred regular mesh ``n1 x n2 x n3`` in the primitive reciprocal basis.

    Attributes
    ----------
    numbers : tuple[int, int, int]
    """

    numbers: tuple[int, int, int]

    def __init__(self, numbers: Sequence[int] | int | np.ndarray) -> None:
        arr = np.atleast_1d(np.asarray(numbers))
        if arr.size == 1:
            arr = np.repeat(arr, 3)
        if arr.shape != (3,) or not np.allclose(arr, np.rint(arr)) or (arr < 1).any():
            raise IncommensurateError(f"a mesh is one or three positive integers, got {numbers!r}")
        object.__setattr__(self, "numbers", tuple(int(v) for v in np.rint(arr)))

    @classmethod
    def from_length(cls, length: float, primitive: Atoms) -> Mesh:
        """The mesh phono3py takes for a single ``--mesh LENGTH`` (Angstrom).

        phonopy's ``length2mesh`` with the primitive cell's point group, as phono3py's
        grid does (``n_i = rint(length |a*_i|)``, made symmetric): 50 gives 15x15x15 for
        NaCl, 40 gives 15x15x8 for wurtzite AlN.
        """
        import spglib
        from phonopy.phonon.grid import length2mesh

        if not np.isfinite(length) or length <= 0:
            raise IncommensurateError(f"a mesh length is a positive number, got {length!r}")
        cell = (np.asarray(primitive.cell), primitive.get_scaled_positions(),
                primitive.numbers)
        data = spglib.get_symmetry_dataset(cell, symprec=1e-5)
        rotations = None if data is None else np.asarray(data.rotations, dtype=np.int64)
        return cls(length2mesh(float(length), np.asarray(primitive.cell), rotations=rotations))

    @property
    def size(self) -> int:
        """Number of q-points ``N = n1 n2 n3``."""
        return int(np.prod(self.numbers))

    @property
    def addresses(self) -> np.ndarray:
        """``(N, 3)`` int64 integer addresses ``i`` (``q = i / n``), index order."""
        g = np.meshgrid(*[np.arange(n) for n in self.numbers], indexing="ij")
        return np.stack([x.ravel() for x in g], axis=1).astype(np.int64)

    @property
    def qpoints(self) -> np.ndarray:
        """``(N, 3)`` float64 fractional q-points in ``[0, 1)``, index order."""
        return self.addresses / np.asarray(self.numbers, dtype=float)

    def index_of_address(self, address: np.ndarray) -> np.ndarray:
        """Index of integer addresses ``(..., 3)`` taken modulo the mesh."""
        a = np.asarray(address, dtype=np.int64) % np.asarray(self.numbers)
        n = self.numbers
        return (a[..., 0] * n[1] + a[..., 1]) * n[2] + a[..., 2]

    def address_of(self, q: np.ndarray | Sequence[float], what: str = "q-point") -> np.ndarray:
        """Integer address ``(3,)`` of a fractional q-point on the mesh (any periodic image).

        Raises
        ------
        IncommensurateError
            When ``q`` is not on the mesh.
        """
        qa = np.asarray(q, dtype=float).reshape(3)
        x = qa * np.asarray(self.numbers)
        if not np.allclose(x, np.rint(x), atol=1e-6):
            need = [_denominator(v) for v in qa]
            raise IncommensurateError(
                f"{what} {format_qpoint(qa)} is not on the {self.label} mesh: the mesh must be a "
                f"multiple of {need} along the three reciprocal axes (or pick q-points on it)")
        return np.rint(x).astype(np.int64) % np.asarray(self.numbers)

    def index(self, q: np.ndarray | Sequence[float], what: str = "q-point") -> int:
        """Index of a fractional q-point on the mesh (IncommensurateError if not on it)."""
        return int(self.index_of_address(self.address_of(q, what)))

    def contains(self, q: np.ndarray | Sequence[float]) -> bool:
        """Whether ``q`` lies on the mesh."""
        x = np.asarray(q, dtype=float).reshape(3) * np.asarray(self.numbers)
        return bool(np.allclose(x, np.rint(x), atol=1e-6))

    @property
    def label(self) -> str:
        """``"n1x n2 x n3"`` as text."""
        return "x".join(str(n) for n in self.numbers)


def _denominator(x: float, max_den: int = 1000) -> int:
    from fractions import Fraction

    return Fraction(float(x)).limit_denominator(max_den).denominator


@dataclass(frozen=True, eq=False)
class Phonons:
    """Harmonic phonons at a list of q-points.

    Attributes
    ----------
    qpoints : numpy.ndarray
        ``(nq, 3)`` float64 fractional q-points.
    frequencies : numpy.ndarray
        ``(nq, nb)`` float64 in THz, increasing per q (imaginary: negative).
    eigenvectors : numpy.ndarray
        ``(nq, nb, nb)`` complex128 phonopy eigenvectors, column ``j`` = branch ``j``,
        row ``3 k + a``.
    cell_eigenvectors : numpy.ndarray
        ``(nq, nb, nb)`` complex128 ``e~ = e exp(2 pi i q . x_k) / sqrt(m_k)``, 1/sqrt(amu).
    """

    qpoints: np.ndarray
    frequencies: np.ndarray
    eigenvectors: np.ndarray
    cell_eigenvectors: np.ndarray

    @property
    def n_branches(self) -> int:
        return int(self.frequencies.shape[1])


def solve_phonons(
    phonon: Phonopy,
    qpoints: np.ndarray | Sequence[Sequence[float]],
    *,
    check_imaginary: bool = True,
    what: str = "the anharmonic observables",
    imaginary_tol: float = IMAGINARY_TOL,
    fractional_positions: np.ndarray | None = None,
) -> Phonons:
    """Frequencies and eigenvectors of ``phonon`` (phonopy with fc2) at ``qpoints``.

    Parameters
    ----------
    phonon
        :class:`phonopy.Phonopy` with force constants.
    qpoints
        ``(nq, 3)`` fractional q-points.
    check_imaginary
        Raise :class:`ImaginaryModeError` for a frequency below ``-imaginary_tol`` THz.
    what
        Name of the calculation, for the message.
    imaginary_tol
        THz.
    fractional_positions
        ``(n_prim, 3)`` fractional positions ``x_k`` of the primitive sites in the labelling
        of the lattice tensors (``primitive.get_scaled_positions(wrap=False)``); default
        phonopy's primitive cell.

    Returns
    -------
    Phonons
    """
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    phonon.run_qpoints(q, with_eigenvectors=True)
    freqs = np.asarray(phonon.qpoints.frequencies, dtype=float)
    evecs = np.asarray(phonon.qpoints.eigenvectors, dtype=complex)
    if check_imaginary:
        bad = np.argwhere(freqs < -imaginary_tol)
        if len(bad):
            iq, j = (int(v) for v in bad[0])
            qq = tuple(float(v) for v in q[iq])
            raise ImaginaryModeError(
                f"{what}: imaginary harmonic frequency {freqs[iq, j]:.4f} THz (printed "
                f"negative) at q = {format_qpoint(q[iq])} (fractional {np.round(q[iq], 6).tolist()}"
                f"), branch {j}; {len(bad)} imaginary mode(s) in total over {len(q)} q-points. "
                "The structure is not a minimum of this potential's harmonic surface: the "
                "anharmonic diagrams are not defined there.",
                qq, j, float(freqs[iq, j]))
    prim = phonon.primitive
    frac = np.asarray(prim.scaled_positions if fractional_positions is None
                      else fractional_positions, dtype=float)
    masses = np.asarray(prim.masses, dtype=float)
    phase = np.exp(2j * np.pi * (q @ frac.T))  # (nq, n_prim)
    scale = np.repeat(phase / np.sqrt(masses)[None, :], 3, axis=1)  # (nq, 3 n_prim)
    cell = evecs * scale[:, :, None]
    return Phonons(q, freqs, evecs, cell)


def irreducible_qpoints(phonon: Phonopy, mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Irreducible q-points of a Gamma-centred mesh and their multiplicities (phonopy's).

    Returns
    -------
    qpoints : numpy.ndarray
        ``(n_ir, 3)`` float64 fractional q-points (the same points phono3py iterates).
    weights : numpy.ndarray
        ``(n_ir,)`` int64, summing to ``mesh.size``.
    """
    from phonopy.phonon.grid import BZGrid, get_ir_grid_points, get_qpoints_from_bz_grid_points

    bz = BZGrid(np.asarray(mesh.numbers), lattice=phonon.primitive.cell,
                symmetry_dataset=phonon.primitive_symmetry.dataset)
    ir, weights, _ = get_ir_grid_points(bz)
    q = get_qpoints_from_bz_grid_points(bz.grg2bzg[ir], bz)
    return np.asarray(q, dtype=float), np.asarray(weights, dtype=np.int64)


def bose_einstein(frequencies: np.ndarray, temperature: float) -> np.ndarray:
    """Bose-Einstein occupation ``1 / (exp(h nu / kB T) - 1)`` (0 at T = 0).

    Parameters
    ----------
    frequencies
        Frequencies in THz (any shape, positive).
    temperature
        Kelvin.
    """
    nu = np.asarray(frequencies, dtype=float)
    if temperature <= 0:
        return np.zeros_like(nu)
    u = get_physical_units()
    x = nu * u.THzToEv / (u.KB * float(temperature))
    with np.errstate(over="ignore", divide="ignore"):
        return 1.0 / np.expm1(x)


def degenerate_sets(frequencies: np.ndarray, tol: float = DEGENERACY_TOL) -> list[list[int]]:
    """Groups of branch indices with equal frequency (within ``tol`` THz) at one q-point."""
    f = np.asarray(frequencies, dtype=float)
    groups: list[list[int]] = [[0]]
    for j in range(1, len(f)):
        if abs(f[j] - f[groups[-1][-1]]) < tol:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def average_degenerate(values: np.ndarray, frequencies: np.ndarray,
                       tol: float = DEGENERACY_TOL) -> np.ndarray:
    """Average ``values`` ``(..., nq, nb)`` over degenerate branches of ``frequencies``.

    ``frequencies`` is ``(nq, nb)`` THz.

    Per-branch quantities of degenerate modes depend on the (arbitrary) eigenvector basis
    of the degenerate subspace unless the sum over internal states is symmetric; the
    average is basis independent (phono3py does the same).
    """
    out = np.array(values, dtype=float, copy=True)
    for iq in range(frequencies.shape[0]):
        for g in degenerate_sets(frequencies[iq], tol):
            if len(g) > 1:
                out[..., iq, g] = out[..., iq, g].mean(axis=-1, keepdims=True)
    return out


def hbar_units() -> dict[str, float]:
    """Constants used by the diagrams (phonopy's): ``hbar`` J s, ``EV`` J, ``AMU`` kg, ...

    Returns
    -------
    dict[str, float]
        ``hbar`` (J s), ``ev`` (J per eV), ``amu`` (kg), ``angstrom`` (m), ``thz`` (Hz).
    """
    u = get_physical_units()
    return {"hbar": u.Hbar * u.EV, "ev": u.EV, "amu": u.AMU, "angstrom": u.Angstrom,
            "thz": u.THz}
