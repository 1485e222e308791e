"""A training dataset from a phono3py displacement-force dataset of DFT calculations.

The paper's second protocol: train a potential on DFT data and compare its irreducible
derivatives with DFT's. A phono3py file (``phono3py_disp.yaml``, ``phono3py_params*.yaml``,
optionally ``.xz``) holding displaced supercells with their DFT forces and supercell
energies becomes a dataset directory in the layout the trainers read
(:func:`anharmbench.mlip.data.load_splits`): ``train.xyz``, ``val.xyz``, ``test.xyz``
(extended XYZ, keys ``energy`` and ``forces``, see :mod:`anharmbench.datasets.io`),
``splits.json`` and ``manifest.json`` with ``kind: "dft"``.

Notes
-----
* Energies are the raw DFT supercell energies (eV): their zero is arbitrary (a VASP
  energy is relative to its pseudopotentials' atoms). The trainers remove a per-atom
  offset themselves: GAP's ``e0`` (default ``"average"``: the mean energy per atom of the
  training frames, for every species), NequIP's and the BPNN's per-species energy
  shifts/scales fitted on the training data.
* The frames carry no stress or virial (phono3py datasets store none): a GAP fit on them
  needs ``use_virials: false`` (it refuses otherwise, naming the fix); NequIP leaves the
  stress out of its loss when the frames have none.
* Positions are the supercell's plus the displacements, wrapped into the cell (as
  :func:`anharmbench.datasets.io.make_frame` does); extended XYZ keeps 8 decimals of
  positions and forces.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.datasets.io import (
    FORMAT,
    SPLIT_FILES,
    file_sha256,
    make_frame,
    software_versions,
    split_indices,
    split_summary,
    write_manifest,
    write_splits,
)

__all__ = ["DFTDatasetError", "dataset_from_phono3py"]

#: Accepted names of the split fractions (``validation`` is the validation split ``val``).
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


class DFTDatasetError(ValueError):
    """A phono3py file lacks what a training dataset needs (energies or forces)."""


def dataset_from_phono3py(
    dataset: str | Path,
    out: str | Path,
    *,
    seed: int = 2024,
    fractions: Mapping[str, float] | None = None,
    include_fc2_set: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a training dataset directory from a phono3py displacement-force dataset.

    Parameters
    ----------
    dataset
        A phono3py YAML file (optionally ``.xz``/``.gz``/``.bz2``-compressed) with
        displacements, forces and supercell energies, read by
        ``phono3py.load(dataset, produce_fc=False, log_level=0)``.
    out
        Dataset directory to write (created).
    seed
        Seed of the train/validation/test split.
    fractions
        ``{"train": f, "validation": f, "test": f}`` (``"val"`` also accepted); normalised;
        default 0.8 / 0.1 / 0.1. Rounding leftovers go to the training split.
    include_fc2_set
        Also use the supercells of the separate fc2 dataset (phono3py's
        ``phonon_dataset``, a larger supercell), pooled with the fc3 set before splitting.
    overwrite
        Replace an existing ``out`` directory; otherwise an existing non-empty directory
        is refused.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    FileNotFoundError
        ``dataset`` does not exist.
    DFTDatasetError
        The file has no displacement dataset, or no ``supercell_energies`` or ``forces``
        (the message names the file and what is missing), or ``include_fc2_set`` is set
        and the file has no usable fc2 dataset.
    FileExistsError
        ``out`` exists, is not empty, and ``overwrite`` is false.
    """
    import phono3py

    path = Path(dataset)
    if not path.is_file():
        raise FileNotFoundError(f"phono3py dataset {path} not found")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:  # before the slow read
        raise FileExistsError(
            f"dataset directory {out} exists and is not empty; choose another directory "
            "or pass overwrite=True"
        )
    ph3 = phono3py.load(path, produce_fc=False, log_level=0)
    sets = [("fc3_set", ph3.supercell, ph3.dataset)]
    if include_fc2_set:
        if ph3.phonon_supercell is None or not ph3.phonon_dataset:
            raise DFTDatasetError(
                f"{path} has no separate fc2 dataset (phonon_dataset); call with "
                "include_fc2_set=False"
            )
        sets.append(("fc2_set", ph3.phonon_supercell, ph3.phonon_dataset))

    frames: list[tuple[str, int, Atoms]] = []
    disp_norms: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for name, supercell, data in sets:
        displacements, forces, energies = _arrays(path, name, data, len(supercell))
        symbols = list(supercell.symbols)
        cell = np.asarray(supercell.cell, dtype=float)
        base = np.asarray(supercell.positions, dtype=float)
        for i in range(len(energies)):
            frames.append((name, i, _frame(symbols, cell, base + displacements[i],
                                           energies[i], forces[i], name, i)))
        disp_norms.append(np.linalg.norm(displacements, axis=-1).ravel())
        counts[name] = len(energies)

    fracs = _fractions(fractions)
    idx = split_indices(len(frames), fracs, seed)

    if out.exists():  # checked above; overwrite=True
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    record = write_splits(out, {k: [frames[int(j)] for j in v] for k, v in idx.items()})

    norms = np.concatenate(disp_norms)
    moved = norms[norms > 0]
    per_atom = np.array([a.calc.results["energy"] / len(a) for _, _, a in frames])  # type: ignore[union-attr]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "kind": "dft",
        "complete": True,
        "seed": int(seed),
        "source": {
            "file": path.name,
            "path": str(path.resolve()),
            "sha256": file_sha256(path),
            "reader": "phono3py.load(produce_fc=False)",
            "phono3py": version("phono3py"),
            "sets": counts,
            "supercells": {name: _cell_record(sc) for name, sc, _ in sets},
        },
        "frames": len(frames),
        "species": sorted(set().union(*(set(a.get_chemical_symbols()) for _, _, a in frames))),
        "displacement_amplitude": {
            # per-atom |u| over every atom of every frame, Angstrom
            "mean": float(norms.mean()),
            "rms": float(np.sqrt(np.mean(norms**2))),
            "min_nonzero": float(moved.min()) if moved.size else 0.0,
            "max": float(norms.max()),
            "fraction_displaced": float(moved.size / norms.size),
        },
        "energy_per_atom": {
            "min": float(per_atom.min()),
            "max": float(per_atom.max()),
            "note": "raw DFT energies, arbitrary zero; trainers subtract e0/per-species shifts",
        },
        "labels": {"energy": True, "forces": True, "stress": False},
        "settings": {"fractions": fracs, "include_fc2_set": bool(include_fc2_set)},
        "software": {**software_versions(), "phono3py": version("phono3py")},
    }
    manifest["splits"] = split_summary(record, seed)
    write_manifest(out, manifest)
    return out


