"""A GAP in LAMMPS: the :class:`~anharmbench.potentials.spec.LammpsPotential` of a model.

The project's plugin ``pair_style quip`` (``plugins/quip``) evaluates the model, so the
ASE calculator, the batch evaluator, the displacement generator's decks and MD all run
the same model through one path: ``pair_coeff * * gap.xml "IP GAP" Z...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ase.data import atomic_numbers

from anharmbench.mlip.gap.errors import GapModelError
from anharmbench.mlip.gap.model import MODEL_XML, GapModel, load_gap_model, model_species
from anharmbench.potentials.spec import LammpsPotential

__all__ = ["gap_potential"]


def gap_potential(
    model: str | Path | GapModel, elements: Sequence[str] | None = None
) -> LammpsPotential:
    """The LAMMPS description of a GAP model (``pair_style quip``).

    Parameters
    ----------
    model
        A model directory of :func:`train_gap`, a gap_fit xml, or a :class:`GapModel`.
    elements
        Chemical symbols in LAMMPS type order; default: the model's species.

    Returns
    -------
    LammpsPotential
        ``pair_style quip``, ``pair_coeff * * <xml> "IP GAP" Z...``, with the xml (and
        any sparse-point files it names) as the potential's files.

    Raises
    ------
    FileNotFoundError
        When the model is missing.
    GapModelError
        When the file is not a GAP xml, ``elements`` holds a species the model does not
        describe, or lacks one the model was trained with (a structure without it is
        outside what the GAP was fitted to).
    """
    gm = model if isinstance(model, GapModel) else load_gap_model(model)
    species = gm.species
    if elements is None:
        if not species:
            raise GapModelError(
                f"GAP model {gm.xml} does not name its species (its descriptors apply to "
                "any species): pass elements=(...) in LAMMPS type order"
            )
        elements = species
    elements = tuple(elements)
    for el in elements:
        if el not in atomic_numbers:
            raise GapModelError(f"unknown element {el!r} in elements {list(elements)}")
    if species:
        lacking = [el for el in elements if el not in species]
        if lacking:
            raise GapModelError(
                f"GAP model {gm.xml} does not describe {lacking}: it was trained on "
                f"{list(species)}; use a model trained on these species"
            )
        absent = [s for s in species if s not in elements]
        if absent:
            raise GapModelError(
                f"elements {list(elements)} lack {absent}, which GAP model {gm.xml} was "
                f"trained with (species {list(species)}); a structure without them is "
                "outside what the model describes. Give all of the model's species "
                "(structures must contain each of them)"
            )
    _, sparse = model_species(gm.xml)
    missing = [p for p in sparse if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"GAP model {gm.xml} refers to sparse-point files that are not beside it: "
            f"{[p.name for p in missing]}"
        )
    xml = str(gm.xml.resolve())
    if any(c.isspace() or c in "\"'#$&" for c in xml):
        raise GapModelError(
            f"the path of GAP model {xml!r} holds whitespace or one of \"'#$&, which a "
            "LAMMPS pair_coeff line cannot carry; move the model to a plainer path"
        )
    zs = " ".join(str(atomic_numbers[el]) for el in elements)
    return LammpsPotential(
        elements=elements,
        pair_style="quip",
        pair_coeff=(f'* * {xml} "IP GAP" {zs}',),
        files=(xml, *(str(p.resolve()) for p in sparse)),
        name=f"gap:{gm.directory.name if gm.xml.name == MODEL_XML else gm.xml.stem}",
    )
