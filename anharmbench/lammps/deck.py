"""Plain LAMMPS input decks rendered from the templates in ``lammps_inputs/``.

A deck is a self-contained directory that any ``lmp`` binary with the potential's
pair styles can run (``lmp -in in.evaluate``): the structure as a data file, the
potential as ``potential.in`` (its files copied next to it), the configurations as a
LAMMPS text dump evaluated with ``rerun``, and a manifest ``deck.json`` that lets
:func:`read_deck_results` turn the outputs back into ASE-frame arrays and refuse
outputs that do not belong to the deck.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
from ase import Atoms
from ase.calculators.lammps.coordinatetransform import Prism

from anharmbench import __version__
from anharmbench.lammps.batch import BatchResult
from anharmbench.lammps.system import pair_style_names
from anharmbench.plugins import ensure_plugins
from anharmbench.potentials.spec import LammpsPotential

INPUT_NAME = "in.evaluate"
DATA_FILE = "structure.data"
POTENTIAL_FILE = "potential.in"
CONFIGS_FILE = "configs.dump"
ENERGY_FILE = "energies.dat"
FORCE_FILE = "forces.dump"
MANIFEST = "deck.json"
LOG_FILE = "log.lammps"

#: LAMMPS's conversion for ``units metal`` (bar per eV/Angstrom^3), from its update.cpp.
NKTV2P_METAL = 1.6021765e6


class DeckResultError(RuntimeError):
    """Outputs of a deck are missing, truncated or do not belong to the deck."""


def templates_dir() -> Path:
    """The deck templates, shipped in the package (``anharmbench/data/lammps_inputs``).

    In a checkout that folder links to the repository's ``lammps_inputs/``; a wheel holds
    a copy made when it was built.
    """
    path = Path(__file__).resolve().parents[1] / "data" / "lammps_inputs"
    if not (path / "evaluate.in.j2").is_file():
        raise FileNotFoundError(
            f"LAMMPS templates not found at {path}; the installation lacks its package data: "
            "reinstall anharmbench (pip install anharmbench, or pip install -e . in a checkout)"
        )
    return path


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_template(name: str, **values: object) -> str:
    """Render one template of ``lammps_inputs/`` (undefined values are an error)."""
    return _env().get_template(name).render(**values)


@dataclass(frozen=True)
class Deck:
    """A written deck.

    Attributes
    ----------
    directory
        Where it lives.
    natoms
        Atoms per configuration.
    n_configurations
        Number of configurations in ``configs.dump``.
    rotation
        ``(3, 3)`` rotation with ``ase_vector = lammps_vector @ rotation.T``.
    """

    directory: Path
    natoms: int
    n_configurations: int
    rotation: np.ndarray

    @property
    def input_file(self) -> Path:
        return self.directory / INPUT_NAME


def render_potential(potential: LammpsPotential, file_map: dict[str, str] | None = None) -> str:
    """The potential's LAMMPS commands as ``potential.in`` text.

    ``file_map`` replaces file paths inside the commands (e.g. absolute paths by the
    names of copies placed next to the deck).
    """
    commands = potential.setup_commands()
    for old, new in (file_map or {}).items():
        commands = [c.replace(old, new) for c in commands]
    return _env().get_template("potential.in.j2").render(
        name=potential.name,
        version=__version__,
        potential_hash=potential.content_hash()[:16],
        commands=commands,
    )


def _data_text(atoms: Atoms, potential: LammpsPotential, prism: Prism) -> str:
    lx, ly, lz, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
    x = prism.vector_to_lammps(atoms.positions)
    lines = [
        f"# {atoms.get_chemical_formula()} written by anharmbench {__version__}",
        "",
        f"{len(atoms)} atoms",
        f"{len(potential.elements)} atom types",
        "",
        f"0.0 {lx!r} xlo xhi",
        f"0.0 {ly!r} ylo yhi",
        f"0.0 {lz!r} zlo zhi",
        f"{xy!r} {xz!r} {yz!r} xy xz yz",
        "",
        f"Atoms # {potential.atom_style}",
        "",
    ]
    for i, (sym, pos) in enumerate(zip(atoms.get_chemical_symbols(), x, strict=True)):
        t = potential.type_of(sym)
        xyz = " ".join(repr(float(v)) for v in pos)
        if potential.atom_style == "charge":
            q = float(potential.charges.get(sym, 0.0))
            lines.append(f"{i + 1} {t} {q!r} {xyz}")
        else:
            lines.append(f"{i + 1} {t} {xyz}")
    return "\n".join(lines) + "\n"


def _dump_text(positions: np.ndarray, prism: Prism) -> str:
    lx, ly, lz, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
    xlo_b, xhi_b = min(0.0, xy, xz, xy + xz), lx + max(0.0, xy, xz, xy + xz)
    ylo_b, yhi_b = min(0.0, yz), ly + max(0.0, yz)
    natoms = positions.shape[1]
    ids = np.arange(1, natoms + 1)
    chunks = []
    for step, pos in enumerate(positions):
        x = prism.vector_to_lammps(pos)
        body = "\n".join(
            f"{i} {a!r} {b!r} {c!r}" for i, (a, b, c) in zip(ids, x.tolist(), strict=True)
        )
        chunks.append(
            f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{natoms}\n"
            f"ITEM: BOX BOUNDS xy xz yz pp pp pp\n{xlo_b!r} {xhi_b!r} {xy!r}\n"
            f"{ylo_b!r} {yhi_b!r} {xz!r}\n0.0 {lz!r} {yz!r}\nITEM: ATOMS id x y z\n{body}\n"
        )
    return "".join(chunks)


def write_deck(
    directory: str | Path,
    potential: LammpsPotential,
    atoms: Atoms,
    positions: np.ndarray | None = None,
) -> Deck:
    """Write a deck that evaluates ``positions`` (default: ``atoms`` as given).

    Parameters
    ----------
    directory
        Target folder (created).
    potential
        The potential; its files are copied into the folder.
    atoms
        Reference structure (cell, species, charges per species).
    positions
        ``(n, N, 3)`` Cartesian positions in Angstrom (ASE frame).
    """
    potential.check_species(atoms.get_chemical_symbols())
    potential.check_files()
    # the deck's lmp finds the project's pair styles only once they are built
    ensure_plugins(pair_style_names(potential.pair_style))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if positions is None:
        positions = atoms.positions[None]
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 3 or positions.shape[1:] != (len(atoms), 3):
        raise ValueError(f"positions have shape {positions.shape}, expected (n, {len(atoms)}, 3)")
    prism = Prism(np.asarray(atoms.cell.array), pbc=True, reduce_cell=True)

    file_map: dict[str, str] = {}
    for path in potential.files:
        src = Path(path)
        shutil.copyfile(src, directory / src.name)
        file_map[str(path)] = src.name
    (directory / POTENTIAL_FILE).write_text(render_potential(potential, file_map))
    (directory / DATA_FILE).write_text(_data_text(atoms, potential, prism))
    configs = _dump_text(positions, prism)
    (directory / CONFIGS_FILE).write_text(configs)
    (directory / INPUT_NAME).write_text(
        _env()
        .get_template("evaluate.in.j2")
        .render(
            version=__version__,
            n_configurations=len(positions),
            natoms=len(atoms),
            input_name=INPUT_NAME,
            atom_style=potential.atom_style,
            data_file=DATA_FILE,
            potential_file=POTENTIAL_FILE,
            configs_file=CONFIGS_FILE,
            energy_file=ENERGY_FILE,
            force_file=FORCE_FILE,
        )
    )
    for stale in (ENERGY_FILE, FORCE_FILE):
        (directory / stale).unlink(missing_ok=True)
    manifest = {
        "anharmbench": __version__,
        "natoms": len(atoms),
        "n_configurations": len(positions),
        "rotation": prism.rot_mat.tolist(),
        "configs_sha256": hashlib.sha256(configs.encode()).hexdigest(),
        "potential": potential.to_dict(),
        "potential_hash": potential.content_hash(),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return Deck(directory, len(atoms), len(positions), prism.rot_mat.copy())


def read_deck_results(directory: str | Path) -> BatchResult:
    """Read ``energies.dat`` and ``forces.dump`` of a deck run by any LAMMPS binary.

    Raises
    ------
    DeckResultError
        When the manifest or an output is missing, truncated, or belongs to other
        configurations than the deck's.
    """
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise DeckResultError(
            f"{directory} has no {MANIFEST}: it is not an anharmbench deck"
        ) from None
    configs = directory / CONFIGS_FILE
    if hashlib.sha256(configs.read_bytes()).hexdigest() != manifest["configs_sha256"]:
        raise DeckResultError(
            f"{configs} does not match the deck manifest (it was changed after the deck was "
            "written); write the deck again"
        )
    n, natoms = int(manifest["n_configurations"]), int(manifest["natoms"])
    rot = np.asarray(manifest["rotation"], dtype=float)

    efile, ffile = directory / ENERGY_FILE, directory / FORCE_FILE
    for f in (efile, ffile):
        if not f.is_file():
            raise DeckResultError(
                f"missing LAMMPS output {f}: run the deck first (cd {directory} && lmp -in "
                f"{INPUT_NAME}) or check its log for an error"
            )
    rows = np.loadtxt(efile, comments="#", ndmin=2)
    if rows.shape != (n, 8):
        raise DeckResultError(
            f"{efile} holds {rows.shape[0]} configuration(s), the deck has {n}: the run was "
            "interrupted or failed; rerun the deck"
        )
    if not np.array_equal(rows[:, 0], np.arange(n)):
        raise DeckResultError(f"{efile} does not list configurations 0..{n - 1} in order")
    energies = rows[:, 1].copy()
    stresses = np.empty((n, 6))
    for k, p in enumerate(rows[:, 2:]):
        p_lmp = np.array([[p[0], p[5], p[4]], [p[5], p[1], p[3]], [p[4], p[3], p[2]]])
        s = -(rot @ p_lmp @ rot.T) / NKTV2P_METAL
        stresses[k] = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]

    forces = _read_force_dump(ffile, n, natoms) @ rot.T
    if not (np.isfinite(energies).all() and np.isfinite(forces).all()):
        finite = np.isfinite(energies) & np.isfinite(forces).all(axis=(1, 2))
        bad = int(np.flatnonzero(~finite)[0])
        raise DeckResultError(
            f"configuration {bad} has a non-finite energy or force in {directory}"
        )
    return BatchResult(energies=energies, forces=forces, stresses=stresses)


def _read_force_dump(path: Path, n: int, natoms: int) -> np.ndarray:
    lines = path.read_text().splitlines()
    block = 9 + natoms
    if len(lines) != n * block:
        raise DeckResultError(
            f"{path} has {len(lines)} lines, expected {n * block} for {n} configuration(s) of "
            f"{natoms} atoms: the run was interrupted or failed; rerun the deck"
        )
    forces = np.empty((n, natoms, 3))
    for k in range(n):
        head = lines[k * block : k * block + 9]
        if head[0] != "ITEM: TIMESTEP" or int(head[1]) != k:
            raise DeckResultError(f"{path}: configuration {k} is missing or out of order")
        data = np.array(
            [ln.split() for ln in lines[k * block + 9 : (k + 1) * block]], dtype=float
        )
        if not np.array_equal(data[:, 0], np.arange(1, natoms + 1)):
            raise DeckResultError(f"{path}: atom ids of configuration {k} are not 1..{natoms}")
        forces[k] = data[:, 1:4]
    return forces


def shell_double_quoted(text: str) -> str:
    """``text`` escaped for use inside double quotes in a bash script."""
    for ch in ("\\", '"', "$", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def lammps_error_line(directory: str | Path) -> str | None:
    """LAMMPS's own ``ERROR ...`` line from a deck's ``log.lammps``, or ``None``."""
    log = Path(directory) / LOG_FILE
    if not log.is_file():
        return None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("ERROR"):
            return line.strip()
    return None


def lmp_executable() -> list[str]:
    """Command that starts the ``lmp`` binary of the LAMMPS wheel."""
    beside = Path(sys.executable).with_name("lmp")
    exe = str(beside) if beside.is_file() else shutil.which("lmp")
    if exe is None:
        raise FileNotFoundError("no 'lmp' executable on PATH; install lammps or pass lmp=...")
    return [exe]


def run_deck(directory: str | Path, lmp: list[str] | None = None) -> BatchResult:
    """Run a deck with an ``lmp`` binary (default: the wheel's) and read its results."""
    directory = Path(directory)
    cmd = [*(lmp or lmp_executable()), "-in", INPUT_NAME, "-log", LOG_FILE, "-screen", "none"]
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log = directory / LOG_FILE
        tail = log.read_text().splitlines()[-15:] if log.is_file() else proc.stderr.splitlines()
        raise DeckResultError(
            f"LAMMPS failed on {directory / INPUT_NAME} (exit {proc.returncode}):\n"
            + "\n".join(tail)
        )
    return read_deck_results(directory)
