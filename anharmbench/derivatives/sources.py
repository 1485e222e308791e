"""Where each configuration's result came from, and refusing to fit results of two origins.

Every configuration stored in a plan's ``results.h5`` carries a *source* string
(:meth:`~anharmbench.derivatives.results.ResultStore.sources`):

* ``potential NAME sha256:HASH`` -- evaluated with a LAMMPS potential (in process or by
  the plan's decks), ``HASH`` being :meth:`LammpsPotential.content_hash`;
* ``ASE calculator LABEL`` -- evaluated in process by an ASE calculator;
* ``DFT output PATH sha256:HASH`` -- read from a DFT output file by ``collect --outputs``;
* ``""`` -- not evaluated yet, or written by an anharmbench that did not record it.

The *origin* of a source is what must be the same for configurations fitted together:
the potential (or calculator) itself, or "DFT outputs" for every DFT file (each
configuration has its own file). :func:`check_one_origin` refuses a mix, naming both
origins; :func:`dft_files` lists the DFT files and their hashes for the provenance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anharmbench.errors import InputError

__all__ = ["DFT_ORIGIN", "MixedSourcesError", "ase_source", "check_one_origin", "dft_files",
           "dft_source", "origin", "origin_digest", "potential_source", "stored_sources"]

#: The origin of every configuration read from a DFT output.
DFT_ORIGIN = "DFT outputs"
_DFT_PREFIX = "DFT output "


class MixedSourcesError(InputError):
    """Results of different origins (a potential and DFT, two potentials) would be joined."""


def potential_source(name: str, content_hash: str) -> str:
    """Source of a configuration evaluated with a LAMMPS potential."""
    return f"potential {name!r} sha256:{content_hash}"


def ase_source(label: str) -> str:
    """Source of a configuration evaluated by an ASE calculator in process."""
    return f"ASE calculator {label!r}"


def dft_source(path: str | Path, sha256: str) -> str:
    """Source of a configuration read from the DFT output ``path`` (content ``sha256``)."""
    return f"{_DFT_PREFIX}{Path(path).resolve()} sha256:{sha256}"


def origin(source: str) -> str:
    """What must agree between configurations fitted together (see the module doc)."""
    return DFT_ORIGIN if source.startswith(_DFT_PREFIX) else source


def dft_files(sources: Sequence[str]) -> dict[str, str]:
    """``{path: sha256}`` of the DFT outputs among ``sources``."""
    out = {}
    for s in sources:
        if s.startswith(_DFT_PREFIX):
            path, _, digest = s[len(_DFT_PREFIX):].rpartition(" sha256:")
            out[path] = digest
    return out


def origin_digest(sources: Sequence[str]) -> str:
    """SHA-256 over the sorted sources: the identity of a set of results."""
    return hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()


def stored_sources(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """``(done, sources, reference_source)`` of a ``results.h5``, read without its plan
    (``sources`` all ``""`` for a store of an older version)."""
    from anharmbench.derivatives.results import open_store

    with open_store(Path(path), "r") as h5:
        done = np.asarray(h5["done"][...], dtype=bool)
        sources = (np.array([x.decode() if isinstance(x, bytes) else str(x)
                             for x in h5["source"][...]], dtype=object)
                   if "source" in h5 else np.full(done.size, "", dtype=object))
        reference = str(h5["reference"].attrs["source"]) if "reference" in h5 else ""
    return done, sources, reference


def _example(sources: np.ndarray, picked: np.ndarray) -> str:
    i = int(np.flatnonzero(picked)[0])
    where = sources[i][len(_DFT_PREFIX):].rpartition(" sha256:")[0] \
        if sources[i].startswith(_DFT_PREFIX) else ""
    return f"configuration {i}" + (f", {where}" if where else "")


def check_one_origin(sources: Sequence[str], done: np.ndarray, where: str) -> str | None:
    """The one origin of the done configurations, or :class:`MixedSourcesError`.

    Parameters
    ----------
    sources
        ``(n_conf,)`` source of each configuration (``""``: not recorded).
    done
        ``(n_conf,)`` bool, configurations evaluated.
    where
        The store, for the message.

    Returns
    -------
    str or None
        The origin (``None`` when no done configuration records one: an older store).

    Raises
    ------
    MixedSourcesError
        Two origins among the done configurations; the message names both, with a
        configuration of each.
    """
    src = np.asarray(sources, dtype=object)
    done = np.asarray(done, dtype=bool)
    origins = np.array([origin(str(s)) if d and s else "" for s, d in zip(src, done,
                                                                            strict=True)],
                       dtype=object)
    found = sorted(set(origins[origins != ""]), key=lambda o: int(np.argmax(origins == o)))
    if len(found) <= 1:
        return found[0] if found else None
    a, b = found[:2]
    na, nb = int((origins == a).sum()), int((origins == b).sum())
    raise MixedSourcesError(
        f"{where} mixes results of different sources: {na} configuration(s) from {a} "
        f"({_example(src, origins == a)}) and {nb} from {b} ({_example(src, origins == b)}); "
        "they are never fitted together. Keep one source: move results.h5 away and collect "
        "or evaluate every configuration from the same one (for DFT: anharmbench collect "
        "DIR --outputs GLOB, then anharmbench derivatives DIR without --evaluate)")
