"""A compiled NequIP model in LAMMPS (``pair_style nequip``), and nequip's own ASE calculator.

:func:`nequip_potential` is the :class:`~anharmbench.potentials.spec.LammpsPotential`
(``plugins/nequip``) that the ASE calculator, the batch evaluator, the displacement
generator's decks and MD use; :func:`nequip_ase_calculator` is the reference path (the
eager model of a checkpoint, no LAMMPS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anharmbench.mlip.nequip._api import calculator_from_saved_model
from anharmbench.mlip.nequip.compile import read_package_metadata
from anharmbench.potentials.spec import (
    LammpsPotential,
    PotentialError,
    lammps_path_word,
    model_file_potential,
)

__all__ = ["REQUIRED_METADATA", "nequip_ase_calculator", "nequip_potential"]

#: Metadata keys ``pair_style nequip`` requires (see plugins/nequip/pair_nequip.cpp).
REQUIRED_METADATA = (
    "nequip_aoti_inputs",
    "nequip_aoti_outputs",
    "r_max",
    "type_names",
    "model_dtype",
)


def nequip_potential(
    model_pt2: str | Path, elements: Sequence[str], *, name: str | None = None
) -> LammpsPotential:
    """LAMMPS potential deploying a compiled NequIP model through ``pair_style nequip``.

    Parameters
    ----------
    model_pt2
        The ``.nequip.pt2`` package of :func:`compile_nequip`.
    elements
        Chemical symbols in LAMMPS type order (type 1 = ``elements[0]``); each must be
        one of the model's ``type_names``.
    name
        Name in reports (default ``nequip:<file stem>``).

    Raises
    ------
    FileNotFoundError
        When the package does not exist.
    PotentialError
        When it is not a package for ``pair_style nequip`` or lacks an element.
    """
    path = Path(model_pt2).resolve()
    meta = read_package_metadata(path)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise PotentialError(
            f"{path} lacks the metadata {missing} that pair_style nequip needs; compile it "
            "with nequip-compile ... --mode aotinductor --target pair_nequip"
        )
    model_types = meta["type_names"].split()
    unknown = [e for e in elements if e not in model_types]
    if unknown:
        raise PotentialError(
            f"NequIP model {path} has no type(s) {unknown} (its type_names: {model_types})"
        )
    stem = path.name[: -len(".nequip.pt2")] if path.name.endswith(".nequip.pt2") else path.stem
    return model_file_potential(
        "nequip", path, elements, name=name or f"nequip:{stem}", word=lammps_path_word(path)
    )


def nequip_ase_calculator(checkpoint: str | Path, *, device: str = "cpu") -> Any:
    """nequip's own ASE calculator on the eager model of a checkpoint (the reference path).

    Returns
    -------
    nequip.integrations.ase.NequIPCalculator
        Energies (eV), forces (eV/A) and stress (eV/A^3, ASE sign).
    """
    from nequip.integrations.ase import NequIPCalculator

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    import warnings

    # type names are chemical symbols in anharmbench's models (identity species map)
    with warnings.catch_warnings():
        # nequip's global set-up calls a torch.jit API that torch 2.13 deprecates
        warnings.filterwarnings("ignore", message=".*set_fusion_strategy.*")
        return calculator_from_saved_model(NequIPCalculator, checkpoint, device)
