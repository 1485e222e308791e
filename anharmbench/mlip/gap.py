"""Gaussian approximation potentials: training with ``gap_fit``, deployment in LAMMPS.

The first MLIP class of the paper. A GAP is fitted by QUIP's ``gap_fit`` (shipped by the
``quippy-ase`` wheel, ``pip install -e '.[gap]'``) and evaluated by the project's LAMMPS
plugin ``pair_style quip`` (``plugins/quip``), so the ASE calculator, the batch evaluator,
the displacement generator's decks and MD all run the same model through one path.

* :class:`GapConfig` -- typed training settings. The default (:meth:`GapConfig.paper`)
  holds the paper's descriptors: ``distance_2b`` and ``angle_3b`` with a 6 A cutoff and
  SOAP with a 4 A cutoff; :meth:`GapConfig.quick` is a smaller model that stays under
  12 GB. Every field (sparse points, sigmas, ``e0``, ...) can be overridden.
* :func:`estimate_gap_memory` -- the peak memory ``gap_fit`` will need (calibrated on
  this machine, see below); :func:`train_gap` refuses to start when it cannot fit.
* :func:`train_gap` -- builds the ``gap_fit`` argument list (no shell), runs it with a
  progress line, and writes a model directory:

  =====================  ==========================================================
  ``gap.xml``            the model (sparse points inside the file)
  ``train.xyz``          the frames it was fitted to
  ``gap_fit.log``        gap_fit's output
  ``command.json``       the exact argument list (``command.txt``: shell-quoted)
  ``gap_model.json``     configuration, e0, dataset, memory estimate, measured peak
                         memory and time, software versions
  =====================  ==========================================================

* :func:`gap_potential` -- the :class:`~anharmbench.potentials.spec.LammpsPotential`
  (``pair_style quip``, ``pair_coeff * * gap.xml "IP GAP" Z...``) of a model.
* :func:`gap_parity` -- energy/force parity on a dataset split (data and plot).

Memory
------
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

import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.io import write

from anharmbench.datasets.io import file_sha256, software_versions, write_json_atomic
from anharmbench.mlip.data import DatasetSplits, load_splits
from anharmbench.mlip.parity import ParityResult, evaluate_parity, write_parity
from anharmbench.potentials.spec import LammpsPotential

__all__ = [
    "AngleThreeBody",
    "DistanceTwoBody",
    "GapConfig",
    "GapError",
    "GapFitError",
    "GapMemoryError",
    "GapModel",
    "GapModelError",
    "MemoryEstimate",
    "Soap",
    "estimate_gap_memory",
    "find_gap_fit",
    "gap_argv",
    "gap_parity",
    "gap_potential",
    "load_gap_model",
    "machine_memory",
    "model_species",
    "train_gap",
]

#: File names inside a model directory.
MODEL_XML = "gap.xml"
MODEL_RECORD = "gap_model.json"
TRAIN_XYZ = "train.xyz"
LOG_FILE = "gap_fit.log"
COMMAND_JSON = "command.json"
COMMAND_TXT = "command.txt"
#: Lines of gap_fit's log quoted in an error.
LOG_TAIL_LINES = 30
#: Fraction of the machine's memory a fit may plan to use.
MEMORY_HEADROOM = 0.9

#: Peak RSS of gap_fit = ``base + factor * (gap_fit-style estimate)``, in bytes. Fitted
#: to peaks measured here (quippy-ase 0.10.3, /usr/bin/time -v and /proc VmHWM):
#: gap_fit-style 0.70 / 0.97 / 1.95 GB -> peak RSS 1.28 / 1.72 / 3.32 GB.
MEMORY_CALIBRATION = {"base": 0.13e9, "factor": 1.64}


class GapError(RuntimeError):
    """Base class of the errors of this module."""


class GapFitError(GapError):
    """``gap_fit`` is missing or failed; the message quotes the tail of its log."""


class GapMemoryError(GapError):
    """The estimated peak memory of a fit exceeds what this machine (or the profile) allows."""


class GapModelError(ValueError):
    """A model file is not a GAP xml, or does not describe the requested species."""


# ------------------------------------------------------------------------ config
@dataclass(frozen=True)
class DistanceTwoBody:
    """``distance_2b`` descriptor: a pair distance (one GP per pair of species).

    Attributes
    ----------
    cutoff, cutoff_transition_width
        Angstrom.
    delta
        Prior energy scale of this term, eV.
    theta_uniform
        Length scale of the squared-exponential kernel, Angstrom.
    n_sparse
        Sparse points per species pair.
    sparse_method
        gap_fit's ``sparse_method`` (``uniform`` suits a 1-D descriptor).
    """

    cutoff: float = 6.0
    cutoff_transition_width: float = 1.0
    delta: float = 1.0
    theta_uniform: float = 1.0
    n_sparse: int = 50
    sparse_method: str = "uniform"

    kind = "distance_2b"

    def descriptor(self) -> str:
        """The descriptor's gap_fit string."""
        return (
            f"distance_2b cutoff={_num(self.cutoff)} "
            f"cutoff_transition_width={_num(self.cutoff_transition_width)} "
            f"covariance_type=ard_se delta={_num(self.delta)} "
            f"theta_uniform={_num(self.theta_uniform)} n_sparse={int(self.n_sparse)} "
            f"sparse_method={self.sparse_method} add_species=T"
        )


