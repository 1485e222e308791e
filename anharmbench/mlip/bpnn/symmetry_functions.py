"""Atom-centred symmetry functions as n2p2 defines them, vectorized in torch (float64).

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

Scaling (n2p2's ``scaling.data`` and keywords): from the minimum, maximum, mean and
standard deviation (population) of each function over the training atoms,
``scale`` -> ``S_min + (S_max - S_min)(G - G_min)/(G_max - G_min)``, ``center`` ->
``G - G_mean``, ``scale_center`` -> ``S_min + (S_max - S_min)(G - G_mean)/(G_max -
G_min)``, ``scale_sigma`` -> ``S_min + (S_max - S_min)(G - G_mean)/G_sigma``, ``none``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from ase.data import atomic_numbers

__all__ = [
    "CUTOFF_TYPES",
    "SCALING_TYPES",
    "CutoffFunction",
    "Descriptor",
    "ScalingError",
    "SymmetryFunction",
    "SymmetryFunctionError",
    "SymmetryFunctionScaling",
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
#: Scaling types and the n2p2 keywords that select them.
SCALING_TYPES: dict[str, tuple[str, ...]] = {
    "none": (),
    "scale": ("scale_symmetry_functions",),
    "center": ("center_symmetry_functions",),
    "scale_center": ("scale_symmetry_functions", "center_symmetry_functions"),
    "scale_sigma": ("scale_symmetry_functions_sigma",),
}
_KINDS = (2, 3, 9)
_TANH_PRE = ((math.e + 1 / math.e) / (math.e - 1 / math.e)) ** 3


class SymmetryFunctionError(ValueError):
    """A symmetry function or a set of them is malformed or does not fit the model."""


class ScalingError(ValueError):
    """Scaling statistics are malformed, constant, or belong to another set of functions."""


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


# ------------------------------------------------------------------ scaling
@dataclass(frozen=True)
class SymmetryFunctionScaling:
    """Per-function statistics over the training atoms and the scaling that uses them.

    Attributes
    ----------
    kind
        A name of :data:`SCALING_TYPES`.
    s_min, s_max
        Target range (n2p2's ``scale_min_short``, ``scale_max_short``).
    stats
        Per element, a ``(n_features, 4)`` float64 array of ``G_min, G_max, G_mean,
        G_sigma`` in :meth:`SymmetryFunctionSet.for_element` order.
    fingerprint
        :meth:`SymmetryFunctionSet.fingerprint` of the set the statistics belong to.
    """

    kind: str
    s_min: float
    s_max: float
    stats: Mapping[str, np.ndarray]
    fingerprint: str

    def __post_init__(self) -> None:
        if self.kind not in SCALING_TYPES:
            raise ScalingError(
                f"scaling {self.kind!r} is not known; use one of {sorted(SCALING_TYPES)}"
            )
        stats = {}
        for el, arr in self.stats.items():
            a = np.array(arr, dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 4 or not np.all(np.isfinite(a)):
                raise ScalingError(f"scaling statistics of {el} must be finite, shape (n, 4)")
            stats[el] = a
        object.__setattr__(self, "stats", stats)
        object.__setattr__(self, "s_min", float(self.s_min))
        object.__setattr__(self, "s_max", float(self.s_max))

    def affine(self, element: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(a, b, c)`` with ``G_scaled = c + b (G - a)`` for one element's functions.

        Raises
        ------
        ScalingError
            When a divisor (``G_max - G_min`` or ``G_sigma``) is zero: the function was
            constant on the training set.
        """
        st = self.stats[element]
        gmin, gmax, gmean, gsig = st.T
        n = len(st)
        width = self.s_max - self.s_min
        if self.kind == "none":
            return np.zeros(n), np.ones(n), np.zeros(n)
        if self.kind == "center":
            return gmean, np.ones(n), np.zeros(n)
        div = gsig if self.kind == "scale_sigma" else gmax - gmin
        bad = np.flatnonzero(~(np.abs(div) > 0))
        if bad.size:
            raise ScalingError(
                f"symmetry function(s) {(bad + 1).tolist()} of {element} (1-based, n2p2 order) "
                "are constant on the training set, so they cannot be scaled; remove them or "
                "train on more varied structures"
            )
        a = gmin if self.kind == "scale" else gmean
        return a, width / div, np.full(n, self.s_min)

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, np.ndarray],
        fingerprint: str,
        kind: str = "scale_center",
        s_min: float = 0.0,
        s_max: float = 1.0,
    ) -> SymmetryFunctionScaling:
        """Statistics from raw function values, ``values[element]`` of shape
        ``(n_atoms_of_element, n_features)``; sigma is the population standard deviation
        (as n2p2's ``nnp-scaling``)."""
        stats = {}
        for el, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            if v.ndim != 2 or v.shape[0] == 0:
                raise ScalingError(f"no training atoms of {el} to compute the scaling from")
            stats[el] = np.stack([v.min(0), v.max(0), v.mean(0), v.std(0)], axis=1)
        return cls(kind, s_min, s_max, stats, fingerprint)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "kind": self.kind,
            "s_min": self.s_min,
            "s_max": self.s_max,
            "fingerprint": self.fingerprint,
            "stats": {el: a.tolist() for el, a in self.stats.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymmetryFunctionScaling:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                data["kind"], data["s_min"], data["s_max"], data["stats"], data["fingerprint"]
            )
        except KeyError as exc:
            raise ScalingError(f"malformed scaling record: missing {exc}") from exc


