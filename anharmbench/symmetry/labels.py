"""Mulliken labels of little co-group irreps from phonopy's character tables."""

from __future__ import annotations

import itertools

import numpy as np
import spglib
from phonopy.phonon.character_table import character_table

__all__ = ["LittleGroupTable", "signed_permutations"]


def signed_permutations() -> np.ndarray:
    """The 48 signed 3x3 permutation matrices: ``(48, 3, 3)`` int64."""
    out = []
    for p in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            for i in range(3):
                m[i, p[i]] = signs[i]
            out.append(m)
    return np.array(out)


class LittleGroupTable:
    """Character table of a little co-group in the setting of phonopy's database.

    Parameters
    ----------
    rotations : (k, 3, 3) int array
        Fractional rotations of the little co-group (any crystallographic setting).

    Attributes
    ----------
    symbol : str
        Hermann-Mauguin point-group symbol (e.g. ``"4/mmm"``).
    ok : bool
        Whether every rotation could be matched to a class of a phonopy table.
    irrep_labels : list[str]
        Mulliken labels (order of phonopy's table).
    chars : (n_irreps, k) complex128
        Character of each irrep on each given rotation.
    """

    def __init__(self, rotations: np.ndarray) -> None:
        rotations = np.asarray(rotations, dtype=np.int64)
        self.rotations = rotations
        self.ok = False
        self.irrep_labels: list[str] = []
        self.chars = np.zeros((0, len(rotations)), dtype=complex)
        pg = spglib.get_pointgroup(rotations)
        self.symbol = pg[0].strip() if pg is not None else "?"
        tables = character_table.get(self.symbol) if pg is not None else None
        if not tables:
            return
        T = np.array(pg[2], dtype=float)
        conv = np.rint(np.einsum("ij,njk,kl->nil", np.linalg.inv(T), rotations, T)).astype(np.int64)
        for ct in tables:
            symbols = self._match(conv, ct["mapping_table"])
            if symbols is None:
                for P in signed_permutations():
                    symbols = self._match(
                        np.einsum("ji,njk,kl->nil", P, conv, P), ct["mapping_table"]
                    )
                    if symbols is not None:
                        break
            if symbols is None:
                continue
            rot_list = ct["rotation_list"]
            rot_list = (rot_list,) if isinstance(rot_list, str) else tuple(rot_list)
            labels, rows = [], []
            for lab, row in ct["character_table"].items():
                row = (row,) if np.isscalar(row) else tuple(row)
                labels.append(lab)
                rows.append([row[rot_list.index(s)] for s in symbols])
            self.irrep_labels = labels
            self.chars = np.array(rows, dtype=complex)
            self.ok = True
            return

    @staticmethod
    def _match(conv: np.ndarray, mapping: dict) -> list[str] | None:
        lookup = {}
        for sym, mats in mapping.items():
            for m in mats:
                lookup[np.array(m, dtype=np.int64).tobytes()] = sym
        out = []
        for r in conv:
            s = lookup.get(r.tobytes())
            if s is None:
                return None
            out.append(s)
        return out

    def decompose(self, chars: np.ndarray, tol: float = 1e-6) -> list[tuple[str, int]] | None:
        """Decompose a character ``(k,)`` into irreps: list of ``(label, multiplicity)``.

        Returns ``None`` when the table is unavailable or the result is not integral.
        """
        if not self.ok:
            return None
        chars = np.asarray(chars, dtype=complex)
        k = len(self.rotations)
        mult = (self.chars.conj() @ chars) / k
        if not np.allclose(mult, np.rint(mult.real), atol=tol):
            return None
        m = np.rint(mult.real).astype(int)
        if (m < 0).any() or not np.allclose(m @ self.chars, chars, atol=1e-5):
            return None
        return [(lab, int(c)) for lab, c in zip(self.irrep_labels, m, strict=True) if c > 0]

    def label(self, chars: np.ndarray) -> str | None:
        """Mulliken label of a (possibly reducible) character, e.g. ``"Eu"`` or ``"E1+E2"``."""
        dec = self.decompose(chars)
        if not dec:
            return None
        return "+".join(lab if c == 1 else f"{c}{lab}" for lab, c in dec)

    def order_key(self, label: str) -> int:
        """Position of (the first irrep of) a label in the table, for sorting."""
        first = label.split("+")[0].lstrip("0123456789")
        return (
            self.irrep_labels.index(first) if first in self.irrep_labels else len(self.irrep_labels)
        )
