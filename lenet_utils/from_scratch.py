"""From-scratch versions of the layers the chapters teach, checked against Keras.

Each function here is the tested copy of code a chapter writes out in a few
lines of :mod:`keras.ops`, so that a reader can see what the Keras layer does
and the test suite can check that it does the same: ``tests/test_from_scratch.py``
compares every function with its Keras layer in training and in inference mode.

- :func:`dropout` (chapter 5): inverted dropout, like ``keras.layers.Dropout``.

The functions work on any Keras backend; the exact-mask comparison with Keras
in the tests relies on TensorFlow drawing dropout's mask as ``uniform >= rate``
from the layer's seed generator.
"""

from __future__ import annotations

import keras
from keras import ops

from lenet_utils.errors import LenetError


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
