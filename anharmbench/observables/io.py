"""Observables as data: HDF5 (complete, with units) and CSV (flat tables).

:func:`write_observable` writes ``<stem>.h5`` and ``<stem>.csv`` for a
:class:`~anharmbench.observables.modes.ModeData`,
:class:`~anharmbench.observables.dispersion.Dispersion` or
:class:`~anharmbench.observables.conductivity.KappaResult`; :func:`read_observable` reads
the HDF5 file back into the same object.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from anharmbench import __version__
from anharmbench.observables.conductivity import KappaResult
from anharmbench.observables.dispersion import Dispersion
from anharmbench.observables.modes import ModeData, QPath

__all__ = ["read_observable", "write_observable"]

_FORMAT = "anharmbench-observable-1"


def _path_group(g: h5py.Group, path: QPath) -> None:
    g["qpoints"] = path.qpoints
    g["distances"] = path.distances
    g["tick_distances"] = path.tick_distances
    g["tick_labels"] = np.array(path.tick_labels, dtype=h5py.string_dtype())


def _read_path(g: h5py.Group) -> QPath:
    labels = [s.decode() if isinstance(s, bytes) else str(s) for s in g["tick_labels"][...]]
    return QPath(g["qpoints"][...], g["distances"][...], g["tick_distances"][...], labels)


def write_observable(obj: ModeData | Dispersion | KappaResult, directory: str | Path,
                     stem: str) -> tuple[Path, Path]:
    """Write ``obj`` as ``directory/stem.h5`` and ``directory/stem.csv``.

    Returns
    -------
    tuple[pathlib.Path, pathlib.Path]
        The HDF5 and CSV paths.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    h5p, csvp = out / f"{stem}.h5", out / f"{stem}.csv"
    with h5py.File(h5p, "w") as h5:
        h5.attrs["format"] = _FORMAT
        h5.attrs["anharmbench"] = __version__
        h5.attrs["potential"] = obj.potential
        if isinstance(obj, ModeData):
            _write_mode(h5, obj)
        elif isinstance(obj, Dispersion):
            _write_dispersion(h5, obj)
        elif isinstance(obj, KappaResult):
            _write_kappa(h5, obj)
        else:
            raise TypeError(f"cannot write {type(obj).__name__}")
    with open(csvp, "w", newline="") as fh:
        w = csv.writer(fh)
        for row in _csv_rows(obj):
            w.writerow(row)
    return h5p, csvp


def read_observable(path: str | Path) -> ModeData | Dispersion | KappaResult:
    """Read what :func:`write_observable` wrote (the HDF5 file)."""
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != _FORMAT:
            raise ValueError(f"{path} is not an anharmbench observable file")
        kind = str(h5.attrs["kind"])
        pot = str(h5.attrs["potential"])
        meta = json.loads(h5.attrs.get("meta", "{}"))
        if kind == "mode":
            path_ = _read_path(h5["path"]) if "path" in h5 else None
            return ModeData(
                str(h5.attrs["quantity"]), pot, h5["qpoints"][...], h5["frequencies"][...],
                h5["temperatures"][...], h5["values"][...],
                h5["distances"][...] if "distances" in h5 else None,
                h5["weights"][...] if "weights" in h5 else None, meta, path_,
                h5["errors"][...] if "errors" in h5 else None,
                h5["covariance"][...] if "covariance" in h5 else None)
        if kind == "dispersion":
            return Dispersion(pot, _read_path(h5["path"]), h5["frequencies"][...],
                              h5["ftg_qpoints"][...], h5["ftg_distances"][...],
                              h5["ftg_frequencies"][...], h5["ftg"][...])
        if kind == "kappa":
            res = KappaResult(pot, h5["temperatures"][...],
                              tuple(int(v) for v in h5["mesh"][...]), meta=meta)
            for key in h5["kappa"]:
                res.kappa[key] = h5["kappa"][key][...]
                res.kappa_tensor[key] = h5["kappa_tensor"][key][...]
                if key in h5["gamma"]:
                    res.gamma[key] = h5["gamma"][key][...]
                for attr in ("kappa_stderr", "gamma_stderr"):
                    if attr in h5 and key in h5[attr]:
                        getattr(res, attr)[key] = h5[attr][key][...]
            for name in ("qpoints", "weights", "frequencies"):
                if name in h5:
                    setattr(res, name, h5[name][...])
            return res
    raise ValueError(f"{path}: unknown observable kind {kind!r}")


def _write_mode(h5: h5py.File, m: ModeData) -> None:
    h5.attrs["kind"] = "mode"
    h5.attrs["quantity"] = m.quantity
    h5.attrs["units"] = m.units
    h5.attrs["meta"] = json.dumps(m.meta, default=str)
    h5["qpoints"] = m.qpoints
    h5["frequencies"] = m.frequencies
    h5["frequencies"].attrs["units"] = "THz"
    h5["temperatures"] = m.temperatures
    h5["temperatures"].attrs["units"] = "K"
    h5["values"] = m.values
    h5["values"].attrs["units"] = "THz"
    h5["values"].attrs["layout"] = "(temperature, q-point, branch)"
    if m.errors is not None:
        h5["errors"] = m.errors
        h5["errors"].attrs["units"] = "THz"
        h5["errors"].attrs["meaning"] = "standard error of values (sampling)"
    if m.covariance is not None:
        h5["covariance"] = m.covariance
        h5["covariance"].attrs["units"] = "THz^2"
        h5["covariance"].attrs["layout"] = "(temperature, q-point, branch, branch)"
    if m.distances is not None:
        h5["distances"] = m.distances
    if m.weights is not None:
        h5["weights"] = m.weights
    if m.path is not None:
        _path_group(h5.create_group("path"), m.path)


