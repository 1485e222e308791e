"""The study configuration: a typed, validated YAML file (pydantic models).

Unknown keys and bad values are rejected with the key's path and the allowed values,
e.g. ``models.0.kind: Input should be 'gap', 'bpnn', 'nequip', 'lammps', 'ase', 'chgnet'
or 'sevennet'``.
Every section has defaults; ``profile`` (``quick`` or ``paper``) fills the sizes that the
file leaves unset (:func:`load_config`). With no file, :func:`default_config` is the
embedded ThO2 + CRG study of the paper (Bandi, Jiang, Marianetti 2024).

:func:`load_config` then checks the whole study before any stage runs
(:mod:`~anharmbench.study.checks`), so that a mistake costs seconds rather than the
reference and training stages; every problem is reported at once with its path.

Example::

    profile: quick
    crystal: {lattice_constant: 5.580101}
    reference: {kind: crg}
    models:
      - {name: GNN, kind: nequip, dataset: idmd}
      - name: mine
        kind: lammps
        elements: [O, Th]
        pair_style: "mace no_domain_decomposition"
        pair_coeff: ["* * model.mace.pt O Th"]
    executor: {kind: dask, address: "tcp://scheduler:8786"}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from anharmbench.potentials.spec import LammpsPotential
from anharmbench.structures import NAMED_SUPERCELLS, supercell_matrix

# A top-level import, not a lazy one inside _parse: checks.py imports this module's classes
# only under TYPE_CHECKING (for annotations), so there is no cycle to dodge, and the
# dependency stays visible here.
from anharmbench.study.checks import check_study

__all__ = [
    "ConfigError",
    "CrystalConfig",
    "DatasetsConfig",
    "DerivativeSetConfig",
    "ExecutorConfig",
    "ModelConfig",
    "ObservablesConfig",
    "ReferenceConfig",
    "StudyConfig",
    "default_config",
    "load_config",
]

Profile = Literal["quick", "paper"]
ModelKind = Literal["gap", "bpnn", "nequip", "lammps", "ase", "chgnet", "sevennet"]
#: Reference kinds whose data are DFT (or any code's) files rather than a potential.
DATA_REFERENCES = ("phono3py", "files")


class ConfigError(ValueError):
    """A study configuration is malformed; the message lists every problem with its path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _valid_supercell(value: Any) -> Any:
    """``value`` unchanged if :func:`~anharmbench.structures.supercell_matrix` parses it.

    The value is kept as written (a name stays a name) so that stage keys and the config
    fingerprint do not change; the stages parse it again.
    """
    try:
        supercell_matrix(value)
    except ValueError as exc:
        msg = str(exc)
        if "use one of" not in msg:  # an unknown name already lists the names
            msg += (f"; give a name ({', '.join(NAMED_SUPERCELLS)}) or a 3x3 integer matrix, "
                    "rows in the primitive basis, e.g. [[2, 0, 0], [0, 2, 0], [0, 0, 2]]")
        raise ValueError(msg) from None
    return value


class CrystalConfig(_Strict):
    """The crystal: the embedded ThO2 (fluorite) or a primitive cell file.

    ``lattice_constant`` (Angstrom) scales the embedded ThO2; ``None`` relaxes it on
    the reference surface. ``structure`` is any file ASE reads (then it must already be
    at equilibrium on the reference).
    """

    name: str = "ThO2"
    structure: str | None = None
    lattice_constant: float | None = Field(default=5.580101, gt=0)


class DerivativeSetConfig(_Strict):
    """One set of irreducible derivatives: an FTG, orders, and how to measure them.

    ``supercell`` is a name (``prim``, ``2I``, ``SC``, ``4I``, ``3SC``) or a 3x3 integer
    matrix (rows in the primitive basis). ``qtuple`` restricts to one Q-tuple (one
    q-point name per slot, e.g. ``[L, L, G, G, G]``). ``variant`` and ``n_steps`` default
    to the profile's (:mod:`anharmbench.study.profiles`). ``estimator`` turns the
    evaluations into derivatives (:func:`anharmbench.derivatives.fit.fit`): ``tail`` (each
    order's steps extrapolated to zero), ``lines`` (one joint Taylor fit along all the
    plan's lines, for high orders of noisy evaluators) or ``auto`` (per order the one with
    the smaller uncertainties); with a DFT plan as the reference the sets are the plan's
    and take its estimator.
    """

    name: str
    supercell: str | list[list[int]]
    orders: list[int]
    method: Literal["forces", "energies"] = "forces"
    variant: Literal["lone", "bundled"] | None = None
    qtuple: list[str] | None = None
    h_range: tuple[float, float] = (0.01, 0.08)
    h_ranges: dict[int, tuple[float, float]] | None = None
    n_steps: int | None = Field(default=None, ge=1)
    overdetermination: float = Field(default=3.0, ge=1.0)
    estimator: Literal["tail", "lines", "auto"] = "tail"

    @field_validator("orders")
    @classmethod
    def _orders(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if not 2 <= n <= 6]
        if not v or bad:
            raise ValueError(f"orders must be in 2..6, got {v}")
        return sorted(set(v))

    @field_validator("supercell")
    @classmethod
    def _supercell(cls, v: str | list[list[int]]) -> str | list[list[int]]:
        return _valid_supercell(v)


