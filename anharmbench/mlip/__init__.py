"""Machine-learning interatomic potentials: training, deployment as LAMMPS pair styles.

Each model class has its own subpackage (``gap``, ``nequip``, ``bpnn``) with a typed
training configuration, a trainer that writes a model directory, and a function that
returns the :class:`~anharmbench.potentials.spec.LammpsPotential` deploying the trained
model through a project plugin (so the batch evaluator, the displacement generator's
decks and MD all use one path); ``universal`` holds the pre-trained presets (CHGNet,
SevenNet-0). Shared pieces:

* :mod:`anharmbench.mlip.trainer` -- one ``Trainer`` protocol (train, deploy, parity)
  over all of them and the registry ``TRAINERS`` (``anharmbench train MODEL``);
* :mod:`anharmbench.mlip.data` -- reading a dataset directory's splits;
* :mod:`anharmbench.mlip.parity` -- energy/force parity on held-out frames (data + plot);
* :mod:`anharmbench.mlip.aoti_cache` -- compiled AOTInductor templates shared by the
  NequIP and BPNN packages of one architecture.
"""

from anharmbench.mlip.data import DatasetSplits, load_splits
from anharmbench.mlip.parity import ParityResult, evaluate_parity, write_parity

__all__ = ["DatasetSplits", "ParityResult", "evaluate_parity", "load_splits", "write_parity"]
