"""The chapters show the Keras they teach, in code cells that run."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def code_of(notebook: str) -> ast.Module:
    """The notebook's code cells as one parsed module, IPython magics as ``pass``."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    lines = [_without_magic(line) for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines()]
    return ast.parse("\n".join(lines))


def _without_magic(line: str) -> str:
    code = line.lstrip()
    if code.startswith(("%", "!")):
        return line[:len(line) - len(code)] + "pass"
    return line


def called_names(tree: ast.Module) -> set[str]:
    """Dotted names of everything called: ``keras.Sequential``, ``model.fit``, ..."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
    return names


def has_keras_model(names: set[str]) -> bool:
    return bool(names & {"keras.Sequential", "keras.Model"})


def has_method(names: set[str], method: str) -> bool:
    return any(name.endswith(f".{method}") for name in names)


def test_chapter_2_builds_the_model_with_keras():
    names = called_names(code_of("02_architecture.ipynb"))
    assert has_keras_model(names), "chapter 2 must write the model with keras.Sequential"
    assert "build_lenet" in names, "chapter 2 must compare it with build_lenet()"


@pytest.mark.parametrize("method", ["compile", "fit"])
def test_chapter_3_compiles_and_fits_a_keras_model(method):
    names = called_names(code_of("03_training.ipynb"))
    assert has_keras_model(names), "chapter 3 must build the model with keras.Sequential"
    assert has_method(names, method), f"chapter 3 must call model.{method}(...)"


def test_chapter_5_checks_its_dropout_against_the_keras_layer():
    tree = code_of("05_dropout.ipynb")
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "dropout" in defined, "chapter 5 must write dropout from scratch"
    assert "keras.layers.Dropout" in called_names(tree)
