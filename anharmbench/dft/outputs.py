"""Reading forces from DFT outputs and matching them to the configurations of a plan.

Any output ASE reads works (``vasprun.xml`` as format ``"vasp-xml"``, Quantum ESPRESSO's
``pw.x`` output as ``"espresso-out"``, FHI-aims, CASTEP, extended XYZ with forces, ...);
reading is ASE's. What is ours is refusing outputs that cannot be trusted (truncated, no
forces, non-finite values) and matching each output to its configuration by its
positions, never by file name or order: a job array finishes in any order, folders get
renamed, and a stray output of another plan must be refused, not silently mixed in.

Typical use::

    frames = [read_output(p) for p in sorted(Path("runs").glob("disp-*/vasprun.xml"))]
    matched = match_outputs(frames, supercell, positions)   # positions (n, N, 3), Angstrom
    forces[matched.indices] = matched.forces
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = ["Matched", "OutputError", "OutputFrame", "match_outputs", "read_output"]

#: Text a complete output of these ASE formats contains in its last bytes; ASE's readers
#: silently return the last complete step of a cut file (or only the initial structure),
#: so without this check a crashed run would pass as a finished one.
_END_MARKERS: dict[str, bytes] = {
    "vasp-xml": b"</modeling>",
    "vasp-out": b"General timing and accounting",
    "espresso-out": b"JOB DONE",
    "aims-output": b"Have a nice day",
}
_TAIL_BYTES = 16384

#: Relative tolerance on the cell (outputs print the cell with ~8 significant digits).
CELL_RTOL = 1e-5


class OutputError(ValueError):
    """A DFT output that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class OutputFrame:
    """The last structure of a DFT output with its forces.

    Attributes
    ----------
    path
        The file read.
    numbers
        ``(N,)`` int, atomic numbers in the file's atom order.
    cell
        ``(3, 3)`` float64, lattice vectors as rows, Angstrom.
    positions
        ``(N, 3)`` float64, Cartesian positions, Angstrom.
    forces
        ``(N, 3)`` float64, eV/Angstrom (as written by the code, no constraint applied).
    energy
        Energy in eV, or ``None`` when the file has none. The force-consistent (free)
        energy when the file distinguishes it, since the forces are its derivatives.
    stress
        ``(6,)`` float64 Voigt stress (``xx yy zz yz xz xy``), eV/Angstrom^3, or ``None``
        when the file has none.
    """

    path: Path
    numbers: np.ndarray
    cell: np.ndarray
    positions: np.ndarray
    forces: np.ndarray
    energy: float | None
    stress: np.ndarray | None = None


@dataclass(frozen=True)
class Matched:
    """Outputs matched to configurations, in the order of the frames given.

    Attributes
    ----------
    indices
        ``(m,)`` int, configuration index of each frame.
    forces
        ``(m, N, 3)`` float64, eV/Angstrom.
    energies
        ``(m,)`` float64, eV; NaN where the output has no energy.
    paths
        The files, one per frame.
    """

    indices: np.ndarray
    forces: np.ndarray
    energies: np.ndarray
    paths: list[Path]


def _resolve_format(path: Path, format: str | None) -> str:
    if format is not None:
        return format
    from ase.io.formats import filetype

    try:
        return str(filetype(str(path), guess=False))
    except Exception as exc:  # ASE raises several types for unknown files
        raise OutputError(
            f"{path}: cannot tell which code wrote it ({exc}); give the format explicitly "
            "(--output-format, an ASE format name such as vasp-xml or espresso-out)"
        ) from exc


def _check_complete(path: Path, fmt: str) -> None:
    marker = _END_MARKERS.get(fmt)
    if marker is None:
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - _TAIL_BYTES))
        tail = fh.read()
    complete = tail.rstrip().endswith(marker) if fmt == "vasp-xml" else marker in tail
    if not complete:
        raise OutputError(
            f"{path}: truncated or unfinished {fmt} output (no '{marker.decode()}' at its end); "
            "the run crashed or is still running: rerun that job, or leave the file out"
        )


