"""The step schedule of a trajectory: its length, its chunks, and when something happens.

Steps ``1 .. equilibration_steps`` write no frames; frames follow every ``stride`` steps
(``spec.stride``, or the automatic stride once the equilibration has chosen it). The
trajectory runs in chunks that end at multiples of ``checkpoint_every`` and at the end of
the equilibration; inside a chunk LAMMPS runs from one event (thermo record, guard check,
equilibration sample, frame) to the next.
"""

from __future__ import annotations

from anharmbench.datasets.md.checkpoint import TrajectoryState
from anharmbench.datasets.md.settings import TrajectorySpec

__all__ = ["chunk_end", "equilibration_window", "is_frame_step", "next_event", "total_steps"]


def total_steps(spec: TrajectorySpec, state: TrajectoryState) -> int:
    """Steps of the whole trajectory (a lower bound while the automatic stride is unknown)."""
    stride = spec.stride or state.stride
    if not stride:  # automatic stride not known yet: at least the equilibration
        return spec.equilibration_steps + spec.n_frames * spec.min_stride
    return spec.equilibration_steps + spec.n_frames * stride


def chunk_end(spec: TrajectorySpec, state: TrajectoryState) -> int:
    """Last step of the chunk that starts at ``state.step`` (a checkpoint follows it)."""
    chunk = state.step // spec.checkpoint_every
    end = min((chunk + 1) * spec.checkpoint_every, total_steps(spec, state))
    if state.step < spec.equilibration_steps:
        end = min(end, spec.equilibration_steps)
    return end


def equilibration_window(spec: TrajectorySpec) -> tuple[int, int]:
    """``(window, u_every)``: the equilibration's last ``window`` steps are sampled for the
    automatic stride, the potential energy every step, the displacements every
    ``u_every`` steps (at most ~500 samples of the ``(3N,)`` field)."""
    window = min(spec.equilibration_steps // 2, 4000)
    return window, max(1, window // 500)


def is_frame_step(spec: TrajectorySpec, state: TrajectoryState, step: int) -> bool:
    """Whether a frame is written at ``step``."""
    stride = spec.stride or state.stride
    if not stride or step <= spec.equilibration_steps:
        return False
    k, r = divmod(step - spec.equilibration_steps, stride)
    return r == 0 and 1 <= k <= spec.n_frames


def next_event(
    spec: TrajectorySpec, state: TrajectoryState, step: int, end: int, window: int
) -> int:
    """Next step at which something happens (check, frame, PE sample, chunk end)."""
    nxt = min(
        end,
        (step // spec.thermo_every + 1) * spec.thermo_every,
        (step // spec.guard_every + 1) * spec.guard_every,
    )
    eq_end = spec.equilibration_steps
    if window > 0 and eq_end - window <= step + 1 <= eq_end:
        nxt = min(nxt, step + 1)
    elif window > 0 and step + 1 < eq_end - window:
        nxt = min(nxt, eq_end - window)
    stride = spec.stride or state.stride
    if stride and step >= eq_end:
        k = (step - eq_end) // stride + 1
        nxt = min(nxt, eq_end + k * stride)
    return max(nxt, step + 1)
