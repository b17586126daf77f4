"""Run the unit tests and every notebook (quick profile) under three version sets.

Usage: ``python tools/test_matrix.py [lowest] [colab] [newest]`` (``make test-matrix``
runs all three). Each environment is a virtual environment in
``_build/matrix/<name>``, built on first use and reused afterwards (``--rebuild``
starts it afresh):

- ``lowest``: the lowest versions ``pyproject.toml`` declares, pinned in
  ``tools/matrix/lowest.txt`` (a test checks that the two agree), on the oldest
  Python the package declares;
- ``colab``: the versions Google Colab's runtime ships, from its published
  ``pip freeze`` (``tools/matrix/colab.txt`` names the source);
- ``newest``: the newest releases of everything, on the newest Python.

The package is installed from the checkout without ``-e``, as a reader installs
it. Logs go to ``_build/matrix/<name>/*.log``; the exit status is non-zero when
any environment fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / "_build" / "matrix"
# What the tests need besides the package's own dependencies.
TEST_TOOLS = ["pytest", "nbval", "ipykernel", "nbclient", "nbformat", "PyYAML", "packaging"]
STEPS = ("unit", "nbval")


@dataclass(frozen=True)
class Environment:
    """One version set: which Python, and which constraints file pins the packages."""

    name: str
    python: str
    constraints: str | None
    upgrade: bool = False


ENVIRONMENTS = {
    "lowest": Environment("lowest", "3.10", "tools/matrix/lowest.txt"),
    "colab": Environment("colab", "3.13", "tools/matrix/colab.txt"),
    "newest": Environment("newest", "3.13", None, upgrade=True),
}


def find_python(version: str) -> str | None:
    """An interpreter of this minor version: on PATH, or among pyenv's installs."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(
                tuple(int(part) for part in version.split("."))):
            return candidate
    return None


def run_logged(command: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Run a command with its output in ``log``; return its exit status."""
    with log.open("w") as output:
        output.write("$ " + " ".join(command) + "\n")
        output.flush()
        return subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                              env=env).returncode


def dependency_names() -> list[str]:
    """The package's dependencies, as pyproject.toml lists them (bounds left out)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return [re.match(r"[A-Za-z0-9_.-]+", item).group(0)
            for item in re.findall(r'"([^"]+)"', block)]


def pinned_requirement(name: str) -> str:
    """``name==version`` as requirements.txt pins it."""
    text = (ROOT / "requirements.txt").read_text()
    return re.search(rf"^{re.escape(name)}==\S+", text, re.M | re.I).group(0)


def install(environment: Environment, folder: Path, python: str, rebuild: bool) -> int:
    venv = folder / "venv"
    if rebuild or not (venv / ".installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        constraints = ["-c", environment.constraints] if environment.constraints else []
        upgrade = ["--upgrade"] if environment.upgrade else []
        # The tidy test formats the notebooks with ruff, whose output changes between
        # releases: every environment gets the version requirements.txt pins.
        tools = [*TEST_TOOLS, pinned_requirement("ruff")]
        status = run_logged([*pip, *upgrade, *constraints, *dependency_names(), *tools],
                            folder / "install.log")
        if status:
            return status
        (venv / ".installed").touch()
    # The checkout's current code, installed as a reader installs it (no -e).
    return run_logged([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                       "--no-deps", "--force-reinstall", "."], folder / "package.log")


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def test(environment: Environment, python: str, rebuild: bool,
         steps: tuple[str, ...] = STEPS) -> dict[str, str]:
    """Build one environment and run the tests in it; one summary per step."""
    folder = MATRIX / environment.name
    folder.mkdir(parents=True, exist_ok=True)
    if install(environment, folder, python, rebuild):
        return {"install": f"failed, see {folder / 'install.log'}"}
    bin_dir = folder / "venv" / "bin"
    versions = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import platform, tensorflow as t, keras as k, numpy as n, pandas as p; "
         "print(f'Python {platform.python_version()}, TensorFlow {t.__version__}, '"
         "f'Keras {k.__version__}, NumPy {n.__version__}, pandas {p.__version__}')"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    summary = {"versions": versions.stdout.strip() or versions.stderr.strip()[-300:]}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    commands = {
        "unit": [str(bin_dir / "pytest"), "tests", "--ignore=tests/browser", "-q"],
        "nbval": [str(bin_dir / "pytest"), "--nbval-lax", "--nbval-current-env",
                  "--nbval-sanitize-with", "notebooks/nbval_sanitize.cfg", "notebooks", "-q"],
    }
    cache = folder / "model-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for step, command in commands.items():
        if step not in steps:
            continue
        step_env = {**env, "LENET_PROFILE": "quick", "LENET_CACHE_DIR": str(cache)}
        started = time.perf_counter()
        status = run_logged(command, folder / f"{step}.log", step_env)
        outcome = "passed" if status == 0 else f"FAILED (exit {status})"
        summary[step] = (f"{outcome}: {last_line(folder / f'{step}.log')} "
                         f"[{time.perf_counter() - started:.0f} s]")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="*", metavar="ENVIRONMENT",
                        help=f"some of {', '.join(ENVIRONMENTS)} (default: all)")
    parser.add_argument("--rebuild", action="store_true",
                        help="delete and rebuild the virtual environments")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="which of unit,nbval to run after installing (default: both; "
                             "'' only installs)")
    args = parser.parse_args(argv)
    steps = tuple(filter(None, args.steps.split(",")))
    if set(steps) - set(STEPS):
        parser.error(f"--steps {args.steps}: choose among {', '.join(STEPS)}")
    unknown = set(args.environments) - set(ENVIRONMENTS)
    if unknown:
        parser.error(f"unknown environment {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(ENVIRONMENTS)}")
    failed = False
    for name in args.environments or list(ENVIRONMENTS):
        environment = ENVIRONMENTS[name]
        python = find_python(environment.python)
        print(f"== {name}: Python {environment.python}", flush=True)
        if python is None:
            print(f"   FAILED: no Python {environment.python} found (on PATH as "
                  f"python{environment.python}, or under pyenv); install it and run again")
            failed = True
            continue
        summary = test(environment, python, args.rebuild, steps)
        for step, line in summary.items():
            print(f"   {step}: {line}", flush=True)
        failed |= any(line.startswith("FAILED") or line.startswith("failed")
                      for step, line in summary.items() if step != "versions")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
