"""Training a BPNN on a dataset directory (energies and forces, early stopping, resume).

Loss of a batch of frames (dimensionless)::

    L = w_E * mean_frames((E_pred - E_ref)^2 / N^2) / s_E^2
      + w_F * mean_components((F_pred - F_ref)^2) / s_F^2

with ``s_E`` the standard deviation of the training energies per atom and ``s_F`` the
RMS of the training force components (so both terms start near 1 whatever the units
or temperature). Adam, learning rate reduced on plateaus of the validation loss,
early stopping when the validation loss has not improved for ``patience`` epochs; the
best model (by validation loss) is kept.

Forces in the loss are ``-J^T dE/dG`` with ``J`` the analytic derivatives of the symmetry
functions by the edge vectors (:meth:`~.descriptor.Descriptor.with_jacobian`, n2p2's
approach): autograd runs only through the networks. The functions and ``J`` depend on
the positions only, so they are computed once and cached when they fit in
``cache_mb`` (3 MB per 12-atom frame, about 25 MB per 96-atom frame); otherwise they
are recomputed for every batch (same numbers, slower).

Before the first epoch: the symmetry-function scaling statistics are taken over the
training atoms (as n2p2's ``nnp-scaling``), the per-element energy shift is the mean
training energy per atom (least squares over compositions when they vary) and the
output scale is the RMS training force component times 1 A.

Files in the output directory:

* ``model.json``, ``weights.pt`` -- the best model so far (see :mod:`.model`);
* ``n2p2/`` -- the same model as n2p2 files (at the end);
* ``checkpoint.pt`` -- the last epoch's state (networks, optimizer, scheduler,
  shuffling generator, history, best networks), a ``torch.save`` of plain tensors and
  numbers read with ``weights_only=True``; a rerun with the same settings resumes;
* ``train_config.json`` -- the settings (:class:`~.config.TrainConfig`) and the
  dataset's fingerprint;
* ``history.csv`` -- per-epoch losses and validation errors.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from anharmbench.mlip.bpnn.config import (
    RESUMABLE_CHANGES,
    TrainConfig,
    TrainingError,
    TrainResult,
)
from anharmbench.mlip.bpnn.descriptor import DescriptorJacobian
from anharmbench.mlip.bpnn.model import (
    BPNN,
    NetworkConfig,
    atoms_inputs,
    edge_vectors,
    forces_virial_from_edge_gradient,
    save_model,
)
from anharmbench.mlip.bpnn.n2p2 import read_symmetry_functions, write_n2p2
from anharmbench.mlip.bpnn.scaling import SymmetryFunctionScaling
from anharmbench.mlip.bpnn.symmetry_functions import (
    SymmetryFunctionSet,
    default_set,
    default_tho2_set,
)
from anharmbench.mlip.data import DatasetSplits, load_splits

__all__ = ["train"]

CHECKPOINT = "checkpoint.pt"
CONFIG_JSON = "train_config.json"
HISTORY_CSV = "history.csv"
TRAIN_LOG = "train.log"


# ------------------------------------------------------------------ data
@dataclass
class _Frame:
    vectors: torch.Tensor  # (E, 3) edge vectors
    edge_index: torch.Tensor  # (2, E)
    types: torch.Tensor  # (N,)
    energy: float
    forces: torch.Tensor  # (N, 3)
    cache: tuple[torch.Tensor, DescriptorJacobian] | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.types.shape[0])

    def descriptors(self, model: BPNN) -> tuple[torch.Tensor, DescriptorJacobian]:
        """Raw functions and their Jacobian (cached or computed now)."""
        if self.cache is not None:
            return self.cache
        return model.descriptor.with_jacobian(self.vectors, self.edge_index, self.types)


def _frames(model: BPNN, frames: Sequence[Atoms]) -> list[_Frame]:
    out = []
    for atoms in frames:
        pos, ei, types, cell, shifts = atoms_inputs(model, atoms)
        out.append(
            _Frame(
                vectors=edge_vectors(pos, ei, cell, shifts),
                edge_index=ei,
                types=types,
                energy=float(atoms.calc.results["energy"]),
                forces=torch.tensor(np.asarray(atoms.calc.results["forces"], dtype=np.float64)),
            )
        )
    return out


def _fill_cache(model: BPNN, frames: Sequence[_Frame], budget_mb: float) -> bool:
    """Precompute the descriptors of all frames when they fit in ``budget_mb``."""
    if not frames or budget_mb <= 0:
        return False
    first = frames[0].descriptors(model)
    per_frame = first[1].nbytes() + first[0].numel() * 8
    if per_frame * len(frames) > budget_mb * 1e6:
        return False
    frames[0].cache = first
    for f in frames[1:]:
        f.cache = f.descriptors(model)
    return True


@dataclass
class _Batch:
    frames: list[_Frame]
    n_atoms: torch.Tensor  # (B,)
    energy: torch.Tensor  # (B,)
    forces: torch.Tensor  # (sum N, 3)


def _batch(frames: Sequence[_Frame]) -> _Batch:
    return _Batch(
        frames=list(frames),
        n_atoms=torch.tensor([f.n_atoms for f in frames], dtype=torch.float64),
        energy=torch.tensor([f.energy for f in frames], dtype=torch.float64),
        forces=torch.cat([f.forces for f in frames]),
    )


def _predict(
    model: BPNN, batch: _Batch, *, create_graph: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame energies ``(B,)`` and forces ``(sum N, 3)``.

    Forces are ``J^T dE/dG`` with the analytic descriptor Jacobian ``J``: autograd runs
    through the networks only (twice when ``create_graph``, for the force loss).
    """
    feats = [f.descriptors(model) for f in batch.frames]
    g = torch.cat([fe[0] for fe in feats]).detach().requires_grad_(True)
    types = torch.cat([f.types for f in batch.frames])
    with torch.enable_grad():
        e_atoms = model.energies_from_features(g, types)
        (de_dg,) = torch.autograd.grad(e_atoms.sum(), [g], create_graph=create_graph)
    sizes = [f.n_atoms for f in batch.frames]
    forces, energies = [], []
    for f, (_, jac), v, e in zip(
        batch.frames, feats, de_dg.split(sizes), e_atoms.split(sizes), strict=True
    ):
        grad = jac.edge_gradient(f.edge_index[0], v)
        forces.append(forces_virial_from_edge_gradient(f.vectors, f.edge_index, grad, f.n_atoms)[0])
        energies.append(e.sum())
    return torch.stack(energies), torch.cat(forces)


