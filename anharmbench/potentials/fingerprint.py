"""What a potential is, as data a folder can store and compare: :func:`potential_identity`.

A folder of measured derivatives (:class:`anharmbench.Benchmark`'s ``directory``) must know
whether the potential asked for now is the one its results were measured with. A
:class:`~anharmbench.potentials.LammpsPotential` says so exactly (its fields and the content
of every file it reads, :meth:`~anharmbench.potentials.LammpsPotential.content_hash`). An
arbitrary ASE calculator is fingerprinted by its class and its settings:

* ASE's own calculators (``ase.calculators.*``) keep every setting in ``parameters``
  (their documented convention); their other attributes are caches (neighbour lists,
  per-atom energies) that change with use, so only ``parameters`` is read;
* any other calculator by ``parameters`` *and* every instance attribute but ASE's own
  bookkeeping (``atoms``, ``results``, ...): e.g. the numpy CRG keeps its parameters as
  dataclasses in attributes.

Values are read as plain data: numbers, strings, lists, mappings, numpy arrays (large
ones by SHA-256) and dataclasses field by field; a string naming an existing file also
stands for that file's content. A value of any other type -- typically a torch model --
cannot be compared, so the calculator is *not fingerprintable* (:attr:`PotentialIdentity.digest`
is ``None`` and :attr:`~PotentialIdentity.why` says which attribute): its user must name
it (``name=``) instead of it being guessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from anharmbench.potentials.spec import LammpsPotential

__all__ = ["PotentialIdentity", "potential_identity", "settings_differences"]

#: Arrays with more elements than this are recorded by shape, dtype and SHA-256.
_SMALL_ARRAY = 16


@dataclass(frozen=True)
class PotentialIdentity:
    """A potential as stored beside its results.

    Attributes
    ----------
    kind
        ``"lammps"``, ``"ase"`` or ``"named"`` (an ASE calculator its user named).
    cls
        The class (``module.QualName``) of the calculator, or ``"LammpsPotential"``.
    settings
        The plain data compared (LAMMPS fields; calculator parameters and attributes; or
        the user's name), ``None`` when the calculator cannot be fingerprinted.
    digest
        SHA-256 of class and settings (a LAMMPS potential: its content hash), ``None``
        when it cannot be fingerprinted.
    why
        Why it cannot be fingerprinted (``None`` when it can).
    """

    kind: str
    cls: str
    settings: dict[str, Any] | None
    digest: str | None
    why: str | None = None

    @property
    def reliable(self) -> bool:
        """Whether two identities with equal digests are the same potential."""
        return self.digest is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PotentialIdentity:
        return cls(str(data["kind"]), str(data["cls"]), data.get("settings"),
                   data.get("digest"), data.get("why"))

    def describe(self) -> str:
        """One line: the class and what tells it apart (name, a LAMMPS hash, settings)."""
        short = self.cls.rsplit(".", 1)[-1]
        if self.kind == "lammps":
            name = (self.settings or {}).get("name")
            return f"LAMMPS potential {name!r} (hash {str(self.digest)[:12]})"
        if self.kind == "named":
            return f"{short} named {(self.settings or {}).get('name')!r}"
        if self.settings is None:
            return f"{short} (not fingerprintable: {self.why})"
        return f"{short} ({_brief(self.settings)})" if self.settings else short


class _Opaque(Exception):
    """A value that is not plain data (its path and type name)."""

    def __init__(self, path: str, type_name: str) -> None:
        super().__init__(path, type_name)
        self.path = path
        self.type_name = type_name


def potential_identity(potential: Any, name: str | None = None) -> PotentialIdentity:
    """The identity of a LAMMPS potential or an ASE calculator.

    Parameters
    ----------
    potential
        A :class:`~anharmbench.potentials.LammpsPotential` or an ASE calculator.
    name
        The user's name for a calculator (e.g. a checkpoint and its version): used instead
        of its fingerprint, with its class.

    Returns
    -------
    PotentialIdentity
        ``digest`` is ``None`` when the calculator has settings that cannot be compared
        (``why`` names the first one).
    """
    if isinstance(potential, LammpsPotential):
        return PotentialIdentity("lammps", "LammpsPotential", {"name": potential.name},
                                 potential.content_hash())
    cls = f"{type(potential).__module__}.{type(potential).__qualname__}"
    if name is not None:
        settings: dict[str, Any] = {"name": str(name)}
        return PotentialIdentity("named", cls, settings, _digest(cls, settings))
    try:
        settings = _settings(potential)
    except _Opaque as exc:
        why = f"its {exc.path!r} is a {exc.type_name}, which cannot be compared"
        return PotentialIdentity("ase", cls, None, None, why)
    except TypeError:  # no instance dictionary (__slots__): nothing to read its settings from
        return PotentialIdentity("ase", cls, None, None, "it has no readable settings")
    return PotentialIdentity("ase", cls, settings, _digest(cls, settings))


def _digest(cls: str, settings: Mapping[str, Any]) -> str:
    text = json.dumps([cls, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _ase_bookkeeping() -> frozenset[str]:
    """Attributes every ASE calculator has that are not its settings."""
    from ase.calculators.calculator import Calculator

    return frozenset(vars(Calculator())) | {"implemented_properties", "name", "label",
                                             "directory", "command", "profile"}


def _settings(calc: Any) -> dict[str, Any]:
    """Plain data of the calculator's settings (see the module docstring)."""
    params = getattr(calc, "parameters", None)
    out: dict[str, Any] = {}
    if isinstance(params, Mapping):
        out.update({f"parameters.{k}": _plain(v, f"parameters.{k}") for k, v in params.items()})
    if type(calc).__module__.startswith("ase.calculators.") and out:
        return out  # ASE's convention: the rest are caches
    skip = _ase_bookkeeping()
    for key, value in vars(calc).items():
        if key not in skip:
            out[key] = _plain(value, key)
    return out


def _plain(value: Any, path: str) -> Any:
    """``value`` as JSON data, or :class:`_Opaque` naming the first part that is not."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _with_file(value)
    if isinstance(value, Path):
        return _with_file(str(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise _Opaque(path, "numpy array of objects")
        if value.size <= _SMALL_ARRAY:
            return value.tolist()
        data = np.ascontiguousarray(value)
        return {"array": list(value.shape), "dtype": value.dtype.str,
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name), f"{path}.{f.name}")
                  for f in dataclasses.fields(value)}
        return {"dataclass": type(value).__qualname__, **fields}
    raise _Opaque(path, type(value).__name__)


def _with_file(text: str) -> Any:
    """A string; one naming an existing file also stands for the file's content."""
    try:
        path = Path(text)
        is_file = len(text) < 4096 and path.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        return text
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"file": text, "sha256": digest.hexdigest()}


def _brief(settings: Mapping[str, Any], limit: int = 160) -> str:
    """``key=value, ...`` of the settings, shortened to about ``limit`` characters."""
    parts = [f"{k}={_short(v)}" for k, v in sorted(settings.items())]
    text = ", ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short(value: Any) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"<{value.get('file') or value.get('dtype')} {value['sha256'][:8]}>"
    if isinstance(value, dict) and "dataclass" in value:
        return f"{value['dataclass']}(...)"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def settings_differences(old: PotentialIdentity, new: PotentialIdentity) -> str:
    """What differs between two fingerprinted identities, as ``key: stored X, now Y; ...``.

    Returns an empty string when the settings are equal (or either has none)."""
    if old.settings is None or new.settings is None or old.cls != new.cls:
        return ""
    keys = sorted(set(old.settings) | set(new.settings))
    diffs = [f"{k}: stored {_short(old.settings.get(k))}, now {_short(new.settings.get(k))}"
             for k in keys if old.settings.get(k) != new.settings.get(k)]
    return "; ".join(diffs)
