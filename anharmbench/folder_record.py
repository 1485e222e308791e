"""A measurement folder remembers its inputs: :func:`folder_problems` before reusing it.

:class:`anharmbench.Benchmark` keeps each potential's derivative set in
``<directory>/<label>/<set>/`` (a plan directory) and, beside it, ``<set>.inputs.json``:
the crystal, the profile, the set's job and the potential's identity
(:func:`anharmbench.potentials.fingerprint.potential_identity`) it was measured with --
the facade's counterpart of the study's ``inputs.json`` per stage
(:mod:`anharmbench.study.runner`), where a changed input gives a new stage directory.
Here the folder is the user's: a Benchmark given other inputs than the stored ones is
refused (:func:`folder_problems`, :func:`refusal`), naming what differs (stored vs now)
and the two ways out (another directory, or ``overwrite=True``), so that the old results
are never returned as the new ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from anharmbench import __version__
from anharmbench.derivatives.job import DerivativeJob, atoms_record
from anharmbench.errors import PlanDirectoryError
from anharmbench.potentials.fingerprint import PotentialIdentity, settings_differences

__all__ = ["FolderInputsError", "MeasurementInputs", "folder_problems", "record_path",
           "refusal", "write_record"]

RECORD_SUFFIX = ".inputs.json"
_FORMAT = 1


class FolderInputsError(PlanDirectoryError):
    """A folder holds results measured with other inputs than those given now (or with
    inputs that cannot be compared)."""


@dataclass(frozen=True)
class MeasurementInputs:
    """What one derivative set of one potential is measured with."""

    label: str
    set_name: str
    crystal: Atoms
    profile: str
    job: DerivativeJob
    potential: PotentialIdentity

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "anharmbench": __version__, "label": self.label,
                "set": self.set_name, "crystal": atoms_record(self.crystal),
                "profile": self.profile, "job": _json(self.job.to_dict()),
                "potential": self.potential.to_dict()}


def record_path(plan_dir: Path) -> Path:
    """``<set>.inputs.json`` beside the plan directory ``<set>/``."""
    return plan_dir.with_name(plan_dir.name + RECORD_SUFFIX)


def _json(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples as lists), so that stored and current
    records compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))


def _has_results(plan_dir: Path) -> bool:
    return plan_dir.is_dir() and any(plan_dir.iterdir())


def _describe_crystal(rec: Mapping[str, Any]) -> str:
    atoms = Atoms(rec["symbols"], cell=rec["cell"], pbc=True)
    a, b, c, alpha, beta, gamma = atoms.cell.cellpar()
    return (f"{atoms.get_chemical_formula()} cell {a:.6g} {b:.6g} {c:.6g} A, "
            f"{alpha:.6g} {beta:.6g} {gamma:.6g} deg")


def _crystal_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    if old["symbols"] != new["symbols"] or not np.allclose(old["cell"], new["cell"],
                                                           rtol=0, atol=1e-10):
        return f"crystal: stored {_describe_crystal(old)}, now {_describe_crystal(new)}"
    if not np.allclose(old["scaled_positions"], new["scaled_positions"], rtol=0, atol=1e-10):
        return (f"crystal: the atoms' positions differ ({_describe_crystal(new)}, stored and "
                "now)")
    return None


def _job_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{k}: stored {old.get(k)}, now {new.get(k)}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _differences(stored: Mapping[str, Any], now: MeasurementInputs) -> list[str]:
    """Lines naming what differs between a stored record and the current inputs."""
    cur = now.to_dict()
    out = []
    crystal = _crystal_difference(stored["crystal"], cur["crystal"])
    if crystal:
        out.append(crystal)
    job = _job_difference(stored["job"], cur["job"])
    if job:
        line = f"set {now.set_name!r}: {'; '.join(job)}"
        if stored.get("profile") != now.profile:
            line = (f"profile: stored {stored.get('profile')!r}, now {now.profile!r} "
                    f"({line})")
        out.append(line)
    out += _potential_difference(PotentialIdentity.from_dict(stored["potential"]), now)
    return out


def _potential_difference(old: PotentialIdentity, now: MeasurementInputs) -> list[str]:
    new = now.potential
    who = f"potential {now.label!r}"
    if new.reliable and old.reliable:
        if new.digest == old.digest:
            return []
        detail = settings_differences(old, new) if old.kind == new.kind == "ase" else ""
        if detail:  # one class, other settings: name only those
            return [f"{who}: {new.cls.rsplit('.', 1)[-1]} with other settings ({detail})"]
        return [f"{who}: stored {old.describe()}, now {new.describe()}"]
    if old.cls != new.cls:  # different classes differ, fingerprint or not
        return [f"{who}: stored {old.describe()}, now {new.describe()}"]
    culprit = new if not new.reliable else old
    when = "now" if culprit is new else "when its results were stored"
    return [f"{who}: its calculator ({culprit.cls.rsplit('.', 1)[-1]}) cannot be fingerprinted "
            f"{when} ({culprit.why}), so the stored results cannot be matched to it; name it, "
            f"e.g. Benchmark(..., calculator_names={{{now.label!r}: 'model and version'}}) "
            "(stored and compared on reuse)"]


def folder_problems(entries: Sequence[tuple[Path, MeasurementInputs]]
                    ) -> dict[Path, list[str]]:
    """What differs between each plan directory's stored inputs and the current ones.

    Parameters
    ----------
    entries
        ``(plan directory, current inputs)`` of everything about to be measured.

    Returns
    -------
    dict
        ``{plan directory: lines naming each difference, stored vs now}`` of the plan
        directories whose results cannot be returned for the current inputs (another
        crystal, job or potential; a calculator that cannot be fingerprinted; results
        without a record); empty when every stored record matches or nothing is stored.
    """
    out = {}
    for plan_dir, now in entries:
        lines = _entry_problems(plan_dir, now)
        if lines:
            out[plan_dir] = lines
    return out


def _entry_problems(plan_dir: Path, now: MeasurementInputs) -> list[str]:
    path = record_path(plan_dir)
    if not path.is_file():
        if _has_results(plan_dir):
            return [f"{now.label}/{now.set_name}: {plan_dir} holds results without a record of "
                    f"their inputs ({path.name}; written by an older anharmbench), so they "
                    "cannot be matched to these inputs"]
        return []
    try:
        stored = json.loads(path.read_text())
        return _differences(stored, now)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{now.label}/{now.set_name}: its record {path} cannot be read "
                f"({type(exc).__name__}: {exc})"]


def refusal(directory: Path, problems: Mapping[Path, list[str]]) -> FolderInputsError:
    """The error naming every line of :func:`folder_problems` once, and the fix."""
    lines: list[str] = []
    for found in problems.values():
        # the crystal or profile line is the same for every set: said once
        lines += [x for x in found if x not in lines]
    return FolderInputsError(
        f"{directory} holds results measured with other inputs than this Benchmark's, which "
        "would be returned as its own:\n" + "\n".join(f"  - {x}" for x in lines)
        + "\nGive another directory=, or overwrite=True to discard those stored results and "
        "measure again.")


def write_record(plan_dir: Path, now: MeasurementInputs) -> None:
    """Store ``now`` beside ``plan_dir`` (atomically; unchanged when already stored)."""
    path = record_path(plan_dir)
    data = now.to_dict()
    if path.is_file():
        try:
            if json.loads(path.read_text()) == data:
                return
        except ValueError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
