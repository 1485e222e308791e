"""NequIP: training configuration, training, compilation and LAMMPS deployment.

The graph neural network of the paper (NequIP, Batzner et al. 2022) from the ``nequip``
package (0.19.1, torch 2.13), in four steps:

1. :class:`NequIPConfig` (:mod:`.config`) -- a typed training configuration with two
   profiles, ``"paper"`` and ``"quick"``; :meth:`NequIPConfig.to_nequip` turns it into
   nequip's Hydra/YAML training config.
2. :func:`train_nequip` (:mod:`.train`) -- runs ``nequip-train`` on a dataset directory
   into a resumable run directory (config, metrics, log, ``best.ckpt``, ``last.ckpt``).
3. :func:`compile_nequip` (:mod:`.compile`) -- ``nequip-compile ... --mode aotinductor
   --target pair_nequip``, with the torch version stamped into the package's metadata;
   :mod:`.cached_compile` reuses a compiled template of the same architecture.
4. :func:`nequip_potential` (:mod:`.deploy`) -- the
   :class:`~anharmbench.potentials.spec.LammpsPotential` (``pair_style nequip``,
   ``plugins/nequip``); :func:`nequip_parity` (:mod:`.parity`) -- energy/force parity on
   the held-out test split through that pair style.

:mod:`.runner` runs nequip's console tools; :mod:`._api` holds the one private nequip
API used. Command line: ``anharmbench train nequip ...``.
"""

from anharmbench.mlip.nequip.compile import compile_nequip, read_package_metadata, stamp_package
from anharmbench.mlip.nequip.config import PROFILES, NequIPConfig
from anharmbench.mlip.nequip.deploy import nequip_ase_calculator, nequip_potential
from anharmbench.mlip.nequip.parity import nequip_parity
from anharmbench.mlip.nequip.runner import NequIPError
from anharmbench.mlip.nequip.train import NequIPRun, train_nequip

__all__ = [
    "PROFILES",
    "NequIPConfig",
    "NequIPError",
    "NequIPRun",
    "compile_nequip",
    "nequip_ase_calculator",
    "nequip_parity",
    "nequip_potential",
    "read_package_metadata",
    "stamp_package",
    "train_nequip",
]
