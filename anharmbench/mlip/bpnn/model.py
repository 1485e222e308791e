"""The Behler-Parrinello network: one MLP per element on scaled symmetry functions.

For atom ``i`` of element ``e`` with scaled symmetry functions ``G_i`` (n2p2 order)::

    E_i = energy_scale * NN_e(G_i) + energy_shift[e]          (eV)
    E   = sum_i E_i

``NN_e`` is a fully connected network (default two hidden layers of 21, ``tanh``, a
linear output), float64. Forces are ``-dE/dx`` by autograd through the edge vectors;
the virial is ``-sum_edges v (x) dE/dv`` (symmetrized), nequip's convention (the strain
derivative ``-dE/d(eps)``, positive under compression, LAMMPS's sign), so that the
stress is ``-virial / V`` (ASE's sign).

Activations use n2p2's letters (``global_activation_short``): ``l`` linear, ``t`` tanh,
``s`` logistic, ``p`` softplus, ``r`` relu, ``g`` gaussian ``exp(-x^2/2)``, ``c`` cos,
``S`` 1 - logistic, ``e`` ``exp(-x)``, ``h`` ``x^2``; names such as ``"tanh"`` are
accepted too. ``normalize_nodes`` divides each neuron's input sum by the number of
neurons feeding it (n2p2's keyword of that name).

A model directory holds ``model.json`` (architecture, functions, scaling, energy
scale and shifts) and ``weights.pt`` (the networks' tensors, a plain ``torch.save`` of
a name -> tensor dict, read with ``weights_only=True``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from anharmbench.mlip.bpnn.descriptor import Descriptor
from anharmbench.mlip.bpnn.neighbors import atoms_neighbor_list
from anharmbench.mlip.bpnn.scaling import ScalingError, SymmetryFunctionScaling
from anharmbench.mlip.bpnn.symmetry_functions import SymmetryFunctionSet

__all__ = [
    "ACTIVATION_NAMES",
    "BPNN",
    "BPNNCalculator",
    "ModelFormatError",
    "NetworkConfig",
    "energy_forces_virial",
    "load_model",
    "save_model",
]

MODEL_FORMAT = "anharmbench-bpnn"
MODEL_VERSION = 1
MODEL_JSON = "model.json"
WEIGHTS_FILE = "weights.pt"

#: Names accepted for the n2p2 activation letters.
ACTIVATION_NAMES: dict[str, str] = {
    "linear": "l",
    "identity": "l",
    "tanh": "t",
    "logistic": "s",
    "sigmoid": "s",
    "softplus": "p",
    "relu": "r",
    "gaussian": "g",
    "cos": "c",
    "revlogistic": "S",
    "exp": "e",
    "harmonic": "h",
}
_LETTERS = set(ACTIVATION_NAMES.values())


class ModelFormatError(ValueError):
    """A model directory or file is missing parts, malformed, or inconsistent."""


def _letter(name: str) -> str:
    if name in _LETTERS:
        return name
    if name in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[name]
    raise ValueError(
        f"activation {name!r} is not known; use an n2p2 letter {sorted(_LETTERS)} or a name "
        f"{sorted(ACTIVATION_NAMES)}"
    )


def _activate(x: torch.Tensor, letter: str) -> torch.Tensor:
    if letter == "l":
        return x
    if letter == "t":
        return torch.tanh(x)
    if letter == "s":
        return torch.sigmoid(x)
    if letter == "p":
        return torch.logaddexp(x, torch.zeros_like(x))
    if letter == "r":
        return torch.relu(x)
    if letter == "g":
        return torch.exp(-0.5 * x * x)
    if letter == "c":
        return torch.cos(x)
    if letter == "S":
        return 1.0 - torch.sigmoid(x)
    if letter == "e":
        return torch.exp(-x)
    if letter == "h":
        return x * x
    raise ValueError(f"unknown activation letter {letter!r}")


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of every element's network.

    Attributes
    ----------
    hidden
        Neurons per hidden layer (the paper: ``(21, 21)``).
    activation
        Hidden-layer activation (n2p2 letter or name; default ``"t"``, tanh).
    output_activation
        Output activation (default ``"l"``, linear).
    normalize_nodes
        n2p2's ``normalize_nodes``.
    """

    hidden: tuple[int, ...] = (21, 21)
    activation: str = "t"
    output_activation: str = "l"
    normalize_nodes: bool = False

    def __post_init__(self) -> None:
        hidden = tuple(int(h) for h in self.hidden)
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden layers need >= 1 neuron each, got {self.hidden}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "activation", _letter(self.activation))
        object.__setattr__(self, "output_activation", _letter(self.output_activation))
        object.__setattr__(self, "normalize_nodes", bool(self.normalize_nodes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output_activation": self.output_activation,
            "normalize_nodes": self.normalize_nodes,
        }


class ElementNetwork(torch.nn.Module):
    """A fully connected network ``n_in -> hidden... -> 1`` (float64)."""

    def __init__(self, n_in: int, config: NetworkConfig) -> None:
        super().__init__()
        sizes = (n_in, *config.hidden, 1)
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b, dtype=torch.float64)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.activations = (config.activation,) * len(config.hidden) + (config.output_activation,)
        self.normalize = config.normalize_nodes
        self.n_in = n_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, n_in)`` -> ``(N,)``."""
        for layer, act in zip(self.layers, self.activations, strict=True):
            x = layer(x)
            if self.normalize:
                x = x / layer.in_features
            x = _activate(x, act)
        return x.squeeze(-1)


class BPNN(torch.nn.Module):
    """Behler-Parrinello model: descriptor, per-element scaling and networks.

    Parameters
    ----------
    elements
        Elements in type order (atom type ``t`` is ``elements[t]``).
    sf_set
        Symmetry functions; must fit ``elements`` (else ``SymmetryFunctionError``).
    network
        Architecture shared by all elements.
    scaling
        Symmetry-function scaling, or ``None`` until :meth:`set_scaling` is called
        (then no scaling is applied).
    energy_scale
        Factor on the network outputs, eV.
    energy_shift
        Per-element atomic energy offsets, eV (default 0).
    """

    def __init__(
        self,
        elements: Sequence[str],
        sf_set: SymmetryFunctionSet,
        network: NetworkConfig | None = None,
        scaling: SymmetryFunctionScaling | None = None,
        energy_scale: float = 1.0,
        energy_shift: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.elements = tuple(elements)
        if len(set(self.elements)) != len(self.elements):
            raise ValueError(f"duplicate element in {self.elements}")
        self.sf_set = sf_set
        self.network_config = network or NetworkConfig()
        self.descriptor = Descriptor(sf_set, self.elements)
        self.networks = torch.nn.ModuleList(
            ElementNetwork(self.descriptor.n_features[t], self.network_config)
            for t in range(len(self.elements))
        )
        width = self.descriptor.width
        self.register_buffer("scale_a", torch.zeros(len(self.elements), width, dtype=torch.float64))
        self.register_buffer("scale_b", torch.zeros(len(self.elements), width, dtype=torch.float64))
        self.register_buffer("scale_c", torch.zeros(len(self.elements), width, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale), dtype=torch.float64))
        self.register_buffer("energy_shift", torch.zeros(len(self.elements), dtype=torch.float64))
        self.scaling: SymmetryFunctionScaling | None = None
        self.set_scaling(scaling)
        self.set_energy_shift(energy_shift or {})

    # ---------------------------------------------------------------- settings
    @property
    def fingerprint(self) -> str:
        """Fingerprint of the symmetry-function set (ties scaling files to the model)."""
        return self.sf_set.fingerprint(self.elements)

    @property
    def r_max(self) -> float:
        """Neighbour-list cutoff (largest function cutoff), Angstrom."""
        return self.sf_set.r_max

    def set_scaling(self, scaling: SymmetryFunctionScaling | None) -> None:
        """Install scaling statistics (``None``: identity).

        Raises
        ------
        ScalingError
            When the statistics belong to another set of functions (fingerprint or sizes
            differ) or a function is constant.
        """
        width = self.descriptor.width
        a = torch.zeros(len(self.elements), width, dtype=torch.float64)
        b = torch.zeros_like(a)
        c = torch.zeros_like(a)
        for t, el in enumerate(self.elements):
            n = self.descriptor.n_features[t]
            if scaling is None:
                b[t, :n] = 1.0
                continue
            if scaling.fingerprint != self.fingerprint:
                raise ScalingError(
                    f"the scaling statistics belong to another set of symmetry functions "
                    f"(fingerprint {scaling.fingerprint}, this model's {self.fingerprint}); "
                    "use the scaling file written with this model's input.nn"
                )
            if el not in scaling.stats or len(scaling.stats[el]) != n:
                got = len(scaling.stats.get(el, ()))
                raise ScalingError(
                    f"the scaling statistics have {got} entries for {el}, the model has {n} "
                    "symmetry functions for it: they come from another model"
                )
            sa, sb, sc = scaling.affine(el)
            a[t, :n] = torch.from_numpy(sa)
            b[t, :n] = torch.from_numpy(sb)
            c[t, :n] = torch.from_numpy(sc)
        self.scale_a.copy_(a)
        self.scale_b.copy_(b)
        self.scale_c.copy_(c)
        self.scaling = scaling

    def set_energy_shift(self, shift: Mapping[str, float]) -> None:
        """Per-element energy offsets, eV (elements not given keep 0)."""
        unknown = set(shift) - set(self.elements)
        if unknown:
            raise ValueError(f"energy shift for {sorted(unknown)}, not elements of the model")
        values = [float(shift.get(el, 0.0)) for el in self.elements]
        self.energy_shift.copy_(torch.tensor(values, dtype=torch.float64))

    # ---------------------------------------------------------------- evaluation
    def scaled(self, g: torch.Tensor, atom_types: torch.Tensor) -> torch.Tensor:
        """Scaled functions ``(N, width)`` from raw ones ``(N, width)`` (zero padding kept)."""
        return self.scale_c[atom_types] + self.scale_b[atom_types] * (g - self.scale_a[atom_types])

    def energies_from_features(self, g: torch.Tensor, atom_types: torch.Tensor) -> torch.Tensor:
        """Atomic energies ``(N,)`` (eV) from raw symmetry functions ``(N, width)``."""
        x = self.scaled(g, atom_types)
        out = torch.zeros(atom_types.shape[0], dtype=x.dtype, device=x.device)
        for t, net in enumerate(self.networks):
            y = net(x[:, : net.n_in])
            out = torch.where(atom_types == t, y, out)
        return self.energy_scale * out + self.energy_shift[atom_types]

    def atomic_energies(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, atom_types: torch.Tensor
    ) -> torch.Tensor:
        """Energy of every atom, ``(N,)`` float64, eV (differentiable by ``vectors``).

        Parameters
        ----------
        vectors
            ``(E, 3)`` edge vectors ``x_j - x_i`` (lattice shifts included), Angstrom.
        edge_index
            ``(2, E)`` int64 centre and neighbour indices (a complete list within
            :attr:`r_max`, both directions).
        atom_types
            ``(N,)`` int64 indices into :attr:`elements`.
        """
        g = self.descriptor(vectors, edge_index, atom_types)
        return self.energies_from_features(g, atom_types)

    def forward(
        self,
        pos: torch.Tensor,
        edge_index: torch.Tensor,
        atom_types: torch.Tensor,
        cell: torch.Tensor,
        edge_cell_shift: torch.Tensor,
    ) -> torch.Tensor:
        """Atomic energies ``(N,)`` from nequip-style inputs (see :func:`edge_vectors`)."""
        return self.atomic_energies(
            edge_vectors(pos, edge_index, cell, edge_cell_shift), edge_index, atom_types
        )

    # ---------------------------------------------------------------- I/O
    def config(self) -> dict[str, Any]:
        """Everything but the network tensors, JSON-serialisable."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "elements": list(self.elements),
            "network": self.network_config.to_dict(),
            "symmetry_functions": self.sf_set.to_dict(),
            "scaling": None if self.scaling is None else self.scaling.to_dict(),
            "energy_scale": float(self.energy_scale),
            "energy_shift": {
                el: float(v)
                for el, v in zip(self.elements, self.energy_shift.tolist(), strict=True)
            },
            "fingerprint": self.fingerprint,
            "r_max": self.r_max,
        }

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> BPNN:
        """A model (fresh network tensors) from :meth:`config` output."""
        if cfg.get("format") != MODEL_FORMAT:
            raise ModelFormatError(
                f"not an anharmbench BPNN model description (format {cfg.get('format')!r})"
            )
        if int(cfg.get("version", -1)) > MODEL_VERSION:
            raise ModelFormatError(
                f"model format version {cfg.get('version')} is newer than this code's "
                f"{MODEL_VERSION}; update anharmbench"
            )
        try:
            net = cfg["network"]
            network = NetworkConfig(
                tuple(net["hidden"]),
                net["activation"],
                net["output_activation"],
                net["normalize_nodes"],
            )
            sf_set = SymmetryFunctionSet.from_dict(cfg["symmetry_functions"])
            scaling = (
                None
                if cfg["scaling"] is None
                else SymmetryFunctionScaling.from_dict(cfg["scaling"])
            )
            return cls(
                cfg["elements"],
                sf_set,
                network,
                scaling,
                cfg["energy_scale"],
                cfg["energy_shift"],
            )
        except KeyError as exc:
            raise ModelFormatError(f"model description lacks {exc}") from exc

    def predict(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV), forces ``(N, 3)`` (eV/A) and virial ``(3, 3)`` (eV) of a structure."""
        inputs = atoms_inputs(self, atoms)
        energies, forces, virial = energy_forces_virial(self, *inputs)
        return float(energies.sum()), forces.detach().numpy(), virial.detach().numpy()


def edge_vectors(
    pos: torch.Tensor, edge_index: torch.Tensor, cell: torch.Tensor, edge_cell_shift: torch.Tensor
) -> torch.Tensor:
    """``x_j - x_i + S @ cell``: ``(E, 3)`` from positions ``(N, 3)``, edges ``(2, E)``,
    cell ``(3, 3)`` or ``(1, 3, 3)`` and shifts ``(E, 3)``."""
    return pos[edge_index[1]] - pos[edge_index[0]] + edge_cell_shift @ cell.reshape(3, 3)


def forces_virial_from_edge_gradient(
    vectors: torch.Tensor, edge_index: torch.Tensor, grad: torch.Tensor, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forces ``(N, 3)`` and symmetric virial ``(3, 3)`` from ``dE/dv`` of every edge."""
    forces = torch.zeros(n_atoms, 3, dtype=grad.dtype, device=grad.device)
    forces = forces.index_add(0, edge_index[0], grad).index_add(0, edge_index[1], -grad)
    w = -(vectors.transpose(0, 1) @ grad)
    return forces, 0.5 * (w + w.transpose(0, 1))


