"""Tidy the notebooks: code that fits the page, one Colab cell, a GPU in Colab.

Usage::

    python tools/tidy_notebooks.py notebooks/*.ipynb          # rewrite what needs it
    python tools/tidy_notebooks.py --check notebooks/*.ipynb  # list it, exit 1 if any

For each notebook, and never touching an output:

- the first code cell becomes the book's Colab cell (``COLAB_CELL``), tagged
  ``hide-input`` so that the book shows it collapsed under "Show code cell source";
- the notebook's metadata asks Colab for a GPU runtime (``accelerator``, and
  ``colab.gpuType`` as Colab itself writes it) and names the ``python3`` kernel;
- cells lose the execution timestamps some front ends store;
- the code is sorted (imports) and formatted by ruff at 80 columns
  (``notebooks/ruff.toml``); IPython magics such as ``%pip`` are kept.

Running it twice changes nothing the second time. Lines that ruff cannot
shorten (long strings or comments) stay long: ``make lint`` and
``tests/test_notebooks.py`` name them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
COLAB_MARKER = '"google.colab" in sys.modules'
COLAB_TAG = "hide-input"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
# Front-end state that changes on every run and means nothing to a reader.
VOLATILE_CELL_METADATA = ("execution",)


class TidyError(Exception):
    """A notebook that needs a person: the script cannot tidy it alone."""


def colab_cell(repository_url: str | None = None) -> str:
    """The first code cell of every notebook: quiet TensorFlow, install in Colab."""
    if repository_url is None:
        config = yaml.safe_load((ROOT / "_config.yml").read_text())
        repository_url = config["repository"]["url"]
    return (
        "# Quiet TensorFlow's start-up log; in Colab, install the book's package.\n"
        "import os\n"
        "import sys\n"
        "\n"
        'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")\n'
        f"if {COLAB_MARKER}:\n"
        f"    %pip install --quiet git+{repository_url}"
    )


def tidy_metadata(notebook: nbformat.NotebookNode, name: str) -> None:
    """Set the notebook's and the Colab cell's metadata, in place."""
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["accelerator"] = COLAB_METADATA["accelerator"]
    colab = dict(notebook.metadata.get("colab", {}))
    notebook.metadata["colab"] = {**colab, **COLAB_METADATA["colab"]}
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if not code or COLAB_MARKER not in code[0].source:
        raise TidyError(f"{name}: the first code cell is not the Colab cell (it must test "
                        f"{COLAB_MARKER}); add it before the notebook's other code")
    code[0].source = colab_cell()
    tags = code[0].metadata.setdefault("tags", [])
    if COLAB_TAG not in tags:
        tags.append(COLAB_TAG)
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)


def ruff(arguments: list[str], text: str, path: Path) -> str:
    """Run ruff on ``text`` as if it were the file ``path`` (so its configuration applies)."""
    command = [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(path), "-"]
    result = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TidyError(f"{path.name}: ruff {arguments[0]} failed: {result.stderr.strip()}")
    return result.stdout


def tidy_text(text: str, path: Path) -> str:
    """The tidied version of the notebook ``text`` stored at ``path``."""
    notebook = nbformat.reads(text, as_version=4)
    tidy_metadata(notebook, path.name)
    text = nbformat.writes(notebook) + "\n"
    text = ruff(["check", "--fix-only", "--select", "I"], text, path)
    return ruff(["format"], text, path)


def what_changed(before: str, after: str) -> list[str]:
    """Which kinds of change tidying makes: metadata, tags or code."""
    old, new = json.loads(before), json.loads(after)
    changes = []
    if old["metadata"] != new["metadata"]:
        changes.append("notebook metadata")
    if len(old["cells"]) != len(new["cells"]):  # tidying never adds cells; be explicit anyway
        return [*changes, "cells"]
    for index, (was, now) in enumerate(zip(old["cells"], new["cells"], strict=True)):
        if was["metadata"] != now["metadata"]:
            changes.append(f"cell {index} metadata")
        if was["source"] != now["source"]:
            first_line = "".join(now["source"]).splitlines()[0] if now["source"] else ""
            changes.append(f"cell {index} code ({first_line[:50]!r})")
    return changes or ["formatting of the file"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list what would change and exit 1 if anything would")
    parser.add_argument("notebooks", nargs="+", type=Path)
    arguments = parser.parse_args(argv)
    untidy, failed = 0, 0
    for path in arguments.notebooks:
        before = path.read_text(encoding="utf-8")
        try:
            after = tidy_text(before, path.resolve())
        except TidyError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        if after == before:
            continue
        untidy += 1
        if arguments.check:
            print(f"{path}: would change {', '.join(what_changed(before, after))}")
        else:
            path.write_text(after, encoding="utf-8")
            print(f"tidied {path}")
    if arguments.check and untidy:
        print(f"{untidy} notebook(s) to tidy: run make tidy "
              "(python tools/tidy_notebooks.py notebooks/*.ipynb)")
    return 1 if failed or (arguments.check and untidy) else 0


if __name__ == "__main__":
    sys.exit(main())
