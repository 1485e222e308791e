"""The runaway guard: stop a trajectory that leaves the region where its Hamiltonian holds.

A truncated Taylor expansion can be unbounded below (e.g. a negative quartic direction).
Every ``guard_every`` steps (default: every step; a quartic runaway diverges in finite
time, within a few steps once past its barrier) :func:`check_runaway` looks at the largest
displacement from the reference (IDMD, nearest image), the total-energy drift per atom
(NVE), the temperature and finiteness, and stops with :class:`RunawayError` naming the
step and the values. A LAMMPS failure during a step (lost atoms) is reported the same
way (:func:`lammps_failure`). The per-step check costs a gather of the positions (~0.1%
of a 4I step).
"""

from __future__ import annotations

import numpy as np

from anharmbench.datasets.md.checkpoint import TrajectoryState
from anharmbench.datasets.md.engine import ase_positions, thermo
from anharmbench.datasets.md.settings import TrajectorySpec
from anharmbench.lammps import LammpsSystem
from anharmbench.potentials.taylor_cartesian import TaylorTerms

__all__ = ["RunawayError", "check_runaway", "lammps_failure"]


class RunawayError(RuntimeError):
    """The MD left the region where the Hamiltonian is meaningful (or blew up).

    Attributes
    ----------
    step
        MD step at which the guard fired.
    max_displacement
        Largest displacement from the reference, Angstrom (NaN when not checked).
    energy_drift
        ``|E_tot - E_tot(0)|`` per atom, eV (NaN when not checked).
    temperature
        Instantaneous temperature, K.
    """

    def __init__(
        self,
        message: str,
        *,
        step: int,
        max_displacement: float,
        energy_drift: float,
        temperature: float,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.max_displacement = max_displacement
        self.energy_drift = energy_drift
        self.temperature = temperature


def _cause(ref: TaylorTerms | None) -> str:
    if ref is None:
        return "the dynamics became unstable"
    return (
        "the Taylor expansion ran away (a truncated expansion can be unbounded: check the "
        "sign of the highest-order terms, or lower the temperature)"
    )


def lammps_failure(
    spec: TrajectorySpec, ref: TaylorTerms | None, step: int, nxt: int, exc: Exception
) -> RunawayError:
    """The error for a LAMMPS failure while running from ``step`` to ``nxt``."""
    return RunawayError(
        f"trajectory {spec.name!r} stopped between steps {step} and {nxt}: "
        f"{_cause(ref)}: LAMMPS failed ({exc})",
        step=nxt,
        max_displacement=float("nan"),
        energy_drift=float("nan"),
        temperature=float("nan"),
    )


def check_runaway(
    spec: TrajectorySpec,
    state: TrajectoryState,
    md: LammpsSystem,
    ref: TaylorTerms | None,
    natoms: int,
) -> None:
    """Check the current step; update ``state.max_disp``.

    Raises
    ------
    RunawayError
        When a value is non-finite or beyond its limit in ``spec``.
    """
    step, temp, pe, _, etot = thermo(md.lmp)
    drift = abs(etot - state.etot0) / natoms if spec.ensemble == "nve" else float("nan")
    disp = float("nan")
    worst = -1
    if ref is not None:
        x = ase_positions(md, natoms)
        norms = np.linalg.norm(ref.displacements(x), axis=1)
        worst = int(np.argmax(norms))
        disp = float(norms[worst])
        state.max_disp = float(np.fmax(state.max_disp, disp))
    problems = []
    if not (np.isfinite(pe) and np.isfinite(etot) and np.isfinite(temp)):
        problems.append("non-finite energy or temperature")
    if spec.max_displacement is not None and np.isfinite(disp) and disp > spec.max_displacement:
        problems.append(
            f"atom {worst} is {disp:.3f} A from its reference site (limit "
            f"{spec.max_displacement} A)"
        )
    if spec.max_energy_drift is not None and np.isfinite(drift) and drift > spec.max_energy_drift:
        problems.append(
            f"the total energy drifted by {drift:.4f} eV/atom (limit {spec.max_energy_drift})"
        )
    if temp > spec.max_temperature_factor * spec.temperature:
        problems.append(
            f"the temperature reached {temp:.0f} K (limit {spec.max_temperature_factor:g} x "
            f"{spec.temperature:g} K)"
        )
    if problems:
        raise RunawayError(
            f"trajectory {spec.name!r} stopped at step {int(step)}: {_cause(ref)}: "
            + "; ".join(problems)
            + f" [temperature {temp:.0f} K, potential energy {pe:.6g} eV"
            + (f", largest displacement {disp:.3f} A]" if np.isfinite(disp) else "]"),
            step=int(step),
            max_displacement=disp,
            energy_drift=drift,
            temperature=temp,
        )
