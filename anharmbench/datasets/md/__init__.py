"""Training datasets by molecular dynamics: IDMD (Taylor Hamiltonian) and reference MD.

Two datasets of the paper (section II), both written as extended XYZ with a manifest
and fixed splits (:mod:`anharmbench.datasets.io`):

* **IDMD** (:func:`run_idmd`, :mod:`.idmd`): NVE MD on the Taylor-series Hamiltonian
  (``pair_style taylor``) of the MD cell; a training trajectory (train + validation)
  and a test trajectory with another seed; labels are the Hamiltonian's own.
* **Reference MD** (:func:`run_refmd`, :mod:`.refmd`): NVT (Langevin) on the reference
  surface (CRG) at 2000 K and 3000 K in 3 S_C; labels from a static instance of the
  exact reference, the dynamics possibly on a cheaper surface (PPPM).

Both run their trajectories with :func:`run_trajectory` (:mod:`.trajectory`): in chunks
of ``checkpoint_every`` steps, frames appended to ``trajectories/<name>.xyz`` as they
come, a checkpoint after each chunk (:mod:`.checkpoint`). A later call with the same
settings continues from the last checkpoint (frames written after it are truncated and
recomputed) and reproduces the uninterrupted trajectory exactly. A runaway guard
(:mod:`.guard`, :class:`RunawayError`) stops a trajectory that leaves the region where
its Hamiltonian means something (a truncated expansion can be unbounded below).

Modules, one job each:

==================  ==================================================================
:mod:`.settings`    :class:`TrajectorySpec`, :class:`IDMDSettings`,
                    :class:`RefMDSettings`; seeds and fingerprints
:mod:`.results`     :class:`TrajectoryResult`, :class:`DatasetResult`
:mod:`.initial`     initial state: :func:`harmonic_displacements`, velocities
:mod:`.engine`      the LAMMPS instance: setup, per-atom arrays, thermo, labelled frames
:mod:`.schedule`    trajectory length, chunks, frame steps, next event
:mod:`.guard`       the runaway guard
:mod:`.statistics`  :func:`integrated_autocorrelation_time`, automatic stride, summary
:mod:`.checkpoint`  the state of a trajectory, saved and loaded
:mod:`.trajectory`  :func:`run_trajectory`
:mod:`.directory`   the dataset directory: claim/continue, manifest, splits
:mod:`.idmd`        :func:`run_idmd`
:mod:`.refmd`       :func:`run_refmd`
==================  ==================================================================
"""

from anharmbench.datasets.md.guard import RunawayError
from anharmbench.datasets.md.idmd import run_idmd
from anharmbench.datasets.md.initial import harmonic_displacements
from anharmbench.datasets.md.refmd import run_refmd
from anharmbench.datasets.md.results import DatasetResult, TrajectoryResult
from anharmbench.datasets.md.settings import (
    CRG_A0,
    IDMDSettings,
    RefMDSettings,
    TrajectorySpec,
)
from anharmbench.datasets.md.statistics import integrated_autocorrelation_time
from anharmbench.datasets.md.trajectory import run_trajectory

__all__ = [
    "CRG_A0",
    "DatasetResult",
    "IDMDSettings",
    "RefMDSettings",
    "RunawayError",
    "TrajectoryResult",
    "TrajectorySpec",
    "harmonic_displacements",
    "integrated_autocorrelation_time",
    "run_idmd",
    "run_refmd",
    "run_trajectory",
]
