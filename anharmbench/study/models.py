"""Training and deployment of each model kind inside the study.

Each kind is trained, deployed and evaluated by its :class:`~anharmbench.mlip.trainer.Trainer`
(:data:`anharmbench.mlip.trainer.TRAINERS`); this module adds the study's defaults
(:data:`STUDY_QUICK`) beneath a model's ``settings`` and runs it as a stage. Every kind
gets the same held-out parity evaluation, through its deployment (``pair_style quip`` for
GAP, ``pair_style nequip`` for NequIP and the BPNN), written with
:func:`anharmbench.mlip.parity.write_parity`.

:func:`deployed_models` gives the instances of a model the study measures (one per
training seed, a universal preset through LAMMPS or ASE, a given potential), and
:func:`model_windows` a derivative set with the model's own step windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anharmbench.mlip.trainer import trainer
from anharmbench.potentials.spec import LammpsPotential
from anharmbench.study.config import DerivativeSetConfig, ModelConfig, StudyConfig
from anharmbench.study.derivative_stages import CalculatorSpec
from anharmbench.study.labels import model_label
from anharmbench.study.profiles import model_seeds, replica
from anharmbench.study.runner import Stage, StageRunner

if TYPE_CHECKING:
    from anharmbench.study.pipeline import DatasetProvider

__all__ = ["deployed_models", "deployed_potential", "model_windows", "training_stage"]

MODEL_DIR = "model"
PARITY_DIR = "parity"


# ---------------------------------------------------------------- study defaults
#: The study's quick profile on top of GapConfig.quick(): three frames of 192 atoms, the
#: three-body term at 4 A and a smaller SOAP, because a GAP with angle_3b at 6 A costs
#: ~0.7 s per 12-atom force call here, i.e. about an hour for the derivative sets alone.
#: The model's ``settings`` override these.
GAP_STUDY_QUICK: dict[str, Any] = {
    "max_atoms": 576,
    "three_body": {"cutoff": 4.0, "cutoff_transition_width": 0.5},
    "soap": {"n_max": 4, "l_max": 3, "n_sparse": 100},
}

#: The study's quick profile on top of NequIPConfig.quick(): 20 epochs (a few minutes per
#: model on 2 cores; the model's ``settings`` override it).
NEQUIP_STUDY_QUICK: dict[str, Any] = {"max_epochs": 20}

#: Each kind's study settings under the quick profile (the paper profile adds none).
STUDY_QUICK: dict[str, dict[str, Any]] = {"gap": GAP_STUDY_QUICK, "nequip": NEQUIP_STUDY_QUICK}


def study_config(kind: str, dataset: Path, profile: str, settings: dict[str, Any],
                 seed: int) -> Any:
    """The trainer's configuration of ``kind`` with the study's defaults beneath the
    model's ``settings``."""
    settings = dict(settings)
    if kind == "gap":
        from anharmbench.mlip.data import load_splits

        if load_splits(dataset).kind == "dft":
            # DFT displacement datasets carry energies and forces, no stresses
            settings = {"use_virials": False, **settings}
    quick = STUDY_QUICK.get(kind, {}) if profile != "paper" else {}
    return trainer(kind).config(profile, **{"seed": seed, **quick, **settings})


def deployed_potential(model: ModelConfig, stage_dir: Path, elements: tuple[str, ...]
                       ) -> LammpsPotential:
    """The LAMMPS potential of a model trained in ``stage_dir``."""
    return trainer(model.kind).deploy(stage_dir / MODEL_DIR, elements)


def training_stage(model: ModelConfig, config: StudyConfig, dataset: Path, dataset_key: str,
                   elements: tuple[str, ...], seed: int | None = None,
                   compile_cache: Path | None = None, overwrite: bool = False) -> Stage:
    """Train ``model`` on ``dataset`` with ``seed`` (default ``config.seed``), then its
    held-out parity through LAMMPS.

    ``compile_cache`` holds compiled templates (:mod:`anharmbench.mlip.aoti_cache`): the
    seeds and datasets of one architecture share one compilation. It is not an input of
    the stage: a package built from a template behaves as a freshly compiled one (both
    are checked against the eager model).

    ``overwrite`` discards a model already in the stage directory instead of resuming it
    (not an input of the stage either).

    The first seed's stage is ``train-<name>-<dataset>``, a further seed's
    ``train-<name>-<dataset>-seed<seed>``.
    """
    kind = trainer(model.kind)
    profile = model.profile or config.profile
    seed = config.seed if seed is None else seed
    mark = replica(seed, config)
    label = model_label(model.name, model.dataset, mark)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.mlip.parity import write_parity

        cfg = study_config(model.kind, dataset, profile, dict(model.settings), seed)
        summary = kind.train(dataset, directory / MODEL_DIR, cfg, compile_cache=compile_cache,
                             overwrite=overwrite)
        par = kind.parity(directory / MODEL_DIR, dataset, elements=elements, name=label)
        write_parity(par, directory / PARITY_DIR)
        stats = par.stats
        summary.update({
            "parity": str(directory / PARITY_DIR),
            "test_energy_rmse_eV_per_atom": stats["energy"]["rmse"],
            "test_force_rmse_eV_per_A": stats["forces"]["rmse"],
            "line": f"{label}: test RMSE {stats['energy']['rmse']:.2e} eV/atom, "
            f"{stats['forces']['rmse']:.2e} eV/A",
        })
        return summary

    inputs = {"kind": model.kind, "profile": profile, "settings": model.settings,
              "dataset": dataset_key, "seed": seed, "elements": list(elements)}
    suffix = "" if mark is None else f"-seed{mark}"
    return Stage(f"train-{model.name}-{model.dataset}{suffix}", inputs, run)


