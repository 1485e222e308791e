"""The private APIs of phono3py, nequip and torch that we use, each behind one adapter.

Each test checks that the adapter still does what we rely on with the installed version,
and that the installed version is the one the adapter was tested with (setup.cfg pins it).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from anharmbench.derivatives.plan import build_plan
from anharmbench.derivatives.results import ase_evaluator, measure_and_fit
from anharmbench.lammps import LammpsCalculator
from anharmbench.observables import DerivativeSet, _phono3py_api, thermal_conductivity
from anharmbench.observables.bubble import prepared_phono3py
from anharmbench.observables.harmonic import Mesh
from anharmbench.potentials.crg import crg_potential
from anharmbench.structures import build_supercell, tho2_primitive
from anharmbench.symmetry import irreducible_basis


def _version(module: str) -> Version:
    mod = __import__(module)
    return Version(mod.__version__.split("+")[0])


def test_phono3py_rta_with_given_gamma_reproduces_its_own_kappa():
    """Fed phono3py's own bubble linewidths through the adapter (the --read-gamma route),
    the RTA conductivity is phono3py's own to round-off (CRG ThO2, primitive-cell FTG)."""
    assert _version("phono3py") in SpecifierSet(_phono3py_api.TESTED)
    prim = tho2_primitive()
    S = np.eye(3, dtype=int)
    atoms = build_supercell(prim, S)
    bases = {n: irreducible_basis(prim, S, order=n) for n in (2, 3)}
    plan = build_plan(bases, method="forces", variant="lone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LammpsCalculator(crg_potential(), atoms) as batch:
            res = measure_and_fit(plan, ase_evaluator(atoms, batch))
    dset = DerivativeSet.from_bases("crg", prim, {n: (bases[n], res.values[n]) for n in (2, 3)})
    temps = np.array([300.0, 900.0])
    ph3 = prepared_phono3py(dset, Mesh(4), 0.2, what="test", with_fc3=True)
    ph3.run_thermal_conductivity(temperatures=temps)
    own = ph3.thermal_conductivity
    calc = _phono3py_api.rta_calculator(ph3.phph_interaction, temps)
    _phono3py_api.run_with_gamma(calc, np.asarray(own.gamma))
    np.testing.assert_allclose(np.asarray(calc.kappa), np.asarray(own.kappa), rtol=1e-10)
    # and twice the linewidth halves the conductivity (the given gamma is really used)
    calc2 = _phono3py_api.rta_calculator(ph3.phph_interaction, temps)
    _phono3py_api.run_with_gamma(calc2, 2 * np.asarray(own.gamma))
    np.testing.assert_allclose(np.asarray(calc2.kappa), 0.5 * np.asarray(own.kappa),
                               rtol=1e-10)
    assert thermal_conductivity is not None  # the public entry point uses this adapter


def test_torch_duck_shape_switch_is_scoped():
    torch = pytest.importorskip("torch")
    from torch.fx.experimental import _config

    from anharmbench.mlip import _torch_api

    assert _version("torch") in SpecifierSet(_torch_api.TESTED)
    before = _config.use_duck_shape
    with _torch_api.no_duck_shapes():
        assert _config.use_duck_shape is False
    assert _config.use_duck_shape == before
    with pytest.raises(RuntimeError), _torch_api.no_duck_shapes():
        raise RuntimeError("an export failure")
    assert _config.use_duck_shape == before
    assert torch is not None


def test_nequip_private_loader_still_exists_with_our_arguments():
    """The loader's signature still takes what we pass (loading a real checkpoint is
    tests/test_nequip.py's job)."""
    pytest.importorskip("nequip")
    from nequip.integrations.ase import NequIPCalculator

    from anharmbench.mlip.nequip import _api as _nequip_api

    assert _version("nequip") in SpecifierSet(_nequip_api.TESTED)
    params = inspect.signature(NequIPCalculator._from_saved_model).parameters
    assert {"device", "chemical_species_to_atom_type_map"} <= set(params)
