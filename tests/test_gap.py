"""GAP (issue 5): gap_fit training, the LAMMPS plugin ``pair_style quip``, parity, errors.

The models are tiny (a few sparse points, short cutoffs for the 3-body term) and fitted
to the session's tiny reference-MD dataset (12-atom cells) in a second or two. The
plugin is held against quippy's own ASE calculator (the same Fortran code, called
through a different interface) to 1e-8 eV and 1e-8 eV/A.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from anharmbench.lammps import LammpsCalculator, LammpsError, LammpsSystem
from anharmbench.lammps.deck import run_deck, write_deck
from anharmbench.mlip.gap import (
    COMMAND_JSON,
    LOG_FILE,
    MODEL_RECORD,
    TRAIN_XYZ,
    AngleThreeBody,
    DistanceTwoBody,
    GapConfig,
    GapFitError,
    GapMemoryError,
    GapModel,
    GapModelError,
    Soap,
    estimate_gap_memory,
    gap_parity,
    gap_potential,
    load_gap_model,
    model_species,
    train_gap,
)
from anharmbench.plugins import lammps_header_dir, mpi_include_dir, quip_library, source_dir
from anharmbench.potentials import LammpsPotential
from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive
from tests.nve import nve_thermo

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("quippy") is None,
        reason="quippy-ase is not installed (pip install -e '.[gap]')",
    ),
    # the suite itself keeps the machine busy; the tiny fits here are not heavy jobs
    pytest.mark.filterwarnings("ignore:the machine is busy:RuntimeWarning"),
]

TOL_E = 1e-8  # eV
TOL_F = 1e-8  # eV/A
TOL_S = 1e-10  # eV/A^3

#: A tiny GAP with all three descriptor kinds (3-body and SOAP with short cutoffs).
TINY = GapConfig(
    two_body=DistanceTwoBody(cutoff=5.0, n_sparse=12),
    three_body=AngleThreeBody(cutoff=3.2, cutoff_transition_width=0.5, n_sparse=8),
    soap=Soap(cutoff=3.5, n_max=3, l_max=2, n_sparse=20),
    energy_sigma=0.002,
    force_sigma=0.02,
    seed=7,
    profile="test",
)


def _structure(kind: str) -> Atoms:
    """ThO2 near the CRG lattice constant: 'SC' (12 atoms), '2I' (24, FCC-shaped,
    triclinic in LAMMPS), '2SC' (96 atoms)."""
    matrix = 2 * supercell_matrix("SC") if kind == "2SC" else kind
    return build_supercell(tho2_primitive(5.58), matrix)


def _displaced(atoms: Atoms, rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """``(n, N, 3)`` seeded random displacements; a few atoms pushed across the boundary."""
    pos = atoms.positions[None] + rng.normal(scale=amplitude, size=(n, len(atoms), 3))
    pos[:, 0] -= 0.3  # the Th at the origin leaves the cell (LAMMPS wraps it)
    pos[:, 1] += atoms.cell[2]  # an image one lattice vector away
    return pos


@pytest.fixture(scope="module")
def quippy_gap():
    """``make(xml)`` -> quippy's ASE calculator for a GAP xml."""
    from quippy.potential import Potential

    def make(xml: Path) -> object:
        return Potential("IP GAP", param_filename=str(xml))

    return make


@pytest.fixture(scope="module")
def tiny_model(tiny_refmd_dataset, tmp_path_factory) -> GapModel:
    lines: list[str] = []
    model = train_gap(
        tiny_refmd_dataset, tmp_path_factory.mktemp("gap") / "tiny", TINY, progress=lines.append
    )
    model.record["_progress"] = lines
    return model


@pytest.fixture(scope="module")
def other_model(tiny_refmd_dataset, tmp_path_factory) -> GapModel:
    """A second, different model (2b + SOAP only) for the two-models-in-one-process test.
    Its 2-body term reaches further (6 A against 5 A): QUIP's wrapper keeps the atoms
    object of the last call, with the cutoff of the model loaded then."""
    config = TINY.with_(two_body=DistanceTwoBody(cutoff=6.0, n_sparse=12), three_body=None,
                        soap=Soap(cutoff=3.0, n_max=2, l_max=2, n_sparse=10))
    out = tmp_path_factory.mktemp("gap") / "other"
    return train_gap(tiny_refmd_dataset, out, config, progress=False)


