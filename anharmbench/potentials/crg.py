"""The Cooper-Rushton-Grimes (CRG, 2014) ThO2 potential: analytic form and LAMMPS potential.

The CRG model (M.W.D. Cooper, M.J.D. Rushton, R.W. Grimes, J. Phys.: Condens. Matter 26
(2014) 105401) is the project's reference Born-Oppenheimer surface for ThO2. The energy is::

    E = 1/2 sum_{i != j} [ k_e q_i q_j / r_ij + phi_ab(r_ij) ]
        - sum_i G_a sqrt( sum_{j != i} sigma_b(r_ij) )

with a Buckingham + Morse pair term phi_ab and an EAM-like many-body term (see
``shared/reference/crg_tho2.md``). Here the short-range functions phi_ab and sigma_b are
multiplied by a C-infinity taper S(r) that goes from 1 at ``taper_start`` to 0 at the
cutoff, so that neighbours crossing the cutoff change neither the energy nor any of its
derivatives (a hard cutoff ruins high-order finite differences).

This module holds the *single* definition of the analytic functions (:func:`pair_energy`,
:func:`density_function`, :func:`embedding_energy`, :func:`smooth_taper`, :func:`tapered`),
used both to tabulate the LAMMPS ``eam/alloy`` setfl file (:func:`write_crg_setfl`, written
by :mod:`anharmbench.potentials.setfl`) and by the independent numpy implementation
:class:`anharmbench.potentials.crg_numpy.CRGNumpyCalculator`.

In LAMMPS the Coulomb term is ``coul/long`` + ``kspace_style ewald`` (not tabulated), the
rest is ``eam/alloy`` (:func:`crg_potential`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erf, expit

from anharmbench.potentials.setfl import SetflElement, SetflGrid, default_cache_dir, write_setfl
from anharmbench.potentials.spec import LammpsPotential, lammps_path_word

__all__ = [
    "COULOMB_CONSTANT",
    "ELEMENTS",
    "REGRESSION_GRID",
    "CRGParameters",
    "PairTerm",
    "crg_potential",
    "crg_regression_potential",
    "default_g_ewald",
    "density_function",
    "embedding_energy",
    "pair_energy",
    "setfl_filename",
    "smooth_taper",
    "tapered",
    "write_crg_setfl",
]

#: Coulomb constant e^2/(4 pi eps0) in eV*Angstrom: LAMMPS's ``qqr2e`` in ``units metal``,
#: the value the CRG note uses. Both implementations must use the same number.
COULOMB_CONSTANT: float = 14.399645

#: LAMMPS type order of the setfl file and of :func:`crg_potential` (type 1 = O, type 2 = Th).
ELEMENTS: tuple[str, str] = ("O", "Th")

_Z = {"O": 8, "Th": 90}

#: Bump of this when the setfl layout or the tabulated functions change (part of the hash).
_SETFL_FORMAT_VERSION = 1

#: Below this distance the tables hold the pair and density functions frozen at their value at
#: ``_R_FLOOR`` (Angstrom): -C/r^6 and n/r^8 diverge at r = 0, and LAMMPS needs finite numbers.
#: Nothing in a solid comes this close (the shortest ThO2 bond is ~2.4 A; the O-O Buckingham
#: term peaks at 0.68 A and falls to -infinity inside), and the cubic interpolation that
#: LAMMPS builds is local (5-point stencil), so r < 0.5 A does not leak into the sampled range.
_R_FLOOR = 0.5

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class PairTerm:
    """Buckingham + Morse parameters of one element pair.

    ``phi(r) = A exp(-r/rho) - C/r^6 + D [exp(-2 gamma (r-r0)) - 2 exp(-gamma (r-r0))]``.

    Parameters
    ----------
    A
        Born-Mayer prefactor, eV.
    rho
        Born-Mayer decay length, Angstrom.
    C
        Dispersion coefficient, eV Angstrom^6.
    D
        Morse well depth, eV (0: no Morse term).
    gamma
        Morse decay constant, 1/Angstrom.
    r0
        Morse equilibrium distance, Angstrom.
    """

    A: float
    rho: float
    C: float = 0.0
    D: float = 0.0
    gamma: float = 0.0
    r0: float = 0.0

    def energy(self, r: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Untapered ``phi(r)`` and ``dphi/dr`` (eV, eV/Angstrom); see :func:`pair_energy`."""
        return pair_energy(r, self.A, self.rho, self.C, self.D, self.gamma, self.r0)


