"""Deploy a BPNN to LAMMPS as an AOTInductor package that ``pair_style nequip`` runs.

The package has the interface of ``nequip-compile --mode aotinductor --target
pair_nequip`` (nequip 0.19), so the project's one libtorch pair style serves both model
classes (``pair_style nequip``, ``pair_coeff * * model.nequip.pt2 Th O``):

========================  ==========================  =========  ==================================
input                     shape                       dtype      meaning
========================  ==========================  =========  ==================================
``pos``                   ``(N, 3)``                  float64    positions of the N local atoms, A
``edge_index``            ``(2, E)``                  int64      centre ``i``, neighbour ``j``
``atom_types``            ``(N,)``                    int64      index into ``type_names``
``cell``                  ``(1, 3, 3)``               float64    lattice vectors as rows, A
``edge_cell_shift``       ``(E, 3)``                  float64    integer shifts ``S``
========================  ==========================  =========  ==================================

The edge vector is ``pos[j] - pos[i] + S @ cell``. Edges: every pair closer than
``r_max`` (both directions, every periodic image; extra edges beyond ``r_max``, e.g.
from a neighbour skin, are harmless). ``N >= 2``, ``E >= 2`` (dynamic).

========================  ==========================  =========  ==================================
output                    shape                       dtype      meaning
========================  ==========================  =========  ==================================
``atomic_energy``         ``(N, 1)``                  float64    energy of each atom, eV
``forces``                ``(N, 3)``                  float64    ``-dE/dpos``, eV/A
``virial``                ``(1, 3, 3)``               float64    ``-dE/d(strain)`` (symmetric), eV
========================  ==========================  =========  ==================================

Metadata (strings, as nequip writes them): ``model_dtype`` = ``float64``,
``type_names`` (space separated, type order), ``num_types``, ``r_max`` (the radial
cutoff, 10 A by default: the neighbour-list cutoff), ``allow_tf32`` = ``0``,
``nequip_aoti_inputs`` = ``pos edge_index atom_types cell edge_cell_shift``,
``nequip_aoti_outputs`` = ``atomic_energy forces virial``, ``torch_version`` (the plugin
refuses a package from another torch), plus ``anharmbench_model`` =
``bpnn``, ``bpnn_fingerprint`` (the symmetry-function set), ``bpnn_r_angular``. The
angular functions need only the edges shorter than ``bpnn_r_angular``: the model
selects them itself from the one edge list.

The forward pass (symmetry functions, networks, and the force/virial backward pass)
is traced with ``make_fx`` in symbolic mode, exported with dynamic numbers of atoms
and edges (the angular pair list has data-dependent size) and compiled for this CPU
(``torch._inductor.aoti_compile_and_package``, tens of seconds). The package is checked
against the eager model on two structures of different sizes before it is kept.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from anharmbench.mlip._torch_api import no_duck_shapes
from anharmbench.mlip.aoti_cache import compile_or_reuse
from anharmbench.mlip.bpnn.model import (
    BPNN,
    atoms_inputs,
    edge_vectors,
    energy_forces_virial,
    forces_virial_from_edge_gradient,
    load_model,
)
from anharmbench.potentials.spec import (
    LammpsPotential,
    PotentialError,
    lammps_path_word,
    model_file_potential,
)

__all__ = [
    "AOTI_INPUTS",
    "AOTI_OUTPUTS",
    "ExportError",
    "PT2_NAME",
    "bpnn_parity",
    "bpnn_potential",
    "export_pt2",
    "load_pt2",
    "pt2_metadata",
]

AOTI_INPUTS = ("pos", "edge_index", "atom_types", "cell", "edge_cell_shift")
AOTI_OUTPUTS = ("atomic_energy", "forces", "virial")
#: File name of the package inside a model directory.
PT2_NAME = "model.nequip.pt2"
#: Largest deviation from the eager model tolerated by the post-compile check.
CHECK_TOL = 1e-9


class ExportError(RuntimeError):
    """Exporting or compiling the model failed, or the package disagrees with the model."""


class PairNequipModule(torch.nn.Module):
    """The BPNN with the inputs and outputs of nequip's ``pair_nequip`` target."""

    def __init__(self, model: BPNN) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        pos: torch.Tensor,
        edge_index: torch.Tensor,
        atom_types: torch.Tensor,
        cell: torch.Tensor,
        edge_cell_shift: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(atomic_energy (N, 1), forces (N, 3), virial (1, 3, 3))``, float64."""
        vec = edge_vectors(pos, edge_index, cell, edge_cell_shift).detach().requires_grad_(True)
        energies = self.model.atomic_energies(vec, edge_index, atom_types)
        (grad,) = torch.autograd.grad(energies.sum(), [vec])
        forces, virial = forces_virial_from_edge_gradient(vec, edge_index, grad, pos.shape[0])
        return energies.unsqueeze(-1), forces, virial.reshape(1, 3, 3)


def _example_structure(elements: Sequence[str], seed: int, size: int) -> Atoms:
    """A rattled structure holding every element: ThO2 for Th/O models, else random."""
    rng = np.random.default_rng(seed)
    if set(elements) <= {"Th", "O"}:
        from anharmbench.structures import build_supercell, tho2_primitive

        atoms = build_supercell(tho2_primitive(), "SC" if size == 0 else "2I")
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        return atoms
    n = 4 * len(elements) + 4 * size
    length = (n / 0.07) ** (1 / 3)
    pos: list[np.ndarray] = []
    while len(pos) < n:
        p = rng.uniform(0, length, 3)
        if all(np.linalg.norm(p - q) > 1.6 for q in pos):
            pos.append(p)
    symbols = [elements[k % len(elements)] for k in range(n)]
    return Atoms(symbols, positions=np.array(pos), cell=np.eye(3) * length, pbc=True)


def _metadata(model: BPNN) -> dict[str, str]:
    return {
        "model_dtype": "float64",
        "type_names": " ".join(model.elements),
        "num_types": str(len(model.elements)),
        "r_max": str(float(model.r_max)),
        "allow_tf32": "0",
        "torch_version": torch.__version__,
        "nequip_aoti_inputs": " ".join(AOTI_INPUTS),
        "nequip_aoti_outputs": " ".join(AOTI_OUTPUTS),
        "anharmbench_model": "bpnn",
        "bpnn_fingerprint": model.fingerprint,
        "bpnn_r_angular": str(float(model.sf_set.r_angular)),
    }


def export_pt2(
    model: BPNN | str | Path,
    path: str | Path | None = None,
    *,
    example: Atoms | None = None,
    check: bool = True,
    cache: str | Path | None = None,
) -> Path:
    """Compile ``model`` into an AOTInductor package for ``pair_style nequip``.

    Parameters
    ----------
    model
        A :class:`BPNN` or a model directory (:func:`~anharmbench.mlip.bpnn.model.load_model`).
    path
        Output file (should end in ``.nequip.pt2``). Default: ``<model dir>/model.nequip.pt2``
        when ``model`` is a directory.
    example
        A structure holding every element, traced for the export (default: a rattled
        ThO2 cell for Th-O models, else a random structure).
    check
        Compare the package with the eager model on ``example`` and on a structure of
        another size (raise :class:`ExportError` beyond :data:`CHECK_TOL`).
    cache
        Directory of compiled templates (:mod:`anharmbench.mlip.aoti_cache`): a model
        whose traced graph equals an earlier one's (same architecture and symmetry
        functions, other weights) reuses its compilation, seconds instead of a minute or
        more. A reused package that fails the check is compiled afresh.

    Returns
    -------
    pathlib.Path
        The package.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    if not isinstance(model, BPNN):
        directory = Path(model)
        model = load_model(directory)
        path = path or directory / PT2_NAME
    if path is None:
        raise ValueError("give the output path of the package (path=...)")
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.scaling is None:
        raise ExportError("the model has no symmetry-function scaling; train it first")
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    module = PairNequipModule(model)
    atoms = example if example is not None else _example_structure(model.elements, 1, 0)
    inputs = atoms_inputs(model, atoms)
    dims = {
        "node": torch.export.Dim("num_nodes", min=2),
        "edge": torch.export.Dim("num_edges", min=2),
    }
    static = torch.export.Dim.STATIC
    dynamic_shapes = (
        {0: dims["node"], 1: static},
        {0: static, 1: dims["edge"]},
        {0: dims["node"]},
        {0: static, 1: static, 2: static},
        {0: dims["edge"], 1: static},
    )
    tmp = path.with_name(path.name + ".tmp.pt2")
    configs = {"aot_inductor.metadata": _metadata(model),
               # with torch's default of one thread per core, torch 2.13's C++ codegen
               # of the force scatter fails (an AssertionError in CppKernel.store);
               # LAMMPS runs a rank per core
               "cpp.threads": 1}
    other = _example_structure(model.elements, 2, 1) if example is None else _bigger(example)

    def compiled(templates: str | Path | None) -> tuple[Path, bool]:
        try:
            with warnings.catch_warnings(), no_duck_shapes():
                # torch's own deprecation notices from its internals
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                graph = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True)(
                    *[t.clone() for t in inputs]
                )
                exported = torch.export.export(graph, tuple(inputs),
                                               dynamic_shapes=dynamic_shapes)
                return compile_or_reuse(exported, tmp, configs, templates)
        except Exception as exc:  # torch raises many kinds; keep its message
            tmp.unlink(missing_ok=True)
            raise ExportError(f"exporting the BPNN failed: {type(exc).__name__}: {exc}") from exc

    def checked(out: Path) -> None:
        try:
            if check:
                for probe in (atoms, other):
                    _check_package(model, out, probe)
        except BaseException:
            out.unlink(missing_ok=True)
            raise

    out, reused = compiled(cache)
    try:
        checked(out)
    except ExportError:
        if not reused:
            raise
        out, _ = compiled(None)  # a template that fails the check: compile afresh
        checked(out)
    out.replace(path)
    return path