# ------------------------------------------------------------------ training
def test_training_is_recorded(tiny_model, tiny_refmd_dataset):
    """The fit leaves the model, log, exact command and config (its time is recorded;
    benchmarks/bench_gap.py measures it)."""
    rec = tiny_model.record
    assert rec["wall_seconds"] > 0.0
    assert tiny_model.species == ("Th", "O")
    d = tiny_model.directory
    for name in ("gap.xml", TRAIN_XYZ, LOG_FILE, COMMAND_JSON, "command.txt", MODEL_RECORD):
        assert (d / name).is_file(), name
    argv = json.loads((d / COMMAND_JSON).read_text())["argv"]
    assert argv == rec["command"] and Path(argv[0]).name == "gap_fit"
    assert "energy_parameter_name=energy" in argv and "force_parameter_name=forces" in argv
    assert "virial_parameter_name=virial" in argv
    e0 = [a for a in argv if a.startswith("e0=")]
    assert e0 and "Th:" in e0[0] and "O:" in e0[0]  # explicit e0: no isolated atoms in data
    assert GapConfig.from_dict(rec["config"]) == TINY
    assert rec["dataset"]["train_frames_used"] == list(range(20))
    # progress lines were reported while gap_fit ran
    assert rec["_progress"] and rec["_progress"][0].startswith("gap_fit ")
    assert rec["memory"]["measured_peak_rss_bytes"] > 1e6
    assert rec["memory"]["measured_peak_rss_bytes"] < rec["memory"]["estimate_bytes"]
    assert load_gap_model(d).record["model_sha256"] == rec["model_sha256"]


def test_predicts_its_training_set(tiny_model, tiny_refmd_dataset):
    """Through the LAMMPS plugin, the fit reproduces its training frames closely."""
    result, files = gap_parity(tiny_model, tiny_refmd_dataset, split="train")
    forces, energy = result.stats["forces"], result.stats["energy"]
    # measured (2026-12-02, TINY seed 7): 0.042 and 0.018 of the spreads, 0.0018 eV/atom
    assert forces["rmse"] < 0.1 * float(np.std(result.force_ref)), forces
    assert energy["rmse"] < 0.05 * float(np.std(result.energy_ref)), energy
    assert energy["rmse"] < 0.01  # eV/atom
    assert {"forces_Th", "forces_O"} <= set(result.stats)
    assert files["png"].is_file() and json.loads(files["json"].read_text())["stats"]


def test_parity_on_test_split(tiny_model, tiny_refmd_dataset, tmp_path):
    result, files = gap_parity(tiny_model, tiny_refmd_dataset, split="test", directory=tmp_path)
    assert result.energy_ref.shape == (2,)
    # measured 0.051 of the spread (1.98 eV/A) on 2026-12-02; a zero-force model gives 1.0
    assert result.stats["forces"]["rmse"] < 0.2 * float(np.std(result.force_ref))
    assert {p.name for p in files.values()} == {
        "parity_test.json",
        "parity_test_energy.csv",
        "parity_test_forces.csv",
        "parity_test.png",
    }


