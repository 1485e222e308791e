"""Import a phonopy/phono3py displacement dataset (e.g. VASP) as a reference ``derivatives.h5``.

The dataset is read with phono3py's or phonopy's own loaders, and the force constants are
solved by their own solvers (finite differences for systematic displacements, symfc for
random ones), exactly as ``phono3py-load`` does. We only add what they do not do:

1. the force constants are taken from phonopy's supercell atom order to ours and projected
   onto our irreducible basis (:meth:`~anharmbench.symmetry.IrreducibleBasis.from_cartesian`),
   one FTG per supercell matrix (fc2 and fc3 may live in different supercells);
2. each derivative gets a one-sigma uncertainty from a separate least-squares fit of the
   same forces in our basis
   (:func:`~anharmbench.derivatives.least_squares.least_squares_derivatives`): the residual of the
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
import hashlib
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench import __version__
from anharmbench.datasets.io import file_sha256
from anharmbench.derivatives.derivative_set import DerivativeSet
from anharmbench.derivatives.io import OrderRecord
from anharmbench.derivatives.least_squares import fit_cost, least_squares_derivatives
from anharmbench.dft.reading import (
    DatasetImportError,
    apply_forces,
    displacement_sets,
    fill_from_outputs,
    load_dataset,
    to_ase,
)
from anharmbench.fileio import exclusive_writer
from anharmbench.phonopy_interface import phonopy_tensor_to_supercell, supercell_atom_map
from anharmbench.structures import build_supercell
from anharmbench.symmetry import IrreducibleBasis, irreducible_basis
from anharmbench.symmetry.convention import paper_datasets

__all__ = [
    "DatasetImportError",
    "ImportResult",
    "import_dataset",
    "least_squares_derivatives",
    "load_dataset",
]

DERIVATIVES_FILE = "derivatives.h5"


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
    derivatives : DerivativeSet
        What was written, as the stages take it (bases included).
    """

    path: Path
    primitive: Atoms
    orders: dict[int, OrderRecord]
    fc_calculator: str
    projection_residual: dict[int, float] = field(default_factory=dict)
    ls_values: dict[int, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    derivatives: DerivativeSet | None = None


# ------------------------------------------------------------------ import
def _primitive(kind: str, obj: Any) -> tuple[Atoms, np.ndarray]:
    """Our primitive cell (phonopy's, checked against spglib) and its matrix (unit cell basis)."""
    import spglib

    prim = to_ase(obj.primitive)
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
    born: str | Path | None = None,
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
        ``FORCES_FC3``/``FORCE_SETS`` and ``FORCES_FC2`` (default: beside the dataset,
        also compressed; refused when the dataset holds its own forces).
    born
        A phonopy ``BORN`` file (default: the dataset's own NAC parameters, else ``BORN``
        beside the dataset).
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

    kind, obj, sources = load_dataset(dataset, forces=forces, forces_fc2=forces_fc2, born=born)
    say("read " + ", ".join(str(p) for p in sources))
    sets = displacement_sets(kind, obj)
    output_paths: list[Path] = []
    if outputs is not None:
        output_paths = fill_from_outputs(sets, outputs, output_format, Path(dataset).parent)
        apply_forces(kind, obj, sets)
        say(f"read forces of {len(output_paths)} DFT outputs ({outputs})")
    for s in sets:
        if s.forces is None:
            raise DatasetImportError(
                f"{dataset}: the {s.name} displacement set has no forces; give them with "
                "--forces FORCES_FC3 (FORCE_SETS for phonopy) or --outputs "
                "'disp-*/vasprun.xml'")
    systematic = "first_atoms" in (obj.dataset or {})
    calc = fc_calculator or ("traditional" if systematic else "symfc")
    if calc not in ("traditional", "symfc"):
        raise DatasetImportError(f"fc_calculator must be 'traditional' or 'symfc', not {calc!r}")
    # one import writes into ``out`` at a time; the second is refused before any work
    with exclusive_writer(out, f"anharmbench import {Path(dataset).name}"):
        if target.exists() and not overwrite:  # another import finished meanwhile
            raise DatasetImportError(
                f"{target} exists; give another --out or --force to replace it")
        say(f"solving force constants with {calc} ({kind} "
            f"{'systematic' if systematic else 'random'} displacements)")
        _solve(kind, obj, calc)
        prim, Pm = _primitive(kind, obj)
        fcs = _cartesian(kind, obj, Pm)
        records, bases, residual = _project(prim, fcs, say)
        ls_values, rms = _uncertainties(kind, prim, sets, fcs, bases, records, say)
        provenance = _provenance(dataset, kind, obj, sets, sources, output_paths, calc,
                                 systematic, rms, residual)
        derivatives = _derivative_set(name, kind, obj, prim, records, bases, provenance,
                                      calc, target)
        derivatives.to_file(target)  # the file's FTG: the highest order's
    say(f"wrote {target}")
    return ImportResult(target, prim, records, calc, residual, ls_values, provenance,
                        derivatives)


def _solve(kind: str, obj: Any, calc: str) -> None:
    """Force constants by phonopy's/phono3py's own solver, as phono3py-load does."""
    fc_arg = None if calc == "traditional" else calc
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        if kind == "phono3py":
            from phono3py.cui.load import compute_force_constants_from_datasets

            # what phono3py-load does: its solver, its symmetrisation, full layout
            compute_force_constants_from_datasets(
                obj, fc_calculator=fc_arg, symmetrize_fc=True, is_compact_fc=False,
                use_symfc_projector=True)
        else:
            obj.produce_force_constants(fc_calculator=fc_arg,
                                        calculate_full_force_constants=True)
            if calc == "traditional":
                obj.symmetrize_force_constants()


_FCs = dict[int, tuple[np.ndarray, np.ndarray, Atoms]]  # n -> (S, fc, phonopy's supercell)


def _cartesian(kind: str, obj: Any, Pm: np.ndarray) -> _FCs:
    """The solver's Cartesian force constants per order, with their FTG and cell."""
    fcs: _FCs = {}
    if kind == "phono3py":
        S3 = _ftg(obj.supercell_matrix, Pm, "fc3")
        fcs[3] = (S3, np.asarray(obj.fc3), to_ase(obj.supercell))
        if obj.phonon_supercell_matrix is not None:
            fcs[2] = (_ftg(obj.phonon_supercell_matrix, Pm, "fc2"), np.asarray(obj.fc2),
                      to_ase(obj.phonon_supercell))
        else:
            fcs[2] = (S3, np.asarray(obj.fc2), to_ase(obj.supercell))
    else:
        fcs[2] = (_ftg(obj.supercell_matrix, Pm, "fc2"), np.asarray(obj.force_constants),
                  to_ase(obj.supercell))
    return fcs


def _project(
    prim: Atoms, fcs: _FCs, say: Callable[[str], None],
) -> tuple[dict[int, OrderRecord], dict[int, IrreducibleBasis], dict[int, float]]:
    """Each order's force constants in our atom order, projected onto our basis."""
    records: dict[int, OrderRecord] = {}
    residual: dict[int, float] = {}
    bases: dict[int, IrreducibleBasis] = {}
    for n, (S, fc, theirs) in sorted(fcs.items()):
        ours = build_supercell(prim, S)
        basis = irreducible_basis(prim, S, order=n)
        T = _to_ours(fc, ours, theirs)
        d = basis.from_cartesian(T)
        back = basis.to_cartesian(d)
        residual[n] = float(np.linalg.norm(T - back) / max(np.linalg.norm(T), 1e-300))
        bases[n] = basis
        records[n] = OrderRecord(n, S, list(basis.labels), d, np.zeros(len(basis)),
                                 {"multiplicity": np.array([t.multiplicity
                                                            for t in basis.tensors])})
        say(f"order {n}: {len(basis)} irreducible derivatives in S = {S.tolist()} "
            f"(projection residual {residual[n]:.1e})")
    return records, bases, residual


def _uncertainties(
    kind: str, prim: Atoms, sets: list[Any], fcs: _FCs, bases: dict[int, IrreducibleBasis],
    records: dict[int, OrderRecord], say: Callable[[str], None],
) -> tuple[dict[int, np.ndarray], dict[str, float]]:
    """A least-squares fit of the same forces in our basis, per FTG; updates ``records``."""
    ls_values: dict[int, np.ndarray] = {}
    rms: dict[str, float] = {}
    for s in sets:
        S = fcs[3][0] if s.name == "fc3" else fcs[2][0]
        ours = build_supercell(prim, S)
        model = {2: irreducible_basis(prim, S, order=2)} if not np.array_equal(S, fcs[2][0]) \
            else {2: bases[2]}
        if s.name == "fc3":
            model[3] = bases[3]
        cost = fit_cost(model, len(s.displacements))
        say(f"{s.name} set: fitting {cost.unknowns} derivatives to {cost.equations} force "
            f"equations, ~{cost.peak_bytes / 2**30:.2f} GiB (the dense design matrix would "
            f"take {cost.dense_bytes / 2**30:.1f} GiB)")
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
                                     records[n].values, unc,
                                     {**records[n].extra, **paper_datasets(
                                         bases[n], records[n].values, unc)})
        say(f"{s.name} set: {len(u)} supercells, rms force residual of the order-"
            f"{'2+3' if 3 in model else '2'} fit {r:.2e} eV/A")
    return ls_values, rms


