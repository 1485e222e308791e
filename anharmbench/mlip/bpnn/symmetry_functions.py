"""Atom-centred symmetry functions as n2p2 defines them: the functions, the cutoff, sets.

Three families, element-resolved, with n2p2's parameter names and conventions
(``symfunction_short`` lines of an n2p2 ``input.nn``):

* type 2, radial::

      G2_i = sum_{j != i}  exp(-eta (r_ij - r_s)^2) f_c(r_ij)

  over neighbours ``j`` of element ``e1``
  (``<ec> 2 <e1> <eta> <r_shift> <r_cut>``);
* type 3, angular *narrow*::

      G3_i = 2^(1-zeta) sum_{j<k} (1 + lambda cos theta_ijk)^zeta
             exp(-eta [(r_ij-r_s)^2 + (r_ik-r_s)^2 + (r_jk-r_s)^2])
             f_c(r_ij) f_c(r_ik) f_c(r_jk)

  over unordered neighbour pairs ``{j, k}`` of elements ``{e1, e2}``
  (``<ec> 3 <e1> <e2> <eta> <lambda> <zeta> <r_cut> [<r_shift>]``);
* type 9, angular *wide*: as type 3 without the ``r_jk`` factors.

``(1 + lambda cos)^zeta`` is taken as 0 where ``1 + lambda cos <= 0`` (as n2p2 does).
Distances are in Angstrom, ``eta`` in 1/Angstrom^2, ``lambda`` is +1 or -1.

Cutoff functions (one type for all functions, n2p2's ``cutoff_type <n> [<alpha>]``):
with the inner cutoff ``r_ci = alpha r_c`` and ``x = (r - r_ci) / (r_c - r_ci)``,
``f_c = 1`` below ``r_ci`` and 0 from ``r_c`` on, and in between
``cos`` (1): ``(cos(pi x) + 1)/2``; ``poly1`` (5): ``(2x - 3)x^2 + 1``; ``poly2`` (6):
``((15 - 6x)x - 10)x^3 + 1``; ``poly3`` (7), ``poly4`` (8), ``exp`` (4):
``exp(1 - 1/(1 - x^2))``; ``tanhu`` (2): ``tanh^3(1 - r/r_c)``; ``tanh`` (3): the
same normalised to ``f_c(0) = 1``; ``hard`` (0): 1.

Order of the inputs. n2p2 sorts each element's functions (not the file order) by
central element, type, cutoff radius, eta, r_shift, then zeta, lambda, e1, e2 (angular)
or e1 (radial), with elements indexed by atomic number; ``scaling.data`` and the input
layer of ``weights.NNN.data`` follow that order. :meth:`SymmetryFunctionSet.for_element`
returns it, so a model's inputs map one to one onto n2p2's.

This module holds the definitions (:class:`SymmetryFunction`, :class:`CutoffFunction`,
:class:`SymmetryFunctionSet` and the default sets); :mod:`.descriptor` evaluates a set
on an edge list in torch (float64) and :mod:`.scaling` holds the scaling statistics.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from ase.data import atomic_numbers

__all__ = [
    "CUTOFF_TYPES",
    "CutoffFunction",
    "SymmetryFunction",
    "SymmetryFunctionError",
    "SymmetryFunctionSet",
    "default_set",
    "default_tho2_set",
    "n2p2_element_order",
]

#: n2p2's cutoff type numbers (``cutoff_type <n>``) by name.
CUTOFF_TYPES: dict[str, int] = {
    "hard": 0,
    "cos": 1,
    "tanhu": 2,
    "tanh": 3,
    "exp": 4,
    "poly1": 5,
    "poly2": 6,
    "poly3": 7,
    "poly4": 8,
}
_KINDS = (2, 3, 9)
_TANH_PRE = ((math.e + 1 / math.e) / (math.e - 1 / math.e)) ** 3


class SymmetryFunctionError(ValueError):
    """A symmetry function or a set of them is malformed or does not fit the model."""


def n2p2_element_order(elements: Iterable[str]) -> tuple[str, ...]:
    """Elements sorted by atomic number, n2p2's element indexing."""
    elements = tuple(elements)
    for el in elements:
        if el not in atomic_numbers:
            raise SymmetryFunctionError(f"unknown element {el!r}")
    return tuple(sorted(elements, key=lambda e: atomic_numbers[e]))


def _fmt(x: float) -> str:
    """A float written so that it reads back exactly."""
    return repr(float(x))


