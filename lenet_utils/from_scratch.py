"""Tested copies of the layers the chapters write from scratch.

A chapter writes a layer out in a few lines of :mod:`keras.ops` and checks
it against the Keras layer; this module holds the same code, so that the
test suite keeps checking it, in training and in inference mode
(``tests/test_from_scratch.py``, ``tests/test_from_scratch_batch_norm.py``).

- :func:`dropout` (chapter 5): inverted dropout, like ``keras.layers.Dropout``.
- :func:`batch_norm_training` and :func:`batch_norm_inference` (chapter 6):
  batch normalization, like ``keras.layers.BatchNormalization``.

The functions work on any Keras backend; the exact-mask comparison with Keras
in the tests relies on TensorFlow drawing dropout's mask as ``uniform >= rate``
from the layer's seed generator.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lenet_utils.errors import LenetError

Tensor = Any  # a NumPy array or a tensor of the Keras backend


def dropout(
    inputs,
    rate: float,
    *,
    training: bool,
    seed: int | keras.random.SeedGenerator | None = None,
):
    """Inverted dropout: zero each value with probability ``rate`` and rescale the rest.

    In training, every value is kept with probability ``1 - rate`` and then
    divided by ``1 - rate``, so that each value's expectation is unchanged;
    at inference the inputs pass through untouched.

    Parameters
    ----------
    inputs : array-like
        A tensor or array of any shape.
    rate : float
        The probability of dropping a value, in [0, 1).
    training : bool
        Drop and rescale (True) or return ``inputs`` unchanged (False).
    seed : int or keras.random.SeedGenerator, optional
        The randomness of the mask: an int always draws the same mask, a
        ``SeedGenerator`` a new one at every call (as ``keras.layers.Dropout``
        does), None Keras's global generator.

    Returns
    -------
    tensor
        The same shape and dtype as ``inputs``.

    Raises
    ------
    LenetError
        If ``rate`` is outside [0, 1).

    Examples
    --------
    >>> ones = ops.ones((1, 6))
    >>> dropout(ones, 0.5, training=True, seed=1)  # doctest: +SKIP
    array([[2., 0., 2., 2., 0., 0.]], dtype=float32)
    >>> bool(ops.all(dropout(ones, 0.5, training=False) == ones))
    True
    """
    if not 0.0 <= rate < 1.0:
        raise LenetError(f"rate={rate} must be in [0, 1); 0 drops nothing.")
    if not training or rate == 0.0:
        return inputs
    inputs = ops.convert_to_tensor(inputs)
    keep = keras.random.uniform(ops.shape(inputs), seed=seed) >= rate
    return ops.where(keep, inputs / (1.0 - rate), ops.zeros_like(inputs))


def batch_norm_training(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    moving_mean: Tensor,
    moving_variance: Tensor,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Batch normalization in training mode, as ``keras.layers.BatchNormalization``.

    Every channel (the last axis) is standardized with the mean and the
    (biased) variance of the batch, over every other axis: batch, height and
    width for a convolution's output. Then it is scaled by ``gamma`` and
    shifted by ``beta``. The moving statistics move a fraction ``1 -
    momentum`` of the way towards the batch's.

    Parameters
    ----------
    x : array or tensor of shape (batch, ..., channels)
    gamma, beta : array or tensor of shape (channels,)
        The learned scale and shift.
    moving_mean, moving_variance : array or tensor of shape (channels,)
        The moving statistics before this batch.
    momentum : float
        How much of the old moving statistics to keep, in [0, 1).
    epsilon : float
        Added to the variance before the square root.

    Returns
    -------
    output : tensor, shaped like ``x``
    moving_mean, moving_variance : tensor of shape (channels,)
        The updated moving statistics.

    Raises
    ------
    LenetError
        If a per-channel array does not match the channels of ``x`` or
        ``momentum`` is outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0], [5.0]])
    >>> one, zero = np.ones(1), np.zeros(1)
    >>> output, mean, variance = batch_norm_training(x, one, zero, zero, one, epsilon=0)
    >>> [ops.convert_to_numpy(a).ravel().round(4).tolist() for a in (output, mean, variance)]
    [[-1.0, 1.0], [0.03], [1.03]]
    """
    _check(x, gamma, beta, moving_mean, moving_variance)
    if not 0.0 <= momentum < 1.0:
        raise LenetError(f"momentum={momentum} must be in [0, 1).")
    axes = tuple(range(len(x.shape) - 1))  # all but the channels
    mean, variance = ops.mean(x, axis=axes), ops.var(x, axis=axes)
    output = gamma * (x - mean) / ops.sqrt(variance + epsilon) + beta
    moving_mean = momentum * moving_mean + (1 - momentum) * mean
    moving_variance = momentum * moving_variance + (1 - momentum) * variance
    return output, moving_mean, moving_variance


def batch_norm_inference(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    moving_mean: Tensor,
    moving_variance: Tensor,
    epsilon: float = 1e-3,
) -> Tensor:
    """Batch normalization in inference mode: the moving statistics, not the batch's.

    Parameters
    ----------
    x : array or tensor of shape (batch, ..., channels)
    gamma, beta, moving_mean, moving_variance : array or tensor of shape (channels,)
    epsilon : float

    Returns
    -------
    tensor, shaped like ``x``

    Raises
    ------
    LenetError
        If a per-channel array does not match the channels of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0], [3.0]])
    >>> one, zero = np.ones(1), np.zeros(1)
    >>> ops.convert_to_numpy(batch_norm_inference(x, one, zero, zero, one, epsilon=0))
    array([[1.],
           [3.]])
    """
    _check(x, gamma, beta, moving_mean, moving_variance)
    return gamma * (x - moving_mean) / ops.sqrt(moving_variance + epsilon) + beta


def _check(x: Tensor, *per_channel: Tensor) -> None:
    shape = tuple(ops.shape(x))
    if len(shape) < 2:
        raise LenetError(f"x of shape {shape} needs a batch axis and a channel axis.")
    for array in per_channel:
        if tuple(ops.shape(array)) != shape[-1:]:
            raise LenetError(f"a per-channel array has shape {tuple(ops.shape(array))}; x has "
                             f"{shape[-1]} channels, so pass arrays of shape ({shape[-1]},).")
