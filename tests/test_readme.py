"""README.md's snippets run as written (issue 14, item 8).

Every fenced ``python``, ``bash`` and ``sh`` block of README.md runs, in README order, in
one scratch working directory (later blocks read the files earlier ones write, as a reader
following the README would), unless an HTML comment right before it says
``<!-- readme-test: skip (why) -->``; those are reported as skipped with their reason.
The blocks run once per session (module fixture, about a minute); the tests then check
each block's exit status and what the examples compute against independent numbers.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RUNNABLE = {"python", "bash", "sh"}
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>.+)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
#: A block that hangs must fail the test, not the CI job (the slowest block runs ~25 s).
BLOCK_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    skip: str | None  # the reason of a ``readme-test: skip`` marker

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their skip markers.

    A marker applies to the block that follows it, with at most blank lines in between,
    so a marker cannot silently skip a block further down.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        mark = SKIP_MARK.search(lines[j]) if j >= 0 else None
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"README.md: the block opened at line {start + 1} is not closed")
        blocks.append(
            Block(m["lang"], "\n".join(body) + "\n", start + 1, mark["why"] if mark else None)
        )
        i += 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text()) if b.lang in RUNNABLE]


def _venv() -> Path:
    """The environment whose ``bin/`` the README's ``.venv/bin/...`` commands mean."""
    local = REPO / ".venv"
    return local if (local / "bin" / "python").exists() else Path(sys.prefix)


def _run(block: Block, workdir: Path, index: int) -> subprocess.CompletedProcess[str]:
    if block.lang == "python":
        script = workdir / f"readme_block_{index:02d}.py"
        script.write_text(block.code)
        cmd = [str(workdir / ".venv" / "bin" / "python"), script.name]
    else:
        # -e/-o pipefail: a failing line fails the block, as a reader would notice
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    return subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT
    )


@dataclass
class ReadmeRun:
    """Where the blocks ran and what each run block (by index in ``BLOCKS``) returned."""

    workdir: Path
    results: dict[int, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    """Run the runnable blocks once, in README order, in one working directory.

    Stops at the first failure: later blocks may need its files, and their errors would
    only repeat it.
    """
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / ".venv").symlink_to(_venv())  # the README's commands say .venv/bin/...
    results: dict[int, subprocess.CompletedProcess[str]] = {}
    for k, block in enumerate(BLOCKS):
        if block.skip:
            continue
        start = time.perf_counter()
        results[k] = res = _run(block, workdir, k)
        print(f"README.md line {block.line} ({block.lang}): {time.perf_counter() - start:.1f} s")
        if res.returncode != 0:
            break
    return ReadmeRun(workdir, results)


def _result(run: ReadmeRun, predicate: Callable[[Block], bool]) -> subprocess.CompletedProcess[str]:
    """The output of the first run block that ``predicate`` picks; fails if it failed."""
    k = next(k for k, b in enumerate(BLOCKS) if not b.skip and predicate(b))
    res = run.results.get(k)
    if res is None or res.returncode != 0:
        pytest.fail(f"README block {BLOCKS[k].id} did not run (see test_readme_block)")
    return res


def test_readme_markers_and_runnable_blocks() -> None:
    """Every skip marker sits on a block and gives a reason, and the worked examples (the
    small plan, the Python API, the observables) are among the blocks that run."""
    text = README.read_text()
    marked = [b for b in readme_blocks(text) if b.skip is not None]
    assert len(marked) == len(SKIP_MARK.findall(text)), "a skip marker is not right before a block"
    assert all(b.skip.strip() for b in marked)
    langs = {b.lang for b in BLOCKS if not b.skip}
    assert {"python", "bash"} <= langs
    assert any("plan_2i" in b.code and "--evaluate" in b.code for b in BLOCKS if not b.skip)


@pytest.mark.parametrize("k", range(len(BLOCKS)), ids=[b.id for b in BLOCKS])
def test_readme_block(k: int, request: pytest.FixtureRequest) -> None:
    block = BLOCKS[k]
    if block.skip:
        print(f"README.md line {block.line} ({block.lang}): skipped, {block.skip}")
        pytest.skip(f"README.md line {block.line}: {block.skip}")
    # requested here, not as an argument, so that selecting only skipped blocks runs nothing
    readme_run: ReadmeRun = request.getfixturevalue("readme_run")
    res = readme_run.results.get(k)
    if res is None:
        pytest.fail(f"README.md line {block.line}: not run, an earlier block failed")
    assert res.returncode == 0, (
        f"README.md block at line {block.line} ({block.lang}) exited {res.returncode}\n"
        f"--- code\n{block.code}--- stdout\n{res.stdout[-3000:]}--- stderr\n{res.stderr[-5000:]}"
    )