# ------------------------------------------------------------------ one function
@dataclass(frozen=True)
class SymmetryFunction:
    """One n2p2 symmetry function.

    Attributes
    ----------
    center
        Element of the central atom.
    kind
        n2p2 type: 2 (radial), 3 (angular narrow) or 9 (angular wide).
    neighbors
        ``(e1,)`` for type 2, ``(e1, e2)`` for types 3 and 9 (stored sorted by atomic
        number, as n2p2 does; the pair is unordered).
    eta
        Gaussian exponent, 1/Angstrom^2 (>= 0).
    r_cut
        Cutoff radius, Angstrom (> 0).
    r_shift
        Gaussian centre, Angstrom.
    lam
        ``lambda`` of the angular functions, +1 or -1 (0 for type 2).
    zeta
        Angular exponent (> 0 for types 3, 9; 0 for type 2).
    """

    center: str
    kind: int
    neighbors: tuple[str, ...]
    eta: float
    r_cut: float
    r_shift: float = 0.0
    lam: float = 0.0
    zeta: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", tuple(self.neighbors))
        for name in ("eta", "r_cut", "r_shift", "lam", "zeta"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise SymmetryFunctionError(f"{name} = {value} is not finite in {self}")
            object.__setattr__(self, name, value)
        if self.kind not in _KINDS:
            raise SymmetryFunctionError(
                f"symmetry function type {self.kind} is not supported; use 2 (radial), "
                "3 (angular narrow) or 9 (angular wide)"
            )
        for el in (self.center, *self.neighbors):
            if el not in atomic_numbers:
                raise SymmetryFunctionError(f"unknown element {el!r} in symmetry function")
        want = 1 if self.kind == 2 else 2
        if len(self.neighbors) != want:
            raise SymmetryFunctionError(
                f"type {self.kind} needs {want} neighbour element(s), got {self.neighbors}"
            )
        if self.kind != 2:
            object.__setattr__(self, "neighbors", n2p2_element_order(self.neighbors))
        if self.r_cut <= 0:
            raise SymmetryFunctionError(f"r_cut must be positive, got {self.r_cut}")
        if self.eta < 0:
            raise SymmetryFunctionError(f"eta must be >= 0, got {self.eta}")
        if self.kind == 2:
            if self.lam != 0.0 or self.zeta != 0.0:
                raise SymmetryFunctionError("radial (type 2) functions take no lambda/zeta")
        else:
            if self.lam not in (1.0, -1.0):
                raise SymmetryFunctionError(f"lambda must be +1 or -1, got {self.lam}")
            if self.zeta <= 0:
                raise SymmetryFunctionError(f"zeta must be positive, got {self.zeta}")

    @property
    def is_angular(self) -> bool:
        """True for types 3 and 9."""
        return self.kind != 2

    def n2p2_line(self) -> str:
        """The ``symfunction_short`` line (exact round trip of every number)."""
        if self.kind == 2:
            return (
                f"symfunction_short {self.center} 2 {self.neighbors[0]} {_fmt(self.eta)} "
                f"{_fmt(self.r_shift)} {_fmt(self.r_cut)}"
            )
        e1, e2 = self.neighbors
        return (
            f"symfunction_short {self.center} {self.kind} {e1} {e2} {_fmt(self.eta)} "
            f"{_fmt(self.lam)} {_fmt(self.zeta)} {_fmt(self.r_cut)} {_fmt(self.r_shift)}"
        )

    @classmethod
    def from_n2p2(cls, args: Sequence[str]) -> SymmetryFunction:
        """Parse the arguments of a ``symfunction_short`` line (without the keyword)."""
        args = list(args)
        try:
            kind = int(args[1])
            if kind == 2:
                if len(args) != 6:
                    raise SymmetryFunctionError("type 2 takes <ec> 2 <e1> <eta> <r_shift> <r_cut>")
                return cls(args[0], 2, (args[2],), float(args[3]), float(args[5]), float(args[4]))
            if kind in (3, 9):
                if len(args) not in (8, 9):
                    raise SymmetryFunctionError(
                        f"type {kind} takes <ec> {kind} <e1> <e2> <eta> <lambda> <zeta> "
                        "<r_cut> [<r_shift>]"
                    )
                r_shift = float(args[8]) if len(args) == 9 else 0.0
                return cls(
                    args[0],
                    kind,
                    (args[2], args[3]),
                    float(args[4]),
                    float(args[7]),
                    r_shift,
                    float(args[5]),
                    float(args[6]),
                )
        except (IndexError, ValueError) as exc:
            if isinstance(exc, SymmetryFunctionError):
                raise
            raise SymmetryFunctionError(
                f"cannot parse symfunction_short {' '.join(args)!r}: {exc}"
            ) from exc
        raise SymmetryFunctionError(
            f"symmetry function type {args[1]} in 'symfunction_short {' '.join(args)}' is not "
            "supported (2, 3 and 9 are)"
        )

    def sort_key(self, element_index: Mapping[str, int]) -> tuple[float, ...]:
        """n2p2's order within one element (see the module docstring)."""
        head = (element_index[self.center], self.kind, self.r_cut, self.eta, self.r_shift)
        nb = tuple(float(element_index[e]) for e in self.neighbors)
        if self.kind == 2:
            return (*head, *nb)
        return (*head, self.zeta, self.lam, *nb)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "center": self.center,
            "kind": self.kind,
            "neighbors": list(self.neighbors),
            "eta": self.eta,
            "r_cut": self.r_cut,
            "r_shift": self.r_shift,
            "lam": self.lam,
            "zeta": self.zeta,
        }


