"""A small, typed description of a LAMMPS potential.

One :class:`LammpsPotential` drives every evaluation path of the project: the ASE
calculator, the batch evaluator, MD, and the plain LAMMPS input decks rendered from
``lammps_inputs/``. The strings it carries (``pair_style``, ``pair_coeff``,
``kspace_style``) are LAMMPS's own command arguments, passed through unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase.data import atomic_masses, atomic_numbers

_ATOM_STYLES = ("atomic", "charge")


class PotentialError(ValueError):
    """A potential description is malformed or does not fit a structure."""


@dataclass(frozen=True)
class LammpsPotential:
    """Description of a LAMMPS potential in ``units metal``.

    Parameters
    ----------
    elements
        Chemical symbols in LAMMPS type order (type 1 is ``elements[0]``).
    pair_style
        Arguments of the ``pair_style`` command, e.g. ``"eam/alloy"``.
    pair_coeff
        Arguments of each ``pair_coeff`` command, e.g. ``("* * ThO2.eam.alloy O Th",)``.
    atom_style
        ``"atomic"`` or ``"charge"`` (needed when ``charges`` are given).
    masses
        Mass per element in amu; missing elements take ASE's standard masses.
    charges
        Fixed partial charge per element in units of e (``atom_style charge``).
    kspace_style
        Arguments of ``kspace_style`` (e.g. ``"ewald 1e-10"``), or ``None``.
    commands
        Further commands issued after ``pair_coeff`` and ``kspace_style``
        (``pair_modify``, ``kspace_modify``, ``neighbor``, ...).
    plugins
        Shared objects to ``plugin load`` before ``pair_style``.
    files
        Files the potential reads; checked to exist before LAMMPS starts.
    name
        A short human-readable name used in reports.
    """

    elements: tuple[str, ...]
    pair_style: str
    pair_coeff: tuple[str, ...]
    atom_style: str = "atomic"
    masses: Mapping[str, float] = field(default_factory=dict)
    charges: Mapping[str, float] = field(default_factory=dict)
    kspace_style: str | None = None
    commands: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    name: str = "custom"
    units: str = "metal"

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        object.__setattr__(self, "pair_coeff", tuple(self.pair_coeff))
        object.__setattr__(self, "commands", tuple(self.commands))
        object.__setattr__(self, "plugins", tuple(str(p) for p in self.plugins))
        object.__setattr__(self, "files", tuple(str(p) for p in self.files))
        object.__setattr__(self, "masses", dict(self.masses))
        object.__setattr__(self, "charges", dict(self.charges))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`PotentialError` naming the first problem found."""
        if self.units != "metal":
            raise PotentialError(
                f"units {self.units!r} is not supported; describe the potential in 'metal' units"
            )
        if not self.elements:
            raise PotentialError("a potential needs at least one element (LAMMPS type 1)")
        for el in self.elements:
            if el not in atomic_numbers:
                raise PotentialError(f"unknown element {el!r} in the potential's element list")
        if len(set(self.elements)) != len(self.elements):
            raise PotentialError(f"duplicate element in {self.elements}")
        if self.atom_style not in _ATOM_STYLES:
            raise PotentialError(
                f"atom_style {self.atom_style!r} is not supported; use one of {_ATOM_STYLES}"
            )
        if not self.pair_style.strip() or "\n" in self.pair_style:
            raise PotentialError(
                f"malformed pair_style {self.pair_style!r}: give the arguments of one "
                "'pair_style' command on one line, e.g. 'eam/alloy'"
            )
        if not self.pair_coeff:
            raise PotentialError("no pair_coeff lines: LAMMPS needs at least one")
        for line in self.pair_coeff:
            toks = line.split()
            if len(toks) < 2 or "\n" in line:
                raise PotentialError(
                    f"malformed pair_coeff {line!r}: expected 'I J args...' on one line"
                )
        if self.charges:
            if self.atom_style != "charge":
                raise PotentialError("charges are given but atom_style is not 'charge'")
            missing = [el for el in self.elements if el not in self.charges]
            if missing:
                raise PotentialError(f"charges missing for elements {missing}")
        for mapping, what in ((self.masses, "mass"), (self.charges, "charge")):
            for el, value in mapping.items():
                if el not in self.elements:
                    raise PotentialError(
                        f"{what} given for {el!r}, which is not in {self.elements}"
                    )
                if not math.isfinite(float(value)):
                    raise PotentialError(f"{what} of {el!r} is not finite: {value}")

    def check_files(self) -> None:
        """Raise ``FileNotFoundError`` for the first missing potential file or plugin.

        For a description read by :meth:`from_file`, the message names the JSON file, the
        key and the path as written there, beside the path it was resolved to.
        """
        origins: dict[str, str] = getattr(self, "_origins", {})
        for path in (*self.files, *self.plugins):
            if not Path(path).is_file():
                origin = origins.get(path)
                where = f" ({origin})" if origin else ""
                raise FileNotFoundError(
                    f"potential {self.name!r} needs the file {path}{where}, which does not "
                    "exist; regenerate or copy it there, or fix the path in the potential "
                    "description"
                )

    def check_species(self, symbols: list[str] | tuple[str, ...]) -> None:
        """Raise :class:`PotentialError` if a structure holds an element the potential lacks."""
        unknown = sorted(set(symbols) - set(self.elements))
        if unknown:
            raise PotentialError(
                f"the structure contains {unknown}, which potential {self.name!r} does not "
                f"describe (its elements: {list(self.elements)}); use a potential for these "
                "elements or remove them from the structure"
            )

    # --------------------------------------------------------------- derived
    def mass(self, element: str) -> float:
        """Mass of ``element`` in amu."""
        if element in self.masses:
            return float(self.masses[element])
        return float(atomic_masses[atomic_numbers[element]])

    def type_of(self, element: str) -> int:
        """LAMMPS atom type (1-based) of ``element``."""
        return self.elements.index(element) + 1

    def setup_commands(self) -> list[str]:
        """LAMMPS commands that define the potential once a box with atoms exists.

        Masses, charges (per type), plugins, ``pair_style``, ``pair_coeff``,
        ``kspace_style`` and the extra commands, in that order.
        """
        cmds: list[str] = [f"plugin load {p}" for p in self.plugins]
        for el in self.elements:
            cmds.append(f"mass {self.type_of(el)} {self.mass(el):.10g}")
        for el, q in self.charges.items():
            cmds.append(f"set type {self.type_of(el)} charge {float(q):.12g}")
        cmds.append(f"pair_style {self.pair_style}")
        cmds.extend(f"pair_coeff {line}" for line in self.pair_coeff)
        if self.kspace_style:
            cmds.append(f"kspace_style {self.kspace_style}")
        cmds.extend(self.commands)
        return cmds

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        return {
            "name": self.name,
            "units": self.units,
            "elements": list(self.elements),
            "atom_style": self.atom_style,
            "masses": dict(self.masses),
            "charges": dict(self.charges),
            "pair_style": self.pair_style,
            "pair_coeff": list(self.pair_coeff),
            "kspace_style": self.kspace_style,
            "commands": list(self.commands),
            "plugins": list(self.plugins),
            "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LammpsPotential:
        """Build from :meth:`to_dict` output; unknown keys are rejected."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise PotentialError(
                f"unknown key(s) {sorted(unknown)} in potential description; allowed: "
                f"{sorted(allowed)}"
            )
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | Path) -> LammpsPotential:
        """Read a potential description from a JSON file (the :meth:`to_dict` form).

        Relative entries of ``files`` and ``plugins`` are taken relative to the JSON
        file's folder (not the current directory), so a potential and its files can be
        moved together; ``name`` defaults to the file's stem. A ``pair_coeff`` word that
        is such a relative entry, or that names a file in the JSON file's folder, is
        replaced by the resolved path (LAMMPS would read it from the current directory),
        and the file is added to ``files``. Files are not required to exist yet:
        :meth:`check_files` names the JSON file and key of a missing one.

        Parameters
        ----------
        path
            The JSON file.

        Returns
        -------
        LammpsPotential

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        PotentialError
            Unreadable or invalid JSON, a top level that is not an object, missing or
            unknown fields, a field of the wrong type, or a description that fails
            :meth:`validate`; the message names the file and the problem.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"potential file {path} does not exist; give the path of a JSON potential "
                "description (LammpsPotential.to_dict() written with json.dump)"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise PotentialError(f"potential file {path}: cannot read it ({exc})") from None
        except json.JSONDecodeError as exc:
            raise PotentialError(f"potential file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PotentialError(
                f"potential file {path}: expected a JSON object such as {{\"elements\": "
                f"[\"Ar\"], \"pair_style\": \"lj/cut 8.0\", \"pair_coeff\": [\"* * 0.01 3.4\"]}}, "
                f"got {_json_type(data)}"
            )
        problems = _field_problems(data, set(cls.__dataclass_fields__))
        if problems:
            raise PotentialError(f"potential file {path}: " + "; ".join(problems))
        folder = path.absolute().parent
        origins: dict[str, str] = {}
        relative: dict[str, str] = {}
        for key in ("files", "plugins"):
            # the description travels with its files: relative to the JSON, not the cwd
            resolved = []
            for given in data.get(key, []):
                full = str((folder / given).resolve())
                resolved.append(full)
                origins.setdefault(full, f"{given!r} under {key!r} in {path}, relative "
                                         "paths there are read from its folder")
                if not Path(given).is_absolute():
                    relative[given] = full
            data[key] = resolved
        try:
            data["pair_coeff"] = [
                _resolve_pair_coeff(line, folder, relative, data.setdefault("files", []),
                                    origins, path)
                for line in data["pair_coeff"]]
            data.setdefault("name", path.stem)
            pot = cls(**data)
        except PotentialError as exc:
            raise PotentialError(f"potential file {path}: {exc}") from None
        # not a field: where each file was written, for check_files' message only
        object.__setattr__(pot, "_origins", origins)
        return pot

    def content_hash(self) -> str:
        """SHA-256 of the description and of the content of every file it reads."""
        h = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        for path in (*self.files, *self.plugins):
            p = Path(path)
            if p.is_file():
                h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()


#: JSON type of each field of a potential file: ``str``, ``str?`` (string or null), ``[str]``
#: (list of strings) or ``{num}`` (object of numbers by element).
_FIELD_TYPES: dict[str, str] = {
    "elements": "[str]",
    "pair_style": "str",
    "pair_coeff": "[str]",
    "atom_style": "str",
    "masses": "{num}",
    "charges": "{num}",
    "kspace_style": "str?",
    "commands": "[str]",
    "plugins": "[str]",
    "files": "[str]",
    "name": "str",
    "units": "str",
}
_REQUIRED = ("elements", "pair_style", "pair_coeff")
_TYPE_WORDS = {
    "str": "a string",
    "str?": "a string or null",
    "[str]": "a list of strings",
    "{num}": "an object of numbers by element",
}


def lammps_path_word(path: str | Path, *, what: str | None = None) -> str:
    """``path`` as one word of a LAMMPS command.

    LAMMPS splits commands at white space unless the word is quoted. By default a path
    with white space is quoted (one with both white space and a quote is refused); with
    ``what`` (e.g. ``"the Taylor file path"``) white space is refused instead, naming
    ``what`` -- for readers that take no quoted path.

    Raises
    ------
    PotentialError
        The path cannot be one LAMMPS word.
    """
    text = str(path)
    if not any(c.isspace() for c in text):
        return text
    if what is not None:
        raise PotentialError(
            f"{what} {text!r} contains white space, which a LAMMPS pair_coeff line cannot "
            "hold; move the file"
        )
    if '"' in text:
        raise PotentialError(f"cannot pass the path {text!r} to LAMMPS (whitespace and quotes)")
    return f'"{text}"'


def model_file_potential(
    pair_style: str,
    path: Path,
    elements: tuple[str, ...] | list[str],
    *,
    name: str,
    word: str | None = None,
    commands: tuple[str, ...] = (),
) -> LammpsPotential:
    """The potential of one model file: ``pair_coeff * * <path> <elements...>``.

    ``word`` is how ``path`` is written in the pair_coeff line (default: as it is; see
    :func:`lammps_path_word`); ``files`` holds ``path`` so that LAMMPS starts only when it
    exists.
    """
    elements = tuple(elements)
    return LammpsPotential(
        elements=elements,
        pair_style=pair_style,
        pair_coeff=(f"* * {path if word is None else word} {' '.join(elements)}",),
        commands=commands,
        files=(str(path),),
        name=name,
    )


def _resolve_pair_coeff(line: str, folder: Path, relative: Mapping[str, str],
                        files: list[str], origins: dict[str, str], json_path: Path) -> str:
    """``line`` with its relative file words resolved from the JSON file's ``folder``.

    A word (after ``I J``) is a file when it is a relative ``files``/``plugins`` entry
    (``relative``: as written -> resolved) or names a file in ``folder``; such a word
    becomes the resolved path, and an unlisted file is appended to ``files`` (so decks
    copy it and the potential's hash covers it). Other words are left as they are.
    """
    words = line.split()
    changed = False
    for i, word in enumerate(words[2:], start=2):
        if word in relative:
            full = relative[word]
        elif (not Path(word).is_absolute() and word not in ("*", "NULL")
              and (folder / word).is_file()):
            full = str((folder / word).resolve())
            if full not in files:
                files.append(full)
                origins.setdefault(full, f"{word!r} in 'pair_coeff' of {json_path}, relative "
                                         "paths there are read from its folder")
        else:
            continue
        words[i] = lammps_path_word(full)
        changed = True
    # untouched lines keep their own spacing
    return " ".join(words) if changed else line


def _json_type(value: Any) -> str:
    """How JSON calls the type of ``value`` (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _is_number(value: Any) -> bool:
    # JSON true/false load as bool, a subclass of int: not a mass or a charge
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field_problems(data: Mapping[str, Any], allowed: set[str]) -> list[str]:
    """Every missing, unknown or wrongly typed field of a JSON potential description."""
    problems = []
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        problems.append(f"missing field(s) {missing} (required: {', '.join(_REQUIRED)})")
    unknown = sorted(set(data) - allowed)
    if unknown:
        problems.append(f"unknown field(s) {unknown} (allowed: {', '.join(sorted(allowed))})")
    for key, kind in _FIELD_TYPES.items():
        if key not in data:
            continue
        value = data[key]
        if kind == "str":
            ok = isinstance(value, str)
        elif kind == "str?":
            ok = value is None or isinstance(value, str)
        elif kind == "[str]":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, dict) and all(_is_number(v) for v in value.values())
        if not ok:
            got = _json_type(value)
            if kind == "[str]" and isinstance(value, list):
                bad = next(v for v in value if not isinstance(v, str))
                got = f"a list holding {_json_type(bad)}"
            elif kind == "{num}" and isinstance(value, dict):
                el, bad = next((k, v) for k, v in value.items() if not _is_number(v))
                got = f"{_json_type(bad)} for {el!r}"
            problems.append(f"field {key!r} must be {_TYPE_WORDS[kind]}, got {got}")
    return problems
