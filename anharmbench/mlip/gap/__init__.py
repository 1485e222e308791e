"""Gaussian approximation potentials: training with ``gap_fit``, deployment in LAMMPS.

The first MLIP class of the paper. A GAP is fitted by QUIP's ``gap_fit`` (shipped by the
``quippy-ase`` wheel, ``pip install -e '.[gap]'``) and evaluated by the project's LAMMPS
plugin ``pair_style quip`` (``plugins/quip``), so the ASE calculator, the batch evaluator,
the displacement generator's decks and MD all run the same model through one path.

Typical use::

    from anharmbench.mlip.gap import GapConfig, train_gap, gap_potential
    model = train_gap("datasets/refmd", "models/gap", GapConfig.quick())
    potential = gap_potential(model)   # pair_style quip

Modules, one job each:

* :mod:`.config` -- :class:`GapConfig` and its descriptors (:meth:`GapConfig.paper`: 2b
  and 3b at 6 A, SOAP at 4 A; :meth:`GapConfig.quick`: a model under 12 GB);
* :mod:`.memory` -- :func:`estimate_gap_memory`, gap_fit's peak memory, calibrated on
  this machine; :func:`machine_memory`;
* :mod:`.runner` -- :func:`find_gap_fit`, :func:`gap_argv` and the watched gap_fit process;
* :mod:`.model` -- the model directory's files, :class:`GapModel`, :func:`load_gap_model`,
  :func:`model_species`;
* :mod:`.deploy` -- :func:`gap_potential` (``pair_style quip``);
* :mod:`.train` -- :func:`train_gap`;
* :mod:`.parity` -- :func:`gap_parity`;
* :mod:`.errors` -- :class:`GapError` and its subclasses.
"""

from anharmbench.mlip.gap.config import AngleThreeBody, DistanceTwoBody, GapConfig, Soap
from anharmbench.mlip.gap.deploy import gap_potential
from anharmbench.mlip.gap.errors import GapError, GapFitError, GapMemoryError, GapModelError
from anharmbench.mlip.gap.memory import (
    MEMORY_CALIBRATION,
    MemoryEstimate,
    estimate_gap_memory,
    machine_memory,
)
from anharmbench.mlip.gap.model import (
    COMMAND_JSON,
    COMMAND_TXT,
    LOG_FILE,
    MODEL_RECORD,
    MODEL_XML,
    TRAIN_XYZ,
    GapModel,
    load_gap_model,
    model_species,
)
from anharmbench.mlip.gap.parity import gap_parity
from anharmbench.mlip.gap.runner import find_gap_fit, gap_argv
from anharmbench.mlip.gap.train import train_gap

__all__ = [
    "COMMAND_JSON",
    "COMMAND_TXT",
    "LOG_FILE",
    "MEMORY_CALIBRATION",
    "MODEL_RECORD",
    "MODEL_XML",
    "TRAIN_XYZ",
    "AngleThreeBody",
    "DistanceTwoBody",
    "GapConfig",
    "GapError",
    "GapFitError",
    "GapMemoryError",
    "GapModel",
    "GapModelError",
    "MemoryEstimate",
    "Soap",
    "estimate_gap_memory",
    "find_gap_fit",
    "gap_argv",
    "gap_parity",
    "gap_potential",
    "load_gap_model",
    "machine_memory",
    "model_species",
    "train_gap",
]
