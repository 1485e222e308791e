"""Import a phonopy/phono3py displacement dataset (e.g. VASP) as a reference ``derivatives.h5``.

The dataset is read with phono3py's or phonopy's own loaders, and the force constants are
solved by their own solvers (finite differences for systematic displacements, symfc for
random ones), exactly as ``phono3py-load`` does. We only add what they do not do:

1. the force constants are taken from phonopy's supercell atom order to ours and projected
   onto our irreducible basis (:meth:`~anharmbench.symmetry.IrreducibleBasis.from_cartesian`),
   one FTG per supercell matrix (fc2 and fc3 may live in different supercells);
2. each derivative gets a one-sigma uncertainty from a separate least-squares fit of the
   same forces in our basis (:func:`least_squares_derivatives`): the force residual of the
   symmetrised order-2+3 model gives ``sigma^2 (A^T A)^-1``, which says how well the data
   determine each derivative (truncation error of orders >= 4 at the dataset's amplitude
   included); the difference between that fit and the imported value is added in
   quadrature, so a solver-dependent derivative is not reported as sharper than it is;
3. the result is written in the one layout every consumer reads
   (:mod:`anharmbench.derivatives.io`), with Born charges and the dielectric tensor when
   the dataset has them, and provenance (file hashes, versions, amplitude, code).

Raw DFT outputs of the displaced supercells (``--outputs 'disp-*/vasprun.xml'``, Quantum
ESPRESSO ``.out``, anything ASE reads) are matched to the dataset's supercells by their
positions (:func:`anharmbench.dft.outputs.match_outputs`) and replace the forces.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import lzma
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench import __version__
from anharmbench.derivatives.io import OrderRecord, write_derivatives_file
from anharmbench.phonopy_interface import phonopy_tensor_to_supercell, supercell_atom_map
from anharmbench.structures import build_supercell
from anharmbench.symmetry import IrreducibleBasis, irreducible_basis

__all__ = [
    "DatasetImportError",
    "ImportResult",
    "import_dataset",
    "least_squares_derivatives",
    "load_dataset",
]

DERIVATIVES_FILE = "derivatives.h5"


class DatasetImportError(ValueError):
    """A dataset cannot be imported; the message names the file and the fix."""


@dataclass
class ImportResult:
    """What :func:`import_dataset` wrote and measured.

    Attributes
    ----------
    path : pathlib.Path
        The ``derivatives.h5``.
    primitive : ase.Atoms
    orders : dict[int, OrderRecord]
    fc_calculator : str
        ``"traditional"`` (phono3py's finite differences) or ``"symfc"``.
    projection_residual : dict[int, float]
        ``||Phi - P Phi|| / ||Phi||`` per order: how far the solver's Cartesian force
        constants were from our space-group-invariant subspace (round-off for a
        symmetrised solver).
    ls_values : dict[int, numpy.ndarray]
        The independent least-squares values of :func:`least_squares_derivatives`.
    provenance : dict[str, Any]
    """

    path: Path
    primitive: Atoms
    orders: dict[int, OrderRecord]
    fc_calculator: str
    projection_residual: dict[int, float] = field(default_factory=dict)
    ls_values: dict[int, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ reading
def _sniff(path: Path) -> str:
    """``"phono3py"`` or ``"phonopy"`` from the head of a (compressed) YAML file."""
    opener: Any = open
    if path.suffix in (".xz", ".lzma"):
        opener = lzma.open
    elif path.suffix == ".gz":
        opener = gzip.open
    try:
        with opener(path, "rt", errors="replace") as fh:
            head = fh.read(20000)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DatasetImportError(f"{path}: cannot read it ({exc})") from None
    if re.search(r"^phono3py:", head, re.M):
        return "phono3py"
    if re.search(r"^phonopy:", head, re.M):
        return "phonopy"
    raise DatasetImportError(
        f"{path} is not a phonopy/phono3py YAML file (no 'phono3py:' or 'phonopy:' section); "
        "give phono3py_disp.yaml, phono3py_params.yaml[.xz], phonopy_disp.yaml or "
        "phonopy_params.yaml")


def _beside(dataset: Path, given: str | Path | None, name: str) -> Path | None:
    if given is not None:
        p = Path(given)
        if not p.is_file():
            raise DatasetImportError(f"forces file {p} not found")
        return p.resolve()
    p = dataset.parent / name
    return p.resolve() if p.is_file() else None


def load_dataset(
    dataset: str | Path,
    *,
    forces: str | Path | None = None,
    forces_fc2: str | Path | None = None,
) -> tuple[str, Any, list[Path]]:
    """Read a displacement dataset with phono3py's or phonopy's own loader.

    ``FORCES_FC3``/``FORCES_FC2`` (phono3py) or ``FORCE_SETS`` (phonopy) beside the
    dataset are read when no forces file is given. Loading happens in an empty
    temporary directory because the loaders also pick up ``fc3.hdf5``, ``FORCES_FC3``
    and friends from the current directory, which must never leak into an import.

    Returns
    -------
    (kind, obj, sources)
        ``"phono3py"`` and a :class:`phono3py.Phono3py`, or ``"phonopy"`` and a
        :class:`phonopy.Phonopy` (no force constants yet), and the files read.
    """
    path = Path(dataset)
    if not path.is_file():
        raise DatasetImportError(f"dataset {path} not found")
    path = path.resolve()
    kind = _sniff(path)
    sources = [path]
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        try:
            if kind == "phono3py":
                import phono3py

                f3 = _beside(path, forces, "FORCES_FC3")
                f2 = _beside(path, forces_fc2, "FORCES_FC2")
                sources += [p for p in (f3, f2) if p is not None]
                obj = phono3py.load(str(path), produce_fc=False, log_level=0,
                                    forces_fc3_filename=None if f3 is None else str(f3),
                                    forces_fc2_filename=None if f2 is None else str(f2))
            else:
                import phonopy

                fs = _beside(path, forces, "FORCE_SETS")
                sources += [p for p in (fs,) if p is not None]
                obj = phonopy.load(str(path), produce_fc=False, log_level=0,
                                   force_sets_filename=None if fs is None else str(fs))
        except DatasetImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loaders raise anything; say which file
            raise DatasetImportError(
                f"{kind} could not read {path}"
                + (f" with forces {forces}" if forces else "")
                + f": {type(exc).__name__}: {exc}") from None
    return kind, obj, sources


def _forces_present(dataset: Any) -> bool:
    from phonopy.structure.dataset import forces_in_dataset

    return dataset is not None and bool(forces_in_dataset(dataset))


def _fc3_arrays(ph3: Any) -> tuple[np.ndarray, np.ndarray | None]:
    from phono3py.phonon3.dataset import get_displacements_and_forces_fc3

    return get_displacements_and_forces_fc3(ph3.dataset)


def _fc2_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    from phonopy.structure.dataset import get_displacements_and_forces

    d, f = get_displacements_and_forces(dataset)
    return np.asarray(d), (None if f is None else np.asarray(f))


def _to_ase(cell: Any) -> Atoms:
    return Atoms(cell.symbols, cell=np.asarray(cell.cell), scaled_positions=cell.scaled_positions,
                 masses=cell.masses, pbc=True)


@dataclass
class _DataSet:
    """One displacement set (fc3 or fc2) in phonopy's atom order."""

    name: str
    supercell: Atoms
    displacements: np.ndarray
    forces: np.ndarray | None
    energies: np.ndarray | None = None


def _datasets(kind: str, obj: Any) -> list[_DataSet]:
    if kind == "phono3py":
        d3, f3 = _fc3_arrays(obj)
        try:
            energies = obj.supercell_energies
        except (KeyError, RuntimeError):  # phono3py raises these when some are absent
            energies = None
        out = [_DataSet("fc3", _to_ase(obj.supercell), d3, f3,
                        None if energies is None else np.asarray(energies))]
        if obj.phonon_supercell_matrix is not None and obj.phonon_dataset is not None:
            d2, f2 = _fc2_arrays(obj.phonon_dataset)
            out.append(_DataSet("fc2", _to_ase(obj.phonon_supercell), d2, f2))
        return out
    d, f = _fc2_arrays(obj.dataset)
    return [_DataSet("fc2", _to_ase(obj.supercell), d, f)]


def _fill_from_outputs(sets: list[_DataSet], pattern: str, fmt: str | None,
                       base: Path) -> list[Path]:
    """Read DFT outputs, match them to the sets' supercells by positions, set forces."""
    from anharmbench.dft.outputs import OutputError, match_outputs, read_output

    pat = pattern if os.path.isabs(pattern) else str(base / pattern)
    paths = sorted(Path(p) for p in glob.glob(pat))
    if not paths:
        paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise DatasetImportError(f"no DFT output matches {pattern!r} (looked in {base} and "
                                 "the current directory)")
    frames = [read_output(p, fmt) for p in paths]
    for s in sets:
        mine = [fr for fr in frames if len(fr.numbers) == len(s.supercell)]
        if not mine:
            continue
        positions = s.supercell.positions[None] + s.displacements
        try:
            m = match_outputs(mine, s.supercell, positions)
        except OutputError as exc:
            raise DatasetImportError(str(exc)) from None
        missing = sorted(set(range(len(positions))) - set(int(i) for i in m.indices))
        if missing:
            raise DatasetImportError(
                f"{len(m.indices)} outputs match the {len(positions)} displaced {s.name} "
                f"supercells of the dataset; missing configurations {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''} (1-based disp-{missing[0] + 1:05d}): "
                "run them, or point --outputs at all of them")
        forces = np.empty_like(positions)
        forces[m.indices] = m.forces
        s.forces = forces
        if np.isfinite(m.energies).all():
            energies = np.empty(len(positions))
            energies[m.indices] = m.energies
            s.energies = energies
    used = {fr.path for s in sets for fr in frames if len(fr.numbers) == len(s.supercell)}
    stray = [fr.path for fr in frames if fr.path not in used]
    if stray:
        raise DatasetImportError(
            f"{stray[0]} has {len(read_output(stray[0], fmt).numbers)} atoms, which is the size "
            "of no supercell of the dataset: it is the output of another calculation")
    return paths


def _apply_forces(kind: str, obj: Any, sets: list[_DataSet]) -> None:
    """Put the forces of ``sets`` into the phonopy/phono3py object."""
    for s in sets:
        if s.forces is None:
            continue
        if kind == "phono3py" and s.name == "fc3":
            obj.forces = s.forces
            if s.energies is not None:
                obj.supercell_energies = s.energies
        elif kind == "phono3py":
            obj.phonon_forces = s.forces
        else:
            obj.forces = s.forces


# ------------------------------------------------------------------ least squares
def least_squares_derivatives(
    bases: dict[int, IrreducibleBasis],
    displacements: np.ndarray,
    forces: np.ndarray,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], float]:
    """Least-squares irreducible derivatives of several orders from displacement-force data.

    The model is the Taylor series of :mod:`anharmbench.derivatives.basis_protocol`,
    ``f_c = -sum_n (1/n!) sum_k d_k dB_k(c)/dc``, fitted on the mode-projected forces of
    every configuration (``M`` equations each) jointly for all orders of ``bases`` (all in
    one FTG). The one-sigma uncertainties are ``sqrt(s^2 [(A^T A)^-1]_kk)`` with
    ``s^2 = |r|^2 / (rows - K)``.

    Parameters
    ----------
    bases
        ``{n: basis}``, same modes (same FTG and atom order).
    displacements, forces
        ``(n_conf, N, 3)`` float64, Angstrom and eV/Angstrom, our atom order.

    Returns
    -------
    (values, sigmas, rms)
        ``{n: (K_n,)}`` eV/A^n twice, and the rms force residual per equation (eV/A).
        Derivatives the data do not determine get ``inf`` uncertainty.
    """
    from math import factorial

    orders = sorted(bases)
    U = bases[orders[0]].modes
    c = displacements.reshape(len(displacements), -1) @ U  # (n_conf, M)
    f = forces.reshape(len(forces), -1) @ U
    blocks = []
    for n in orders:
        ft = bases[n].force_terms(c)  # (n_conf, K, M)
        blocks.append(-np.transpose(ft, (0, 2, 1)).reshape(-1, ft.shape[1]) / factorial(n))
    A = np.concatenate(blocks, axis=1)
    b = f.reshape(-1)
    # column scaling keeps the normal matrix well conditioned (orders differ by h^(n-2))
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    As = A / scale
    Q, R = np.linalg.qr(As)
    diag = np.abs(np.diag(R))
    ok = diag > 1e-10 * diag.max()
    x = np.full(A.shape[1], np.nan)
    var = np.full(A.shape[1], np.inf)
    Rk = R[np.ix_(ok, ok)]
    x_ok = np.linalg.solve(Rk, Q[:, ok].T @ b)
    x[ok] = x_ok
    resid = b - As[:, ok] @ x_ok
    dof = max(A.shape[0] - int(ok.sum()), 1)
    s2 = float(resid @ resid) / dof
    Rinv = np.linalg.inv(Rk)
    var[ok] = s2 * np.sum(Rinv**2, axis=1)
    x /= scale
    sig = np.sqrt(var) / scale
    values: dict[int, np.ndarray] = {}
    sigmas: dict[int, np.ndarray] = {}
    start = 0
    for n in orders:
        k = len(bases[n])
        values[n], sigmas[n] = x[start:start + k], sig[start:start + k]
        start += k
    return values, sigmas, float(np.sqrt(s2))


