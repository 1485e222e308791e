"""A Taylor-series potential built from irreducible derivatives.

``E(u) = E_0 + sum_n (1/n!) sum_k d_k B_k(c, ..., c)`` with ``c = modes.T @ u``
(``u`` the ``(N, 3)`` displacement from the reference, Angstrom; ``d_k`` in
eV/Angstrom^n), and ``F = -dE/du = -modes @ sum_n (1/n!) sum_k d_k grad B_k(c, ..., c)``.

It is an exact test surface for the finite-difference machinery (its derivatives are
known) and a cheap stand-in for a real potential. :class:`TaylorPotential` is a batch
evaluator (call it with displacements); :class:`TaylorCalculator` wraps it as an ASE
calculator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import factorial

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from anharmbench.derivatives.basis_protocol import DerivativeBasis


class TaylorPotential:
    """Energy and forces of a truncated Taylor series in symmetry-adapted coordinates.

    Parameters
    ----------
    bases
        Derivative bases keyed by order, all with the same ``(3N, M)`` modes.
    coefficients
        ``(K_n,)`` irreducible derivatives (eV/Angstrom^n) keyed by order; orders without
        coefficients are absent from the series.
    reference_positions
        ``(N, 3)`` reference (expansion point) positions, Angstrom.
    energy0
        Energy at the reference (eV).
    chunk
        Configurations evaluated per vectorised chunk (memory bound).
    """

    def __init__(
        self,
        bases: Mapping[int, DerivativeBasis],
        coefficients: Mapping[int, np.ndarray],
        reference_positions: np.ndarray,
        energy0: float = 0.0,
        chunk: int = 2048,
    ) -> None:
        self.reference_positions = np.array(reference_positions, dtype=np.float64)
        natoms = self.reference_positions.shape[0]
        if self.reference_positions.shape != (natoms, 3):
            raise ValueError("reference_positions must have shape (N, 3)")
        self.terms: list[tuple[int, DerivativeBasis, np.ndarray]] = []
        modes: np.ndarray | None = None
        for n in sorted(coefficients):
            if n not in bases:
                raise ValueError(f"coefficients of order {n} but no basis of that order")
            basis = bases[n]
            d = np.asarray(coefficients[n], dtype=np.float64)
            if d.shape != (len(basis),):
                raise ValueError(f"order {n}: {d.shape} coefficients for {len(basis)} tensors")
            m = np.asarray(basis.modes, dtype=np.float64)
            if modes is None:
                modes = m
            elif m.shape != modes.shape or not np.allclose(m, modes, atol=1e-10):
                raise ValueError(f"basis of order {n} has different modes")
            if d.size:
                self.terms.append((n, basis, d / factorial(n)))
        if modes is None:
            raise ValueError("no coefficients given")
        if modes.shape[0] != 3 * natoms:
            raise ValueError(f"modes have {modes.shape[0]} rows for {natoms} atoms")
        self.modes = np.ascontiguousarray(modes)
        self.energy0 = float(energy0)
        self.chunk = int(chunk)

    @property
    def natoms(self) -> int:
        """Number of atoms ``N``."""
        return int(self.reference_positions.shape[0])

    def energies_forces(self, displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate a batch of displacements.

        Parameters
        ----------
        displacements
            ``(n, N, 3)`` float64 displacements from the reference (Angstrom).

        Returns
        -------
        energies : np.ndarray
            ``(n,)`` float64, eV.
        forces : np.ndarray
            ``(n, N, 3)`` float64, eV/Angstrom.
        """
        u = np.asarray(displacements, dtype=np.float64)
        if u.ndim != 3 or u.shape[1:] != (self.natoms, 3):
            raise ValueError(f"displacements have shape {u.shape}, expected (n, {self.natoms}, 3)")
        n_conf = u.shape[0]
        energies = np.full(n_conf, self.energy0)
        grad = np.zeros((n_conf, self.modes.shape[1]))
        # einsum (not BLAS) on C-contiguous operands keeps every configuration's result
        # independent of the batch it is evaluated in
        c_all = np.einsum("ci,im->cm", np.ascontiguousarray(u.reshape(n_conf, -1)), self.modes)
        for a in range(0, n_conf, self.chunk):
            c = c_all[a : a + self.chunk]
            for _, basis, d in self.terms:
                et = np.ascontiguousarray(basis.energy_terms(c), dtype=np.float64)
                ft = np.ascontiguousarray(basis.force_terms(c), dtype=np.float64)
                energies[a : a + self.chunk] += np.einsum("ck,k->c", et, d)
                grad[a : a + self.chunk] += np.einsum("ckm,k->cm", ft, d)
        forces = -np.einsum("cm,im->ci", grad, self.modes).reshape(n_conf, self.natoms, 3)
        return energies, forces

    __call__ = energies_forces

    def evaluate_positions(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`energies_forces` for ``(n, N, 3)`` absolute positions (Angstrom)."""
        return self.energies_forces(np.asarray(positions) - self.reference_positions[None])

    def calculator(self) -> TaylorCalculator:
        """An ASE calculator evaluating this potential."""
        return TaylorCalculator(self)


class TaylorCalculator(Calculator):
    """ASE calculator of a :class:`TaylorPotential` (fills ``energy``, ``free_energy``,
    ``forces``).

    The displacement is ``atoms.positions - reference_positions``, reduced to the minimum
    image of the cell along periodic directions (so wrapped positions are fine).

    Parameters
    ----------
    potential
        The Taylor potential.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, potential: TaylorPotential, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.potential = potential

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        super().calculate(atoms, list(properties), list(system_changes))
        assert self.atoms is not None
        u = self.atoms.get_positions() - self.potential.reference_positions
        pbc = np.asarray(self.atoms.pbc, dtype=bool)
        if pbc.any() and abs(self.atoms.cell.volume) > 0:
            frac = np.linalg.solve(self.atoms.cell.array.T, u.T).T
            frac[:, pbc] -= np.round(frac[:, pbc])
            u = frac @ self.atoms.cell.array
        e, f = self.potential.energies_forces(u[None])
        self.results["energy"] = float(e[0])
        self.results["free_energy"] = float(e[0])
        self.results["forces"] = f[0]
