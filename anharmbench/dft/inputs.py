"""DFT input files for the configurations of a plan: one job folder per configuration.

``anharmbench plan ... --format FMT --out DIR`` writes, next to the LAMMPS chunks, a
``DIR/dft/`` folder: ``job_XXXXX/`` (one per configuration, index = configuration index)
holding the structure written by ASE's writer ``FMT``, ``jobarray.sh`` (a Slurm/PBS/local
job array running ``$DFT_COMMAND`` in each folder, rendered from
``lammps_inputs/dft_jobarray.sh.j2``) and ``README.txt``. The outputs come back with
``anharmbench collect DIR --outputs GLOB`` (:mod:`anharmbench.dft.collect`), matched to
configurations by their positions, so folder names are a convenience, not the key.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from anharmbench.dft.settings import DftSettings, DftSettingsError

if TYPE_CHECKING:
    from anharmbench.derivatives.workflow import Prepared

DFT_DIR = "dft"
JOBARRAY = "jobarray.sh"
README = "README.txt"

#: Input file names the codes expect (or that are customary) for some ASE writers.
_INPUT_NAMES = {
    "vasp": "POSCAR",
    "espresso-in": "espresso.pwi",
    "aims": "geometry.in",
}

#: Per writer: (suggested DFT_COMMAND, output file, ASE format to read it).
_OUTPUT_HINTS = {
    "vasp": ("mpirun vasp_std", "vasprun.xml", "vasp-xml"),
    "espresso-in": ("mpirun pw.x -in espresso.pwi > espresso.pwo", "espresso.pwo",
                    "espresso-out"),
    "aims": ("mpirun aims.x > aims.out", "aims.out", "aims-output"),
}


#: Formats whose code cannot run a bare structure: what the settings must give.
SETTINGS_REQUIRED = {
    "espresso-in": "pseudopotentials, pseudo_dir, input_data.system.ecutwfc, kpts or kspacing",
}


def job_name(index: int) -> str:
    """Folder of configuration ``index`` (``job_00042``; as ``printf %05d`` in the script)."""
    return f"job_{index:05d}"


def reference_index(displacements: np.ndarray) -> tuple[int, bool]:
    """Index of the undisplaced supercell among the DFT jobs, and whether it is an extra job.

    A plan whose stencils include the zero step (odd orders by forces) already has the
    undisplaced supercell as a configuration; otherwise it is job ``n``, after the plan's.
    """
    d = np.asarray(displacements)
    zero = np.flatnonzero(np.abs(d).reshape(len(d), -1).max(axis=1) == 0.0)
    return (int(zero[0]), False) if zero.size else (len(d), True)


def writable_formats() -> list[str]:
    """Names of ASE's formats that can write one structure, sorted."""
    from ase.io.formats import ioformats

    return sorted(name for name, f in ioformats.items() if f.can_write)


def input_file_name(fmt: str) -> str:
    """Name of the structure file written for ASE format ``fmt``.

    ``POSCAR`` (vasp), ``espresso.pwi`` (espresso-in), ``geometry.in`` (aims), otherwise
    ``structure.<ext>`` with the format's first extension (or its name).
    """
    from ase.io.formats import ioformats

    if fmt in _INPUT_NAMES:
        return _INPUT_NAMES[fmt]
    exts = ioformats[fmt].extensions if fmt in ioformats else []
    return f"structure.{exts[0] if exts else fmt}"


def default_write_kwargs(fmt: str, atoms: Atoms) -> dict[str, Any]:
    """Keyword arguments given to ``ase.io.write`` for ``fmt`` unless overridden.

    vasp: fractional coordinates as VASP itself writes them, atom order kept (ASE's
    ``sort`` would reorder species and the outputs would no longer match the plan).
    espresso-in: an SCF with forces (``tprnfor``) and placeholder pseudopotential names
    ``<Symbol>.UPF`` (ASE's writer needs some; edit them or name your files so).
    """
    if fmt == "vasp":
        return {"direct": True, "sort": False}
    if fmt == "espresso-in":
        return {
            "pseudopotentials": {s: f"{s}.UPF" for s in sorted(set(atoms.get_chemical_symbols()))},
            "input_data": {"control": {"calculation": "scf", "tprnfor": True}},
        }
    return {}


