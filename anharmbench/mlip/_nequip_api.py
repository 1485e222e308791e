"""The private nequip API we use, in one place (tested against nequip 0.19.1).

nequip's ASE calculator reads a training checkpoint or a packaged model only through its
private ``NequIPCalculator._from_saved_model`` (the public ``from_compiled_model`` needs a
compiled model, which takes minutes to build); if a release renames it, only this module
changes, and ``tests/test_private_apis.py`` says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: nequip versions this adapter was tested with (setup.cfg pins nequip==0.19.1).
TESTED = "==0.19.1"


def calculator_from_saved_model(calculator_cls: Any, path: str | Path, device: str) -> Any:
    """``NequIPCalculator`` of a checkpoint or package; type names are chemical symbols."""
    return calculator_cls._from_saved_model(str(path), device=device,
                                            chemical_species_to_atom_type_map=True)