def _bigger(atoms: Atoms) -> Atoms:
    big = atoms.repeat((2, 1, 1))
    big.positions += np.random.default_rng(3).normal(scale=0.02, size=big.positions.shape)
    return big


def _check_package(model: BPNN, package: Path, atoms: Atoms) -> None:
    inputs = atoms_inputs(model, atoms)
    compiled = load_pt2(package)
    e_pkg, f_pkg, v_pkg = compiled(*inputs)
    e_ref, f_ref, v_ref = energy_forces_virial(model, *inputs)
    dev = max(
        float((e_pkg.reshape(-1) - e_ref).abs().max()),
        float((f_pkg - f_ref).abs().max()),
        float((v_pkg.reshape(3, 3) - v_ref).abs().max()),
    )
    if not dev < CHECK_TOL:
        raise ExportError(
            f"the compiled package differs from the eager model by {dev:.3g} on a "
            f"{len(atoms)}-atom structure (tolerance {CHECK_TOL}); not kept"
        )


def pt2_metadata(path: str | Path) -> dict[str, str]:
    """Metadata of an AOTInductor package, read from the zip (no library loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("wrapper_metadata.json")]
            if not names:
                names = [n for n in zf.namelist() if n.endswith("_metadata.json")]
            if not names:
                raise ExportError(f"{path} holds no AOTInductor metadata")
            return dict(json.loads(zf.read(names[0])))
    except zipfile.BadZipFile as exc:
        raise ExportError(f"{path} is not an AOTInductor package (not a zip file)") from exc


def load_pt2(path: str | Path) -> torch.nn.Module:
    """Load a package in Python (``torch._inductor.aoti_load_package``).

    Calling the result with the five inputs returns the three outputs (see the module
    docstring).
    """
    pt2_metadata(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's internals
        return torch._inductor.aoti_load_package(str(path))


def bpnn_potential(
    model: str | Path,
    elements: Sequence[str] | None = None,
    *,
    name: str | None = None,
) -> LammpsPotential:
    """The LAMMPS potential running a compiled BPNN (``pair_style nequip``).

    Parameters
    ----------
    model
        A ``.pt2`` package (:func:`export_pt2`) or a model directory holding
        ``model.nequip.pt2``.
    elements
        Element of each LAMMPS atom type, in type order; each must be one of the
        package's ``type_names`` (default: ``type_names``).
    name
        Name in reports (default ``bpnn:<file name>``).

    Raises
    ------
    FileNotFoundError
        When the package does not exist (export the model first).
    PotentialError
        When an element is not in the package or the path holds white space.
    """
    path = Path(model).absolute()
    if path.is_dir():
        pkg = path / PT2_NAME
        if not pkg.is_file():
            raise FileNotFoundError(
                f"{path} holds no compiled package {PT2_NAME}; make it with "
                "anharmbench.mlip.bpnn.export_pt2(model_dir)"
            )
        path = pkg
    meta = pt2_metadata(path)
    type_names = meta.get("type_names", "").split()
    if meta.get("anharmbench_model") != "bpnn":
        raise PotentialError(f"{path} is not a BPNN package (metadata {sorted(meta)})")
    lammps_path_word(path, what="the package path")
    elements = tuple(elements) if elements is not None else tuple(type_names)
    missing = [e for e in elements if e not in type_names]
    if missing:
        raise PotentialError(
            f"element(s) {missing} are not in the model {path.name} (its types: {type_names})"
        )
    return model_file_potential("nequip", path, elements, name=name or f"bpnn:{path.name}")


def bpnn_parity(
    model: str | Path,
    dataset: str | Path,
    directory: str | Path,
    *,
    split: str = "test",
    backend: str = "lammps",
    elements: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Energy/force parity of a trained BPNN on a dataset split (the paper's Fig. 1a-b).

    Parameters
    ----------
    model
        A model directory (``model.json`` and, for ``backend="lammps"``,
        ``model.nequip.pt2``) or, for LAMMPS, a ``.pt2`` package.
    dataset
        A dataset directory.
    directory
        Where :func:`~anharmbench.mlip.parity.write_parity` writes ``parity.json``,
        ``parity_energy.csv``, ``parity_forces.csv`` and ``parity.png``.
    split
        ``"test"`` (default), ``"val"`` or ``"train"``.
    backend
        ``"lammps"`` (``pair_style nequip`` running the package) or ``"torch"`` (the
        model in Python).
    elements
        LAMMPS type order (default: the package's).
    """
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.mlip.bpnn.model import BPNNCalculator
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.parity import calculator_parity, write_parity

    if split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r}: use 'train', 'val' or 'test'")
    frames = getattr(load_splits(dataset, require=(split,)), split)
    if backend == "lammps":
        potential = bpnn_potential(model, elements)
        calc: Any = LammpsCalculator(potential)
        name = potential.name
    elif backend == "torch":
        calc = BPNNCalculator(load_model(model))
        name = f"bpnn:{Path(model).name}"
    else:
        raise ValueError(f"backend {backend!r}: use 'lammps' or 'torch'")
    return write_parity(calculator_parity(name, calc, frames), directory)
