"""n2p2 interchange: ``input.nn``, ``scaling.data`` and ``weights.NNN.data``.

:func:`write_n2p2` writes a :class:`~anharmbench.mlip.bpnn.model.BPNN` so that n2p2
(``nnp-predict``) and LAMMPS's ``pair_style hdnnp`` run it::

    pair_style hdnnp 10.0 dir ./n2p2/ showew no showewsum 0 resetew no maxew 0 &
               cflength 1.0 cfenergy 1.0
    pair_coeff * * Th O          # element of each LAMMPS type (type 1 = Th here)

:func:`read_n2p2` reads such a directory (ours or n2p2's) back into a model.

Conventions followed (n2p2 2.x, 2G-HDNNP):

* elements are indexed by atomic number; each element's symmetry functions are used in
  n2p2's sorted order (see :mod:`.symmetry_functions`), which is the order of the
  ``scaling.data`` lines (``e_index sf_index G_min G_max G_mean G_sigma``, 1-based) and
  of the input layer in ``weights.NNN.data`` (``NNN`` = atomic number, 3 digits);
* weights: layer by layer, for each neuron of the previous layer the weights to every
  neuron of the next (``a``), then that layer's biases (``b``); only the first column
  is read;
* energies: ``E = sum_i NN(G_i) + sum_i atom_energy(e_i)``, or with the normalization
  keywords (``mean_energy``, ``conv_energy``, ``conv_length``)
  ``E = sum_i NN(G_i) / conv_energy + N mean_energy + sum_i atom_energy(e_i)``.

Our models' energy scale and per-element shifts are folded into the linear output layer
(so the files need no normalization keywords); with a non-linear output activation they
are written as ``conv_energy``/``atom_energy`` instead. ``scaling.data`` carries the
model's fingerprint in its header; reading a scaling file whose fingerprint or layout
does not match ``input.nn`` is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from ase.data import atomic_numbers

from anharmbench.mlip.bpnn.model import BPNN, NetworkConfig
from anharmbench.mlip.bpnn.scaling import SCALING_TYPES, ScalingError, SymmetryFunctionScaling
from anharmbench.mlip.bpnn.symmetry_functions import (
    CutoffFunction,
    SymmetryFunction,
    SymmetryFunctionSet,
    n2p2_element_order,
)

__all__ = [
    "N2P2Error",
    "read_n2p2",
    "read_symmetry_functions",
    "weights_file_name",
    "write_n2p2",
]

INPUT_NN = "input.nn"
SCALING_DATA = "scaling.data"
_FP_RE = re.compile(r"fingerprint\s+([0-9a-f]{16})")
_UNSUPPORTED_KEYS = {
    "element_hidden_layers_short",
    "element_nodes_short",
    "element_activation_short",
}


class N2P2Error(ValueError):
    """n2p2 files are missing, malformed, inconsistent, or use unsupported features."""


def weights_file_name(element: str) -> str:
    """``weights.NNN.data`` with ``NNN`` the atomic number of ``element``."""
    return f"weights.{atomic_numbers[element]:03d}.data"


def _e(x: float) -> str:
    return f"{float(x): .16E}"


# ------------------------------------------------------------------ writing
def write_n2p2(model: BPNN, directory: str | Path) -> dict[str, Path]:
    """Write ``input.nn``, ``scaling.data`` and ``weights.NNN.data`` for ``model``.

    Parameters
    ----------
    model
        A model with scaling statistics.
    directory
        Output folder (created).

    Returns
    -------
    dict[str, pathlib.Path]
        The written files (``input.nn``, ``scaling.data``, and one per element).
    """
    if model.scaling is None:
        raise N2P2Error("the model has no scaling statistics (scaling.data); train it first")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    els = n2p2_element_order(model.elements)
    net = model.network_config
    scale = float(model.energy_scale)
    shift = dict(zip(model.elements, model.energy_shift.tolist(), strict=True))
    fold = net.output_activation == "l"
    fp = model.fingerprint
    lines = [
        f"# n2p2 settings written by anharmbench: BPNN, fingerprint {fp}",
        "# units: eV and Angstrom. The energy scale and per-element shifts of the model are",
        "# " + ("folded into the linear output layers." if fold else "given below."),
        f"number_of_elements {len(els)}",
        f"elements {' '.join(els)}",
        f"cutoff_type {model.sf_set.cutoff.n2p2_type} {model.sf_set.cutoff.alpha!r}",
    ]
    lines += list(SCALING_TYPES[model.scaling.kind])
    lines += [
        f"scale_min_short {model.scaling.s_min!r}",
        f"scale_max_short {model.scaling.s_max!r}",
        f"global_hidden_layers_short {len(net.hidden)}",
        f"global_nodes_short {' '.join(str(h) for h in net.hidden)}",
        f"global_activation_short {' '.join([net.activation] * len(net.hidden))} "
        f"{net.output_activation}",
    ]
    if net.normalize_nodes:
        lines.append("normalize_nodes")
    if not fold and (scale != 1.0 or any(v != 0.0 for v in shift.values())):
        lines += [
            "mean_energy 0.0",
            f"conv_energy {1.0 / scale!r}",
            "conv_length 1.0",
            "conv_charge 1.0",
        ]
        lines += [f"atom_energy {el} {shift[el]!r}" for el in els]
    for el in els:
        lines.append(f"# {el}: {model.sf_set.n_features(el)} symmetry functions (n2p2 order)")
        lines += [sf.n2p2_line() for sf in model.sf_set.for_element(el, model.elements)]
    out = {INPUT_NN: directory / INPUT_NN}
    out[INPUT_NN].write_text("\n".join(lines) + "\n")

    sc = [
        f"# scaling.data written by anharmbench: BPNN, fingerprint {fp}",
        "# e_index sf_index sf_min sf_max sf_mean sf_sigma",
    ]
    for e, el in enumerate(els):
        for k, row in enumerate(model.scaling.stats[el]):
            sc.append(f"{e + 1:4d} {k + 1:4d} " + " ".join(_e(v) for v in row))
    out[SCALING_DATA] = directory / SCALING_DATA
    out[SCALING_DATA].write_text("\n".join(sc) + "\n")

    for el in els:
        t = model.elements.index(el)
        layers = list(model.networks[t].layers)
        weights = [layer.weight.detach().clone() for layer in layers]
        biases = [layer.bias.detach().clone() for layer in layers]
        if fold:
            weights[-1] = weights[-1] * scale
            biases[-1] = biases[-1] * scale + shift[el]
        name = weights_file_name(el)
        out[name] = directory / name
        out[name].write_text(_weights_text(el, fp, weights, biases))
    return out


def _weights_text(
    element: str, fp: str, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> str:
    rows = [
        f"# weights of the {element} network written by anharmbench: BPNN, fingerprint {fp}",
        "# connection t index l_s n_s l_e n_e  (a = weight from neuron n_s of layer l_s to",
        "# neuron n_e of layer l_e; b = bias of neuron n_s of layer l_s)",
    ]
    count = 0
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True), start=1):
        n_out, n_in = w.shape
        for j in range(n_in):
            for k in range(n_out):
                count += 1
                rows.append(
                    f"{_e(w[k, j])} a {count:9d} {layer - 1:5d} {j + 1:5d} {layer:5d} {k + 1:5d}"
                )
        for k in range(n_out):
            count += 1
            rows.append(f"{_e(b[k])} b {count:9d} {layer:5d} {k + 1:5d}")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------ reading
def _settings(path: Path) -> list[tuple[int, str, list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (an n2p2 model directory needs it)")
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            toks = line.split()
            out.append((number, toks[0], toks[1:]))
    return out


def _one(settings: list[tuple[int, str, list[str]]], key: str, path: Path) -> list[str] | None:
    found = [args for _, k, args in settings if k == key]
    if len(found) > 1:
        raise N2P2Error(f"keyword {key!r} appears {len(found)} times in {path}")
    return found[0] if found else None


def _float(args: list[str] | None, key: str, path: Path) -> float:
    try:
        return float(args[0])  # type: ignore[index]
    except (TypeError, IndexError, ValueError) as exc:
        raise N2P2Error(f"keyword {key!r} in {path} needs a number, got {args}") from exc


def _symmetry_function_set(
    settings: list[tuple[int, str, list[str]]], path: Path
) -> SymmetryFunctionSet:
    """The ``cutoff_type`` and ``symfunction_short`` lines of parsed ``input.nn`` settings.

    ``cutoff_type`` is required, as in n2p2: its keyword list puts it among those
    "required for prediction" and ``Mode::setupCutoff`` stops with ``Keyword
    "cutoff_type" not found`` without it (only its ``alpha`` has a default, 0).
    """
    cut_args = _one(settings, "cutoff_type", path)
    if cut_args is None:
        raise N2P2Error(
            f"{path} has no 'cutoff_type' line, which n2p2 requires (one cutoff function "
            "for all symmetry functions); add e.g. 'cutoff_type 1' (cosine) or "
            "'cutoff_type 6 0.0' (poly2, alpha 0)"
        )
    number = next(n for n, k, _ in settings if k == "cutoff_type")
    try:
        cutoff = CutoffFunction.from_n2p2(cut_args)
    except ValueError as exc:
        raise N2P2Error(f"{path}:{number}: {exc}") from exc
    functions = []
    for number, key, args in settings:
        if key == "symfunction_short":
            try:
                functions.append(SymmetryFunction.from_n2p2(args))
            except ValueError as exc:
                raise N2P2Error(f"{path}:{number}: {exc}") from exc
    if not functions:
        raise N2P2Error(f"{path} defines no symfunction_short")
    try:
        return SymmetryFunctionSet(tuple(functions), cutoff)
    except ValueError as exc:
        raise N2P2Error(f"{path}: {exc}") from exc


def read_symmetry_functions(path: str | Path) -> SymmetryFunctionSet:
    """The ``symfunction_short`` lines and ``cutoff_type`` of an n2p2 ``input.nn``.

    Lets a training run use a set of symmetry functions written for n2p2.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    N2P2Error
        When ``cutoff_type`` is missing (n2p2 requires it) or appears twice, or a line
        is malformed or unsupported, or there is no ``symfunction_short``.
    """
    path = Path(path)
    return _symmetry_function_set(_settings(path), path)


def read_n2p2(directory: str | Path, elements: Iterable[str] | None = None) -> BPNN:
    """Read an n2p2 directory (``input.nn``, ``scaling.data``, ``weights.NNN.data``).

    Parameters
    ----------
    directory
        The folder.
    elements
        Type order of the returned model (default: n2p2's, by atomic number); must be
        a permutation of the file's elements.

    Raises
    ------
    FileNotFoundError
        When a file is missing.
    N2P2Error
        Malformed or unsupported settings, or weights that do not fit the architecture.
    ScalingError
        When ``scaling.data`` belongs to another model (fingerprint or layout).
    """
    directory = Path(directory)
    path = directory / INPUT_NN
    st = _settings(path)
    for number, key, _ in st:
        if key in _UNSUPPORTED_KEYS:
            raise N2P2Error(
                f"{path}:{number}: {key!r} (per-element architectures) is not supported; "
                "anharmbench's BPNN uses one architecture for all elements"
            )
    nnp_type = _one(st, "nnp_type", path)
    if nnp_type is not None and nnp_type[0] not in ("2G-HDNNP", "0"):
        raise N2P2Error(f"{path}: nnp_type {nnp_type[0]} is not supported (only 2G-HDNNP)")
    el_args = _one(st, "elements", path)
    if not el_args:
        raise N2P2Error(f"{path} has no 'elements' line")
    file_elements = n2p2_element_order(el_args)
    n_el = _one(st, "number_of_elements", path)
    if n_el is None or int(_float(n_el, "number_of_elements", path)) != len(file_elements):
        raise N2P2Error(f"{path}: number_of_elements does not match elements {file_elements}")
    sf_set = _symmetry_function_set(st, path)
    model_elements = tuple(elements) if elements is not None else file_elements
    if sorted(model_elements) != sorted(file_elements):
        raise N2P2Error(
            f"elements {list(model_elements)} are not those of {path} ({list(file_elements)})"
        )
    try:
        sf_set.check_elements(model_elements)
    except ValueError as exc:
        raise N2P2Error(f"{path}: {exc}") from exc

    flags = {k for _, k, _ in st}
    scale, center = "scale_symmetry_functions" in flags, "center_symmetry_functions" in flags
    if scale and center:
        kind = "scale_center"
    elif scale:
        kind = "scale"
    elif center:
        kind = "center"
    elif "scale_symmetry_functions_sigma" in flags:
        kind = "scale_sigma"
    else:
        kind = "none"
    smin_args = _one(st, "scale_min_short", path)
    smax_args = _one(st, "scale_max_short", path)
    s_min = _float(smin_args, "scale_min_short", path) if smin_args is not None else 0.0
    s_max = _float(smax_args, "scale_max_short", path) if smax_args is not None else 1.0

    n_hidden_args = _one(st, "global_hidden_layers_short", path)
    nodes = _one(st, "global_nodes_short", path)
    acts = _one(st, "global_activation_short", path)
    if n_hidden_args is None or nodes is None or acts is None:
        raise N2P2Error(
            f"{path} needs global_hidden_layers_short, global_nodes_short and "
            "global_activation_short"
        )
    n_hidden = int(_float(n_hidden_args, "global_hidden_layers_short", path))
    if len(nodes) != n_hidden or len(acts) != n_hidden + 1:
        raise N2P2Error(f"{path}: inconsistent global network topology keywords")
    if len(set(acts[:-1])) != 1:
        raise N2P2Error(f"{path}: hidden layers with different activations are not supported")
    try:
        network = NetworkConfig(
            tuple(int(n) for n in nodes), acts[0], acts[-1], "normalize_nodes" in flags
        )
    except ValueError as exc:
        raise N2P2Error(f"{path}: {exc}") from exc

    norm_keys = [k for k in ("mean_energy", "conv_energy", "conv_length") if k in flags]
    energy_scale, mean_energy = 1.0, 0.0
    if norm_keys:
        if len(norm_keys) != 3:
            raise N2P2Error(
                f"{path}: give all or none of mean_energy, conv_energy, conv_length "
                f"(found {norm_keys})"
            )
        mean_energy = _float(_one(st, "mean_energy", path), "mean_energy", path)
        conv = _float(_one(st, "conv_energy", path), "conv_energy", path)
        if conv == 0.0:
            raise N2P2Error(f"{path}: conv_energy is 0")
        energy_scale = 1.0 / conv
    shift = dict.fromkeys(model_elements, mean_energy)
    for number, key, args in st:
        if key == "atom_energy":
            if len(args) < 2 or args[0] not in shift:
                raise N2P2Error(f"{path}:{number}: atom_energy needs a model element and a value")
            shift[args[0]] += _float(args[1:], "atom_energy", path)

    model = BPNN(model_elements, sf_set, network, None, energy_scale, shift)
    model.set_scaling(_read_scaling(directory / SCALING_DATA, model, kind, s_min, s_max))
    for el in file_elements:
        _read_weights(directory / weights_file_name(el), model, el)
    return model


def _read_scaling(
    path: Path, model: BPNN, kind: str, s_min: float, s_max: float
) -> SymmetryFunctionScaling:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (an n2p2 model directory needs it)")
    text = path.read_text()
    fp = model.fingerprint
    for line in text.splitlines():
        if line.startswith("#"):
            m = _FP_RE.search(line)
            if m and m.group(1) != fp:
                raise ScalingError(
                    f"{path} was written for another model (fingerprint {m.group(1)}, the "
                    f"input.nn beside it has {fp}); copy the scaling.data of this model"
                )
    rows = [line.split() for line in text.splitlines() if line.strip() and line[0] != "#"]
    els = n2p2_element_order(model.elements)
    expected = [(e, k) for e, el in enumerate(els) for k in range(model.sf_set.n_features(el))]
    if len(rows) != len(expected):
        raise ScalingError(
            f"{path} has {len(rows)} entries but input.nn defines {len(expected)} symmetry "
            "functions: the scaling file belongs to another model"
        )
    stats: dict[str, list[list[float]]] = {el: [] for el in els}
    for n, (row, (e, k)) in enumerate(zip(rows, expected, strict=True), start=1):
        try:
            ei, ki = int(row[0]), int(row[1])
            values = [float(v) for v in row[2:6]]
        except (IndexError, ValueError) as exc:
            raise ScalingError(f"{path}: entry {n} is malformed: {' '.join(row)!r}") from exc
        if (ei, ki) != (e + 1, k + 1) or len(values) < 3:
            raise ScalingError(
                f"{path}: entry {n} is for element {ei} function {ki}, expected element "
                f"{e + 1} function {k + 1}: the scaling file belongs to another model"
            )
        if len(values) == 3:
            values.append(0.0)  # old files carry no sigma
        gmin, gmax, gmean, _ = values
        tol = 1e-12 * max(1.0, abs(gmin), abs(gmax))
        if not gmin - tol <= gmean <= gmax + tol:
            raise ScalingError(
                f"{path}: entry {n} has min {gmin}, mean {gmean}, max {gmax} out of order"
            )
        stats[els[e]].append(values)
    return SymmetryFunctionScaling(
        kind, s_min, s_max, {el: np.array(v) for el, v in stats.items()}, fp
    )


def _read_weights(path: Path, model: BPNN, element: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (weights of the {element} network)")
    values = []
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            values.append(float(line.split()[0]))
        except ValueError as exc:
            raise N2P2Error(f"{path}:{n}: not a number: {line!r}") from exc
    net = model.networks[model.elements.index(element)]
    expected = sum(layer.weight.numel() + layer.bias.numel() for layer in net.layers)
    if len(values) != expected:
        raise N2P2Error(
            f"{path} holds {len(values)} connections, the {element} network of input.nn "
            f"({net.n_in} inputs, hidden {list(model.network_config.hidden)}) needs {expected}"
        )
    flat = torch.tensor(values, dtype=torch.float64)
    pos = 0
    with torch.no_grad():
        for layer in net.layers:
            n_out, n_in = layer.weight.shape
            w = flat[pos : pos + n_in * n_out].reshape(n_in, n_out).T
            pos += n_in * n_out
            layer.weight.copy_(w)
            layer.bias.copy_(flat[pos : pos + n_out])
            pos += n_out
