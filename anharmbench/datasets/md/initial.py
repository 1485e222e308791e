"""The initial state of a trajectory: harmonic displacements and Maxwell-Boltzmann velocities.

``init="harmonic"`` starts the run in equilibrium at the target temperature: positions
drawn from the classical canonical distribution of the Hamiltonian's order-2 part
(:func:`harmonic_displacements`) and velocities ``velocity all create T SEED dist
gaussian mom yes rot no`` (zero total momentum). ``init="lattice"`` draws the velocities
only, from the undisplaced reference.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units

from anharmbench.datasets.md.checkpoint import TrajectoryState
from anharmbench.datasets.md.engine import gather, thermo
from anharmbench.datasets.md.settings import TrajectorySpec, lammps_seed
from anharmbench.lammps import LammpsSystem
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.potentials.taylor_cartesian import TaylorTerms

__all__ = ["harmonic_displacements", "start"]


def harmonic_displacements(
    terms: TaylorTerms, masses: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Displacements drawn from the classical harmonic distribution of the order-2 terms.

    Parameters
    ----------
    terms
        Taylor model with an order-2 part (``E2 = 1/2 u Phi u``).
    masses
        ``(N,)`` amu.
    temperature
        K.
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` Angstrom: ``sum_k e_k sqrt(kB T) / omega_k xi_k / sqrt(m)`` over the
        non-zero modes (the three rigid translations get no amplitude).

    Raises
    ------
    ValueError
        Without order-2 terms, or when the harmonic part has a negative eigenvalue
        (an unstable Hamiltonian cannot be sampled).
    """
    if 2 not in terms.orders or len(terms.orders[2].coefficients) == 0:
        raise ValueError("harmonic initial displacements need the order-2 terms")
    n3 = 3 * terms.natoms
    if n3 > 6000:
        raise ValueError(f"{terms.natoms} atoms is too many for a dense harmonic sampling")
    full = terms.expanded((2,))  # every translate: the dense matrix needs them all
    flat = full.flat_indices(2)
    coef = full.orders[2].coefficients
    phi = np.zeros((n3, n3))
    diag = flat[:, 0] == flat[:, 1]
    np.add.at(phi, (flat[:, 0], flat[:, 1]), np.where(diag, 2.0 * coef, coef))
    np.add.at(phi, (flat[~diag, 1], flat[~diag, 0]), coef[~diag])
    minv = 1.0 / np.sqrt(np.repeat(np.asarray(masses, dtype=float), 3))
    lam, vec = np.linalg.eigh(phi * np.outer(minv, minv))  # eV / (A^2 amu)
    scale = max(float(np.abs(lam).max()), 1e-300)
    if lam.min() < -1e-8 * scale:
        raise ValueError(
            f"the harmonic part has a negative eigenvalue ({lam.min():.3e} eV/A^2/amu): "
            "the Hamiltonian is unstable and cannot be sampled harmonically"
        )
    keep = lam > 1e-8 * scale
    amp = np.sqrt(units.kB * temperature / lam[keep]) * rng.normal(size=int(keep.sum()))
    u = minv * (vec[:, keep] @ amp)
    return u.reshape(terms.natoms, 3)


def start(
    md: LammpsSystem,
    md_potential: LammpsPotential,
    spec: TrajectorySpec,
    state: TrajectoryState,
    atoms: Atoms,
    reference: TaylorTerms | None,
) -> None:
    """Draw the initial state in the MD instance and record it in ``state`` (step 0:
    ``etot0``, the first thermo record, raw positions and velocities).

    Raises
    ------
    ValueError
        ``init="harmonic"`` without the Taylor ``reference``.
    """
    natoms = len(atoms)
    masses = np.array([md_potential.mass(s) for s in atoms.get_chemical_symbols()])
    if spec.init == "harmonic":
        if reference is None:
            raise ValueError("init='harmonic' needs the Taylor reference model")
        rng = np.random.default_rng(lammps_seed(spec.seed, 3))
        u0 = harmonic_displacements(reference, masses, spec.temperature, rng)
        md.scatter_positions(atoms.positions + u0)
    md.command(
        f"velocity all create {spec.temperature!r} {lammps_seed(spec.seed, 1)} "
        "dist gaussian mom yes rot no"
    )
    md.command("run 0 post no")
    state.etot0 = float(md.lmp.get_thermo("etotal"))
    state.thermo.append(thermo(md.lmp))
    state.x = gather(md.lmp, "x", natoms)
    state.v = gather(md.lmp, "v", natoms)
