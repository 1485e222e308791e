"""Periodic neighbour lists with explicit lattice shifts (any cutoff, any cell).

Convention (nequip's, used by the exported models and LAMMPS): an edge ``(i, j, S)``
with integer shift ``S`` has the vector ``x_j - x_i + S @ cell`` (cell rows = lattice
vectors) and length ``< cutoff``. Every periodic image within the cutoff is listed,
including images of atom ``i`` itself, so cutoffs longer than half a cell width (the
12-atom ThO2 cell is 5.6 A wide, the radial cutoff is 10 A) are handled exactly. Only
the zero-shift self pair is excluded. Both directions of each pair appear.

:func:`neighbor_list` with ``method="minimum_image"`` instead refuses such cutoffs
(:class:`NeighborListError`): a minimum-image list silently drops neighbours there.
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

__all__ = ["NeighborListError", "atoms_neighbor_list", "neighbor_list", "plane_spacings"]

#: Pairs examined at once (memory bound of the vectorized search).
_CHUNK_PAIRS = 4_000_000


class NeighborListError(ValueError):
    """A neighbour list cannot be built as asked (cutoff, cell or periodicity)."""


def plane_spacings(cell: np.ndarray) -> np.ndarray:
    """Distances between lattice planes, ``(3,)`` Angstrom (``1 / |b_k|``, ``b`` reciprocal)."""
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(np.linalg.det(cell))
    if not volume > 1e-12:
        raise NeighborListError(f"the cell {cell.tolist()} is singular (volume {volume})")
    recip = np.linalg.inv(cell).T  # rows b_k with a_i . b_k = delta_ik
    return 1.0 / np.linalg.norm(recip, axis=1)


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray,
    cutoff: float,
    *,
    pbc: tuple[bool, bool, bool] | np.ndarray = (True, True, True),
    method: str = "images",
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs closer than ``cutoff``, with their lattice shifts.

    Parameters
    ----------
    positions
        ``(N, 3)`` float64 Cartesian positions, Angstrom (need not be wrapped).
    cell
        ``(3, 3)`` float64 lattice vectors as rows, Angstrom.
    cutoff
        Cutoff radius, Angstrom (> 0).
    pbc
        Periodicity of each lattice direction.
    method
        ``"images"`` (default): every image within the cutoff, whatever the cell;
        ``"minimum_image"``: raise :class:`NeighborListError` unless the cutoff is at most
        half of every periodic plane spacing (then both methods give the same list).

    Returns
    -------
    edge_index : numpy.ndarray
        ``(2, E)`` int64, rows ``i`` (centre) and ``j`` (neighbour), sorted by ``i``.
    shifts : numpy.ndarray
        ``(E, 3)`` float64 integer-valued shifts ``S``: the edge vector is
        ``x_j - x_i + S @ cell``.
    """
    pos = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise NeighborListError(f"positions must have shape (N, 3), got {pos.shape}")
    if cell.shape != (3, 3):
        raise NeighborListError(f"cell must have shape (3, 3), got {cell.shape}")
    if not np.all(np.isfinite(pos)):
        raise NeighborListError("positions contain NaN or infinite values")
    if not (cutoff > 0 and math.isfinite(cutoff)):
        raise NeighborListError(f"cutoff must be positive and finite, got {cutoff}")
    if method not in ("images", "minimum_image"):
        raise NeighborListError(f"unknown method {method!r}; use 'images' or 'minimum_image'")
    spacing = plane_spacings(cell)
    if method == "minimum_image":
        short = [k for k in range(3) if pbc[k] and cutoff > 0.5 * spacing[k]]
        if short:
            raise NeighborListError(
                f"cutoff {cutoff} A is longer than half the cell width along lattice "
                f"direction(s) {short} (plane spacings {np.round(spacing, 4).tolist()} A): a "
                "minimum-image neighbour list would miss neighbours. Use method='images' "
                "(every periodic image) or a larger supercell"
            )
    n = len(pos)
    # wrap periodic directions into [0, 1), remembering the integer offsets
    frac = pos @ np.linalg.inv(cell)
    offset = np.where(pbc, np.floor(frac), 0.0)
    wrapped = (frac - offset) @ cell
    reach = [int(math.ceil(cutoff / spacing[k])) if pbc[k] else 0 for k in range(3)]
    grid = np.stack(
        np.meshgrid(*[np.arange(-m, m + 1) for m in reach], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    shift_vecs = grid.astype(np.float64) @ cell
    cut2 = cutoff * cutoff
    ii_all, jj_all, ss_all = [], [], []
    # chunk over centres so that (centres x atoms x shifts) stays bounded
    per_centre = max(1, n * len(grid))
    step = max(1, _CHUNK_PAIRS // per_centre)
    for start in range(0, n, step):
        stop = min(n, start + step)
        d = (
            wrapped[None, :, None, :]
            - wrapped[start:stop, None, None, :]
            + shift_vecs[None, None, :, :]
        )  # (c, n, s, 3)
        d2 = np.einsum("cnsk,cnsk->cns", d, d)
        ci, nj, sk = np.nonzero(d2 < cut2)
        ci = ci + start
        keep = ~((ci == nj) & np.all(grid[sk] == 0, axis=1))
        ii_all.append(ci[keep])
        jj_all.append(nj[keep])
        ss_all.append(grid[sk[keep]])
    ii = np.concatenate(ii_all).astype(np.int64)
    jj = np.concatenate(jj_all).astype(np.int64)
    ss = np.concatenate(ss_all).astype(np.float64)
    # back to the unwrapped positions: x_j - x_i + S@cell with S = S_w - n_j + n_i
    ss = ss - offset[jj] + offset[ii]
    order = np.lexsort((jj, ii))
    return np.stack([ii[order], jj[order]]), ss[order]


def atoms_neighbor_list(
    atoms: Atoms, cutoff: float, *, method: str = "images"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`neighbor_list` of an ``ase.Atoms`` (its positions, cell and pbc)."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if not np.all(pbc):
        # a non-periodic direction needs a non-degenerate cell vector for the fractional
        # bookkeeping only; its length does not matter
        cell = cell.copy()
        lengths = np.linalg.norm(cell, axis=1)
        if np.any(lengths[~pbc] < 1e-12) or abs(np.linalg.det(cell)) < 1e-12:
            raise NeighborListError(
                "non-periodic structures need a full (non-degenerate) cell here; set "
                "atoms.cell to a box enclosing the atoms"
            )
    return neighbor_list(atoms.positions, cell, cutoff, pbc=pbc, method=method)