@dataclass(frozen=True)
class CRGParameters:
    """The published CRG parameter table for ThO2 (defaults = Cooper et al. 2014).

    Parameters
    ----------
    q_th, q_o
        Partial charges in units of e.
    th_o, o_o, th_th
        Pair terms (:class:`PairTerm`).
    g_th, g_o
        Embedding prefactors G_a in eV: ``F_a(rho) = -G_a sqrt(rho)``.
    n_th, n_o
        Density prefactors n_b in eV Angstrom^8 (the unit makes ``G sqrt(rho)`` an energy):
        ``sigma_b(r) = n_b / r^8 * (1 + erf(20 (r - 1.5))) / 2``.
    mass_th, mass_o
        Masses in amu.
    """

    q_th: float = 2.2208
    q_o: float = -1.1104
    th_o: PairTerm = field(
        default_factory=lambda: PairTerm(315.544, 0.395903, 0.0, 0.62614, 1.85960, 2.49788)
    )
    o_o: PairTerm = field(default_factory=lambda: PairTerm(830.283, 0.352856, 3.884372))
    th_th: PairTerm = field(default_factory=lambda: PairTerm(18600.0, 0.2884, 0.0))
    g_th: float = 1.185
    g_o: float = 0.690
    n_th: float = 1742.622
    n_o: float = 106.856
    mass_th: float = 232.0377
    mass_o: float = 15.9994

    def charge(self, element: str) -> float:
        """Partial charge of ``element`` ("Th" or "O") in e."""
        return {"Th": self.q_th, "O": self.q_o}[element]

    def mass(self, element: str) -> float:
        """Mass of ``element`` in amu."""
        return {"Th": self.mass_th, "O": self.mass_o}[element]

    def embedding_g(self, element: str) -> float:
        """Embedding prefactor G of ``element`` in eV."""
        return {"Th": self.g_th, "O": self.g_o}[element]

    def density_n(self, element: str) -> float:
        """Density prefactor n of ``element`` (as a neighbour) in eV Angstrom^8."""
        return {"Th": self.n_th, "O": self.n_o}[element]

    def pair(self, a: str, b: str) -> PairTerm:
        """Pair term of elements ``a`` and ``b`` (order does not matter)."""
        key = frozenset((a, b))
        table = {
            frozenset(("Th", "O")): self.th_o,
            frozenset(("O",)): self.o_o,
            frozenset(("Th",)): self.th_th,
        }
        return table[key]


#: Settings of the note's regression value (E = -157.552359 eV for the 12-atom cell at
#: a = 5.468 A in LAMMPS): 10 A cutoff, nr 1000, dr 0.01, no taper.
REGRESSION_GRID = SetflGrid(
    nr=1000, dr=0.01, nrho=50001, drho=1.0e-3, cutoff=10.0, taper_start=None
)