def energy_forces_virial(
    model: BPNN,
    pos: torch.Tensor,
    edge_index: torch.Tensor,
    atom_types: torch.Tensor,
    cell: torch.Tensor,
    edge_cell_shift: torch.Tensor,
    *,
    method: str = "autograd",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Atomic energies ``(N,)``, forces ``(N, 3)`` and virial ``(3, 3)`` (float64).

    Inputs as :meth:`BPNN.forward`. Forces are ``-dE/dx``. ``method="autograd"``
    (default, as the exported package) differentiates the whole model: one
    vector-Jacobian product, the fastest for a single evaluation. ``"analytic"`` uses
    the closed-form symmetry-function derivatives (:meth:`Descriptor.with_jacobian`,
    autograd only through the networks), the path of training; it builds the full
    Jacobian, several times slower here. Both agree to rounding.
    """
    vec = edge_vectors(pos, edge_index, cell, edge_cell_shift).detach()
    with torch.enable_grad():
        if method == "analytic":
            g, jac = model.descriptor.with_jacobian(vec, edge_index, atom_types)
            g = g.requires_grad_(True)
            energies = model.energies_from_features(g, atom_types)
            (de_dg,) = torch.autograd.grad(energies.sum(), [g])
            grad = jac.edge_gradient(edge_index[0], de_dg)
        elif method == "autograd":
            vec = vec.requires_grad_(True)
            energies = model.atomic_energies(vec, edge_index, atom_types)
            (grad,) = torch.autograd.grad(energies.sum(), [vec])
        else:
            raise ValueError(f"method {method!r}: use 'analytic' or 'autograd'")
    forces, virial = forces_virial_from_edge_gradient(vec, edge_index, grad, pos.shape[0])
    return energies.detach(), forces.detach(), virial.detach()


def atoms_inputs(
    model: BPNN, atoms: Atoms
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """nequip-style inputs of a structure: ``pos, edge_index, atom_types, cell, shifts``.

    Raises
    ------
    ValueError
        When the structure holds an element the model does not describe.
    """
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(model.elements))
    if unknown:
        raise ValueError(
            f"the structure contains {unknown}, which the model does not describe (its "
            f"elements: {list(model.elements)})"
        )
    type_of = {e: i for i, e in enumerate(model.elements)}
    edge_index, shifts = atoms_neighbor_list(atoms, model.r_max)
    return (
        torch.tensor(np.asarray(atoms.positions, dtype=np.float64)),
        torch.from_numpy(edge_index),
        torch.tensor([type_of[s] for s in symbols], dtype=torch.long),
        torch.tensor(np.asarray(atoms.cell.array, dtype=np.float64)).reshape(1, 3, 3),
        torch.from_numpy(shifts),
    )


class BPNNCalculator(Calculator):
    """ASE calculator running a :class:`BPNN` in Python (energy, forces, stress)."""

    implemented_properties = ["energy", "energies", "forces", "stress", "free_energy"]

    def __init__(self, model: BPNN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        inputs = atoms_inputs(self.model, self.atoms)
        energies, forces, virial = energy_forces_virial(self.model, *inputs)
        e = energies.detach().numpy()
        self.results["energy"] = float(e.sum())
        self.results["free_energy"] = float(e.sum())
        self.results["energies"] = e
        self.results["forces"] = forces.detach().numpy()
        if all(self.atoms.pbc):
            s = -virial.detach().numpy() / self.atoms.get_volume()
            self.results["stress"] = s.flat[[0, 4, 8, 5, 2, 1]]


# ------------------------------------------------------------------ model directory
def save_model(model: BPNN, directory: str | Path) -> Path:
    """Write ``model.json`` and ``weights.pt`` into ``directory``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().clone() for k, v in model.networks.state_dict().items()}
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    torch.save(tensors, tmp)
    tmp.replace(directory / WEIGHTS_FILE)
    tmp = directory / (MODEL_JSON + ".tmp")
    tmp.write_text(json.dumps(model.config(), indent=1) + "\n")
    tmp.replace(directory / MODEL_JSON)
    return directory


def load_model(directory: str | Path) -> BPNN:
    """Read a model directory written by :func:`save_model`.

    Raises
    ------
    FileNotFoundError
        When ``model.json`` or ``weights.pt`` is missing.
    ModelFormatError
        When they are malformed or do not fit each other.
    """
    directory = Path(directory)
    cfg_path, w_path = directory / MODEL_JSON, directory / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} does not exist: {directory} is not a BPNN model directory (train one "
                "with anharmbench.mlip.bpnn.train or read n2p2 files with read_n2p2)"
            )
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{cfg_path} is not valid JSON: {exc}") from exc
    model = BPNN.from_config(cfg)
    tensors = torch.load(w_path, weights_only=True, map_location="cpu")
    if not isinstance(tensors, dict):
        raise ModelFormatError(f"{w_path} does not hold a name -> tensor dictionary")
    expected = model.networks.state_dict()
    if set(tensors) != set(expected) or any(
        tuple(tensors[k].shape) != tuple(v.shape) for k, v in expected.items()
    ):
        raise ModelFormatError(
            f"the tensors in {w_path} do not fit the architecture in {cfg_path} (another "
            "model's weights?)"
        )
    model.networks.load_state_dict({k: v.to(torch.float64) for k, v in tensors.items()})
    return model
