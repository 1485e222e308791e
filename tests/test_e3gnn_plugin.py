"""pair_style e3gnn (plugins/e3gnn, SevenNet's pair style built from the sevenn wheel):
SevenNet-0 through LAMMPS against sevenn's own ASE calculator, the deployment cache, and
the plugin's CMake step (skip without sevenn, patches that no longer apply).

Skipped, with the reason, when sevenn is not installed (``pip install
'anharmbench[universal]'``) or the plugin was not built (``python -m anharmbench.plugins
build``).

Tolerances: SevenNet-0 is float32 in both paths and both run the same network on the same
graph, so they differ only by the summation order of edges (LAMMPS's neighbour order vs
sevenn's graph builder). Float32 round-off is ~6e-8 relative: ~3e-6 eV on |E| ~ 40 eV
and ~1e-7 eV/A on forces of a few eV/A made of ~30 edge terms each. The bounds below
allow some tens of such roundings; measured differences are in the test docstrings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from anharmbench.lammps import LammpsCalculator
from anharmbench.mlip import universal
from anharmbench.plugins import (
    find_cmake,
    lammps_header_dir,
    mpi_include_dir,
    optional_dependency_args,
    plugin_dir,
    sevenn_sources,
    source_dir,
)
from anharmbench.potentials import LammpsPotential, PotentialError

sevenn = pytest.importorskip("sevenn", reason="sevenn not installed "
                             "(pip install 'anharmbench[universal]')")
torch = pytest.importorskip("torch", reason="torch not installed "
                            "(pip install 'anharmbench[universal]')")

PLUGIN = plugin_dir() / "e3gnnplugin.so"
needs_plugin = pytest.mark.skipif(
    not PLUGIN.is_file(),
    reason=f"{PLUGIN} not built (python -m anharmbench.plugins build, with sevenn installed)",
)

TOL_E = 5e-5  # eV (|E| ~ 30-45 eV: ~10 float32 ulps)
TOL_F = 1e-5  # eV/A
TOL_S = 1e-6  # eV/A^3 (~1.6e-4 GPa)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread (the plugin shares this process's libtorch): faster beside
    another busy process on a 2-core machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private deployment cache (deploying SevenNet-0 takes a few seconds)."""
    return tmp_path_factory.mktemp("sevennet-cache")


@pytest.fixture(scope="module")
def reference() -> object:
    """sevenn's SevenNetCalculator with the packaged SevenNet-0 weights (CPU)."""
    return universal.sevennet_calculator()


def _silicon(seed: int) -> Atoms:
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=(8, 3))
    return atoms


def _nacl() -> Atoms:
    """8-atom rock-salt NaCl, sheared so the cell is triclinic (LAMMPS rotates it)."""
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    strain = np.eye(3) + np.array([[0.01, 0.03, -0.02], [0.0, -0.01, 0.04], [0.0, 0.0, 0.02]])
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    return atoms


def _rattled(atoms: Atoms, rng: np.random.Generator, scale: float = 0.05) -> np.ndarray:
    return atoms.positions + rng.normal(scale=scale, size=atoms.positions.shape)


def _ase(reference: object, atoms: Atoms, positions: np.ndarray
         ) -> tuple[float, np.ndarray, np.ndarray]:
    a = atoms.copy()
    a.positions = positions
    a.calc = reference
    return float(a.get_potential_energy()), a.get_forces(), a.get_stress()


def _lammps_equals_ase(pot: object, reference: object, atoms: Atoms, positions: np.ndarray
                       ) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy, forces and stress of ``pot`` in LAMMPS equal the calculator's (returned)."""
    energy, forces, stress = _ase(reference, atoms, positions)
    a = atoms.copy()
    a.positions = positions
    a.calc = LammpsCalculator(pot)
    assert abs(a.get_potential_energy() - energy) < TOL_E
    np.testing.assert_allclose(a.get_forces(), forces, rtol=0, atol=TOL_F)
    np.testing.assert_allclose(a.get_stress(), stress, rtol=0, atol=TOL_S)
    return energy, forces, stress


