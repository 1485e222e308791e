"""Labels of the potentials of a study: ``reference``, ``<name>@<dataset>``, ``<name>``.

A trained model is trained once per seed. Its first seed keeps the plain label (so a study
run before seeds existed keeps its stages); every further seed is a *replica* labelled
``<name>@<dataset>#<seed>``. Table I and the parity figures pool a model's replicas into
mean and spread; the observables use the first seed's model.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SEED_MARK", "Label", "model_label", "parse_label"]

#: Separates a replica's seed from its model's label.
SEED_MARK = "#"


class Label(NamedTuple):
    """A potential's label, taken apart.

    ``name`` (e.g. ``GNN``), ``dataset`` (``idmd``, ``refmd``, ``dft`` or ``""`` for a
    model not trained here and for the reference), ``seed`` (``None`` for the first seed or
    an untrained potential).
    """

    name: str
    dataset: str
    seed: int | None

    @property
    def model(self) -> str:
        """The label shared by all seeds: ``<name>@<dataset>`` or ``<name>``."""
        return f"{self.name}@{self.dataset}" if self.dataset else self.name


def model_label(name: str, dataset: str | None = None, seed: int | None = None) -> str:
    """The label of a potential (``seed``: a replica's, ``None`` for the first seed)."""
    label = f"{name}@{dataset}" if dataset else name
    return label if seed is None else f"{label}{SEED_MARK}{seed}"


def parse_label(label: str) -> Label:
    """The :class:`Label` of ``label`` (inverse of :func:`model_label`)."""
    base, mark, seed = label.partition(SEED_MARK)
    name, _, dataset = base.partition("@")
    return Label(name, dataset, int(seed) if mark else None)
