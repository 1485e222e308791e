"""``anharmbench train | convert``: train and deploy an MLIP; exchange BPNN models."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_model_commands"]


def _cmd_train(args: argparse.Namespace) -> int:
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.trainer import TRAINERS
    from anharmbench.study.config import ModelConfig, StudyConfig
    from anharmbench.study.models import MODEL_DIR, training_stage

    kind = TRAINERS[args.model]
    dataset = Path(args.dataset)
    out = Path(args.out)
    if args.parity_only:
        return _train_parity_only(args, dataset, out / MODEL_DIR)
    splits = load_splits(dataset, require=("test",) if kind.pretrained else ("train", "test"))
    settings = {o.name: getattr(args, o.name) for o in kind.options
                if getattr(args, o.name) is not None}
    model = ModelConfig(name=args.model.upper(), kind=args.model, settings=settings,
                        dataset=splits.kind if splits.kind in ("idmd", "refmd") else None)
    config = StudyConfig(profile=args.profile, seed=args.seed, models=[model])
    stage = training_stage(model, config, dataset, str(dataset.resolve()), splits.species,
                           compile_cache=args.cache, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    summary = stage.run(out)
    print(summary["line"])
    print(f"model in {out / MODEL_DIR}, parity in {summary['parity']}")
    return 0


def _train_parity_only(args: argparse.Namespace, dataset: Path, model_dir: Path) -> int:
    """``anharmbench train MODEL DATASET OUT --parity-only``: the model in ``model_dir``
    on a split of ``dataset`` (which may be another dataset than it was trained on)."""
    from anharmbench.mlip.data import load_splits
    from anharmbench.mlip.parity import write_parity
    from anharmbench.mlip.trainer import trainer

    splits = load_splits(dataset, require=(args.split,))
    result = trainer(args.model).parity(model_dir, dataset, split=args.split,
                                        elements=splits.species)
    files = write_parity(result, model_dir.parent / f"parity-{dataset.resolve().name}-{args.split}")
    stats = result.stats
    print(f"{result.model} on {dataset} ({args.split}): RMSE {stats['energy']['rmse']:.2e} "
          f"eV/atom, {stats['forces']['rmse']:.2e} eV/A")
    print(f"parity in {files['json'].parent}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from anharmbench.mlip.bpnn.model import load_model, save_model
    from anharmbench.mlip.bpnn.n2p2 import read_n2p2, write_n2p2

    if args.format == "to-n2p2":
        for path in write_n2p2(load_model(args.model), args.out).values():
            print(path)
    else:
        print(f"model: {save_model(read_n2p2(args.n2p2, args.elements), args.out)}")
    return 0


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """``anharmbench train MODEL ...``: one sub-command per entry of the trainer registry,
    each with the typed options of its model."""
    from anharmbench.mlip.trainer import PROFILES, SPLITS, TRAINERS

    p = sub.add_parser(
        "train", help="train an MLIP on a dataset directory, deploy it in LAMMPS, write its "
        "held-out parity",
        description="Train MODEL on DATASET into OUT/model (an interrupted run resumes), "
        "deploy it in LAMMPS and write its test-split parity to OUT/parity. Pre-trained "
        "models (chgnet, sevennet) record their shipped weights instead of training.")
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, kind in TRAINERS.items():
        q = models.add_parser(name, help=kind.summary, description=kind.summary)
        q.add_argument("dataset", help="dataset directory (anharmbench dataset idmd|refmd, or "
                       "DFT supercells)")
        q.add_argument("out", help="output directory (created): OUT/model, OUT/parity")
        q.set_defaults(profile="quick", seed=2024, cache=None, overwrite=False)
        if not kind.pretrained:
            q.add_argument("--profile", choices=PROFILES, default="quick")
            q.add_argument("--seed", type=int, default=2024)
            q.add_argument("--overwrite", action="store_true",
                           help="discard a model already in OUT and train afresh (default: "
                           "resume an interrupted run)")
        if kind.compiled:
            q.add_argument("--cache", type=Path, default=None, metavar="DIR",
                           help="compiled templates: a model of an architecture compiled "
                           "before reuses that compilation (seconds instead of a minute)")
        for option in kind.options:
            q.add_argument(f"--{option.name.replace('_', '-')}", dest=option.name,
                           type=option.type, default=None, help=option.help)
        q.add_argument("--parity-only", action="store_true",
                       help="do not train: write the parity of the model already in "
                       "OUT/model on DATASET's --split, to OUT/parity-<DATASET>-<split>")
        q.add_argument("--split", choices=SPLITS, default="test",
                       help="split of --parity-only (default: %(default)s)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("convert", help="exchange BPNN models with n2p2 (input.nn, "
                       "scaling.data, weights.NNN.data)")
    formats = p.add_subparsers(dest="format", required=True, metavar="{to-n2p2,from-n2p2}")
    q = formats.add_parser("to-n2p2", help="write a BPNN model directory as n2p2 files")
    q.add_argument("model", type=Path, help="BPNN model directory")
    q.add_argument("out", type=Path, help="n2p2 directory (created)")
    q = formats.add_parser("from-n2p2", help="read an n2p2 directory into a BPNN model "
                           "directory")
    q.add_argument("n2p2", type=Path, help="directory with input.nn, scaling.data, "
                   "weights.NNN.data")
    q.add_argument("out", type=Path, help="BPNN model directory (created)")
    q.add_argument("--elements", nargs="+", default=None,
                   help="type order (default: by atomic number)")
    p.set_defaults(func=_cmd_convert)