def check_format(fmt: str, atoms: Atoms | None = None,
                 write_kwargs: Mapping[str, Any] | None = None) -> str:
    """Refuse a format ASE cannot write, before anything is written.

    Parameters
    ----------
    fmt
        ASE writer name.
    atoms
        When given, the structure is written once into a temporary folder, so a writer
        that needs more than the structure fails here and not halfway through a plan.
    write_kwargs
        Extra keyword arguments of ``ase.io.write``.

    Returns
    -------
    str
        ``fmt``.

    Raises
    ------
    ValueError
        Unknown or read-only format (the message lists some valid ones), or the trial
        write failed.
    """
    from ase.io.formats import ioformats

    f = ioformats.get(fmt)
    if f is None or not f.can_write:
        common = ", ".join(n for n in ("vasp", "espresso-in", "aims", "castep-cell", "extxyz",
                                       "cif", "lammps-data") if n in ioformats)
        what = "is not an ASE format" if f is None else "is a format ASE reads but cannot write"
        raise ValueError(
            f"--format {fmt!r} {what}; use an ASE writer name, e.g. {common} "
            f"({len(writable_formats())} in all: python -c 'import ase.io.formats as f; "
            "print(sorted(k for k, v in f.ioformats.items() if v.can_write))')"
        )
    if atoms is not None:
        tmp = Path(tempfile.mkdtemp(prefix="anharmbench-format-"))
        try:
            _write_structure(tmp / input_file_name(fmt), atoms, fmt, write_kwargs)
        except Exception as exc:
            raise ValueError(
                f"ASE's writer {fmt!r} cannot write this structure ({type(exc).__name__}: "
                f"{exc}); choose another --format"
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return fmt


def _write_structure(path: Path, atoms: Atoms, fmt: str,
                     write_kwargs: Mapping[str, Any] | None) -> None:
    import ase.io

    kwargs = default_write_kwargs(fmt, atoms)
    kwargs.update(write_kwargs or {})
    ase.io.write(path, atoms, format=fmt, **kwargs)


@dataclass(frozen=True)
class DftJobs:
    """What :func:`write_dft_inputs` wrote.

    Attributes
    ----------
    directory
        The ``dft/`` folder.
    n_jobs
        Job folders: one per configuration, and the last for the undisplaced supercell
        (the equilibrium check).
    input_file
        Structure file name inside each job folder.
    format
        ASE writer used.
    jobs_per_task
        Job folders run one after another by one array task.
    n_tasks
        Array tasks (``ceil(n_jobs / jobs_per_task)``).
    """

    directory: Path
    n_jobs: int
    input_file: str
    format: str
    jobs_per_task: int
    n_tasks: int


def write_dft_inputs(
    directory: str | Path,
    prepared: Prepared,
    fmt: str,
    *,
    jobs_per_task: int = 1,
    write_kwargs: Mapping[str, Any] | None = None,
    settings: DftSettings | None = None,
) -> DftJobs:
    """Write one DFT input structure per configuration of a plan, a job array and a README.

    Parameters
    ----------
    directory
        The plan directory (``plan.json`` there, if present, gets the keys ``dft_format``,
        ``dft_jobs``, ``dft_input_file``, ``dft_jobs_per_task``).
    prepared
        The plan: configuration ``i`` has positions ``supercell.positions +
        plan.displacements[i]`` (Angstrom), written unwrapped with the supercell's cell,
        species and atom order.
    fmt
        ASE writer name (``vasp``, ``espresso-in``, ``aims``, ``extxyz``, ...).
    jobs_per_task
        Job folders one array task runs one after another (schedulers cap array sizes,
        Slurm's default MaxArraySize is 1001).
    write_kwargs
        Extra keyword arguments of ``ase.io.write`` (override :func:`default_write_kwargs`).
    settings
        The code's settings (:mod:`anharmbench.dft.settings`): writer keywords, a k-mesh,
        files copied into ``common/``; required for ``espresso-in``, whose inputs then run
        in pw.x as written.

    Returns
    -------
    DftJobs

    Raises
    ------
    ValueError
        Bad format (see :func:`check_format`, checked before anything is written) or
        ``jobs_per_task < 1``.
    """
    from anharmbench.fileio import write_text_atomic
    from anharmbench.lammps.deck import render_template, shell_double_quoted

    if jobs_per_task < 1:
        raise ValueError(f"jobs_per_task must be >= 1, got {jobs_per_task}")
    directory = Path(directory)
    base = prepared.supercell.copy()
    base.calc = None
    base.set_constraint()
    base.pbc = True
    if settings is None and fmt in SETTINGS_REQUIRED:
        raise DftSettingsError(
            f"--format {fmt} needs --dft-settings FILE ({SETTINGS_REQUIRED[fmt]}); without "
            "them the code refuses the inputs. See anharmbench/dft/settings.py for the file")
    if settings is not None:
        write_kwargs = {**settings.write_kwargs(fmt, base), **(write_kwargs or {})}
        common_files = settings.common_files()
    check_format(fmt, base, write_kwargs)
    plan = prepared.plan
    positions = base.positions[None] + np.asarray(plan.displacements)
    dft = directory / DFT_DIR
    dft.mkdir(parents=True, exist_ok=True)
    (dft / "common").mkdir(exist_ok=True)
    if settings is not None:
        for f in common_files:
            shutil.copy2(f, dft / "common" / f.name)
    name = input_file_name(fmt)
    # the undisplaced supercell's forces and stress are the equilibrium check of the DFT
    # route (collect_outputs stores them, the fit judges them): job n unless in the plan
    ref_index, extra = reference_index(plan.displacements)
    if extra:
        positions = np.concatenate([positions, base.positions[None]])
    for i in range(len(positions)):
        job = dft / job_name(i)
        job.mkdir(exist_ok=True)
        atoms = base.copy()
        atoms.positions = positions[i]
        _write_structure(job / name, atoms, fmt, write_kwargs)
    n_jobs = len(positions)
    n_tasks = -(-n_jobs // jobs_per_task)
    command, output, out_fmt = _OUTPUT_HINTS.get(
        fmt, ("your-dft-code > output", "OUTPUT", "the output's ASE format"))
    dft_abs = dft.resolve()
    script = dft / JOBARRAY
    script.write_text(render_template(
        "dft_jobarray.sh.j2",
        n_jobs=n_jobs, jobs_per_task=jobs_per_task, n_tasks=n_tasks, input_file=name,
        format=fmt, reference_job=job_name(ref_index),
        plan_name=directory.resolve().name, plan_dir=str(directory.resolve()),
        dft_dir=shell_double_quoted(str(dft_abs)),
    ))
    script.chmod(0o755)
    (dft / README).write_text(_readme(directory.resolve(), n_jobs, n_tasks, jobs_per_task, name,
                                      fmt, command, output, out_fmt, job_name(ref_index)))
    manifest_path = directory / "plan.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        manifest.update(dft_format=fmt, dft_jobs=n_jobs, dft_input_file=name,
                        dft_jobs_per_task=jobs_per_task, dft_reference_job=job_name(ref_index),
                        dft_settings=None if settings is None else settings.provenance())
        write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    return DftJobs(directory=dft, n_jobs=n_jobs, input_file=name, format=fmt,
                   jobs_per_task=jobs_per_task, n_tasks=n_tasks)


def _readme(plan_dir: Path, n: int, n_tasks: int, per_task: int, name: str, fmt: str,
            command: str, output: str, out_fmt: str, reference_job: str) -> str:
    fmt_opt = f" --output-format {out_fmt}" if out_fmt in ("vasp-xml", "espresso-out",
                                                           "aims-output") else ""
    return f"""DFT jobs of the plan {plan_dir}
{'=' * (19 + len(str(plan_dir)))}

{n} job folders job_00000 .. {job_name(n - 1)}: one per configuration of the plan (the
number is the configuration index), each with {name}: the displaced supercell written by
ASE's '{fmt}' writer (same cell, species and atom order as the plan; atoms not wrapped).
{reference_job} holds the undisplaced supercell, whose forces and stress check that the
structure is at equilibrium with your settings (ask the code for the stress too).
Only the structure is there: add what your code needs (settings, k-points,
pseudopotentials) to common/, whose files jobarray.sh copies into every job folder.
Keep the cell and the positions fixed (a single-point force calculation) and converge
the forces tightly: finite differences of ~0.01 A amplify force noise.

Run
---
    cd {plan_dir / DFT_DIR}
    sbatch --array=0-{n_tasks - 1} --export=ALL,DFT_COMMAND="{command}" jobarray.sh
or  qsub -J 0-{n_tasks - 1} -v DFT_COMMAND="{command}" jobarray.sh
or  for i in $(seq 0 {n_tasks - 1}); do TASK_ID=$i DFT_COMMAND="{command}" bash jobarray.sh; done

({per_task} job folder(s) per array task; finished jobs are marked anharmbench.done and
skipped when resubmitted.)

Collect and fit
---------------
    anharmbench collect {plan_dir} --outputs 'dft/job_*/{output}'{fmt_opt}
    anharmbench derivatives {plan_dir}

collect reads every output with ASE, matches it to its configuration by its positions
(not by folder name), refuses truncated or foreign outputs without changing results.h5,
and lists the configurations still missing; run it again as more jobs finish.
"""