#: Text a code prints when its SCF stopped unconverged (its forces are then not a
#: derivative of anything; pw.x still prints them and JOB DONE with
#: ``scf_must_converge = .false.``).
_UNCONVERGED = {
    "espresso-out": b"convergence NOT achieved",
    "aims-output": b"SCF cycle not converged",
}


def _check_converged(path: Path, fmt: str) -> None:
    marker = _UNCONVERGED.get(fmt)
    if marker is None:
        return
    with path.open("rb") as fh:
        text = fh.read()
    why = None
    if marker in text:
        why = f"'{marker.decode()}'"
    elif fmt == "espresso-out":
        # pw.x 6.x with scf_must_converge = .false. stops at electron_maxstep and prints
        # "convergence has been achieved" all the same: compare the last estimate with
        # the threshold it printed
        thr = re.findall(rb"scf convergence threshold\s*=\s*([0-9.EeDd+-]+)", text)
        acc = re.findall(rb"!\s+total energy\s*=.*\n\s*estimated scf accuracy\s*<\s*"
                         rb"([0-9.EeDd+-]+)", text)
        if thr and acc:
            t, a = (float(x.replace(b"D", b"E").replace(b"d", b"e")) for x in (thr[-1], acc[-1]))
            if a > t:
                why = f"its last estimated scf accuracy {a:.1e} Ry is above the threshold {t:.1e}"
    if why:
        raise OutputError(
            f"{path}: the SCF did not converge ({why}); its forces are not usable: rerun "
            "that job with more SCF steps (pw.x: electron_maxstep) or another mixing "
            "(mixing_beta)")


def read_output(path: str | Path, format: str | None = None) -> OutputFrame:
    """Read the last structure, forces and energy of a DFT output with ASE.

    Parameters
    ----------
    path
        The output file (``vasprun.xml``, ``pw.x`` output, extended XYZ with forces, ...).
    format
        ASE format name (``"vasp-xml"``, ``"espresso-out"``, ``"extxyz"``, ...); ``None``
        lets ASE tell it from the name and contents.

    Returns
    -------
    OutputFrame

    Raises
    ------
    OutputError
        The file is missing, unreadable, truncated (for ``vasp-xml``, ``vasp-out``,
        ``espresso-out``, ``aims-output``: the code's end-of-run text is missing), is an
        unconverged SCF (``espresso-out``, ``aims-output``), has no forces, or has
        non-finite forces or energy.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise OutputError(f"{path}: no such file; check the path or the glob pattern")
    fmt = _resolve_format(path, format)
    _check_complete(path, fmt)
    _check_converged(path, fmt)
    try:
        atoms = ase.io.read(path, index=-1, format=fmt)
    except Exception as exc:  # XML ParseError, ValueError, IndexError, ... from the readers
        raise OutputError(
            f"{path}: cannot read it as {fmt} ({type(exc).__name__}: {exc}); the file is "
            "damaged, truncated or of another format (give --output-format)"
        ) from exc
    if isinstance(atoms, list):  # some readers return a list even for one index
        if not atoms:
            raise OutputError(f"{path}: holds no structure; rerun that job")
        atoms = atoms[-1]
    calc = atoms.calc
    forces = None
    if calc is not None:
        try:
            # apply_constraint=False: a vasprun.xml with selective dynamics would otherwise
            # come back with the fixed atoms' forces zeroed
            forces = atoms.get_forces(apply_constraint=False)
        except Exception:  # PropertyNotImplementedError and friends: no forces stored
            forces = None
    if forces is None:
        raise OutputError(
            f"{path}: has no forces; ask the code for them (VASP writes them always, pw.x "
            "needs tprnfor=.true., extended XYZ needs a 'forces' column) and rerun"
        )
    forces = np.array(forces, dtype=np.float64)
    if forces.shape != (len(atoms), 3):
        raise OutputError(f"{path}: forces of shape {forces.shape} for {len(atoms)} atoms")
    if not np.isfinite(forces).all():
        bad = int(np.flatnonzero(~np.isfinite(forces).all(axis=1))[0])
        raise OutputError(
            f"{path}: non-finite forces (atom {bad} first); the run diverged: rerun that job"
        )
    energy = None
    # the free energy is the one the forces are derivatives of (smearing), so prefer it
    for name in ("free_energy", "energy"):
        try:
            value = calc.get_property(name, atoms, allow_calculation=False)
        except Exception:
            value = None
        if value is not None:
            energy = float(value)
            break
    if energy is not None and not math.isfinite(energy):
        raise OutputError(f"{path}: non-finite energy ({energy}); rerun that job")
    try:
        stress = calc.get_property("stress", atoms, allow_calculation=False)
    except Exception:  # not every output has a stress
        stress = None
    if stress is not None:
        stress = np.array(stress, dtype=np.float64).reshape(-1)
        if stress.shape == (9,):
            full = stress.reshape(3, 3)
            stress = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if stress.shape != (6,) or not np.isfinite(stress).all():
            stress = None
    return OutputFrame(
        path=path,
        numbers=np.array(atoms.numbers, dtype=int),
        cell=np.array(atoms.cell.array, dtype=np.float64),
        positions=np.array(atoms.positions, dtype=np.float64),
        forces=forces,
        energy=energy,
        stress=stress,
    )


def _wrap(frac: np.ndarray) -> np.ndarray:
    """Fractional differences wrapped into ``[-0.5, 0.5)``."""
    return frac - np.floor(frac + 0.5)


def _deviation(frac_frame: np.ndarray, frac_conf: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Largest minimum-image atom distance (Angstrom) between one frame ``(N, 3)`` and
    configurations ``(k, N, 3)`` (fractional), as ``(k,)``."""
    d = _wrap(frac_frame[None] - frac_conf) @ cell
    return np.sqrt(np.einsum("kni,kni->kn", d, d)).max(axis=1)


