"""Compiling a model for LAMMPS, afresh against reusing a template (anharmbench.mlip.aoti_cache).

Takes two trained models of one architecture from a study (default ``runs/default``: the
first BPNN of each dataset and the first NequIP checkpoints of each dataset), compiles the
first into an empty template cache and then the second with that cache, and prints both
times, their ratio, and the largest deviation of the reused package from the second
model's eager forces (the BPNN; nequip-compile checks its own package at 1e-12).

Usage: python benchmarks/bench_compile_cache.py [STUDY_DIR]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path


def _first(study: Path, pattern: str) -> Path:
    found = sorted((study / "stages").glob(pattern))
    if not found:
        raise SystemExit(f"no {pattern} in {study}/stages: run 'anharmbench run' first")
    return found[0]


def main() -> None:
    from anharmbench.mlip.bpnn import energy_forces_virial, export_pt2, load_pt2
    from anharmbench.mlip.bpnn.export import _example_structure
    from anharmbench.mlip.bpnn.model import atoms_inputs, load_model
    from anharmbench.mlip.nequip import compile_nequip

    study = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/default")
    bpnn = [_first(study, f"train-BPNN-{d}-[0-9a-f]*/model") for d in ("idmd", "refmd")]
    gnn = [_first(study, f"train-GNN-{d}-[0-9a-f]*/model") / "best.ckpt"
           for d in ("idmd", "refmd")]
    print(f"{'model':8s} {'compile (s)':>12s} {'reuse (s)':>10s} {'reuse/compile':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        times = []
        for k, model in enumerate(bpnn):
            copy = work / f"bpnn{k}"
            shutil.copytree(model, copy)
            (copy / "model.nequip.pt2").unlink(missing_ok=True)
            start = time.perf_counter()
            package = export_pt2(copy, cache=work / "cache_bpnn")
            times.append(time.perf_counter() - start)
        print(f"{'BPNN':8s} {times[0]:12.1f} {times[1]:10.1f} {times[1] / times[0]:14.3f}")
        second = load_model(copy)
        inputs = atoms_inputs(second, _example_structure(second.elements, 5, 1))
        _, forces, _ = load_pt2(package)(*inputs)
        _, eager, _ = energy_forces_virial(second, *inputs)
        print(f"  reused BPNN package vs its eager model: max |dF| "
              f"{float((forces - eager).abs().max()):.2e} eV/A")
        times = []
        for k, ckpt in enumerate(gnn):
            start = time.perf_counter()
            compile_nequip(ckpt, work / f"gnn{k}.nequip.pt2", cache=work / "cache_gnn")
            times.append(time.perf_counter() - start)
        print(f"{'NequIP':8s} {times[0]:12.1f} {times[1]:10.1f} {times[1] / times[0]:14.3f}")
        log = (work / "gnn1.nequip.pt2.log").read_text()
        print("  second NequIP checkpoint:", "reused the template, nequip's 1e-12 check passed"
              if "reused a compiled template" in log and log.count("$ ") == 1
              else "compiled afresh (see its log)")


if __name__ == "__main__":
    main()