def _provenance(
    dataset: str | Path, kind: str, obj: Any, sets: list[Any], sources: list[Path],
    outputs: list[Path], calc: str, systematic: bool, rms: dict[str, float],
    residual: dict[int, float],
) -> dict[str, Any]:
    """Where the imported numbers come from: exactly the files read, with their hashes."""
    import phonopy

    amplitudes = {s.name: _amplitude_stats(s.displacements) for s in sets}
    if systematic:  # the nominal per-displacement distance, not the sum on one atom
        vecs = [d1["displacement"] for d1 in obj.dataset["first_atoms"]]
        vecs += [d2["displacement"] for d1 in obj.dataset["first_atoms"]
                 for d2 in d1.get("second_atoms", [])]
        amplitudes["fc3" if kind == "phono3py" else "fc2"] = _amplitude_stats(
            np.asarray(vecs, dtype=float)[None])
    provenance: dict[str, Any] = {
        "source": str(Path(dataset).resolve()),
        "kind": kind,
        "files": {str(p): file_sha256(p) for p in [*sources, *outputs]},
        "fc_calculator": calc,
        "displacement_type": "systematic" if systematic else "random",
        "displacement_amplitude_A": amplitudes,
        "supercells": {s.name: len(s.displacements) for s in sets},
        "force_residual_rms_eV_A": rms,
        "projection_residual": {str(n): v for n, v in residual.items()},
        "nac": "none" if getattr(obj, "nac_params", None) is None else "born",
        "uncertainty": "one sigma of a least-squares fit of the dataset's forces in the "
                       "irreducible basis (orders 2+3 jointly per FTG), in quadrature with "
                       "the difference between that fit and the imported value",
        "phonopy": phonopy.__version__,
        **_code_info(outputs, getattr(obj, "calculator", None)),
    }
    if kind == "phono3py":
        import phono3py

        provenance["phono3py"] = phono3py.__version__
    return provenance


