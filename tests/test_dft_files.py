"""DFT codes out and back through files: job folders of a plan, reading outputs with ASE,
matching them to configurations by position (real VASP outputs of phono3py's Si example),
refusing bad outputs without touching results.h5, and the CLI round trip."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from anharmbench.cli import main
from anharmbench.derivatives.workflow import load_derivatives
from anharmbench.dft.collect import collect_outputs
from anharmbench.dft.outputs import OutputError, OutputFrame, match_outputs, read_output

SI = Path("/work/shared/dft/Si-PBE")
needs_si = pytest.mark.skipif(not (SI / "vasprun_xmls.tar.lzma").is_file(),
                              reason="phono3py's Si-PBE data not in /work/shared/dft")

# the smallest plan of the embedded ThO2 default: 3 atoms, 13 configurations, orders 2 and 3
# (3 steps, the fewest that give an uncertainty; counted by `plan --count-only`)
PLAN_ARGS = ["plan", "--supercell", "prim", "--order", "2", "--order", "3", "--steps", "3"]
N_CONF = 13


# ------------------------------------------------------------------ real VASP data (Si)
@dataclasses.dataclass
class SiData:
    root: Path
    files: list[Path]
    reference: Atoms
    positions: np.ndarray  # (111, 64, 3), configuration i = phono3py id i + 1
    forces: np.ndarray  # (111, 64, 3) from FORCES_FC3 through phono3py's reader


@pytest.fixture(scope="module")
def si(tmp_path_factory) -> SiData:
    import phono3py

    root = tmp_path_factory.mktemp("si")
    # a legacy .lzma stream: tarfile's "r:xz" reads it (the lzma module detects the format)
    with tarfile.open(SI / "vasprun_xmls.tar.lzma", "r:xz") as tar:
        tar.extractall(root, filter="data")
    ph3 = phono3py.load(SI / "phono3py_disp.yaml", produce_fc=False, log_level=0,
                        forces_fc3_filename=str(SI / "FORCES_FC3"))
    sc = ph3.supercell
    reference = Atoms(numbers=sc.numbers, cell=sc.cell, scaled_positions=sc.scaled_positions,
                      pbc=True)
    # the displaced supercells from the dataset: positions + displacement(s), by id
    n = len(ph3.supercells_with_displacements)
    positions = np.full((n, len(sc.numbers), 3), np.nan)
    for first in ph3.dataset["first_atoms"]:
        p1 = sc.positions.copy()
        p1[first["number"]] += first["displacement"]
        positions[first["id"] - 1] = p1
        for second in first["second_atoms"]:
            if not second.get("included", True):
                continue
            p2 = p1.copy()
            p2[second["number"]] += second["displacement"]
            positions[second["id"] - 1] = p2
    assert not np.isnan(positions).any()
    for i, s in enumerate(ph3.supercells_with_displacements):  # phono3py agrees (none skipped)
        np.testing.assert_allclose(s.positions, positions[i], atol=1e-12)
    files = sorted(root.glob("vasprun_xmls/disp-*/vasprun.xml"))
    return SiData(root, files, reference, positions, np.asarray(ph3.forces))


def _config_of(path: Path) -> int:
    return int(path.parent.name.split("-")[1]) - 1  # disp-00001 is configuration 0


@needs_si
def test_si_vasprun_outputs_match_forces_fc3(si):
    """All 111 vasprun.xml read in shuffled order land on their configurations with the
    forces phono3py collected into FORCES_FC3."""
    files = list(si.files)
    assert len(files) == 111
    np.random.default_rng(11).shuffle(files)
    t0 = time.perf_counter()
    frames = [read_output(f) for f in files]  # format from the name: vasp-xml
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = match_outputs(frames, si.reference, si.positions)
    t_match = time.perf_counter() - t0
    print(f"read 111 vasprun.xml in {t_read:.2f} s, matched in {t_match * 1e3:.1f} ms")
    np.testing.assert_array_equal(m.indices, [_config_of(f) for f in files])
    assert m.paths == files
    np.testing.assert_allclose(m.forces, si.forces[m.indices], rtol=0, atol=1e-6)
    # physics: the cell does not move (total force = VASP's small drift only), and the
    # single displacement (0.03 A along x) is pulled back
    assert np.abs(m.forces.sum(axis=1)).max() < 2e-3
    j = list(m.indices).index(0)
    u = si.positions[0] - si.reference.positions
    a = int(np.flatnonzero(np.abs(u).sum(axis=1) > 0)[0])
    assert np.dot(m.forces[j, a], u[a]) < -0.3 * 0.03  # restoring, ~ -k u^2, k ~ 13 eV/A^2
    # free energies of 0.03 A displacements differ by meV, not more
    assert np.isfinite(m.energies).all() and np.ptp(m.energies) < 0.02


@needs_si
def test_si_truncated_vasprun_is_refused(si, tmp_path, monkeypatch):
    """A vasprun.xml cut in half, or cut just before its closing tag (which ASE itself reads
    silently as a finished run), is refused naming the file."""
    from anharmbench.dft import outputs

    data = si.files[0].read_bytes()
    half = tmp_path / "half" / "vasprun.xml"
    half.parent.mkdir()
    half.write_bytes(data[: len(data) // 2])
    end = tmp_path / "end" / "vasprun.xml"
    end.parent.mkdir()
    end.write_bytes(data[: data.rindex(b"</modeling>")])
    assert ase.io.read(end, format="vasp-xml").get_forces().shape == (64, 3)  # ASE: no error
    for path in (half, end):
        with pytest.raises(OutputError, match="truncated") as exc:
            read_output(path)
        assert str(path) in str(exc.value)
    # without the end-of-file check, what ASE makes of the half file is refused too
    monkeypatch.setattr(outputs, "_END_MARKERS", {})
    with pytest.raises(OutputError, match="(cannot read it as vasp-xml|has no forces)") as exc:
        read_output(half)
    assert str(half) in str(exc.value)


def _write_frame(path: Path, atoms: Atoms, forces: np.ndarray | None,
                 energy: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = atoms.copy()
    if forces is not None:
        out.calc = SinglePointCalculator(out, forces=forces, energy=energy)
    ase.io.write(path, out, format="extxyz")
    return path


@needs_si
def test_si_bad_outputs_are_refused(si, tmp_path):
    """Another cell, an atom off its configuration, the same output twice, no forces, a
    different atom count: each refused with the file named and the problem said."""
    good = [read_output(f) for f in si.files[:6]]
    base = ase.io.read(si.files[3], format="vasp-xml")
    forces = base.get_forces(apply_constraint=False)

    scaled = base.copy()
    scaled.set_cell(base.cell.array * 1.002, scale_atoms=True)
    path = _write_frame(tmp_path / "scaled.xyz", scaled, forces)
    with pytest.raises(OutputError, match="differs from the plan's cell") as exc:
        match_outputs([*good, read_output(path)], si.reference, si.positions)
    msg = str(exc.value)
    assert str(path) in msg and "10.954" in msg and "10.932526" in msg  # both cells

    moved = base.copy()
    moved.positions[17] += [0.01, 0.0, 0.0]  # displacements are 0.03 A: the rest is farther
    path = _write_frame(tmp_path / "moved.xyz", moved, forces)
    with pytest.raises(OutputError, match="match no configuration") as exc:
        match_outputs([read_output(path)], si.reference, si.positions)
    assert str(path) in str(exc.value)
    assert f"closest: configuration {_config_of(si.files[3])}, an atom off by 0.01 A" in str(
        exc.value)

    copy = tmp_path / "disp-copy" / "vasprun.xml"
    copy.parent.mkdir()
    shutil.copy(si.files[3], copy)
    with pytest.raises(OutputError, match="both hold configuration") as exc:
        match_outputs([*good, read_output(copy)], si.reference, si.positions)
    assert str(si.files[3]) in str(exc.value) and str(copy) in str(exc.value)

    path = _write_frame(tmp_path / "noforces.xyz", base, None)
    with pytest.raises(OutputError, match="has no forces") as exc:
        read_output(path)
    assert str(path) in str(exc.value)

    path = _write_frame(tmp_path / "short.xyz", base[:-1], forces[:-1])
    with pytest.raises(OutputError, match="63 atoms, the plan's supercell has 64"):
        match_outputs([read_output(path)], si.reference, si.positions)

    nan = forces.copy()
    nan[5, 1] = np.nan
    path = _write_frame(tmp_path / "nan.xyz", base, nan)
    with pytest.raises(OutputError, match="non-finite forces"):
        read_output(path)


def test_matching_is_fast_and_by_position():
    """10^3 finite-difference-like configurations of 512 atoms (most atoms at rest, so
    the first atoms tell nothing) are matched in shuffled order, with wrapped atoms and
    noise below the tolerance, in well under a few seconds."""
    rng = np.random.default_rng(5)
    n, natoms = 1000, 512
    cell = np.diag([15.0, 16.0, 17.0]) + 0.3 * rng.random((3, 3))
    ref = Atoms(numbers=rng.integers(1, 3, natoms), cell=cell,
                scaled_positions=rng.random((natoms, 3)), pbc=True)
    disp = np.zeros((n, natoms, 3))
    for i in range(n):  # two atoms displaced along one of a few directions by one of 8 steps
        atoms = rng.choice(natoms, 2, replace=False)
        disp[i, atoms] = rng.choice([-1, 1]) * 0.01 * (1 + i % 8) * rng.normal(size=(2, 3))
    positions = ref.positions[None] + disp
    order = rng.permutation(n)
    frames = []
    for i in order:
        p = positions[i] + rng.normal(scale=1e-6, size=(natoms, 3))
        frac = p @ np.linalg.inv(cell)
        frac -= np.floor(frac)  # the code wrapped the atoms into the cell
        frames.append(OutputFrame(
            path=Path(f"f{i}"), numbers=ref.numbers.copy(), cell=cell * (1 + 1e-7),
            positions=frac @ (cell * (1 + 1e-7)), forces=np.full((natoms, 3), float(i)),
            energy=None))
    t0 = time.perf_counter()
    m = match_outputs(frames, ref, positions)
    dt = time.perf_counter() - t0
    print(f"matched {n} x {natoms} atoms in {dt:.2f} s")
    np.testing.assert_array_equal(m.indices, order)
    assert np.isnan(m.energies).all() and (m.forces[:, 0, 0] == order).all()
    assert dt < 10.0  # a guard against quadratic matching, not a benchmark


# --------------------------------------------------------- plans, job folders, round trip
def _plan(out: Path, fmt: str, *extra: str) -> Path:
    # CRG named: the same plan evaluated in process is the independent check below
    assert main([*PLAN_ARGS, "--format", fmt, "--potential", "crg", "--out", str(out),
                 *extra]) == 0
    return out


def test_dft_plan_needs_no_potential_and_writes_no_decks(tmp_path, capsys):
    """--format without --potential: job folders only (a DFT plan of any crystal, not only
    of those a LAMMPS potential knows); evaluating it is refused, collecting works."""
    plan = tmp_path / "P"
    assert main([*PLAN_ARGS, "--format", "extxyz", "--out", str(plan)]) == 0
    assert "no potential, no LAMMPS decks" in capsys.readouterr().out
    assert not list(plan.glob("chunk_*")) and not (plan / "jobarray.sh").exists()
    assert (plan / "dft" / "jobarray.sh").is_file()
    before = sorted(p.name for p in plan.iterdir())
    assert main(["derivatives", str(plan), "--evaluate"]) == 2
    err = capsys.readouterr().err
    assert "is a DFT plan" in err and "anharmbench dft run" in err
    assert sorted(p.name for p in plan.iterdir()) == before


@pytest.fixture(scope="module")
def extxyz_plan(tmp_path_factory) -> Path:
    return _plan(tmp_path_factory.mktemp("plans") / "P", "extxyz")


@pytest.fixture(scope="module")
def vasp_plan(tmp_path_factory) -> Path:
    return _plan(tmp_path_factory.mktemp("plans") / "V", "vasp", "--jobs-per-task", "4")


@pytest.fixture(scope="module")
def inprocess(extxyz_plan, tmp_path_factory):
    """The same plan evaluated in process (CRG through the batch evaluator) and fitted."""
    copy = tmp_path_factory.mktemp("inproc") / "P"
    shutil.copytree(extxyz_plan, copy)
    assert main(["derivatives", str(copy), "--evaluate"]) == 0
    import h5py

    with h5py.File(copy / "results.h5", "r") as h5:
        forces = np.asarray(h5["forces"][...])
    return load_derivatives(copy / "derivatives.h5"), forces


def test_count_only_counts_dft_jobs(capsys):
    assert main([*PLAN_ARGS, "--count-only"]) == 0
    out = capsys.readouterr().out
    assert f"evaluations: {N_CONF}" in out
    # order 3's central stencil already holds the undisplaced supercell: no extra job
    assert f"DFT jobs (one per configuration): {N_CONF}" in out


def test_plan_writes_job_folders(extxyz_plan):
    """One structure per configuration (the plan's positions, cell and species order),
    the job array, the README, and the format and job count in plan.json."""
    from anharmbench.derivatives.workflow import load_plan_directory

    prepared, manifest = load_plan_directory(extxyz_plan)
    assert manifest["dft_format"] == "extxyz" and manifest["dft_jobs"] == N_CONF
    assert manifest["n_evaluations"] == N_CONF and manifest["chunks"]  # LAMMPS decks kept
    assert (extxyz_plan / "chunk_0000" / "in.evaluate").is_file()
    jobs = sorted((extxyz_plan / "dft").glob("job_*"))
    assert [j.name for j in jobs] == [f"job_{i:05d}" for i in range(N_CONF)]
    sc = prepared.supercell
    disp = prepared.plan.displacements
    assert manifest["dft_reference_job"] == "job_00000" and not disp[0].any()
    for i, job in enumerate(jobs):
        atoms = ase.io.read(job / "structure.xyz")
        assert list(atoms.numbers) == list(sc.numbers)
        np.testing.assert_allclose(atoms.cell.array, sc.cell.array, atol=1e-8)
        np.testing.assert_allclose(atoms.positions, sc.positions + disp[i],
                                   atol=1e-8)  # extxyz writes 8 decimals
    script = (extxyz_plan / "dft" / "jobarray.sh").read_text()
    assert str((extxyz_plan / "dft").resolve()) in script and "DFT_COMMAND" in script
    assert f"--array=0-{N_CONF - 1}" in script
    readme = (extxyz_plan / "dft" / "README.txt").read_text()
    assert "anharmbench collect" in readme and "--outputs" in readme


def test_vasp_poscars_read_back_exactly(vasp_plan):
    """POSCARs keep the plan's positions to machine precision and its species order."""
    from anharmbench.derivatives.workflow import load_plan_directory

    prepared, manifest = load_plan_directory(vasp_plan)
    assert manifest["dft_format"] == "vasp" and manifest["dft_input_file"] == "POSCAR"
    sc = prepared.supercell
    for i in range(N_CONF):
        atoms = ase.io.read(vasp_plan / "dft" / f"job_{i:05d}" / "POSCAR")
        assert atoms.get_chemical_symbols() == sc.get_chemical_symbols()
        np.testing.assert_allclose(atoms.cell.array, sc.cell.array, rtol=0, atol=1e-14)
        np.testing.assert_allclose(atoms.positions, sc.positions + prepared.plan.displacements[i],
                                   rtol=0, atol=1e-12)


def test_jobarray_runs_every_job_after_the_plan_moved(tmp_path):
    """With 4 jobs per task, 4 array tasks cover the 13 jobs; each runs DFT_COMMAND inside
    its job folder, with common/ copied in; a moved plan is found via SLURM_SUBMIT_DIR."""
    written = _plan(tmp_path / "written", "vasp", "--jobs-per-task", "4")
    moved = tmp_path / "moved"
    written.rename(moved)  # the absolute path rendered into the script is gone
    dft = moved / "dft"
    (dft / "common" / "INCAR").write_text("IBRION = -1\n")
    script = tmp_path / "spool.sh"  # Slurm runs a copy of the script from its spool
    shutil.copy(dft / "jobarray.sh", script)
    assert "--array=0-3" in script.read_text()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "PBS"))}
    env = {**base_env, "DFT_COMMAND": "pwd > where.txt", "SLURM_SUBMIT_DIR": str(dft)}
    for task in range(4):
        subprocess.run(["bash", str(script)], env={**env, "TASK_ID": str(task)},
                       check=True, timeout=60)
    for i in range(N_CONF):
        job = dft / f"job_{i:05d}"
        assert (job / "where.txt").read_text().strip() == str(job.resolve())
        assert (job / "INCAR").read_text() == "IBRION = -1\n"
        assert (job / "anharmbench.done").is_file()
    # resubmitting skips finished jobs; no DFT_COMMAND is an error naming it
    (dft / "job_00004" / "where.txt").unlink()
    subprocess.run(["bash", str(script)], env={**env, "TASK_ID": "1"}, check=True, timeout=60)
    assert not (dft / "job_00004" / "where.txt").exists()
    res = subprocess.run(["bash", str(script)], env={**base_env, "TASK_ID": "0"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "DFT_COMMAND" in res.stderr


def _fake_dft(plan: Path, input_file: str, output_name: str, perm: np.ndarray) -> None:
    """'Run a DFT code': evaluate each job's structure file with CRG in LAMMPS (an ASE
    calculator) and write its output into the folder of job perm[i] (shuffled folders)."""
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential

    calc = LammpsCalculator(crg_potential())
    for i in range(len(perm)):
        atoms = ase.io.read(plan / "dft" / f"job_{i:05d}" / input_file)
        atoms.calc = calc
        forces, energy = atoms.get_forces(), atoms.get_potential_energy()
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, energy=energy, forces=forces,
                                         stress=atoms.get_stress())
        ase.io.write(plan / "dft" / f"job_{perm[i]:05d}" / output_name, out)


@pytest.mark.parametrize(
    ("fmt", "output_name", "format_args", "rtol"),
    [
        # extxyz writes positions and forces with 8 decimals (5e-9 A, 5e-9 eV/A): divided
        # by h = 0.01 A (order 2) and h^2 (order 3) that is up to ~1e-5 relative here
        # (measured: 5e-7 and 1.2e-6)
        ("extxyz", "output.xyz", [], 5e-6),
        # full precision both ways (POSCAR 16 digits, ASE json outputs): the same numbers
        ("vasp", "output.json", ["--output-format", "json"], 1e-9),
    ],
)
def test_cli_round_trip_equals_in_process(fmt, output_name, format_args, rtol, extxyz_plan,
                                          vasp_plan, inprocess, tmp_path, capsys):
    """plan --format -> 'DFT' per job folder -> collect --outputs -> derivatives gives the
    in-process derivatives; a partial collection lists what is missing."""
    plan = tmp_path / "P"
    shutil.copytree(extxyz_plan if fmt == "extxyz" else vasp_plan, plan)
    input_file = json.loads((plan / "plan.json").read_text())["dft_input_file"]
    perm = np.random.default_rng(3).permutation(N_CONF)
    _fake_dft(plan, input_file, output_name, perm)
    capsys.readouterr()

    # first the outputs in folders job_00000..00004: 5 configurations, not those 5 indices
    assert main(["collect", str(plan), "--outputs", f"dft/job_0000[0-4]/{output_name}",
                 *format_args]) == 1
    out = capsys.readouterr().out
    missing = sorted(i for i in range(N_CONF) if perm[i] > 4)
    assert f"5/{N_CONF} configurations done" in out
    assert f"missing ({N_CONF - 5}): {missing[0]} (job_{missing[0]:05d})" in out
    # then all of them (absolute glob): the 5 again are recognised as already there
    assert main(["collect", str(plan), "--outputs", str(plan / f"dft/job_*/{output_name}"),
                 *format_args]) == 0
    out = capsys.readouterr().out
    assert (f"read {N_CONF} output(s): {N_CONF - 5} new, 5 already collected; "
            f"{N_CONF}/{N_CONF} configurations done") in out
    assert main(["derivatives", str(plan)]) == 0
    # the reference job's forces and stress (CRG at its equilibrium: ~2e-5 GPa) checked
    assert "reference at equilibrium" in (out := capsys.readouterr().out), out
    assert f"[DFT output {output_name}]" in out and "stress 2.1e-05 GPa" in out

    import h5py

    ref, ref_forces = inprocess
    with h5py.File(plan / "results.h5", "r") as h5:
        forces = np.asarray(h5["forces"][...])
        assert h5["done"][...].all()
    np.testing.assert_allclose(forces, ref_forces, rtol=0,
                               atol=1e-9 if rtol <= 1e-9 else 1e-6)
    got = load_derivatives(plan / "derivatives.h5")
    assert sorted(got) == sorted(ref) == [2, 3]
    for n in (2, 3):
        assert list(got[n]["labels"]) == list(ref[n]["labels"])
        scale = np.abs(ref[n]["values"]).max()
        assert scale > 1.0  # ThO2 has sizeable 2nd and 3rd derivatives (eV/A^n)
        np.testing.assert_allclose(got[n]["values"], ref[n]["values"], rtol=0,
                                   atol=rtol * scale)


# ---------------------------------------------------- bad outputs through the CLI, on disk
@pytest.fixture(scope="module")
def collected_half(extxyz_plan, tmp_path_factory) -> Path:
    """The extxyz plan with every output present (shuffled folders) and the first five
    folders already collected into results.h5."""
    plan = tmp_path_factory.mktemp("half") / "P"
    shutil.copytree(extxyz_plan, plan)
    _fake_dft(plan, "structure.xyz", "output.xyz", np.random.default_rng(4).permutation(N_CONF))
    rep = collect_outputs(plan, "dft/job_0000[0-4]/output.xyz")
    assert rep.n_new == 5 and rep.missing.size == N_CONF - 5
    return plan


def _bad_truncated_vasprun(plan: Path) -> Path:
    src = SI / "vasprun_xmls.tar.lzma"
    with tarfile.open(src, "r:xz") as tar:
        data = tar.extractfile("vasprun_xmls/disp-00001/vasprun.xml").read()
    path = plan / "dft" / "job_00008" / "vasprun.xml"
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_variant(plan: Path, change) -> Path:  # noqa: ANN001 - callable(atoms) -> atoms
    atoms = ase.io.read(plan / "dft" / "job_00006" / "output.xyz")
    forces = atoms.get_forces()
    atoms = change(atoms)
    path = plan / "dft" / "job_00007" / "output-bad.xyz"
    _write_frame(path, atoms, forces if len(forces) == len(atoms) else None)
    return path


def _scaled(atoms: Atoms) -> Atoms:
    atoms.set_cell(atoms.cell.array * 1.01, scale_atoms=True)
    return atoms


def _moved(atoms: Atoms) -> Atoms:
    atoms.positions[1] += [0.0, 0.1, 0.0]
    return atoms


def _bad_duplicate(plan: Path) -> Path:
    path = plan / "dft" / "job_00008" / "output-copy.xyz"
    shutil.copy(plan / "dft" / "job_00002" / "output.xyz", path)
    return path


def _bad_no_forces(plan: Path) -> Path:
    path = plan / "dft" / "job_00003" / "output-noforces.xyz"
    ase.io.write(path, ase.io.read(plan / "dft" / "job_00003" / "structure.xyz"))
    return path


def _bad_changed_forces(plan: Path) -> Path:
    """An output of an already collected configuration with other forces (a rerun with
    other settings); it replaces the original output."""
    path = plan / "dft" / "job_00001" / "output.xyz"
    atoms = ase.io.read(path)
    f = atoms.get_forces() + 1e-3
    _write_frame(path, atoms, f, atoms.get_potential_energy())
    return path


BAD = {
    "truncated-vasprun": (_bad_truncated_vasprun, "truncated or unfinished vasp-xml"),
    "other-cell": (lambda p: _bad_variant(p, _scaled), "differs from the plan's cell"),
    "no-match": (lambda p: _bad_variant(p, _moved), "match no configuration"),
    "duplicate": (_bad_duplicate, "both hold configuration"),
    "no-forces": (_bad_no_forces, "has no forces"),
    "changed-forces": (_bad_changed_forces, "already in"),
}


@pytest.mark.parametrize(
    ("case", "with_store"),
    # with results.h5 holding 5 configurations (unchanged after), and without (not created);
    # changed forces need stored ones
    [(c, w) for c in sorted(BAD) for w in (True, False) if w or c != "changed-forces"],
)
def test_cli_refuses_bad_outputs_and_changes_nothing(case, with_store, collected_half,
                                                     tmp_path, capsys):
    if case == "truncated-vasprun" and not (SI / "vasprun_xmls.tar.lzma").is_file():
        pytest.skip("phono3py's Si-PBE data not in /work/shared/dft")
    plan = tmp_path / "P"
    shutil.copytree(collected_half, plan, copy_function=shutil.copy2)
    store = plan / "results.h5"
    if not with_store:
        store.unlink()
    before = (store.read_bytes(), store.stat().st_mtime_ns) if with_store else None
    make, problem = BAD[case]
    bad = make(plan)
    capsys.readouterr()
    # output.xyz, output-*.xyz and vasprun.xml, not the inputs structure.xyz
    code = main(["collect", str(plan), "--outputs", "dft/job_*/[ov]*"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anharmbench collect: error: ")
    assert str(bad) in lines[0] and problem in lines[0]
    if with_store:
        assert (store.read_bytes(), store.stat().st_mtime_ns) == before
    else:
        assert not store.exists()


def test_cli_errors_name_the_problem(extxyz_plan, tmp_path, capsys):
    """No file matching the glob, and a format ASE cannot write, are one-line errors;
    a refused --format writes nothing."""
    assert main(["collect", str(extxyz_plan), "--outputs", "dft/job_*/nothing.xml"]) == 2
    err = capsys.readouterr().err
    assert "no file matches" in err and "nothing.xml" in err
    assert not (extxyz_plan / "results.h5").exists()
    out = tmp_path / "Q"
    assert main([*PLAN_ARGS, "--format", "vasp-xml", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "vasp," in err and "espresso-in" in err
    assert main([*PLAN_ARGS, "--format", "no-such-code", "--out", str(out)]) == 2
    assert "is not an ASE format" in capsys.readouterr().err
    assert not out.exists()


def test_plan_without_the_undisplaced_cell_gets_a_reference_job(tmp_path, capsys):
    """Order 2 alone (stencil -h, +h) never evaluates the undisplaced supercell: plan
    --format adds it as the last job, and its output's forces and stress are the
    equilibrium check of the fit."""
    plan = tmp_path / "P"
    assert main(["plan", "--supercell", "prim", "--order", "2", "--steps", "3",
                 "--format", "extxyz", "--out", str(plan)]) == 0
    manifest = json.loads((plan / "plan.json").read_text())
    n = manifest["n_evaluations"]
    assert manifest["dft_jobs"] == n + 1 and manifest["dft_reference_job"] == f"job_{n:05d}"
    _fake_dft(plan, "structure.xyz", "output.xyz", np.arange(n + 1))
    capsys.readouterr()
    assert main(["collect", str(plan), "--outputs", "dft/job_*/output.xyz"]) == 0
    assert main(["derivatives", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "reference at equilibrium" in out and "[DFT output output.xyz]" in out
    # without the reference output: collected, but said to be missing, and unchecked
    (plan / "results.h5").unlink()
    (plan / f"dft/job_{n:05d}/output.xyz").unlink()
    assert main(["collect", str(plan), "--outputs", "dft/job_*/output.xyz"]) == 1
    assert "not collected yet" in capsys.readouterr().out
    assert main(["derivatives", str(plan)]) == 0
    assert "WARNING: equilibrium not checked" in capsys.readouterr().out
