"""``anharmbench observables``: dispersion, linewidths and conductivity of derivatives."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anharmbench.cli.arguments import float_in, int_at_least

if TYPE_CHECKING:
    from anharmbench.derivatives.derivative_set import DerivativeSet

__all__ = ["add_observables_command"]


def _parse_potential_arg(text: str) -> tuple[str, list[str]]:
    name, sep, files = text.partition("=")
    if not sep or not name or not files:
        raise ValueError(f"--compare takes NAME=FILE[,FILE...], got {text!r}")
    return name, [f for f in files.split(",") if f]


def _cmd_observables(args: argparse.Namespace) -> int:
    from anharmbench.observables import (
        ObservableSettings,
        compute_observables,
        load_derivative_set,
        make_figures,
    )
    from anharmbench.observables.workflow import summary
    from anharmbench.phonopy_interface import missing_born_warning

    _check_mesh_numbers(args.mesh)  # a bad number is refused before any file is read
    sampling = _sampling(args)
    potentials = [(args.name, list(args.derivatives))]
    potentials += [_parse_potential_arg(t) for t in args.compare or []]
    # read everything first: a bad file is refused before any computation or output
    sets = [load_derivative_set(files, name=name) for name, files in potentials]
    from anharmbench.derivatives.joins import check_same_crystal

    # --compare overlays the potentials on one crystal's figures, as the files of one
    # potential are joined on one crystal (DerivativeSet.from_files)
    check_same_crystal(sets, "overlaid (--compare)")
    for dset in sets:
        warning = missing_born_warning(dset.primitive, dset.nac, f"{dset.name!r}")
        if warning:
            print(f"WARNING: {warning}", file=sys.stderr)
    mesh = _kappa_mesh(args.mesh, sets)
    settings = ObservableSettings(
        kappa_mesh=mesh, kappa_temperatures=tuple(float(t) for t in args.temperatures),
        path_mesh=args.path_mesh, loop_mesh=args.loop_mesh,
        line_temperature=float(args.temperatures[0]), sunset_sigma=args.sigma,
        four_phonon=args.four_phonon, sunset_sampling=sampling)
    out = Path(args.out)
    results = []
    for dset in sets:
        nac = " with LO-TO splitting (Born charges)" if dset.nac is not None else ""
        print(f"{dset.name}: orders {sorted(dset.orders)}{nac}", flush=True)
        res = compute_observables(dset, out / "data", settings)
        for what, why in res.skipped.items():
            print(f"  skipped {what}: {why.split(':')[0]}")
        results.append(res)
    figs = make_figures(results, out / "figures")
    print(summary(results))
    _print_kappa_table(results)
    print(f"data in {out / 'data'}, figures: {', '.join(p.name for p in figs.values())}")
    return 0


def _sampling(args: argparse.Namespace) -> object:
    """The sampled sunset's settings; refused if given for the exact sum."""
    import os

    from anharmbench.errors import InputError
    from anharmbench.observables import SunsetSampling

    given = [f"--{k.replace('_', '-')}" for k in ("samples", "seed", "target_error")
             if getattr(args, k) is not None]
    if args.four_phonon != "sampled":
        if given:
            raise InputError(f"{', '.join(given)} set(s) the sampled sunset; add "
                             "--four-phonon sampled (the default sums every pair exactly)")
        return None
    kw = {k: getattr(args, k) for k in ("samples", "seed", "target_error")
          if getattr(args, k) is not None}
    return SunsetSampling(**kw, workers=os.cpu_count() or 1)


def _print_kappa_table(results: Sequence[object]) -> None:
    rows = [r for r in results if getattr(r, "kappa", None) is not None]
    if not rows:
        return
    k0 = rows[0].kappa  # type: ignore[attr-defined]
    print(f"thermal conductivity (RTA, W/m-K, mesh {'x'.join(map(str, k0.mesh))}):")
    head = "  T (K)  " + "".join(f"{r.potential + ':' + key:>22s}"  # type: ignore[attr-defined]
                                 for r in rows for key in r.kappa.kappa)  # type: ignore[attr-defined]
    print(head)
    for it, T in enumerate(k0.temperatures):
        vals = "".join(_kappa_cell(r.kappa, key, it)  # type: ignore[attr-defined]
                       for r in rows for key in r.kappa.kappa)  # type: ignore[attr-defined]
        print(f"  {T:6.0f} {vals}")
    if any(r.kappa.kappa_stderr for r in rows):  # type: ignore[attr-defined]
        print("  (+- : 95 % interval of the sampled sunset, 1.96 standard errors)")


