"""The reference-surface self-check: CRG in LAMMPS against the independent numpy code.

This is today's main job (``anharmbench run`` with no config) and a line of
``anharmbench doctor``. It relaxes the ThO2 lattice constant on the LAMMPS surface,
checks that fluorite is at equilibrium there, compares LAMMPS and
:class:`~anharmbench.potentials.crg_numpy.CRGNumpyCalculator` on displaced cells, and
reproduces the regression energy of the reference note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from anharmbench.lammps import LammpsCalculator
from anharmbench.potentials.crg import crg_potential, crg_regression_potential
from anharmbench.potentials.crg_numpy import CRGNumpyCalculator
from anharmbench.structures import (
    CONVENTIONAL,
    THO2_A0_GUESS,
    build_supercell,
    check_equilibrium,
    relax_cubic_lattice,
    tho2_primitive,
)

#: Regression values of the reference note (12-atom cell, a = 5.468 A, 10 A cutoff, setfl
#: nr 1000 / dr 0.01): -157.5526 eV by an independent Ewald sum, -157.552359 eV by the
#: note's own LAMMPS run. Our LAMMPS and numpy paths both give -157.552608 (3e-8 apart),
#: i.e. the independent value; no Ewald/PPPM/table setting swept in tests/test_crg.py
#: reproduces the note's LAMMPS number, whose Coulomb setup evidently carried a 2.5e-4 eV
#: error. We hold the result to the independent value and to the LAMMPS value loosely.
REGRESSION_A = 5.468
REGRESSION_ENERGY = -157.5526
REGRESSION_ENERGY_NOTE_LAMMPS = -157.552359
REGRESSION_TOL = 1e-4  # eV, against the independent Ewald value (given to 4 decimals)

#: Agreement required between LAMMPS and numpy. Measured: ~1e-9 in forces and energy per
#: atom (tests/test_crg.py). The margin covers LAMMPS's approximate erfc in coul/long (kept
#: below 1e-10 by g_ewald = 2/A), its k-space cutoff at accuracy 1e-10, and the setfl
#: spline interpolation.
TOL_ENERGY_PER_ATOM = 1e-8  # eV/atom
TOL_FORCE = 1e-7  # eV/A
TOL_STRESS = 1e-8  # eV/A^3


@dataclass(frozen=True)
class Comparison:
    """LAMMPS minus numpy on one displaced cell (maximum absolute differences)."""

    cell: str
    natoms: int
    energy_per_atom: float
    force: float
    stress: float

    @property
    def passed(self) -> bool:
        return (
            self.energy_per_atom < TOL_ENERGY_PER_ATOM
            and self.force < TOL_FORCE
            and self.stress < TOL_STRESS
        )


@dataclass(frozen=True)
class ReferenceReport:
    """Outcome of :func:`run_reference_check`."""

    a0: float | None
    pressure_gpa: float | None
    max_equilibrium_force: float
    regression_energy: float
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def regression_error(self) -> float:
        return abs(self.regression_energy - REGRESSION_ENERGY)

    @property
    def passed(self) -> bool:
        return (
            all(c.passed for c in self.comparisons)
            and self.regression_error < REGRESSION_TOL
            and self.max_equilibrium_force < 1e-8
        )

    def summary(self) -> str:
        worst_f = max(c.force for c in self.comparisons)
        worst_e = max(c.energy_per_atom for c in self.comparisons)
        return (
            f"max |dF| {worst_f:.1e} eV/A, max |dE| {worst_e:.1e} eV/atom, regression "
            f"E {self.regression_energy:.6f} eV (ref {REGRESSION_ENERGY})"
        )

    def text(self) -> str:
        lines = ["reference surface: CRG ThO2 (LAMMPS hybrid/overlay coul/long + eam/alloy, Ewald)"]
        if self.a0 is not None:
            lines.append(
                f"  relaxed lattice constant a0 = {self.a0:.6f} A, residual pressure "
                f"{self.pressure_gpa:.2e} GPa"
            )
        lines.append(f"  max residual force at equilibrium: {self.max_equilibrium_force:.2e} eV/A")
        lines.append(
            f"  regression energy (12 atoms, a={REGRESSION_A}): {self.regression_energy:.6f} eV "
            f"(independent Ewald {REGRESSION_ENERGY}, |diff| {self.regression_error:.1e}; the "
            f"note's LAMMPS value {REGRESSION_ENERGY_NOTE_LAMMPS} is off by 2.5e-4)"
        )
        for c in self.comparisons:
            lines.append(
                f"  LAMMPS vs numpy, {c.cell} ({c.natoms} atoms): |dE| {c.energy_per_atom:.1e} "
                f"eV/atom, max |dF| {c.force:.1e} eV/A, max |dS| {c.stress:.1e} eV/A^3 "
                f"[{'ok' if c.passed else 'FAIL'}]"
            )
        lines.append(f"reference check: {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def run_reference_check(
    *, relax: bool = True, seed: int = 0, rattle: float = 0.05, progress: bool = False
) -> ReferenceReport:
    """Run the self-check.

    Parameters
    ----------
    relax
        Relax the lattice constant first (otherwise use the experimental 5.597 A).
    seed
        Seed of the random displacements.
    rattle
        Standard deviation of the random displacements, Angstrom.
    progress
        Print a line per stage.
    """
    say = print if progress else (lambda *a, **k: None)
    potential = crg_potential()
    lammps_calc = LammpsCalculator(potential)
    numpy_calc = CRGNumpyCalculator()

    a0 = pressure = None
    a = THO2_A0_GUESS
    if relax:
        say("relaxing the lattice constant on the LAMMPS surface ...")
        relaxed = relax_cubic_lattice(tho2_primitive, lammps_calc)
        a0, pressure, a = relaxed.a0, relaxed.pressure, relaxed.a0
    conventional = build_supercell(tho2_primitive(a), CONVENTIONAL)
    max_force = check_equilibrium(conventional, lammps_calc, force_tol=1e-8)

    rng = np.random.default_rng(seed)
    comparisons = []
    for name in ("SC", "2I"):
        say(f"comparing LAMMPS and numpy on the {name} cell ...")
        atoms = build_supercell(tho2_primitive(a), name)
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
        res = {}
        for key, calc in (("lammps", lammps_calc), ("numpy", numpy_calc)):
            probe = atoms.copy()
            probe.calc = calc
            res[key] = (probe.get_potential_energy(), probe.get_forces(), probe.get_stress())
        comparisons.append(
            Comparison(
                cell=name,
                natoms=len(atoms),
                energy_per_atom=abs(res["lammps"][0] - res["numpy"][0]) / len(atoms),
                force=float(np.abs(res["lammps"][1] - res["numpy"][1]).max()),
                stress=float(np.abs(res["lammps"][2] - res["numpy"][2]).max()),
            )
        )
    lammps_calc.release()

    say("regression energy ...")
    reg = build_supercell(tho2_primitive(REGRESSION_A), CONVENTIONAL)
    reg_calc = LammpsCalculator(crg_regression_potential())
    reg.calc = reg_calc
    regression = float(reg.get_potential_energy())
    reg_calc.release()
    return ReferenceReport(
        a0=a0,
        pressure_gpa=pressure,
        max_equilibrium_force=max_force,
        regression_energy=regression,
        comparisons=comparisons,
    )