@dataclass(frozen=True)
class AngleThreeBody:
    """``angle_3b`` descriptor: a centre and two neighbours (one GP per species triple).

    Attributes
    ----------
    cutoff, cutoff_transition_width
        Angstrom.
    delta
        Prior energy scale, eV.
    theta_fac
        Kernel length scales as a fraction of each descriptor component's range.
    n_sparse
        Sparse points per species triple.
    sparse_method
        gap_fit's ``sparse_method``.
    """

    cutoff: float = 6.0
    cutoff_transition_width: float = 1.0
    delta: float = 0.1
    theta_fac: float = 0.5
    n_sparse: int = 200
    sparse_method: str = "random"

    kind = "angle_3b"

    def descriptor(self) -> str:
        """The descriptor's gap_fit string."""
        return (
            f"angle_3b cutoff={_num(self.cutoff)} "
            f"cutoff_transition_width={_num(self.cutoff_transition_width)} "
            f"covariance_type=ard_se delta={_num(self.delta)} theta_fac={_num(self.theta_fac)} "
            f"n_sparse={int(self.n_sparse)} sparse_method={self.sparse_method} add_species=T"
        )


@dataclass(frozen=True)
class Soap:
    """SOAP descriptor of an atom's neighbourhood (one GP per centre species).

    Attributes
    ----------
    cutoff, cutoff_transition_width, atom_sigma
        Angstrom.
    n_max, l_max
        Radial and angular basis sizes.
    zeta
        Exponent of the dot-product kernel.
    delta
        Prior energy scale, eV.
    n_sparse
        Sparse points per centre species.
    sparse_method
        gap_fit's ``sparse_method``.
    """

    cutoff: float = 4.0
    cutoff_transition_width: float = 0.5
    n_max: int = 8
    l_max: int = 6
    atom_sigma: float = 0.5
    zeta: float = 4.0
    delta: float = 0.1
    n_sparse: int = 1000
    sparse_method: str = "cur_points"

    kind = "soap"

    def descriptor(self) -> str:
        """The descriptor's gap_fit string."""
        return (
            f"soap cutoff={_num(self.cutoff)} "
            f"cutoff_transition_width={_num(self.cutoff_transition_width)} "
            f"n_max={int(self.n_max)} l_max={int(self.l_max)} "
            f"atom_sigma={_num(self.atom_sigma)} zeta={_num(self.zeta)} delta={_num(self.delta)} "
            f"covariance_type=dot_product n_sparse={int(self.n_sparse)} "
            f"sparse_method={self.sparse_method} add_species=T"
        )

    def dimension(self, n_species: int) -> int:
        """Length of the SOAP vector for ``n_species`` species (QUIP's formula)."""
        nm = self.n_max * n_species
        return (self.l_max + 1) * nm * (nm + 1) // 2 + 1


_TERMS: dict[str, type] = {
    "two_body": DistanceTwoBody,
    "three_body": AngleThreeBody,
    "soap": Soap,
}