@dataclass(frozen=True)
class CutoffFunction:
    """n2p2 cutoff function shared by all symmetry functions of a model.

    Attributes
    ----------
    kind
        A name of :data:`CUTOFF_TYPES` (default ``"cos"``).
    alpha
        Inner cutoff as a fraction of ``r_c`` (``0 <= alpha < 1``).
    """

    kind: str = "cos"
    alpha: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in CUTOFF_TYPES:
            raise SymmetryFunctionError(
                f"cutoff function {self.kind!r} is not known; use one of {sorted(CUTOFF_TYPES)}"
            )
        if not 0.0 <= float(self.alpha) < 1.0:
            raise SymmetryFunctionError(f"cutoff alpha must be in [0, 1), got {self.alpha}")
        object.__setattr__(self, "alpha", float(self.alpha))

    @property
    def n2p2_type(self) -> int:
        """n2p2's number of this cutoff type."""
        return CUTOFF_TYPES[self.kind]

    @classmethod
    def from_n2p2(cls, args: Sequence[str]) -> CutoffFunction:
        """From the arguments of ``cutoff_type <n> [<alpha>]``."""
        try:
            number = int(args[0])
            alpha = float(args[1]) if len(args) > 1 else 0.0
        except (IndexError, ValueError) as exc:
            raise SymmetryFunctionError(f"cannot parse cutoff_type {' '.join(args)!r}") from exc
        names = {v: k for k, v in CUTOFF_TYPES.items()}
        if number not in names:
            raise SymmetryFunctionError(f"n2p2 cutoff type {number} is not known")
        return cls(names[number], alpha)

    def __call__(self, r: torch.Tensor, r_cut: torch.Tensor) -> torch.Tensor:
        """``f_c(r)`` for distances ``r`` and radii ``r_cut`` (broadcast), float64.

        Zero from ``r_cut`` on; values and gradients are finite everywhere (the
        functions are evaluated on clamped arguments and masked).
        """
        return self.value_and_derivative(r, r_cut, derivative=False)[0]

    def value_and_derivative(
        self, r: torch.Tensor, r_cut: torch.Tensor, *, derivative: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(f_c(r), df_c/dr)`` (the derivative only when asked), broadcast, float64."""
        inside = r < r_cut
        zero = torch.zeros_like(r * r_cut)
        if self.kind == "hard":
            return torch.where(inside, torch.ones_like(zero), zero), zero
        if self.kind in ("tanhu", "tanh"):
            pre = _TANH_PRE if self.kind == "tanh" else 1.0
            t = torch.tanh(1.0 - r / r_cut)
            f = pre * t * t * t
            df = -3.0 * pre * t * t * (1.0 - t * t) / r_cut if derivative else None
        else:
            r_ci = self.alpha * r_cut
            inv_w = 1.0 / (r_cut - r_ci)
            x = ((r - r_ci) * inv_w).clamp(0.0, 1.0)
            x2 = x * x
            if self.kind == "cos":
                f = 0.5 * (torch.cos(math.pi * x) + 1.0)
                dfx = -0.5 * math.pi * torch.sin(math.pi * x) if derivative else None
            elif self.kind == "poly1":
                f = (2.0 * x - 3.0) * x2 + 1.0
                dfx = x * (6.0 * x - 6.0) if derivative else None
            elif self.kind == "poly2":
                f = ((15.0 - 6.0 * x) * x - 10.0) * x2 * x + 1.0
                dfx = x2 * ((60.0 - 30.0 * x) * x - 30.0) if derivative else None
            elif self.kind == "poly3":
                f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0
                dfx = (
                    x2 * x * (x * (x * (140.0 * x - 420.0) + 420.0) - 140.0) if derivative else None
                )
            elif self.kind == "poly4":
                f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0
                dfx = (
                    x2 * x2 * (x * (x * ((2520.0 - 630.0 * x) * x - 3780.0) + 2520.0) - 630.0)
                    if derivative
                    else None
                )
            else:  # exp
                xs = x.clamp(max=1.0 - 1e-8)
                q = 1.0 - xs * xs
                f = torch.exp(1.0 - 1.0 / q)
                dfx = -2.0 * xs * f / (q * q) if derivative else None
            df = dfx * inv_w if derivative else None
        f = torch.where(inside, f, zero)
        if derivative:
            df = torch.where(inside, df, zero)
        return f, df


# ------------------------------------------------------------------ a set of them
@dataclass(frozen=True)
class SymmetryFunctionSet:
    """The symmetry functions of a model, with one cutoff function for all.

    Attributes
    ----------
    functions
        The functions (any order; :meth:`for_element` gives n2p2's order).
    cutoff
        The cutoff function.
    """

    functions: tuple[SymmetryFunction, ...]
    cutoff: CutoffFunction = field(default_factory=CutoffFunction)

    def __post_init__(self) -> None:
        object.__setattr__(self, "functions", tuple(self.functions))
        if not self.functions:
            raise SymmetryFunctionError("a symmetry function set needs at least one function")
        seen = set()
        for sf in self.functions:
            if sf in seen:
                raise SymmetryFunctionError(f"duplicate symmetry function {sf.n2p2_line()!r}")
            seen.add(sf)

    @property
    def elements(self) -> tuple[str, ...]:
        """Every element a function names (centre or neighbour), by atomic number."""
        els = {sf.center for sf in self.functions}
        els |= {e for sf in self.functions for e in sf.neighbors}
        return n2p2_element_order(els)

    def check_elements(self, model_elements: Sequence[str]) -> None:
        """Raise :class:`SymmetryFunctionError` unless the set fits ``model_elements``.

        Every element a function names must be a model element, and every model element
        needs at least one function centred on it.
        """
        model = set(model_elements)
        for sf in self.functions:
            absent = [e for e in (sf.center, *sf.neighbors) if e not in model]
            if absent:
                raise SymmetryFunctionError(
                    f"symmetry function {sf.n2p2_line()!r} references element(s) {absent}, "
                    f"which the model does not have (its elements: {list(model_elements)}); "
                    "remove the function or add the element to the model"
                )
        for el in model_elements:
            if not any(sf.center == el for sf in self.functions):
                raise SymmetryFunctionError(
                    f"no symmetry function is centred on {el!r}; every model element needs "
                    "its own functions (its network's inputs)"
                )

    def for_element(self, element: str, elements: Sequence[str]) -> list[SymmetryFunction]:
        """Functions centred on ``element`` in n2p2's order (``elements``: the model's)."""
        index = {e: i for i, e in enumerate(n2p2_element_order(elements))}
        sfs = [sf for sf in self.functions if sf.center == element]
        return sorted(sfs, key=lambda sf: sf.sort_key(index))

    def n_features(self, element: str) -> int:
        """Number of functions centred on ``element`` (its network's input size)."""
        return sum(sf.center == element for sf in self.functions)

    @property
    def r_max(self) -> float:
        """Largest cutoff radius (the neighbour-list cutoff), Angstrom."""
        return max(sf.r_cut for sf in self.functions)

    @property
    def r_angular(self) -> float:
        """Largest cutoff of the angular functions (0 without any), Angstrom."""
        return max((sf.r_cut for sf in self.functions if sf.is_angular), default=0.0)

    def fingerprint(self, elements: Sequence[str]) -> str:
        """SHA-256 (16 hex digits) of the cutoff and the ordered functions per element."""
        lines = [f"cutoff {self.cutoff.n2p2_type} {_fmt(self.cutoff.alpha)}"]
        for el in n2p2_element_order(elements):
            lines += [sf.n2p2_line() for sf in self.for_element(el, elements)]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        return {
            "cutoff": {"kind": self.cutoff.kind, "alpha": self.cutoff.alpha},
            "functions": [sf.to_dict() for sf in self.functions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymmetryFunctionSet:
        """Build from :meth:`to_dict` output."""
        try:
            cutoff = CutoffFunction(**data["cutoff"])
            functions = tuple(
                SymmetryFunction(
                    center=d["center"],
                    kind=int(d["kind"]),
                    neighbors=tuple(d["neighbors"]),
                    eta=d["eta"],
                    r_cut=d["r_cut"],
                    r_shift=d.get("r_shift", 0.0),
                    lam=d.get("lam", 0.0),
                    zeta=d.get("zeta", 0.0),
                )
                for d in data["functions"]
            )
        except (KeyError, TypeError) as exc:
            raise SymmetryFunctionError(f"malformed symmetry function set: {exc!r}") from exc
        return cls(functions, cutoff)


def _shifted_radial(
    center: str, neighbors: Sequence[str], n: int, r_low: float, r_cut: float
) -> list[SymmetryFunction]:
    """``n`` shifted Gaussians per neighbour element, centres evenly from ``r_low`` to
    ``r_cut`` (both included), width = spacing (``eta = 1 / (2 dr^2)``)."""
    dr = (r_cut - r_low) / (n - 1)
    eta = 1.0 / (2.0 * dr * dr)
    return [
        SymmetryFunction(center, 2, (nb,), eta, r_cut, r_low + k * dr)
        for nb in neighbors
        for k in range(n)
    ]


def default_tho2_set(
    r_radial: float = 10.0, r_angular: float = 6.0, cutoff: str = "cos"
) -> SymmetryFunctionSet:
    """The default Th-O set: 41 inputs for Th and 46 for O (the paper's sizes).

    The paper gives only the cutoffs (radial 10 A, angular 6 A) and the input sizes;
    this set is the project's choice that reproduces them:

    * radial (type 2, ``r_cut = r_radial``): shifted Gaussians per neighbour element,
      centres evenly spaced from 1.5 A to ``r_cut``, width equal to the spacing;
      10 per element for Th (20), 11 per element for O (22);
    * angular narrow (type 3, ``r_cut = r_angular``, ``eta = 0.01``, ``r_shift = 0``)
      per neighbour pair (Th-Th, Th-O, O-O): for O ``lambda = +-1`` x ``zeta = 1, 2, 4,
      16`` (8, so 24); for Th the same without ``(lambda = -1, zeta = 16)`` (7, so 21).

    Th: 20 + 21 = 41; O: 22 + 24 = 46.
    """
    els = ("O", "Th")
    pairs = [("O", "O"), ("O", "Th"), ("Th", "Th")]
    functions: list[SymmetryFunction] = []
    for center, n_rad in (("Th", 10), ("O", 11)):
        functions += _shifted_radial(center, els, n_rad, 1.5, r_radial)
        for pair in pairs:
            for lam in (1.0, -1.0):
                for zeta in (1.0, 2.0, 4.0, 16.0):
                    if center == "Th" and lam == -1.0 and zeta == 16.0:
                        continue
                    functions.append(
                        SymmetryFunction(center, 3, pair, 0.01, r_angular, 0.0, lam, zeta)
                    )
    return SymmetryFunctionSet(tuple(functions), CutoffFunction(cutoff))


def default_set(
    elements: Sequence[str], r_radial: float = 10.0, r_angular: float = 6.0,
    cutoff: str = "cos", n_radial: int = 11,
) -> SymmetryFunctionSet:
    """The same construction as :func:`default_tho2_set` for any elements.

    Per centre element: ``n_radial`` shifted Gaussians per neighbour element (1.5 A to
    ``r_radial``) and, per unordered neighbour pair, the narrow angular functions with
    ``lambda = +-1`` and ``zeta = 1, 2, 4, 16``. For two elements that is 22 + 24 = 46
    inputs per element (the paper's O size); used for crystals other than ThO2 (e.g. a
    BPNN trained on a DFT dataset of NaCl).
    """
    els = tuple(sorted(set(elements)))
    if not els:
        raise SymmetryFunctionError("default_set needs at least one element")
    pairs = [(a, b) for i, a in enumerate(els) for b in els[i:]]
    functions: list[SymmetryFunction] = []
    for center in els:
        functions += _shifted_radial(center, els, n_radial, 1.5, r_radial)
        for pair in pairs:
            for lam in (1.0, -1.0):
                for zeta in (1.0, 2.0, 4.0, 16.0):
                    functions.append(
                        SymmetryFunction(center, 3, pair, 0.01, r_angular, 0.0, lam, zeta))
    return SymmetryFunctionSet(tuple(functions), CutoffFunction(cutoff))


def describe(sf_set: SymmetryFunctionSet, elements: Sequence[str]) -> str:
    """A human-readable table of the set (per element, n2p2 order)."""
    lines = []
    for el in elements:
        sfs = sf_set.for_element(el, elements)
        lines.append(f"{el}: {len(sfs)} inputs")
        lines += [f"  {i + 1:3d} {sf.n2p2_line()[18:]}" for i, sf in enumerate(sfs)]
    return "\n".join(lines)