# ------------------------------------------------------------------ import
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _primitive(kind: str, obj: Any) -> tuple[Atoms, np.ndarray]:
    """Our primitive cell (phonopy's, checked against spglib) and its matrix (unit cell basis)."""
    import spglib

    prim = _to_ase(obj.primitive)
    unit = obj.unitcell
    cell = (np.asarray(unit.cell), np.asarray(unit.scaled_positions), np.asarray(unit.numbers))
    found = spglib.find_primitive(cell, symprec=1e-5)
    if found is not None and len(found[2]) != len(prim):
        raise DatasetImportError(
            f"the dataset's primitive_matrix gives a cell of {len(prim)} atoms, but spglib finds "
            f"a primitive cell of {len(found[2])}: set primitive_matrix: auto in the dataset "
            "(or give the primitive cell's matrix)")
    pm = obj.primitive_matrix
    Pm = np.eye(3) if pm is None else np.asarray(pm, dtype=float)
    return prim, Pm


def _ftg(supercell_matrix: Any, Pm: np.ndarray, what: str) -> np.ndarray:
    """Our row supercell matrix in the primitive basis from phonopy's column matrix."""
    M = np.asarray(supercell_matrix, dtype=float)
    if M.shape == (3,):
        M = np.diag(M)
    S = M.T @ np.linalg.inv(Pm.T)
    if not np.allclose(S, np.rint(S), atol=1e-6):
        raise DatasetImportError(
            f"the {what} supercell is not a supercell of the primitive cell (matrix "
            f"{np.round(S, 4).tolist()} in the primitive basis is not integer)")
    return np.rint(S).astype(np.int64)


