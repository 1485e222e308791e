"""Behler-Parrinello neural-network potentials (the paper's second MLIP class).

n2p2-style atom-centred symmetry functions (radial G2, angular G3 and G9, n2p2's
parameter conventions, ordering and scaling) evaluated in torch (float64), one network
per element, trained here on energies and forces, and deployed in LAMMPS as an
AOTInductor package that the project's ``pair_style nequip`` runs (the interface of
nequip's ``pair_nequip`` target). n2p2's files (``input.nn``, ``scaling.data``,
``weights.NNN.data``) are written and read, so n2p2 users and ``pair_style hdnnp`` can
run our models and we theirs.

Typical use::

    from anharmbench.mlip.bpnn import TrainConfig, train, export_pt2, bpnn_potential
    result = train("datasets/refmd", "models/bpnn", TrainConfig.paper())
    export_pt2("models/bpnn")                       # models/bpnn/model.nequip.pt2
    potential = bpnn_potential("models/bpnn")       # LammpsPotential (pair_style nequip)

Modules: :mod:`.symmetry_functions`, :mod:`.scaling`, :mod:`.descriptor`, :mod:`.neighbors`,
:mod:`.model`, :mod:`.config`, :mod:`.train`, :mod:`.n2p2`, :mod:`.export`; command line:
``anharmbench train bpnn DATASET OUT`` (train, export, parity) and ``anharmbench convert
to-n2p2|from-n2p2``.
"""

from anharmbench.mlip.bpnn.config import TrainConfig, TrainingError, TrainResult
from anharmbench.mlip.bpnn.export import (
    ExportError,
    bpnn_parity,
    bpnn_potential,
    export_pt2,
    load_pt2,
    pt2_metadata,
)
from anharmbench.mlip.bpnn.model import (
    BPNN,
    BPNNCalculator,
    ModelFormatError,
    NetworkConfig,
    energy_forces_virial,
    load_model,
    save_model,
)
from anharmbench.mlip.bpnn.n2p2 import N2P2Error, read_n2p2, write_n2p2
from anharmbench.mlip.bpnn.neighbors import NeighborListError, neighbor_list
from anharmbench.mlip.bpnn.scaling import ScalingError, SymmetryFunctionScaling
from anharmbench.mlip.bpnn.symmetry_functions import (
    CutoffFunction,
    SymmetryFunction,
    SymmetryFunctionError,
    SymmetryFunctionSet,
    default_tho2_set,
)
from anharmbench.mlip.bpnn.train import train

__all__ = [
    "BPNN",
    "BPNNCalculator",
    "CutoffFunction",
    "ExportError",
    "ModelFormatError",
    "N2P2Error",
    "NeighborListError",
    "NetworkConfig",
    "ScalingError",
    "SymmetryFunction",
    "SymmetryFunctionError",
    "SymmetryFunctionScaling",
    "SymmetryFunctionSet",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "bpnn_parity",
    "bpnn_potential",
    "default_tho2_set",
    "energy_forces_virial",
    "export_pt2",
    "load_model",
    "load_pt2",
    "neighbor_list",
    "pt2_metadata",
    "read_n2p2",
    "save_model",
    "train",
    "write_n2p2",
]