# ------------------------------------------------------- agreement with sevenn
@needs_plugin
@pytest.mark.parametrize("kind", ["Si", "NaCl"])
def test_lammps_calculator_matches_sevenn(cache, reference, kind):
    """Energy, forces and stress of SevenNet-0 in LAMMPS equal sevenn's calculator.

    Si: cubic 8 atoms (the 5 A cutoff exceeds half the cell: atoms meet their own images);
    NaCl: triclinic 8 atoms, two species. Measured: |dE| = 0 (Si), 3.8e-6 eV (NaCl, two
    float32 ulps), |dF| <= 4.3e-7 eV/A, |dS| <= 1.7e-8 eV/A^3.
    """
    atoms = _silicon(3) if kind == "Si" else _nacl()
    positions = _rattled(atoms, np.random.default_rng(7)) if kind == "NaCl" else atoms.positions
    pot = universal.sevennet_lammps_potential(sorted(set(atoms.get_chemical_symbols())),
                                              cache_dir=cache)
    _, forces, stress = _lammps_equals_ase(pot, reference, atoms, positions)
    assert np.abs(forces).max() > 0.1 and np.abs(stress).max() > 1e-3  # not trivially zero


@needs_plugin
@pytest.mark.parametrize("preset", ["sevennet-l3i5", "sevennet-mf-0-pbe"])
def test_other_sevennet_checkpoints_in_lammps_match_their_calculator(cache, preset):
    """The wheel's other checkpoints deploy for e3gnn too, the multi-fidelity one with its
    modal: LAMMPS equals sevenn's calculator of the same preset, and the PBE fidelity is
    not the R2SCAN one (so a modal lost on the way would show)."""
    atoms = _silicon(5)
    positions = _rattled(atoms, np.random.default_rng(13))
    pot = universal.sevennet_lammps_potential(["Si"], cache_dir=cache, preset=preset)
    _, forces, _ = _lammps_equals_ase(pot, universal.sevennet_calculator(preset), atoms,
                                      positions)
    other = universal.sevennet_calculator(
        "sevennet-mf-0-r2scan" if preset == "sevennet-mf-0-pbe" else "sevennet-0")
    e_other, f_other, _ = _ase(other, atoms, positions)
    assert np.abs(f_other - forces).max() > 100 * TOL_F


@needs_plugin
def test_batch_evaluator_matches_sevenn(cache, reference):
    """Three rattled NaCl configurations in one LAMMPS instance (types in the order Cl, Na
    of the potential, not of the atoms). Measured: |dE| <= 1.9e-6 eV, |dF| <= 6.9e-7 eV/A,
    |dS| <= 2.1e-8 eV/A^3."""
    atoms = _nacl()
    rng = np.random.default_rng(11)
    positions = np.stack([_rattled(atoms, rng, 0.08) for _ in range(3)])
    pot = universal.sevennet_lammps_potential(["Na", "Cl"], cache_dir=cache)
    with LammpsCalculator(pot, atoms) as batch:
        result = batch.calculate_batch(positions)
    for k, pos in enumerate(positions):
        energy, forces, stress = _ase(reference, atoms, pos)
        assert abs(result.energies[k] - energy) < TOL_E
        np.testing.assert_allclose(result.forces[k], forces, rtol=0, atol=TOL_F)
        np.testing.assert_allclose(result.stresses[k], stress, rtol=0, atol=TOL_S)
    assert len(set(np.round(result.energies, 6))) == 3


@needs_plugin
def test_float64_default_dtype_of_the_host_does_not_break_it(cache):
    """torch's default dtype is process-wide and nequip sets it to float64; the float32
    SevenNet model must give the same result (it aborted the process before the patch)."""
    import torch

    atoms = _nacl()
    pot = universal.sevennet_lammps_potential(["Na", "Cl"], cache_dir=cache)
    a = atoms.copy()
    a.calc = LammpsCalculator(pot)
    e32 = a.get_potential_energy()
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        b = atoms.copy()
        b.calc = LammpsCalculator(pot)
        e64 = b.get_potential_energy()
        assert torch.get_default_dtype() == torch.float64  # the host's setting is restored
    finally:
        torch.set_default_dtype(saved)
    assert e64 == e32


# ------------------------------------------------------------ the deployment
def test_deployment_is_cached_and_described(cache):
    """One deployment per sevenn+torch version, reused; its metadata; the potential."""
    path = universal.sevennet_deployed_model(cache)
    stamp = path.stat().st_mtime_ns
    again = universal.sevennet_deployed_model(cache)
    assert again == path and again.stat().st_mtime_ns == stamp
    assert path.parent.name == f"sevenn-{sevenn.__version__}_torch-{torch.__version__}"
    assert path.name == "deployed_serial.pt"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".deploy-")]
    meta = universal.deployed_metadata(path)
    assert meta["cutoff"] == "5.0" and meta["model_type"] == "E3_equivariant_model"
    assert {"Si", "Na", "Cl", "O", "Th"} <= set(meta["chemical_symbols_to_index"].split())
    pot = universal.sevennet_lammps_potential(("O", "Th"), cache_dir=cache)
    assert isinstance(pot, LammpsPotential)
    assert pot.pair_style == "e3gnn" and pot.elements == ("O", "Th")
    assert pot.pair_coeff == (f"* * {path} O Th",) and pot.commands == ("newton on",)
    assert pot.files == (str(path),)