def _to_ours(fc: np.ndarray, ours: Atoms, theirs: Atoms) -> np.ndarray:
    from anharmbench.phonopy_interface import to_phonopy_atoms

    return phonopy_tensor_to_supercell(fc, ours, to_phonopy_atoms(theirs))


def _perm_to_ours(ours: Atoms, theirs: Atoms, arr: np.ndarray) -> np.ndarray:
    """``arr`` ``(n, N_theirs, 3)`` in our atom order."""
    from anharmbench.phonopy_interface import to_phonopy_atoms

    perm = supercell_atom_map(ours, to_phonopy_atoms(theirs))
    out = np.empty_like(arr)
    out[:, perm] = arr
    return out


def _code_info(outputs: Sequence[Path], calculator: str | None) -> dict[str, str]:
    """DFT code and functional where the files say them (vasprun.xml's INCAR/parameters)."""
    info: dict[str, str] = {}
    if calculator:
        info["code"] = str(calculator)
    for p in outputs[:1]:
        try:
            head = p.read_text(errors="replace")[:400000]
        except OSError:
            continue
        if "<modeling>" in head:
            info["code"] = "vasp"
            m = re.search(r'<i type="string" name="version">\s*([^<]+)<', head)
            if m:
                info["code_version"] = m.group(1).strip()
            m = re.search(r'name="GGA">\s*([^<]+)<', head)
            gga = m.group(1).strip() if m else "--"
            if gga != "--":
                info["functional"] = {"PE": "PBE", "PS": "PBEsol", "91": "PW91",
                                      "RP": "rPBE"}.get(gga, gga)
            else:  # GGA unset: VASP takes the functional of the POTCARs (PAW_PBE, PAW_GGA, PAW)
                m = re.search(r"(PAW(?:_[A-Z0-9]+)?)\s+\w+", head)
                if m:
                    info["functional"] = {"PAW_PBE": "PBE", "PAW_GGA": "PW91",
                                          "PAW": "LDA"}.get(m.group(1), m.group(1))
                    info["potcar"] = m.group(0)
            m = re.search(r'name="ENCUT">\s*([^<]+)<', head)
            if m:
                info["encut_eV"] = m.group(1).strip()
        elif "Program PWSCF" in head:
            info["code"] = "quantum-espresso"
    return info


