"""Issue 30, "data from two sources mixed" and "bad numbers passed on": every join of data
checks where the pieces came from, and bad numbers are refused where they enter.

Each case runs the command a user would, and checks the exit status, the words of the
message, and that nothing on disk changed (a listing of every file with its SHA-256
before and after). The data are small and made here, seeded: ThO2's 3-atom primitive
cell planned for a "DFT code" (CRG through LAMMPS standing in for it), and a phono3py
dataset of ThO2's 12-atom conventional cell with CRG forces (38 supercells, imported in
seconds).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from anharmbench.cli import main

PLAN_ARGS = ["plan", "--supercell", "prim", "--order", "2", "--order", "3", "--steps", "3"]
N_CONF = 13  # configurations of that plan (tests/test_dft_files.py counts them)
RY_BOHR = 25.71104309541616  # eV/A


# ------------------------------------------------------------------ helpers
def snapshot(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (and ``"dir"`` for folders)."""
    out = {}
    for root in roots:
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            out[str(p)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, words: list[str], *argv: str, roots: tuple[Path, ...] = ()) -> str:
    """Run ``argv``; assert exit 2, an error holding ``words``, ``roots`` unchanged."""
    before = snapshot(*roots)
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    text = err.strip()
    assert text.startswith(f"anharmbench {argv[0]}: error: "), err
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    assert snapshot(*roots) == before
    return text


def _crg_frames(positions: np.ndarray, cell: np.ndarray, symbols: list[str]):
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential

    atoms = Atoms(symbols, positions=positions[0], cell=cell, pbc=True)
    with LammpsCalculator(crg_potential(), atoms) as calc:
        return calc.calculate_batch(positions, stress=True)


def fake_dft(plan: Path, jobs, *, force_factor: float = 1.0, nan_in: int | None = None) -> None:
    """'Run a DFT code' on job folders: CRG in LAMMPS, written as extended XYZ outputs
    (``force_factor`` scales the forces, as a wrong unit would; ``nan_in`` spoils one)."""
    jobs = list(jobs)
    structures = [ase.io.read(plan / "dft" / f"job_{i:05d}" / "structure.xyz") for i in jobs]
    res = _crg_frames(np.array([a.positions for a in structures]), structures[0].cell.array,
                      structures[0].get_chemical_symbols())
    for k, (i, atoms) in enumerate(zip(jobs, structures, strict=True)):
        forces = res.forces[k] * force_factor
        if i == nan_in:
            forces[1, 0] = np.nan
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, energy=res.energies[k], forces=forces,
                                         stress=res.stresses[k])
        ase.io.write(plan / "dft" / f"job_{i:05d}" / "output.xyz", out)


def write_with_source(plan: Path, indices, source: str) -> None:
    """Store results of ``indices`` from ``source`` as another program (an older
    anharmbench, a script) could have: CRG evaluated in process."""
    from anharmbench.derivatives.results import ResultStore
    from anharmbench.derivatives.workflow import load_plan_directory

    prepared, manifest = load_plan_directory(plan)
    idx = np.asarray(list(indices))
    pos = prepared.supercell.positions[None] + prepared.plan.displacements[idx]
    res = _crg_frames(pos, prepared.supercell.cell.array,
                      prepared.supercell.get_chemical_symbols())
    store = ResultStore(plan / "results.h5", prepared.plan, identity=manifest["identity"])
    with store.writer() as write:
        write(idx, res.energies, res.forces, source)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def dft_plan(tmp_path_factory) -> Path:
    """ThO2 prim, orders 2-3, 3 steps, written as extended XYZ job folders, every job 'run'."""
    plan = tmp_path_factory.mktemp("plan") / "P"
    # with its potential named: a DFT plan that also has LAMMPS decks (without --potential,
    # a DFT plan has none; tests/test_dft_files.py)
    assert main([*PLAN_ARGS, "--format", "extxyz", "--potential", "crg", "--out",
                 str(plan)]) == 0
    fake_dft(plan, range(N_CONF))
    return plan


@pytest.fixture
def plan(dft_plan, tmp_path) -> Path:
    copy = tmp_path / "P"
    shutil.copytree(dft_plan, copy)
    return copy


