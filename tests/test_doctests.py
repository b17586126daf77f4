"""The package's docstring examples run and print what they say."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import lenet_utils

MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(lenet_utils.__path__, "lenet_utils.")
    if not info.ispkg
)


def test_every_module_is_collected():
    assert {"lenet_utils.lenet5", "lenet_utils.diagnostics"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    # models.layer_table's example prints a NumPy scalar as NumPy 1 did
    # (1256080, not np.int64(1256080)); its docstring stays as it is because
    # the source of models.py is part of the model cache's key.
    with np.printoptions(legacy="1.25"):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