# ------------------------------------------------------------------ torch evaluation
class Descriptor(torch.nn.Module):
    """Evaluates a :class:`SymmetryFunctionSet` on an edge list, vectorized, float64.

    Parameters
    ----------
    sf_set
        The functions.
    elements
        The model's elements in type order (atom type ``t`` is ``elements[t]``).

    Notes
    -----
    Each atom's features are laid out in its own element's n2p2 order in the first
    ``n_features(element)`` columns of a ``(N, width)`` buffer (``width`` = the largest
    input size). The functions are factored into the distinct terms they share:
    radial terms by ``(eta, r_shift, r_cut)``; angular terms into angular factors
    ``(1 + lambda cos)^zeta`` per distinct ``(lambda, zeta)``, radial factors per
    distinct ``(narrow, eta, r_shift, r_cut)`` and cutoff factors per distinct
    ``r_cut``. Each edge (radial) or pair of edges of one centre (angular) computes
    every distinct term once; the terms are summed per atom and neighbour element (or
    unordered pair of neighbour elements) with row-wise scatter-adds, and each atom's
    columns are then gathered from these sums by a table indexed by its element (a
    zero where an element has fewer functions). Radial terms sum over edges; angular
    terms over the unordered pairs of edges of a centre within the angular cutoff,
    enumerated inside the forward pass (data-dependent sizes, which torch.export
    supports).
    """

    def __init__(self, sf_set: SymmetryFunctionSet, elements: Sequence[str]) -> None:
        super().__init__()
        elements = tuple(elements)
        sf_set.check_elements(elements)
        self.elements = elements
        self.cutoff = sf_set.cutoff
        n_types = len(elements)
        self.n_types = n_types
        type_of = {e: i for i, e in enumerate(elements)}
        self.n_features = [sf_set.n_features(e) for e in elements]
        self.width = max(self.n_features)
        sink = self.width
        self.r_max = sf_set.r_max
        self.r_angular = sf_set.r_angular

        def index(table: dict, key: tuple) -> int:
            return table.setdefault(key, len(table))

        rad_terms: dict[tuple, int] = {}
        rad_cols: dict[tuple[int, int], int] = {}  # (pair, term) -> column
        lz_terms: dict[tuple, int] = {}
        x_terms: dict[tuple, int] = {}
        ang_terms: dict[tuple, int] = {}
        ang_cols: dict[tuple[int, int], int] = {}
        for el in elements:
            c = type_of[el]
            for col, sf in enumerate(sf_set.for_element(el, elements)):
                if sf.kind == 2:
                    k = index(rad_terms, (sf.eta, sf.r_shift, sf.r_cut))
                    rad_cols[(c * n_types + type_of[sf.neighbors[0]], k)] = col
                else:
                    lz = index(lz_terms, (sf.lam, sf.zeta))
                    x = index(x_terms, (float(sf.kind == 3), sf.eta, sf.r_shift, sf.r_cut))
                    k = index(ang_terms, (lz, x, 2.0 ** (1.0 - sf.zeta)))
                    a, b = (type_of[e] for e in sf.neighbors)
                    for p, q in {(a, b), (b, a)}:
                        ang_cols[((c * n_types + p) * n_types + q, k)] = col
        f64 = {"dtype": torch.float64}
        # radial terms (C_r,): eta, r_shift, and the index of their r_cut among rc_rad
        rc_rad = sorted({t[2] for t in rad_terms}) or [1.0]
        r_par = torch.tensor([[t[0], t[1]] for t in rad_terms] or [[0.0, 0.0]], **f64)
        r_rc = torch.tensor([rc_rad.index(t[2]) for t in rad_terms] or [0], dtype=torch.long)
        r_col = torch.full((n_types * n_types, max(1, len(rad_terms))), sink, dtype=torch.long)
        for (pair, k), col in rad_cols.items():
            r_col[pair, k] = col
        self.register_buffer("rad_params", r_par)
        self.register_buffer("rad_rc", torch.tensor(rc_rad, **f64))
        self.register_buffer("rad_rc_index", r_rc)
        self.register_buffer("rad_cols", r_col)
        # angular: (lambda, zeta); (narrow, eta, r_shift, rc index); terms (lz, x, norm)
        self.has_angular = bool(ang_terms)
        rc_ang = sorted({t[3] for t in x_terms}) or [1.0]
        lz = torch.tensor(list(lz_terms) or [(1.0, 1.0)], **f64)
        xs = torch.tensor(
            [[t[0], t[1], t[2], float(rc_ang.index(t[3]))] for t in x_terms] or [[0, 0, 0, 0]],
            **f64,
        )
        terms = list(ang_terms) or [(0, 0, 1.0)]
        a_col = torch.full((n_types**3, len(terms)), sink, dtype=torch.long)
        for (trip, k), col in ang_cols.items():
            a_col[trip, k] = col
        self.register_buffer("ang_lz", lz)
        self.ang_zetas = [float(z) for z in lz[:, 1].tolist()]
        self.register_buffer("ang_x", xs[:, :3].contiguous())
        self.register_buffer("ang_x_rc_index", xs[:, 3].to(torch.long))
        self.register_buffer("ang_rc", torch.tensor(rc_ang, **f64))
        self.register_buffer("ang_term_lz", torch.tensor([t[0] for t in terms], dtype=torch.long))
        self.register_buffer("ang_term_x", torch.tensor([t[1] for t in terms], dtype=torch.long))
        self.register_buffer("ang_term_norm", torch.tensor([t[2] for t in terms], **f64))
        self.register_buffer("ang_cols", a_col)
        # forward assembly: per atom, the radial sums (T neighbour types x C_r terms), the
        # angular sums (T*T unordered neighbour pairs x C_a terms) and a zero; column col of
        # an atom of type c reads slot col_source[c, col]
        c_r, c_a = r_par.shape[0], len(terms)
        zero_slot = n_types * c_r + n_types * n_types * c_a
        source = torch.full((n_types, self.width), zero_slot, dtype=torch.long)
        for (pair, k), col in rad_cols.items():
            c, nt = divmod(pair, n_types)
            source[c, col] = nt * c_r + k
        for (trip, k), col in ang_cols.items():
            c, rest = divmod(trip, n_types * n_types)
            p, q = divmod(rest, n_types)
            pt = min(p, q) * n_types + max(p, q)
            source[c, col] = n_types * c_r + pt * c_a + k
        self.register_buffer("col_source", source)

    def forward(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, atom_types: torch.Tensor
    ) -> torch.Tensor:
        """Raw (unscaled) symmetry functions.

        Parameters
        ----------
        vectors
            ``(E, 3)`` float64 edge vectors ``x_j - x_i`` (with lattice shifts), Angstrom.
        edge_index
            ``(2, E)`` int64, rows ``i`` (centre) and ``j`` (neighbour). Every neighbour
            within ``r_max`` of every atom must appear (both directions, all images);
            edges beyond a function's cutoff contribute nothing.
        atom_types
            ``(N,)`` int64 type of each atom.

        Returns
        -------
        torch.Tensor
            ``(N, width)`` float64; row ``i`` holds atom ``i``'s functions in its
            element's n2p2 order, zero-padded beyond ``n_features``.
        """
        return self._evaluate(vectors, edge_index, atom_types, jacobian=False)[0]

    def with_jacobian(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, atom_types: torch.Tensor
    ) -> tuple[torch.Tensor, DescriptorJacobian]:
        """Raw functions ``(N, width)`` and their analytic derivatives by the edge vectors.

        The derivatives are computed in closed form (no autograd graph), as n2p2 does;
        :meth:`DescriptorJacobian.edge_gradient` turns ``dE/dG`` into ``dE/dv``.
        """
        g, jac = self._evaluate(vectors, edge_index, atom_types, jacobian=True)
        assert jac is not None  # internal invariant
        return g, jac

    @staticmethod
    def _power(base: torch.Tensor, zeta: float) -> torch.Tensor:
        """``base^(zeta - 1)`` for ``base > 0``: repeated squaring for integer zeta."""
        n = int(round(zeta)) - 1
        if abs(zeta - round(zeta)) < 1e-15 and 0 <= n <= 64:
            out = torch.ones_like(base)
            sq = base
            while n:
                if n & 1:
                    out = out * sq
                n >>= 1
                if n:
                    sq = sq * sq
            return out
        return torch.pow(base, zeta - 1.0)

    def _evaluate(
        self,
        vectors: torch.Tensor,
        edge_index: torch.Tensor,
        atom_types: torch.Tensor,
        *,
        jacobian: bool,
    ) -> tuple[torch.Tensor, DescriptorJacobian | None]:
        n_atoms = atom_types.shape[0]
        w = self.width + 1
        n_edges = vectors.shape[0]
        src, dst = edge_index[0], edge_index[1]
        r = torch.linalg.vector_norm(vectors, dim=-1)
        like = {"dtype": vectors.dtype, "device": vectors.device}

        # ---- radial: (E, C_r) distinct terms, each to its column (or the sink)
        rr = r.unsqueeze(-1)
        fc, dfc = self.cutoff.value_and_derivative(rr, self.rad_rc, derivative=jacobian)
        fc = fc[:, self.rad_rc_index]
        eta, rs = self.rad_params[:, 0], self.rad_params[:, 1]
        d = rr - rs
        gauss = torch.exp(-eta * d * d)
        val = gauss * fc
        n_t = self.n_types
        rad_sum = torch.zeros(n_atoms * n_t, val.shape[1], dtype=val.dtype, device=val.device)
        rad_sum = rad_sum.index_add(0, src * n_t + atom_types[dst], val)
        blocks = [rad_sum.view(n_atoms, -1)]
        jac_rad = None
        if jacobian:
            assert dfc is not None  # internal invariant
            cols = self.rad_cols[atom_types[src] * self.n_types + atom_types[dst]]
            dval = gauss * (dfc[:, self.rad_rc_index] - 2.0 * eta * d * fc)
            jac_rad = dval.unsqueeze(-1) * (vectors / rr).unsqueeze(1)  # (E, C_r, 3)

        # ---- angular: unordered pairs {j, k} of edges of one centre within r_angular
        a_idx = torch.zeros(0, dtype=torch.long, device=r.device)
        jac_ang = torch.zeros(0, w, 3, dtype=vectors.dtype, device=vectors.device)
        if self.has_angular:
            a_idx = torch.nonzero(r < self.r_angular).squeeze(-1)
            a_src, order = torch.sort(src[a_idx], stable=True)
            a_idx = a_idx[order]
            n_ang = a_idx.shape[0]
            counts = torch.zeros(n_atoms, dtype=torch.long, device=r.device)
            counts = counts.index_add(0, a_src, torch.ones_like(a_src))
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(n_ang, device=r.device) - starts[a_src]
            n_after = counts[a_src] - rank - 1  # partners k after j in the centre's group
            first = torch.repeat_interleave(torch.arange(n_ang, device=r.device), n_after)
            offsets = torch.cumsum(n_after, 0) - n_after
            second = first + 1 + (torch.arange(first.shape[0], device=r.device) - offsets[first])
            ej = a_idx[first]
            ek = a_idx[second]
            centre = src[ej]
            vj = vectors[ej]
            vk = vectors[ek]
            vjk = vk - vj
            rij = r[ej].unsqueeze(-1)
            rik = r[ek].unsqueeze(-1)
            rjk = torch.linalg.vector_norm(vjk, dim=-1).unsqueeze(-1)
            cos = (vj * vk).sum(-1, keepdim=True) / (rij * rik)
            # angular factors (P, n_lz): A = (1 + lambda cos)^zeta, dA/dcos
            base = 1.0 + self.ang_lz[:, 0] * cos
            positive = base > 0
            safe = torch.where(positive, base, torch.ones_like(base))
            powers = torch.stack(
                [self._power(safe[:, m], z) for m, z in enumerate(self.ang_zetas)], dim=-1
            )
            zero = torch.zeros_like(base)
            ang = torch.where(positive, powers * safe, zero)
            # radial factors (P, n_x)
            f_ij, df_ij = self.cutoff.value_and_derivative(rij, self.ang_rc, derivative=jacobian)
            f_ik, df_ik = self.cutoff.value_and_derivative(rik, self.ang_rc, derivative=jacobian)
            f_jk, df_jk = self.cutoff.value_and_derivative(rjk, self.ang_rc, derivative=jacobian)
            ix = self.ang_x_rc_index
            f_ij, f_ik, f_jk = f_ij[:, ix], f_ik[:, ix], f_jk[:, ix]
            narrow, eta_a, rs_a = self.ang_x.unbind(-1)
            is_narrow = narrow > 0
            f_jk = torch.where(is_narrow, f_jk, torch.ones_like(f_jk))
            dij, dik, djk = rij - rs_a, rik - rs_a, rjk - rs_a
            expo = torch.exp(-eta_a * (dij * dij + dik * dik + narrow * djk * djk))
            rad = expo * f_ij * f_ik * f_jk
            t_lz, t_x = self.ang_term_lz, self.ang_term_x
            val = self.ang_term_norm * ang[:, t_lz] * rad[:, t_x]
            tj, tk = atom_types[dst[ej]], atom_types[dst[ek]]
            slot = centre * (n_t * n_t) + torch.minimum(tj, tk) * n_t + torch.maximum(tj, tk)
            ang_sum = torch.zeros(
                n_atoms * n_t * n_t, val.shape[1], dtype=val.dtype, device=val.device
            )
            blocks.append(ang_sum.index_add(0, slot, val).view(n_atoms, -1))
            if jacobian:
                a_cols = self.ang_cols[(atom_types[centre] * n_t + tj) * n_t + tk]
                assert df_ij is not None and df_ik is not None and df_jk is not None
                dang = torch.where(positive, self.ang_lz[:, 0] * self.ang_lz[:, 1] * powers, zero)
                df_jk = torch.where(is_narrow, df_jk[:, ix], torch.zeros_like(f_jk))
                g_ij = expo * f_ik * f_jk * (df_ij[:, ix] - 2.0 * eta_a * dij * f_ij)
                g_ik = expo * f_ij * f_jk * (df_ik[:, ix] - 2.0 * eta_a * dik * f_ik)
                g_jk = expo * f_ij * f_ik * (df_jk - 2.0 * eta_a * narrow * djk * f_jk)
                inv = 1.0 / (rij * rik)
                dcos_dj = vk * inv - cos * vj / (rij * rij)  # (P, 3)
                dcos_dk = vj * inv - cos * vk / (rik * rik)
                norm = self.ang_term_norm.unsqueeze(-1)
                a_t = ang[:, t_lz].unsqueeze(-1)
                da_t = (dang[:, t_lz] * rad[:, t_x]).unsqueeze(-1)
                ujk = (vjk / rjk).unsqueeze(1)
                d_j = norm * (
                    da_t * dcos_dj.unsqueeze(1)
                    + a_t
                    * (
                        g_ij[:, t_x].unsqueeze(-1) * (vj / rij).unsqueeze(1)
                        - g_jk[:, t_x].unsqueeze(-1) * ujk
                    )
                )
                d_k = norm * (
                    da_t * dcos_dk.unsqueeze(1)
                    + a_t
                    * (
                        g_ik[:, t_x].unsqueeze(-1) * (vk / rik).unsqueeze(1)
                        + g_jk[:, t_x].unsqueeze(-1) * ujk
                    )
                )
                jac_ang = torch.zeros(n_ang * w, 3, dtype=vectors.dtype, device=vectors.device)
                jac_ang = jac_ang.index_add(
                    0, (first.unsqueeze(-1) * w + a_cols).reshape(-1), d_j.reshape(-1, 3)
                )
                jac_ang = jac_ang.index_add(
                    0, (second.unsqueeze(-1) * w + a_cols).reshape(-1), d_k.reshape(-1, 3)
                )
                jac_ang = jac_ang.view(n_ang, w, 3)
        else:
            blocks.append(torch.zeros(n_atoms, self.ang_cols.shape[1] * n_t * n_t, **like))
        blocks.append(torch.zeros(n_atoms, 1, **like))
        g = torch.cat(blocks, dim=1).gather(1, self.col_source[atom_types])
        if not jacobian:
            return g, None
        assert jac_rad is not None
        return g, DescriptorJacobian(
            n_edges=n_edges,
            width=self.width,
            radial=jac_rad,
            radial_cols=cols,
            angular_edges=a_idx,
            angular=jac_ang,
        )


