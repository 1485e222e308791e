"""A training dataset from real DFT data (phono3py's NaCl random-displacement set).

The frames are checked against phono3py's own reading of the file (an independent code
path from our writer): energies and forces exactly (to extended XYZ's 8 decimals),
positions equal to supercell + displacement modulo the lattice; the splits are
disjoint, complete and fixed by the seed; the trainers' reader accepts the directory.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from anharmbench.datasets.dft import DFTDatasetError, dataset_from_phono3py
from anharmbench.mlip.data import load_splits

NACL = Path("/work/shared/dft/NaCl-rd/phono3py_params_NaCl.yaml.xz")

pytestmark = pytest.mark.skipif(not NACL.is_file(), reason=f"DFT data {NACL} not present")


@pytest.fixture(scope="module")
def phono3py_nacl():
    phono3py = pytest.importorskip("phono3py")
    return phono3py.load(NACL, produce_fc=False, log_level=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return dataset_from_phono3py(NACL, tmp_path_factory.mktemp("dft") / "nacl", seed=2024)


def _members(directory: Path) -> dict[str, list[int]]:
    record = json.loads((directory / "splits.json").read_text())
    return {k: [i for src, i in v["members"] if src == "fc3_set"] for k, v in record.items()}


def test_frames_equal_phono3py_data(written, phono3py_nacl):
    ph3 = phono3py_nacl
    ds = ph3.dataset
    sc = ph3.supercell
    cell = np.asarray(sc.cell)
    members = _members(written)
    seen = 0
    for split, fname in (("train", "train.xyz"), ("val", "val.xyz"), ("test", "test.xyz")):
        frames = read(written / fname, index=":", format="extxyz")
        assert len(frames) == len(members[split])
        for atoms, i in zip(frames, members[split], strict=True):
            assert atoms.get_chemical_symbols() == list(sc.symbols)
            np.testing.assert_allclose(atoms.cell.array, cell, atol=1e-8)
            # extended XYZ writes 8 decimals: "exact" means to its last digit
            assert atoms.get_potential_energy() == pytest.approx(
                ds["supercell_energies"][i], abs=1e-8)
            np.testing.assert_allclose(atoms.get_forces(), ds["forces"][i], atol=1e-8, rtol=0)
            diff = (atoms.positions - (sc.positions + ds["displacements"][i])) @ np.linalg.inv(cell)
            diff -= np.round(diff)  # frames are wrapped into the cell
            assert np.abs(diff @ cell).max() < 1e-7
            seen += 1
    assert seen == len(ds["forces"]) == 100


def test_splits_disjoint_complete_seeded(written, tmp_path):
    members = _members(written)
    all_idx = [i for v in members.values() for i in v]
    assert sorted(all_idx) == list(range(100))  # every frame once: disjoint and complete
    assert [len(members[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    manifest = json.loads((written / "manifest.json").read_text())
    assert manifest["kind"] == "dft" and manifest["complete"] and manifest["frames"] == 100
    assert manifest["source"]["sha256"] and manifest["source"]["phono3py"]
    # the source's random directional displacements have a constant 0.03 A amplitude
    amp = manifest["displacement_amplitude"]
    assert amp["min_nonzero"] == pytest.approx(0.03, abs=1e-6)
    assert amp["max"] == pytest.approx(0.03, abs=1e-6)

    # same seed -> same split, another seed -> another one; a small copy of the source
    # (first 12 supercells, same format) keeps the reruns fast
    small = _small_copy(tmp_path / "small.yaml", n=12)
    a = _members(dataset_from_phono3py(small, tmp_path / "a", seed=7))
    b = _members(dataset_from_phono3py(small, tmp_path / "b", seed=7))
    c = _members(dataset_from_phono3py(small, tmp_path / "c", seed=8))
    assert a == b
    assert a != c
    assert sorted(i for v in c.values() for i in v) == list(range(12))


def test_load_splits_accepts_directory(written):
    splits = load_splits(written, require=("train", "val", "test"))
    assert splits.kind == "dft"
    assert splits.species == ("Cl", "Na")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 10, 10)


def test_refuses_missing_energies(tmp_path):
    path = _small_copy(tmp_path / "noenergy.yaml", n=3, drop_energies=True)
    with pytest.raises(DFTDatasetError, match=r"noenergy\.yaml.*supercell_energies"):
        dataset_from_phono3py(path, tmp_path / "out")


def test_refuses_existing_directory(written):
    with pytest.raises(FileExistsError, match="overwrite"):
        dataset_from_phono3py(NACL, written)


def _small_copy(path: Path, n: int, drop_energies: bool = False) -> Path:
    """The source file cut to its first ``n`` supercells, fc2 set left out (same YAML
    layout, so phono3py reads the copy as it reads the original)."""
    import yaml

    data = yaml.safe_load(lzma.open(NACL, "rt"))
    for key in ("phonon_dataset", "phonon_supercell_matrix", "phonon_supercell",
                "phonon_primitive_cell"):
        data.pop(key, None)
    ds = data["dataset"]
    for key in ("displacements", "forces", "supercell_energies"):
        ds[key] = ds[key][:n]
    if drop_energies:
        del ds["supercell_energies"]
    path.write_text(yaml.safe_dump(data))
    return path