@dataclass(frozen=True)
class GapConfig:
    """Settings of one GAP fit.

    Attributes
    ----------
    two_body, three_body, soap
        The descriptors; ``None`` leaves a term out.
    energy_sigma
        Expected energy error, eV/atom (gap_fit's ``default_sigma``, per atom).
    force_sigma
        Expected force error, eV/Angstrom.
    virial_sigma
        Expected virial error, eV/atom.
    use_virials
        Fit the virials of the frames (``virial`` key of the dataset).
    e0
        Energy per atom subtracted before fitting: ``"average"`` (the mean energy per
        atom of the training frames, for every species; the datasets hold no isolated
        atoms), one number for every species, or ``{symbol: eV}``.
    sparse_jitter
        Regulariser of the sparse covariance matrix.
    max_frames, max_atoms
        Fit to at most this many training frames / atoms (a seeded random subset of the
        training split); ``None``: no limit.
    memory_limit_gb
        Refuse to start when the estimated peak exceeds this (besides the machine's
        memory); ``None``: the machine's memory only.
    seed
        Seed of the frame subset and of gap_fit's random sparse-point choice.
    profile
        Name recorded with the model.
    """

    two_body: DistanceTwoBody | None = field(default_factory=DistanceTwoBody)
    three_body: AngleThreeBody | None = field(default_factory=AngleThreeBody)
    soap: Soap | None = field(default_factory=Soap)
    energy_sigma: float = 0.001
    force_sigma: float = 0.01
    virial_sigma: float = 0.05
    use_virials: bool = True
    e0: str | float | Mapping[str, float] = "average"
    sparse_jitter: float = 1e-8
    max_frames: int | None = None
    max_atoms: int | None = None
    memory_limit_gb: float | None = None
    seed: int = 2024
    profile: str = "custom"

    def __post_init__(self) -> None:
        # descriptor settings may come as plain mappings (JSON, YAML study configs)
        for key, kind in _TERMS.items():
            value = getattr(self, key)
            if isinstance(value, Mapping):
                object.__setattr__(self, key, _term_from_mapping(kind, key, value))
        if isinstance(self.e0, Mapping):
            object.__setattr__(self, "e0", dict(self.e0))
        self.validate()

    @classmethod
    def _profile(cls, base: dict[str, Any], overrides: Mapping[str, Any]) -> GapConfig:
        """``base`` updated by ``overrides``; a mapping given for a descriptor changes
        only the named fields of the profile's descriptor."""
        allowed = {f.name for f in fields(cls)}
        unknown = set(overrides) - allowed
        if unknown:
            raise ValueError(
                f"unknown GapConfig key(s) {sorted(unknown)}; allowed {sorted(allowed)}"
            )
        merged = dict(base)
        for key, value in overrides.items():
            if key in _TERMS and isinstance(value, Mapping):
                current = merged.get(key) or _TERMS[key]()
                known = {f.name for f in fields(_TERMS[key])}
                bad = set(value) - known
                if bad:
                    raise ValueError(f"unknown {key} key(s) {sorted(bad)}; allowed {sorted(known)}")
                merged[key] = replace(current, **dict(value))
            else:
                merged[key] = value
        return cls(**merged)

    @classmethod
    def paper(cls, **overrides: Any) -> GapConfig:
        """The paper's descriptors: 2b and 3b at 6 A, SOAP at 4 A; all training frames.

        With a few hundred frames of 96+ atoms this needs far more memory than a
        workstation has (~0.6 GB per 96-atom frame); :func:`train_gap` then refuses and
        says how many frames fit (set ``max_frames``). ``overrides`` replace fields; a
        mapping for ``two_body``/``three_body``/``soap`` changes only the fields it names,
        ``None`` drops that descriptor.
        """
        return cls._profile({"profile": "paper"}, overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> GapConfig:
        """Same descriptors, fewer sparse points and SOAP channels, at most 1920 atoms.

        1920 atoms is 20 frames of 96 atoms (or 160 of 12); the estimate is about
        8.5 GB for 96-atom frames and the profile refuses anything above 12 GB.
        """
        base: dict[str, Any] = {
            "two_body": DistanceTwoBody(n_sparse=20),
            "three_body": AngleThreeBody(n_sparse=50),
            "soap": Soap(n_max=6, l_max=4, n_sparse=200),
            "max_atoms": 1920,
            "memory_limit_gb": 12.0,
            "profile": "quick",
        }
        return cls._profile(base, overrides)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        terms = self.terms()
        if not terms:
            raise ValueError("a GAP needs at least one descriptor (two_body, three_body, soap)")
        for term in terms:
            for f in fields(term):
                value = getattr(term, f.name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    if not math.isfinite(value) or value < 0:
                        raise ValueError(f"{term.kind}.{f.name} must be finite and >= 0: {value}")
            if not re.fullmatch(r"[a-z_]+", term.sparse_method):
                raise ValueError(f"{term.kind}.sparse_method {term.sparse_method!r} is malformed")
            if term.cutoff <= 0 or term.n_sparse < 1:
                raise ValueError(f"{term.kind} needs cutoff > 0 and n_sparse >= 1")
            if term.cutoff_transition_width >= term.cutoff:
                raise ValueError(
                    f"{term.kind}: cutoff_transition_width {term.cutoff_transition_width} must "
                    f"be smaller than the cutoff {term.cutoff}"
                )
        for name in ("energy_sigma", "force_sigma", "virial_sigma", "sparse_jitter"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        for name in ("max_frames", "max_atoms"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if self.memory_limit_gb is not None and not self.memory_limit_gb > 0:
            raise ValueError(f"memory_limit_gb must be > 0 or None, got {self.memory_limit_gb}")
        if isinstance(self.e0, str):
            if self.e0 != "average":
                raise ValueError(f"e0 must be 'average', a number or {{symbol: eV}}: {self.e0!r}")
        elif isinstance(self.e0, Mapping):
            for sym, value in self.e0.items():
                if sym not in atomic_numbers or not math.isfinite(float(value)):
                    raise ValueError(f"e0 entry {sym!r}: {value!r} is not element: finite eV")
        elif not math.isfinite(float(self.e0)):
            raise ValueError(f"e0 must be finite, got {self.e0}")

    def terms(self) -> list[DistanceTwoBody | AngleThreeBody | Soap]:
        """The descriptors in use, in gap_fit order."""
        return [t for t in (self.two_body, self.three_body, self.soap) if t is not None]

    def cutoff(self) -> float:
        """The model's cutoff (largest descriptor cutoff), Angstrom."""
        return max(t.cutoff for t in self.terms())

    def gap_string(self) -> str:
        """gap_fit's ``gap={...}`` value: the descriptors joined by ``:``."""
        return "{" + " : ".join(t.descriptor() for t in self.terms()) + "}"

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        out = asdict(self)
        if isinstance(self.e0, Mapping):
            out["e0"] = dict(self.e0)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GapConfig:
        """Build from :meth:`to_dict` output; unknown keys are rejected."""
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"unknown GapConfig key(s) {sorted(unknown)}; allowed {sorted(allowed)}"
            )
        return cls(**dict(data))

    def with_(self, **changes: Any) -> GapConfig:
        """A copy with some fields replaced (validated)."""
        return replace(self, **changes)


def _term_from_mapping(kind: type, key: str, value: Mapping[str, Any]) -> Any:
    """A descriptor dataclass from a mapping of its fields (unknown keys rejected)."""
    known = {f.name for f in fields(kind)}
    bad = set(value) - known
    if bad:
        raise ValueError(f"unknown {key} key(s) {sorted(bad)}; allowed {sorted(known)}")
    return kind(**dict(value))


def _num(value: float) -> str:
    """A float for a gap_fit string: shortest exact form."""
    return repr(float(value))


# ------------------------------------------------------------------------ memory
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


# ------------------------------------------------------------------------ gap_fit
def find_gap_fit() -> str:
    """Path of the ``gap_fit`` executable (the quippy-ase wheel's, else on ``PATH``).

    Raises
    ------
    GapFitError
        When quippy-ase is not installed.
    """
    spec = importlib.util.find_spec("quippy")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            exe = Path(root) / "gap_fit"
            if exe.is_file() and os.access(exe, os.X_OK):
                return str(exe)
    exe = shutil.which("gap_fit") or shutil.which("gap_fit", path=str(Path(sys.executable).parent))
    if exe is None:
        raise GapFitError(
            "gap_fit was not found: it comes with the quippy-ase wheel; install it with "
            "pip install -e '.[gap]' (or make setup)"
        )
    return exe


def _e0_values(config: GapConfig, frames: Sequence[Atoms], species: Sequence[str]) -> dict:
    """e0 per species, eV/atom."""
    if isinstance(config.e0, str):  # "average"
        per_atom = [float(a.calc.results["energy"]) / len(a) for a in frames]  # type: ignore[union-attr]
        value = float(np.mean(per_atom))
        return {s: value for s in species}
    if isinstance(config.e0, Mapping):
        missing = [s for s in species if s not in config.e0]
        if missing:
            raise ValueError(f"e0 has no value for {missing} (training species {list(species)})")
        return {s: float(config.e0[s]) for s in species}
    return {s: float(config.e0) for s in species}


def gap_argv(
    config: GapConfig,
    *,
    gap_fit: str,
    train_file: str,
    model_file: str,
    e0: Mapping[str, float],
) -> list[str]:
    """The argument list of one gap_fit run (each ``key=value`` one argument).

    Energies, forces and virials are read from the dataset's keys ``energy``, ``forces``
    and ``virial`` (:mod:`anharmbench.datasets.io`); with ``use_virials=False`` the
    virial and stress keys point at names the frames do not have.
    """
    e0_text = "{" + ":".join(f"{s}:{_num(v)}" for s, v in e0.items()) + "}"
    sigma = (
        "{"
        + " ".join(_num(v) for v in (config.energy_sigma, config.force_sigma, config.virial_sigma))
        + " 0.0}"
    )
    virial_key = "virial" if config.use_virials else "no_virial_fitted"
    return [
        gap_fit,
        f"at_file={train_file}",
        f"gap={config.gap_string()}",
        f"e0={e0_text}",
        f"default_sigma={sigma}",
        f"sparse_jitter={_num(config.sparse_jitter)}",
        "energy_parameter_name=energy",
        "force_parameter_name=forces",
        f"virial_parameter_name={virial_key}",
        "stress_parameter_name=no_stress_fitted",
        "config_type_parameter_name=config_type",
        "sparse_separate_file=F",
        "do_copy_at_file=F",
        f"rnd_seed={int(config.seed) % 2**31}",
        f"gap_file={model_file}",
    ]


def _select_frames(frames: list[Atoms], config: GapConfig) -> list[int]:
    """Indices of the training frames to fit (a seeded subset when limited)."""
    n = len(frames)
    keep = n
    if config.max_frames is not None:
        keep = min(keep, int(config.max_frames))
    if config.max_atoms is not None:
        per_frame = max(1.0, float(np.mean([len(a) for a in frames])))
        keep = min(keep, max(1, int(config.max_atoms // per_frame)))
    if keep >= n:
        return list(range(n))
    rng = np.random.default_rng(config.seed)
    return sorted(int(i) for i in rng.choice(n, size=keep, replace=False))


def _stage(log: Path, n_coordinates: list[int]) -> str:
    """A short description of what gap_fit is doing, from the end of its log."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            tail = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return "starting"
    if not n_coordinates[0]:
        try:
            text = log.read_text(errors="replace")
            n_coordinates[0] = text.count("New GAP:")
        except OSError:
            pass
    for line in reversed(tail):
        line = line.strip()
        if line.startswith("Started sparse covariance matrix calculation of coordinate"):
            k = line.rsplit(" ", 1)[-1]
            total = n_coordinates[0] or "?"
            return f"covariance {k}/{total}"
        if line.startswith(("Started CUR", "Finished CUR")):
            return "choosing sparse points (CUR)"
        if "Solve linear system" in line or "Using LAPACK" in line:
            return "solving"
        if line.startswith("Number of descriptors") or "Memory Estimate" in line:
            return "descriptors"
        if line.startswith("XYZ file read") or line.startswith("Descriptors have been parsed"):
            return "reading frames"
    return "starting"


def _rss_bytes(pid: int) -> tuple[float | None, float | None]:
    """Current and peak (high-water) resident set size of a running process, bytes.

    Read from ``/proc/<pid>/status`` (Linux). The peak is that of the program itself:
    ``getrusage``'s ``ru_maxrss`` of a child would also count the forked Python
    interpreter before ``exec``.
    """
    rss = hwm = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = float(line.split()[1]) * 1024.0
            elif line.startswith("VmHWM:"):
                hwm = float(line.split()[1]) * 1024.0
    except (OSError, IndexError, ValueError):
        return None, None
    return rss, hwm


def _log_tail(log: Path, n: int = LOG_TAIL_LINES) -> str:
    """The last ``n`` lines of a log, preceded by any abort/error lines found earlier."""
    try:
        lines = log.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log written)"
    tail = lines[-n:]
    errors = [
        ln.strip()
        for ln in lines[:-n]
        if "ABORT" in ln or "ERROR" in ln or ln.startswith(("STOP", "Error", "error"))
    ]
    head = ("gap_fit reported:\n" + "\n".join(errors) + "\n...\n") if errors else ""
    return head + "\n".join(tail)


def _run_gap_fit(
    argv: list[str],
    cwd: Path,
    log: Path,
    *,
    progress: Callable[[str], None] | None,
    estimate: MemoryEstimate,
    interval: float = 1.0,
) -> dict[str, float]:
    """Run gap_fit, report progress, return wall time and peak RSS (bytes)."""
    start = time.perf_counter()
    n_coordinates = [0]
    last = 0.0
    peak = 0.0
    # unbuffered Fortran output: the log (and the progress line) follow gap_fit live,
    # and an abort message lands where it happened rather than before the output
    env = {**os.environ, "GFORTRAN_UNBUFFERED_PRECONNECTED": "y"}
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv built here, no shell
                argv,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            raise GapFitError(f"cannot run gap_fit ({argv[0]}): {exc}") from exc
        try:
            while proc.poll() is None:
                rss, hwm = _rss_bytes(proc.pid)
                peak = max(peak, hwm or 0.0, rss or 0.0)
                now = time.perf_counter()
                if progress is not None and now - last >= interval:
                    last = now
                    rss_text = f"{rss / 1e9:.2f} GB" if rss is not None else "?"
                    progress(
                        f"gap_fit {_clock(now - start)}  RSS {rss_text} "
                        f"(est. peak {estimate.peak_gb:.1f} GB)  {_stage(log, n_coordinates)}"
                    )
                time.sleep(0.05)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return {
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak,
        "returncode": float(proc.returncode),
    }


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class _ProgressLine:
    """Print progress on one rewritten line of stderr (a TTY) or every 30 s (a log)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0
        self.width = 0

    def __call__(self, text: str) -> None:
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
            self.stream.flush()
        elif time.perf_counter() - self.last >= 30.0:
            self.last = time.perf_counter()
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self, final: str | None = None) -> None:
        """End the line; ``final`` (if given) is printed last in any case."""
        if final is not None:
            self.last = -1e9
            self(final)
        if self.tty and self.width:
            self.stream.write("\n")
        self.stream.flush()


# ------------------------------------------------------------------------ models
@dataclass(frozen=True)
class GapModel:
    """A trained GAP on disk.

    Attributes
    ----------
    directory
        The model directory (or the folder of a bare xml).
    xml
        The model file.
    species
        Chemical symbols the model describes, in the order of its training data.
    record
        ``gap_model.json`` (empty for a bare xml).
    """

    directory: Path
    xml: Path
    species: tuple[str, ...]
    record: dict[str, Any] = field(default_factory=dict)

    def potential(self, elements: Sequence[str] | None = None) -> LammpsPotential:
        """:func:`gap_potential` of this model."""
        return gap_potential(self, elements)


def model_species(xml: str | Path) -> tuple[tuple[str, ...], list[Path]]:
    """Species a GAP xml describes, and the sparse-point files it refers to.

    Returns
    -------
    (species, sparse_files)
        Chemical symbols named by the model's descriptors (sorted by atomic number,
        descending), empty when a descriptor applies to every species; files the xml
        names in ``sparseX_filename`` (they must sit beside it).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    GapModelError
        When it is not XML or holds no ``GAP_params``.
    """
    path = Path(xml)
    if not path.is_file():
        raise FileNotFoundError(
            f"GAP model file {path} does not exist; train one with "
            "anharmbench.mlip.gap.train_gap or give the path of a gap_fit xml"
        )
    zs: set[int] = set()
    any_species = False
    has_gap = False
    n_desc = 0
    sparse: list[Path] = []
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            tag = elem.tag
            if tag == "GAP_params":
                has_gap = True
            elif tag == "gpCoordinates":
                name = elem.get("sparseX_filename")
                if name:
                    sparse.append(path.parent / name)
            elif tag == "descriptor":
                n_desc += 1
                found, anyz = _descriptor_species(elem.text or "")
                zs |= found
                any_species |= anyz
            if tag in ("sparseX", "e0", "theta", "permutation", "XYZ_data"):
                elem.clear()  # keep memory flat on large models
    except ET.ParseError as exc:
        raise GapModelError(f"{path} is not a GAP model: it is not valid XML ({exc})") from None
    if not has_gap or n_desc == 0:
        raise GapModelError(
            f"{path} is not a GAP model: no <GAP_params> with descriptors (a gap_fit xml "
            "is expected)"
        )
    species = () if any_species else tuple(chemical_symbols[z] for z in sorted(zs, reverse=True))
    return species, sparse


def _descriptor_species(text: str) -> tuple[set[int], bool]:
    """Atomic numbers named by one descriptor string (Z=, Z1=, ..., species_Z={...})."""
    zs: set[int] = set()
    named = False
    any_species = False
    tokens = text.replace("{", " { ").replace("}", " } ").split()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        key, _, value = tok.partition("=")
        values: list[str] = []
        if key == "species_Z":
            j = i + 1
            if value == "" and j < len(tokens) and tokens[j] == "{":
                j += 1
                while j < len(tokens) and tokens[j] != "}":
                    values.extend(tokens[j].replace(":", " ").split())
                    j += 1
                i = j
            elif value:
                values.append(value)
        elif key.startswith("Z") and key[1:].isdigit() or key == "Z":
            values.append(value)
        for v in values:
            try:
                z = int(v)
            except ValueError:
                continue
            named = True
            if z <= 0:
                any_species = True
            elif z < len(chemical_symbols):
                zs.add(z)
        i += 1
    return zs, any_species or not named


def load_gap_model(path: str | Path) -> GapModel:
    """Open a model directory written by :func:`train_gap`, or a bare gap_fit xml.

    Raises
    ------
    FileNotFoundError
        When neither exists.
    GapModelError
        When the file is not a GAP xml.
    """
    path = Path(path)
    record: dict[str, Any] = {}
    if path.is_dir():
        rec = path / MODEL_RECORD
        if rec.is_file():
            record = json.loads(rec.read_text())
        xml = path / str(record.get("model_file", MODEL_XML))
        if not xml.is_file():
            raise FileNotFoundError(
                f"model directory {path} holds no {xml.name}; was the training finished? "
                f"(train with anharmbench.mlip.gap.train_gap)"
            )
        directory = path
    else:
        xml = path
        directory = path.parent
    species, _ = model_species(xml)
    trained = tuple(record.get("species", ()))
    if trained and set(trained) == set(species):
        species = trained
    return GapModel(directory=directory, xml=xml, species=species, record=record)


def gap_potential(
    model: str | Path | GapModel, elements: Sequence[str] | None = None
) -> LammpsPotential:
    """The LAMMPS description of a GAP model (``pair_style quip``).

    Parameters
    ----------
    model
        A model directory of :func:`train_gap`, a gap_fit xml, or a :class:`GapModel`.
    elements
        Chemical symbols in LAMMPS type order; default: the model's species.

    Returns
    -------
    LammpsPotential
        ``pair_style quip``, ``pair_coeff * * <xml> "IP GAP" Z...``, with the xml (and
        any sparse-point files it names) as the potential's files.

    Raises
    ------
    FileNotFoundError
        When the model is missing.
    GapModelError
        When the file is not a GAP xml, ``elements`` holds a species the model does not
        describe, or lacks one the model was trained with (a structure without it is
        outside what the GAP was fitted to).
    """
    gm = model if isinstance(model, GapModel) else load_gap_model(model)
    species = gm.species
    if elements is None:
        if not species:
            raise GapModelError(
                f"GAP model {gm.xml} does not name its species (its descriptors apply to "
                "any species): pass elements=(...) in LAMMPS type order"
            )
        elements = species
    elements = tuple(elements)
    for el in elements:
        if el not in atomic_numbers:
            raise GapModelError(f"unknown element {el!r} in elements {list(elements)}")
    if species:
        lacking = [el for el in elements if el not in species]
        if lacking:
            raise GapModelError(
                f"GAP model {gm.xml} does not describe {lacking}: it was trained on "
                f"{list(species)}; use a model trained on these species"
            )
        absent = [s for s in species if s not in elements]
        if absent:
            raise GapModelError(
                f"elements {list(elements)} lack {absent}, which GAP model {gm.xml} was "
                f"trained with (species {list(species)}); a structure without them is "
                "outside what the model describes. Give all of the model's species "
                "(structures must contain each of them)"
            )
    _, sparse = model_species(gm.xml)
    missing = [p for p in sparse if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"GAP model {gm.xml} refers to sparse-point files that are not beside it: "
            f"{[p.name for p in missing]}"
        )
    xml = str(gm.xml.resolve())
    if any(c.isspace() or c in "\"'#$&" for c in xml):
        raise GapModelError(
            f"the path of GAP model {xml!r} holds whitespace or one of \"'#$&, which a "
            "LAMMPS pair_coeff line cannot carry; move the model to a plainer path"
        )
    zs = " ".join(str(atomic_numbers[el]) for el in elements)
    return LammpsPotential(
        elements=elements,
        pair_style="quip",
        pair_coeff=(f'* * {xml} "IP GAP" {zs}',),
        files=(xml, *(str(p.resolve()) for p in sparse)),
        name=f"gap:{gm.directory.name if gm.xml.name == MODEL_XML else gm.xml.stem}",
    )


# ------------------------------------------------------------------------ training
def train_gap(
    dataset: str | Path | DatasetSplits,
    model_dir: str | Path,
    config: GapConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool | Callable[[str], None] = True,
    gap_fit: str | None = None,
) -> GapModel:
    """Fit a GAP to the training split of a dataset with gap_fit.

    Parameters
    ----------
    dataset
        A dataset directory (IDMD or reference MD) or its :class:`DatasetSplits`.
    model_dir
        Output directory (created); see the module docstring for its files.
    config
        Fit settings (default :meth:`GapConfig.paper`).
    overwrite
        Replace an existing model in ``model_dir``.
    progress
        ``True``: a progress line on stderr; a callable receives the line instead;
        ``False``: silent.
    gap_fit
        The gap_fit executable (default :func:`find_gap_fit`).

    Returns
    -------
    GapModel

    Raises
    ------
    GapMemoryError
        When the estimated peak memory does not fit (the message gives the estimate, the
        machine's memory and how many frames would fit).
    GapFitError
        When gap_fit is missing or fails (the message quotes the end of its log).
    FileExistsError
        When ``model_dir`` holds a model and ``overwrite`` is false.
    """
    config = config if config is not None else GapConfig.paper()
    splits = dataset if isinstance(dataset, DatasetSplits) else load_splits(dataset)
    model_dir = Path(model_dir)
    xml = model_dir / MODEL_XML
    if xml.exists() and not overwrite:
        raise FileExistsError(f"{xml} exists; pass overwrite=True to train again")
    exe = gap_fit if gap_fit is not None else find_gap_fit()

    chosen = _select_frames(splits.train, config)
    frames = [splits.train[i] for i in chosen]
    species = tuple(
        sorted(
            {s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: -atomic_numbers[s]
        )
    )
    if config.use_virials:
        no_virial = [i for i, a in zip(chosen, frames, strict=True) if "virial" not in a.info]
        if no_virial:
            raise ValueError(
                f"training frames {no_virial[:5]} of {splits.directory} have no 'virial'; "
                "set use_virials=False or regenerate the dataset"
            )

    estimate = estimate_gap_memory(frames, config)
    allowance, where = _memory_allowance(config)
    if estimate.peak_bytes > allowance:
        fit = _frames_that_fit(frames, config, allowance)
        hint = (
            f"at most {fit} of these frames fit: set max_frames={fit} (or max_atoms), "
            "fewer sparse points, or a smaller 3-body cutoff"
            if fit > 0
            else "not even one frame fits: reduce the descriptors (3-body cutoff, SOAP n_max/l_max)"
        )
        raise GapMemoryError(
            f"gap_fit would need about {estimate.describe()}; {where}. Refusing to start: {hint}."
        )

    _warn_if_busy(estimate)

    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in (xml, model_dir / MODEL_RECORD):
        stale.unlink(missing_ok=True)
    train_file = model_dir / TRAIN_XYZ
    write(train_file, frames, format="extxyz")
    e0 = _e0_values(config, frames, species)
    argv = gap_argv(config, gap_fit=exe, train_file=TRAIN_XYZ, model_file=MODEL_XML, e0=e0)
    write_json_atomic(model_dir / COMMAND_JSON, {"argv": argv, "cwd": str(model_dir.resolve())})
    (model_dir / COMMAND_TXT).write_text(
        f"cd {shlex.quote(str(model_dir.resolve()))} && {shlex.join(argv)}\n"
    )

    line = _ProgressLine() if progress is True else None
    report: Callable[[str], None] | None = None
    if line is not None:
        report = line
    elif callable(progress):
        report = progress
    log = model_dir / LOG_FILE
    final = None
    try:
        run = _run_gap_fit(argv, model_dir, log, progress=report, estimate=estimate)
        final = (
            f"gap_fit finished in {_clock(run['wall_seconds'])} (exit "
            f"{int(run['returncode'])}), peak RSS {run['peak_rss_bytes'] / 1e9:.2f} GB "
            f"(estimated {estimate.peak_gb:.2f} GB)"
        )
    finally:
        if line is not None:
            line.close(final)
        elif report is not None and final is not None:
            report(final)
    if run["returncode"] != 0 or not xml.is_file():
        why = (
            f"exit status {int(run['returncode'])}"
            if run["returncode"] != 0
            else f"it exited normally but wrote no {xml.name}"
        )
        raise GapFitError(
            f"gap_fit failed ({why}) after {run['wall_seconds']:.1f} s in {model_dir}; "
            f"command in {model_dir / COMMAND_TXT}. Last {LOG_TAIL_LINES} lines of "
            f"{log}:\n{_log_tail(log)}"
        )

    versions = software_versions()
    try:
        from importlib.metadata import version

        versions["quippy-ase"] = version("quippy-ase")
    except Exception:  # pragma: no cover - metadata missing
        versions["quippy-ase"] = "unknown"
    record = {
        "format": "anharmbench-gap-1",
        "model_file": MODEL_XML,
        "species": list(species),
        "config": config.to_dict(),
        "e0": e0,
        "gap_string": config.gap_string(),
        "cutoff": config.cutoff(),
        "dataset": {
            "directory": str(splits.directory.resolve()),
            "kind": splits.kind,
            "train_frames_available": len(splits.train),
            "train_frames_used": chosen,
            "train_file": TRAIN_XYZ,
            "train_sha256": file_sha256(train_file),
            "atoms": estimate.n_atoms,
        },
        "command": argv,
        "memory": {
            "estimate_bytes": estimate.peak_bytes,
            "estimate_gap_fit_style_bytes": estimate.gap_fit_bytes,
            "estimate_terms_bytes": estimate.terms,
            "measured_peak_rss_bytes": run["peak_rss_bytes"],
            "gap_fit_report_peak": _gap_fit_reported_peak(log),
            "machine": machine_memory(),
        },
        "wall_seconds": run["wall_seconds"],
        "model_sha256": file_sha256(xml),
        "versions": versions,
    }
    write_json_atomic(model_dir / MODEL_RECORD, record)
    return GapModel(directory=model_dir, xml=xml, species=species, record=record)


def _gap_fit_reported_peak(log: Path) -> str | None:
    """gap_fit's own "PEAK" line of its memory estimate, e.g. ``"690 MB"``."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("PEAK"):
                return line.split(None, 1)[1].strip()
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------ parity
def gap_parity(
    model: str | Path | GapModel,
    dataset: str | Path | DatasetSplits,
    *,
    split: str = "test",
    directory: str | Path | None = None,
) -> tuple[ParityResult, dict[str, Path]]:
    """Energy/force parity of a GAP (through the LAMMPS plugin) on a dataset split.

    Parameters
    ----------
    model
        Model directory, xml or :class:`GapModel`.
    dataset
        Dataset directory or its splits.
    split
        ``"test"`` (the held-out frames), ``"val"`` or ``"train"``.
    directory
        Where to write ``parity_<split>.json|_energy.csv|_forces.csv|.png`` (default: the
        model directory).

    Returns
    -------
    (ParityResult, files)
        Errors (RMSE, MAE, max; energy per atom, forces overall and per species) and the
        written files.
    """
    from anharmbench.lammps import LammpsCalculator

    gm = model if isinstance(model, GapModel) else load_gap_model(model)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    splits = (
        dataset if isinstance(dataset, DatasetSplits) else load_splits(dataset, require=(split,))
    )
    frames = getattr(splits, split)
    if not frames:
        raise ValueError(f"dataset {splits.directory} has no frames in its {split} split")
    calc = LammpsCalculator(gap_potential(gm))

    def predict(atoms: Atoms) -> tuple[float, np.ndarray]:
        atoms.calc = calc
        return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces())

    try:
        result = evaluate_parity(f"GAP {gm.directory.name}", predict, frames)
    finally:
        calc.release()
    out = write_parity(result, directory or gm.directory, stem=f"parity_{split}")
    return result, out
