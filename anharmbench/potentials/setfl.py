"""LAMMPS ``eam/alloy`` (setfl) files: the tabulation grid and the file writer.

A setfl file holds, for each element, the embedding energy ``F(rho)`` on a density grid
and the density ``rho(r)`` on a distance grid, then ``r phi(r)`` for every element pair
(the layout of LAMMPS ``pair_style eam/alloy``). :class:`SetflGrid` fixes the grids, the
cutoff and the taper of the tabulated functions; :func:`write_setfl` writes tables given
on it. What the tables hold is the potential's (e.g. :mod:`anharmbench.potentials.crg`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["SetflElement", "SetflGrid", "default_cache_dir", "write_setfl"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SetflGrid:
    """Tabulation grid and cutoff of the ``eam/alloy`` setfl file.

    LAMMPS ``eam/alloy`` stores ``F(rho)`` at ``rho = k drho`` (``k < nrho``) and ``rho_b(r)``,
    ``r phi(r)`` at ``r = k dr`` (``k < nr``), and interpolates each table with a piecewise
    cubic Hermite polynomial whose knot slopes come from 4th-order central differences
    (``PairEAM::interpolate``). That interpolant is only C1: its value error is
    ~ dr^4 |f''''| / 384 and its second derivative jumps at every knot by ~ dr^2 |f''''|.
    Finite-difference derivatives of the energy (steps ~0.01-0.02 A) only see the *value*
    error, amplified by ~ (sum of stencil weights) / h^n.

    The defaults put that error at the double-precision round-off floor even for third
    derivatives. Measured on the 12-atom cell (eam part alone, LAMMPS tables vs the analytic
    numpy evaluation, third directional derivative by central differences at h = 0.02 A,
    |D3| ~ 7.5 eV/A^3): the difference is ~3e-8 eV/A^3 at dr = 1e-3, ~1e-8 at 5e-4 and
    ~1.5e-9 at 2.5e-4, where the round-off floor (energy noise ~5e-15 eV x 1.6 / h^3) is
    ~1e-9; the finite-difference truncation error at that step is ~4e-3. Halving drho
    changed nothing, so the r grid is the one that matters.

    * ``dr = 2.5e-4`` A: the steepest sampled tables are the density ``n_Th/r^8`` at the Th-O
      bond (2.4 A; |f| ~ 5e2 /A^4) and the Th-O Born-Mayer wall (|f| ~ 3e1 eV/A^4);
      the Hermite value error is ~ (2.5e-4)^4 * 5e2 / 384 ~ 5e-18 per pair.
      ``nr = 48201`` reaches 12.05 A, a little beyond the cutoff, so every segment below the
      cutoff uses the centred 5-point slope estimate. The file is ~10 MB; LAMMPS reads it
      in well under 0.1 s.
    * ``drho = 1e-3`` up to ``rho = 50`` (``nrho = 50001``): the O site density is ~6.3 at
      equilibrium and ~11 under strong compression, Th ~1.3; above ``rhomax`` LAMMPS would
      extrapolate F linearly (wrong). ``F = -G sqrt(rho)`` has |F''''| = (15/16) G rho^-3.5,
      ~1 at rho = 1, so the value error is ~ 1e-12 * 1 / 384 ~ 3e-15 eV per atom (largest
      for Th, rho ~ 1.3; the O embedding is flatter).
    * ``cutoff = 12`` A with a C-infinity taper from ``taper_start = 10.5`` A: at 10.5-12 A
      the short-range functions are already ~1e-6 eV (O-O dispersion) and ~1e-5 (Th
      density), so the taper changes the physics negligibly while making every derivative
      continuous at the cutoff. The same 12 A is the ``coul/long`` real-space cutoff.

    Parameters
    ----------
    nr, dr
        Number of r points and their spacing (Angstrom); ``nr * dr >= cutoff`` is required.
    nrho, drho
        Number of density points and their spacing (density units: ``n`` / Angstrom^8).
    cutoff
        Cutoff radius of the ``eam/alloy`` tables, Angstrom (also the ``coul/long`` one).
    taper_start
        Start of the smooth taper (Angstrom, ``< cutoff``), or ``None`` for a hard cutoff
        (the functions are simply truncated at ``cutoff``).
    """

    nr: int = 48201
    dr: float = 2.5e-4
    nrho: int = 50001
    drho: float = 1.0e-3
    cutoff: float = 12.0
    taper_start: float | None = 10.5

    def __post_init__(self) -> None:
        if self.nr < 5 or self.nrho < 5:
            raise ValueError(f"nr ({self.nr}) and nrho ({self.nrho}) must be at least 5")
        if not (self.dr > 0 and self.drho > 0 and self.cutoff > 0):
            raise ValueError("dr, drho and cutoff must be positive")
        if self.nr * self.dr < self.cutoff - 1e-12:
            raise ValueError(
                f"the r table (nr*dr = {self.nr * self.dr:g} A) does not reach the cutoff "
                f"{self.cutoff:g} A; increase nr"
            )
        if self.taper_start is not None and not 0 < self.taper_start < self.cutoff:
            raise ValueError(
                f"taper_start ({self.taper_start}) must lie between 0 and the cutoff "
                f"({self.cutoff}), or be None for a hard cutoff"
            )

    @property
    def rhomax(self) -> float:
        """Largest tabulated density, ``(nrho - 1) * drho``."""
        return (self.nrho - 1) * self.drho


@dataclass(frozen=True)
class SetflElement:
    """One element's block of a setfl file.

    Parameters
    ----------
    symbol
        Chemical symbol (the file's element list, in LAMMPS type order).
    atomic_number
        Its atomic number.
    mass
        Mass in amu.
    embedding
        ``F(rho_k)`` at ``rho_k = k drho``, ``(nrho,)`` eV.
    density
        ``rho(r_k)`` at ``r_k = k dr``, ``(nr,)`` (the density it contributes to a
        neighbour).
    lattice_constant, lattice
        The block's ``a0 lattice`` entries (informative; LAMMPS ignores them).
    """

    symbol: str
    atomic_number: int
    mass: float
    embedding: ArrayLike
    density: ArrayLike
    lattice_constant: float = 0.0
    lattice: str = "none"


def _format_block(values: FloatArray, per_line: int = 5) -> str:
    vals = [f"{v:.16e}" for v in (values + 0.0).tolist()]  # + 0.0 turns -0.0 into 0.0
    lines = (" ".join(vals[k : k + per_line]) for k in range(0, len(vals), per_line))
    return "\n".join(lines) + "\n"


def write_setfl(path: str | os.PathLike[str], grid: SetflGrid, comments: Sequence[str],
                elements: Sequence[SetflElement], pairs: Sequence[ArrayLike]) -> Path:
    """Write a LAMMPS ``eam/alloy`` (setfl) file.

    Layout (LAMMPS ``pair_style eam/alloy``): three comment lines; ``N el_1 ... el_N``;
    ``nrho drho nr dr cutoff``; for each element ``Z mass a0 lattice`` followed by
    ``F(rho_k)`` and ``rho(r_k)``; then ``r phi_ab(r_k)`` for the pairs ``(a, b)``, ``a >= b``
    in element order ((1,1), (2,1), (2,2), ...). Values are written with 17 significant
    digits (exact round trip of doubles). The file is written to a temporary name in the
    same directory and renamed, so a reader never sees a partial file.

    Parameters
    ----------
    path
        Destination file.
    grid
        The tables' grid and cutoff.
    comments
        The three comment lines.
    elements
        The elements' blocks, in LAMMPS type order.
    pairs
        ``r phi(r_k)`` of each pair in the order above, ``(nr,)`` eV Angstrom each.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        Not three one-line comments, or tables whose lengths do not match ``grid`` and
        the number of elements.
    """
    path = Path(path)
    if len(comments) != 3 or any("\n" in c for c in comments):
        raise ValueError(f"a setfl file starts with exactly three comment lines, got "
                         f"{list(comments)!r}")
    n_pairs = len(elements) * (len(elements) + 1) // 2
    if len(pairs) != n_pairs:
        raise ValueError(f"{len(elements)} elements need {n_pairs} pair tables, got "
                         f"{len(pairs)}")
    tables = [(f"the embedding of {e.symbol}", e.embedding, grid.nrho) for e in elements]
    tables += [(f"the density of {e.symbol}", e.density, grid.nr) for e in elements]
    tables += [(f"pair table {k}", p, grid.nr) for k, p in enumerate(pairs)]
    for what, values, size in tables:
        if np.shape(values) != (size,):
            raise ValueError(f"{what} has shape {np.shape(values)}; the grid needs ({size},)")
    header = [
        *comments,
        f"{len(elements)} " + " ".join(e.symbol for e in elements),
        f"{grid.nrho} {grid.drho:.16e} {grid.nr} {grid.dr:.16e} {grid.cutoff:.16e}",
    ]
    chunks = ["\n".join(header) + "\n"]
    for e in elements:
        chunks.append(f"{e.atomic_number} {e.mass:.10g} {e.lattice_constant:g} {e.lattice}\n")
        chunks.append(_format_block(np.asarray(e.embedding, dtype=float)))
        chunks.append(_format_block(np.asarray(e.density, dtype=float)))
    chunks.extend(_format_block(np.asarray(p, dtype=float)) for p in pairs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.writelines(chunks)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give a normal data file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/anharmbench/potentials`` (default ``~/.cache/anharmbench/potentials``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anharmbench" / "potentials"
