"""Containers of per-mode observables and q-point paths shared by the observables.

* :class:`QPath` -- a path through the Brillouin zone (default the paper's
  Gamma-X-K-Gamma-L of the FCC lattice), sampled densely (:func:`band_path`) or at the
  q-points of a mesh or an FTG only (:func:`lattice_points_on_path`);
* :class:`ModeData` -- a per-mode, per-temperature quantity (linewidth, lineshift) on a set
  of q-points, with its units and conventions, written by :mod:`~anharmbench.observables.io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
from ase import Atoms

__all__ = [
    "PAPER_PATH",
    "QPoints",
    "resolve_qpoints",
    "ModeData",
    "QPath",
    "band_path",
    "lattice_points_on_path",
]

#: The paper's path for the FCC lattice, fractional coordinates of the primitive reciprocal
#: basis of ``ase.build.bulk(..., "fluorite")``: Gamma -> X = (0, 0, 1) 2pi/a, then the
#: equivalent X' = (1, 1, 0) 2pi/a -> K -> Gamma along [110], then Gamma -> L. The plot is
#: continuous at X (X and X' differ by a reciprocal lattice vector).
PAPER_PATH: list[list[tuple[str, tuple[float, float, float]]]] = [
    [("Γ", (0.0, 0.0, 0.0)), ("X", (0.5, 0.5, 0.0))],
    [("X", (0.5, 0.5, 1.0)), ("K", (0.375, 0.375, 0.75)), ("Γ", (0.0, 0.0, 0.0)),
     ("L", (0.5, 0.5, 0.5))],
]

PathSpec = Sequence[Sequence[tuple[str, Sequence[float]]]]

#: What the per-mode observables accept as q-points: an array ``(nq, 3)``, a :class:`QPath`,
#: or ``"mesh"`` for the irreducible q-points of the mesh (with their weights).
QPoints = Union[np.ndarray, Sequence[Sequence[float]], "QPath", str]


@dataclass(frozen=True, eq=False)
class QPath:
    """q-points along a path, with the abscissa of a band plot.

    Attributes
    ----------
    qpoints : numpy.ndarray
        ``(nq, 3)`` float64 fractional q-points (primitive reciprocal basis).
    distances : numpy.ndarray
        ``(nq,)`` float64 cumulative Cartesian path length, 1/Angstrom (no 2 pi).
    tick_distances : numpy.ndarray
        ``(nt,)`` abscissas of the labelled nodes.
    tick_labels : list[str]
        Node labels (``"X|U"`` where a segment ends and a different one starts).
    """

    qpoints: np.ndarray
    distances: np.ndarray
    tick_distances: np.ndarray
    tick_labels: list[str]

    def __len__(self) -> int:
        return len(self.qpoints)


def _segments(path: PathSpec) -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    out = []
    for seg in path:
        nodes = [(str(lab), np.asarray(q, dtype=float).reshape(3)) for lab, q in seg]
        if len(nodes) < 2:
            raise ValueError("a path segment needs at least two nodes")
        for (la, qa), (lb, qb) in zip(nodes[:-1], nodes[1:], strict=True):
            out.append((qa, qb, la, lb))
    return out


def _ticks(path: PathSpec, reciprocal: np.ndarray) -> tuple[np.ndarray, list[str],
                                                          list[tuple[float, float]]]:
    """Tick positions and labels, and the (start, end) abscissa of every node-to-node leg."""
    ticks: list[float] = []
    labels: list[str] = []
    legs: list[tuple[float, float]] = []
    x = 0.0
    for s, seg in enumerate(path):
        nodes = [(str(lab), np.asarray(q, dtype=float).reshape(3)) for lab, q in seg]
        if s == 0:
            ticks.append(x)
            labels.append(nodes[0][0])
        elif labels[-1] != nodes[0][0]:
            labels[-1] = f"{labels[-1]}|{nodes[0][0]}"
        for (_, qa), (lb, qb) in zip(nodes[:-1], nodes[1:], strict=True):
            length = float(np.linalg.norm((qb - qa) @ reciprocal))
            legs.append((x, x + length))
            x += length
            ticks.append(x)
            labels.append(lb)
    return np.asarray(ticks), labels, legs


def band_path(primitive: Atoms, path: PathSpec | None = None, npoints: int = 51,
              extra: np.ndarray | None = None) -> QPath:
    """A densely sampled path (``npoints`` per leg, ends included) for dispersions.

    Parameters
    ----------
    primitive
        Primitive cell (its reciprocal lattice gives the distances).
    path
        Segments of ``(label, fractional q)`` nodes; default :data:`PAPER_PATH`.
    npoints
        Points per leg.
    extra
        ``(m, 3)`` q-points to insert exactly where they lie on the path (e.g. FTG points).
    """
    path = PAPER_PATH if path is None else path
    rec = np.asarray(primitive.cell.reciprocal(), dtype=float)  # rows, 1/A, no 2 pi
    ticks, labels, legs = _ticks(path, rec)
    qs, ds = [], []
    for (qa, qb, _, _), (xa, xb) in zip(_segments(path), legs, strict=True):
        t = np.linspace(0.0, 1.0, int(npoints))
        if extra is not None and len(extra):
            t = np.union1d(t, _params_on_leg(qa, qb, np.asarray(extra, dtype=float)))
        qs.append(qa[None] + t[:, None] * (qb - qa)[None])
        ds.append(xa + t * (xb - xa))
    return QPath(np.concatenate(qs), np.concatenate(ds), ticks, labels)


def _params_on_leg(qa: np.ndarray, qb: np.ndarray, points: np.ndarray,
                   tol: float = 1e-8) -> np.ndarray:
    """Parameters ``t`` in [0, 1] where ``qa + t (qb - qa)`` equals a point mod 1."""
    d = qb - qa
    out = []
    shifts = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    k = int(np.argmax(np.abs(d)))
    for p in points:
        for g in shifts:
            target = p + g
            t = (target[k] - qa[k]) / d[k]
            if -tol <= t <= 1 + tol and np.allclose(qa + t * d, target, atol=1e-7):
                out.append(min(max(t, 0.0), 1.0))
    return np.unique(np.round(np.asarray(out, dtype=float), 12))


def lattice_points_on_path(primitive: Atoms, grid: np.ndarray, path: PathSpec | None = None
                           ) -> QPath:
    """The q-points of a grid that lie on the path (for mesh-bound observables).

    Parameters
    ----------
    primitive
        Primitive cell.
    grid
        ``(3, 3)`` integer matrix ``M``: ``q`` is a grid point when ``M q`` is integer; a
        mesh ``n1 x n2 x n3`` is ``diag(n)``, the FTG of a supercell ``S`` is ``S``.
    path
        Default :data:`PAPER_PATH`.
    """
    path = PAPER_PATH if path is None else path
    M = np.asarray(grid, dtype=float)
    rec = np.asarray(primitive.cell.reciprocal(), dtype=float)
    ticks, labels, legs = _ticks(path, rec)
    qs, ds = [], []
    for (qa, qb, _, _), (xa, xb) in zip(_segments(path), legs, strict=True):
        a, d = M @ qa, M @ (qb - qa)
        cand = [0.0, 1.0]
        for i in range(3):
            if abs(d[i]) > 1e-12:
                lo, hi = sorted((a[i], a[i] + d[i]))
                m = np.arange(np.ceil(lo - 1e-9), np.floor(hi + 1e-9) + 1)
                cand.extend(((m - a[i]) / d[i]).tolist())
        t = np.unique(np.round(np.clip(cand, 0, 1), 12))
        pts = qa[None] + t[:, None] * (qb - qa)[None]
        x = pts @ M.T
        ok = np.all(np.abs(x - np.rint(x)) < 1e-6, axis=1)
        qs.append(pts[ok])
        ds.append((xa + t * (xb - xa))[ok])
    q = np.concatenate(qs)
    dist = np.concatenate(ds)
    keep = np.ones(len(dist), dtype=bool)
    keep[1:] = np.abs(np.diff(dist)) > 1e-10  # a node shared by two legs once
    return QPath(q[keep], dist[keep], ticks, labels)


def resolve_qpoints(qpoints: QPoints, phonon: Any, mesh: Any
                    ) -> tuple[np.ndarray, QPath | None, np.ndarray | None]:
    """``(q (nq, 3), path or None, weights or None)`` from what a caller passed.

    ``"mesh"`` gives the irreducible q-points of ``mesh`` (phonopy's) and their weights.
    """
    if isinstance(qpoints, str):
        if qpoints != "mesh":
            raise ValueError(f"q-points are an array, a QPath or 'mesh', not {qpoints!r}")
        from anharmbench.observables.harmonic import Mesh, irreducible_qpoints

        q, w = irreducible_qpoints(phonon, mesh if isinstance(mesh, Mesh) else Mesh(mesh))
        return q, None, w
    if isinstance(qpoints, QPath):
        return qpoints.qpoints, qpoints, None
    return np.atleast_2d(np.asarray(qpoints, dtype=float)), None, None


@dataclass(eq=False)
class ModeData:
    """A per-mode, per-temperature observable on a set of q-points.

    Attributes
    ----------
    quantity : str
        ``"bubble_gamma"``, ``"bubble_shift"``, ``"loop_shift"``, ``"sunset_gamma"``.
    potential : str
        Name of the potential.
    qpoints : numpy.ndarray
        ``(nq, 3)`` float64 fractional q-points.
    frequencies : numpy.ndarray
        ``(nq, nb)`` float64 harmonic frequencies, THz.
    temperatures : numpy.ndarray
        ``(nT,)`` float64, K.
    values : numpy.ndarray
        ``(nT, nq, nb)`` float64, THz. Linewidth quantities (``*_gamma``) are phono3py's
        ``gamma``: ``Gamma = -Im Sigma``, the half width at half maximum, so the linewidth
        (FWHM) is ``2 Gamma`` and the lifetime ``tau = 1 / (2 * 2 pi Gamma)``; shifts are
        ``Delta = Re Sigma`` (positive: hardening).
    distances : numpy.ndarray or None
        ``(nq,)`` path abscissa when the q-points lie on a path.
    weights : numpy.ndarray or None
        ``(nq,)`` int multiplicities when the q-points are a mesh's irreducible points.
    meta : dict
        Settings (mesh, smearing, ...) and provenance.
    path : QPath or None
        The path (ticks and labels) the q-points were taken from.
    errors : numpy.ndarray or None
        ``(nT, nq, nb)`` float64 standard errors of ``values`` (THz) when they are estimated
        by sampling (:mod:`~anharmbench.observables.sunset_sampled`).
    covariance : numpy.ndarray or None
        ``(nT, nq, nb, nb)`` float64 covariance of the branches of each q-point (THz^2);
        different q-points are independent.
    """

    quantity: str
    potential: str
    qpoints: np.ndarray
    frequencies: np.ndarray
    temperatures: np.ndarray
    values: np.ndarray
    distances: np.ndarray | None = None
    weights: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: QPath | None = None
    errors: np.ndarray | None = None
    covariance: np.ndarray | None = None

    units: str = "THz"

    def set_origin(self, path: QPath | None, weights: np.ndarray | None) -> ModeData:
        """Record where the q-points came from, as :func:`resolve_qpoints` returned it.

        Parameters
        ----------
        path
            The path the q-points lie on (sets :attr:`path` and :attr:`distances`), or
            ``None``.
        weights
            ``(nq,)`` multiplicities of a mesh's irreducible points, or ``None``.

        Returns
        -------
        ModeData
            ``self``.
        """
        if path is not None:
            self.distances, self.path = path.distances, path
        self.weights = weights
        return self

    @property
    def linewidth(self) -> np.ndarray:
        """``2 Gamma`` (FWHM, THz) for a linewidth quantity."""
        if not self.quantity.endswith("gamma"):
            raise ValueError(f"{self.quantity} is not a linewidth")
        return 2.0 * self.values

    def at_temperature(self, temperature: float) -> np.ndarray:
        """``(nq, nb)`` values at one of the computed temperatures."""
        i = int(np.argmin(np.abs(self.temperatures - float(temperature))))
        if abs(self.temperatures[i] - float(temperature)) > 1e-6:
            raise ValueError(f"{temperature} K was not computed (have "
                             f"{self.temperatures.tolist()})")
        return self.values[i]
