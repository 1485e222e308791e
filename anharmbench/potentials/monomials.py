"""Monomials of a Taylor Hamiltonian as integer arrays: merging, ordering, translations.

A monomial of order ``n`` is a row of ``n`` flat indices ``3 * atom + cart``; a set of
them is a ``(K, n)`` int64 array with a ``(K,)`` float64 coefficient array. These helpers
are shared by :class:`~anharmbench.potentials.taylor_cartesian.TaylorTerms` and by the
expansion (:mod:`anharmbench.hamiltonian.expansion`). Our own code: sparse polynomial
bookkeeping of this kind is in none of phonopy, hiPhive or symfc's public APIs.
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers

from anharmbench.potentials.taylor_file import TaylorFormatError

__all__ = [
    "TRANSLATION_TOL",
    "check_translations",
    "flat_translation_table",
    "lex_less",
    "merge_monomials",
    "multiplicity_factorials",
    "orbit_representatives",
]

#: Fractional tolerance for "the translation table moves every atom by one lattice
#: vector".
TRANSLATION_TOL = 1e-6


def multiplicity_factorials(flat: np.ndarray) -> np.ndarray:
    """``prod_r k_r!`` of each row of sorted ``(K, n)`` indices (``k_r`` = repeat counts)."""
    flat = np.asarray(flat)
    out = np.ones(len(flat))
    run = np.ones(len(flat), dtype=np.int64)
    for s in range(1, flat.shape[1] if flat.ndim == 2 else 0):
        same = flat[:, s] == flat[:, s - 1]
        run = np.where(same, run + 1, 1)
        out *= run
    return out


def _row_keys(flat: np.ndarray, base: int) -> np.ndarray | None:
    """Each row of ``(K, n)`` indices below ``base`` as one int64 in base ``base`` (the
    keys order as the rows do lexicographically); None when ``base**n`` overflows int64."""
    n, base = flat.shape[1], int(base)  # a Python int: base**n must not wrap around
    if n == 0 or base**n >= 2**63:
        return None
    key = np.zeros(len(flat), dtype=np.int64)
    for k in range(n):
        key = key * base + flat[:, k]
    return key


def _unique_rows(flat: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(flat, axis=0, return_inverse=True)`` for ``(K, n)`` indices below ``base``.

    numpy's row-wise unique sorts rows as opaque records, about 40 s for the 14 million
    fourth-order terms of a 4I expansion. When ``base**n`` fits in int64 each row is
    encoded as one integer in base ``base`` (its order is the rows' lexicographic order),
    and rows that are already strictly increasing (an expansion's own output) are
    returned as they are.
    """
    key = _row_keys(flat, base)
    if key is None:
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        return uniq, inverse.reshape(-1)
    if np.all(key[1:] > key[:-1]):
        return flat, np.arange(len(flat))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return flat[first], inverse.reshape(-1)


