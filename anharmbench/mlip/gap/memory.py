"""Peak memory of a gap_fit run, estimated before it starts, and the machine's memory.

``gap_fit`` keeps every descriptor of the training set with its derivatives in memory.
With the 6 A three-body term this dominates: each atom has ~60 neighbours within 6 A,
hence ~3,500 ordered neighbour pairs (``angle_3b`` instances), each stored with
derivatives with respect to its three atoms. :func:`estimate_gap_memory` counts the
descriptor instances on (a sample of) the training frames, sizes them the way gap_fit
does in its own "Memory Estimate" report (it matches that report to 1%), adds the
covariance matrices, and converts the sum to a peak resident set size with a linear
calibration measured on this machine (:data:`MEMORY_CALIBRATION`): peak RSS 1.28, 1.72
and 3.32 GB for 20 x 12, 3 x 96 and 6 x 96 atoms (2b + 3b at 6 A + SOAP), predicted
within 2%; with SOAP ``n_max=4, l_max=3`` it gives 3.7 and 11.2 GB for 10 and 30
frames of 96 atoms, the peaks measured there (3.7 and 11 GB). Memory grows linearly
with the number of training atoms: about 0.6 GB per 96-atom frame with the paper's
SOAP (``n_max=8, l_max=6``), 0.4 GB with the quick profile's.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from anharmbench.mlip.gap.config import GapConfig

__all__ = ["MEMORY_CALIBRATION", "MemoryEstimate", "estimate_gap_memory", "machine_memory"]

#: Fraction of the machine's memory a fit may plan to use.
MEMORY_HEADROOM = 0.9

#: Peak RSS of gap_fit = ``base + factor * (gap_fit-style estimate)``, in bytes. Fitted
#: to peaks measured here (quippy-ase 0.10.3, /usr/bin/time -v and /proc VmHWM):
#: gap_fit-style 0.70 / 0.97 / 1.95 GB -> peak RSS 1.28 / 1.72 / 3.32 GB.
MEMORY_CALIBRATION = {"base": 0.13e9, "factor": 1.64}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of a gap_fit run.

    Attributes
    ----------
    peak_bytes
        Estimated peak resident set size, bytes (calibrated).
    gap_fit_bytes
        The same quantity as gap_fit's own "Memory Estimate" (before calibration).
    terms
        Bytes of each descriptor term's data (``distance_2b``, ``angle_3b``, ``soap``)
        and of the covariance matrices, gap_fit-style.
    n_frames, n_atoms, n_observations
        Training frames, atoms, and fitted values (energies, force components, virials).
    n_sparse
        Sparse points of all GPs.
    """

    peak_bytes: float
    gap_fit_bytes: float
    terms: dict[str, float]
    n_frames: int
    n_atoms: int
    n_observations: int
    n_sparse: int

    @property
    def peak_gb(self) -> float:
        """:attr:`peak_bytes` in GB (1e9 bytes)."""
        return self.peak_bytes / 1e9

    def describe(self) -> str:
        """One line: total and the largest parts."""
        parts = ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in self.terms.items() if v > 0)
        return (
            f"{self.peak_gb:.2f} GB for {self.n_frames} frames / {self.n_atoms} atoms "
            f"({parts}; gap_fit-style {self.gap_fit_bytes / 1e9:.2f} GB)"
        )


def machine_memory() -> dict[str, float | None]:
    """Memory of this machine in bytes: ``total`` (``os.sysconf``), ``free`` (available
    now: ``MemAvailable`` of /proc/meminfo, else ``os.sysconf``) and ``cgroup_limit``
    (the container's limit, or ``None``)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = float(page * os.sysconf("SC_PHYS_PAGES"))
    try:
        free: float | None = float(page * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError):  # pragma: no cover - not on Linux
        free = None
    try:  # free + reclaimable cache (Linux); better than SC_AVPHYS_PAGES alone
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = float(line.split()[1]) * 1024.0
                break
    except (OSError, IndexError, ValueError):
        pass
    limit: float | None = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and float(text) < total:
            limit = float(text)
        break
    return {"total": total, "free": free, "cgroup_limit": limit}


def _neighbour_counts(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Neighbours of each atom within ``cutoff`` (periodic images included)."""
    from ase.neighborlist import neighbor_list

    i = neighbor_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms)).astype(float)