class _PotentialFields(_Strict):
    """How a potential is given: LAMMPS fields (those of
    :class:`~anharmbench.potentials.LammpsPotential`) or an ASE ``calculator`` factory."""

    elements: list[str] | None = None
    pair_style: str | None = None
    pair_coeff: list[str] | None = None
    atom_style: Literal["atomic", "charge"] = "atomic"
    charges: dict[str, float] = Field(default_factory=dict)
    kspace_style: str | None = None
    commands: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    calculator: str | None = None

    def lammps_potential(self, name: str) -> LammpsPotential:
        """The :class:`LammpsPotential` of the LAMMPS fields (``kind: lammps``)."""
        missing = [k for k in ("elements", "pair_style", "pair_coeff")
                   if getattr(self, k) is None]
        if missing:
            raise ValueError(
                f"{name}: kind 'lammps' needs {', '.join(missing)} (e.g. elements: [O, Th], "
                "pair_style: 'eam/alloy', pair_coeff: ['* * ThO2.eam.alloy O Th'])"
            )
        return LammpsPotential(
            elements=tuple(self.elements or ()),
            pair_style=str(self.pair_style),
            pair_coeff=tuple(self.pair_coeff or ()),
            atom_style=self.atom_style,
            charges=dict(self.charges),
            kspace_style=self.kspace_style,
            commands=tuple(self.commands),
            files=tuple(str(Path(f).resolve()) for f in self.files),
            name=name,
        )


class ReferenceConfig(_PotentialFields):
    """The reference: CRG (default), any LAMMPS pair style, an ASE calculator, or DFT data.

    ``kind: lammps`` takes the fields of :class:`~anharmbench.potentials.LammpsPotential`
    (``elements`` in type order, ``pair_style``, ``pair_coeff``, ...); ``kind: ase`` takes
    ``calculator: "package.module:factory"`` (a callable returning an ASE calculator).

    DFT references (the crystal and the derivative sets then come from the data):

    * ``kind: phono3py`` -- a phonopy/phono3py displacement dataset, imported with
      :func:`anharmbench.dft.importer.import_dataset`: ``dataset`` (``phono3py_disp.yaml``,
      ``phono3py_params.yaml[.xz]``, ``phonopy_params.yaml``), optionally ``forces``
      (``FORCES_FC3``/``FORCE_SETS``), ``outputs`` (a glob of raw DFT outputs) and
      ``fc_calculator`` (``traditional`` or ``symfc``);
    * ``kind: files`` -- ``plan``: a plan directory (``anharmbench plan --format ...``)
      whose configurations a DFT code ran and ``anharmbench collect --outputs`` read, or a
      list of them (e.g. 2I for orders 2-3 and the primitive cell for orders 4-6): an order
      in several plans is taken from the plan of the largest supercell (the most
      q-points), and the stage's line names the orders each plan gave and those unused.

    Relative paths of the DFT fields (``dataset``, ``forces``, ``outputs``, ``plan``) are
    taken relative to the config file; those of the LAMMPS ``files`` (as of
    ``crystal.structure``) relative to the current directory, where the stages open them.
    :func:`load_config` checks that all of them exist.
    """

    kind: Literal["crg", "lammps", "ase", "phono3py", "files"] = "crg"
    name: str = "reference"
    dataset: str | None = None
    forces: str | None = None
    outputs: str | None = None
    fc_calculator: Literal["traditional", "symfc"] | None = None
    plan: str | list[str] | None = None

    @property
    def plan_dirs(self) -> list[Path]:
        """The plan directories of ``kind: files`` (one or several)."""
        if self.plan is None:
            return []
        return [Path(p) for p in ([self.plan] if isinstance(self.plan, str) else self.plan)]

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ReferenceConfig:
        if self.kind == "phono3py" and not self.dataset:
            raise ValueError("kind 'phono3py' needs dataset: (phono3py_disp.yaml, "
                             "phono3py_params.yaml[.xz] or phonopy_params.yaml)")
        if self.kind == "files" and not self.plan:
            raise ValueError("kind 'files' needs plan: (a plan directory whose DFT outputs "
                             "were collected with 'anharmbench collect DIR --outputs GLOB')")
        if isinstance(self.plan, list) and len({str(p) for p in self.plan}) < len(self.plan):
            raise ValueError("plan: a plan directory is listed twice; list each once")
        stray = [k for k in ("dataset", "forces", "outputs", "fc_calculator")
                 if getattr(self, k) is not None and self.kind != "phono3py"]
        stray += ["plan"] if self.plan is not None and self.kind != "files" else []
        if stray:
            raise ValueError(f"{', '.join(stray)}: only for kind "
                             f"{'files' if stray == ['plan'] else 'phono3py'}, not {self.kind!r}")
        return self

    @property
    def is_data(self) -> bool:
        """True for DFT data (``phono3py``, ``files``) rather than a potential."""
        return self.kind in DATA_REFERENCES


