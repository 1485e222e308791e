"""The front door: :class:`anharmbench.Benchmark` and the :class:`DerivativeSet` it returns.

The facade delegates to the study's stages; these tests check that what comes through it
is the physics of the route it delegates to (the plan-directory workflow), that a second,
independent implementation of the reference (the numpy CRG, through ASE) lands on the same
derivatives in its Table I, and that a DerivativeSet survives ``derivatives.h5`` exactly.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from anharmbench import Benchmark, DerivativeSet
from anharmbench.derivatives import DerivativeSetError, MissingOrderError
from anharmbench.derivatives.workflow import (
    DerivativeJob,
    evaluate_in_process,
    fit_directory,
    prepare,
    write_plan_directory,
)
from anharmbench.executors import InProcessExecutor
from anharmbench.potentials.crg import crg_potential
from anharmbench.potentials.crg_numpy import CRGNumpyCalculator
from anharmbench.structures import supercell_matrix, tho2_primitive

#: The smallest cell with orders 2 and 3 of ThO2 (3 atoms: 2 + 2 derivatives).
SETS = {"prim": "prim"}
ORDERS = {"prim": [2, 3]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Benchmark:
    """CRG (LAMMPS) against the numpy CRG (ASE calculator), orders 2-3 in the primitive
    cell, four steps, bundled (the quick profile)."""
    b = Benchmark(tho2_primitive(), crg_potential(), models={"numpy CRG": CRGNumpyCalculator()},
                  supercells=SETS, orders=ORDERS, executor="in-process",
                  directory=tmp_path_factory.mktemp("bench"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tail-fit warnings of the tiny plan
        b.measure(progress=False)
    return b


def test_benchmark_gives_the_workflow_derivatives(bench, tmp_path):
    """The reference's derivatives through the facade are those of the plan-directory
    route (prepare, decks, in-process evaluation, fit) for the same job, to the bit."""
    job = bench.jobs["prim"]
    assert job == DerivativeJob(supercell=supercell_matrix("prim"), orders=(2, 3),
                                variant="bundled", n_steps=4)
    prepared = prepare(job, tho2_primitive())
    assert bench.plan()["prim"].plan.hash == prepared.plan.hash
    write_plan_directory(tmp_path / "plan", prepared, crg_potential())
    evaluate_in_process(tmp_path / "plan", executor=InProcessExecutor())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_directory(tmp_path / "plan")
    ref = bench.derivatives["reference"]
    assert ref.orders == (2, 3)
    for n in (2, 3):
        np.testing.assert_array_equal(ref.values[n], result.values[n])
        np.testing.assert_array_equal(ref.uncertainties[n], result.uncertainties[n])
        assert list(ref.labels[n]) == result.labels[n]
        np.testing.assert_array_equal(ref.supercell_matrices[n], np.eye(3, dtype=int))
    # the fluorite's harmonic derivatives in eV/A^2: positive (a stable lattice), and the
    # one sigma of each far below its value
    assert np.all(ref.values[2] > 0)
    assert np.all(ref.uncertainties[2] < 1e-3 * np.abs(ref.values[2]))
    assert json_equilibrium(ref)["passed"]


def test_benchmark_estimator_refits_the_stored_evaluations(bench, tmp_path):
    """``estimator="lines"`` on a copy of the fixture's folder: the stored evaluations are
    refitted (``results.h5`` is left byte for byte: nothing is evaluated again), and the
    values are those of the plan route's own ``fit_directory(estimator="lines")``; an
    unknown estimator is refused."""
    with pytest.raises(ValueError, match="estimator must be one of"):
        Benchmark(tho2_primitive(), crg_potential(), supercells=SETS, orders=ORDERS,
                  estimator="joint")
    shutil.copytree(bench.directory, tmp_path / "copy")
    stored = next((tmp_path / "copy").glob("reference/prim/results.h5"))
    before = stored.read_bytes()
    lines = Benchmark(tho2_primitive(), crg_potential(), supercells=SETS, orders=ORDERS,
                      executor="in-process", directory=tmp_path / "copy", estimator="lines")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lines.measure(["reference"], progress=False)
    assert stored.read_bytes() == before
    prepared = prepare(bench.jobs["prim"], tho2_primitive())
    write_plan_directory(tmp_path / "plan", prepared, crg_potential())
    evaluate_in_process(tmp_path / "plan", executor=InProcessExecutor())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_directory(tmp_path / "plan", estimator="lines")
    ref = out["reference"]
    assert ref.attrs["estimator"]["kind"] == "lines"
    for n in (2, 3):
        np.testing.assert_array_equal(ref.values[n], result.values[n])
        assert not np.array_equal(ref.values[n], bench.derivatives["reference"].values[n])


def json_equilibrium(dset: DerivativeSet) -> dict:
    import json

    return json.loads(dset.attrs["equilibrium"])


def test_table_compares_two_implementations_of_the_reference(bench):
    """The numpy CRG (analytic EAM, direct Ewald, through ASE one configuration at a time)
    and LAMMPS's tabulated CRG give the same irreducible derivatives: Table I shows them
    apart by far less than the reference's finite-difference uncertainty, and the
    reference against itself by 0."""
    rows = {(r["model"], r["order"]): r for r in bench.table()}
    assert set(rows) == {("reference", 2), ("reference", 3), ("numpy CRG", 2),
                         ("numpy CRG", 3)}
    for n in (2, 3):
        assert rows["reference", n]["rel_rmse"] == 0.0
        assert rows["reference", n]["dataset"] == "self"
        assert rows["numpy CRG", n]["dataset"] == "external"
        # measured 2.8e-10 (order 2) and 3.6e-11 (order 3): the same surface, far inside
        # the reference's own finite-difference sigma
        assert rows["numpy CRG", n]["rel_rmse"] < 1e-7, rows["numpy CRG", n]
        assert rows["numpy CRG", n]["within_ref_uncertainty"]
    model = bench.derivatives["numpy CRG"]
    np.testing.assert_allclose(model.values[2], bench.derivatives["reference"].values[2],
                               rtol=1e-7)


def test_derivative_set_round_trips_through_derivatives_h5_exactly(bench, tmp_path):
    """A DerivativeSet written and read back is the same set, and its file written again
    holds the same datasets and attributes as the measured one."""
    ref = bench.derivatives["reference"]
    path = ref.to_file(tmp_path / "derivatives.h5")
    back = DerivativeSet.from_file(path, name="reference")
    assert DerivativeSet.from_file(path).name == "CRG-ThO2"  # the potential's own name
    assert back.orders == ref.orders
    for n in ref.orders:
        np.testing.assert_array_equal(back.values[n], ref.values[n])
        np.testing.assert_array_equal(back.uncertainties[n], ref.uncertainties[n])
        assert back.labels[n] == ref.labels[n]
        np.testing.assert_array_equal(back.supercell_matrices[n], ref.supercell_matrices[n])
        assert set(back.extra[n]) == set(ref.extra[n])
        for key, value in ref.extra[n].items():
            np.testing.assert_array_equal(back.extra[n][key], value)
    assert dict(back.attrs) == dict(ref.attrs)
    np.testing.assert_array_equal(back.primitive.get_masses(), ref.primitive.get_masses())
    np.testing.assert_array_equal(back.primitive.positions, ref.primitive.positions)
    assert _h5_content(path) == _h5_content(bench.files["reference"]["prim"])
    # the rebuilt basis is the plan's: same labels, same dense tensor
    np.testing.assert_array_equal(back.cartesian(2), ref.cartesian(2))


def _h5_content(path) -> dict:
    out: dict = {}
    with h5py.File(path, "r") as h5:
        out["/"] = {k: np.asarray(v).tolist() for k, v in h5.attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype.str, obj[...].tolist())
            else:
                out[name + "/"] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}

        h5.visititems(visit)
    return out


def test_derivative_set_is_immutable_and_pickles(bench):
    ref = bench.derivatives["reference"]
    with pytest.raises(ValueError, match="read-only"):
        ref.values[2][0] = 0.0
    with pytest.raises(TypeError):
        ref.values[4] = np.zeros(1)  # type: ignore[index]
    with pytest.raises(AttributeError, match="immutable"):
        ref.name = "other"  # type: ignore[misc]
    ref.primitive.positions[0] += 1.0  # a copy: the set's cell stays
    assert np.abs(ref.primitive.positions[0]).max() < 1e-12
    back = pickle.loads(pickle.dumps(ref))
    np.testing.assert_array_equal(back.values[3], ref.values[3])
    assert back.labels == ref.labels
    # selecting and combining keep values; an order twice is refused unless asked
    assert DerivativeSet.combine([ref.select([2]), ref.select([3])]).orders == (2, 3)
    with pytest.raises(DerivativeSetError, match="order 2 is in both"):
        DerivativeSet.combine([ref, ref.select([2])])
    with pytest.raises(MissingOrderError, match=r"order\(s\) \[4\] missing"):
        ref.require([2, 4], "the loop shift")


def test_bad_sets_are_refused_with_the_fix():
    prim = tho2_primitive()
    with pytest.raises(ValueError, match="needs orders="):
        Benchmark(prim, None, supercells={"a": "2I"})
    with pytest.raises(ValueError, match="name different sets"):
        Benchmark(prim, None, supercells={"a": "2I"}, orders={"b": [2]})
    with pytest.raises(ValueError, match="labelled 'reference'"):
        Benchmark(prim, None, models={"reference": None})
    with pytest.raises(ValueError, match="orders must be in 2..6"):
        Benchmark(prim, None, supercells={"a": "2I"}, orders=[7])
    counting = Benchmark(prim, None, supercells={"2I": "2I"}, orders=[2])
    assert counting.plan()["2I"].counts() == {2: 17}  # second derivatives of ThO2 in 2I
    with pytest.raises(ValueError, match="no reference potential"):
        counting.measure()


def test_import_anharmbench_stays_cheap():
    """``import anharmbench`` loads neither the LAMMPS Python module nor the facade; the
    facade is loaded on first use and still loads no LAMMPS."""
    code = ("import sys, anharmbench\n"
            "assert 'lammps' not in sys.modules and 'anharmbench.benchmark' not in sys.modules\n"
            "anharmbench.Benchmark\n"
            "assert 'lammps' not in sys.modules and 'anharmbench.lammps' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_observables_through_the_facade_are_the_observables_of_its_files(tmp_path):
    """Orders 2-3 of CRG in 2I through :meth:`Benchmark.observables`: the same bubble
    conductivity as :func:`compute_observables` on the files it measured, positive, and
    acoustic modes at zero frequency at Gamma (the sum rule); the loop (order 4) is
    skipped, not failed."""
    from anharmbench.observables import (
        ObservableSettings,
        compute_observables,
        load_derivative_set,
    )

    bench = Benchmark(tho2_primitive(), crg_potential(), supercells={"2I": "2I"},
                      orders=[2, 3], executor="in-process", directory=tmp_path / "bench")
    settings = ObservableSettings(kappa_mesh=4, path_mesh=4, loop_mesh=2, dispersion_points=5,
                                  kappa_temperatures=(300.0,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench.measure(progress=False)
        res = bench.observables(settings, out=tmp_path / "obs")["reference"]
        direct = compute_observables(
            load_derivative_set(list(bench.files["reference"].values()), name="reference"),
            tmp_path / "direct", settings)
    np.testing.assert_array_equal(res.kappa.kappa["bubble"], direct.kappa.kappa["bubble"])
    assert res.kappa.kappa["bubble"][0] > 0  # W/(m K); 15.2 on this 4^3 mesh (2026-12-05)
    gamma = res.dispersion.frequencies[0]  # the path starts at Gamma
    assert np.abs(gamma[:3]).max() < 1e-4 and gamma[3:].min() > 1.0  # THz
    assert "loop_path" in res.skipped
    assert (tmp_path / "obs" / "figures" / "fig5_kappa.png").is_file()
