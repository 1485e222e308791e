"""Training and deployment of each model kind inside the study.

One small adapter per kind maps the study's :class:`~anharmbench.study.config.ModelConfig`
(profile, ``settings`` overrides) onto the trainer of :mod:`anharmbench.mlip` and returns
the :class:`~anharmbench.potentials.spec.LammpsPotential` that deploys the trained model
through the project's plugins (``pair_style quip`` for GAP, ``pair_style nequip`` for
NequIP and the BPNN). Every kind gets the same held-out parity evaluation, through LAMMPS,
written with :func:`anharmbench.mlip.parity.write_parity`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anharmbench.potentials.spec import LammpsPotential
from anharmbench.study.config import ModelConfig, StudyConfig
from anharmbench.study.labels import model_label
from anharmbench.study.profiles import replica
from anharmbench.study.runner import Stage

__all__ = ["deployed_potential", "training_stage"]

MODEL_DIR = "model"
PARITY_DIR = "parity"


@dataclass(frozen=True)
class _Kind:
    #: ``(dataset, model dir, profile, settings, seed, compile cache) -> summary``
    train: Callable[[Path, Path, str, dict[str, Any], int, Path | None], dict[str, Any]]
    potential: Callable[[Path, tuple[str, ...]], LammpsPotential]


# ---------------------------------------------------------------- GAP (QUIP)
#: The study's quick profile on top of GapConfig.quick(): three frames of 192 atoms, the
#: three-body term at 4 A and a smaller SOAP, because a GAP with angle_3b at 6 A costs
#: ~0.7 s per 12-atom force call here, i.e. about an hour for the derivative sets alone.
#: The model's ``settings`` override these.
GAP_STUDY_QUICK: dict[str, Any] = {
    "max_atoms": 576,
    "three_body": {"cutoff": 4.0, "cutoff_transition_width": 0.5},
    "soap": {"n_max": 4, "l_max": 3, "n_sparse": 100},
}


def _gap_train(dataset: Path, model_dir: Path, profile: str, settings: dict[str, Any],
               seed: int, cache: Path | None) -> dict[str, Any]:
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.gap import GapConfig, train_gap

    del cache  # GAP is not compiled

    if load_splits(dataset).kind == "dft":
        # DFT displacement datasets carry energies and forces, no stresses
        settings = {"use_virials": False, **settings}

    if profile == "paper":
        cfg = GapConfig.paper(**{"seed": seed, **settings})
    else:
        cfg = GapConfig.quick(**{"seed": seed, **GAP_STUDY_QUICK, **settings})
    model = train_gap(dataset, model_dir, cfg, progress=True)
    return {"model": str(getattr(model, "xml", model_dir))}


def _gap_potential(stage_dir: Path, elements: tuple[str, ...]) -> LammpsPotential:
    from anharmbench.mlip.gap import gap_potential

    return gap_potential(stage_dir / MODEL_DIR, elements)


# ---------------------------------------------------------------- NequIP
#: The study's quick profile on top of NequIPConfig.quick(): 20 epochs (a few minutes per
#: model on 2 cores; the model's ``settings`` override it).
NEQUIP_STUDY_QUICK: dict[str, Any] = {"max_epochs": 20}


def _nequip_train(dataset: Path, model_dir: Path, profile: str, settings: dict[str, Any],
                  seed: int, cache: Path | None) -> dict[str, Any]:
    from anharmbench.mlip.nequip import NequIPConfig, train_nequip

    if profile == "paper":
        cfg = NequIPConfig.paper(**{"seed": seed, **settings})
    else:
        cfg = NequIPConfig.quick(**{"seed": seed, **NEQUIP_STUDY_QUICK, **settings})
    run = train_nequip(dataset, model_dir, cfg, compile_model=True, progress=True,
                      compile_cache=cache)
    if run.model is None:
        raise RuntimeError(f"NequIP training in {model_dir} produced no compiled model")
    return {"model": str(run.model), "epochs": run.epochs, "metrics": run.metrics}


def _nequip_potential(stage_dir: Path, elements: tuple[str, ...]) -> LammpsPotential:
    from anharmbench.mlip.nequip import nequip_potential

    found = sorted((stage_dir / MODEL_DIR).rglob("*.nequip.pt2"))
    if not found:
        raise FileNotFoundError(f"no compiled NequIP model (*.nequip.pt2) in {stage_dir}")
    return nequip_potential(found[0], elements)


# ---------------------------------------------------------------- BPNN
def _bpnn_train(dataset: Path, model_dir: Path, profile: str, settings: dict[str, Any],
                seed: int, cache: Path | None) -> dict[str, Any]:
    from anharmbench.mlip.bpnn.export import export_pt2
    from anharmbench.mlip.bpnn.train import TrainConfig, train

    factory = TrainConfig.paper if profile == "paper" else TrainConfig.quick
    cfg = factory(**{"seed": seed, **settings})
    res = train(dataset, model_dir, cfg)
    package = export_pt2(model_dir, cache=cache)
    return {"model": str(package), "best_epoch": res.best_epoch, "stop": res.stop_reason,
            "seconds_per_epoch": res.seconds_per_epoch}


def _bpnn_potential(stage_dir: Path, elements: tuple[str, ...]) -> LammpsPotential:
    from anharmbench.mlip.bpnn.export import bpnn_potential

    return bpnn_potential(stage_dir / MODEL_DIR, elements)


KINDS: dict[str, _Kind] = {
    "gap": _Kind(_gap_train, _gap_potential),
    "nequip": _Kind(_nequip_train, _nequip_potential),
    "bpnn": _Kind(_bpnn_train, _bpnn_potential),
}


def deployed_potential(model: ModelConfig, stage_dir: Path, elements: tuple[str, ...]
                       ) -> LammpsPotential:
    """The LAMMPS potential of a model trained in ``stage_dir``."""
    return KINDS[model.kind].potential(stage_dir, elements)


def training_stage(model: ModelConfig, config: StudyConfig, dataset: Path, dataset_key: str,
                   elements: tuple[str, ...], seed: int | None = None,
                   compile_cache: Path | None = None) -> Stage:
    """Train ``model`` on ``dataset`` with ``seed`` (default ``config.seed``), then its
    held-out parity through LAMMPS.

    ``compile_cache`` holds compiled templates (:mod:`anharmbench.mlip.aoti_cache`): the
    seeds and datasets of one architecture share one compilation. It is not an input of
    the stage: a package built from a template behaves as a freshly compiled one (both
    are checked against the eager model).

    The first seed's stage is ``train-<name>-<dataset>``, a further seed's
    ``train-<name>-<dataset>-seed<seed>``.
    """
    kind = KINDS[model.kind]
    profile = model.profile or config.profile
    seed = config.seed if seed is None else seed
    mark = replica(seed, config)
    label = model_label(model.name, model.dataset, mark)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.lammps import LammpsCalculator
        from anharmbench.mlip.data import load_splits
        from anharmbench.mlip.parity import evaluate_parity, write_parity

        summary = kind.train(dataset, directory / MODEL_DIR, profile, dict(model.settings),
                             seed, compile_cache)
        potential = kind.potential(directory, elements)
        splits = load_splits(dataset, require=("test",))
        calc = LammpsCalculator(potential)

        def predict(atoms: Any) -> tuple[float, Any]:
            atoms.calc = calc
            return atoms.get_potential_energy(), atoms.get_forces()

        par = evaluate_parity(label, predict, splits.test)
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