def estimate_gap_memory(
    frames: Sequence[Atoms], config: GapConfig, *, sample: int = 4
) -> MemoryEstimate:
    """Estimate gap_fit's peak memory for fitting ``frames`` with ``config``.

    Descriptor instances are counted on up to ``sample`` evenly spaced frames and
    scaled to all frames by their atom count: pairs within the 2b cutoff, ordered
    neighbour pairs within the 3b cutoff, one SOAP vector per atom. Each instance costs
    ``8 * dim * (1 + 9 * k)`` bytes for ``k`` atoms it depends on (gap_fit's own
    accounting); the covariance matrices cost ``8 M (3 N + 2 M)`` bytes for ``M`` sparse
    points and ``N`` fitted values. The sum is converted to a peak resident size with
    :data:`MEMORY_CALIBRATION`.

    Parameters
    ----------
    frames
        The training frames (cells with positions; labels are not needed).
    config
        The fit settings.
    sample
        Frames on which neighbours are counted.
    """
    if not frames:
        raise ValueError("no training frames to estimate the memory of")
    n_frames = len(frames)
    n_atoms = int(sum(len(a) for a in frames))
    species = sorted({s for a in frames for s in a.get_chemical_symbols()})
    ns = len(species)
    idx = np.unique(np.linspace(0, n_frames - 1, min(sample, n_frames)).round().astype(int))
    picked = [frames[int(i)] for i in idx]
    picked_atoms = sum(len(a) for a in picked)
    scale = n_atoms / picked_atoms

    terms: dict[str, float] = {}
    n_sparse = 0
    if config.two_body is not None:
        t = config.two_body
        pairs = sum(_neighbour_counts(a, t.cutoff).sum() for a in picked) * scale
        terms["distance_2b"] = 8.0 * pairs * 1 * (1 + 9 * 2)
        n_sparse += t.n_sparse * ns * (ns + 1) // 2
    if config.three_body is not None:
        t3 = config.three_body
        triples = 0.0
        for a in picked:
            c = _neighbour_counts(a, t3.cutoff)
            triples += float((c * (c - 1)).sum())
        terms["angle_3b"] = 8.0 * triples * scale * 3 * (1 + 9 * 3)
        n_sparse += t3.n_sparse * ns * ns * (ns + 1) // 2
    if config.soap is not None:
        ts = config.soap
        dim = ts.dimension(ns)
        neigh = sum(_neighbour_counts(a, ts.cutoff).sum() for a in picked) * scale
        terms["soap"] = 8.0 * dim * (n_atoms + 9 * (neigh + n_atoms))
        n_sparse += ts.n_sparse * ns
    n_virial = 6 if config.use_virials else 0
    n_obs = n_frames * (1 + n_virial) + 3 * n_atoms
    terms["covariance"] = 8.0 * n_sparse * (3 * n_obs + 2 * n_sparse)
    gap_fit_bytes = float(sum(terms.values()))
    peak = MEMORY_CALIBRATION["base"] + MEMORY_CALIBRATION["factor"] * gap_fit_bytes
    return MemoryEstimate(
        peak_bytes=peak,
        gap_fit_bytes=gap_fit_bytes,
        terms=terms,
        n_frames=n_frames,
        n_atoms=n_atoms,
        n_observations=int(n_obs),
        n_sparse=int(n_sparse),
    )


def _memory_allowance(config: GapConfig) -> tuple[float, str]:
    """Bytes a fit may use and a phrase saying where the limit comes from."""
    mem = machine_memory()
    total = float(mem["total"] or 0.0)
    limit = total
    what = f"this machine has {total / 1e9:.1f} GB (os.sysconf)"
    if mem["cgroup_limit"] is not None:
        limit = float(mem["cgroup_limit"])
        what += f", its container allows {limit / 1e9:.1f} GB"
    allowance = MEMORY_HEADROOM * limit
    what += f"; a fit may plan {MEMORY_HEADROOM:.0%} of it, {allowance / 1e9:.1f} GB"
    if config.memory_limit_gb is not None and config.memory_limit_gb * 1e9 < allowance:
        allowance = config.memory_limit_gb * 1e9
        what += f"; profile {config.profile!r} caps it at {config.memory_limit_gb:g} GB"
    return allowance, what


def _warn_if_busy(estimate: MemoryEstimate) -> None:
    """Warn when other jobs hold the memory or the CPUs gap_fit is about to need."""
    free = machine_memory()["free"]
    if free is not None and estimate.peak_bytes > free:
        warnings.warn(
            f"gap_fit needs about {estimate.peak_gb:.1f} GB but only {free / 1e9:.1f} GB are "
            "available now: other jobs hold the rest; gap_fit may be killed or swap",
            RuntimeWarning,
            stacklevel=3,
        )
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not available
        return
    cpus = os.cpu_count() or 1
    if load >= cpus:
        warnings.warn(
            f"the machine is busy (load average {load:.1f} on {cpus} CPUs): gap_fit is "
            "single-threaded and heavy; running it beside other heavy jobs slows both",
            RuntimeWarning,
            stacklevel=3,
        )


def _frames_that_fit(frames: Sequence[Atoms], config: GapConfig, allowance: float) -> int:
    """Largest number of (evenly spaced) frames whose estimate fits ``allowance``."""
    lo, hi = 0, len(frames)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        sub = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, mid).round().astype(int)]
        if estimate_gap_memory(sub, config).peak_bytes <= allowance:
            lo = mid
        else:
            hi = mid - 1
    return lo