@needs_plugin
def test_second_deployment_in_a_used_process(cache, reference, tmp_path):
    """After this module has run SevenNet-0 in process (sevenn's calculator, the float64
    host), deploying again into another cache works and gives the same model: the
    in-process deployment failed here ("Couldn't find method: 'forward' on class
    BesselBasis") on a machine without a cached deployment, which broke the first study."""
    atoms = _nacl()
    positions = _rattled(atoms, np.random.default_rng(9))
    energies = []
    for folder in (cache, tmp_path / "another-cache"):
        a = atoms.copy()
        a.positions = positions
        a.calc = LammpsCalculator(universal.sevennet_lammps_potential(["Na", "Cl"],
                                                                      cache_dir=folder))
        energies.append(a.get_potential_energy())
    assert universal.sevennet_deployed_model(tmp_path / "another-cache").is_file()
    assert energies[1] == energies[0]
    assert abs(energies[0] - _ase(reference, atoms, positions)[0]) < TOL_E


def test_unknown_element_is_refused(cache):
    with pytest.raises(PotentialError, match=r"no element\(s\) \['Po'\].*89 elements"):
        universal.sevennet_lammps_potential(["Si", "Po"], cache_dir=cache)


def test_not_a_deployment(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("not a zip")
    with pytest.raises(PotentialError, match="not a deployed SevenNet model"):
        universal.deployed_metadata(bad)


# --------------------------------------------------------- the CMake step
def _configure(tmp_path: Path, sevenn_dir: str | Path, torch_prefix: str
               ) -> subprocess.CompletedProcess[str]:
    """Configure plugins/ (no compile) with the given sevenn sources; other plugins off."""
    return subprocess.run(
        [find_cmake(), "-S", str(source_dir()), "-B", str(tmp_path / "build"),
         f"-DLAMMPS_HEADER_DIR={lammps_header_dir()}", f"-DMPI_INCLUDE_DIR={mpi_include_dir()}",
         f"-DANHARMBENCH_PLUGIN_OUTPUT_DIR={tmp_path / 'out'}",
         "-DANHARMBENCH_QUIP_LIBRARY=", f"-DANHARMBENCH_TORCH_CMAKE_PREFIX={torch_prefix}",
         f"-DANHARMBENCH_SEVENN_SOURCE_DIR={sevenn_dir}", "-DANHARMBENCH_SEVENN_VERSION=9.9"],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "LC_ALL": "C"},
    )


def test_sources_come_from_the_wheel(monkeypatch):
    """The build is handed the wheel's folder; without sevenn the argument is empty."""
    found = sevenn_sources()
    assert found is not None
    folder, pkg_version = found
    assert folder == (Path(sevenn.__file__).parent / "pair_e3gnn").resolve()
    assert pkg_version == sevenn.__version__
    assert f"-DANHARMBENCH_SEVENN_SOURCE_DIR={folder}" in optional_dependency_args()
    assert not (source_dir() / "e3gnn" / "pair_e3gnn.cpp").exists()  # nothing vendored
    monkeypatch.setattr("anharmbench.plugins.sevenn_sources", lambda: None)
    assert "-DANHARMBENCH_SEVENN_SOURCE_DIR=" in optional_dependency_args()


def test_skipped_without_sevenn(tmp_path):
    proc = _configure(tmp_path, "", "")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "e3gnn plugin skipped" in out and "pip install 'anharmbench[universal]'" in out


def test_patch_that_no_longer_applies_stops_configuring(tmp_path):
    """Sources whose text the patches do not find: a configure error naming the patch."""
    found = sevenn_sources()
    assert found is not None
    fake = tmp_path / "pair_e3gnn"
    fake.mkdir()
    for name in ("pair_e3gnn.cpp", "pair_e3gnn.h", "pair_e3gnn_oeq_autograd.cpp"):
        text = (found[0] / name).read_text()
        (fake / name).write_text(text.replace('#include "neigh_request.h"', ""))
    proc = _configure(tmp_path, fake, "/nonexistent/torch/share/cmake")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "drop neigh_request.h" in out and "sevenn 9.9" in out
