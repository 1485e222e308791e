"""Irreducible derivatives by symmetry-adapted finite differences."""