# ---------------------------------------------------------------- study instances
def deployed_models(model: ModelConfig, config: StudyConfig,
                    datasets: DatasetProvider, elements: tuple[str, ...],
                    runner: StageRunner, parity: dict[str, Path]
                    ) -> Iterator[tuple[str, LammpsPotential | None, dict[str, Any],
                                        str | CalculatorSpec | None]]:
    """``(label, LAMMPS potential or None, stage upstream, ASE calculator spec)`` of each
    instance of ``model``: one per training seed for a trained model (trained here on that
    seed's dataset, its parity added to ``parity``), else the model itself."""
    if not model.trained:
        label = model_label(model.name, model.dataset)
        if model.kind == "lammps":
            yield label, model.lammps_potential(model.name), {}, None
        elif model.universal:
            yield (label, *_universal_model(model, elements))
        else:
            yield label, None, {}, model.calculator
        return
    if model.dataset not in datasets:
        raise ValueError(f"model {model_label(model.name, model.dataset)}: dataset "
                         f"{model.dataset!r} is disabled in datasets")
    for seed in model_seeds(model, config):
        label = model_label(model.name, model.dataset, replica(seed, config))
        data_dir, data_key = datasets.get(model.dataset, seed)
        tres = runner.run(training_stage(model, config, data_dir, data_key, elements, seed,
                                         runner.root / "cache" / "aoti"))
        if "parity" in tres.summary:
            parity[label] = Path(tres.summary["parity"])
        yield (label, deployed_potential(model, tres.directory, elements),
               {"model": tres.key}, None)


def universal_preset(model: ModelConfig) -> str:
    """The preset of :mod:`anharmbench.mlip.universal` a universal model names: its kind
    (``chgnet``, ``sevennet``) and ``settings: {model, modal}`` (default: the family's
    default weights)."""
    from anharmbench.mlip.universal import resolve_preset

    given, modal = model.settings.get("model"), model.settings.get("modal")
    return resolve_preset(model.kind, None if given is None else str(given),
                          None if modal is None else str(modal))


def _universal_model(model: ModelConfig, elements: tuple[str, ...]
                     ) -> tuple[LammpsPotential | None, dict[str, Any], CalculatorSpec | None]:
    """(LAMMPS potential or None, stage upstream, ASE calculator spec) of a preset.

    A SevenNet preset runs as ``pair_style e3gnn`` when that plugin is built, else through
    its ASE calculator (as CHGNet always does); the choice is part of the stage's key, and
    so is the preset's record (weights file, checksum, modal).
    """
    from anharmbench.mlip import universal

    name = universal_preset(model)
    version = universal.model_version(name)
    if model.kind == "sevennet" and _has_pair_style("e3gnn"):
        return (universal.sevennet_lammps_potential(elements=elements, preset=name),
                {"model": version, "route": "lammps"}, None)
    # the family's default preset keeps the factory-only spec (and stage key) it always had
    args = () if name == universal.resolve_preset(model.kind) else (name,)
    return (None, {"model": version, "route": "ase"},
            CalculatorSpec(universal.UNIVERSAL_MODELS[name].factory, args))


def _has_pair_style(style: str) -> bool:
    """Whether the plugin of ``style`` is built (building the plugins on first use)."""
    from anharmbench.plugins import ensure_plugins

    return any(p.name.startswith(style) for p in ensure_plugins([style]))


def model_windows(dset: DerivativeSetConfig, model: ModelConfig) -> DerivativeSetConfig:
    """The set with the model's own step windows: ``settings: {h_ranges: {n: [lo, hi]}}``
    or, for a universal preset, the windows measured for its float32 surface."""
    windows: dict[int, tuple[float, float]] = {}
    if model.universal:
        from anharmbench.mlip.universal import STEP_WINDOWS

        windows.update(STEP_WINDOWS.get(model.kind, {}))
    given = model.settings.get("h_ranges") if not model.trained else None
    if given:
        windows.update({int(n): (float(w[0]), float(w[1])) for n, w in given.items()})
    windows = {n: w for n, w in windows.items() if n in dset.orders}
    if not windows:
        return dset
    return dset.model_copy(update={"h_ranges": {**(dset.h_ranges or {}), **windows}})
