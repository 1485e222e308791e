"""Potential descriptions (LAMMPS pair styles) and reference surfaces."""

from anharmbench.potentials.spec import LammpsPotential, PotentialError

__all__ = ["LammpsPotential", "PotentialError"]