def _fmt_cell(cell: np.ndarray) -> str:
    return np.array2string(np.asarray(cell), precision=6, separator=",",
                           suppress_small=True).replace("\n", "")


def match_outputs(
    frames: Sequence[OutputFrame],
    reference: Atoms,
    positions: np.ndarray,
    *,
    tol: float = 1e-4,
) -> Matched:
    """Match each output to the configuration it computed, by its positions.

    Parameters
    ----------
    frames
        Outputs (:func:`read_output`), in any order.
    reference
        The undisplaced supercell of the plan: its cell, species and atom order are what
        every output must have.
    positions
        ``(n, N, 3)`` float64, Cartesian positions of the configurations, Angstrom.
    tol
        Largest minimum-image distance (Angstrom) of any atom from its configuration
        position for an output to match it.

    Returns
    -------
    Matched
        One entry per frame, in the order of ``frames``.

    Raises
    ------
    OutputError
        An output with another cell (beyond :data:`CELL_RTOL` relative), another number
        of atoms or another species order; an output matching no configuration (the
        message gives the closest one and its deviation); two outputs matching the same
        configuration (both files named).

    Notes
    -----
    Positions are compared in fractional coordinates of each output's own cell (codes
    write fractional positions; the cell agrees within :data:`CELL_RTOL` anyway) with
    differences wrapped, so outputs whose atoms were wrapped into the cell match.
    Candidates are found through a k-d tree over a few orthonormal projections of the
    wrapped displacements (a projection never increases a distance, so no match is
    missed for lack of a candidate, and a plan's many configurations sharing most
    atom positions do not make it quadratic); candidates are then checked atom by atom,
    and an output left without a candidate is checked against all configurations. When
    configurations coincide within ``tol`` the closest one (then the lowest index) wins.
    """
    from scipy.spatial import cKDTree

    pos = np.asarray(positions, dtype=np.float64)
    cell = np.array(reference.cell.array, dtype=np.float64)
    numbers = np.asarray(reference.numbers)
    natoms = len(reference)
    if pos.ndim != 3 or pos.shape[1:] != (natoms, 3):
        raise ValueError(f"positions must have shape (n, {natoms}, 3), got {pos.shape}")
    if not frames:
        return Matched(np.zeros(0, dtype=int), np.zeros((0, natoms, 3)), np.zeros(0), [])
    n = pos.shape[0]
    inv = np.linalg.inv(cell)
    frac_ref = reference.positions @ inv
    frac_conf = pos @ inv
    u_conf = (_wrap(frac_conf - frac_ref[None]) @ cell).reshape(n, 3 * natoms)
    k = min(8, 3 * natoms)
    # fixed seed: the projection only chooses candidates, results never depend on it
    proj, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3 * natoms, k)))
    tree = cKDTree(u_conf @ proj)
    radius = math.sqrt(natoms) * tol * (1 + 1e-9)  # ||P d|| <= ||d|| <= sqrt(N) max|d_a|
    cell_scale = float(np.abs(cell).max())

    indices = np.empty(len(frames), dtype=int)
    for j, fr in enumerate(frames):
        if len(fr.numbers) != natoms:
            raise OutputError(
                f"{fr.path}: {len(fr.numbers)} atoms, the plan's supercell has {natoms}; "
                "this output belongs to another structure: leave it out"
            )
        if not np.array_equal(fr.numbers, numbers):
            a = int(np.flatnonzero(fr.numbers != numbers)[0])
            raise OutputError(
                f"{fr.path}: species order differs from the plan's supercell (first at atom "
                f"{a}: Z={int(fr.numbers[a])} here, Z={int(numbers[a])} in the plan); write "
                "the inputs unsorted (as 'anharmbench plan --format' does) and rerun"
            )
        if np.abs(fr.cell - cell).max() > CELL_RTOL * cell_scale:
            raise OutputError(
                f"{fr.path}: cell {_fmt_cell(fr.cell)} differs from the plan's cell "
                f"{_fmt_cell(cell)} (A); the run relaxed the cell or belongs to another "
                "plan: compute forces at the fixed cell of the input files"
            )
        frac = fr.positions @ np.linalg.inv(fr.cell)
        u = (_wrap(frac - frac_ref) @ cell).reshape(-1)
        cand = np.asarray(tree.query_ball_point(u @ proj, radius), dtype=int)
        dev = _deviation(frac, frac_conf[cand], cell) if cand.size else np.zeros(0)
        if not (dev < tol).any():
            # exhaustive: also catches displacements so large that wrapping moved them
            cand = np.arange(n)
            dev = _deviation(frac, frac_conf, cell)
            if not (dev < tol).any():
                best = int(np.argmin(dev))
                raise OutputError(
                    f"{fr.path}: its positions match no configuration of the plan within "
                    f"{tol:g} A (closest: configuration {best}, an atom off by "
                    f"{dev[best]:.3g} A); it belongs to another plan or the code moved the "
                    "atoms (relaxation?): compute forces at the input positions"
                )
        ok = dev < tol
        best = np.lexsort((cand[ok], dev[ok]))[0]
        indices[j] = int(cand[ok][best])

    order = np.argsort(indices, kind="stable")
    dup = np.flatnonzero(np.diff(indices[order]) == 0)
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise OutputError(
            f"{frames[a].path} and {frames[b].path} both hold configuration "
            f"{int(indices[a])}; keep one of them (a job run twice, or a copied folder)"
        )
    forces = np.stack([fr.forces for fr in frames])
    energies = np.array([np.nan if fr.energy is None else fr.energy for fr in frames])
    return Matched(indices=indices, forces=forces, energies=energies,
                   paths=[Path(fr.path) for fr in frames])
