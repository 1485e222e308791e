"""Checkpoints of a trajectory: its whole state, saved atomically and loaded to resume.

A checkpoint (``<name>.ckpt.npz``, plain arrays, no pickles) holds the raw LAMMPS
positions and velocities, the step, the frame count and the byte offset of the frame
file, the thermo and equilibration histories and the automatic stride, under the
fingerprint of the trajectory's settings and potentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CHECKPOINT_FORMAT", "TrajectoryState", "load_state"]

CHECKPOINT_FORMAT = "anharmbench-md-checkpoint-1"


@dataclass
class TrajectoryState:
    """Where a trajectory is: everything a resumed run needs to continue it exactly.

    Attributes
    ----------
    fingerprint
        :meth:`~anharmbench.datasets.md.TrajectorySpec.fingerprint` of the run.
    step, n_frames, offset
        MD steps done, frames written, bytes of the frame file holding them.
    x, v
        ``(N, 3)`` raw LAMMPS positions and velocities at ``step`` (``None``: not started).
    thermo
        Rows ``[step, temp, pe, ke, etotal]`` (K, eV).
    pe_hist, u_hist
        Potential energies (eV) and ``(3N,)`` displacement fields (Angstrom) sampled in
        the second half of the equilibration (automatic stride).
    tau_u, tau
        Autocorrelation times of the displacements and of the potential energy, steps.
    stride
        Steps between frames (0: automatic and not chosen yet).
    etot0
        Total energy at step 0, eV (NVE drift).
    max_disp
        Largest displacement from the reference seen by the guard, Angstrom.
    frame_temps
        Temperature of every frame written, K.
    seconds
        Wall time of all calls so far.
    done
        The trajectory is complete.
    """

    fingerprint: str
    step: int = 0
    n_frames: int = 0
    offset: int = 0
    x: np.ndarray | None = None
    v: np.ndarray | None = None
    thermo: list[list[float]] = field(default_factory=list)  # step temp pe ke etotal
    pe_hist: list[float] = field(default_factory=list)
    u_hist: list[np.ndarray] = field(default_factory=list)
    tau_u: float = float("nan")
    stride: int = 0
    tau: float = float("nan")
    etot0: float = float("nan")
    max_disp: float = float("nan")
    frame_temps: list[float] = field(default_factory=list)
    seconds: float = 0.0
    done: bool = False

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically (temporary file, then rename)."""
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            format=np.array(CHECKPOINT_FORMAT),
            fingerprint=np.array(self.fingerprint),
            ints=np.array([self.step, self.n_frames, self.offset, self.stride, int(self.done)]),
            floats=np.array([self.tau, self.etot0, self.max_disp, self.seconds, self.tau_u]),
            x=np.zeros(0) if self.x is None else self.x,
            v=np.zeros(0) if self.v is None else self.v,
            thermo=np.array(self.thermo, dtype=float).reshape(-1, 5),
            pe_hist=np.array(self.pe_hist, dtype=float),
            u_hist=np.array(self.u_hist, dtype=float),
            frame_temps=np.array(self.frame_temps, dtype=float),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrajectoryState:
        """Read a state written by :meth:`save`."""
        with np.load(path) as d:
            if str(d["format"]) != CHECKPOINT_FORMAT:
                raise ValueError(f"{path} is not an anharmbench MD checkpoint")
            step, n_frames, offset, stride, done = (int(v) for v in d["ints"])
            tau, etot0, max_disp, seconds, tau_u = (float(v) for v in d["floats"])
            return cls(
                fingerprint=str(d["fingerprint"]),
                step=step,
                n_frames=n_frames,
                offset=offset,
                x=d["x"].copy() if d["x"].size else None,
                v=d["v"].copy() if d["v"].size else None,
                thermo=d["thermo"].tolist(),
                pe_hist=d["pe_hist"].tolist(),
                u_hist=list(d["u_hist"]),
                tau_u=tau_u,
                stride=stride,
                tau=tau,
                etot0=etot0,
                max_disp=max_disp,
                frame_temps=d["frame_temps"].tolist(),
                seconds=seconds,
                done=bool(done),
            )


def load_state(path: Path, fingerprint: str, stride: int) -> TrajectoryState:
    """The state saved at ``path``, or a fresh one when there is no checkpoint.

    Raises
    ------
    ValueError
        When the checkpoint belongs to a run of other settings or another potential.
    """
    if not path.is_file():
        return TrajectoryState(fingerprint=fingerprint, stride=stride)
    state = TrajectoryState.load(path)
    if state.fingerprint != fingerprint:
        raise ValueError(
            f"{path} belongs to a run with other settings or another potential; "
            "use another directory or start again (overwrite)"
        )
    return state