# ------------------------------------------------------------------ setup
def _elements(config: TrainConfig, splits: DatasetSplits) -> tuple[str, ...]:
    present = {s for a in (*splits.train, *splits.val) for s in a.get_chemical_symbols()}
    if config.elements is not None:
        missing = sorted(present - set(config.elements))
        if missing:
            raise TrainingError(
                f"the dataset holds {missing}, which are not among the model elements "
                f"{list(config.elements)}"
            )
        return config.elements
    order: list[str] = []
    for s in splits.train[0].get_chemical_symbols():
        if s not in order:
            order.append(s)
    return tuple(order) + tuple(sorted(present - set(order)))


def _sf_set(config: TrainConfig, elements: tuple[str, ...]) -> SymmetryFunctionSet:
    if config.symmetry_functions == "tho2":
        # the paper's Th-O set; other crystals (e.g. a DFT dataset of NaCl) get the same
        # construction for their own elements
        if set(elements) == {"O", "Th"}:
            return default_tho2_set()
        return default_set(elements)
    path = Path(config.symmetry_functions)
    if not path.is_file():
        raise TrainingError(
            f"symmetry_functions={config.symmetry_functions!r} is neither 'tho2' nor an "
            "n2p2 input.nn file"
        )
    return read_symmetry_functions(path)


def _scaling(model: BPNN, frames: Sequence[_Frame], config: TrainConfig) -> None:
    values: dict[str, list[np.ndarray]] = {el: [] for el in model.elements}
    with torch.no_grad():
        for f in frames:
            if f.cache is not None:
                g = f.cache[0].numpy()
            else:
                g = model.descriptor(f.vectors, f.edge_index, f.types).numpy()
            types = f.types.numpy()
            for t, el in enumerate(model.elements):
                values[el].append(g[types == t, : model.descriptor.n_features[t]])
    stacked = {el: np.concatenate(v) for el, v in values.items()}
    model.set_scaling(
        SymmetryFunctionScaling.from_values(
            stacked, model.fingerprint, config.scaling, config.scale_min, config.scale_max
        )
    )


