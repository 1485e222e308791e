"""The contract between the symmetry stage and the finite-difference stage.

The symmetry stage (:mod:`anharmbench.symmetry`) builds, for a supercell and an
order ``n``, an orthonormal basis ``{B_k}`` of the symmetric ``n``-tensors on the
displacement space (rigid translations removed) that the space group leaves
invariant. The measurement stage (:mod:`anharmbench.derivatives`) only needs the
operations below, so any object that provides them (including a toy basis in a
test) can be measured.

Conventions
-----------
* ``modes`` is a real ``(3N, M)`` array with orthonormal columns spanning the
  displacement space with rigid translations removed (``M = 3N - 3``). A Cartesian
  displacement ``u`` of shape ``(N, 3)`` (Angstrom) has mode amplitudes
  ``c = modes.T @ u.reshape(-1)``.
* The energy's ``n``-th derivative tensor in mode coordinates is
  ``D_n = sum_k d_k B_k`` with ``d_k`` in eV/Angstrom^n, so the Taylor series is
  ``E(u) = E_0 + sum_n (1/n!) sum_k d_k B_k(c, ..., c)``.
* ``energy_terms(c)[..., k] = B_k(c, ..., c)`` and
  ``force_terms(c)[..., k, :] = d/dc B_k(c, ..., c) = n B_k(c, ..., c, .)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class DerivativeBasis(Protocol):
    """An orthonormal basis of invariant symmetric tensors of one order."""

    @property
    def order(self) -> int:
        """The derivative order ``n`` (2..6)."""
        ...

    @property
    def modes(self) -> np.ndarray:
        """Real ``(3N, M)`` orthonormal mode vectors (float64, dimensionless)."""
        ...

    @property
    def labels(self) -> list[str]:
        """One human-readable label per basis tensor, e.g. ``"X:Eu X:Eu G:T2g"``."""
        ...

    def __len__(self) -> int:
        """Number of irreducible derivatives ``K``."""
        ...

    def energy_terms(self, c: np.ndarray) -> np.ndarray:
        """``B_k(c, ..., c)`` for mode amplitudes ``c`` ``(..., M)``; returns ``(..., K)``."""
        ...

    def force_terms(self, c: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`energy_terms` in ``c``; returns ``(..., K, M)``."""
        ...
