"""Dataset stages: the training datasets of the study.

:func:`idmd_stage` runs IDMD on the Taylor Hamiltonian of the reference derivatives
(:func:`idmd_reference_files` picks the file of each order), :func:`refmd_stage` MD on the
reference surface; both take their sizes from the profile
(:func:`~anharmbench.study.profiles.profile_settings`) unless the config sets them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench.potentials.spec import LammpsPotential
from anharmbench.study.config import StudyConfig
from anharmbench.study.profiles import profile_settings
from anharmbench.study.runner import Stage

__all__ = ["IDMD_ORDERS", "data_seed", "idmd_reference_files", "idmd_stage", "refmd_stage"]


#: Orders of the Taylor Hamiltonian that generates IDMD: the truth of a model trained on
#: IDMD is the reference at these orders and zero above them.
IDMD_ORDERS = (2, 3, 4)


def data_seed(config: StudyConfig, seed: int | None) -> tuple[int, str]:
    """The dataset seed of training seed ``seed`` and the stage-name suffix.

    Each training seed redraws its dataset (``datasets.seed + seed - config.seed``: the
    first seed keeps ``datasets.seed`` and the stage of a study run before this), so the
    spread over seeds covers the data too; ``datasets.pin`` keeps one dataset for all.
    """
    offset = 0 if seed is None or config.datasets.pin else seed - config.seed
    return config.datasets.seed + offset, "" if offset == 0 else f"-seed{seed}"


def idmd_stage(config: StudyConfig, prim: Atoms, ref_files: dict[int, Path],
               upstream: dict[str, Any], seed: int | None = None) -> Stage:
    """IDMD: the Taylor Hamiltonian of the reference derivatives (orders 2-4) in the MD
    cell, NVE at the profile's temperature; the dataset of training seed ``seed``
    (:func:`data_seed`)."""
    settings = profile_settings(config)
    ds = config.datasets
    dseed, suffix = data_seed(config, seed)
    idmd = _overridden(settings.idmd, n_steps=ds.idmd_steps, test_steps=ds.idmd_test_steps,
                       stride=ds.idmd_stride, temperature=ds.idmd_temperature, seed=dseed)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.datasets import run_idmd
        from anharmbench.derivatives import DerivativeSet
        from anharmbench.hamiltonian import taylor_expansion

        ham = directory / "hamiltonian.taylor"
        data_dir = directory / "dataset"
        if ham.is_file():
            terms: Any = ham
        else:
            files = sorted({str(p) for p in ref_files.values()})
            ref = DerivativeSet.from_files(files, name="reference")
            derivs = {n: (ref.basis(n), np.array(ref.values[n]))
                      for n in IDMD_ORDERS if n in ref.orders}
            terms = taylor_expansion(ref.primitive, derivs, ds.idmd_supercell,
                                     require_orders=IDMD_ORDERS)
            tmp = terms.write(directory / "hamiltonian.taylor.tmp")
            tmp.replace(ham)
            terms = ham
        res = run_idmd(terms, data_dir, idmd, progress=True)
        return _dataset_summary("idmd", res)

    inputs = {"settings": _asdict(idmd), "supercell": ds.idmd_supercell, **upstream}
    return Stage(f"dataset-idmd{suffix}", inputs, run)


def refmd_stage(config: StudyConfig, potential: LammpsPotential, seed: int | None = None
                ) -> Stage:
    """Reference MD: NVT on the reference surface at 2000 K and 3000 K; the dataset of
    training seed ``seed`` (:func:`data_seed`)."""
    settings = profile_settings(config)
    ds = config.datasets
    dseed, suffix = data_seed(config, seed)
    refmd = _overridden(settings.refmd, supercell=ds.refmd_supercell,
                        n_snapshots=ds.refmd_snapshots, seed=dseed)

    def run(directory: Path) -> dict[str, Any]:
        from anharmbench.datasets import run_refmd

        kwargs: dict[str, Any] = {}
        if config.reference.kind != "crg":
            kwargs["potential"] = potential
        res = run_refmd(directory / "dataset", refmd, progress=True, **kwargs)
        return _dataset_summary("refmd", res)

    inputs = {"settings": _asdict(refmd), "potential": potential.content_hash()}
    return Stage(f"dataset-refmd{suffix}", inputs, run)


def _overridden(settings: Any, **values: Any) -> Any:
    """``settings`` (a frozen dataclass) with the fields of ``values`` that are not None."""
    return replace(settings, **{k: v for k, v in values.items() if v is not None})


def _asdict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(obj), default=str))


def _dataset_summary(kind: str, res: Any) -> dict[str, Any]:
    splits = res.manifest.get("splits", {})
    counts = {k: v["frames"] for k, v in splits.items() if isinstance(v, dict)}
    temps = [tr.temperature for tr in res.trajectories.values()]
    t_lo = min(t["min"] for t in temps) if temps else float("nan")
    t_hi = max(t["max"] for t in temps) if temps else float("nan")
    return {
        "dataset": str(res.directory),
        "frames": counts,
        "temperature_range": [t_lo, t_hi],
        "line": f"{kind}: frames {counts}, T {t_lo:.0f}-{t_hi:.0f} K",
    }


def idmd_reference_files(config: StudyConfig, ref: dict[str, Path]) -> dict[int, Path]:
    """The reference derivative file holding each order 2-4 over the full basis."""
    by_order: dict[int, Path] = {}
    for dset in config.derivative_sets:
        if dset.qtuple:
            continue
        for n in dset.orders:
            if n in IDMD_ORDERS and n not in by_order:
                by_order[n] = ref[dset.name]
    missing = [n for n in IDMD_ORDERS if n not in by_order]
    if missing:
        raise ValueError(
            f"IDMD needs reference derivatives of orders 2-4 over full FTGs; order(s) {missing} "
            "are in no derivative set without a qtuple (add one, or set datasets.idmd: false)"
        )
    return by_order