# --------------------------------------------------------------------------- functions
def pair_energy(
    r: ArrayLike,
    A: ArrayLike,
    rho: ArrayLike,
    C: ArrayLike,
    D: ArrayLike,
    gamma: ArrayLike,
    r0: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Untapered Buckingham + Morse pair energy and its radial derivative.

    ``phi(r) = A exp(-r/rho) - C/r^6 + D [exp(-2 gamma (r-r0)) - 2 exp(-gamma (r-r0))]``.
    All arguments broadcast against each other (so per-pair parameter arrays work).

    Parameters
    ----------
    r
        Distances, Angstrom, shape ``(...)``, all > 0.
    A, rho, C, D, gamma, r0
        Parameters (see :class:`PairTerm`), scalars or arrays broadcastable to ``r``.

    Returns
    -------
    phi, dphi
        ``phi(r)`` in eV and ``dphi/dr`` in eV/Angstrom, broadcast shape.
    """
    r = np.asarray(r, dtype=float)
    A, rho, C, D, gamma, r0 = (np.asarray(x, dtype=float) for x in (A, rho, C, D, gamma, r0))
    born = A * np.exp(-r / rho)
    disp = C / r**6
    e1 = np.exp(-gamma * (r - r0))
    morse = D * (e1 * e1 - 2.0 * e1)
    phi = born - disp + morse
    dphi = -born / rho + 6.0 * disp / r + D * gamma * (2.0 * e1 - 2.0 * e1 * e1)
    return phi, dphi


def density_function(r: ArrayLike, n: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Untapered density contributed by a neighbour: ``sigma(r) = n/r^8 (1 + erf(20(r-1.5)))/2``.

    Parameters
    ----------
    r
        Distances, Angstrom, shape ``(...)``, all > 0.
    n
        Density prefactor of the neighbour's element, eV Angstrom^8, broadcastable to ``r``.

    Returns
    -------
    sigma, dsigma
        ``sigma(r)`` (units of n/Angstrom^8) and ``dsigma/dr``, broadcast shape.
    """
    r = np.asarray(r, dtype=float)
    n = np.asarray(n, dtype=float)
    x = 20.0 * (r - 1.5)
    switch = 0.5 * (1.0 + erf(x))
    dswitch = 20.0 / math.sqrt(math.pi) * np.exp(-x * x)
    power = n / r**8
    sigma = power * switch
    dsigma = power * (dswitch - 8.0 * switch / r)
    return sigma, dsigma


def embedding_energy(rho: ArrayLike, g: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Embedding energy ``F(rho) = -G sqrt(rho)`` and ``dF/drho``.

    Parameters
    ----------
    rho
        Site densities, shape ``(...)``, >= 0.
    g
        Embedding prefactor G of the site's element, eV, broadcastable to ``rho``.

    Returns
    -------
    F, dF
        Energy in eV and its derivative; ``dF`` is set to 0 where ``rho == 0`` (an atom with
        no neighbours inside the cutoff, where the derivative is singular but unused).
    """
    rho = np.asarray(rho, dtype=float)
    g = np.asarray(g, dtype=float)
    root = np.sqrt(rho)
    f = -g * root
    safe = np.where(root > 0, root, 1.0)
    df = np.where(root > 0, -0.5 * g / safe, 0.0)
    return f, df


def smooth_taper(
    r: ArrayLike, r_start: float | None, r_cut: float
) -> tuple[FloatArray, FloatArray]:
    """C-infinity cutoff function ``S(r)`` and ``dS/dr``.

    With ``t = (r - r_start)/(r_cut - r_start)``, ``S = 1`` for ``t <= 0``, ``S = 0`` for
    ``t >= 1`` and in between the standard smooth step built from the bump
    ``g(x) = exp(-1/x)``: ``S = g(1-t) / (g(1-t) + g(t)) = 1/(1 + exp(1/(1-t) - 1/t))``.
    All derivatives of ``S`` vanish at both ends. With ``r_start=None`` the cutoff is hard:
    ``S = 1`` for ``r < r_cut`` and 0 otherwise (``dS = 0``).

    Parameters
    ----------
    r
        Distances, Angstrom, shape ``(...)``.
    r_start
        Start of the taper, Angstrom, or ``None``.
    r_cut
        Cutoff, Angstrom.

    Returns
    -------
    S, dS
        Dimensionless taper and its derivative in 1/Angstrom, shape of ``r``.
    """
    r = np.asarray(r, dtype=float)
    if r_start is None:
        return (r < r_cut).astype(float), np.zeros_like(r)
    width = r_cut - r_start
    t = (r - r_start) / width
    inside = (t > 0.0) & (t < 1.0)
    ts = np.where(inside, t, 0.5)
    u = 1.0 / (1.0 - ts) - 1.0 / ts
    s_in = expit(-u)
    ds_in = -expit(-u) * expit(u) * (1.0 / (1.0 - ts) ** 2 + 1.0 / ts**2) / width
    s = np.where(inside, s_in, np.where(t <= 0.0, 1.0, 0.0))
    ds = np.where(inside, ds_in, 0.0)
    return s, ds


def tapered(
    function: tuple[FloatArray, FloatArray], r: ArrayLike, r_start: float | None, r_cut: float
) -> tuple[FloatArray, FloatArray]:
    """``f(r) S(r)`` and its derivative: a short-range function as actually used.

    Parameters
    ----------
    function
        ``(f(r), df/dr)`` at ``r``, e.g. ``pair_energy(r, ...)`` (eV, eV/Angstrom) or
        ``density_function(r, n)``.
    r, r_start, r_cut
        As in :func:`smooth_taper`.

    Returns
    -------
    fS, dfS
        ``f S`` and ``df/dr S + f dS/dr``, broadcast shape.
    """
    f, df = function
    s, ds = smooth_taper(r, r_start, r_cut)
    return f * s, df * s + f * ds


def default_g_ewald(cutoff: float) -> float:
    """Ewald splitting parameter alpha (1/Angstrom) used by both implementations.

    ``max(2.0, 6 / cutoff)``: 2 / Angstrom unless the real-space cutoff is below 3 A.

    Why so large (LAMMPS would pick ~0.4 from the accuracy): with ``pair_modify table 0``
    LAMMPS's ``coul/long`` evaluates ``erfc`` with the Abramowitz-Stegun 7.1.26 formula,
    whose absolute error is ~1e-7 for ``x = alpha r < 2.5`` and drops fast beyond
    (4e-11 at x = 4, 1e-14 at 5). With alpha = 0.5 that error sums to ~1.6e-5 eV per 12-atom
    cell (and a force/energy inconsistency ~1e-6 eV/A); with alpha = 2 every neighbour
    (r >= 2 A, x >= 4) is in the accurate range and it drops to ~2e-11 eV, while the
    reciprocal sum, which LAMMPS's ``ewald`` evaluates exactly up to its k cutoff, takes
    over. The price is more k-vectors (|k| up to ~ 2 alpha sqrt(23) ~ 19 / A for
    ``kspace_accuracy`` 1e-10): ~40 ms per evaluation of a 96-atom cell on one core.
    ``erfc(alpha * cutoff)`` is then ~0 (erfc(24) ~ 1e-252), so nothing jumps when pairs
    cross the real-space cutoff. Fixing alpha (instead of letting LAMMPS derive it per
    cell) also makes the surface independent of the cell.
    """
    return max(2.0, 6.0 / cutoff)


# --------------------------------------------------------------------------- setfl
def _tables(
    params: CRGParameters, grid: SetflGrid
) -> tuple[dict[str, FloatArray], dict[str, FloatArray], list[FloatArray]]:
    """Embedding, density and r*phi tables in setfl order (elements = :data:`ELEMENTS`)."""
    rho_grid = np.arange(grid.nrho) * grid.drho
    r_grid = np.arange(grid.nr) * grid.dr
    r_eval = np.maximum(r_grid, _R_FLOOR)
    s, _ = smooth_taper(r_grid, grid.taper_start, grid.cutoff)
    if grid.taper_start is None:
        # hard cutoff: the tables continue past the cutoff (LAMMPS never looks there), so
        # the interpolation of the last segments below the cutoff is not disturbed.
        s = np.ones_like(r_grid)
    embed: dict[str, FloatArray] = {}
    dens: dict[str, FloatArray] = {}
    for el in ELEMENTS:
        embed[el] = embedding_energy(rho_grid, params.embedding_g(el))[0]
        dens[el] = density_function(r_eval, params.density_n(el))[0] * s
    pairs: list[FloatArray] = []
    for i, a in enumerate(ELEMENTS):
        for b in ELEMENTS[: i + 1]:
            p = params.pair(a, b)
            phi = pair_energy(r_eval, p.A, p.rho, p.C, p.D, p.gamma, p.r0)[0]
            pairs.append(r_grid * phi * s)
    return embed, dens, pairs


def write_crg_setfl(path: str | os.PathLike[str], params: CRGParameters, grid: SetflGrid
                    ) -> Path:
    """Write the CRG short-range part as a LAMMPS ``eam/alloy`` (setfl) file.

    For each element ``F(rho_k)``, ``rho_k = k drho`` and ``sigma(r_k) S(r_k)``,
    ``r_k = k dr``; then ``r phi_ab(r) S(r)`` for the pairs (O,O), (Th,O), (Th,Th), written
    by :func:`anharmbench.potentials.setfl.write_setfl` (atomically, 17 digits).

    Parameters
    ----------
    path
        Destination file.
    params
        CRG parameters.
    grid
        Tabulation grid, cutoff and taper.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    embed, dens, pairs = _tables(params, grid)
    taper = (
        "hard cutoff"
        if grid.taper_start is None
        else f"C-inf taper {grid.taper_start:g}-{grid.cutoff:g} A"
    )
    comments = [
        "CRG 2014 ThO2 (Cooper, Rushton, Grimes, JPCM 26 105401): Buckingham+Morse+EAM part only",
        f"Coulomb (q_Th = {params.q_th:.6g}, q_O = {params.q_o:.6g}) is coul/long + kspace;"
        " written by anharmbench",
        f"cutoff {grid.cutoff:g} A, {taper}, dr {grid.dr:g}, drho {grid.drho:g}",
    ]
    elements = [SetflElement(el, _Z[el], params.mass(el), embed[el], dens[el], 5.6, "fluorite")
                for el in ELEMENTS]
    return write_setfl(path, grid, comments, elements, pairs)


def setfl_filename(params: CRGParameters, grid: SetflGrid) -> str:
    """File name ``ThO2_CRG_<hash>.eam.alloy``; the hash covers parameters, grid and layout."""
    payload = json.dumps(
        {"params": asdict(params), "grid": asdict(grid), "version": _SETFL_FORMAT_VERSION},
        sort_keys=True,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"ThO2_CRG_{digest}.eam.alloy"


def crg_potential(
    directory: str | os.PathLike[str] | None = None,
    *,
    params: CRGParameters | None = None,
    grid: SetflGrid | None = None,
    kspace: str = "ewald",
    kspace_accuracy: float = 1e-10,
    g_ewald: float | None = None,
    name: str = "CRG-ThO2",
) -> LammpsPotential:
    """LAMMPS description of the CRG ThO2 potential (writes or reuses its setfl file).

    ``pair_style hybrid/overlay coul/long RC eam/alloy`` with the setfl tables from
    :func:`write_crg_setfl`, fixed charges (``atom_style charge``), and Ewald summation:

    * ``kspace_style ewald ACC`` (default): an exact Ewald sum, smooth in the positions and
      with forces and stress consistent with the energy.
    * ``kspace_modify gewald`` fixed to :func:`default_g_ewald` (2 / Angstrom): keeps
      LAMMPS's approximate ``erfc`` in its accurate range, completes the real-space sum well
      inside RC (nothing jumps when pairs cross RC) and makes the surface cell-independent.
      With these settings LAMMPS matches
      :class:`~anharmbench.potentials.crg_numpy.CRGNumpyCalculator` to ~1e-11 relative.
    * ``"pppm"`` is for speed in large cells, not for the reference surface: with alpha = 2
      its mesh would be huge, so unless ``g_ewald`` is given LAMMPS picks alpha from the
      accuracy (~0.4 / A), and the erfc approximation and mesh errors then leave ~1e-4 eV
      per 24 atoms and ~1e-6 eV/A (measured), with a mesh-dependent, noisier surface.
    * ``pair_modify table 0``: coul/long's default lookup tables are piecewise (linear in
      bits of r^2) and ruin 3rd and higher derivatives; without them LAMMPS evaluates erfc
      with an analytic approximation (absolute error ~1e-7 for alpha r < 2.5, smooth).

    Parameters
    ----------
    directory
        Where to put the setfl file; default
        :func:`~anharmbench.potentials.setfl.default_cache_dir`. The file name holds
        a hash of parameters and grid (:func:`setfl_filename`), so different settings never
        collide and an existing file is reused.
    params
        CRG parameters (default: the published values).
    grid
        Tabulation grid, cutoff (also the coul/long cutoff) and taper (default
        :class:`~anharmbench.potentials.setfl.SetflGrid`).
    kspace
        ``"ewald"`` or ``"pppm"``.
    kspace_accuracy
        Relative force accuracy passed to ``kspace_style``.
    g_ewald
        Ewald splitting parameter in 1/Angstrom; default :func:`default_g_ewald` for
        ``ewald``, LAMMPS's own choice for ``pppm``.
    name
        Name of the description.

    Returns
    -------
    LammpsPotential
        Types ``O`` (1) and ``Th`` (2).
    """
    params = CRGParameters() if params is None else params
    grid = SetflGrid() if grid is None else grid
    if kspace not in ("ewald", "pppm"):
        raise ValueError(f"kspace must be 'ewald' or 'pppm', not {kspace!r}")
    if not kspace_accuracy > 0:
        raise ValueError(f"kspace_accuracy must be positive, got {kspace_accuracy}")
    commands = ["pair_modify table 0"]
    if g_ewald is not None or kspace == "ewald":
        alpha = default_g_ewald(grid.cutoff) if g_ewald is None else float(g_ewald)
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"g_ewald must be positive, got {g_ewald}")
        commands.append(f"kspace_modify gewald {alpha:.17g}")
    folder = default_cache_dir() if directory is None else Path(directory)
    path = (folder / setfl_filename(params, grid)).resolve()
    if not path.is_file():
        write_crg_setfl(path, params, grid)
    return LammpsPotential(
        name=name,
        elements=ELEMENTS,
        atom_style="charge",
        masses={el: params.mass(el) for el in ELEMENTS},
        charges={el: params.charge(el) for el in ELEMENTS},
        pair_style=f"hybrid/overlay coul/long {grid.cutoff:.10g} eam/alloy",
        pair_coeff=(
            "* * coul/long",
            f"* * eam/alloy {lammps_path_word(path)} " + " ".join(ELEMENTS),
        ),
        kspace_style=f"{kspace} {kspace_accuracy:.6g}",
        commands=tuple(commands),
        files=(str(path),),
    )


def crg_regression_potential(
    directory: str | os.PathLike[str] | None = None,
) -> LammpsPotential:
    """The reference note's regression setting: 10 A cutoff, nr 1000, dr 0.01, no taper.

    For the 12-atom conventional cell at a = 5.468 A LAMMPS gives E = -157.552359 eV.
    """
    return crg_potential(directory, grid=REGRESSION_GRID, name="CRG-ThO2-regression")