def _arrays(path: Path, name: str, data: Mapping[str, Any] | None, natoms: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacements ``(n, N, 3)``, forces ``(n, N, 3)`` and energies ``(n,)`` of one set."""
    if not data:
        raise DFTDatasetError(f"{path} holds no displacement dataset ({name})")
    if "first_atoms" in data:  # type-1 (one displaced atom per supercell) datasets
        raise DFTDatasetError(
            f"{path} ({name}) is a type-1 dataset (first_atoms/second_atoms); convert it "
            "with phono3py's dataset tools to the type-2 layout (displacements, forces, "
            "supercell_energies) first"
        )
    missing = [k for k in ("displacements", "forces", "supercell_energies")
               if data.get(k) is None]
    if missing:
        raise DFTDatasetError(
            f"{path} ({name}) has no {' and no '.join(missing)}: a training dataset needs "
            "DFT energies and forces of every supercell; use a phono3py file written with "
            "them (e.g. phono3py_params.yaml with supercell_energies)"
        )
    u = np.asarray(data["displacements"], dtype=float)
    f = np.asarray(data["forces"], dtype=float)
    e = np.asarray(data["supercell_energies"], dtype=float)
    if u.shape != f.shape or u.shape[1:] != (natoms, 3) or e.shape != (u.shape[0],):
        raise DFTDatasetError(
            f"{path} ({name}): inconsistent shapes displacements {u.shape}, forces "
            f"{f.shape}, supercell_energies {e.shape} for {natoms} atoms"
        )
    bad = ~(np.isfinite(e) & np.isfinite(f).all(axis=(1, 2)))
    if bad.any():
        raise DFTDatasetError(
            f"{path} ({name}): non-finite energy/forces in supercells "
            f"{np.flatnonzero(bad)[:10].tolist()}"
        )
    return u, f, e


def _frame(symbols: list[str], cell: np.ndarray, positions: np.ndarray, energy: float,
           forces: np.ndarray, name: str, index: int) -> Atoms:
    """One labelled frame: energy and forces only (DFT datasets carry no stress)."""
    info = {"source": "dft", "config_type": f"dft_{name}", "trajectory": name,
            "step": int(index)}
    return make_frame(symbols, cell, positions, energy, forces, None, info)


def _fractions(fractions: Mapping[str, float] | None) -> dict[str, float]:
    """``{"train", "val", "test"}`` fractions (in that order) from the accepted names."""
    given = dict(fractions) if fractions is not None else {
        "train": 0.8, "validation": 0.1, "test": 0.1}
    out = dict.fromkeys(SPLIT_FILES, 0.0)
    for key, value in given.items():
        if key not in _SPLIT_ALIASES:
            raise ValueError(
                f"unknown split {key!r} in fractions; use train, validation (or val), test"
            )
        out[_SPLIT_ALIASES[key]] += float(value)
    return out


def _cell_record(supercell: Any) -> dict[str, Any]:
    return {
        "natoms": len(supercell),
        "symbols": list(supercell.symbols),
        "cell": np.asarray(supercell.cell).tolist(),
    }