def _derivative_set(
    name: str, kind: str, obj: Any, prim: Atoms, records: dict[int, OrderRecord],
    bases: dict[int, IrreducibleBasis], provenance: dict[str, Any], calc: str, target: Path,
) -> DerivativeSet:
    digest = hashlib.sha256("".join(sorted(provenance["files"].values())).encode()).hexdigest()
    nac = None
    if getattr(obj, "nac_params", None) is not None:
        nac = {k: v for k, v in obj.nac_params.items() if k in ("born", "dielectric", "factor")}
    potential = {"name": name, "kind": kind, "source": provenance["source"],
                 **{k: provenance[k] for k in ("code", "functional") if k in provenance}}
    job = {"kind": "import", "orders": sorted(records),
           "supercells": {str(n): r.supercell_matrix.tolist() for n, r in records.items()}}
    return DerivativeSet(
        name, prim,
        values={n: r.values for n, r in records.items()},
        labels={n: r.labels for n, r in records.items()},
        supercell_matrices={n: r.supercell_matrix for n, r in records.items()},
        uncertainties={n: r.uncertainties for n, r in records.items()},
        extra={n: r.extra for n, r in records.items()}, nac=nac, bases=bases,
        attrs={"anharmbench": __version__, "plan_hash": digest, "method": f"import:{calc}",
               "job": job, "potential": potential, "potential_hash": digest,
               "provenance": provenance},
        sources={n: str(target) for n in records})


def _amplitude_stats(displacements: np.ndarray) -> dict[str, float]:
    norms = np.linalg.norm(displacements, axis=-1)
    moved = norms[norms > 1e-12]
    if moved.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0}
    return {"min": float(moved.min()), "max": float(moved.max()), "mean": float(moved.mean())}
