"""Velocity-Verlet runs shared by the pair-style tests (energy conservation checks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anharmbench.lammps import LammpsSystem


def nve_thermo(system: LammpsSystem, *, temperature: float, dt: float, chunks: int,
               chunk_steps: int, quantities: Sequence[str] = ("etotal", "ke"),
               setup: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Start velocities at ``temperature`` (K, seeded), run ``fix nve`` with time step
    ``dt`` (ps) for ``chunks`` x ``chunk_steps`` steps, and sample thermo ``quantities``
    (eV) after each chunk.

    Returns
    -------
    dict
        ``{quantity: (chunks,) float64}``.
    """
    for line in (
        *setup,
        f"velocity all create {temperature} 4928459 dist gaussian mom yes rot no",
        f"timestep {dt}",
        "fix integrate all nve",
        "thermo_style custom step pe ke etotal",
    ):
        system.command(line)
    out: dict[str, list[float]] = {q: [] for q in quantities}
    for _ in range(chunks):
        system.command(f"run {chunk_steps} pre no post no")
        for q in quantities:
            out[q].append(float(system.lmp.get_thermo(q)))
    return {q: np.array(v) for q, v in out.items()}
