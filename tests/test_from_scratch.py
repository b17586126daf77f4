"""The from-scratch layers of the chapters against their Keras layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lenet_utils import LenetError
from lenet_utils.from_scratch import dropout

RATES = [0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(64, 500)).astype("float32")


@pytest.mark.parametrize("rate", [0.0, *RATES])
def test_inference_returns_the_inputs_as_keras_does(values, rate):
    ours = np.asarray(dropout(values, rate, training=False))
    theirs = np.asarray(keras.layers.Dropout(rate, seed=3)(values, training=False))
    np.testing.assert_array_equal(ours, values)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("rate", RATES)
def test_training_draws_the_mask_keras_draws_from_the_same_seed(values, rate):
    layer = keras.layers.Dropout(rate, seed=11)
    generator = keras.random.SeedGenerator(11)
    for _ in range(2):  # the second call draws a new mask, in both
        theirs = np.asarray(layer(values, training=True))
        ours = np.asarray(dropout(values, rate, training=True, seed=generator))
        np.testing.assert_array_equal(ours == 0, theirs == 0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("rate", RATES)
def test_training_statistics_match_inverted_dropout_and_keras(rate):
    ones = np.ones((400, 1000), dtype="float32")
    n = ones.size
    ours = np.asarray(dropout(ones, rate, training=True, seed=5))
    theirs = np.asarray(keras.layers.Dropout(rate, seed=6)(ones, training=True))
    for output in (ours, theirs):
        zeros = np.mean(output == 0)
        assert abs(zeros - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
        np.testing.assert_allclose(output[output != 0], 1 / (1 - rate), rtol=1e-6)
        assert abs(output.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)


def test_a_zero_rate_drops_nothing_in_training(values):
    np.testing.assert_array_equal(np.asarray(dropout(values, 0.0, training=True)), values)


def test_different_seeds_draw_different_masks(values):
    first = np.asarray(dropout(values, 0.5, training=True, seed=1))
    second = np.asarray(dropout(values, 0.5, training=True, seed=2))
    assert not np.array_equal(first == 0, second == 0)


def test_an_int_seed_draws_the_same_mask_every_call(values):
    first = np.asarray(dropout(values, 0.5, training=True, seed=1))
    again = np.asarray(dropout(values, 0.5, training=True, seed=1))
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_a_rate_outside_zero_to_one_is_refused(values, rate):
    with pytest.raises(LenetError, match="rate="):
        dropout(values, rate, training=True)
