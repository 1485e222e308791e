"""Plausibility of forces: are they eV/Angstrom, restoring, and consistent with the energies?

A force file in another unit (Ry/Bohr or Hartree/Bohr read as eV/A, kcal/mol/A, forces
written as gradients) gives force constants off by a constant factor, and nothing in the
numbers themselves says so: every derivative scales alike, the symmetry and the sum rules
hold. What can be detected honestly, and is:

* **Energies beside the forces** (DFT outputs, phono3py datasets with supercell energies):
  forces are minus the gradient of the energy, so for small displacements ``u`` from the
  reference, ``E(u) - E0 = -F(u).u / 2`` up to anharmonic terms (exact for a harmonic
  crystal). The slope ``s`` of ``E`` against ``-F.u/2`` over the configurations is 1 when
  forces and energies share their units; forces in Ry/Bohr read as eV/A give 25.7,
  Hartree/Bohr 51.4, eV/Bohr (or Ry with Ry/Bohr) 1.89, kcal/mol/A 1/23. It is checked
  against 1 within a factor :data:`SLOPE_TOL` (the anharmonic terms at the usual steps of
  0.01-0.08 A move it by a few per cent). This is a real unit check.
* **Forces alone** (a type-1 ``FORCES_FC3`` without energies): a common factor cannot be
  told from a stiffer or softer crystal. Two things can: the harmonic work ``-sum F.u``
  of a set of displacements about a minimum is positive (a negative one is a sign error:
  gradients given as forces), and it is a Rayleigh quotient of the dynamical matrix, so
  ``nu_R = sqrt(-sum F.u / sum m u^2) / 2 pi`` is a lower bound of the crystal's highest
  phonon frequency. No crystal without hydrogen has a phonon above ~70 THz (the N2 and
  CO2 vibrons of molecular solids; diamond 40 THz), none with hydrogen above ~130 THz
  (the H2 vibron): a ``nu_R`` beyond :data:`NU_MAX_THZ` is refused as forces in a wrong
  unit (meV/A, kJ/mol/A). Forces too small (Ry/Bohr, Hartree/Bohr read as eV/A make
  Si's nu_R 2.1 and 1.5 THz) cannot be told from a soft crystal (solid Xe, Cs have no
  phonon above ~1.5-2 THz), and a factor of a few either way passes: that limit is
  inherent, so datasets with energies are the safe route.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anharmbench.errors import InputError

__all__ = ["NU_MAX_THZ", "SLOPE_TOL", "ForceUnitError", "check_energy_force_units",
           "check_force_scale", "rayleigh_frequency"]

#: Largest accepted ratio between the energies' slope against the forces' work and 1.
SLOPE_TOL = 1.25
#: Highest phonon frequency (THz) a crystal can have, without and with hydrogen (see the
#: module doc); ``nu_R`` above it is refused.
NU_MAX_THZ = {"no hydrogen": 80.0, "hydrogen": 150.0}
#: sqrt(eV / (A^2 amu)) / (2 pi) in THz (phonopy's VaspToTHz).
_TO_THZ = 15.633302300230191

#: Known conversions, to say which unit mix-up a slope points to.
_HINTS = {
    "Ry/Bohr read as eV/A": 25.71104309541616,
    "Hartree/Bohr read as eV/A": 51.42208619083232,
    "eV/Bohr read as eV/A, or energies and forces in Ry and Ry/Bohr": 1 / 0.529177210903,
    "eV/nm read as eV/A": 0.1,
    "kcal/mol/A read as eV/A": 1 / 23.060547830619,
    "kJ/mol/A read as eV/A": 1 / 96.48533212331,
    "meV/A read as eV/A": 1e-3,
}


class ForceUnitError(InputError):
    """Forces that cannot be eV/Angstrom (or not forces at all)."""


def _hint(factor: float) -> str:
    """The known unit mix-up nearest to a slope ``factor`` (within 10 %), or ``""``."""
    if not factor > 0:
        return " (forces of the wrong sign: gradients dE/dx instead of forces?)"
    name, ratio = min(_HINTS.items(), key=lambda kv: abs(np.log(factor / kv[1])))
    return f" ({name}?)" if abs(np.log(factor / ratio)) < 0.1 else ""


def check_energy_force_units(displacements: np.ndarray, forces: np.ndarray,
                             energies: np.ndarray | None, where: str) -> float | None:
    """Refuse forces whose units do not match the energies' (see the module doc).

    Parameters
    ----------
    displacements
        ``(n, N, 3)`` Angstrom from the reference structure.
    forces
        ``(n, N, 3)`` eV/Angstrom.
    energies
        ``(n,)`` eV (NaN where missing), or ``None``.
    where
        The file or store, for the message.

    Returns
    -------
    float or None
        The slope ``s`` (1 for consistent units); ``None`` when there are too few
        energies or displacements to tell.

    Raises
    ------
    ForceUnitError
        ``s`` differs from 1 by more than a factor :data:`SLOPE_TOL`.
    """
    if energies is None:
        return None
    e = np.asarray(energies, dtype=float)
    ok = np.isfinite(e)
    if ok.sum() < 3:
        return None
    u = np.asarray(displacements, dtype=float)[ok]
    w = -0.5 * np.einsum("ina,ina->i", np.asarray(forces, dtype=float)[ok], u)
    if np.ptp(w) < 1e-6:  # all configurations alike (or undisplaced): nothing to compare
        return None
    design = np.column_stack([np.ones_like(w), w])
    (_, slope), *_ = np.linalg.lstsq(design, e[ok], rcond=None)
    if not (1 / SLOPE_TOL <= slope <= SLOPE_TOL):
        raise ForceUnitError(
            f"{where}: the forces do not match the energies: over {int(ok.sum())} displaced "
            f"configurations the energy changes by {slope:.3g} times the work of the forces "
            f"(1 when both are in eV and eV/A), so the forces are {1 / slope:.3g} times what "
            f"the energies imply{_hint(float(slope))}. Convert them to eV/A (phonopy and "
            "phono3py convert a code's units when the dataset names its calculator)")
    return float(slope)


def rayleigh_frequency(displacements: np.ndarray, forces: np.ndarray,
                       masses: Sequence[float]) -> float:
    """``nu_R`` in THz (see the module doc); negative when the forces push outwards."""
    u = np.asarray(displacements, dtype=float)
    work = -float(np.einsum("ina,ina->", np.asarray(forces, dtype=float), u))
    inertia = float(np.einsum("ina,n,ina->", u, np.asarray(masses, dtype=float), u))
    if inertia <= 0:
        return 0.0
    return float(np.sign(work) * np.sqrt(abs(work) / inertia) * _TO_THZ)


def check_force_scale(displacements: np.ndarray, forces: np.ndarray, masses: Sequence[float],
                      symbols: Sequence[str], where: str) -> float:
    """Refuse forces that push atoms away from the reference, or that imply a phonon
    no crystal has (see the module doc). Returns ``nu_R`` (THz).

    Raises
    ------
    ForceUnitError
        The forces' work is negative (a sign error), or ``nu_R`` is above
        :data:`NU_MAX_THZ`.
    """
    nu = rayleigh_frequency(displacements, forces, masses)
    if nu < 0:
        raise ForceUnitError(
            f"{where}: the forces push the displaced atoms further away (their work over the "
            f"displacements is negative, nu_R = {nu:.3g} THz): about a minimum they must "
            "pull them back. Are they gradients (dE/dx) instead of forces (-dE/dx)? Give "
            "forces in eV/A")
    key = "hydrogen" if "H" in set(symbols) else "no hydrogen"
    if nu > NU_MAX_THZ[key]:
        raise ForceUnitError(
            f"{where}: the forces are too large to be eV/A: they imply a phonon of at least "
            f"{nu:.3g} THz, and no crystal {'with' if key == 'hydrogen' else 'without'} "
            f"hydrogen has one above {NU_MAX_THZ[key]:g} THz. Were they written in Ry/Bohr, "
            "Hartree/Bohr or kcal/mol/A? Convert them to eV/A")
    return nu