def _energy_normalisation(model: BPNN, frames: Sequence[_Frame]) -> tuple[float, float]:
    """Set shift and scale; return (std of energy per atom, RMS force component)."""
    counts = np.array(
        [[int((f.types == t).sum()) for t in range(len(model.elements))] for f in frames],
        dtype=float,
    )
    energies = np.array([f.energy for f in frames])
    n = counts.sum(1)
    per_atom = energies / n
    if np.linalg.matrix_rank(counts) == counts.shape[1]:
        shift = np.linalg.lstsq(counts, energies, rcond=None)[0]
    else:
        shift = np.full(counts.shape[1], per_atom.mean())
    model.set_energy_shift(dict(zip(model.elements, shift.tolist(), strict=True)))
    f_rms = float(torch.sqrt(torch.mean(torch.cat([f.forces for f in frames]) ** 2)))
    model.energy_scale.fill_(f_rms if f_rms > 0 else 1.0)
    e_std = float(per_atom.std())
    return (e_std if e_std > 1e-12 else 1.0), (f_rms if f_rms > 0 else 1.0)


def _dataset_fingerprint(splits: DatasetSplits) -> str:
    h = hashlib.sha256()
    for frames in (splits.train, splits.val):
        for a in frames:
            h.update(np.ascontiguousarray(a.positions, dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(a.cell.array, dtype=np.float64).tobytes())
            h.update(" ".join(a.get_chemical_symbols()).encode())
            h.update(np.float64(a.calc.results["energy"]).tobytes())
    return h.hexdigest()[:16]


def _log_line(rec: dict[str, float], max_epochs: int, best: int) -> str:
    return (
        f"epoch {int(rec['epoch']):5d}/{max_epochs}  loss {rec['loss']:.3e}  "
        f"val {rec['val_loss']:.3e}  E {1e3 * rec['val_energy_rmse']:.3f} meV/atom  "
        f"F {1e3 * rec['val_force_rmse']:.2f} meV/A  lr {rec['lr']:.1e}  best {best}  "
        f"{rec['seconds']:.2f} s"
    )


# ------------------------------------------------------------------ training
def train(
    dataset: str | Path | DatasetSplits,
    directory: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a BPNN on ``dataset`` (energies and forces), writing ``directory``.

    Parameters
    ----------
    dataset
        A dataset directory (``anharmbench dataset idmd|refmd``) or loaded splits; needs
        training and validation frames.
    directory
        Output (model) directory.
    config
        Settings (default :meth:`TrainConfig.paper`).
    resume
        Continue from ``checkpoint.pt`` when the directory holds a run with the same
        settings and data (an error when they differ); ``False`` starts afresh.
    log
        Receives the progress lines (default: appended to ``train.log`` in ``directory``).

    Returns
    -------
    TrainResult
    """
    config = config or TrainConfig.paper()
    directory = Path(directory)
    splits = (
        dataset
        if isinstance(dataset, DatasetSplits)
        else load_splits(dataset, require=("train", "val"))
    )
    if not splits.val:
        raise TrainingError("the dataset has no validation frames (needed for early stopping)")
    if log is None:
        log = _LogFile(directory / TRAIN_LOG)
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(total=config.max_epochs, desc="bpnn-train", unit="epoch", leave=True)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        return _train(splits, directory, config, resume, log, bar)
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()


class _LogFile:
    """Appends lines to a file, opened on the first line: a run refused before it
    logs anything leaves no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a") as fh:
            fh.write(line + "\n")


def _train(
    splits: DatasetSplits,
    directory: Path,
    config: TrainConfig,
    resume: bool,
    log: Callable[[str], None],
    bar: Any = None,
) -> TrainResult:
    directory.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "dataset": _dataset_fingerprint(splits)}
    ckpt_path = directory / CHECKPOINT
    cfg_path = directory / CONFIG_JSON
    state = None
    if resume and ckpt_path.is_file() and cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        changed = {
            k
            for k in set(old.get("config", {})) | set(record["config"])
            if old.get("config", {}).get(k) != record["config"].get(k)
        } - RESUMABLE_CHANGES
        if changed or old.get("dataset") != record["dataset"]:
            what = sorted(changed) or ["the dataset"]
            raise TrainingError(
                f"{directory} holds a run with other settings ({', '.join(what)}); resume it "
                "with its own settings, use another directory, or pass resume=False"
            )
        state = torch.load(ckpt_path, weights_only=True, map_location="cpu")
    cfg_path.write_text(json.dumps(record, indent=1) + "\n")

    torch.manual_seed(config.seed)
    elements = _elements(config, splits)
    model = BPNN(elements, _sf_set(config, elements),
                 NetworkConfig(config.hidden, config.activation))
    train_frames = _frames(model, splits.train)
    val_frames = _frames(model, splits.val)
    cached = _fill_cache(model, train_frames, config.cache_mb)
    cached = _fill_cache(model, val_frames, config.cache_mb) and cached
    _scaling(model, train_frames, config)
    s_e, s_f = _energy_normalisation(model, train_frames)
    w_e = config.energy_weight / s_e**2
    w_f = config.force_weight / s_f**2

    optimizer = torch.optim.Adam(model.networks.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience
    )
    gen = torch.Generator().manual_seed(config.seed + 1)
    history: list[dict[str, float]] = []
    best = {"epoch": 0, "val_loss": math.inf}
    best_state = {k: v.clone() for k, v in model.networks.state_dict().items()}
    start = 0
    if state is not None:
        model.networks.load_state_dict(state["networks"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        history = [dict(h) for h in state["history"]]
        best = {"epoch": int(state["best_epoch"]), "val_loss": float(state["best_val_loss"])}
        best_state = state["best_networks"]
        start = int(state["epoch"])
        log(f"resuming {directory} after epoch {start} (best epoch {best['epoch']})")
        if bar is not None:
            bar.update(start)
    else:
        n_params = sum(p.numel() for p in model.networks.parameters())
        log(
            f"BPNN {list(elements)}: inputs {model.descriptor.n_features}, hidden "
            f"{list(config.hidden)}, {n_params} parameters; {len(train_frames)} training, "
            f"{len(val_frames)} validation frames{' (descriptors cached)' if cached else ''} "
            f"-> {directory}"
        )
    val_batch = _batch(val_frames)

    def losses(batch: _Batch, energy: torch.Tensor, forces: torch.Tensor) -> torch.Tensor:
        le = torch.mean(((energy - batch.energy) / batch.n_atoms) ** 2)
        lf = torch.mean((forces - batch.forces) ** 2)
        return w_e * le + w_f * lf

    stop_reason = "max_epochs"
    for epoch in range(start + 1, config.max_epochs + 1):
        if epoch - best["epoch"] > config.patience and best["epoch"] > 0:
            stop_reason = "early_stopping"
            break
        if optimizer.param_groups[0]["lr"] < config.min_learning_rate:
            stop_reason = "min_learning_rate"
            break
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_frames), generator=gen).tolist()
        total, count = 0.0, 0
        for k in range(0, len(order), config.batch_size):
            batch = _batch([train_frames[i] for i in order[k : k + config.batch_size]])
            optimizer.zero_grad()
            energy, forces = _predict(model, batch, create_graph=True)
            loss = losses(batch, energy, forces)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch.energy)
            count += len(batch.energy)
        model.eval()
        energy, forces = _predict(model, val_batch, create_graph=False)
        with torch.no_grad():
            val_loss = float(losses(val_batch, energy, forces))
            e_rmse = float(
                torch.sqrt(torch.mean(((energy - val_batch.energy) / val_batch.n_atoms) ** 2))
            )
            f_rmse = float(torch.sqrt(torch.mean((forces - val_batch.forces) ** 2)))
        scheduler.step(val_loss)
        rec = {
            "epoch": float(epoch),
            "loss": total / max(count, 1),
            "val_loss": val_loss,
            "val_energy_rmse": e_rmse,
            "val_force_rmse": f_rmse,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - t0,
        }
        history.append(rec)
        if val_loss < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": val_loss}
            best_state = {k: v.detach().clone() for k, v in model.networks.state_dict().items()}
            save_model(model, directory)
        log(_log_line(rec, config.max_epochs, best["epoch"]))
        if bar is not None:
            bar.set_postfix(val_loss=f"{val_loss:.2e}", best=best["epoch"], refresh=False)
            bar.update(1)
        tmp = directory / (CHECKPOINT + ".tmp")
        torch.save(
            {
                "epoch": epoch,
                "networks": model.networks.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": gen.get_state(),
                "history": history,
                "best_epoch": best["epoch"],
                "best_val_loss": best["val_loss"],
                "best_networks": best_state,
            },
            tmp,
        )
        tmp.replace(ckpt_path)
    model.networks.load_state_dict(best_state)
    model.eval()
    save_model(model, directory)
    write_n2p2(model, directory / "n2p2")
    _write_history(directory / HISTORY_CSV, history)
    log(
        f"stopped ({stop_reason}) after {len(history)} epochs; best epoch {best['epoch']} "
        f"(validation loss {best['val_loss']:.3e})"
    )
    return TrainResult(directory, model, history, best["epoch"], stop_reason, start)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    keys = ["epoch", "loss", "val_loss", "val_energy_rmse", "val_force_rmse", "lr", "seconds"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for h in history:
            w.writerow([int(h["epoch"])] + [repr(float(h[k])) for k in keys[1:]])
