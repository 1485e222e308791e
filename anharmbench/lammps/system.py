"""One LAMMPS instance holding one periodic cell and one potential.

:class:`LammpsSystem` is the single place where the project talks to the LAMMPS
library: it builds the box and atoms from an ``ase.Atoms``, issues the potential's
commands, and evaluates energy, forces and stress for new positions of the same
cell with ``run 0``. The ASE calculator (:class:`~anharmbench.lammps.LammpsCalculator`,
one configuration or a batch) is a thin layer over it.

Units: positions and lengths in Angstrom, energies in eV, forces in eV/Angstrom,
stress in eV/Angstrom^3 with ASE's sign convention (``stress = -pressure``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.lammps.coordinatetransform import Prism

from anharmbench._lammps_env import import_lammps
from anharmbench.plugins import ensure_plugins
from anharmbench.potentials.spec import LammpsPotential, PotentialError

# Order in which LAMMPS reports the pressure tensor (thermo keywords).
_PRESS_KEYS = ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")  # Voigt order


class LammpsError(RuntimeError):
    """LAMMPS rejected a command or failed during a run; carries LAMMPS's message."""


class NonFiniteResultError(FloatingPointError):
    """LAMMPS returned a NaN or infinite energy, force or stress."""


@dataclass(frozen=True)
class Evaluation:
    """Result of one evaluation.

    Attributes
    ----------
    energy
        Potential energy, eV.
    forces
        ``(N, 3)`` float64 forces in the ASE frame, eV/Angstrom.
    stress
        ``(6,)`` float64 Voigt stress (xx, yy, zz, yz, xz, xy), eV/Angstrom^3, ASE sign.
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray


def pair_style_names(pair_style: str) -> list[str]:
    """Names of the pair styles that a ``pair_style`` argument string needs.

    ``hybrid`` and ``hybrid/overlay`` name sub-styles; their numeric arguments are
    skipped. This reads LAMMPS's own syntax, which is the user's input here.
    """
    toks = pair_style.split()
    head = toks[0]
    if not head.startswith("hybrid"):
        return [head]
    names = [head]
    for tok in toks[1:]:
        try:
            float(tok)
        except ValueError:
            if tok not in ("scale",):
                names.append(tok)
    return names


def check_pair_styles(lmp: object, potential: LammpsPotential) -> None:
    """Raise :class:`PotentialError` if a pair style of ``potential`` is not available."""
    for name in pair_style_names(potential.pair_style):
        if not lmp.has_style("pair", name):  # type: ignore[attr-defined]
            raise PotentialError(
                f"pair style {name!r} (needed by potential {potential.name!r}) is not "
                "available in this LAMMPS build. If it is one of the project's plugins "
                "(taylor, quip, nequip, e3gnn), run 'anharmbench doctor': it builds them "
                "(anharmbench plugins build) and names a missing optional dependency; "
                "otherwise add the plugin's .so to the potential's 'plugins'."
            )


def open_lammps() -> object:
    """A quiet LAMMPS instance (no screen output, no log file, no citation notice)."""
    lammps = import_lammps()
    return lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])


class LammpsSystem:
    """A LAMMPS instance with one periodic cell and one potential.

    Parameters
    ----------
    potential
        The potential description.
    atoms
        The cell, species and initial positions (all three directions periodic).
    """

    def __init__(self, potential: LammpsPotential, atoms: Atoms) -> None:
        self.potential = potential
        self.symbols = tuple(atoms.get_chemical_symbols())
        self.natoms = len(atoms)
        self.cell = np.array(atoms.cell.array, dtype=float)
        _check_cell(atoms)
        potential.check_species(self.symbols)
        potential.check_files()
        self.prism = Prism(self.cell, pbc=True, reduce_cell=True)
        self._rot = self.prism.rot_mat  # ase = lammps @ rot.T ; lammps = ase @ rot
        # first use of a project pair style builds the plugins (before LAMMPS starts,
        # which is when it scans LAMMPS_PLUGIN_PATH)
        ensure_plugins(pair_style_names(potential.pair_style))
        self.lmp = open_lammps()
        self._buf = (ctypes.c_double * (3 * self.natoms))()
        try:
            self._build(np.asarray(atoms.positions, dtype=float))
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------- plumbing
    def command(self, line: str) -> None:
        """Issue one LAMMPS command; a LAMMPS error becomes :class:`LammpsError`.

        The box is fixed for the life of the instance (positions are scattered in the
        frame of the cell it was made with): ``change_box`` is refused; make a new
        :class:`LammpsSystem` (or :class:`~anharmbench.lammps.LammpsCalculator`, which does
        so by itself when the cell changes) for another cell.
        """
        if line.split(maxsplit=1)[:1] == ["change_box"]:
            raise LammpsError(
                f"'{line}': the box of a LammpsSystem is fixed (positions are mapped into the "
                "frame of its cell); create a new LammpsSystem for the new cell instead"
            )
        try:
            self.lmp.command(line)  # type: ignore[attr-defined]
        except Exception as exc:  # LAMMPS raises a bare Exception with its message
            raise LammpsError(f"LAMMPS rejected '{line}': {exc}") from exc

    def _build(self, positions: np.ndarray) -> None:
        pot = self.potential
        lx, ly, lz, xy, xz, yz = (repr(float(v)) for v in self.prism.get_lammps_prism())
        for line in (
            "units metal",
            f"atom_style {pot.atom_style}",
            "atom_modify map array sort 0 0.0",
            "boundary p p p",
            f"region cell prism 0 {lx} 0 {ly} 0 {lz} {xy} {xz} {yz} units box",
            f"create_box {len(pot.elements)} cell",
        ):
            self.command(line)
        types = [pot.type_of(s) for s in self.symbols]
        x = self.prism.vector_to_lammps(positions).reshape(-1)
        try:
            self.lmp.create_atoms(  # type: ignore[attr-defined]
                self.natoms, list(range(1, self.natoms + 1)), types, list(x)
            )
        except Exception as exc:
            raise LammpsError(f"LAMMPS could not create the atoms: {exc}") from exc
        if self.lmp.get_natoms() != self.natoms:  # type: ignore[attr-defined]
            raise LammpsError(
                f"LAMMPS created {self.lmp.get_natoms()} of {self.natoms} atoms: "  # type: ignore[attr-defined]
                "the cell cannot be represented (check that it is not degenerate)"
            )
        for line in pot.setup_commands():
            if line.startswith("pair_style"):
                check_pair_styles(self.lmp, pot)
            self.command(line)
        self.command("thermo_style custom step pe " + " ".join(_PRESS_KEYS))
        self.command("thermo_modify norm no")
        # LAMMPS's own pressure conversion (bar per eV/A^3) so that stress is exact
        self._nktv2p = float(self.lmp.extract_global("nktv2p"))  # type: ignore[attr-defined]

    # ------------------------------------------------------------ evaluate
    def scatter_positions(self, positions: np.ndarray) -> None:
        """Send ``(N, 3)`` Cartesian positions (ASE frame, Angstrom) to LAMMPS."""
        x = self.prism.vector_to_lammps(np.asarray(positions, dtype=float))
        np.frombuffer(self._buf, dtype=np.float64)[:] = x.reshape(-1)
        self.lmp.scatter_atoms("x", 1, 3, self._buf)  # type: ignore[attr-defined]

    def run0(self) -> None:
        """Compute energy, forces and virial for the current positions."""
        self.command("run 0 post no")

    def read_results(self, *, stress: bool = True) -> Evaluation:
        """Gather energy, forces and stress of the last :meth:`run0`."""
        lmp = self.lmp
        energy = float(lmp.get_thermo("pe"))  # type: ignore[attr-defined]
        f = lmp.gather_atoms("f", 1, 3)  # type: ignore[attr-defined]
        forces = np.ctypeslib.as_array(f).reshape(self.natoms, 3) @ self._rot.T
        if stress:
            p = np.array([lmp.get_thermo(k) for k in _PRESS_KEYS])  # type: ignore[attr-defined]
            p_lmp = np.array(
                [[p[0], p[5], p[4]], [p[5], p[1], p[3]], [p[4], p[3], p[2]]], dtype=float
            )
            s = -self.prism.tensor2_to_ase(p_lmp) / self._nktv2p
            voigt = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        else:
            voigt = np.full(6, np.nan)
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise NonFiniteResultError(
                f"potential {self.potential.name!r} returned a non-finite energy or force "
                f"(energy={energy}); atoms may overlap or the potential is outside its range"
            )
        return Evaluation(energy=energy, forces=forces, stress=voigt)

    def evaluate(self, positions: np.ndarray, *, stress: bool = True) -> Evaluation:
        """Energy, forces and stress for ``(N, 3)`` positions (Angstrom) of this cell."""
        positions = np.asarray(positions, dtype=float)
        if positions.shape != (self.natoms, 3):
            raise ValueError(
                f"positions have shape {positions.shape}, expected ({self.natoms}, 3)"
            )
        if not np.isfinite(positions).all():
            raise NonFiniteResultError("positions contain NaN or infinite values")
        self.scatter_positions(positions)
        self.run0()
        return self.read_results(stress=stress)

    def matches(self, atoms: Atoms) -> bool:
        """True when ``atoms`` has this system's species (in order) and cell."""
        return (
            len(atoms) == self.natoms
            and tuple(atoms.get_chemical_symbols()) == self.symbols
            and np.allclose(atoms.cell.array, self.cell, rtol=0, atol=1e-12)
            and bool(np.all(atoms.pbc))
        )

    def close(self) -> None:
        """Release the LAMMPS instance."""
        lmp = getattr(self, "lmp", None)
        if lmp is not None:
            lmp.close()  # type: ignore[attr-defined]
            self.lmp = None

    def __enter__(self) -> LammpsSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_cell(atoms: Atoms) -> None:
    if not np.all(atoms.pbc):
        raise ValueError(
            "anharmbench evaluates periodic crystals: set atoms.pbc = True (all three "
            f"directions) and give a cell; got pbc={atoms.pbc.tolist()}"
        )
    cell = np.asarray(atoms.cell.array, dtype=float)
    vol = abs(np.linalg.det(cell))
    if not np.isfinite(cell).all() or vol < 1e-6:
        raise ValueError(
            f"the cell {cell.tolist()} is degenerate (volume {vol:.3g} A^3) and cannot be "
            "represented in LAMMPS; give three linearly independent cell vectors"
        )
    if len(atoms) == 0:
        raise ValueError("the structure has no atoms")
    if not np.isfinite(atoms.positions).all():
        raise ValueError("atomic positions contain NaN or infinite values")