@pytest.fixture(scope="module")
def tho2_data(tmp_path_factory) -> Path:
    """phono3py datasets of ThO2's conventional cell (CRG forces and energies): at
    0.03 A (``phono3py_disp.yaml`` + ``FORCES_FC3``, and ``params.yaml`` with forces and
    supercell energies) and the same displacements at 0.01 A (``disp_001.yaml``)."""
    import phono3py
    from phono3py.file_IO import write_FORCES_FC3
    from phonopy.structure.atoms import PhonopyAtoms

    from anharmbench.structures import build_supercell, tho2_primitive

    root = tmp_path_factory.mktemp("tho2")
    conv = build_supercell(tho2_primitive(), "SC")
    unit = PhonopyAtoms(symbols=conv.get_chemical_symbols(), cell=conv.cell.array,
                        scaled_positions=conv.get_scaled_positions())
    for distance, name in ((0.01, "disp_001.yaml"), (0.03, "phono3py_disp.yaml")):
        with warnings.catch_warnings():  # 'auto' is meant: the 3-atom primitive cell
            warnings.simplefilter("ignore")
            ph3 = phono3py.Phono3py(unit, supercell_matrix=[1, 1, 1], primitive_matrix="auto")
        ph3.generate_displacements(distance=distance)
        ph3.save(root / name)
    pos = np.array([s.positions for s in ph3.supercells_with_displacements])
    res = _crg_frames(pos, np.asarray(ph3.supercell.cell), list(ph3.supercell.symbols))
    write_FORCES_FC3(ph3.dataset, res.forces, filename=root / "FORCES_FC3")
    ph3.forces = res.forces
    ph3.supercell_energies = res.energies
    ph3.save(root / "params.yaml")
    assert len(pos) == 38
    return root