@dataclass
class DescriptorJacobian:
    """Derivatives of the raw symmetry functions by the edge vectors (sparse layout).

    Atom ``i``'s functions depend only on the vectors of the edges centred on ``i``, so
    ``dG_i/dv_e`` is stored per edge ``e`` (centre ``i = src[e]``).

    Attributes
    ----------
    n_edges, width
        Number of edges and of feature columns.
    radial
        ``(E, C_r, 3)``: derivative of each distinct radial term of edge ``e``; term
        ``c`` adds to column ``radial_cols[e, c]`` (``width`` = the dropped sink).
    radial_cols
        ``(E, C_r)`` int64.
    angular_edges
        ``(E_a,)`` int64 edges within the angular cutoff.
    angular
        ``(E_a, width + 1, 3)``: ``dG_{src[e], col}/dv_e`` of the angular functions
        (last column: sink).
    """

    n_edges: int
    width: int
    radial: torch.Tensor
    radial_cols: torch.Tensor
    angular_edges: torch.Tensor
    angular: torch.Tensor

    def edge_gradient(self, src: torch.Tensor, de_dg: torch.Tensor) -> torch.Tensor:
        """``dE/dv`` ``(E, 3)`` from ``dE/dG`` ``(N, width)`` of the raw functions.

        Linear in ``de_dg`` and differentiable with respect to it (training on forces
        differentiates only through the networks).
        """
        pad = torch.cat([de_dg, torch.zeros_like(de_dg[:, :1])], dim=1)  # sink column
        per_edge = pad[src]
        grad = (per_edge.gather(1, self.radial_cols).unsqueeze(-1) * self.radial).sum(1)
        if self.angular_edges.shape[0]:
            ang = (per_edge[self.angular_edges].unsqueeze(-1) * self.angular).sum(1)
            grad = grad.index_add(0, self.angular_edges, ang)
        return grad

    def nbytes(self) -> int:
        """Memory held, bytes."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.radial, self.radial_cols, self.angular_edges, self.angular)
        )


def describe(sf_set: SymmetryFunctionSet, elements: Sequence[str]) -> str:
    """A human-readable table of the set (per element, n2p2 order)."""
    lines = []
    for el in elements:
        sfs = sf_set.for_element(el, elements)
        lines.append(f"{el}: {len(sfs)} inputs")
        lines += [f"  {i + 1:3d} {sf.n2p2_line()[18:]}" for i, sf in enumerate(sfs)]
    return "\n".join(lines)
