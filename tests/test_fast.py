"""The benchmark's two recipes are training configurations like any other."""

import numpy as np
import pytest

from lenet_utils import fast
from lenet_utils.training import TrainingConfig


def test_the_starting_recipe_is_the_starting_script():
    recipe = fast.STARTING_RECIPE
    assert isinstance(recipe, TrainingConfig)
    assert (recipe.pipeline, recipe.loss, recipe.optimizer, recipe.learning_rate,
            recipe.batch_size, recipe.epochs, recipe.precision, recipe.schedule) == (
        "numpy_float64", "categorical_crossentropy", "sgd", 0.01, 128, 20, "float32",
        "constant")


def test_the_fast_recipe():
    recipe = fast.FAST_RECIPE
    assert isinstance(recipe, TrainingConfig)
    assert (recipe.pipeline, recipe.optimizer, recipe.learning_rate, recipe.schedule,
            recipe.batch_size, recipe.epochs, recipe.precision, recipe.model_options) == (
        "tf_data", "adam", 3e-3, "one_cycle", 256, 3, "auto", {})


@pytest.mark.parametrize("native", [True, False])
def test_the_fast_recipe_uses_bfloat16_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr("lenet_utils.device.has_native_bfloat16", lambda: native)
    expected = "mixed_bfloat16" if native else "float32"
    assert fast.FAST_RECIPE.resolved_precision == expected


def test_the_fast_recipe_builds_a_mixed_precision_model_with_float32_weights(monkeypatch):
    monkeypatch.setattr("lenet_utils.device.has_native_bfloat16", lambda: True)
    model = fast.FAST_RECIPE.build_model(steps_per_epoch=10)
    conv1 = model.get_layer("conv1")
    assert conv1.compute_dtype == "bfloat16" and conv1.variable_dtype == "float32"
    assert model(np.zeros((2, 28, 28, 1), "float32")).dtype == "float32"
    assert model.optimizer.learning_rate.numpy() == pytest.approx(3e-3 / 25)