def test_profiles_and_memory_estimate(tiny_refmd_dataset):
    """Paper descriptors by default; the quick profile caps the frames and the memory."""
    paper = GapConfig.paper()
    assert (paper.two_body.cutoff, paper.three_body.cutoff, paper.soap.cutoff) == (6.0, 6.0, 4.0)
    quick = GapConfig.quick()
    # 12 GB: the quick profile's cap for this machine (anharmbench/mlip/gap/config.py)
    assert quick.memory_limit_gb == 12.0 and quick.max_atoms is not None
    assert "distance_2b" in paper.gap_string() and "angle_3b" in paper.gap_string()
    # 20 frames of 96 atoms (the quick profile's cap) stay below 12 GB; the platform's
    # measured 3.7 GB (10 frames) and 11 GB (30 frames) with SOAP 4/3 are reproduced
    big = _structure("2SC")
    frames = [big] * 10
    est10 = estimate_gap_memory(frames, paper.with_(soap=Soap(n_max=4, l_max=3)))
    est30 = estimate_gap_memory(frames * 3, paper.with_(soap=Soap(n_max=4, l_max=3)))
    assert 3.0 < est10.peak_gb < 4.5 and 9.5 < est30.peak_gb < 13.0
    assert estimate_gap_memory([big] * 20, quick).peak_gb < 12.0
    # overrides as plain mappings (YAML study configs) change only the named fields
    custom = GapConfig.quick(three_body={"n_sparse": 30}, soap=None, e0={"Th": -1.0, "O": -2.0})
    assert custom.three_body == AngleThreeBody(n_sparse=30) and custom.soap is None
    assert custom.two_body == quick.two_body and GapConfig.from_dict(custom.to_dict()) == custom
    with pytest.raises(ValueError, match="unknown three_body key"):
        GapConfig.paper(three_body={"cut": 5.0})
    with pytest.raises(ValueError, match="cutoff_transition_width"):
        GapConfig(soap=Soap(cutoff=1.0, cutoff_transition_width=2.0))
    with pytest.raises(ValueError, match="e0"):
        GapConfig(e0="isolated")