class DatasetsConfig(_Strict):
    """The two training datasets (sizes from the profile unless given)."""

    idmd: bool = True
    refmd: bool = True
    idmd_supercell: str = "4I"
    idmd_steps: int | None = Field(default=None, ge=1)
    idmd_test_steps: int | None = Field(default=None, ge=1)
    idmd_stride: int | None = Field(default=None, ge=1)
    idmd_temperature: float | None = Field(default=None, gt=0)
    refmd_supercell: str | None = None
    refmd_snapshots: int | None = Field(default=None, ge=2)
    seed: int = 2024
    #: True: every training seed trains on the first dataset (the spread then covers the
    #: training only); False: each seed redraws its dataset (anharmbench.study.dataset_stages).
    pin: bool = False

    @field_validator("idmd_supercell", "refmd_supercell")
    @classmethod
    def _supercell(cls, v: str | None) -> str | None:
        return v if v is None else _valid_supercell(v)


class ModelConfig(_PotentialFields):
    """A model to train (``gap``, ``bpnn``, ``nequip``) or one the user already has.

    Trained models name their ``dataset`` (``idmd`` or ``refmd``); ``profile`` overrides
    the study's for this model and ``settings`` passes options to the trainer's config;
    ``seeds`` is how many times it is trained (seeds ``seed``, ``seed + 1``, ...; default:
    the profile's), and Table I gives the mean and spread over them.
    ``orders`` limits the derivative sets measured with this model to those holding one
    of these orders (default: every set; they must share one with the reference).
    A model that is not trained reads only ``settings.h_ranges`` (its step windows), a
    universal preset also ``model`` and ``device`` naming what it is (its own weights, the
    CPU); anything else is refused (:mod:`~anharmbench.study.usage_checks`).
    Existing models: ``kind: lammps`` with LAMMPS fields (as :class:`ReferenceConfig`), or
    ``kind: ase`` with ``calculator: "module:factory"``.
    """

    name: str
    kind: ModelKind
    dataset: Literal["idmd", "refmd", "dft"] | None = None
    orders: list[int] | None = None
    profile: Profile | None = None
    seeds: int | None = Field(default=None, ge=1)
    settings: dict[str, Any] = Field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return self.kind in ("gap", "bpnn", "nequip")

    @property
    def universal(self) -> bool:
        """A universal MLIP preset whose weights ship in its wheel (CHGNet, SevenNet-0)."""
        return self.kind in ("chgnet", "sevennet")


class SunsetConfig(_Strict):
    """The sunset sum of the conductivity (and the path): exact, or sampled with errors."""

    #: "exact": every (q1, q2) pair of the mesh; "sampled": an unbiased sample with standard
    #: errors, propagated to kappa (anharmbench.observables.sunset_sampled)
    method: Literal["exact", "sampled"] = "exact"
    #: sampled: pairs per irreducible q-point (per batch with target_error); default 1024
    samples: int | None = Field(default=None, ge=2)
    #: sampled: seed of the draws; default 0
    seed: int | None = Field(default=None, ge=0)
    #: sampled: relative standard error each linewidth must reach (batches are added)
    target_error: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _sampled_only(self) -> SunsetConfig:
        given = [k for k in ("samples", "seed", "target_error") if getattr(self, k) is not None]
        if self.method == "exact" and given:
            raise ValueError(f"{', '.join(given)} set(s) the sampled sunset, but method is "
                             "'exact'; add method: sampled")
        return self

    def sampling(self) -> dict[str, Any] | None:
        """Keyword arguments of SunsetSampling (None for the exact sum)."""
        if self.method == "exact":
            return None
        return {k: getattr(self, k) for k in ("samples", "seed", "target_error")
                if getattr(self, k) is not None}


