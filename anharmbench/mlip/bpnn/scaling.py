"""Scaling of the symmetry functions, as n2p2's ``scaling.data`` and keywords.

From the minimum, maximum, mean and standard deviation (population) of each function
over the training atoms, ``scale`` -> ``S_min + (S_max - S_min)(G - G_min)/(G_max -
G_min)``, ``center`` -> ``G - G_mean``, ``scale_center`` -> ``S_min + (S_max - S_min)(G -
G_mean)/(G_max - G_min)``, ``scale_sigma`` -> ``S_min + (S_max - S_min)(G -
G_mean)/G_sigma``, ``none``. The statistics are per element, in the n2p2 order of
:meth:`~.symmetry_functions.SymmetryFunctionSet.for_element`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SCALING_TYPES", "ScalingError", "SymmetryFunctionScaling"]


class ScalingError(ValueError):
    """Scaling statistics are malformed, constant, or belong to another set of functions."""


#: Scaling types and the n2p2 keywords that select them.
SCALING_TYPES: dict[str, tuple[str, ...]] = {
    "none": (),
    "scale": ("scale_symmetry_functions",),
    "center": ("center_symmetry_functions",),
    "scale_center": ("scale_symmetry_functions", "center_symmetry_functions"),
    "scale_sigma": ("scale_symmetry_functions_sigma",),
}


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
        G_sigma`` in :meth:`~.symmetry_functions.SymmetryFunctionSet.for_element` order.
    fingerprint
        :meth:`~.symmetry_functions.SymmetryFunctionSet.fingerprint` of the set the
        statistics belong to.
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
