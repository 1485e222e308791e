"""Typed settings of a GAP fit: the descriptors and :class:`GapConfig`.

The default (:meth:`GapConfig.paper`) holds the paper's descriptors: ``distance_2b`` and
``angle_3b`` with a 6 A cutoff and SOAP with a 4 A cutoff; :meth:`GapConfig.quick` is a
smaller model that stays under 12 GB. Every field (sparse points, sigmas, ``e0``, ...)
can be overridden. Each descriptor writes its own gap_fit string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ase.data import atomic_numbers

__all__ = ["AngleThreeBody", "DistanceTwoBody", "GapConfig", "Soap"]


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
        return _descriptor(
            self,
            f"covariance_type=ard_se delta={_num(self.delta)} "
            f"theta_uniform={_num(self.theta_uniform)}",
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
        return _descriptor(
            self,
            f"covariance_type=ard_se delta={_num(self.delta)} theta_fac={_num(self.theta_fac)}",
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
        return _descriptor(
            self,
            f"n_max={int(self.n_max)} l_max={int(self.l_max)} "
            f"atom_sigma={_num(self.atom_sigma)} zeta={_num(self.zeta)} delta={_num(self.delta)} "
            "covariance_type=dot_product",
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
        _reject_unknown(cls, "GapConfig", overrides)
        merged = dict(base)
        for key, value in overrides.items():
            if key in _TERMS and isinstance(value, Mapping):
                current = merged.get(key) or _TERMS[key]()
                _reject_unknown(_TERMS[key], key, value)
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
        _reject_unknown(cls, "GapConfig", data)
        return cls(**dict(data))

    def with_(self, **changes: Any) -> GapConfig:
        """A copy with some fields replaced (validated)."""
        return replace(self, **changes)


def _term_from_mapping(kind: type, key: str, value: Mapping[str, Any]) -> Any:
    """A descriptor dataclass from a mapping of its fields (unknown keys rejected)."""
    _reject_unknown(kind, key, value)
    return kind(**dict(value))


def _reject_unknown(kind: type, label: str, keys: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when ``keys`` names a field the dataclass ``kind`` lacks.

    Parameters
    ----------
    kind
        The dataclass whose fields are allowed.
    label
        What the keys configure, as the message names it (``"GapConfig"``, ``"soap"``).
    keys
        The mapping given by the user.
    """
    allowed = {f.name for f in fields(kind)}
    unknown = set(keys) - allowed
    if unknown:
        raise ValueError(f"unknown {label} key(s) {sorted(unknown)}; allowed {sorted(allowed)}")


def _descriptor(d: DistanceTwoBody | AngleThreeBody | Soap, terms: str) -> str:
    """A gap_fit descriptor string: ``d.kind``, its cutoffs, ``terms``, its sparsification."""
    return (
        f"{d.kind} cutoff={_num(d.cutoff)} "
        f"cutoff_transition_width={_num(d.cutoff_transition_width)} {terms} "
        f"n_sparse={int(d.n_sparse)} sparse_method={d.sparse_method} add_species=T"
    )


def _num(value: float) -> str:
    """A float for a gap_fit string: shortest exact form."""
    return repr(float(value))
