"""Crystal structures: ThO2 fluorite, supercells from integer matrices, equilibrium.

Supercell matrices follow ``ase.build.make_supercell``: the rows of ``S`` are the
supercell vectors in the basis of the primitive cell vectors (``cell_sc = S @ cell``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell
from ase.calculators.calculator import Calculator
from scipy.optimize import brentq

#: The conventional cubic cell of an FCC lattice in the primitive basis of
#: ``ase.build.bulk(..., "fluorite")`` (4 primitive cells, 12 atoms for ThO2).
CONVENTIONAL = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]], dtype=int)

#: Supercells used by the paper, by name.
NAMED_SUPERCELLS: dict[str, np.ndarray] = {
    "prim": np.eye(3, dtype=int),
    "2I": 2 * np.eye(3, dtype=int),
    "SC": CONVENTIONAL,
    "4I": 4 * np.eye(3, dtype=int),
    "3SC": 3 * CONVENTIONAL,
}

#: Lattice constant used before relaxation on a given surface (Angstrom); the CRG
#: paper's experimental reference value. Not an equilibrium of the CRG surface: there the
#: cell is under ~1.7 GPa of tensile stress, so pass it only where a relaxation follows.
THO2_A0_GUESS = 5.597

#: Equilibrium (zero-pressure) lattice constant of ThO2 on the CRG reference surface
#: (Angstrom), the default of ``tho2_primitive``, of the study (``crystal.lattice_constant``
#: in anharmbench/study/config.py) and of ``anharmbench plan --a``. It is
#: ``relax_cubic_lattice(tho2_primitive, calc).a0`` = 5.5801012 for both the LAMMPS CRG
#: (anharmbench/potentials/crg.py) and the independent numpy one, which agree to 1e-10 A
#: (tests/test_structures.py; the self-check of anharmbench/reference_check.py relaxes the
#: same way). Rounded to 1e-6 A, it leaves a residual pressure of 2e-5 GPa.
THO2_A0_CRG = 5.580101


class NotAtEquilibriumError(ValueError):
    """A structure used for derivative work has residual forces above the tolerance."""


def tho2_primitive(a: float = THO2_A0_CRG) -> Atoms:
    """ThO2 in the fluorite structure, primitive FCC cell (Th, O, O).

    Parameters
    ----------
    a
        Cubic lattice constant in Angstrom. The default is the CRG equilibrium
        (:data:`THO2_A0_CRG`), so derivatives taken on the default cell with the default
        reference are taken at zero stress; pass :data:`THO2_A0_GUESS` (experiment) to
        start a relaxation on another surface.
    """
    return bulk("ThO2", "fluorite", a=a)


def supercell_matrix(spec: str | np.ndarray | list[list[int]] | list[int]) -> np.ndarray:
    """Parse a supercell given by name (``"2I"``, ``"SC"``, ...), nine integers or a 3x3 array.

    Raises
    ------
    ValueError
        For an unknown name, non-integer entries or a singular matrix.
    """
    if isinstance(spec, str):
        if spec in NAMED_SUPERCELLS:
            return NAMED_SUPERCELLS[spec].copy()
        try:
            values = [float(t) for t in spec.replace(",", " ").split()]
        except ValueError:
            raise ValueError(
                f"unknown supercell {spec!r}: use one of {sorted(NAMED_SUPERCELLS)} or nine "
                "integers, row by row (e.g. '2 0 0 0 2 0 0 0 2')"
            ) from None
        spec = values  # type: ignore[assignment]
    arr = np.asarray(spec, dtype=float)
    if arr.size != 9:
        raise ValueError(f"a supercell matrix needs 9 integers, got {arr.size}")
    arr = arr.reshape(3, 3)
    if not np.allclose(arr, np.round(arr)):
        raise ValueError(f"supercell matrix entries must be integers, got {arr.tolist()}")
    mat = np.round(arr).astype(int)
    det = round(np.linalg.det(mat))
    if det == 0:
        raise ValueError(
            f"supercell matrix {mat.tolist()} is singular (determinant 0); its rows must be "
            "three linearly independent lattice vectors"
        )
    return mat


def build_supercell(primitive: Atoms, matrix: str | np.ndarray) -> Atoms:
    """Supercell of ``primitive`` for an integer ``matrix`` (see :func:`supercell_matrix`).

    A negative determinant (left-handed cell) is accepted; atoms are ordered cell by
    cell as ``ase.build.make_supercell`` orders them.
    """
    mat = supercell_matrix(matrix)
    return make_supercell(primitive, mat, order="cell-major")


@dataclass(frozen=True)
class LatticeRelaxation:
    """Result of :func:`relax_cubic_lattice`.

    Attributes
    ----------
    a0
        Equilibrium cubic lattice constant, Angstrom.
    pressure
        Residual pressure at ``a0``, GPa.
    energy
        Energy of the primitive cell at ``a0``, eV.
    """

    a0: float
    pressure: float
    energy: float


def relax_cubic_lattice(
    factory: Callable[[float], Atoms],
    calculator: Calculator,
    *,
    bracket: tuple[float, float] = (5.2, 6.0),
    xtol: float = 1e-10,
) -> LatticeRelaxation:
    """Find the zero-pressure lattice constant of a cubic crystal with no free coordinates.

    Parameters
    ----------
    factory
        ``factory(a)`` returns the structure at lattice constant ``a`` (Angstrom).
    calculator
        Any ASE calculator that gives stress.
    bracket
        Lattice constants (Angstrom) between which the pressure changes sign.
    xtol
        Absolute tolerance on ``a0``, Angstrom.
    """
    from ase.units import GPa

    def pressure(a: float) -> float:
        atoms = factory(a)
        atoms.calc = calculator
        return float(-np.trace(atoms.get_stress(voigt=False)) / 3.0)

    p_lo, p_hi = pressure(bracket[0]), pressure(bracket[1])
    if p_lo * p_hi > 0:
        raise ValueError(
            f"the pressure does not change sign between a={bracket[0]} and a={bracket[1]} A "
            f"({p_lo / GPa:.3g} and {p_hi / GPa:.3g} GPa); widen the bracket"
        )
    a0 = float(brentq(pressure, *bracket, xtol=xtol, rtol=1e-15))
    atoms = factory(a0)
    atoms.calc = calculator
    p0 = -np.trace(atoms.get_stress(voigt=False)) / 3.0
    return LatticeRelaxation(a0=a0, pressure=float(p0 / GPa), energy=atoms.get_potential_energy())


def check_equilibrium(atoms: Atoms, calculator: Calculator, *, force_tol: float = 1e-4) -> float:
    """Refuse a structure whose residual forces exceed ``force_tol`` (eV/Angstrom).

    Returns
    -------
    float
        The largest residual force, eV/Angstrom.

    Raises
    ------
    NotAtEquilibriumError
        Naming the atom with the largest residual force and its size.
    """
    probe = atoms.copy()
    probe.calc = calculator
    forces = probe.get_forces()
    norms = np.linalg.norm(forces, axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] > force_tol:
        raise NotAtEquilibriumError(
            f"the structure is not at equilibrium: residual force {norms[worst]:.3e} eV/A on "
            f"atom {worst} ({atoms[worst].symbol}) exceeds the tolerance {force_tol:.1e} eV/A. "
            "Relax the internal coordinates (and lattice) on this potential first, or pass a "
            "larger tolerance if you know what you are doing."
        )
    return float(norms[worst])
