"""Energy/force parity of a model against labelled frames (the paper's Fig. 1a-b).

Errors are reported as RMSE and MAE of the energy per atom (eV/atom) and of the force
components (eV/Angstrom), overall and per species (force components of atoms of that
species). :func:`calculator_parity` evaluates an ASE calculator (e.g. a
:class:`~anharmbench.lammps.calculator.LammpsCalculator` of a deployed model);
:func:`write_parity` stores the numbers (JSON), the raw pairs (CSV) and a two-panel parity
plot (PNG).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["ParityResult", "calculator_parity", "evaluate_parity", "write_parity"]

#: predict(atoms) -> (energy in eV, forces in eV/Angstrom of shape (natoms, 3))
Predictor = Callable[[Atoms], tuple[float, np.ndarray]]


def _stats(err: np.ndarray) -> dict[str, float]:
    if err.size == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "max": float("nan"), "n": 0}
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "max": float(np.max(np.abs(err))),
        "n": int(err.size),
    }


@dataclass(frozen=True)
class ParityResult:
    """Model-vs-reference pairs and their error statistics.

    Attributes
    ----------
    model
        Name of the model.
    energy_ref, energy_pred
        Energies per atom, eV/atom, shape ``(nframes,)``.
    force_ref, force_pred
        Force components, eV/Angstrom, shape ``(ncomponents,)`` (all frames, atoms, xyz).
    force_species
        Chemical symbol of the atom of each force component, shape ``(ncomponents,)``.
    stats
        ``{"energy": {...}, "forces": {...}, "forces_<symbol>": {...}}`` with ``rmse``,
        ``mae``, ``max`` and ``n``.
    """

    model: str
    energy_ref: np.ndarray
    energy_pred: np.ndarray
    force_ref: np.ndarray
    force_pred: np.ndarray
    force_species: np.ndarray
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_parity(model: str, predict: Predictor, frames: Sequence[Atoms]) -> ParityResult:
    """Evaluate ``predict`` on labelled ``frames`` and collect the error statistics.

    Parameters
    ----------
    model
        Name stored with the result.
    predict
        ``predict(atoms) -> (energy, forces)`` in eV and eV/Angstrom; e.g. a wrapper of
        a :class:`~anharmbench.lammps.calculator.LammpsCalculator`.
    frames
        Frames carrying reference ``energy`` and ``forces`` (a ``SinglePointCalculator``).
    """
    if not frames:
        raise ValueError(f"no frames to evaluate model {model!r} on")
    e_ref, e_pred, f_ref, f_pred, f_sp = [], [], [], [], []
    for i, atoms in enumerate(frames):
        if atoms.calc is None or "forces" not in atoms.calc.results:
            raise ValueError(f"frame {i} has no reference energy/forces")
        n = len(atoms)
        ref_e = float(atoms.calc.results["energy"])
        ref_f = np.asarray(atoms.calc.results["forces"], dtype=float)
        probe = atoms.copy()
        probe.calc = None
        energy, forces = predict(probe)
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (n, 3) or not np.all(np.isfinite(forces)) or not np.isfinite(energy):
            raise ValueError(f"model {model!r} gave non-finite or misshapen output on frame {i}")
        e_ref.append(ref_e / n)
        e_pred.append(float(energy) / n)
        f_ref.append(ref_f.ravel())
        f_pred.append(forces.ravel())
        f_sp.append(np.repeat(np.array(atoms.get_chemical_symbols()), 3))
    res = ParityResult(
        model=model,
        energy_ref=np.array(e_ref),
        energy_pred=np.array(e_pred),
        force_ref=np.concatenate(f_ref),
        force_pred=np.concatenate(f_pred),
        force_species=np.concatenate(f_sp),
    )
    stats = {
        "energy": _stats(res.energy_pred - res.energy_ref),
        "forces": _stats(res.force_pred - res.force_ref),
    }
    for sym in sorted(set(res.force_species.tolist())):
        m = res.force_species == sym
        stats[f"forces_{sym}"] = _stats(res.force_pred[m] - res.force_ref[m])
    res.stats.update(stats)
    return res


def calculator_parity(model: str, calculator: Any, frames: Sequence[Atoms]) -> ParityResult:
    """:func:`evaluate_parity` of an ASE calculator, attached to each frame's copy in turn.

    Parameters
    ----------
    model
        Name stored with the result.
    calculator
        An ASE calculator giving energies (eV) and forces (eV/Angstrom).
    frames
        Frames carrying reference ``energy`` and ``forces``.
    """

    def predict(atoms: Atoms) -> tuple[float, np.ndarray]:
        atoms.calc = calculator
        return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces())

    return evaluate_parity(model, predict, frames)


def write_parity(
    result: ParityResult, directory: str | Path, stem: str = "parity"
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>_energy.csv``, ``<stem>_forces.csv``, ``<stem>.png``.

    Returns
    -------
    dict[str, pathlib.Path]
        The written files by kind (``json``, ``energy_csv``, ``forces_csv``, ``png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "json": directory / f"{stem}.json",
        "energy_csv": directory / f"{stem}_energy.csv",
        "forces_csv": directory / f"{stem}_forces.csv",
        "png": directory / f"{stem}.png",
    }
    record: dict[str, Any] = {
        "model": result.model,
        "units": {"energy": "eV/atom", "forces": "eV/Angstrom"},
        "stats": result.stats,
    }
    out["json"].write_text(json.dumps(record, indent=1) + "\n")
    with out["energy_csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["energy_ref_eV_per_atom", "energy_pred_eV_per_atom"])
        w.writerows(zip(result.energy_ref.tolist(), result.energy_pred.tolist(), strict=True))
    with out["forces_csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["species", "force_ref_eV_per_A", "force_pred_eV_per_A"])
        w.writerows(
            zip(
                result.force_species.tolist(),
                result.force_ref.tolist(),
                result.force_pred.tolist(),
                strict=True,
            )
        )
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    pairs = [
        (axes[0], result.energy_ref, result.energy_pred, "energy (eV/atom)", "energy"),
        (axes[1], result.force_ref, result.force_pred, "force (eV/$\\AA$)", "forces"),
    ]
    for ax, ref, pred, label, key in pairs:
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
        ax.scatter(ref, pred, s=4, alpha=0.6)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"{result.model} {label}")
        ax.set_title(f"RMSE {result.stats[key]['rmse']:.3g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out["png"], dpi=120)
    plt.close(fig)
    return out
