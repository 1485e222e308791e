"""A trained GAP on disk: the model directory's files, :class:`GapModel`, reading a model.

A model directory written by :func:`~anharmbench.mlip.gap.train.train_gap` holds:

=====================  ==========================================================
``gap.xml``            the model (sparse points inside the file)
``train.xyz``          the frames it was fitted to
``gap_fit.log``        gap_fit's output
``command.json``       the exact argument list (``command.txt``: shell-quoted)
``gap_model.json``     configuration, e0, dataset, memory estimate, measured peak
                       memory and time, software versions
=====================  ==========================================================
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase.data import chemical_symbols

from anharmbench.mlip.gap.errors import GapModelError

if TYPE_CHECKING:
    from anharmbench.potentials.spec import LammpsPotential

__all__ = [
    "COMMAND_JSON",
    "COMMAND_TXT",
    "LOG_FILE",
    "MODEL_RECORD",
    "MODEL_XML",
    "TRAIN_XYZ",
    "GapModel",
    "load_gap_model",
    "model_species",
]

#: File names inside a model directory.
MODEL_XML = "gap.xml"
MODEL_RECORD = "gap_model.json"
TRAIN_XYZ = "train.xyz"
LOG_FILE = "gap_fit.log"
COMMAND_JSON = "command.json"
COMMAND_TXT = "command.txt"


@dataclass(frozen=True)
class GapModel:
    """A trained GAP on disk.

    Attributes
    ----------
    directory
        The model directory (or the folder of a bare xml).
    xml
        The model file.
    species
        Chemical symbols the model describes, in the order of its training data.
    record
        ``gap_model.json`` (empty for a bare xml).
    """

    directory: Path
    xml: Path
    species: tuple[str, ...]
    record: dict[str, Any] = field(default_factory=dict)

    def potential(self, elements: Sequence[str] | None = None) -> LammpsPotential:
        """:func:`~anharmbench.mlip.gap.deploy.gap_potential` of this model."""
        # deploy imports this module: import it when called
        from anharmbench.mlip.gap.deploy import gap_potential

        return gap_potential(self, elements)


def model_species(xml: str | Path) -> tuple[tuple[str, ...], list[Path]]:
    """Species a GAP xml describes, and the sparse-point files it refers to.

    Returns
    -------
    (species, sparse_files)
        Chemical symbols named by the model's descriptors (sorted by atomic number,
        descending), empty when a descriptor applies to every species; files the xml
        names in ``sparseX_filename`` (they must sit beside it).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    GapModelError
        When it is not XML or holds no ``GAP_params``.
    """
    path = Path(xml)
    if not path.is_file():
        raise FileNotFoundError(
            f"GAP model file {path} does not exist; train one with "
            "anharmbench.mlip.gap.train_gap or give the path of a gap_fit xml"
        )
    zs: set[int] = set()
    any_species = False
    has_gap = False
    n_desc = 0
    sparse: list[Path] = []
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            tag = elem.tag
            if tag == "GAP_params":
                has_gap = True
            elif tag == "gpCoordinates":
                name = elem.get("sparseX_filename")
                if name:
                    sparse.append(path.parent / name)
            elif tag == "descriptor":
                n_desc += 1
                found, anyz = _descriptor_species(elem.text or "")
                zs |= found
                any_species |= anyz
            if tag in ("sparseX", "e0", "theta", "permutation", "XYZ_data"):
                elem.clear()  # keep memory flat on large models
    except ET.ParseError as exc:
        raise GapModelError(f"{path} is not a GAP model: it is not valid XML ({exc})") from None
    if not has_gap or n_desc == 0:
        raise GapModelError(
            f"{path} is not a GAP model: no <GAP_params> with descriptors (a gap_fit xml "
            "is expected)"
        )
    species = () if any_species else tuple(chemical_symbols[z] for z in sorted(zs, reverse=True))
    return species, sparse


def _descriptor_species(text: str) -> tuple[set[int], bool]:
    """Atomic numbers named by one descriptor string (Z=, Z1=, ..., species_Z={...})."""
    zs: set[int] = set()
    named = False
    any_species = False
    tokens = text.replace("{", " { ").replace("}", " } ").split()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        key, _, value = tok.partition("=")
        values: list[str] = []
        if key == "species_Z":
            j = i + 1
            if value == "" and j < len(tokens) and tokens[j] == "{":
                j += 1
                while j < len(tokens) and tokens[j] != "}":
                    values.extend(tokens[j].replace(":", " ").split())
                    j += 1
                i = j
            elif value:
                values.append(value)
        elif key.startswith("Z") and key[1:].isdigit() or key == "Z":
            values.append(value)
        for v in values:
            try:
                z = int(v)
            except ValueError:
                continue
            named = True
            if z <= 0:
                any_species = True
            elif z < len(chemical_symbols):
                zs.add(z)
        i += 1
    return zs, any_species or not named


def load_gap_model(path: str | Path) -> GapModel:
    """Open a model directory written by :func:`train_gap`, or a bare gap_fit xml.

    Raises
    ------
    FileNotFoundError
        When neither exists.
    GapModelError
        When the file is not a GAP xml.
    """
    path = Path(path)
    record: dict[str, Any] = {}
    if path.is_dir():
        rec = path / MODEL_RECORD
        if rec.is_file():
            record = json.loads(rec.read_text())
        xml = path / str(record.get("model_file", MODEL_XML))
        if not xml.is_file():
            raise FileNotFoundError(
                f"model directory {path} holds no {xml.name}; was the training finished? "
                f"(train with anharmbench.mlip.gap.train_gap)"
            )
        directory = path
    else:
        xml = path
        directory = path.parent
    species, _ = model_species(xml)
    trained = tuple(record.get("species", ()))
    if trained and set(trained) == set(species):
        species = trained
    return GapModel(directory=directory, xml=xml, species=species, record=record)
