"""Independent numpy implementation of the CRG ThO2 surface (no tables, no LAMMPS).

:class:`CRGNumpyCalculator` evaluates exactly the surface that
:func:`anharmbench.potentials.crg.crg_potential` describes to LAMMPS, from the analytic
functions of :mod:`anharmbench.potentials.crg` (the same taper and cutoff), with an Ewald sum
written here. It is a cross-check of the LAMMPS path (tabulation, charges, kspace settings)
and a slow but exact reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from ase.stress import full_3x3_to_voigt_6_stress
from numpy.typing import NDArray
from scipy.special import erfc

from anharmbench.potentials.calculator import EnergyForcesStressCalculator
from anharmbench.potentials.crg import (
    COULOMB_CONSTANT,
    ELEMENTS,
    CRGParameters,
    default_g_ewald,
    density_function,
    embedding_energy,
    pair_energy,
    tapered,
)
from anharmbench.potentials.setfl import SetflGrid

__all__ = ["CRGNumpyCalculator", "ewald_sum"]

FloatArray = NDArray[np.float64]

#: Relative size of the largest neglected reciprocal-space term, exp(-k_max^2 / (4 alpha^2)).
_DEFAULT_EWALD_TOLERANCE = 1e-17


def _reciprocal_vectors(cell: FloatArray, kmax: float) -> FloatArray:
    """Reciprocal lattice vectors ``0 < |k| <= kmax`` of one half-space, shape ``(K, 3)``, 1/A.

    ``k`` and ``-k`` contribute equally to the Ewald sums, so only one of each pair is kept
    (first nonzero Miller index positive) and the sums are doubled.
    """
    recip = 2.0 * math.pi * np.linalg.inv(cell).T  # rows b_i, a_i . b_j = 2 pi delta_ij
    # |n_i| = |k . a_i| / 2 pi <= kmax |a_i| / 2 pi
    nmax = np.floor(kmax * np.linalg.norm(cell, axis=1) / (2.0 * math.pi)).astype(int)
    ranges = [np.arange(-m, m + 1) for m in nmax]
    n = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    half = (
        (n[:, 0] > 0)
        | ((n[:, 0] == 0) & (n[:, 1] > 0))
        | ((n[:, 0] == 0) & (n[:, 1] == 0) & (n[:, 2] > 0))
    )
    k = n[half] @ recip
    k2 = np.einsum("ij,ij->i", k, k)
    return k[k2 <= kmax * kmax]


def ewald_sum(
    positions: FloatArray,
    cell: FloatArray,
    charges: FloatArray,
    alpha: float,
    r_cut: float,
    *,
    tolerance: float = _DEFAULT_EWALD_TOLERANCE,
    coulomb_constant: float = COULOMB_CONSTANT,
    pairs: tuple[NDArray[np.intp], NDArray[np.intp], FloatArray] | None = None,
) -> tuple[float, FloatArray, FloatArray]:
    """Ewald sum of point charges in a fully periodic cell.

    ``E = E_real + E_recip + E_self + E_background`` with

    * ``E_real = k_e/2 sum_{i,j,n}' q_i q_j erfc(alpha r)/r`` over ``r < r_cut``,
    * ``E_recip = (2 pi k_e / V) sum_{k != 0} exp(-k^2/4alpha^2)/k^2 |S(k)|^2``,
      ``S(k) = sum_j q_j exp(i k.r_j)``, for ``|k| <= 2 alpha sqrt(-ln tolerance)``,
    * ``E_self = -k_e alpha/sqrt(pi) sum_i q_i^2``,
    * ``E_background = -pi k_e Q^2 / (2 V alpha^2)`` (zero for a neutral cell, ``Q = sum q``).

    Parameters
    ----------
    positions
        Cartesian positions, shape ``(N, 3)``, Angstrom.
    cell
        Cell vectors as rows, shape ``(3, 3)``, Angstrom.
    charges
        Charges, shape ``(N,)``, e.
    alpha
        Splitting parameter, 1/Angstrom. ``erfc(alpha r_cut)`` must be negligible.
    r_cut
        Real-space cutoff, Angstrom.
    tolerance
        Size of the largest neglected reciprocal term relative to the first ones.
    coulomb_constant
        ``e^2 / 4 pi eps0`` in eV Angstrom.
    pairs
        Optional precomputed directed pair list ``(i, j, D)`` with ``D = r_j - r_i + shift``,
        shapes ``(P,)``, ``(P,)``, ``(P, 3)``, complete up to ``r_cut`` (may hold longer pairs,
        which are dropped); as returned by ``ase.neighborlist.neighbor_list("ijD", ...)``.

    Returns
    -------
    energy, forces, stress
        Energy (eV), forces ``(N, 3)`` (eV/Angstrom) and the stress ``(1/V) dE/dstrain`` as a
        ``(3, 3)`` matrix (eV/Angstrom^3).
    """
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    q = np.asarray(charges, dtype=float)
    ke = coulomb_constant
    volume = abs(float(np.linalg.det(cell)))
    if pairs is None:
        atoms = Atoms(positions=positions, cell=cell, pbc=True, numbers=np.ones(len(q), int))
        i, j, dvec = neighbor_list("ijD", atoms, r_cut)
    else:
        i, j, dvec = pairs
        keep = np.einsum("ij,ij->i", dvec, dvec) < r_cut * r_cut
        i, j, dvec = i[keep], j[keep], dvec[keep]
    energy, forces, virial = _real_space_coulomb(i, j, dvec, q, alpha, ke, len(q))
    e_rec, f_rec, v_rec = _reciprocal(positions, cell, q, alpha, tolerance, ke, volume)
    qtot = float(q.sum())
    e_bg = -math.pi * ke * qtot**2 / (2.0 * volume * alpha**2)
    energy += e_rec - ke * alpha / math.sqrt(math.pi) * float(q @ q) + e_bg
    virial = virial + v_rec - e_bg * np.eye(3)
    return energy, forces + f_rec, virial / volume


def _real_space_coulomb(
    i: NDArray[np.intp],
    j: NDArray[np.intp],
    dvec: FloatArray,
    q: FloatArray,
    alpha: float,
    ke: float,
    natoms: int,
) -> tuple[float, FloatArray, FloatArray]:
    """Real-space Ewald term over directed pairs: energy, forces ``(N, 3)``, virial ``(3, 3)``."""
    r = np.linalg.norm(dvec, axis=1)
    qq = 0.5 * ke * q[i] * q[j]  # each unordered pair appears twice
    e_pair = qq * erfc(alpha * r) / r
    de = -e_pair / r - qq * 2.0 * alpha / math.sqrt(math.pi) * np.exp(-((alpha * r) ** 2)) / r
    return float(e_pair.sum()), *_pair_forces_virial(i, j, dvec, r, de, natoms)


def _pair_forces_virial(
    i: NDArray[np.intp],
    j: NDArray[np.intp],
    dvec: FloatArray,
    r: FloatArray,
    de_dr: FloatArray,
    natoms: int,
) -> tuple[FloatArray, FloatArray]:
    """Forces and virial ``sum dE/dr D D^T / r`` of energy terms depending on ``|D_p|``.

    ``D_p = r_j - r_i (+ lattice shift)``, shape ``(P, 3)``; ``de_dr`` shape ``(P,)``.
    """
    g = (de_dr / r)[:, None] * dvec  # dE/dD_p
    forces = np.zeros((natoms, 3))
    for c in range(3):
        forces[:, c] = np.bincount(i, weights=g[:, c], minlength=natoms) - np.bincount(
            j, weights=g[:, c], minlength=natoms
        )
    virial = dvec.T @ g
    return forces, virial


def _reciprocal(
    positions: FloatArray,
    cell: FloatArray,
    q: FloatArray,
    alpha: float,
    tolerance: float,
    ke: float,
    volume: float,
) -> tuple[float, FloatArray, FloatArray]:
    """Reciprocal-space Ewald term: energy, forces ``(N, 3)``, virial ``V * stress`` (3, 3)."""
    kmax = 2.0 * alpha * math.sqrt(-math.log(tolerance))
    k = _reciprocal_vectors(cell, kmax)  # (K, 3), half-space
    k2 = np.einsum("ij,ij->i", k, k)
    # factor 2 for the omitted -k half: (2 pi/V) * 2 = 4 pi / V
    a_k = 4.0 * math.pi * ke / volume * np.exp(-k2 / (4.0 * alpha**2)) / k2  # (K,)
    e_k = np.empty_like(k2)
    forces = np.zeros_like(positions)
    # blocks of k-vectors keep the (N, K) work arrays below ~16 MB each
    step = max(1, 2_000_000 // max(1, len(q)))
    for lo in range(0, len(k), step):
        sl = slice(lo, lo + step)
        theta = positions @ k[sl].T  # (N, Kb)
        cos, sin = np.cos(theta), np.sin(theta)
        s_re, s_im = q @ cos, q @ sin  # (Kb,) structure factor
        e_k[sl] = a_k[sl] * (s_re**2 + s_im**2)
        # F_i = sum_k 2 a_k q_i k Im(S* e^{i k r_i}),  Im(...) = s_re sin - s_im cos
        im = sin * s_re - cos * s_im  # (N, Kb)
        forces += 2.0 * q[:, None] * ((im * a_k[sl]) @ k[sl])
    energy = float(e_k.sum())
    # dE_k/deps_ab = E_k (-delta_ab + 2 k_a k_b (1/k^2 + 1/4alpha^2))
    w = 2.0 * e_k * (1.0 / k2 + 1.0 / (4.0 * alpha**2))
    virial = (k * w[:, None]).T @ k - energy * np.eye(3)
    return energy, forces, virial


class CRGNumpyCalculator(EnergyForcesStressCalculator):
    """The CRG ThO2 surface from analytic formulas and a direct Ewald sum (ASE calculator).

    Same surface as :func:`anharmbench.potentials.crg.crg_potential` with the same
    ``grid`` (its ``cutoff`` and ``taper_start``; the tabulation spacing is irrelevant here):
    short-range pair and EAM terms from the shared analytic functions times the shared taper,
    plus the Coulomb energy of the fixed charges by Ewald summation with real-space cutoff
    ``grid.cutoff``.

    Implemented properties: ``energy``/``free_energy`` (eV), ``forces`` (eV/Angstrom, shape
    ``(N, 3)``) and ``stress`` (ASE convention ``(1/V) dE/dstrain`` in eV/Angstrom^3, Voigt
    order xx yy zz yz xz xy). Only fully periodic cells of Th and O.

    Parameters
    ----------
    params
        CRG parameters (default: published values).
    grid
        Cutoff and taper settings (default :class:`~anharmbench.potentials.setfl.SetflGrid`).
    alpha
        Ewald splitting parameter, 1/Angstrom; default
        :func:`~anharmbench.potentials.crg.default_g_ewald` (2 / Angstrom, also what
        :func:`crg_potential` gives LAMMPS). ``erfc(alpha * cutoff)`` must be negligible
        (the real-space sum is truncated at ``grid.cutoff``).
    ewald_tolerance
        ``exp(-k_max^2/4alpha^2)``: the relative size of the first neglected reciprocal term.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.
    """

    def __init__(
        self,
        params: CRGParameters | None = None,
        grid: SetflGrid | None = None,
        *,
        alpha: float | None = None,
        ewald_tolerance: float = _DEFAULT_EWALD_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crg = CRGParameters() if params is None else params
        self.grid = SetflGrid() if grid is None else grid
        self.alpha = default_g_ewald(self.grid.cutoff) if alpha is None else float(alpha)
        self.ewald_tolerance = float(ewald_tolerance)
        if not 0.0 < self.ewald_tolerance < 1.0:
            raise ValueError(f"ewald_tolerance must be in (0, 1), got {ewald_tolerance}")

    def evaluate_atoms(self, atoms: Atoms) -> tuple[float, FloatArray, FloatArray]:
        """:meth:`evaluate` with the stress in Voigt order (what ``calculate`` stores)."""
        energy, forces, stress = self.evaluate(atoms)
        return energy, forces, full_3x3_to_voigt_6_stress(stress)

    def evaluate(self, atoms: Atoms) -> tuple[float, FloatArray, FloatArray]:
        """Energy (eV), forces ``(N, 3)`` (eV/A) and stress ``(3, 3)`` (eV/A^3) of ``atoms``."""
        if not atoms.pbc.all():
            raise ValueError("CRGNumpyCalculator needs a fully periodic cell (pbc all True)")
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(ELEMENTS))
        if unknown:
            raise ValueError(f"the CRG potential describes only Th and O, not {unknown}")
        p = self.crg
        g = self.grid
        cell = np.asarray(atoms.cell[:], dtype=float)
        volume = abs(float(np.linalg.det(cell)))
        natoms = len(atoms)
        types = np.array([ELEMENTS.index(s) for s in symbols], dtype=np.intp)
        q = np.array([p.charge(el) for el in ELEMENTS])[types]

        i, j, dvec = neighbor_list("ijD", atoms, g.cutoff)  # directed pairs, D = r_j - r_i

        # ------------------------------------------------- Coulomb (Ewald)
        energy, forces, stress = ewald_sum(
            atoms.positions,
            cell,
            q,
            self.alpha,
            g.cutoff,
            tolerance=self.ewald_tolerance,
            pairs=(i, j, dvec),
        )
        virial = stress * volume

        # ------------------------------------------------- short range
        r = np.linalg.norm(dvec, axis=1)
        ti, tj = types[i], types[j]
        table = {
            name: np.array([[getattr(p.pair(a, b), name) for b in ELEMENTS] for a in ELEMENTS])[
                ti, tj
            ]
            for name in ("A", "rho", "C", "D", "gamma", "r0")
        }
        phi, dphi = tapered(pair_energy(r, **table), r, g.taper_start, g.cutoff)
        n_j = np.array([p.density_n(el) for el in ELEMENTS])[tj]
        sig, dsig = tapered(density_function(r, n_j), r, g.taper_start, g.cutoff)
        rho = np.bincount(i, weights=sig, minlength=natoms)
        g_i = np.array([p.embedding_g(el) for el in ELEMENTS])[types]
        emb, demb = embedding_energy(rho, g_i)
        energy += 0.5 * float(phi.sum()) + float(emb.sum())
        de_dr = 0.5 * dphi + demb[i] * dsig
        f_sr, v_sr = _pair_forces_virial(i, j, dvec, r, de_dr, natoms)
        forces = forces + f_sr
        virial = virial + v_sr
        return energy, forces, virial / volume