def import_dataset(
    dataset: str | Path,
    out: str | Path,
    *,
    forces: str | Path | None = None,
    forces_fc2: str | Path | None = None,
    outputs: str | None = None,
    output_format: str | None = None,
    fc_calculator: str | None = None,
    name: str = "DFT",
    overwrite: bool = False,
    progress: bool = False,
) -> ImportResult:
    """Import a phonopy/phono3py dataset as a reference ``out/derivatives.h5``.

    Parameters
    ----------
    dataset
        ``phono3py_disp.yaml``, ``phono3py_params.yaml[.xz]``, ``phonopy_disp.yaml`` or
        ``phonopy_params.yaml``.
    out
        Output directory (created); holds ``derivatives.h5``.
    forces, forces_fc2
        ``FORCES_FC3``/``FORCE_SETS`` and ``FORCES_FC2`` (default: beside the dataset).
    outputs
        Glob of raw DFT outputs of the displaced supercells (relative to the dataset's
        folder or the current directory), read with ASE and matched by positions.
    output_format
        ASE format of the outputs (default: guessed from the names).
    fc_calculator
        ``"traditional"`` (finite differences) or ``"symfc"``; default: traditional for
        systematic (type-1) displacements, symfc for random (type-2) ones.
    name
        The reference's name in tables and plots.
    overwrite
        Replace an existing ``out/derivatives.h5`` (otherwise refused).
    progress
        Print one line per step.

    Raises
    ------
    DatasetImportError
        Missing files, a dataset without forces, outputs that do not match, a supercell
        that is not one of the primitive cell, an existing result without ``overwrite``.
        Nothing is written then.
    """
    out = Path(out)
    target = out / DERIVATIVES_FILE
    if target.exists() and not overwrite:
        raise DatasetImportError(f"{target} exists; give another --out or --force to replace it")

    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    kind, obj, sources = load_dataset(dataset, forces=forces, forces_fc2=forces_fc2)
    sets = _datasets(kind, obj)
    output_paths: list[Path] = []
    if outputs is not None:
        output_paths = _fill_from_outputs(sets, outputs, output_format, Path(dataset).parent)
        _apply_forces(kind, obj, sets)
        say(f"read forces of {len(output_paths)} DFT outputs ({outputs})")
    for s in sets:
        if s.forces is None:
            raise DatasetImportError(
                f"{dataset}: the {s.name} displacement set has no forces; give them with "
                "--forces FORCES_FC3 (FORCE_SETS for phonopy) or --outputs 'disp-*/vasprun.xml'")
    systematic = "first_atoms" in (obj.dataset or {})
    calc = fc_calculator or ("traditional" if systematic else "symfc")
    if calc not in ("traditional", "symfc"):
        raise DatasetImportError(f"fc_calculator must be 'traditional' or 'symfc', not {calc!r}")
    say(f"solving force constants with {calc} ({kind} {'systematic' if systematic else 'random'}"
        " displacements)")
    fc_arg = None if calc == "traditional" else calc
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        if kind == "phono3py":
            from phono3py.cui.load import compute_force_constants_from_datasets

            # what phono3py-load does: its solver, its symmetrisation, full layout
            compute_force_constants_from_datasets(
                obj, fc_calculator=fc_arg, symmetrize_fc=True, is_compact_fc=False,
                use_symfc_projector=True)
        else:
            obj.produce_force_constants(fc_calculator=fc_arg, calculate_full_force_constants=True)
            if calc == "traditional":
                obj.symmetrize_force_constants()

    prim, Pm = _primitive(kind, obj)
    fcs: dict[int, tuple[np.ndarray, np.ndarray, Atoms]] = {}  # n -> (S, fc, phonopy cell)
    if kind == "phono3py":
        S3 = _ftg(obj.supercell_matrix, Pm, "fc3")
        fcs[3] = (S3, np.asarray(obj.fc3), _to_ase(obj.supercell))
        if obj.phonon_supercell_matrix is not None:
            fcs[2] = (_ftg(obj.phonon_supercell_matrix, Pm, "fc2"), np.asarray(obj.fc2),
                      _to_ase(obj.phonon_supercell))
        else:
            fcs[2] = (S3, np.asarray(obj.fc2), _to_ase(obj.supercell))
    else:
        fcs[2] = (_ftg(obj.supercell_matrix, Pm, "fc2"), np.asarray(obj.force_constants),
                  _to_ase(obj.supercell))

    records: dict[int, OrderRecord] = {}
    residual: dict[int, float] = {}
    bases: dict[int, IrreducibleBasis] = {}
    supercells: dict[int, Atoms] = {}
    for n, (S, fc, theirs) in sorted(fcs.items()):
        ours = build_supercell(prim, S)
        basis = irreducible_basis(prim, S, order=n)
        T = _to_ours(fc, ours, theirs)
        d = basis.from_cartesian(T)
        back = basis.to_cartesian(d)
        residual[n] = float(np.linalg.norm(T - back) / max(np.linalg.norm(T), 1e-300))
        bases[n], supercells[n] = basis, ours
        records[n] = OrderRecord(n, S, list(basis.labels), d, np.zeros(len(basis)),
                                 {"multiplicity": np.array([t.multiplicity
                                                            for t in basis.tensors])})
        say(f"order {n}: {len(basis)} irreducible derivatives in S = {S.tolist()} "
            f"(projection residual {residual[n]:.1e})")

    # uncertainties: a least-squares fit of the same forces in our basis, per FTG
    ls_values: dict[int, np.ndarray] = {}
    rms: dict[str, float] = {}
    for s in sets:
        S = fcs[3][0] if s.name == "fc3" else fcs[2][0]
        ours = build_supercell(prim, S)
        model = {2: irreducible_basis(prim, S, order=2)} if not np.array_equal(S, fcs[2][0]) \
            else {2: bases[2]}
        if s.name == "fc3":
            model[3] = bases[3]
        u = _perm_to_ours(ours, s.supercell, s.displacements)
        f = _perm_to_ours(ours, s.supercell, np.asarray(s.forces))
        vals, sig, r = least_squares_derivatives(model, u, f)
        rms[s.name] = r
        targets = [3] if s.name == "fc3" and kind == "phono3py" else [2]
        if s.name == "fc3" and np.array_equal(S, fcs[2][0]):
            targets = [2, 3]
        for n in targets:
            ls_values[n] = vals[n]
            # statistical sigma of the fit, plus the disagreement of the two solvers (theirs
            # and our least squares): finite differences and least squares weigh the
            # truncation error differently, and that difference is part of the error
            unc = np.sqrt(sig[n] ** 2 + (vals[n] - records[n].values) ** 2)
            records[n] = OrderRecord(n, records[n].supercell_matrix, records[n].labels,
                                     records[n].values, unc, records[n].extra)
        say(f"{s.name} set: {len(u)} supercells, rms force residual of the order-"
            f"{'2+3' if 3 in model else '2'} fit {r:.2e} eV/A")

    amplitudes = {s.name: _amplitude_stats(s.displacements) for s in sets}
    if systematic:  # the nominal per-displacement distance, not the sum on one atom
        vecs = [d1["displacement"] for d1 in obj.dataset["first_atoms"]]
        vecs += [d2["displacement"] for d1 in obj.dataset["first_atoms"]
                 for d2 in d1.get("second_atoms", [])]
        amplitudes["fc3" if kind == "phono3py" else "fc2"] = _amplitude_stats(
            np.asarray(vecs, dtype=float)[None])
    all_sources = list(sources) + list(output_paths)
    import phonopy

    provenance: dict[str, Any] = {
        "source": str(Path(dataset).resolve()),
        "kind": kind,
        "files": {str(p): _sha256(p) for p in all_sources},
        "fc_calculator": calc,
        "displacement_type": "systematic" if systematic else "random",
        "displacement_amplitude_A": amplitudes,
        "supercells": {s.name: len(s.displacements) for s in sets},
        "force_residual_rms_eV_A": rms,
        "projection_residual": {str(n): v for n, v in residual.items()},
        "uncertainty": "one sigma of a least-squares fit of the dataset's forces in the "
                       "irreducible basis (orders 2+3 jointly per FTG), in quadrature with "
                       "the difference between that fit and the imported value",
        "phonopy": phonopy.__version__,
        **_code_info(output_paths, getattr(obj, "calculator", None)),
    }
    if kind == "phono3py":
        import phono3py

        provenance["phono3py"] = phono3py.__version__
    digest = hashlib.sha256("".join(sorted(provenance["files"].values())).encode()).hexdigest()
    nac = None
    if getattr(obj, "nac_params", None) is not None:
        nac = {k: v for k, v in obj.nac_params.items() if k in ("born", "dielectric", "factor")}
    top = max(records)
    potential = {"name": name, "kind": kind, "source": provenance["source"],
                 **{k: provenance[k] for k in ("code", "functional") if k in provenance}}
    job = {"kind": "import", "orders": sorted(records),
           "supercells": {str(n): r.supercell_matrix.tolist() for n, r in records.items()}}
    write_derivatives_file(
        target, primitive=prim, supercell_matrix=records[top].supercell_matrix,
        supercell=supercells[top], orders=records, nac=nac,
        attrs={"anharmbench": __version__, "plan_hash": digest, "method": f"import:{calc}",
               "job": job, "potential": potential, "potential_hash": digest,
               "provenance": provenance})
    say(f"wrote {target}")
    return ImportResult(target, prim, records, calc, residual, ls_values, provenance)


def _amplitude_stats(displacements: np.ndarray) -> dict[str, float]:
    norms = np.linalg.norm(displacements, axis=-1)
    moved = norms[norms > 1e-12]
    if moved.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0}
    return {"min": float(moved.min()), "max": float(moved.max()), "mean": float(moved.mean())}