def _write_dispersion(h5: h5py.File, d: Dispersion) -> None:
    h5.attrs["kind"] = "dispersion"
    _path_group(h5.create_group("path"), d.path)
    h5["frequencies"] = d.frequencies
    h5["frequencies"].attrs["units"] = "THz"
    h5["ftg_qpoints"] = d.ftg_qpoints
    h5["ftg_distances"] = d.ftg_distances
    h5["ftg_frequencies"] = d.ftg_frequencies
    h5["ftg"] = d.ftg


def _write_kappa(h5: h5py.File, k: KappaResult) -> None:
    h5.attrs["kind"] = "kappa"
    h5.attrs["meta"] = json.dumps(k.meta, default=str)
    h5["temperatures"] = k.temperatures
    h5["mesh"] = np.asarray(k.mesh)
    g, t, gg = h5.create_group("kappa"), h5.create_group("kappa_tensor"), h5.create_group("gamma")
    g.attrs["units"] = "W/(m K)"
    t.attrs["layout"] = "(temperature, Voigt xx yy zz yz xz xy)"
    gg.attrs["units"] = "THz (phono3py gamma, half width)"
    for key in k.kappa:
        g[key] = k.kappa[key]
        t[key] = k.kappa_tensor[key]
        if key in k.gamma:
            gg[key] = k.gamma[key]
    for attr, units in (("kappa_stderr", "W/(m K), standard error from the sampled sunset"),
                        ("gamma_stderr", "THz, standard error from the sampled sunset")):
        if getattr(k, attr):
            grp = h5.create_group(attr)
            grp.attrs["units"] = units
            for key, val in getattr(k, attr).items():
                grp[key] = val
    for name in ("qpoints", "weights", "frequencies"):
        val = getattr(k, name)
        if val is not None:
            h5[name] = val


def _csv_rows(obj: Any) -> list[list[Any]]:
    if isinstance(obj, ModeData):
        rows: list[list[Any]] = [["potential", "quantity", "temperature_K", "q_index", "qx", "qy",
                                  "qz", "distance_1/A", "branch", "frequency_THz",
                                  f"{obj.quantity}_THz"]
                                 + ([f"{obj.quantity}_stderr_THz"]
                                    if obj.errors is not None else [])]
        for it, T in enumerate(obj.temperatures):
            for iq, q in enumerate(obj.qpoints):
                d = "" if obj.distances is None else f"{obj.distances[iq]:.8g}"
                for j in range(obj.frequencies.shape[1]):
                    rows.append([obj.potential, obj.quantity, f"{T:g}", iq,
                                 *(f"{v:.8g}" for v in q), d, j,
                                 f"{obj.frequencies[iq, j]:.8g}",
                                 f"{obj.values[it, iq, j]:.10g}"]
                                + ([f"{obj.errors[it, iq, j]:.6g}"]
                                   if obj.errors is not None else []))
        return rows
    if isinstance(obj, Dispersion):
        rows = [["potential", "kind", "q_index", "qx", "qy", "qz", "distance_1/A", "branch",
                 "frequency_THz"]]
        for kind, qs, ds, fs in (("interpolated", obj.path.qpoints, obj.path.distances,
                                  obj.frequencies),
                                 ("ftg", obj.ftg_qpoints, obj.ftg_distances, obj.ftg_frequencies)):
            for iq, q in enumerate(qs):
                for j in range(fs.shape[1]):
                    rows.append([obj.potential, kind, iq, *(f"{v:.8g}" for v in q),
                                 f"{ds[iq]:.8g}", j, f"{fs[iq, j]:.8g}"])
        return rows
    keys = list(obj.kappa)
    errs = [k for k in keys if k in obj.kappa_stderr]
    rows = [["potential", "temperature_K"] + [f"kappa_{k}_W/mK" for k in keys]
            + [f"kappa_{k}_{c}" for k in keys for c in ("xx", "yy", "zz", "yz", "xz", "xy")]
            + [f"kappa_{k}_{e}_W/mK" for k in errs for e in ("stderr", "ci95_halfwidth")]]
    for it, T in enumerate(obj.temperatures):
        rows.append([obj.potential, f"{T:g}"] + [f"{obj.kappa[k][it]:.8g}" for k in keys]
                    + [f"{obj.kappa_tensor[k][it, c]:.8g}" for k in keys for c in range(6)]
                    + [f"{f * obj.kappa_stderr[k][it]:.6g}" for k in errs for f in (1.0, 1.96)])
    return rows
