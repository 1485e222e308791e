"""Is the reference structure a stationary point of the potential? Forces and stress.

Irreducible derivatives are the Taylor coefficients of the energy about the reference
structure; they are the paper's quantities only where that structure is at equilibrium:
zero forces *and* zero stress. Forces alone are not enough: in fluorite and other
high-symmetry crystals they vanish by symmetry at any lattice constant, so a cell under
21 GPa, or a potential given its elements in the wrong order, passes a force check.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import GPa

from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import NotAtEquilibriumError

#: Default tolerances: largest residual force (eV/A) and stress component (GPa).
FORCE_TOL = 1e-4
STRESS_TOL_GPA = 0.1


@dataclass(frozen=True)
class EquilibriumCheck:
    """Residual forces and stress of the reference supercell on a potential.

    Attributes
    ----------
    max_force
        Largest residual force, eV/Angstrom (on atom ``atom``).
    max_stress_gpa
        Largest stress component (Voigt, absolute), GPa.
    stress_gpa
        The six Voigt components ``xx yy zz yz xz xy``, GPa.
    force_tol, stress_tol_gpa
        Tolerances applied.
    passed
        Both below their tolerances.
    accepted
        Not passed, but the user asked to go on (marked in outputs and reports).
    source
        Where the evaluation came from (``in process``, ``reference deck``).
    """

    max_force: float
    atom: int
    max_stress_gpa: float
    stress_gpa: tuple[float, ...]
    force_tol: float
    stress_tol_gpa: float
    passed: bool
    accepted: bool
    source: str

    def text(self) -> str:
        """One line for logs and reports."""
        verdict = ("at equilibrium" if self.passed else
                   "NOT at equilibrium (accepted by the user)" if self.accepted else
                   "NOT at equilibrium")
        stress = (f"stress {self.max_stress_gpa:.3g} GPa (tolerance {self.stress_tol_gpa:g})"
                  if np.isfinite(self.max_stress_gpa) else "stress not checked (the output "
                  "has none)")
        return (f"reference {verdict}: residual force {self.max_force:.2e} eV/A "
                f"(tolerance {self.force_tol:.0e}), {stress} [{self.source}]")


def judge(forces: np.ndarray, stress: np.ndarray, *, potential_name: str, source: str,
          force_tol: float = FORCE_TOL, stress_tol_gpa: float = STRESS_TOL_GPA,
          allow: bool = False) -> EquilibriumCheck:
    """Check residual forces ``(N, 3)`` (eV/A) and stress ``(6,)`` (Voigt, eV/A^3).

    Raises
    ------
    NotAtEquilibriumError
        Either exceeds its tolerance and ``allow`` is false; the message gives both
        figures and the fix.
    """
    norms = np.linalg.norm(np.asarray(forces, dtype=float), axis=1)
    atom = int(np.argmax(norms))
    s_gpa = np.asarray(stress, dtype=float) / GPa
    max_f = float(norms[atom])
    # a DFT output without a stress (not asked for) is checked by its forces only
    has_stress = bool(np.isfinite(s_gpa).all())
    max_s = float(np.abs(s_gpa).max()) if has_stress else float("nan")
    ok_f, ok_s = bool(max_f <= force_tol), (not has_stress) or bool(max_s <= stress_tol_gpa)
    check = EquilibriumCheck(max_f, atom, max_s, tuple(float(v) for v in s_gpa), force_tol,
                             stress_tol_gpa, ok_f and ok_s, allow and not (ok_f and ok_s),
                             source)
    if check.passed or allow:
        return check
    what = []
    if not ok_f:
        what.append(f"residual force {max_f:.3e} eV/A on atom {atom} exceeds {force_tol:.1e} "
                    "eV/A")
    if not ok_s:
        what.append(f"stress {max_s:.3g} GPa exceeds {stress_tol_gpa:g} GPa (Voigt "
                    f"{np.array2string(s_gpa, precision=3)} GPa)")
    raise NotAtEquilibriumError(
        f"the reference supercell is not at equilibrium on potential {potential_name!r}: "
        f"{' and '.join(what)} [{source}]. Relax the lattice constant and positions on this "
        "potential first (and check its element order); or, to measure derivatives at this "
        "strained structure on purpose, pass --allow-nonequilibrium (it is marked in the "
        "output and the report)")


def evaluate_reference(potential: LammpsPotential, supercell: Atoms
                       ) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV), forces ``(N, 3)`` (eV/A) and stress ``(6,)`` (eV/A^3) of ``supercell``
    on ``potential``, in this process (one LAMMPS evaluation)."""
    from anharmbench.lammps.calculator import LammpsCalculator

    with LammpsCalculator(potential, supercell) as calc:
        res = calc.calculate_batch(supercell.positions[None], stress=True)
    return float(res.energies[0]), res.forces[0], res.stresses[0]


def check_attrs(check: EquilibriumCheck | None, why_unchecked: str = "") -> dict[str, Any]:
    """Attributes recorded in ``derivatives.h5`` (``equilibrium``)."""
    if check is None:
        return {"equilibrium": json.dumps({"checked": False, "why": why_unchecked})}
    return {"equilibrium": json.dumps({"checked": True, **asdict(check)})}
