"""The from-scratch batch normalization of chapter 6 against Keras's layer."""

import keras
import numpy as np
import pytest

from lenet_utils import LenetError
from lenet_utils.from_scratch import batch_norm_inference, batch_norm_training


def keras_layer(shape, momentum, epsilon, rng):
    """A built Keras layer with random gamma, beta and moving statistics."""
    channels = shape[-1]
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    layer.build((None, *shape[1:]))
    layer.set_weights([rng.uniform(0.5, 2.0, channels), rng.normal(0, 1, channels),
                       rng.normal(0, 1, channels), rng.uniform(0.5, 2.0, channels)])
    return layer


@pytest.mark.parametrize("shape", [(16, 5), (8, 6, 6, 4)], ids=["dense", "conv"])
@pytest.mark.parametrize("momentum, epsilon", [(0.99, 1e-3), (0.5, 0.1)])
def test_training_mode_matches_keras_step_after_step(shape, momentum, epsilon):
    rng = np.random.default_rng(0)
    layer = keras_layer(shape, momentum, epsilon, rng)
    gamma, beta, mean, variance = layer.get_weights()
    for _ in range(3):  # the moving statistics must follow Keras's over several steps
        x = rng.normal(3.0, 2.0, shape).astype("float32") * rng.uniform(0.1, 5, shape[-1])
        expected = np.asarray(layer(x, training=True))
        output, mean, variance = batch_norm_training(x, gamma, beta, mean, variance,
                                                     momentum, epsilon)
        np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(mean, np.asarray(layer.moving_mean), rtol=1e-5)
        np.testing.assert_allclose(variance, np.asarray(layer.moving_variance), rtol=1e-5)


@pytest.mark.parametrize("shape", [(16, 5), (8, 6, 6, 4)], ids=["dense", "conv"])
def test_inference_mode_matches_keras(shape):
    rng = np.random.default_rng(1)
    layer = keras_layer(shape, 0.9, 1e-3, rng)
    x = rng.normal(1.0, 3.0, shape).astype("float32")
    expected = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(batch_norm_inference(x, *layer.get_weights()), expected,
                               rtol=1e-4, atol=1e-4)


def test_conv_statistics_are_per_channel_over_batch_height_and_width():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (4, 5, 5, 3)) * [1.0, 10.0, 100.0] + [0.0, -5.0, 50.0]
    ones, zeros = np.ones(3), np.zeros(3)
    output, mean, variance = (np.asarray(a) for a in batch_norm_training(
        x, ones, zeros, zeros, ones, momentum=0.0, epsilon=0.0))
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(axis=0))
    np.testing.assert_allclose(variance, x.reshape(-1, 3).var(axis=0))
    np.testing.assert_allclose(output.reshape(-1, 3).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(output.reshape(-1, 3).std(axis=0), 1)


def test_gamma_and_beta_set_the_output_scale_and_shift():
    x = np.random.default_rng(3).normal(0, 5, (64, 2))
    output, _, _ = batch_norm_training(x, np.array([2.0, 0.5]), np.array([1.0, -3.0]),
                                       np.zeros(2), np.ones(2), epsilon=0.0)
    output = np.asarray(output)
    np.testing.assert_allclose(output.mean(axis=0), [1.0, -3.0], atol=1e-12)
    np.testing.assert_allclose(output.std(axis=0), [2.0, 0.5])


def test_inference_ignores_the_batch():
    one_image = np.array([[4.0, 4.0]])
    output = batch_norm_inference(one_image, np.ones(2), np.zeros(2),
                                  np.array([2.0, 0.0]), np.array([4.0, 1.0]), epsilon=0.0)
    np.testing.assert_allclose(output, [[1.0, 4.0]])


def test_bad_arguments_are_named():
    x, ones = np.zeros((4, 3)), np.ones(3)
    with pytest.raises(LenetError, match=r"shape \(2,\)"):
        batch_norm_training(x, np.ones(2), ones, ones, ones)
    with pytest.raises(LenetError, match="momentum=1.0"):
        batch_norm_training(x, ones, ones, ones, ones, momentum=1.0)
    with pytest.raises(LenetError, match="channel axis"):
        batch_norm_inference(np.zeros(3), ones, ones, ones, ones)
