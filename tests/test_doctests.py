"""The package's docstring examples run and print what they say."""

import doctest
import importlib
import math
import pkgutil

import numpy as np
import pytest

import lenet_utils

MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(lenet_utils.__path__, "lenet_utils.")
    if not info.ispkg
)


class FloatTolerantChecker(doctest.OutputChecker):
    """Accepts a printed float that matches the expected one to 1e-6.

    ``lenet5.paper_schedule``'s examples print float32 values as written
    (0.0002, not 0.00019999999494757503). Their docstrings stay as they are:
    the source of ``lenet5.py`` and ``models.py`` is part of the model cache's
    key, so editing it would orphan every cached model.
    """

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        try:
            return math.isclose(float(want), float(got), rel_tol=1e-6)
        except ValueError:
            return False


def test_every_module_is_collected():
    assert {"lenet_utils.lenet5", "lenet_utils.diagnostics"} <= set(MODULES)


def test_the_checker_tolerates_float32_rounding_only():
    checker = FloatTolerantChecker()
    assert checker.check_output("0.0002\n", "0.00019999999494757503\n", 0)
    assert not checker.check_output("0.0002\n", "0.0003\n", 0)
    assert not checker.check_output("[1, 2]\n", "[1, 3]\n", 0)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(
        checker=FloatTolerantChecker(), optionflags=doctest.ELLIPSIS
    )
    # models.layer_table's example prints a NumPy scalar as NumPy 1 did
    # (1256080, not np.int64(1256080)), for the same reason.
    with np.printoptions(legacy="1.25"):
        for test in finder.find(module, module.__name__):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