class ConvergenceConfig(_Strict):
    """kappa of the reference against the mesh and the smearing (the sunset sampled)."""

    #: n of the n^3 meshes, e.g. [4, 6, 8, 12, 16]
    meshes: list[int] = Field(min_length=1)
    #: Gaussian smearings (THz) of the bubble and the sunset
    sigmas: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2], min_length=1)
    #: K
    temperature: float = Field(default=300.0, gt=0)

    @field_validator("meshes")
    @classmethod
    def _meshes(cls, v: list[int]) -> list[int]:
        if any(n < 2 for n in v):
            raise ValueError(f"meshes are n >= 2 (n x n x n), got {v}")
        return v

    @field_validator("sigmas")
    @classmethod
    def _sigmas(cls, v: list[float]) -> list[float]:
        if any(not s > 0 for s in v):
            raise ValueError(f"sigmas are positive (THz), got {v}")
        return v


class ObservablesConfig(_Strict):
    """Phonon observables (Figs. 2-5 of the paper)."""

    enabled: bool = True
    temperatures: list[float] = Field(default_factory=lambda: [300.0, 600.0, 900.0, 1200.0,
                                                               1500.0])
    linewidth_temperature: float = Field(default=300.0, gt=0)
    mesh: tuple[int, int, int] | None = None
    path: list[str] = Field(default_factory=lambda: ["G", "X", "K", "G", "L"])
    smearing_thz: float = Field(default=0.1, gt=0)
    #: the orders the observables use (2 always): [2, 3] leaves out the quartic ones (loop,
    #: sunset), e.g. when order 4 was measured at Gamma only (the primitive cell)
    orders: list[Literal[2, 3, 4]] = Field(default_factory=lambda: [2, 3, 4])
    #: the sunset of the conductivity: exact or sampled (with confidence intervals)
    sunset: SunsetConfig = Field(default_factory=SunsetConfig)
    #: the reference's kappa against the mesh and the smearing (None: not computed); the
    #: sunset is sampled there with observables.sunset's settings when sampled, else 1024
    #: pairs per q-point
    convergence: ConvergenceConfig | None = None
    #: processes computing potentials side by side (None: one per core, at most one per
    #: potential); the results do not depend on it
    workers: int | None = Field(default=None, ge=1)

    @field_validator("orders")
    @classmethod
    def _orders(cls, v: list[int]) -> list[int]:
        if 2 not in v or len(set(v)) != len(v):
            raise ValueError(f"orders: 2 and each order once (among 2, 3, 4), got {v}")
        return sorted(v)


class ExecutorConfig(_Strict):
    """Where batches of configurations are evaluated (:mod:`anharmbench.executors`)."""

    #: "auto": in process while a batch is cheap, local processes once it is not
    kind: Literal["auto", "in-process", "local-processes", "dask"] = "auto"
    #: processes or Dask workers (None: one per core)
    workers: int | None = Field(default=None, ge=1)
    address: str | None = None


