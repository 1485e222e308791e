"""Dataset files: extended XYZ frames, JSON manifest, train/validation/test splits.

Frames are written with ASE's extended XYZ writer and a ``SinglePointCalculator``, so
each frame carries, readable by ``ase.io.read`` (then ``atoms.get_potential_energy()``,
``get_forces()``, ``get_stress()``), by nequip's ASE dataset (keys ``energy``,
``forces``, optionally ``stress``) and by ``gap_fit`` (give ``energy_parameter_name=energy
force_parameter_name=forces virial_parameter_name=virial``):

========================  =====================================================  ===========
key                       meaning                                                units
========================  =====================================================  ===========
``energy`` (info)         potential energy                                       eV
``forces`` (per atom)     ``-dE/dx``                                             eV/Angstrom
``stress`` (info)         ``(1/V) dE/d(strain)``, ASE sign (``-pressure``), 3x3  eV/Angstrom^3
``virial`` (info)         ``-V * stress``, 3x3 (gap_fit's convention)            eV
``temperature`` (info)    instantaneous kinetic temperature of the MD frame      K
``source`` (info)         ``"idmd"`` or ``"refmd"``
``config_type`` (info)    e.g. ``"idmd_train"``, ``"refmd_2000K"`` (gap_fit)
``step``, ``time_ps``     MD step and time of the frame                          -, ps
``seed``                  seed of the trajectory's random numbers
``trajectory``            name of the trajectory the frame comes from
========================  =====================================================  ===========

The manifest (``manifest.json``) records the seed, the potential (description with file
names only, SHA-256 of its files and a path-independent fingerprint), the settings,
software versions, frame counts, temperature ranges, energy drift and the splits.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from anharmbench.fileio import write_text_atomic
from anharmbench.potentials.spec import LammpsPotential

__all__ = [
    "MANIFEST",
    "SPLIT_FILES",
    "FrameWriter",
    "file_sha256",
    "make_frame",
    "potential_record",
    "read_frames",
    "read_manifest",
    "split_indices",
    "split_summary",
    "software_versions",
    "write_json_atomic",
    "write_manifest",
    "write_splits",
]

MANIFEST = "manifest.json"
SPLIT_FILES = {"train": "train.xyz", "val": "val.xyz", "test": "test.xyz"}
FORMAT = "anharmbench-dataset-1"


def make_frame(
    symbols: Sequence[str],
    cell: np.ndarray,
    positions: np.ndarray,
    energy: float,
    forces: np.ndarray,
    stress: np.ndarray | None,
    info: Mapping[str, Any],
) -> Atoms:
    """One labelled configuration.

    Parameters
    ----------
    symbols
        ``N`` chemical symbols.
    cell
        ``(3, 3)`` cell, rows = lattice vectors, Angstrom.
    positions
        ``(N, 3)`` Cartesian positions, Angstrom (wrapped into the cell here).
    energy
        Potential energy, eV.
    forces
        ``(N, 3)`` forces, eV/Angstrom.
    stress
        ``(6,)`` Voigt (xx, yy, zz, yz, xz, xy) or ``(3, 3)`` stress, eV/Angstrom^3, ASE sign;
        ``None`` for a frame without one (e.g. DFT data from phono3py: no stress, no virial).
    info
        Per-frame metadata (temperature, source, step, ...), JSON-like scalars.

    Returns
    -------
    ase.Atoms
        With a ``SinglePointCalculator`` holding ``energy``, ``free_energy``, ``forces``
        and ``stress``, and ``info["virial"] = -V stress`` (3x3, eV); without a stress,
        neither.
    """
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    atoms.wrap(eps=0.0)
    atoms.info.update(dict(info))
    s = None
    if stress is not None:
        s = np.asarray(stress, dtype=float)
        if s.shape == (6,):
            s = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
        atoms.info["virial"] = -atoms.get_volume() * s
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(energy),
        free_energy=float(energy),
        forces=np.asarray(forces, dtype=float),
        stress=s,
    )
    return atoms


class FrameWriter:
    """Append frames to an extended XYZ file, resumable at a byte offset.

    Parameters
    ----------
    path
        The ``.xyz`` file.
    offset
        Keep the first ``offset`` bytes (the frames of the last checkpoint) and drop the
        rest (frames written after it by an interrupted run). ``0`` starts a new file.
    """

    def __init__(self, path: str | Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if offset and (not self.path.is_file() or self.path.stat().st_size < offset):
            raise ValueError(
                f"{self.path} is shorter than its checkpoint says ({offset} bytes); the "
                "dataset directory is inconsistent: start it again with --overwrite"
            )
        if offset:
            with open(self.path, "r+b") as raw:
                raw.truncate(offset)
        else:
            self.path.write_bytes(b"")
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, atoms: Atoms) -> None:
        """Append one frame."""
        write(self._fh, atoms, format="extxyz")

    def sync(self) -> int:
        """Flush to disk; returns the byte offset after the last frame."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return os.fstat(self._fh.fileno()).st_size

    def close(self) -> None:
        """Flush and close."""
        if not self._fh.closed:
            self.sync()
            self._fh.close()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_frames(path: str | Path) -> list[Atoms]:
    """All frames of an extended XYZ file (``[]`` for an empty file)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    frames = read(path, index=":", format="extxyz")
    return list(frames) if isinstance(frames, list) else [frames]


def split_indices(n: int, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Disjoint random subsets of ``range(n)``, fixed by ``seed``.

    Parameters
    ----------
    n
        Number of items.
    fractions
        ``{name: fraction}``; fractions are normalised; every item lands in one subset
        (rounding goes to the first name).
    seed
        Seed of the permutation.

    Returns
    -------
    dict[str, numpy.ndarray]
        Sorted int64 indices per name.
    """
    names = list(fractions)
    w = np.array([float(fractions[k]) for k in names])
    if n < 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"invalid split {dict(fractions)} of {n} items")
    counts = np.floor(w / w.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    perm = np.random.default_rng(seed).permutation(n)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name, c in zip(names, counts, strict=True):
        out[name] = np.sort(perm[start : start + c]).astype(np.int64)
        start += c
    return out


def write_splits(
    directory: str | Path,
    splits: Mapping[str, Iterable[tuple[str, int, Atoms]]],
) -> dict[str, dict[str, Any]]:
    """Write ``train.xyz``, ``val.xyz``, ``test.xyz`` and ``splits.json``.

    Parameters
    ----------
    directory
        Dataset directory.
    splits
        ``{"train"|"val"|"test": [(trajectory file, frame index, atoms), ...]}``.

    Returns
    -------
    dict
        Per split: file name, number of frames, and the ``(trajectory, index)`` list.
    """
    directory = Path(directory)
    record: dict[str, dict[str, Any]] = {}
    for name, items in splits.items():
        items = list(items)
        path = directory / SPLIT_FILES[name]
        tmp = path.with_suffix(".xyz.tmp")
        write(tmp, [a for _, _, a in items], format="extxyz")
        os.replace(tmp, path)
        record[name] = {
            "file": path.name,
            "frames": len(items),
            "members": [[src, int(i)] for src, i, _ in items],
        }
    write_json_atomic(directory / "splits.json", record)
    return record


def split_summary(record: Mapping[str, Mapping[str, Any]], seed: int) -> dict[str, Any]:
    """The manifest's ``splits`` entry: file and frame count per split, and the seed.

    Parameters
    ----------
    record
        What :func:`write_splits` returned.
    seed
        Seed of the split.
    """
    out: dict[str, Any] = {k: {"file": v["file"], "frames": v["frames"]} for k, v in record.items()}
    out["seed"] = int(seed)
    return out


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write strict JSON (NaN as ``null``) through a temporary file and an atomic rename."""
    text = json.dumps(_finite(data), indent=1, default=_json_default, allow_nan=False)
    write_text_atomic(path, text + "\n")


def _finite(obj: Any) -> Any:
    """NaN and infinities become ``None`` (strict JSON), recursively."""
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def write_manifest(directory: str | Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` of a dataset directory (atomically, strict JSON)."""
    write_json_atomic(Path(directory) / MANIFEST, manifest)


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of a dataset directory, or None."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _json_default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def potential_record(potential: LammpsPotential) -> dict[str, Any]:
    """Description, file hashes and a path-independent fingerprint of a potential.

    The fingerprint hashes the description with file paths replaced by the files'
    SHA-256, so moving a file does not change it and editing one does.
    """
    files = {
        str(p): file_sha256(p) for p in (*potential.files, *potential.plugins) if Path(p).is_file()
    }
    desc = potential.to_dict()
    text = json.dumps(desc, sort_keys=True)
    for p, digest in files.items():
        text = text.replace(p, digest)
    desc["files"] = [Path(p).name for p in desc["files"]]
    desc["pair_coeff"] = [
        " ".join(Path(t).name if t in files else t for t in line.split())
        for line in desc["pair_coeff"]
    ]
    return {
        "name": potential.name,
        "fingerprint": hashlib.sha256(text.encode()).hexdigest(),
        "description": desc,
        "file_sha256": {Path(p).name: d for p, d in files.items()},
    }


def software_versions() -> dict[str, str]:
    """Versions of Python, anharmbench, numpy, ASE and LAMMPS."""
    import ase

    from anharmbench import __version__

    out = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "anharmbench": __version__,
        "numpy": np.__version__,
        "ase": ase.__version__,
    }
    try:
        from importlib.metadata import version

        out["lammps"] = version("lammps")
    except Exception:  # pragma: no cover - metadata missing
        out["lammps"] = "unknown"
    return out
