"""Running a plan's DFT jobs on this machine: ``anharmbench dft run PLAN --command CMD``.

The local counterpart of ``dft/jobarray.sh`` (Slurm/PBS), with the same folder contract:
the files of ``dft/common/`` are copied into a job folder, ``CMD`` runs there through
``bash -c``, and a finished job gets ``anharmbench.done`` and is never run again. Jobs
run several at a time (``jobs``), with a progress bar.

What this adds to the script: a job counts as finished only when its output is complete
and converged (:func:`anharmbench.dft.outputs.read_output` reads it as ``collect``
will); otherwise it gets ``anharmbench.failed`` with the reason and is reported, and it
is run again only when asked (``rerun_failed``), so a crashed or unconverged job is never
silently taken or silently retried. A run interrupted (Ctrl-C, a killed process) leaves
the running jobs without a marker: the next run starts them again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from anharmbench.dft.inputs import DFT_DIR, job_name
from anharmbench.errors import InputError

__all__ = ["DONE", "FAILED", "RunReport", "default_command", "run_jobs"]

DONE = "anharmbench.done"
FAILED = "anharmbench.failed"
LOG = "anharmbench.log"

#: Per input format: the command that runs the code on the job's input, its output file,
#: and the ASE format to read it (the runner checks the output as ``collect`` will).
_CODES = {
    "espresso-in": ("pw.x -in espresso.pwi > espresso.pwo", "espresso.pwo", "espresso-out"),
    "vasp": ("vasp_std", "vasprun.xml", "vasp-xml"),
    "aims": ("aims.x > aims.out", "aims.out", "aims-output"),
}


@dataclass
class RunReport:
    """What :func:`run_jobs` did.

    Attributes
    ----------
    ran, skipped, failed
        Job folder names run and finished now, finished before, failed now or before
        (with the reason).
    """

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.ran)} job(s) run, {len(self.skipped)} finished before, "
                 f"{len(self.failed)} failed"]
        for name, why in sorted(self.failed.items()):
            lines.append(f"  {name}: {why}")
        if self.failed:
            lines.append("  (rerun them with --rerun-failed once the cause is fixed)")
        return "\n".join(lines)


def default_command(fmt: str) -> str | None:
    """The command that runs the code on a job folder's input (``None``: unknown)."""
    return _CODES.get(fmt, (None,))[0]


def _manifest(plan_dir: Path) -> dict:
    path = plan_dir / "plan.json"
    if not path.is_file():
        raise InputError(f"{plan_dir} is not a plan directory (no plan.json); give the folder "
                         "'anharmbench plan --format FMT --out DIR' wrote")
    manifest = json.loads(path.read_text())
    if "dft_jobs" not in manifest:
        raise InputError(f"{plan_dir} has no DFT jobs; write them with 'anharmbench plan ... "
                         "--format FMT --dft-settings FILE --out DIR'")
    return manifest


def _check_job(job: Path, output: str | None, out_fmt: str | None) -> str | None:
    """Why the finished command's output is not usable, or ``None``."""
    if output is None:
        return None
    from anharmbench.dft.outputs import OutputError, read_output

    try:
        read_output(job / output, out_fmt)
    except OutputError as exc:
        return str(exc).replace(str(job) + "/", "")
    return None


def run_jobs(
    plan_dir: str | Path,
    command: str | None = None,
    *,
    jobs: int = 1,
    rerun_failed: bool = False,
    only: Sequence[int] | None = None,
    output: str | None = None,
    output_format: str | None = None,
    progress: bool = True,
) -> RunReport:
    """Run the DFT jobs of a plan directory here.

    Parameters
    ----------
    plan_dir
        A plan written with ``--format`` (``plan.json`` lists its DFT jobs).
    command
        Run through ``bash -c`` in each job folder (default: the code's usual command for
        the plan's format, e.g. ``pw.x -in espresso.pwi > espresso.pwo``).
    jobs
        Jobs run at once (each gets ``OMP_NUM_THREADS = cores / jobs`` unless set).
    rerun_failed
        Run again the jobs marked failed by an earlier run.
    only
        Job indices to run (default: all).
    output, output_format
        The output file a job writes and its ASE format, checked before a job counts as
        finished (default: the format's, e.g. ``espresso.pwo``, ``espresso-out``).
    progress
        Show a progress bar.

    Returns
    -------
    RunReport

    Raises
    ------
    InputError
        Not a DFT plan, no command for its format, or ``jobs < 1``.
    """
    from tqdm.auto import tqdm

    plan_dir = Path(plan_dir)
    manifest = _manifest(plan_dir)
    fmt = manifest.get("dft_format", "")
    code = _CODES.get(fmt)
    command = command or (code[0] if code else None)
    if command is None:
        raise InputError(f"no known command for format {fmt!r}; give --command 'CMD' (run in "
                         "each job folder through bash -c)")
    if output is None and code is not None:
        output, output_format = code[1], output_format or code[2]
    if jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    dft = plan_dir / DFT_DIR
    names = [job_name(i) for i in (range(int(manifest["dft_jobs"])) if only is None else only)]
    report = RunReport()
    todo = []
    for name in names:
        job = dft / name
        if not job.is_dir():
            raise InputError(f"{job} does not exist; the plan's dft/ folder is incomplete")
        if (job / DONE).is_file():
            report.skipped.append(name)
        elif (job / FAILED).is_file() and not rerun_failed:
            report.failed[name] = (job / FAILED).read_text().strip() + " (earlier run)"
        else:
            todo.append(job)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    running: dict[Path, subprocess.Popen] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def run_one(job: Path) -> tuple[Path, str | None]:
        (job / FAILED).unlink(missing_ok=True)
        for f in sorted((dft / "common").glob("*")):
            if not (job / f.name).exists():
                (shutil.copytree if f.is_dir() else shutil.copy2)(f, job / f.name)
        with open(job / LOG, "w") as log:
            proc = subprocess.Popen(["bash", "-c", command], cwd=job, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            with lock:
                running[job] = proc
            status = proc.wait()
            with lock:
                running.pop(job, None)
        if stop.is_set():
            return job, None  # interrupted: no marker, run again next time
        why = (f"'{command}' exited with status {status} (see {LOG})" if status != 0
               else _check_job(job, output, output_format))
        (job / (FAILED if why else DONE)).write_text((why or "ok") + "\n")
        return job, why

    bar = tqdm(total=len(todo), desc=f"DFT jobs of {plan_dir.name}", unit="job",
               disable=not progress or not todo)
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = []
    try:
        futures = [pool.submit(run_one, job) for job in todo]
        for fut in as_completed(futures):
            job, why = fut.result()
            if stop.is_set():
                continue
            if why:
                report.failed[job.name] = why
            else:
                report.ran.append(job.name)
            bar.update()
    except BaseException:
        stop.set()  # Ctrl-C: stop the running codes, mark nothing
        with lock:
            for proc in running.values():
                os.killpg(proc.pid, signal.SIGTERM)
        for fut in futures:
            fut.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return report