class StudyConfig(_Strict):
    """The whole study."""

    profile: Profile = "quick"
    crystal: CrystalConfig = Field(default_factory=CrystalConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    derivative_sets: list[DerivativeSetConfig] = Field(default_factory=list)
    datasets: DatasetsConfig = Field(default_factory=DatasetsConfig)
    models: list[ModelConfig] = Field(default_factory=list)
    observables: ObservablesConfig = Field(default_factory=ObservablesConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    seed: int = 2024

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the config."""
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()


#: The paper's derivative sets (Sec. II): 2nd and 3rd order in 2I, 4th in S_C, 5th at
#: Q = (L, L, G, G, G) and (G, G, G, G, G), 6th in the primitive cell.
PAPER_DERIVATIVE_SETS: tuple[dict[str, Any], ...] = (
    {"name": "2I", "supercell": "2I", "orders": [2, 3]},
    {"name": "SC", "supercell": "SC", "orders": [4]},
    {"name": "5-LLGGG", "supercell": "2I", "orders": [5], "qtuple": ["L", "L", "G", "G", "G"]},
    {"name": "5-GGGGG", "supercell": "prim", "orders": [5]},
    {"name": "prim6", "supercell": "prim", "orders": [6]},
)

#: The paper's models: GAP on IDMD only (orders 2-4: the paper reports its 3rd and 4th
#: order); BPNN and GNN (NequIP) on both datasets.
PAPER_MODELS: tuple[dict[str, Any], ...] = (
    {"name": "GAP", "kind": "gap", "dataset": "idmd", "orders": [2, 3, 4]},
    {"name": "BPNN", "kind": "bpnn", "dataset": "idmd"},
    {"name": "GNN", "kind": "nequip", "dataset": "idmd"},
    {"name": "BPNN", "kind": "bpnn", "dataset": "refmd"},
    {"name": "GNN", "kind": "nequip", "dataset": "refmd"},
)


#: Models of a study on DFT data when the config names none: the universal MLIPs.
UNIVERSAL_PRESETS: tuple[dict[str, Any], ...] = (
    {"name": "CHGNet", "kind": "chgnet"},
    {"name": "SevenNet-0", "kind": "sevennet"},
)


def _with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    ref = out.get("reference")
    if isinstance(ref, dict) and ref.get("kind") in DATA_REFERENCES:
        # the derivative sets are the data's FTGs (filled in by the study)
        out.setdefault("derivative_sets", [])
        out.setdefault("models", [dict(m) for m in UNIVERSAL_PRESETS])
        return out
    out.setdefault("derivative_sets", [dict(d) for d in PAPER_DERIVATIVE_SETS])
    out.setdefault("models", [dict(m) for m in PAPER_MODELS])
    return out


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Reference paths relative to the config file's folder (as the user wrote them)."""
    ref = data.get("reference")
    if not isinstance(ref, dict):
        return data
    ref = dict(ref)
    for key in ("dataset", "forces", "plan"):
        val = ref.get(key)
        if isinstance(val, str) and not Path(val).is_absolute():
            ref[key] = str((base / val).resolve())
    if isinstance(ref.get("plan"), list):
        ref["plan"] = [str((base / v).resolve()) if isinstance(v, str)
                       and not Path(v).is_absolute() else v for v in ref["plan"]]
    val = ref.get("outputs")
    if isinstance(val, str) and not Path(val).is_absolute():
        ref["outputs"] = str(base.resolve() / val)
    return {**data, "reference": ref}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid study config {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "value_error":
            # our validators' messages say what is wrong; pydantic's prefix adds nothing
            msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            if allowed:
                msg += f" (allowed here: {', '.join(allowed)})"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cand = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not cand:
            return []
        model = cand[0]
    return sorted(model.model_fields)


def _parse(data: dict[str, Any], source: str, base: Path | None = None) -> StudyConfig:
    try:
        config = StudyConfig.model_validate(_with_defaults(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    problems = check_study(config, base)
    if problems:
        raise ConfigError("\n".join([f"invalid study config {source}:",
                                     *(f"  {loc}: {msg}" for loc, msg in problems)]))
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys, which silently drops e.g. the first of
    two ``models:`` lists.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: construct_mapping says so
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {key!r} twice; give each key once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def default_config(profile: Profile = "quick") -> StudyConfig:
    """The embedded ThO2 + CRG study (the paper's sets and models) at ``profile``."""
    return _parse({"profile": profile}, "(embedded default)")


def load_config(path: str | Path | None, *, profile: Profile | None = None) -> StudyConfig:
    """Read and validate a YAML study config (``None``: :func:`default_config`).

    Everything that can be checked without running a stage is checked here (see
    :mod:`~anharmbench.study.checks`), so that a mistake fails in seconds.

    Parameters
    ----------
    path
        YAML file, or ``None``.
    profile
        Overrides the file's ``profile``.

    Raises
    ------
    ConfigError
        A missing, empty or unreadable file, a top level that is not a mapping, a key
        given twice, keys/values that fail validation, or a study that cannot run
        (missing fields of a kind, input files, calculator factories, datasets, ...);
        every problem with its path.
    """
    base: Path | None = None
    if path is None:
        data: dict[str, Any] = {}
        source = "(embedded default)"
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"study config {path} does not exist")
        try:
            with path.open() as stream:  # a stream: YAML's error marks then name the file
                loaded = yaml.load(stream, Loader=_UniqueKeyLoader)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"study config {path} is not valid YAML: {exc}") from None
        if loaded is None:  # an empty file is a mistake, not a request for the default study
            raise ConfigError(f"study config {path} is empty; give a study config or omit "
                              "the argument to run the default study")
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"study config {path} must be a mapping of keys at the top level "
                f"({', '.join(StudyConfig.model_fields)}), not a {type(loaded).__name__}"
            )
        base = path.parent.resolve()
        data, source = _resolve_paths(loaded, path.parent), str(path)
    if profile is not None:
        data = {**data, "profile": profile}
    return _parse(data, source, base)
