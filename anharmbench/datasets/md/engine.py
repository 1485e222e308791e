"""The LAMMPS side of a trajectory: the MD instance's setup, per-atom arrays, thermo, labels.

The MD instance is a :class:`~anharmbench.lammps.LammpsSystem` with ``fix nve`` and a
thermo style of ``step temp pe ke etotal`` (plus the virial pressure when the frames
are labelled by this instance itself). Positions and velocities travel as raw LAMMPS
arrays (the checkpoint's form); positions for the guard, the statistics and the frames
are mapped to the ASE frame of the cell.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.datasets.io import make_frame
from anharmbench.datasets.md.settings import TrajectorySpec
from anharmbench.lammps import LammpsSystem

__all__ = ["ase_positions", "configure", "gather", "label_frame", "scatter", "thermo"]

#: Thermo keywords of a record (the rows of ``TrajectoryState.thermo``).
THERMO_KEYS = ("step", "temp", "pe", "ke", "etotal")


def configure(md: LammpsSystem, spec: TrajectorySpec, *, virial: bool) -> None:
    """Thermo output, time step and ``fix nve`` of the MD instance.

    ``virial``: also compute the virial-only pressure (``c_pvir``), for frames labelled
    by this instance.
    """
    style = "thermo_style custom " + " ".join(THERMO_KEYS)
    if virial:
        md.command("compute pvir all pressure NULL virial")
        style += " " + " ".join(f"c_pvir[{i}]" for i in range(1, 7))
    md.command(style)
    md.command("thermo_modify norm no flush no")
    md.command("thermo 0")
    md.command(f"timestep {spec.timestep!r}")
    md.command("fix integrate all nve")


def gather(lmp: Any, name: str, natoms: int) -> np.ndarray:
    """A copy of the ``(natoms, 3)`` per-atom array ``name`` (``"x"``, ``"v"``, ``"f"``),
    LAMMPS frame."""
    return np.ctypeslib.as_array(lmp.gather_atoms(name, 1, 3)).reshape(natoms, 3).copy()


def scatter(lmp: Any, name: str, values: np.ndarray) -> None:
    """Set the per-atom array ``name`` from ``(natoms, 3)`` values, LAMMPS frame."""
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    buf = (ctypes.c_double * flat.size)(*flat)
    lmp.scatter_atoms(name, 1, 3, buf)


def ase_positions(md: LammpsSystem, natoms: int) -> np.ndarray:
    """``(natoms, 3)`` current positions in the ASE frame of the cell, Angstrom."""
    return md.prism.vector_to_ase(gather(md.lmp, "x", natoms))


def thermo(lmp: Any) -> list[float]:
    """The current ``[step, temp, pe, ke, etotal]`` (K, eV)."""
    return [float(lmp.get_thermo(k)) for k in THERMO_KEYS]


def label_frame(
    spec: TrajectorySpec,
    md: LammpsSystem,
    lab: LammpsSystem | None,
    atoms: Atoms,
    step: int,
    lammps: Any,
) -> Atoms:
    """The labelled frame of the current configuration.

    Energy, forces and stress come from the static instance ``lab`` or, when it is
    ``None``, from the MD instance itself (its virial pressure ``c_pvir``); the
    temperature is the MD's. ``lammps`` is the LAMMPS Python module (its constants).
    """
    natoms = len(atoms)
    positions = ase_positions(md, natoms)
    temperature = float(md.lmp.get_thermo("temp"))
    if lab is None:
        energy = float(md.lmp.get_thermo("pe"))
        forces = gather(md.lmp, "f", natoms) @ md._rot.T
        vec = md.lmp.extract_compute("pvir", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
        p = [float(vec[i]) for i in range(6)]  # xx yy zz xy xz yz
        p_lmp = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
        stress = -md.prism.tensor2_to_ase(p_lmp) / md._nktv2p
    else:
        ev = lab.evaluate(positions)
        energy, forces, stress = ev.energy, ev.forces, ev.stress
    info = {
        "temperature": temperature,
        "source": spec.source,
        "config_type": spec.config_type,
        "trajectory": spec.name,
        "step": int(step),
        "time_ps": float(step * spec.timestep),
        "seed": int(spec.seed),
    }
    return make_frame(
        atoms.get_chemical_symbols(), atoms.cell.array, positions, energy, forces, stress, info
    )
