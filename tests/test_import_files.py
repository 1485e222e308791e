"""The import reads exactly the files phono3py-load reads, at phono3py's cost (issue 30).

Independent paths: phono3py's own loader and grid (the Born charges it reads, the mesh it
takes for a length), an uncompressed copy of the same forces, and a dense least-squares
solution written here with numpy against the streamed fit of
:mod:`anharmbench.derivatives.least_squares`.
"""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest

from anharmbench.cli import main
from anharmbench.dft.importer import DatasetImportError, import_dataset
from anharmbench.dft.reading import load_dataset

DFT = Path(__file__).resolve().parents[2] / "shared" / "dft"
SI = DFT / "Si-PBE"
NACL = DFT / "NaCl-rd"

pytestmark = pytest.mark.skipif(not SI.is_dir(), reason="shared/dft is not beside the checkout")

#: a BORN file for Si (phonopy's format): the values are arbitrary, what is checked is
#: that the import reads the file the user put beside the dataset, as phono3py-load does
SI_BORN = """# epsilon and Z* of atoms 1
   13.0 0.0 0.0  0.0 13.0 0.0  0.0 0.0 13.0
   0.1 0.0 0.0  0.0 0.1 0.0  0.0 0.0 0.1
"""


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.rglob("*")}


@pytest.fixture(scope="module")
def si_folder(tmp_path_factory) -> Path:
    """Si-PBE's dataset with FORCES_FC3 compressed, a BORN and a stray FORCES_FC2 beside."""
    d = tmp_path_factory.mktemp("si_xz")
    shutil.copy(SI / "phono3py_disp.yaml", d / "phono3py_disp.yaml")
    with lzma.open(d / "FORCES_FC3.xz", "wb") as fh:
        fh.write((SI / "FORCES_FC3").read_bytes())
    (d / "BORN").write_text(SI_BORN)
    # forces of a fc2 supercell the dataset does not have: phono3py-load ignores it
    (d / "FORCES_FC2").write_text("# stray\n")
    return d


@pytest.fixture(scope="module")
def si_xz_import(si_folder, tmp_path_factory):
    return import_dataset(si_folder / "phono3py_disp.yaml", tmp_path_factory.mktemp("out"))


def test_compressed_forces_and_born_beside_the_dataset_are_read(si_folder, si_xz_import):
    """FORCES_FC3.xz and BORN beside the dataset are read; a FORCES_FC2 the dataset has no
    supercell for is not, and the provenance lists exactly the files read."""
    import contextlib
    import tempfile

    import phono3py

    files = {Path(p).name for p in si_xz_import.provenance["files"]}
    assert files == {"phono3py_disp.yaml", "FORCES_FC3.xz", "BORN"}
    # phono3py-load run in that folder: the same Born charges
    with contextlib.chdir(si_folder):
        ph3 = phono3py.load("phono3py_disp.yaml", produce_fc=False, log_level=0)
    nac = si_xz_import.derivatives.nac
    np.testing.assert_allclose(nac["born"], ph3.nac_params["born"])
    np.testing.assert_allclose(nac["dielectric"], ph3.nac_params["dielectric"])
    assert si_xz_import.provenance["nac"] == "born"
    # the same forces uncompressed give the same derivatives (up to the fc2 NAC-free solve)
    with tempfile.TemporaryDirectory() as tmp:
        plain = import_dataset(SI / "phono3py_disp.yaml", tmp)
    for n in (2, 3):
        np.testing.assert_allclose(si_xz_import.orders[n].values, plain.orders[n].values,
                                   rtol=0, atol=1e-12 * np.abs(plain.orders[n].values).max())
    assert plain.derivatives.nac is None


def test_born_option_relative_path(si_folder, tmp_path, monkeypatch):
    other = tmp_path / "born_here"
    other.mkdir()
    (other / "MYBORN").write_text(SI_BORN.replace("13.0", "11.5"))
    monkeypatch.chdir(other)
    kind, obj, sources = load_dataset(si_folder / "phono3py_disp.yaml", born="MYBORN")
    assert [p.name for p in sources] == ["phono3py_disp.yaml", "FORCES_FC3.xz", "MYBORN"]
    np.testing.assert_allclose(np.diag(obj.nac_params["dielectric"]), 11.5)


