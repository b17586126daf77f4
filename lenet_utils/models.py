"""The two LeNets: the modern ReLU/max-pool variant, and LeNet-5 re-exported.

LeNet-5 and its pieces live in :mod:`lenet_utils.lenet5`; ``build_lenet5``,
``C3_CONNECTIONS`` and ``scaled_tanh`` stay importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import pandas as pd
from keras import layers, ops

from lenet_utils.errors import LenetError
from lenet_utils.lenet5 import (  # noqa: F401 (re-exported: chapter 2 imports them here)
    C3_CONNECTIONS,
    RBFOutput,
    TrainableSubsampling,
    build_lenet5,
    scaled_tanh,
)

BATCH_NORM_PLACES = (None, "before", "after")

def build_lenet(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    conv_dropout: float = 0.0,
    dense_dropout: float = 0.0,
    batch_norm: str | None = None,
    batch_norm_momentum: float = 0.9,
    augmentation: bool = False,
    weight_decay: float = 0.0,
    name: str = "lenet",
) -> keras.Sequential:
    """The modern LeNet of the starting script, with optional regularisation.

    conv 20@5x5 "same" + ReLU + max-pool 2, conv 50@5x5 "same" + ReLU +
    max-pool 2, flatten, dense 500 + ReLU, dense ``num_classes`` + softmax:
    1,256,080 parameters for MNIST.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)`` of one image.
    num_classes : int
        Output units.
    conv_dropout : float
        Dropout rate after each pooling layer (0 adds none).
    dense_dropout : float
        Dropout rate after the 500-unit dense layer (0 adds none).
    batch_norm : {None, "before", "after"}
        Batch normalization after each conv and the hidden dense layer,
        before or after its ReLU; None adds none.
    batch_norm_momentum : float
        Momentum of the moving statistics used at inference. Keras's default,
        0.99, averages over the last few hundred steps; a small data set
        trained for a few hundred steps in all needs a shorter memory, or the
        moving statistics lag behind the weights (chapter 6 shows the failure).
    augmentation : bool
        Randomly shift (up to 10% of the size) and rotate (up to 10 degrees)
        every training image; the layers do nothing at inference.
    weight_decay : float
        L2 penalty on every kernel, added to the loss (0 adds none).
    name : str
        The model's name.

    Returns
    -------
    keras.Sequential
        An uncompiled model.

    Raises
    ------
    LenetError
        On an unknown ``batch_norm``, a rate outside [0, 1), a negative
        ``weight_decay``, or a bad shape.

    Examples
    --------
    >>> build_lenet().count_params()
    1256080
    """
    _check_input_shape(input_shape)
    _check_rate("conv_dropout", conv_dropout)
    _check_rate("dense_dropout", dense_dropout)
    if batch_norm not in BATCH_NORM_PLACES:
        raise LenetError(
            f"batch_norm={batch_norm!r} is not an option; choose None, 'before' or "
            "'after' (the activation)."
        )
    if not 0.0 < batch_norm_momentum < 1.0:
        raise LenetError(f"batch_norm_momentum={batch_norm_momentum} must be in (0, 1).")
    if weight_decay < 0:
        raise LenetError(f"weight_decay={weight_decay} must be 0 or positive.")
    decay = {"kernel_regularizer": keras.regularizers.L2(weight_decay)} if weight_decay else {}
    stack = [keras.Input(input_shape, name="image")]
    stack += _augmentation_layers() if augmentation else []
    norm = None if batch_norm is None else (batch_norm, batch_norm_momentum)
    stack += _relu_block(layers.Conv2D(20, 5, padding="same", name="conv1", **decay), norm)
    stack += [layers.MaxPooling2D(2, name="pool1")] + _dropout(conv_dropout, "drop1")
    stack += _relu_block(layers.Conv2D(50, 5, padding="same", name="conv2", **decay), norm)
    stack += [layers.MaxPooling2D(2, name="pool2")] + _dropout(conv_dropout, "drop2")
    stack += [layers.Flatten(name="flatten")]
    stack += _relu_block(layers.Dense(500, name="dense1", **decay), norm)
    stack += _dropout(dense_dropout, "drop3")
    # float32 even under a mixed-precision policy: a softmax in bfloat16 rounds
    # probabilities near 1, and the loss needs them exact.
    stack += [layers.Dense(num_classes, activation="softmax", dtype="float32", name="output",
                           **decay)]
    return keras.Sequential(stack, name=name)


def _augmentation_layers() -> list[layers.Layer]:
    return [
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="random_shift"),
        layers.RandomRotation(10 / 360, fill_mode="constant", name="random_rotation"),
    ]


def _relu_block(
    layer: layers.Layer, batch_norm: tuple[str, float] | None
) -> list[layers.Layer]:
    relu = layers.ReLU(name=f"{layer.name}_relu")
    if batch_norm is None:
        return [layer, relu]
    place, momentum = batch_norm
    norm = layers.BatchNormalization(momentum=momentum, name=f"{layer.name}_bn")
    return [layer, norm, relu] if place == "before" else [layer, relu, norm]


def _dropout(rate: float, name: str) -> list[layers.Layer]:
    return [layers.Dropout(rate, name=name)] if rate > 0 else []


def _check_rate(argument: str, rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise LenetError(f"{argument}={rate} must be in [0, 1); 0 means no dropout.")


def _check_input_shape(input_shape: Sequence[int]) -> None:
    if len(input_shape) != 3 or any(int(size) < 1 for size in input_shape):
        raise LenetError(
            f"input_shape={tuple(input_shape)} must be (height, width, channels), "
            "for MNIST (28, 28, 1)."
        )


def count_connections(layer: layers.Layer) -> int:
    """Connections of a layer as the 1998 paper counts them.

    A shared weight counts once per output position it is used at; a layer
    without weights has none, except LeNet-5's RBF output, whose fixed codes
    connect each of its units to all of F6.
    """
    if isinstance(layer, RBFOutput):
        return int(layer.output.shape[-1]) * int(layer.input.shape[-1])
    if not layer.weights:
        return 0
    _, *spatial, _ = layer.output.shape
    positions = int(ops.prod(spatial)) if spatial else 1
    if isinstance(layer, TrainableSubsampling):
        return positions * layer.output.shape[-1] * (4 + 1)
    return positions * layer.count_params()


def layer_table(model: keras.Model, connections: bool = False) -> pd.DataFrame:
    """One row per layer: its type, output shape and parameter count.

    Parameters
    ----------
    model : keras.Model
        A built model.
    connections : bool
        Add the paper's connection count (for LeNet-5).

    Returns
    -------
    pandas.DataFrame
        Indexed by layer name, with a total row.

    Examples
    --------
    >>> layer_table(build_lenet()).loc["total", "parameters"]
    1256080
    """
    rows = []
    for layer in model.layers:
        row = {"layer": layer.name, "type": type(layer).__name__,
               "output shape": str(tuple(layer.output.shape[1:])),
               "parameters": layer.count_params()}
        if connections:
            row["connections"] = count_connections(layer)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("layer")
    table.loc["total"] = ["", ""] + list(table.select_dtypes("number").sum())
    return table
