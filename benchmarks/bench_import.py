"""The DFT import against phono3py-load on the same data: wall time and peak memory.

For each dataset folder given (phono3py's examples: AlN-LDA, zb-ZnTe-PBEsol, Si-LDA, Si-QE,
and the ``shared/dft`` sets), in one run and one after the other:

1. ``phono3py-load DATASET [--symfc]`` run in a copy of the folder: phono3py's own force
   constants (fc2.hdf5, fc3.hdf5), the baseline;
2. ``anharmbench import DATASET --out ...`` on the same folder: the same solver, plus the
   projection onto our basis and the least-squares uncertainties;
3. with ``--kappa LENGTH``: ``phono3py-load --br --mesh LENGTH --ts 300`` against
   ``anharmbench observables derivatives.h5 --mesh LENGTH --temperatures 300``.

Each command runs as a child process; its peak resident memory comes from ``wait4``.
Prints one line per command and the ratios ours / phono3py.

Usage: python benchmarks/bench_import.py FOLDER[:DATASET] ... [--symfc] [--kappa 40]
e.g.   python benchmarks/bench_import.py AlN-LDA:phono3py_disp_dimfc2.yaml --symfc --kappa 40
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GiB) and stdout of ``cmd`` run in ``cwd``."""
    t0 = time.perf_counter()
    with open(cwd / "stdout.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    text = (cwd / "stdout.log").read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 2**20, text


def kappa_phono3py(text: str) -> tuple[float, float]:
    """(k_xx, k_zz) at 300 K from phono3py-load's printout (the last table)."""
    rows = re.findall(r"^\s+300\.0\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)", text, re.M)
    xx, _, zz = rows[-1]
    return float(xx), float(zz)


def kappa_ours(out: Path) -> tuple[float, float]:
    import csv

    rows = list(csv.DictReader(next(out.glob("data/*/kappa.csv")).open()))
    row = rows[0]
    return float(row["kappa_bubble_xx"]), float(row["kappa_bubble_zz"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", help="FOLDER or FOLDER:DATASET_FILE")
    ap.add_argument("--symfc", action="store_true", help="symfc for both (else phono3py's "
                    "default: finite differences for systematic displacements)")
    ap.add_argument("--kappa", type=float, default=None, metavar="LENGTH",
                    help="also compare kappa(300 K) on phono3py's mesh of this length")
    args = ap.parse_args()
    for spec in args.datasets:
        folder, _, name = spec.partition(":")
        src = Path(folder).resolve()
        if not name:
            name = next(p.name for p in sorted(src.iterdir())
                        if p.name.startswith(("phono3py_disp.yaml", "phono3py_params")))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "p3"
            shutil.copytree(src, work)
            symfc = ["--symfc"] if args.symfc else []
            t_p3, m_p3, _ = run([str(BIN / "phono3py-load"), name, *symfc], work)
            ours_dir = Path(tmp) / "ours"
            ours_dir.mkdir()
            fc = ["--fc-calculator", "symfc"] if args.symfc else []
            t_us, m_us, text = run([str(BIN / "anharmbench"), "import", str(src / name),
                                    "--out", str(ours_dir / "ref"), *fc], ours_dir)
            print(f"{src.name}/{name}: phono3py-load {t_p3:7.1f} s {m_p3:5.2f} GiB | "
                  f"anharmbench import {t_us:7.1f} s {m_us:5.2f} GiB | ratio time "
                  f"{t_us / t_p3:.2f}, memory {m_us / m_p3:.2f}", flush=True)
            for line in text.splitlines():
                if "GiB" in line or "derivatives in S" in line:
                    print("    " + line)
            if args.kappa is None:
                continue
            L = f"{args.kappa:g}"
            t_k3, m_k3, text3 = run([str(BIN / "phono3py-load"), name, "--br", "--mesh", L,
                                     "--ts", "300"], work)
            t_ko, m_ko, _ = run([str(BIN / "anharmbench"), "observables",
                                 str(ours_dir / "ref" / "derivatives.h5"), "--mesh", L,
                                 "--temperatures", "300", "--path-mesh", "4",
                                 "--loop-mesh", "2", "--out", str(ours_dir / "obs")],
                                ours_dir)
            (xx3, zz3), (xxo, zzo) = kappa_phono3py(text3), kappa_ours(ours_dir / "obs")
            print(f"    kappa(300 K, --mesh {L}): phono3py {xx3:.2f}/{zz3:.2f} "
                  f"({t_k3:.0f} s, {m_k3:.2f} GiB) | ours {xxo:.2f}/{zzo:.2f} "
                  f"({t_ko:.0f} s, {m_ko:.2f} GiB) xx/zz W/m-K; rel. diff "
                  f"{xxo / xx3 - 1:+.2e}/{zzo / zz3 - 1:+.2e}", flush=True)


if __name__ == "__main__":
    main()