@pytest.fixture(scope="module")
def tho2_import(tho2_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "ref"
    assert main(["import", str(tho2_data / "phono3py_disp.yaml"), "--out", str(out)]) == 0
    return out / "derivatives.h5"


def _dataset_copy(tho2_data: Path, tmp_path: Path, forces_text: str | None = None,
                  yaml: str = "phono3py_disp.yaml") -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(tho2_data / yaml, d / "phono3py_disp.yaml")
    (d / "FORCES_FC3").write_text(forces_text if forces_text is not None
                                  else (tho2_data / "FORCES_FC3").read_text())
    return d / "phono3py_disp.yaml"


def _scaled_forces(text: str, factor: float) -> str:
    """A FORCES_FC3 with every force row multiplied by ``factor`` (comments kept)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
        else:
            out.append(" ".join(f"{float(x) * factor:15.10f}" for x in line.split()))
    return "\n".join(out) + "\n"


# ============================================ 1. a DFT plan is never completed by LAMMPS
def test_dft_plan_is_never_completed_with_its_potential(plan, capsys):
    """7 of 13 outputs collected, then 'derivatives --evaluate': refused before anything
    is evaluated or written (it used to evaluate the 6 others with CRG and fit all)."""
    code, out, _ = run(capsys, "collect", plan, "--outputs", "dft/job_0000[0-6]/output.xyz")
    assert code == 1 and f"7/{N_CONF} configurations done" in out
    line = refused(capsys, ["received DFT outputs", "7 of 13", "never completed", "CRG-ThO2",
                            "anharmbench collect", "without --evaluate"],
                   "derivatives", plan, "--evaluate", roots=(plan,))
    assert "job_00000/output.xyz" in line
    assert not (plan / "derivatives.h5").exists()


def test_each_result_records_its_source(plan, tmp_path, capsys):
    """DFT outputs: the file and its SHA-256 per configuration, and derivatives.h5 named
    by those files, not by the plan's LAMMPS potential; in process: the potential's hash."""
    from anharmbench.derivatives.results import ResultStore
    from anharmbench.derivatives.workflow import load_plan_directory

    assert main(["collect", str(plan), "--outputs", "dft/job_*/output.xyz"]) == 0
    assert main(["derivatives", str(plan)]) == 0
    prepared, manifest = load_plan_directory(plan)
    sources = ResultStore(plan / "results.h5", prepared.plan).sources()
    for s in sources:
        path, _, digest = s.removeprefix("DFT output ").rpartition(" sha256:")
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert len(set(sources)) == N_CONF
    with h5py.File(plan / "derivatives.h5", "r") as h5:
        assert json.loads(h5.attrs["potential"])["name"] == "DFT"
        assert h5.attrs["potential_hash"] != manifest["potential_hash"]
        assert json.loads(h5.attrs["sources"])["origin"] == "DFT outputs"
    other = tmp_path / "Q"
    assert main([*PLAN_ARGS, "--out", str(other)]) == 0
    assert main(["derivatives", str(other), "--evaluate"]) == 0
    prepared, manifest = load_plan_directory(other)
    sources = set(ResultStore(other / "results.h5", prepared.plan).sources())
    assert sources == {f"potential 'CRG-ThO2' sha256:{manifest['potential_hash']}"}


def test_fit_refuses_results_of_two_sources(plan, capsys):
    """7 configurations from DFT, 6 from CRG (as an older anharmbench wrote them): the fit
    names both sources and writes nothing."""
    assert main(["collect", str(plan), "--outputs", "dft/job_0000[0-6]/output.xyz"]) == 1
    write_with_source(plan, range(7, N_CONF), "potential 'CRG-ThO2' sha256:0123abcd")
    refused(capsys, ["mixes results of different sources", "7 configuration(s) from DFT "
                     "outputs", "6 from potential 'CRG-ThO2'", "configuration 7",
                     "never fitted together"],
            "derivatives", plan, roots=(plan,))


def test_dft_outputs_are_not_collected_beside_a_potentials_results(plan, capsys):
    """A plan evaluated in process with CRG: its DFT outputs are refused, not mixed in."""
    assert main(["derivatives", str(plan), "--evaluate"]) == 0
    refused(capsys, ["computed by potential 'CRG-ThO2'", "never mixed", "results.h5"],
            "collect", plan, "--outputs", "dft/job_*/output.xyz", roots=(plan,))


@pytest.mark.parametrize("case", ["incomplete", "mixed", "potential only"])
def test_files_reference_takes_dft_outputs_only(case, plan, tmp_path, capsys):
    """A study with reference kind 'files' refuses, before anything runs, a plan with
    missing outputs, one completed with the potential, or one the potential computed."""
    if case == "potential only":
        assert main(["derivatives", str(plan), "--evaluate"]) == 0
    else:
        assert main(["collect", str(plan), "--outputs", "dft/job_0000[0-6]/output.xyz"]) == 1
    if case == "mixed":
        write_with_source(plan, range(7, N_CONF), "potential 'CRG-ThO2' sha256:0123abcd")
    import yaml

    from anharmbench.potentials.crg import crg_potential

    pot = crg_potential()  # a model: the CRG surface by its LAMMPS fields
    model = {"name": "CRG", "kind": "lammps", "elements": list(pot.elements),
             "pair_style": pot.pair_style, "pair_coeff": list(pot.pair_coeff),
             "atom_style": pot.atom_style, "charges": dict(pot.charges),
             "kspace_style": pot.kspace_style, "commands": list(pot.commands),
             "files": list(pot.files)}
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump({"reference": {"kind": "files", "name": "DFT",
                                                 "plan": str(plan)},
                                   "models": [model], "observables": {"enabled": False}}))
    words = {"incomplete": ["6 of 13 configurations", "no DFT result yet"],
             "mixed": ["6 of 13 results computed by potential 'CRG-ThO2'",
                       "beside 7 DFT outputs", "DFT outputs only"],
             "potential only": ["13 of 13 results computed by potential 'CRG-ThO2'",
                                "DFT outputs only"]}[case]
    refused(capsys, ["reference.plan", *words], "run", cfg, "--out", tmp_path / "run",
            roots=(plan,))
    assert not (tmp_path / "run").exists()


# ==================================== 2. FORCES_FC3 of another amplitude than the dataset
def test_forces_of_another_amplitude_are_refused(tho2_data, tmp_path, capsys):
    """FORCES_FC3 made at 0.03 A beside a phono3py_disp.yaml made at 0.01 A (same
    supercells, same order): refused naming both files and amplitudes."""
    dataset = _dataset_copy(tho2_data, tmp_path, yaml="disp_001.yaml")
    out = tmp_path / "out"
    refused(capsys, [str(dataset.parent / "FORCES_FC3"), str(dataset), "0.03 A", "0.01 A",
                     "fc2 would come out 3 times", "fc3 9 times", "another dataset"],
            "import", dataset, "--out", out, roots=(dataset.parent,))
    assert not out.exists()


def test_forces_of_the_same_displacements_are_read(tho2_data):
    from anharmbench.dft.dataset_checks import forces_file_blocks
    from anharmbench.dft.reading import load_dataset

    blocks = forces_file_blocks(tho2_data / "FORCES_FC3")
    assert len(blocks) == 38 and blocks[0].atoms == (0,)
    assert np.allclose(np.linalg.norm(blocks[-1].vectors, axis=1), 0.03)
    kind, _, sources = load_dataset(tho2_data / "phono3py_disp.yaml")
    assert kind == "phono3py" and sources[-1].name == "FORCES_FC3"


# ============================================== 3. fc2 of a smaller supercell than fc3
@pytest.fixture(scope="module")
def prim_fc2_sc_fc3(tmp_path_factory) -> tuple[Path, Path]:
    """CRG ThO2: order 2 in prim (1 cell), order 3 in S_C (4 cells)."""
    root = tmp_path_factory.mktemp("ftg")
    assert main(["plan", "--supercell", "prim", "--order", "2", "--steps", "3", "--out",
                 str(root / "p2")]) == 0
    assert main(["derivatives", str(root / "p2"), "--evaluate"]) == 0
    assert main(["plan", "--supercell", "SC", "--order", "3", "--steps", "3", "--variant",
                 "bundled", "--out", str(root / "p3")]) == 0
    assert main(["derivatives", str(root / "p3"), "--evaluate"]) == 0
    return root / "p2" / "derivatives.h5", root / "p3" / "derivatives.h5"


def test_fc2_in_a_smaller_supercell_than_fc3_is_refused(prim_fc2_sc_fc3, tmp_path, capsys):
    """It gave kappa = 6e42 W/m-K with exit 0; now refused before anything is written."""
    from anharmbench.derivatives.derivative_set import DerivativeSetError
    from anharmbench.observables import compute_observables, load_derivative_set

    fc2, fc3 = prim_fc2_sc_fc3
    out = tmp_path / "obs"
    refused(capsys, ["order 2", str(fc2), str(fc3), "smaller than order 3",
                     "misses its q-point", "meaningless", "Measure order 2"],
            "observables", fc2, fc3, "--mesh", "4", "4", "4", "--out", out,
            roots=(fc2.parent, fc3.parent))
    assert not out.exists()
    # the library route (Benchmark, study) refuses the same set, built in memory
    from anharmbench.derivatives.derivative_set import DerivativeSet

    joined = DerivativeSet.combine([DerivativeSet.from_file(fc2), DerivativeSet.from_file(fc3)])
    with pytest.raises(DerivativeSetError, match="smaller than order 3"):
        compute_observables(joined, out)
    assert not out.exists()
    with pytest.raises(DerivativeSetError, match="smaller than order 3"):
        load_derivative_set([fc2, fc3])


@pytest.mark.parametrize(("fc2", "fc3", "ok"), [
    ([5, 5, 3], [3, 3, 2], True),  # phono3py's AlN example: larger, not commensurate
    ([4, 4, 4], [2, 2, 2], True),  # NaCl-rd: fc2's FTG holds fc3's q-points
    ([2, 2, 2], [2, 2, 2], True),
    ([6, 6, 1], [3, 3, 2], False),  # more cells, but one layer along c
    ([1, 1, 1], [2, 2, 2], False),
])
def test_fc2_supercell_must_cover_fc3s(fc2, fc3, ok):
    from ase.build import bulk

    from anharmbench.derivatives.derivative_set import DerivativeSet, DerivativeSetError
    from anharmbench.derivatives.joins import check_ftg_coverage

    aln = bulk("AlN", "wurtzite", a=3.11, c=4.98)
    dset = DerivativeSet("AlN", aln, values={2: [1.0], 3: [1.0]},
                         labels={2: ["a"], 3: ["b"]},
                         supercell_matrices={2: np.diag(fc2), 3: np.diag(fc3)})
    if ok:
        check_ftg_coverage(dset)
    else:
        with pytest.raises(DerivativeSetError, match="misses its q-point"):
            check_ftg_coverage(dset)


def test_orders_of_two_sources_are_not_joined(tho2_import, tmp_path, capsys):
    """fc2 measured on CRG beside fc3 of the imported 'DFT' dataset (same FTG, no order
    in both): the files of one potential never join two sources; both are named."""
    from anharmbench.derivatives.derivative_set import DerivativeSet

    assert main(["plan", "--supercell", "SC", "--order", "2", "--steps", "3", "--out",
                 str(tmp_path / "p2")]) == 0
    assert main(["derivatives", str(tmp_path / "p2"), "--evaluate"]) == 0
    fc2, fc3 = tmp_path / "p2" / "derivatives.h5", tmp_path / "fc3.h5"
    DerivativeSet.from_file(tho2_import).select([3]).to_file(fc3)
    refused(capsys, [str(fc2), str(fc3), "'CRG-ThO2'", "'DFT'", "never joined from two "
                     "sources"],
            "observables", fc2, fc3, "--mesh", "2", "2", "2", "--path-mesh", "2",
            "--loop-mesh", "2", "--temperatures", "300", "--out", tmp_path / "obs",
            roots=(tmp_path,))
    assert not (tmp_path / "obs").exists()


# ============================================ 4. --compare checks the crystal as well
@pytest.fixture(scope="module")
def si_file(tmp_path_factory) -> Path:
    """A derivatives.h5 of silicon (order 2 in prim; the values do not matter here)."""
    from ase.build import bulk

    from anharmbench.derivatives.derivative_set import DerivativeSet
    from anharmbench.symmetry import irreducible_basis

    si = bulk("Si", "diamond", a=5.43)
    basis = irreducible_basis(si, np.eye(3, dtype=int), order=2)
    path = tmp_path_factory.mktemp("si") / "derivatives.h5"
    DerivativeSet.from_bases("Si", si, {2: (basis, np.linspace(5.0, 10.0, len(basis)))}
                             ).to_file(path)
    return path


def test_compare_refuses_another_crystal(tho2_import, si_file, tmp_path, capsys):
    out = tmp_path / "obs"
    refused(capsys, [str(si_file), str(tho2_import), "another crystal", "Si2", "O2Th",
                     "--compare"],
            "observables", tho2_import, "--compare", f"Si={si_file}", "--out", out,
            roots=(tho2_import.parent, si_file.parent))
    # the same files given positionally were (and are) refused as well
    refused(capsys, ["different primitive cell"], "observables", tho2_import, si_file,
            "--out", out)
    assert not out.exists()


# ================================================= 5. non-finite numbers where data enter
def test_nan_in_forces_fc3_is_refused(tho2_data, tmp_path, capsys):
    text = (tho2_data / "FORCES_FC3").read_text().splitlines()
    rows = [i for i, line in enumerate(text) if not line.startswith("#")]
    k = rows[12 * 5 + 3]  # supercell 6, atom 4
    text[k] = "            nan " + " ".join(text[k].split()[1:])
    dataset = _dataset_copy(tho2_data, tmp_path, "\n".join(text) + "\n")
    refused(capsys, [str(dataset.parent / "FORCES_FC3"), "supercell 6", "disp-00006",
                     "atom 4", "not finite"],
            "import", dataset, "--out", tmp_path / "out", roots=(dataset.parent,))
    assert not (tmp_path / "out").exists()


def test_nan_energy_in_a_dataset_is_refused(tho2_data, tmp_path, capsys):
    import phono3py

    ph3 = phono3py.load(tho2_data / "params.yaml", produce_fc=False, log_level=0)
    energies = np.array(ph3.supercell_energies)
    energies[2] = np.nan
    ph3.supercell_energies = energies
    ph3.save(tmp_path / "params.yaml")
    refused(capsys, [str(tmp_path / "params.yaml"), "energy of supercell 3", "not finite"],
            "import", tmp_path / "params.yaml", "--out", tmp_path / "out",
            roots=(tmp_path,))


def test_nan_in_a_dft_output_is_refused_at_collect(plan, capsys):
    fake_dft(plan, [4], nan_in=4)
    refused(capsys, ["job_00004/output.xyz", "non-finite forces"],
            "collect", plan, "--outputs", "dft/job_*/output.xyz", roots=(plan,))
    assert not (plan / "results.h5").exists()


def test_nan_in_stored_results_is_refused_at_fit(plan, capsys):
    """A store written by another program with NaN forces: the fit names the store, the
    configuration and its source."""
    assert main(["collect", str(plan), "--outputs", "dft/job_*/output.xyz"]) == 0
    with h5py.File(plan / "results.h5", "r+") as h5:
        h5["forces"][3, 1, 0] = np.nan
    refused(capsys, [str(plan / "results.h5"), "configuration 3", "job_00", "non-finite"],
            "derivatives", plan, roots=(plan,))
    assert not (plan / "derivatives.h5").exists()


# ====================================================== 6. forces in the wrong unit
def test_forces_not_matching_the_energies_are_refused(tho2_data, tmp_path, capsys):
    """Forces in Ry/Bohr read as eV/A beside energies in eV: the energies' slope against
    the forces' work is 25.7, not 1."""
    import phono3py

    ph3 = phono3py.load(tho2_data / "params.yaml", produce_fc=False, log_level=0)
    ph3.forces = np.asarray(ph3.forces) / RY_BOHR
    ph3.save(tmp_path / "params.yaml")
    refused(capsys, ["do not match the energies", "25.7", "Ry/Bohr read as eV/A",
                     "Convert them to eV/A"],
            "import", tmp_path / "params.yaml", "--out", tmp_path / "out", roots=(tmp_path,))


@pytest.mark.parametrize(("factor", "words"), [
    (-1.0, ["push the displaced atoms further away", "gradients"]),
    (1000.0, ["too large to be eV/A", "THz", "no crystal without hydrogen"]),
])
def test_forces_alone_of_a_wrong_sign_or_scale_are_refused(factor, words, tho2_data,
                                                            tmp_path, capsys):
    """Without energies only the sign and gross factors (here meV/A) can be told."""
    text = _scaled_forces((tho2_data / "FORCES_FC3").read_text(), factor)
    dataset = _dataset_copy(tho2_data, tmp_path, text)
    refused(capsys, [str(dataset.parent / "FORCES_FC3"), *words],
            "import", dataset, "--out", tmp_path / "out", roots=(dataset.parent,))


def test_dft_outputs_in_a_wrong_unit_are_refused_at_fit(plan, capsys):
    fake_dft(plan, range(N_CONF), force_factor=1 / RY_BOHR)
    assert main(["collect", str(plan), "--outputs", "dft/job_*/output.xyz"]) == 0
    refused(capsys, ["results.h5", "do not match the energies", "Ry/Bohr"],
            "derivatives", plan, roots=(plan,))
    assert not (plan / "derivatives.h5").exists()


def test_unit_checks_pass_real_units(tho2_data):
    """The energy slope of correct data is 1 within a few per cent; nu_R is a phonon."""
    import phono3py
    from phono3py.phonon3.dataset import get_displacements_and_forces_fc3

    from anharmbench.derivatives.units import check_energy_force_units, check_force_scale

    ph3 = phono3py.load(tho2_data / "params.yaml", produce_fc=False, log_level=0)
    d, f = get_displacements_and_forces_fc3(ph3.dataset)
    slope = check_energy_force_units(d, f, np.asarray(ph3.supercell_energies), "x")
    assert abs(slope - 1) < 0.05
    nu = check_force_scale(d, f, ph3.supercell.masses, list(ph3.supercell.symbols), "x")
    assert 2.0 < nu < 20.0  # THz: ThO2's phonons reach ~18 THz


# ================================================= 7. a polar crystal without Born charges
def test_crystal_of_two_species_without_born_charges_warns(tho2_data, tho2_import, tmp_path,
                                                           capsys):
    from ase.build import bulk

    from anharmbench.phonopy_interface import missing_born_warning

    code, _, err = run(capsys, "import", tho2_data / "phono3py_disp.yaml", "--out",
                       tmp_path / "ref")
    assert code == 0
    for w in ("WARNING", "O2Th has 2 species", "Born effective charges", "BORN",
              "--born", "kappa"):
        assert w in err, err
    code, _, err = run(capsys, "observables", tho2_import, "--mesh", "2", "2", "2",
                       "--path-mesh", "2", "--loop-mesh", "2", "--temperatures", "300",
                       "--out", tmp_path / "obs")
    assert code == 0 and "WARNING" in err and "no Born effective charges" in err
    nac = {"born": np.zeros((3, 3, 3)), "dielectric": np.eye(3)}
    prim = Atoms("ThO2", scaled_positions=[[0, 0, 0], [0.25] * 3, [0.75] * 3],
                 cell=[[0, 2.8, 2.8], [2.8, 0, 2.8], [2.8, 2.8, 0]], pbc=True)
    assert missing_born_warning(prim, nac, "x") is None
    assert missing_born_warning(bulk("Si", "diamond", a=5.43), None, "x") is None