def _kappa_cell(kappa: object, key: str, it: int) -> str:
    value = kappa.kappa[key][it]  # type: ignore[attr-defined]
    err = kappa.kappa_stderr.get(key)  # type: ignore[attr-defined]
    if err is None or err[it] == 0:
        return f"{value:22.3f}"
    return f"{f'{value:.3f} +- {1.96 * err[it]:.3f}':>22s}"


def _check_mesh_numbers(values: Sequence[float]) -> None:
    from anharmbench.errors import InputError

    if len(values) == 1 and not values[0] > 0:
        raise InputError(f"--mesh {values[0]:g}: a length (phono3py's one-number form) is "
                         "positive; or give three positive integers N1 N2 N3")
    if len(values) not in (1, 3) or (len(values) == 3 and any(v != int(v) or v < 1
                                                               for v in values)):
        raise InputError(f"--mesh takes three positive integers (N1 N2 N3) or one length in "
                         f"Angstrom (phono3py's form), not {' '.join(f'{v:g}' for v in values)}")


def _kappa_mesh(values: Sequence[float], sets: Sequence[DerivativeSet]) -> tuple[int, int, int]:
    """``--mesh``: three integers, or phono3py's length form (one number)."""
    from anharmbench.errors import InputError
    from anharmbench.observables.harmonic import Mesh

    if len(values) == 1:
        meshes = {Mesh.from_length(values[0], s.primitive).numbers for s in sets}
        if len(meshes) > 1:  # one crystal is checked above; kept for safety
            raise InputError(f"--mesh {values[0]:g} gives different meshes {sorted(meshes)}")
        mesh = meshes.pop()
        print(f"--mesh {values[0]:g} (a length, as phono3py reads it): mesh "
              f"{'x'.join(map(str, mesh))}")
        return mesh
    return (int(values[0]), int(values[1]), int(values[2]))


def add_observables_command(sub: argparse._SubParsersAction) -> None:
    """Add ``observables`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "observables", help="dispersion, linewidths and thermal conductivity of derivatives")
    p.add_argument("derivatives", nargs="+", help="derivatives.h5 file(s) of one potential "
                   "(measured or imported; orders in different FTGs may be in several files)")
    p.add_argument("--name", default=None, help="its name (default: the one in the file)")
    p.add_argument("--compare", action="append", metavar="NAME=FILE[,FILE]",
                   help="another potential to compare (repeatable)")
    p.add_argument("--mesh", type=float, nargs="+", default=[11, 11, 11],
                   metavar="N",
                   help="conductivity mesh: three integers N1 N2 N3, or one length in "
                   "Angstrom as phono3py reads it (--mesh 50 is 15x15x15 for NaCl) "
                   "(default: 11 11 11)")
    p.add_argument("--temperatures", type=float_in(0.0, 1e5), nargs="+",
                   default=[300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0, 1500.0],
                   help="K; the first is also the linewidths' temperature")
    p.add_argument("--path-mesh", type=int_at_least(1), default=16,
                   help="mesh of the linewidths along the band path (default: %(default)s)")
    p.add_argument("--loop-mesh", type=int_at_least(1), default=8,
                   help="mesh of the 4th-order loop shift (default: %(default)s)")
    p.add_argument("--sigma", type=float_in(1e-6, 10.0), default=0.1,
                   help="Gaussian smearing of the sunset and, beside it, of the bubble (THz; "
                   "default: %(default)s)")
    p.add_argument("--four-phonon", choices=("exact", "sampled"), default="exact",
                   help="the sunset sum: every (q1, q2) pair of the mesh (exact, O(N^3) for "
                   "a mesh), or an unbiased sample with standard errors and confidence "
                   "intervals (sampled; meshes of 16^3 and finer)")
    p.add_argument("--samples", type=int_at_least(2), default=None,
                   help="sampled: (q1, q2) pairs per irreducible q-point (per batch with "
                   "--target-error; default 1024)")
    p.add_argument("--seed", type=int_at_least(0), default=None,
                   help="sampled: seed of the draws (default 0); one seed, one result")
    p.add_argument("--target-error", type=float_in(1e-6, 0.999), default=None,
                   help="sampled: relative standard error each sunset linewidth must reach; "
                   "batches of --samples pairs are added until it does (at most 64 per "
                   "q-point)")
    p.add_argument("--out", required=True, help="output directory (data/ and figures/)")
    p.set_defaults(func=_cmd_observables)