def merge_monomials(
    flat: np.ndarray, coef: np.ndarray, base: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sort the factors of each monomial and add up equal monomials.

    Parameters
    ----------
    flat
        ``(K, n)`` int64 flat indices below ``base``.
    coef
        ``(K,)`` float64 coefficients.
    base
        ``3 N``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(K', n)`` sorted distinct monomials in lexicographic order, ``(K',)`` summed
        coefficients (zeros kept).
    """
    flat = np.sort(np.asarray(flat, dtype=np.int64), axis=1)
    if len(coef) == 0:
        return flat.reshape(0, flat.shape[1]), np.asarray(coef, dtype=float)
    uniq, inverse = _unique_rows(flat, base)
    return uniq, np.bincount(inverse, weights=coef, minlength=len(uniq))


def lex_less(a: np.ndarray, b: np.ndarray, base: int) -> np.ndarray:
    """Row-wise lexicographic ``a < b`` of two ``(K, n)`` integer arrays below ``base``."""
    ka = _row_keys(a, base)
    if ka is not None:
        return ka < _row_keys(b, base)
    diff = a != b
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(a))
    return diff.any(axis=1) & (a[rows, first] < b[rows, first])


def flat_translation_table(translations: np.ndarray) -> np.ndarray:
    """``(G, 3N)`` int64: flat index ``3 J + a`` moved by each translation."""
    table = np.asarray(translations, dtype=np.int64)
    return (3 * table[:, :, None] + np.arange(3)).reshape(len(table), -1)


def orbit_representatives(flat: np.ndarray, translations: np.ndarray) -> np.ndarray:
    """One translate of each monomial, the same for every monomial of its orbit.

    Among the translates that move one of its atoms onto the smallest atom index of
    that atom's orbit, the one whose sorted flat indices are lexicographically smallest.
    Equal for all translates of a monomial (a lattice translation group acts freely on
    the atoms, so the translation moving an atom onto its orbit's smallest atom is unique).

    Parameters
    ----------
    flat
        ``(K, n)`` int64 flat indices ``3 * atom + cart``.
    translations
        ``(G, N)`` translation table (a group of lattice translations).

    Returns
    -------
    numpy.ndarray
        ``(K, n)`` int64, factors sorted.
    """
    flat = np.asarray(flat, dtype=np.int64)
    table = np.asarray(translations, dtype=np.int64)
    if len(table) == 1 or len(flat) == 0:
        return np.sort(flat, axis=1)
    base = 3 * table.shape[1]
    to_home = np.argmax(table == table.min(axis=0)[None, :], axis=0)  # (N,)
    table3 = flat_translation_table(table)
    best = np.sort(table3[to_home[flat[:, 0] // 3][:, None], flat], axis=1)
    for s in range(1, flat.shape[1]):
        moved = np.sort(table3[to_home[flat[:, s] // 3][:, None], flat], axis=1)
        better = lex_less(moved, best, base)
        best[better] = moved[better]
    return best


def check_translations(
    table: np.ndarray, symbols: tuple[str, ...], reference: np.ndarray, cell: np.ndarray
) -> None:
    """Refuse a translation table that is not a group of lattice translations of the cell."""
    g, n_atoms = table.shape if table.ndim == 2 else (0, 0)
    if g == 0 or n_atoms != len(symbols):
        raise TaylorFormatError(
            f"the translation table has shape {table.shape}, expected (G >= 1, {len(symbols)})"
        )
    if table.min() < 0 or table.max() >= n_atoms or not np.all(
        np.sort(table, axis=1) == np.arange(n_atoms)[None, :]
    ):
        raise TaylorFormatError("every row of the translation table must permute the atoms")
    numbers = np.array([atomic_numbers[s] for s in symbols])
    if np.any(numbers[table] != numbers[None, :]):
        raise TaylorFormatError("a translation of the table moves an atom onto another element")
    frac = (reference[table] - reference[None, :, :]) @ np.linalg.inv(cell)  # (G, N, 3)
    shift = frac[:, :1, :]
    dev = frac - shift
    if np.abs(dev - np.rint(dev)).max(initial=0.0) > TRANSLATION_TOL:
        raise TaylorFormatError(
            "a row of the translation table does not move every atom by the same vector: "
            "it is not a lattice translation"
        )
    # the shifts (fractions of the cell, multiples of 1/G) must form a group
    scaled = (shift[:, 0, :] % 1.0) * g
    if np.abs(scaled - np.rint(scaled)).max(initial=0.0) > TRANSLATION_TOL * g:
        raise TaylorFormatError(
            f"the {g} translations of the table do not form a group (a shift is not a "
            f"multiple of 1/{g} of the cell)"
        )
    keys = np.rint(scaled).astype(np.int64) % g
    code = (keys[:, 0] * g + keys[:, 1]) * g + keys[:, 2]
    if len(np.unique(code)) != g:
        raise TaylorFormatError("the translation table repeats a translation")
    both = (keys[:, None, :] + keys[None, :, :]) % g
    if not np.isin((both[..., 0] * g + both[..., 1]) * g + both[..., 2], code).all():
        raise TaylorFormatError("the translations of the table do not form a group")