# ----------------------------------------------------------- plugin vs quippy
def test_plugin_autoloaded_in_fresh_interpreter():
    """`import lammps` alone makes pair_style quip available (entry point, no plugin load)."""
    code = "import lammps; l = lammps.lammps(cmdargs=['-screen','none','-log','none']); "
    code += "print(l.has_style('pair', 'quip'))"
    env = dict(os.environ)
    env.pop("LAMMPS_PLUGIN_PATH", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("kind", ["SC", "2I", "2SC"])
def test_plugin_matches_quippy(tiny_model, quippy_gap, kind):
    """Energies, forces and stresses of the plugin and quippy's calculator agree on
    periodic 12-, 24- and 96-atom cells with random displacements."""
    rng = np.random.default_rng({"SC": 11, "2I": 12, "2SC": 13}[kind])
    atoms = _structure(kind)
    positions = _displaced(atoms, rng, 4, 0.12)
    with LammpsCalculator(gap_potential(tiny_model), atoms) as batch:
        result = batch.calculate_batch(positions)
    ref = atoms.copy()
    ref.calc = quippy_gap(tiny_model.xml)
    worst = np.zeros(3)
    for k, pos in enumerate(positions):
        ref.positions = pos
        worst = np.maximum(
            worst,
            [
                abs(result.energies[k] - ref.get_potential_energy()),
                np.abs(result.forces[k] - ref.get_forces()).max(),
                np.abs(result.stresses[k] - ref.get_stress()).max(),
            ],
        )
    assert worst[0] < TOL_E and worst[1] < TOL_F and worst[2] < TOL_S, worst
    assert np.abs(result.forces).max() > 0.5  # not trivially zero

    # the ASE calculator path gives the same numbers
    moved = atoms.copy()
    moved.positions = positions[-1]
    moved.calc = LammpsCalculator(gap_potential(tiny_model))
    assert abs(moved.get_potential_energy() - ref.get_potential_energy()) < TOL_E
    np.testing.assert_allclose(moved.get_forces(), ref.get_forces(), rtol=0, atol=TOL_F)


def test_two_models_in_one_process(tiny_model, other_model, quippy_gap):
    """QUIP holds one model per process; the plugin reloads when instances alternate, and
    each model is evaluated with its own cutoff (5 A, 6 A) in a same-sized structure."""
    rng = np.random.default_rng(21)
    atoms = _structure("SC")
    positions = _displaced(atoms, rng, 2, 0.1)
    refs = {}
    for model in (tiny_model, other_model):
        ref = atoms.copy()
        ref.calc = quippy_gap(model.xml)
        refs[model.xml] = []
        for pos in positions:
            ref.positions = pos
            refs[model.xml].append(ref.get_potential_energy())
    # one ghost cutoff for both, so both systems hold the same number of atoms: QUIP's
    # wrapper would otherwise rebuild its saved atoms object anyway
    same_ghosts = ("comm_modify cutoff 10.0",)
    with (
        LammpsCalculator(replace(gap_potential(tiny_model), commands=same_ghosts), atoms) as a,
        LammpsCalculator(replace(gap_potential(other_model), commands=same_ghosts), atoms) as b,
    ):
        for _ in range(2):  # a, b, a, b: each evaluation after the other model loaded
            for batch, model in ((a, tiny_model), (b, other_model)):
                energies = batch.calculate_batch(positions, stress=False).energies
                np.testing.assert_allclose(energies, refs[model.xml], rtol=0, atol=TOL_E)
    assert abs(refs[tiny_model.xml][0] - refs[other_model.xml][0]) > 1e-3


def test_per_atom_energy_and_virial_sum_to_global(tiny_model):
    """compute pe/atom and stress/atom (QUIP's local energies and virials, ghost parts
    folded back) add up to the global energy and pressure."""
    rng = np.random.default_rng(3)
    atoms = _structure("SC")
    with LammpsSystem(gap_potential(tiny_model), atoms) as system:
        for line in (
            "compute epa all pe/atom",
            "compute spa all stress/atom NULL virial",
            "compute esum all reduce sum c_epa",
            "compute ssum all reduce sum c_spa[1]",
            "thermo_style custom step pe c_esum c_ssum pxx pyy pzz pxy pxz pyz vol",
        ):
            system.command(line)
        system.scatter_positions(_displaced(atoms, rng, 1, 0.1)[0])
        system.run0()
        lmp = system.lmp
        epa = lmp.numpy.extract_compute("epa", 1, 1)[: len(atoms)]
        spa = lmp.numpy.extract_compute("spa", 1, 2)[: len(atoms)]
        assert epa.sum() == pytest.approx(lmp.get_thermo("pe"), rel=1e-12, abs=1e-9)
        vol = lmp.get_thermo("vol")
        for k, key in enumerate(("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")):
            assert -spa[:, k].sum() / vol == pytest.approx(lmp.get_thermo(key), rel=1e-10, abs=1e-6)


def test_box_change_within_instance(tiny_model, quippy_gap):
    """After change_box (QUIP's saved atoms object may keep its old lattice when the atom
    count does not change) the plugin still matches quippy on LAMMPS's own positions."""
    rng = np.random.default_rng(4)
    atoms = _structure("SC")
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    n = len(atoms)
    with LammpsSystem(gap_potential(tiny_model), atoms) as system:
        system.command("thermo_style custom step pe pxx")
        for scale in (1.01, 1.03, 0.99):
            # the raw LAMMPS handle: LammpsSystem.command refuses box changes (fixed frame)
            s = scale
            system.lmp.command(f"change_box all x scale {s} y scale {s} z scale {s} remap")
            system.run0()
            lmp = system.lmp
            x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
            f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
            lo, hi = (np.array(v) for v in lmp.extract_box()[:2])
            ref = Atoms(atoms.symbols, positions=x - lo, cell=np.diag(hi - lo), pbc=True)
            ref.calc = quippy_gap(tiny_model.xml)
            assert abs(lmp.get_thermo("pe") - ref.get_potential_energy()) < TOL_E
            np.testing.assert_allclose(f, ref.get_forces(), rtol=0, atol=TOL_F)
            pxx = -lmp.get_thermo("pxx") / lmp.extract_global("nktv2p")
            assert abs(pxx - ref.get_stress()[0]) < TOL_S


@pytest.mark.skipif(
    shutil.which("mpiexec", path=str(Path(sys.executable).parent)) is None,
    reason="no mpiexec beside the interpreter",
)
def test_two_mpi_ranks_agree(tiny_model, tmp_path):
    """With 2 MPI ranks (atoms and ghosts split between ranks) the deck gives the
    single-rank numbers."""
    rng = np.random.default_rng(6)
    atoms = _structure("2SC")
    positions = _displaced(atoms, rng, 2, 0.08)
    potential = gap_potential(tiny_model)
    deck = write_deck(tmp_path / "deck", potential, atoms, positions)
    bindir = Path(sys.executable).parent
    result = run_deck(deck.directory, lmp=[str(bindir / "mpiexec"), "-n", "2", str(bindir / "lmp")])
    assert "2 procs" in (deck.directory / "log.lammps").read_text()
    with LammpsCalculator(potential, atoms) as batch:
        ref = batch.calculate_batch(positions, stress=False)
    np.testing.assert_allclose(result.energies, ref.energies, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=1e-8)


def test_lmp_binary_runs_deck(tiny_model, tmp_path):
    """A plain deck (no plugin load line) run by the wheel's lmp gives the same numbers."""
    rng = np.random.default_rng(5)
    atoms = _structure("2I")
    positions = _displaced(atoms, rng, 2, 0.08)
    potential = gap_potential(tiny_model)
    deck = write_deck(tmp_path / "deck", potential, atoms, positions)
    text = (deck.directory / "potential.in").read_text()
    assert "plugin" not in text and '"IP GAP" 90 8' in text
    result = run_deck(deck.directory)
    with LammpsCalculator(potential, atoms) as batch:
        ref = batch.calculate_batch(positions)
    np.testing.assert_allclose(result.energies, ref.energies, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=1e-6)


# ------------------------------------------------------------------- MD (NVE)
def test_nve_conserves_energy(tiny_model):
    """Velocity Verlet with the plugin: the total energy stays within a band set by the
    time step (no drift), with neighbour lists rebuilt during the run."""
    atoms = _structure("SC")
    with LammpsSystem(gap_potential(tiny_model), atoms) as system:
        run = nve_thermo(system, temperature=800.0, dt=0.001, chunks=20, chunk_steps=10,
                         setup=("neighbor 0.3 bin", "neigh_modify every 1 delay 0 check yes"))
        steps = system.lmp.get_thermo("step")
    etot_arr, ke_arr = run["etotal"], run["ke"]
    assert steps == 200
    assert ke_arr.std() > 0.02  # the atoms exchange kinetic and potential energy
    deviation = float(np.abs(etot_arr - etot_arr[0]).max())
    drift = abs(float(np.polyfit(np.arange(len(etot_arr)), etot_arr, 1)[0])) * len(etot_arr)
    # measured (2026-12-02) 0.96e-3 and 0.34e-3 of the mean KE
    assert deviation < 0.01 * ke_arr.mean(), (deviation, ke_arr.mean())
    assert drift < 0.005 * ke_arr.mean(), (drift, ke_arr.mean())


# -------------------------------------------------------------------- bad input
def test_model_file_errors(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gap_potential(tmp_path / "missing.xml")
    with pytest.raises(FileNotFoundError, match="holds no gap.xml"):
        gap_potential(tmp_path)
    (tmp_path / "junk.xml").write_text("this is not xml\n")
    with pytest.raises(GapModelError, match="not valid XML"):
        gap_potential(tmp_path / "junk.xml")
    (tmp_path / "other.xml").write_text("<Potential><IP_LJ/></Potential>\n")
    with pytest.raises(GapModelError, match="not a GAP model"):
        gap_potential(tmp_path / "other.xml")
    assert model_species(tiny_model.xml)[0] == ("Th", "O")


def test_species_errors(tiny_model):
    with pytest.raises(GapModelError, match=r"does not describe \['U'\]"):
        gap_potential(tiny_model, ("Th", "O", "U"))
    with pytest.raises(GapModelError, match=r"lack \['Th'\]"):
        gap_potential(tiny_model, ("O",))
    potential = gap_potential(tiny_model, ("O", "Th"))  # any type order
    assert potential.pair_coeff[0].endswith('"IP GAP" 8 90')


def _raw_potential(xml: Path, elements: tuple[str, ...], zs: str, init: str = "IP GAP"):
    """A LammpsPotential written by hand (bypassing gap_potential's checks)."""
    return LammpsPotential(
        elements=elements, pair_style="quip", pair_coeff=(f'* * {xml} "{init}" {zs}',)
    )


def test_plugin_rejects_bad_input(tiny_model, tmp_path):
    """The plugin's own checks, for decks and hand-written inputs."""
    atoms = _structure("SC")
    cases = [
        (_raw_potential(tmp_path / "none.xml", ("Th", "O"), "90 8"), "Cannot open QUIP model"),
        (_raw_potential(tiny_model.xml, ("Th", "O"), "90 92"), "atomic number 92"),
        (_raw_potential(tiny_model.xml, ("Th", "O"), "90 8", "IP LJ"), "GAP models only"),
        (_raw_potential(tiny_model.xml, ("Th", "O"), "90 X"), "not an atomic number"),
    ]
    (tmp_path / "plain.xml").write_text("<Potential/>\n")
    cases.append((_raw_potential(tmp_path / "plain.xml", ("Th", "O"), "90 8"), "not a GAP model"))
    for potential, message in cases:
        with pytest.raises(LammpsError, match=message):
            LammpsSystem(potential, atoms).close()


def test_plugin_checks_what_quip_would_abort_on(tiny_model, tmp_path):
    """A wrong label, a truncated or incomplete xml, a missing sparseX file, an option QUIP
    cannot use: QUIP would end the process; the plugin refuses them first with a LAMMPS
    error, and this process goes on to load the model by its label."""
    atoms = _structure("SC")
    text = tiny_model.xml.read_text()
    label = text.split('<GAP_params label="', 1)[1].split('"', 1)[0]
    truncated = tmp_path / "truncated.xml"
    truncated.write_text(text[: text.index("</gpSparse>")])
    first = f'<gpCoordinates label="{label}1"'
    incomplete = tmp_path / "incomplete.xml"
    incomplete.write_text(text.replace(first, '<gpCoordinates label="x"'))
    separate = tmp_path / "separate.xml"  # sparse points in a file gap_fit wrote beside it
    sparse_file = f"gap.xml.sparseX.{label}1"
    separate.write_text(text.replace(first, f'{first} sparseX_filename="{sparse_file}"'))
    cases = [
        (tiny_model.xml, "IP GAP label=nosuch",
         rf'no <GAP_params label="nosuch"> \(its labels: {label}\)'),
        (tiny_model.xml, "IP GAP calc_args=x",
         r"'calc_args=x' in the init string .* not supported"),
        (truncated, "IP GAP",
         r"not well-formed XML: the element <gpSparse> opened at line \d+ is never closed"),
        (incomplete, "IP GAP", rf'<gpCoordinates label="{label}1"> is missing'),
        (separate, "IP GAP", rf"Cannot open {tmp_path}/{sparse_file}, a sparseX file"),
    ]
    for xml, init, message in cases:
        with pytest.raises(LammpsError, match=message):
            LammpsSystem(_raw_potential(xml, ("Th", "O"), "90 8", init), atoms).close()
    energies = []
    for init in ("IP GAP", f"IP GAP label={label}"):
        with LammpsSystem(_raw_potential(tiny_model.xml, ("Th", "O"), "90 8", init), atoms) as s:
            energies.append(s.evaluate(atoms.positions).energy)
    assert energies[0] == energies[1]  # the first (only) GAP of the file, named or not


def test_structure_without_training_species(tiny_model):
    """An all-oxygen cell evaluated with the ThO2 model is refused by the plugin."""
    atoms = _structure("SC")
    atoms.symbols = ["O"] * len(atoms)
    potential = _raw_potential(tiny_model.xml, ("Th", "O"), "90 8")
    with pytest.raises(LammpsError, match="holds no atom of species 90"):
        with LammpsSystem(potential, atoms) as system:
            system.evaluate(atoms.positions)


def test_gap_fit_failure_quotes_log(tiny_refmd_dataset, tmp_path):
    bad = TINY.with_(three_body=None, soap=None, two_body=DistanceTwoBody(sparse_method="bogus"))
    with pytest.raises(GapFitError) as info:
        train_gap(tiny_refmd_dataset, tmp_path / "bad", bad, progress=False)
    msg = str(info.value)
    assert "gap_fit failed (exit status 1)" in msg
    assert "unknown sparse method bogus" in msg and "command.txt" in msg
    with pytest.raises(GapFitError, match="cannot run gap_fit"):
        train_gap(
            tiny_refmd_dataset, tmp_path / "x", TINY, progress=False, gap_fit=str(tmp_path / "no")
        )


def test_memory_refusal(tiny_refmd_dataset, tmp_path):
    with pytest.raises(GapMemoryError) as info:
        train_gap(tiny_refmd_dataset, tmp_path / "m", GapConfig.paper(memory_limit_gb=0.2))
    msg = str(info.value)
    assert "os.sysconf" in msg and "GB" in msg and "caps it at 0.2 GB" in msg
    assert "max_frames=" in msg or "not even one frame" in msg
    assert not (tmp_path / "m" / "gap.xml").exists()


def test_existing_model_is_not_overwritten(tiny_model, tiny_refmd_dataset):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        train_gap(tiny_refmd_dataset, tiny_model.directory, TINY, progress=False)


def _configure(build: Path, src: Path, library: str) -> subprocess.CompletedProcess:
    cmake = shutil.which("cmake") or str(Path(sys.executable).parent / "cmake")
    return subprocess.run(
        [
            cmake,
            "-S",
            str(src),
            "-B",
            str(build),
            f"-DLAMMPS_HEADER_DIR={lammps_header_dir()}",
            f"-DMPI_INCLUDE_DIR={mpi_include_dir()}",
            f"-DANHARMBENCH_PLUGIN_OUTPUT_DIR={build / 'out'}",
            f"-DANHARMBENCH_QUIP_LIBRARY={library}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_build_explains_missing_library(tmp_path):
    """Without QUIP's library the quip plugin is skipped naming the pip extra; a wrong
    path, or a file that is not QUIP's library, stops the configuration naming it."""
    src = tmp_path / "plugins"
    src.mkdir()
    real = source_dir()
    shutil.copy(real / "CMakeLists.txt", src)
    for sub in ("cmake", "common", "quip"):
        shutil.copytree(real / sub, src / sub)

    def said(proc: subprocess.CompletedProcess) -> str:  # CMake wraps its messages
        return " ".join((proc.stdout + proc.stderr).split())

    skipped = _configure(tmp_path / "build", src, "")
    assert skipped.returncode == 0, skipped.stderr
    assert "quip plugin skipped" in said(skipped) and "pip install -e '.[gap]'" in said(skipped)
    missing = str(tmp_path / "nowhere" / "libPotentials-0.so")
    failed = _configure(tmp_path / "build", src, missing)
    assert failed.returncode != 0
    assert f"'{missing}' does not exist" in said(failed)
    fake = tmp_path / "libPotentials-fake.so"
    fake.write_text("not a library\n")
    wrong = _configure(tmp_path / "build", src, str(fake))
    assert wrong.returncode != 0
    assert f"cannot link against {fake}" in said(wrong) and "quip_lammps_wrapper" in said(wrong)
    assert quip_library() is not None  # the real build found it (make setup)


def test_quippy_and_plugin_in_one_interpreter_exit_cleanly(tiny_model):
    """quippy imported beside the plugin: the interpreter exits with status 0."""
    code = textwrap.dedent(
        f"""
        import quippy
        from anharmbench.mlip.gap import gap_potential
        from anharmbench.lammps import LammpsCalculator
        from anharmbench.structures import build_supercell, tho2_primitive
        atoms = build_supercell(tho2_primitive(5.58), "SC")
        atoms.calc = LammpsCalculator(gap_potential({str(tiny_model.directory)!r}))
        print(atoms.get_potential_energy())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stack_value" not in out.stdout + out.stderr
