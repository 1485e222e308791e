"""NequIP: training configuration, training, compilation and LAMMPS deployment.

The graph neural network of the paper (NequIP, Batzner et al. 2022) from the ``nequip``
package (0.19.1, torch 2.13), in four steps:

1. :class:`NequIPConfig` -- a typed training configuration with two profiles:
   ``"paper"`` (6 A cutoff, four interaction blocks, E(3)-equivariant features built
   from spherical harmonics of the edge directions and a Bessel radial basis) and
   ``"quick"`` (same cutoff, smaller network, trains on a 2-core CPU in minutes).
   The model is float64 (finite differences of order 4 to 6 need it).
   :meth:`NequIPConfig.to_nequip` turns it into nequip's Hydra/YAML training config.
2. :func:`train_nequip` -- runs ``nequip-train`` on a dataset directory
   (``train.xyz``/``val.xyz``/``test.xyz`` of :mod:`anharmbench.datasets`, labels
   ``energy``/``forces``/``stress``) into a run directory that keeps the config
   (``config.yaml``, ``anharmbench_nequip.json``, Hydra's ``.hydra/``), the metrics
   (``metrics/metrics.csv``), the log (``train.log``) and the checkpoints
   (``best.ckpt``, ``last.ckpt``). Progress is shown; a rerun resumes from
   ``last.ckpt``.
3. :func:`compile_nequip` -- ``nequip-compile CKPT OUT.nequip.pt2 --mode aotinductor
   --device cpu --target pair_nequip`` (30-70 s; needs a C++ compiler; the package runs
   only with this torch version and on CPUs with this machine's instruction set). The
   torch version is then stamped into the package's metadata (``torch_version``) so
   that ``pair_style nequip`` refuses a package from another torch. The TorchScript
   route (``--mode torchscript``) is refused by nequip 0.19.1 on torch >= 2.10, so it is
   not offered here.
4. :func:`nequip_potential` -- the :class:`~anharmbench.potentials.spec.LammpsPotential`
   (``pair_style nequip``, ``plugins/nequip``) that the ASE calculator, the batch
   evaluator, the displacement generator's decks and MD use; :func:`nequip_parity`
   -- energy/force parity on the held-out test split through that pair style.

Command line::

    python -m anharmbench.mlip.nequip train DATASET RUN_DIR [--profile quick|paper]
        [--max-epochs N] [--no-compile] [--overwrite] [--cache DIR]
    python -m anharmbench.mlip.nequip compile RUN_DIR/best.ckpt OUT.nequip.pt2 [--cache DIR]
    python -m anharmbench.mlip.nequip parity OUT.nequip.pt2 DATASET OUT_DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anharmbench.mlip._nequip_api import calculator_from_saved_model
from anharmbench.potentials.spec import LammpsPotential, PotentialError

__all__ = [
    "NequIPConfig",
    "NequIPError",
    "NequIPRun",
    "compile_nequip",
    "nequip_ase_calculator",
    "nequip_parity",
    "nequip_potential",
    "read_package_metadata",
    "train_nequip",
]

#: The project's record of the typed config inside a run directory.
CONFIG_RECORD = "anharmbench_nequip.json"
#: nequip's config file inside a run directory.
NEQUIP_CONFIG = "config.yaml"
#: Checkpoints Lightning writes into the run directory.
BEST_CKPT = "best.ckpt"
LAST_CKPT = "last.ckpt"
#: Written when nequip-train has finished its train, val and test stages.
DONE_MARKER = "finished"
#: Metric nequip reports per validation epoch and the checkpoint callback monitors.
MONITOR = "val0_epoch/weighted_sum"
#: Model name inside an AOTInductor package (nequip-compile's and torch's default).
PACKAGE_MODEL = "model"
#: Metadata keys ``pair_style nequip`` requires (see plugins/nequip/pair_nequip.cpp).
REQUIRED_METADATA = (
    "nequip_aoti_inputs",
    "nequip_aoti_outputs",
    "r_max",
    "type_names",
    "model_dtype",
)

PROFILES = ("paper", "quick")


class NequIPError(RuntimeError):
    """Training or compiling a NequIP model failed; the message quotes the tool's output."""


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class NequIPConfig:
    """Typed NequIP training configuration (defaults: the ``"paper"`` profile).

    The paper (``shared/paper.md``) fixes the cutoff (6 A), the number of interaction
    blocks (4) and the E(3)-equivariant spherical-harmonic/radial-basis construction;
    its supplementary hyperparameters are not part of the project's copy, so the
    remaining values are NequIP's standard choices for a medium model.

    Attributes
    ----------
    profile
        ``"paper"`` or ``"quick"`` (informational; set by :meth:`from_profile`).
    r_max
        Cutoff radius of the graph, Angstrom.
    num_layers
        Interaction (convolution) blocks.
    l_max
        Largest rotation order of the spherical harmonics and features.
    parity
        Keep features of both parities (full E(3) rather than SE(3) equivariance).
    num_features
        Multiplicity of each irrep of the hidden features.
    num_bessels
        Bessel radial basis functions.
    polynomial_cutoff_p
        Exponent of the polynomial cutoff envelope.
    radial_mlp_depth, radial_mlp_width
        Hidden layers and width of the radial network of each block.
    model_dtype
        ``"float64"`` (needed for high-order finite differences) or ``"float32"``.
    seed
        Seed of the model initialisation and of the data order.
    max_epochs
        Training epochs.
    batch_size
        Frames per batch.
    learning_rate
        Adam learning rate (reduced on plateaus of the validation loss).
    lr_patience, lr_factor
        Epochs without improvement before the learning rate is multiplied by ``lr_factor``.
    ema_decay
        Decay of the exponential moving average of the weights used for evaluation.
    energy_weight, force_weight, stress_weight
        Loss weights of the per-atom energy, force and stress MSEs; ``stress_weight = 0``
        trains on energies and forces only.
    threads
        Torch/OpenMP threads of the training process.
    """

    profile: str = "paper"
    r_max: float = 6.0
    num_layers: int = 4
    l_max: int = 2
    parity: bool = True
    num_features: int = 32
    num_bessels: int = 8
    polynomial_cutoff_p: int = 6
    radial_mlp_depth: int = 2
    radial_mlp_width: int = 64
    model_dtype: str = "float64"
    seed: int = 1
    max_epochs: int = 500
    batch_size: int = 5
    learning_rate: float = 0.005
    lr_patience: int = 25
    lr_factor: float = 0.5
    ema_decay: float = 0.999
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 1.0
    threads: int = 2

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ profiles
    @classmethod
    def from_profile(cls, profile: str = "paper", **overrides: Any) -> NequIPConfig:
        """The ``"paper"`` or ``"quick"`` profile, with field overrides.

        ``"quick"``: 6 A cutoff, 2 blocks, ``l_max = 1``, 16 features, 40 epochs,
        float64 -- minutes on a 2-core CPU for datasets of a few hundred frames.
        """
        if profile not in PROFILES:
            raise ValueError(f"unknown NequIP profile {profile!r}; choose one of {PROFILES}")
        base: dict[str, Any] = {"profile": profile}
        if profile == "quick":
            base.update(
                num_layers=2,
                l_max=1,
                num_features=16,
                radial_mlp_depth=1,
                radial_mlp_width=32,
                max_epochs=40,
                learning_rate=0.01,
                lr_patience=5,
                ema_decay=0.99,
            )
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown NequIPConfig field(s) {sorted(unknown)}")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def quick(cls, **overrides: Any) -> NequIPConfig:
        """Shortcut for ``from_profile("quick", ...)``."""
        return cls.from_profile("quick", **overrides)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.model_dtype not in ("float64", "float32"):
            raise ValueError(
                f"model_dtype must be 'float64' or 'float32', got {self.model_dtype!r}"
            )
        if not (np.isfinite(self.r_max) and self.r_max > 0):
            raise ValueError(f"r_max must be a positive length in Angstrom, got {self.r_max}")
        for name in (
            "num_layers",
            "num_features",
            "num_bessels",
            "radial_mlp_depth",
            "radial_mlp_width",
            "max_epochs",
            "batch_size",
            "threads",
            "polynomial_cutoff_p",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.l_max, int) or self.l_max < 0:
            raise ValueError(f"l_max must be a non-negative integer, got {self.l_max!r}")
        if not (self.learning_rate > 0 and 0 < self.lr_factor < 1 and self.lr_patience >= 0):
            raise ValueError("learning_rate must be > 0, lr_factor in (0, 1), lr_patience >= 0")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1], got {self.ema_decay}")
        weights = (self.energy_weight, self.force_weight, self.stress_weight)
        if min(weights) < 0 or self.energy_weight + self.force_weight == 0:
            raise ValueError("loss weights must be >= 0 with energy or force weight > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse: ``NequIPConfig(**d)``)."""
        return dataclasses.asdict(self)

    # ------------------------------------------------------------------ nequip
    def to_nequip(
        self,
        dataset: str | Path,
        run_dir: str | Path,
        type_names: Sequence[str],
        *,
        with_stress: bool = True,
    ) -> dict[str, Any]:
        """nequip 0.19.1's training config (the dict ``nequip-train`` reads as YAML).

        Parameters
        ----------
        dataset
            Dataset directory with ``train.xyz``, ``val.xyz`` and ``test.xyz``.
        run_dir
            Run directory (Hydra's output directory: checkpoints, logs, metrics).
        type_names
            Chemical symbols the model knows, in the model's type order.
        with_stress
            Fit stresses (the frames must carry them) when ``stress_weight > 0``.
        """
        dataset = Path(dataset).resolve()
        run_dir = Path(run_dir).resolve()
        stress = with_stress and self.stress_weight > 0
        names = list(type_names)
        # with per_atom_energy: true, nequip's "total_energy" loss term is per atom
        loss_coeffs: dict[str, float] = {
            "total_energy": self.energy_weight,
            "forces": self.force_weight,
        }
        metric_coeffs: dict[str, float] = {
            "per_atom_energy_mae": self.energy_weight,
            "forces_mae": self.force_weight,
        }
        if stress:
            loss_coeffs["stress"] = self.stress_weight
            metric_coeffs["stress_mae"] = self.stress_weight
        loss_target = "EnergyForceStressLoss" if stress else "EnergyForceLoss"
        metric_target = "EnergyForceStressMetrics" if stress else "EnergyForceMetrics"
        loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": self.batch_size}
        return {
            "run": ["train", "val", "test"],
            "seed": self.seed,
            "hydra": {"run": {"dir": str(run_dir)}},
            "data": {
                "_target_": "nequip.data.datamodule.ASEDataModule",
                "seed": self.seed,
                "train_file_path": str(dataset / "train.xyz"),
                "val_file_path": str(dataset / "val.xyz"),
                "test_file_path": str(dataset / "test.xyz"),
                "transforms": [
                    {
                        "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                        "model_type_names": names,
                        "chemical_species_to_atom_type_map": {n: n for n in names},
                    },
                    {
                        "_target_": "nequip.data.transforms.NeighborListTransform",
                        "r_max": float(self.r_max),
                    },
                ],
                "train_dataloader": {**loader, "shuffle": True},
                "val_dataloader": dict(loader),
                "test_dataloader": dict(loader),
                "stats_manager": {
                    "_target_": "nequip.data.CommonDataStatisticsManager",
                    "type_names": names,
                },
            },
            "trainer": {
                "_target_": "lightning.Trainer",
                "max_epochs": self.max_epochs,
                "check_val_every_n_epoch": 1,
                "log_every_n_steps": 1,
                "accelerator": "cpu",
                "devices": 1,
                "enable_progress_bar": True,
                "logger": {
                    "_target_": "lightning.pytorch.loggers.CSVLogger",
                    "save_dir": str(run_dir),
                    "name": "metrics",
                    "version": "",
                },
                "callbacks": [
                    {
                        "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                        "monitor": MONITOR,
                        "dirpath": str(run_dir),
                        "filename": Path(BEST_CKPT).stem,
                        "save_top_k": 1,
                        "save_last": True,
                    },
                    {
                        "_target_": "lightning.pytorch.callbacks.LearningRateMonitor",
                        "logging_interval": "epoch",
                    },
                ],
            },
            "training_module": {
                "_target_": "nequip.train.EMALightningModule",
                "ema_decay": self.ema_decay,
                "loss": {
                    "_target_": f"nequip.train.{loss_target}",
                    "per_atom_energy": True,
                    "coeffs": loss_coeffs,
                },
                "val_metrics": {
                    "_target_": f"nequip.train.{metric_target}",
                    "coeffs": metric_coeffs,
                },
                "test_metrics": {
                    "_target_": f"nequip.train.{metric_target}",
                    "coeffs": metric_coeffs,
                },
                "optimizer": {"_target_": "torch.optim.Adam", "lr": self.learning_rate},
                "lr_scheduler": {
                    "scheduler": {
                        "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                        "factor": self.lr_factor,
                        "patience": self.lr_patience,
                    },
                    "monitor": MONITOR,
                    "interval": "epoch",
                    "frequency": 1,
                },
                "model": {
                    "_target_": "nequip.model.NequIPGNNModel",
                    "seed": self.seed,
                    "model_dtype": self.model_dtype,
                    "type_names": names,
                    "r_max": float(self.r_max),
                    "num_layers": self.num_layers,
                    "l_max": self.l_max,
                    "parity": self.parity,
                    "num_features": self.num_features,
                    "num_bessels": self.num_bessels,
                    "polynomial_cutoff_p": self.polynomial_cutoff_p,
                    "radial_mlp_depth": self.radial_mlp_depth,
                    "radial_mlp_width": self.radial_mlp_width,
                    "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
                    "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
                    "per_type_energy_scales": "${training_data_stats:forces_rms}",
                },
            },
        }


# ---------------------------------------------------------------------- training
@dataclass(frozen=True)
class NequIPRun:
    """Outcome of :func:`train_nequip`.

    Attributes
    ----------
    run_dir
        The run directory.
    best_checkpoint
        ``best.ckpt`` (lowest validation loss; EMA weights).
    last_checkpoint
        ``last.ckpt`` (resume point).
    model
        The compiled ``.nequip.pt2`` package, or None when not compiled.
    seconds
        Wall time of this call's training, s.
    epochs
        Epochs completed (all calls together).
    metrics
        Last validation and test metrics nequip logged (name -> value; eV, eV/A, eV/A^3).
    type_names
        The model's type names (chemical symbols), in its type order.
    """

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    model: Path | None
    seconds: float
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    type_names: tuple[str, ...] = ()


def _nequip_script(name: str) -> list[str]:
    """Command that runs the nequip console script ``name`` with this interpreter."""
    exe = Path(sys.executable).parent / name
    if exe.is_file():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        raise NequIPError(
            f"{name} not found beside {sys.executable} or on PATH; install NequIP with "
            "pip install -e '.[nequip]'"
        )
    return [found]


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class _EpochBar:
    """A tqdm bar of training epochs, read from Lightning's ``Epoch N`` progress text.

    The tool's own output (Lightning's per-batch bars, Hydra and nequip INFO lines) goes
    to the log file only; this bar is what a person follows on the terminal.
    """

    _EPOCH = re.compile(rb"Epoch (\d+)")

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=True)

    def __call__(self, chunk: bytes) -> None:
        found = self._EPOCH.findall(chunk)
        if found:
            # "Epoch N" is shown while epoch N (0-based) runs: N epochs are done
            done = min(int(found[-1]), self.bar.total)
            if done > self.bar.n:
                self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _run_tool(
    cmd: list[str],
    what: str,
    log: Path,
    *,
    threads: int,
    progress: bool | Callable[[bytes], None],
    timeout: float | None,
) -> None:
    """Run a nequip tool; its output goes to ``log``.

    ``progress``: ``True`` echoes the output on stderr too; a callable receives every
    chunk of output instead (e.g. :class:`_EpochBar`); ``False`` shows nothing.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(threads)
        )
        if proc.stdout is None:
            raise NequIPError(f"could not capture the output of {what}")
        start = time.monotonic()
        try:
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
                fh.write(chunk)
                if callable(progress):
                    progress(chunk)
                elif progress:
                    sys.stderr.write(chunk.decode(errors="replace"))
                    sys.stderr.flush()
                if timeout is not None and time.monotonic() - start > timeout:
                    proc.kill()
                    raise NequIPError(f"{what} took longer than {timeout:.0f} s; see {log}")
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise NequIPError(f"{what} failed (exit {code}); last lines of {log}:\n{tail}")


#: Lightning's CSVLogger starts ``metrics/metrics.csv`` afresh when training resumes from
#: a checkpoint; the rows of earlier calls are kept beside it under this prefix.
_EARLIER_METRICS = "metrics-before-resume-"


def _keep_metrics(run_dir: Path) -> None:
    """Move ``metrics/metrics.csv`` aside before a resume, numbered in call order."""
    path = run_dir / "metrics" / "metrics.csv"
    if path.is_file():
        k = len(list(path.parent.glob(f"{_EARLIER_METRICS}*.csv")))
        os.replace(path, path.with_name(f"{_EARLIER_METRICS}{k:03d}.csv"))


def _metrics(run_dir: Path) -> tuple[int, dict[str, float]]:
    """Epochs completed and the last value of every metric, over all training calls.

    Reads the rows kept by :func:`_keep_metrics` (earlier calls, oldest first), then
    ``metrics/metrics.csv``; Lightning numbers epochs from the start of the run in both.
    """
    folder = run_dir / "metrics"
    paths = [*sorted(folder.glob(f"{_EARLIER_METRICS}*.csv")), folder / "metrics.csv"]
    import csv

    last: dict[str, float] = {}
    epochs = 0
    for path in paths:
        if not path.is_file():
            continue
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            for key, value in row.items():
                if value in (None, ""):
                    continue
                try:
                    number = float(value)
                except ValueError:
                    continue
                if key != "epoch":
                    last[key] = number
            # epochs completed = rows holding a training-epoch loss
            if row.get("epoch") and any(
                k.startswith("train_loss_epoch/") and v for k, v in row.items()
            ):
                epochs = max(epochs, int(float(row["epoch"])) + 1)
    return epochs, last


def train_nequip(
    dataset: str | Path,
    run_dir: str | Path,
    config: NequIPConfig | None = None,
    *,
    type_names: Sequence[str] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    compile_model: bool = True,
    progress: bool = True,
    compile_cache: str | Path | None = None,
    timeout: float | None = None,
) -> NequIPRun:
    """Train a NequIP model on a dataset directory (and compile it for LAMMPS).

    Parameters
    ----------
    dataset
        Dataset directory of :mod:`anharmbench.datasets` (``train.xyz``, ``val.xyz``,
        ``test.xyz`` with energies, forces and stresses).
    run_dir
        Run directory; created if needed.
    config
        Training configuration (default: the ``"paper"`` profile).
    type_names
        Model type names in order (default: the species of the training split, sorted).
    resume
        Continue an interrupted run from ``last.ckpt`` of the same configuration.
    overwrite
        Delete an existing run directory of a different configuration first.
    compile_model
        Compile ``best.ckpt`` to ``model.nequip.pt2`` (:func:`compile_nequip`) afterwards.
    progress
        Show a bar of epochs on stderr; nequip's own output (Lightning bars, Hydra and
        nequip log lines) goes to ``anharmbench_train.log`` in ``run_dir`` in any case.
    compile_cache
        Directory of compiled templates shared by models of one architecture
        (:func:`compile_nequip`'s ``cache``).
    timeout
        Seconds after which training is stopped with :class:`NequIPError`.

    Raises
    ------
    anharmbench.mlip.data.DatasetError
        When the dataset is missing, incomplete or unlabelled.
    NequIPError
        When the run directory holds another configuration, or nequip fails.
    """
    from anharmbench.mlip.data import load_splits

    config = config if config is not None else NequIPConfig()
    dataset = Path(dataset).resolve()
    run_dir = Path(run_dir).resolve()
    splits = load_splits(dataset, require=("train", "val", "test"))
    names = tuple(type_names) if type_names is not None else splits.species
    with_stress = all(
        a.calc is not None and "stress" in a.calc.results for a in (*splits.train, *splits.val)
    )
    record = {
        "format": "anharmbench-nequip-run-1",
        "config": config.to_dict(),
        "dataset": str(dataset),
        "type_names": list(names),
        "with_stress": with_stress,
    }

    record_path = run_dir / CONFIG_RECORD
    if record_path.is_file():
        old = json.loads(record_path.read_text())
        if {k: old.get(k) for k in record if k != "format"} != {
            k: v for k, v in record.items() if k != "format"
        }:
            if not overwrite:
                raise NequIPError(
                    f"run directory {run_dir} holds a training run of another configuration "
                    f"or dataset (see {record_path}); choose a new directory or pass "
                    "overwrite=True (--overwrite) to start again"
                )
            shutil.rmtree(run_dir)
        elif not resume:
            if not overwrite:
                raise NequIPError(
                    f"run directory {run_dir} already holds this run; pass resume=True to "
                    "continue it or overwrite=True to start again"
                )
            shutil.rmtree(run_dir)
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise NequIPError(
                f"run directory {run_dir} is not empty and holds no NequIP run of anharmbench; "
                "choose a new directory or pass overwrite=True"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1) + "\n")

    import yaml

    nequip_cfg = config.to_nequip(dataset, run_dir, names, with_stress=with_stress)
    (run_dir / NEQUIP_CONFIG).write_text(yaml.safe_dump(nequip_cfg, sort_keys=False))

    best, last = run_dir / BEST_CKPT, run_dir / LAST_CKPT
    finished = best.is_file() and (run_dir / DONE_MARKER).is_file()
    start = time.perf_counter()
    if not finished:
        cmd = [
            *_nequip_script("nequip-train"),
            "-cp",
            str(run_dir),
            "-cn",
            Path(NEQUIP_CONFIG).stem,
        ]
        if last.is_file():
            cmd.append(f"++ckpt_path={last}")
            _keep_metrics(run_dir)
        bar = _EpochBar(config.max_epochs, "nequip-train") if progress else None
        try:
            _run_tool(
                cmd,
                "nequip-train",
                run_dir / "anharmbench_train.log",
                threads=config.threads,
                progress=bar or False,
                timeout=timeout,
            )
        finally:
            if bar is not None:
                bar.close()
        if not best.is_file():
            raise NequIPError(f"nequip-train finished without writing {best}")
        (run_dir / DONE_MARKER).write_text("train, val and test finished\n")
    seconds = time.perf_counter() - start
    epochs, metrics = _metrics(run_dir)

    model = None
    if compile_model:
        # the compile log goes to its file: the terminal keeps the epoch bar only
        model = compile_nequip(
            best, run_dir / "model.nequip.pt2", threads=config.threads, progress=False,
            cache=compile_cache,
        )
    return NequIPRun(
        run_dir=run_dir,
        best_checkpoint=best,
        last_checkpoint=last,
        model=model,
        seconds=seconds,
        epochs=epochs,
        metrics=metrics,
        type_names=names,
    )


# ---------------------------------------------------------------------- compile
def _package_metadata_entries(zf: zipfile.ZipFile) -> list[str]:
    return [
        n
        for n in zf.namelist()
        if f"/data/aotinductor/{PACKAGE_MODEL}/" in n and n.endswith("_metadata.json")
    ]


def read_package_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an AOTInductor package (``.pt2``), as ``pair_style nequip`` reads it.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    PotentialError
        When it is not an AOTInductor package holding a model named ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NequIP model file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _package_metadata_entries(zf)
            if not entries:
                raise PotentialError(
                    f"{path} holds no AOTInductor model named {PACKAGE_MODEL!r}; compile the "
                    "checkpoint with nequip-compile --mode aotinductor --target pair_nequip"
                )
            wrapper = [n for n in entries if n.endswith(".wrapper_metadata.json")]
            data = json.loads(zf.read((wrapper or entries)[0]))
    except zipfile.BadZipFile as exc:
        raise PotentialError(f"{path} is not an AOTInductor package (.pt2): {exc}") from exc
    return {str(k): str(v) for k, v in data.items()}


def stamp_package(path: str | Path, extra: dict[str, str]) -> None:
    """Add ``extra`` keys to the metadata of an AOTInductor package, in place.

    The package is a zip archive; its metadata files are rewritten, every other entry
    is copied unchanged (same names, same compression).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        targets = set(_package_metadata_entries(src))
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename in targets:
                meta = json.loads(data)
                meta.update({str(k): str(v) for k, v in extra.items()})
                data = json.dumps(meta).encode()
            dst.writestr(info, data, compress_type=info.compress_type)
    os.replace(tmp, path)


def compile_nequip(
    checkpoint: str | Path,
    output: str | Path | None = None,
    *,
    threads: int = 2,
    progress: bool = False,
    timeout: float | None = 1800.0,
    cache: str | Path | None = None,
) -> Path:
    """Compile a checkpoint into an AOTInductor package for ``pair_style nequip``.

    Runs ``nequip-compile CKPT OUT --mode aotinductor --device cpu --target pair_nequip``
    (about a minute; needs a C++ compiler) and stamps ``torch_version`` into the package
    metadata. The package runs only with this torch version and on CPUs with this
    machine's instruction set (inductor compiles with ``-march=native``).

    Parameters
    ----------
    checkpoint
        ``best.ckpt`` (or any nequip checkpoint / ``.nequip.zip`` package).
    output
        Output file, must end with ``.nequip.pt2`` (default: beside the checkpoint,
        ``model.nequip.pt2``).
    threads
        Threads of the compile process.
    progress
        Show nequip-compile's log on stderr.
    timeout
        Seconds before giving up.
    cache
        Directory of compiled templates (:mod:`anharmbench.mlip.aoti_cache`): a
        checkpoint of the same architecture as an earlier one reuses its compilation
        (:mod:`anharmbench.mlip.nequip_compile`); when that fails, it is compiled afresh.

    Returns
    -------
    pathlib.Path
        The package.
    """
    import torch

    checkpoint = Path(checkpoint).resolve()
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    out = Path(output) if output is not None else checkpoint.with_name("model.nequip.pt2")
    out = out.resolve()
    if not out.name.endswith(".nequip.pt2"):
        raise ValueError(f"the compiled model's name must end with .nequip.pt2, got {out.name}")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise NequIPError("nequip-compile needs a C++ compiler (c++ or g++) on PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name[: -len(".nequip.pt2")] + ".partial.nequip.pt2")
    arguments = [str(checkpoint), str(partial), "--mode", "aotinductor", "--device", "cpu",
                 "--target", "pair_nequip"]
    commands = [[*_nequip_script("nequip-compile"), *arguments]]
    if cache is not None:
        cached = [sys.executable, "-m", "anharmbench.mlip.nequip_compile",
                  str(Path(cache).resolve()), *arguments]
        commands.insert(0, cached)
    for k, cmd in enumerate(commands):
        try:
            _run_tool(
                cmd,
                "nequip-compile",
                out.with_name(out.name + ".log"),
                threads=threads,
                progress=progress,
                timeout=timeout,
            )
            break
        except NequIPError:
            partial.unlink(missing_ok=True)
            if k == len(commands) - 1:
                raise
    stamp_package(partial, {"torch_version": torch.__version__.split("+")[0]})
    os.replace(partial, out)
    return out


# ---------------------------------------------------------------------- deploy
def nequip_potential(
    model_pt2: str | Path, elements: Sequence[str], *, name: str | None = None
) -> LammpsPotential:
    """LAMMPS potential deploying a compiled NequIP model through ``pair_style nequip``.

    Parameters
    ----------
    model_pt2
        The ``.nequip.pt2`` package of :func:`compile_nequip`.
    elements
        Chemical symbols in LAMMPS type order (type 1 = ``elements[0]``); each must be
        one of the model's ``type_names``.
    name
        Name in reports (default ``nequip:<file stem>``).

    Raises
    ------
    FileNotFoundError
        When the package does not exist.
    PotentialError
        When it is not a package for ``pair_style nequip`` or lacks an element.
    """
    path = Path(model_pt2).resolve()
    meta = read_package_metadata(path)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise PotentialError(
            f"{path} lacks the metadata {missing} that pair_style nequip needs; compile it "
            "with nequip-compile ... --mode aotinductor --target pair_nequip"
        )
    model_types = meta["type_names"].split()
    unknown = [e for e in elements if e not in model_types]
    if unknown:
        raise PotentialError(
            f"NequIP model {path} has no type(s) {unknown} (its type_names: {model_types})"
        )
    # LAMMPS splits commands at whitespace unless the word is quoted
    quoted = f'"{path}"' if any(c.isspace() for c in str(path)) else str(path)
    stem = path.name[: -len(".nequip.pt2")] if path.name.endswith(".nequip.pt2") else path.stem
    return LammpsPotential(
        elements=tuple(elements),
        pair_style="nequip",
        pair_coeff=(f"* * {quoted} {' '.join(elements)}",),
        files=(str(path),),
        name=name or f"nequip:{stem}",
    )


def nequip_ase_calculator(checkpoint: str | Path, *, device: str = "cpu") -> Any:
    """nequip's own ASE calculator on the eager model of a checkpoint (the reference path).

    Returns
    -------
    nequip.integrations.ase.NequIPCalculator
        Energies (eV), forces (eV/A) and stress (eV/A^3, ASE sign).
    """
    from nequip.integrations.ase import NequIPCalculator

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    import warnings

    # type names are chemical symbols in anharmbench's models (identity species map)
    with warnings.catch_warnings():
        # nequip's global set-up calls a torch.jit API that torch 2.13 deprecates
        warnings.filterwarnings("ignore", message=".*set_fusion_strategy.*")
        return calculator_from_saved_model(NequIPCalculator, checkpoint, device)


def nequip_parity(
    model_pt2: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    *,
    elements: Sequence[str] | None = None,
    split: str = "test",
) -> dict[str, Path]:
    """Energy/force parity of a compiled model on a dataset split, through LAMMPS.

    Writes ``parity.json``, ``parity_energy.csv``, ``parity_forces.csv`` and
    ``parity.png`` (:func:`anharmbench.mlip.parity.write_parity`) into ``out_dir``.
    """
    from anharmbench.lammps import LammpsCalculator
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.parity import evaluate_parity, write_parity

    splits = load_splits(dataset, require=(split,))
    frames = getattr(splits, split)
    species = tuple(elements) if elements is not None else splits.species
    potential = nequip_potential(model_pt2, species)
    calc = LammpsCalculator(potential)

    def predict(atoms: Any) -> tuple[float, np.ndarray]:
        atoms.calc = calc
        return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces())

    result = evaluate_parity(potential.name, predict, frames)
    return write_parity(result, out_dir)


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m anharmbench.mlip.nequip train|compile|parity ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m anharmbench.mlip.nequip",
        description="train, compile and evaluate NequIP models",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a dataset directory (then compile)")
    t.add_argument("dataset")
    t.add_argument("run_dir")
    t.add_argument("--profile", choices=PROFILES, default="quick")
    t.add_argument("--max-epochs", type=int, default=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--no-compile", action="store_true")
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--overwrite", action="store_true")
    c = sub.add_parser("compile", help="compile a checkpoint for pair_style nequip")
    c.add_argument("checkpoint")
    c.add_argument("output")
    for q in (t, c):
        q.add_argument("--cache", default=None, metavar="DIR",
                       help="compiled templates: a checkpoint of an architecture compiled "
                       "before reuses that compilation")
    p = sub.add_parser("parity", help="energy/force parity on the test split via LAMMPS")
    p.add_argument("model")
    p.add_argument("dataset")
    p.add_argument("out_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            overrides = {
                k: v
                for k, v in (
                    ("max_epochs", args.max_epochs),
                    ("threads", args.threads),
                    ("seed", args.seed),
                )
                if v is not None
            }
            cfg = NequIPConfig.from_profile(args.profile, **overrides)
            run = train_nequip(
                args.dataset,
                args.run_dir,
                cfg,
                resume=not args.no_resume,
                overwrite=args.overwrite,
                compile_model=not args.no_compile,
                compile_cache=args.cache,
            )
            print(f"trained {run.epochs} epochs in {run.seconds:.1f} s: {run.best_checkpoint}")
            if run.model is not None:
                print(f"compiled model: {run.model}")
                written = nequip_parity(
                    run.model, args.dataset, run.run_dir / "parity", elements=run.type_names
                )
                print(f"test parity: {written['json']}")
        elif args.command == "compile":
            print(compile_nequip(args.checkpoint, args.output, progress=True,
                                 cache=args.cache))
        else:
            written = nequip_parity(args.model, args.dataset, args.out_dir)
            print(json.dumps(json.loads(written["json"].read_text())["stats"], indent=1))
    except (NequIPError, FileNotFoundError, PotentialError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