@pytest.mark.parametrize("case,words", [
    ("fc2-without-cell", ["no separate fc2 supercell", "--forces-fc2"]),
    ("forces-beside-params", ["holds its own forces", "--forces"]),
    ("born-missing", ["Born charges file", "not found"]),
])
def test_files_that_would_not_be_read_are_refused(case, words, si_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    before = _tree(out)
    if case == "fc2-without-cell":
        args = [str(si_folder / "phono3py_disp.yaml"), "--forces-fc2",
                str(si_folder / "FORCES_FC2")]
    elif case == "forces-beside-params":
        args = [str(NACL / "phono3py_params_NaCl.yaml.xz"), "--forces", str(SI / "FORCES_FC3")]
    else:
        args = [str(si_folder / "phono3py_disp.yaml"), "--born", str(tmp_path / "nope")]
    assert main(["import", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w.lower() in err.lower(), err
    assert _tree(out) == before


def test_second_import_into_one_folder_is_refused(si_folder, tmp_path, capsys):
    """Two imports into one --out at once: the second is refused before any work and the
    folder is left as the first has it (it used to overwrite the first's result)."""
    from anharmbench.fileio import exclusive_writer

    out = tmp_path / "out"
    with exclusive_writer(out, "the first import"):
        before = _tree(out)
        assert main(["import", str(si_folder / "phono3py_disp.yaml"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "being written by pid" in err and "another output folder" in err, err
        assert _tree(out) == before
    assert not out.exists()  # the first (here: no work) leaves nothing behind


@pytest.mark.parametrize("dataset,length,mesh", [
    (NACL / "phono3py_params_NaCl.yaml.xz", 50, (15, 15, 15)),
    (SI / "phono3py_disp.yaml", 30, None),
])
def test_mesh_length_is_phono3pys(dataset, length, mesh):
    """``--mesh L`` gives the mesh phono3py's own grid takes for the length L."""
    import phono3py

    from anharmbench.dft.reading import to_ase
    from anharmbench.observables.harmonic import Mesh

    _, obj, _ = load_dataset(dataset)
    ph3 = phono3py.load(str(dataset), produce_fc=False, log_level=0)
    ph3.mesh_numbers = length
    ours = Mesh.from_length(length, to_ase(obj.primitive)).numbers
    assert ours == tuple(int(v) for v in ph3.mesh_numbers)
    if mesh is not None:
        assert ours == mesh  # what phono3py's kappa file name says (kappa-m151515)


def test_mesh_takes_three_integers_or_one_length(capsys, tmp_path):
    for bad in (["0"], ["4", "4"], ["4.5", "4", "4"]):
        assert main(["observables", str(tmp_path / "none.h5"), "--mesh", *bad,
                     "--out", str(tmp_path / "o")]) == 2


# ------------------------------------------------------- the streamed least squares
def _si_model():
    from anharmbench.dft import importer as im
    from anharmbench.symmetry import irreducible_basis

    kind, obj, _ = load_dataset(SI / "phono3py_disp.yaml")
    prim, Pm = im._primitive(kind, obj)
    S = im._ftg(obj.supercell_matrix, Pm, "fc3")
    return prim, S, {n: irreducible_basis(prim, S, order=n) for n in (2, 3)}


def test_streamed_fit_equals_a_dense_solution_and_recovers_a_polynomial(monkeypatch):
    """Orders 2+3 of Si (64 atoms): forces of a known cubic model on random displacements
    are recovered exactly, and with noise the streamed normal equations (chunked, any chunk
    size) give numpy's dense lstsq values and sigma^2 (A^T A)^-1."""
    from math import factorial

    from anharmbench.derivatives import least_squares as ls

    prim, S, bases = _si_model()
    rng = np.random.default_rng(7)
    N = len(bases[2].modes) // 3
    u = rng.normal(scale=0.03, size=(12, N, 3))
    d = {n: rng.normal(size=len(b)) * (10.0 if n == 2 else 3.0) for n, b in bases.items()}
    f = sum(b.cartesian_forces(d[n], u) for n, b in bases.items())
    vals, sig, rms = ls.least_squares_derivatives(bases, u, f)
    for n in (2, 3):
        assert np.abs(vals[n] - d[n]).max() < 1e-9 * np.abs(d[n]).max()
    assert rms < 1e-10
    # with noise: against a dense design matrix built from the dense force terms
    f_noisy = f + rng.normal(scale=1e-3, size=f.shape)
    U = bases[2].modes
    c = u.reshape(len(u), -1) @ U
    A = np.concatenate([-np.transpose(b.force_terms(c), (0, 2, 1)).reshape(-1, len(b))
                        / factorial(n) for n, b in sorted(bases.items())], axis=1)
    y = (f_noisy.reshape(len(u), -1) @ U).reshape(-1)
    x, *_ = np.linalg.lstsq(A, y, rcond=None)
    s2 = float(np.sum((y - A @ x) ** 2)) / (A.shape[0] - A.shape[1])
    sd = np.sqrt(s2 * np.diag(np.linalg.inv(A.T @ A)))
    monkeypatch.setattr(ls, "CHUNK_BYTES", 3 * 8 * 4000)  # many chunks of one configuration
    vals, sig, rms = ls.least_squares_derivatives(bases, u, f_noisy)
    got = np.concatenate([vals[2], vals[3]])
    gsd = np.concatenate([sig[2], sig[3]])
    assert np.abs(got - x).max() < 1e-10 * np.abs(x).max()
    np.testing.assert_allclose(gsd, sd, rtol=1e-8)
    assert rms == pytest.approx(np.sqrt(s2), rel=1e-8)


def test_streamed_fit_marks_what_the_data_do_not_determine():
    """One displaced supercell cannot determine all derivatives: those it does not touch
    get nan values and infinite uncertainty, the rest fit its forces exactly."""
    from anharmbench.derivatives.least_squares import least_squares_derivatives

    prim, S, bases = _si_model()
    N = len(bases[2].modes) // 3
    u = np.zeros((1, N, 3))
    u[0, 0] = [0.03, 0.0, 0.0]
    d = {n: np.linspace(1, 2, len(b)) for n, b in bases.items()}
    f = sum(b.cartesian_forces(d[n], u) for n, b in bases.items())
    vals, sig, _ = least_squares_derivatives(bases, u, f)
    free = np.concatenate([~np.isfinite(sig[2]), ~np.isfinite(sig[3])])
    assert 0 < free.sum() < len(free)
    assert np.all(np.isnan(np.concatenate([vals[2], vals[3]])[free]))
    fixed = {n: np.nan_to_num(vals[n]) for n in (2, 3)}
    back = sum(b.cartesian_forces(fixed[n], u) for n, b in bases.items())
    assert np.abs(back - f).max() < 1e-9 * np.abs(f).max()


def test_bad_fc_calculator_changes_nothing(si_folder, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(DatasetImportError, match="fc_calculator"):
        import_dataset(si_folder / "phono3py_disp.yaml", out, fc_calculator="alm")
    assert not out.exists()


def test_forces_file_comments_in_the_codes_length_unit(tmp_path):
    """phono3py's QE datasets (calculator: qe) write FORCES_FC3's displacement comments in
    Bohr while the loaded dataset is in Angstrom: the same displacements, not another
    dataset's (phono3py's own Si-QE example was refused as 0.06 vs 0.0318 A)."""
    import re

    from anharmbench.dft.dataset_checks import DatasetCheckError, check_forces_file

    bohr = 0.529177210903
    text = (SI / "FORCES_FC3").read_text()

    def to_bohr(m: re.Match) -> str:
        vec = [float(x) / bohr for x in m.group(2).split()]
        return f"{m.group(1)}{vec[0]:.16f} {vec[1]:.16f} {vec[2]:.16f}"

    qe = re.sub(r"^(#\s+\d+\s+)(\S+\s+\S+\s+\S+)\s*$", to_bohr, text, flags=re.M)
    assert qe != text
    (tmp_path / "FORCES_FC3").write_text(qe)
    _, obj, _ = load_dataset(SI / "phono3py_disp.yaml")
    check_forces_file(tmp_path / "FORCES_FC3", SI / "phono3py_disp.yaml", obj.dataset, "fc3",
                      length_to_A=bohr)
    with pytest.raises(DatasetCheckError, match="0.03"):
        check_forces_file(tmp_path / "FORCES_FC3", SI / "phono3py_disp.yaml", obj.dataset,
                          "fc3")