def test_python_example_cell_is_at_equilibrium_and_a_minimum(readme_run: ReadmeRun) -> None:
    """The first Python example prints the energy and stress (GPa) of its 2I cell on CRG,
    then the energies of rattled copies above it. At the CRG equilibrium the stress is
    ~2e-5 GPa (the experimental 5.597 A would give 1.7 GPa), and every rattled copy lies
    above the lattice."""
    res = _result(readme_run, lambda b: b.lang == "python" and "calculate_batch" in b.code)
    numbers = [float(x) for x in FLOAT.findall(res.stdout)]
    assert len(numbers) == 1 + 6 + 8, res.stdout
    energy, stress, above = numbers[0], np.array(numbers[1:7]), np.array(numbers[7:])
    assert energy == pytest.approx(8 * -39.491779842, rel=1e-8)  # 8 primitive cells
    assert np.abs(stress).max() < 0.01  # GPa
    assert (above > 0).all()
    # 24 atoms rattled by 0.02 A in each direction: ~ (3N/2) k <u^2> with k ~ 30 eV/A^2
    assert 0.05 < above.mean() < 1.0


def _frozen_phonon_raman_thz() -> float:
    """The Raman (T2g) frequency of ThO2 on CRG from forces alone: the two O of the
    primitive cell moved against each other along x, Th fixed; for equal masses
    omega^2 = -dF_O1x/dd / m_O. Independent of the derivative machinery."""
    from ase.units import _amu, _e

    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import tho2_primitive

    prim = tho2_primitive()
    calc = LammpsCalculator(crg_potential())

    def force(d: float) -> float:
        moved = prim.copy()
        moved.positions[1, 0] += d
        moved.positions[2, 0] -= d
        moved.calc = calc
        return float(moved.get_forces()[1, 0])

    d = 1e-3  # A; central difference: the error is O(d^2) of the quartic term
    k = -(force(d) - force(-d)) / (2 * d)
    calc.release()
    omega2 = k / prim.get_masses()[1] * _e / _amu * 1e20  # eV/A^2/amu -> s^-2
    return float(np.sqrt(omega2) / (2 * np.pi) / 1e12)


def test_observables_example_raman_mode_matches_frozen_phonon(readme_run: ReadmeRun) -> None:
    """The README's route (plan -> derivatives -> observables) gives the Raman frequency at
    Gamma that a frozen phonon in the primitive cell gives (measured: 15.6179 THz both,
    2e-6 apart)."""
    _result(readme_run, lambda b: b.lang == "python" and "compute_observables" in b.code)
    data = readme_run.workdir / "runs/observables/data/reference"
    with (data / "kappa.csv").open() as fh:
        kappa = {float(r["temperature_K"]): float(r["kappa_combined_W/mK"])
                 for r in csv.DictReader(fh)}
    assert 1.0 < kappa[300.0] < 100.0  # W/m-K; 12.5 measured on the example's 4^3 mesh
    assert kappa[300.0] > kappa[900.0]  # umklapp: kappa falls with T
    assert (readme_run.workdir / "runs/observables/figures/fig2_dispersion.png").is_file()

    with (data / "dispersion.csv").open() as fh:
        gamma = sorted(
            float(r["frequency_THz"])
            for r in csv.DictReader(fh)
            if r["kind"] == "interpolated" and float(r["distance_1/A"]) == 0.0
        )
    assert len(gamma) == 9, gamma  # 3 atoms: acoustic, T1u (TO), T2g (Raman)
    raman = gamma[6:]
    assert max(raman) - min(raman) < 1e-6  # triply degenerate
    assert raman[0] == pytest.approx(_frozen_phonon_raman_thz(), rel=1e-4)
    assert np.abs(gamma[:3]).max() < 1e-4  # acoustic sum rule


def test_default_cell_is_the_crg_equilibrium() -> None:
    """``tho2_primitive()``'s default, which the README's examples use, is the CRG
    zero-pressure lattice constant; the experimental guess is not."""
    from ase.units import GPa

    from anharmbench.lammps import LammpsCalculator
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.structures import THO2_A0_CRG, THO2_A0_GUESS, tho2_primitive

    calc = LammpsCalculator(crg_potential())
    pressures = {}
    for a in (None, THO2_A0_GUESS):
        atoms = tho2_primitive() if a is None else tho2_primitive(a)
        atoms.calc = calc
        pressures[a] = float(-atoms.get_stress()[:3].mean() / GPa)
    calc.release()
    assert tho2_primitive().cell.volume == pytest.approx(THO2_A0_CRG**3 / 4, rel=1e-12)
    assert abs(pressures[None]) < 1e-4  # GPa (2e-5 from rounding a0 to 1e-6 A)
    assert abs(pressures[THO2_A0_GUESS]) > 1.0  # why the guess must be relaxed first
