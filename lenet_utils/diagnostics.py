"""Measurements the chapters take during and after training.

Two callbacks record what Keras's per-epoch log leaves out: the loss of every
training step (:class:`StepLosses`) and any measurement of the model after
every epoch (:class:`EpochMeasurements`). :func:`confidence_on_errors` says
how sure a classifier is when it is wrong. The batch-normalization helpers
read a model's moving statistics, measure the batch statistics its layers
see in training mode, and re-estimate the former from the latter. :func:`by_layer`
groups one array per trainable variable (SDLM's curvature) by layer,
:func:`error_percent` gives a compiled model's error on a data set in percent,
and :func:`errors_per_pass` the training error of each epoch of several runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np
import pandas as pd

from lenet_utils.errors import LenetError

Statistics = dict[str, tuple[np.ndarray, np.ndarray]]


class StepLosses(keras.callbacks.Callback):
    """The training loss of every step, not only the mean of every epoch.

    Keras passes its callbacks the mean loss of the epoch so far, weighted by
    batch size; this callback turns those running means back into the loss of
    each batch.

    Parameters
    ----------
    train_size : int
        Examples in the training set.
    batch_size : int
        Examples per batch (the last batch of an epoch may be smaller).

    Attributes
    ----------
    losses : list of float
        One loss per step, in order, over all epochs.

    Raises
    ------
    LenetError
        If a size is not a positive integer.

    Examples
    --------
    >>> steps = StepLosses(train_size=1000, batch_size=128)
    >>> model.fit(..., callbacks=[steps])  # doctest: +SKIP
    >>> steps.series().head()  # doctest: +SKIP
    """

    def __init__(self, train_size: int, batch_size: int) -> None:
        super().__init__()
        if train_size < 1 or batch_size < 1:
            raise LenetError(f"train_size={train_size} and batch_size={batch_size} must "
                             "be positive integers.")
        self.train_size = train_size
        self.batch_size = batch_size
        self.losses: list[float] = []
        self._seen = 0
        self._total = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._seen, self._total = 0, 0.0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        size = min(self.batch_size, self.train_size - self._seen)
        self._seen += size
        total = float((logs or {})["loss"]) * self._seen
        self.losses.append((total - self._total) / size)
        self._total = total

    def series(self) -> pd.Series:
        """The losses indexed by step, counted from 1."""
        return pd.Series(self.losses, index=pd.RangeIndex(1, len(self.losses) + 1,
                                                          name="step"), name="loss")


class EpochMeasurements(keras.callbacks.Callback):
    """Measure the model after every epoch, or chosen ones, with any function.

    Parameters
    ----------
    measure : callable
        Takes the model and returns a dict of numbers; it must leave the
        model as it found it.
    epochs : iterable of int, optional
        The epochs (counted from 1) after which to measure; None measures
        after every epoch. Measuring costs time: choose the epochs a figure
        needs.

    Attributes
    ----------
    rows : dict
        Epoch to what ``measure`` returned.

    Examples
    --------
    >>> errors = EpochMeasurements(
    ...     lambda model: confidence_on_errors(model.predict(x, verbose=0), y))
    >>> model.fit(..., callbacks=[errors])  # doctest: +SKIP
    >>> errors.table()  # doctest: +SKIP
    """

    def __init__(
        self,
        measure: Callable[[keras.Model], dict[str, float]],
        epochs: Iterable[int] | None = None,
    ) -> None:
        super().__init__()
        self.measure = measure
        self.epochs = None if epochs is None else set(epochs)
        self.rows: dict[int, dict[str, float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.epochs is None or epoch + 1 in self.epochs:
            self.rows[epoch + 1] = dict(self.measure(self.model))

    def table(self) -> pd.DataFrame:
        """One row per measured epoch, indexed by epoch like a training history."""
        return pd.DataFrame.from_dict(self.rows, orient="index").rename_axis("epoch")


def confidence_on_errors(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How sure a classifier is when it is wrong, and what its errors cost.

    The log-loss (mean cross-entropy) is split into the part the
    misclassified images contribute and the part the others do; the two
    parts add up to the loss.

    Parameters
    ----------
    probabilities : ndarray of shape (n, classes)
        Predicted class probabilities (a softmax output).
    labels : ndarray of shape (n,)
        True classes.

    Returns
    -------
    dict
        ``errors`` (how many), ``confidence on errors`` (mean top probability
        on the misclassified images), ``confidence when right``, ``loss``,
        ``loss from errors`` and ``loss from correct``.

    Raises
    ------
    LenetError
        If the shapes do not match.

    Examples
    --------
    >>> confidence_on_errors(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))["errors"]
    1
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    labels = np.asarray(labels).astype(int)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise LenetError(f"probabilities of shape {probabilities.shape} must be (n, classes) "
                         f"for labels of shape {labels.shape}; pass one row per label.")
    wrong = probabilities.argmax(axis=1) != labels
    top = probabilities.max(axis=1)
    true_class = probabilities[np.arange(len(labels)), labels]
    losses = -np.log(np.clip(true_class, 1e-12, 1.0)) / len(labels)
    return {
        "errors": int(wrong.sum()),
        "confidence on errors": float(top[wrong].mean()) if wrong.any() else np.nan,
        "confidence when right": float(top[~wrong].mean()) if (~wrong).any() else np.nan,
        "loss": float(losses.sum()),
        "loss from errors": float(losses[wrong].sum()),
        "loss from correct": float(losses[~wrong].sum()),
    }


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's batch-normalization layers, in order.

    Examples
    --------
    >>> from lenet_utils.models import build_lenet
    >>> [layer.name for layer in batch_norm_layers(build_lenet(batch_norm="before"))]
    ['conv1_bn', 'conv2_bn', 'dense1_bn']
    """
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def moving_statistics(model: keras.Model) -> Statistics:
    """The moving mean and variance of every batch-normalization layer.

    Returns
    -------
    dict
        Layer name to ``(moving_mean, moving_variance)``, per channel.

    Examples
    --------
    >>> from lenet_utils.models import build_lenet
    >>> moving_statistics(build_lenet(batch_norm="before"))["conv1_bn"][1][:3]
    array([1., 1., 1.], dtype=float32)
    """
    return {layer.name: (np.array(layer.moving_mean), np.array(layer.moving_variance))
            for layer in batch_norm_layers(model)}


def set_moving_statistics(model: keras.Model, statistics: Statistics) -> None:
    """Overwrite the moving statistics of the named batch-normalization layers.

    Parameters
    ----------
    model : keras.Model
    statistics : dict
        Layer name to ``(mean, variance)``, as :func:`moving_statistics`
        returns.

    Raises
    ------
    LenetError
        If a name is not a batch-normalization layer of the model.

    Examples
    --------
    >>> set_moving_statistics(model, moving_statistics(model))  # doctest: +SKIP
    """
    layers = {layer.name: layer for layer in batch_norm_layers(model)}
    unknown = sorted(set(statistics) - set(layers))
    if unknown:
        raise LenetError(f"statistics name {unknown}, which are not batch-normalization "
                         f"layers of {model.name} ({sorted(layers)}); pass only those.")
    for name, (mean, variance) in statistics.items():
        layer = layers[name]
        layer.moving_mean.assign(np.asarray(mean, dtype=layer.moving_mean.dtype))
        layer.moving_variance.assign(np.asarray(variance, dtype=layer.moving_variance.dtype))


def batch_statistics(model: keras.Model, images: np.ndarray, batch_size: int = 128) -> Statistics:
    """The statistics each batch-normalization layer normalizes by in training.

    The model runs in training mode, batch by batch, as in a training step
    (earlier layers normalize with their batch statistics too); each layer's
    per-channel batch means and variances are averaged over the batches,
    weighted by batch size. The model's moving statistics are left as they
    were.

    Parameters
    ----------
    model : keras.Model
        A built model with at least one batch-normalization layer.
    images : ndarray
        Training images, as the model takes them.
    batch_size : int
        The training batch size.

    Returns
    -------
    dict
        Layer name to ``(mean, variance)``, per channel.

    Raises
    ------
    LenetError
        If the model has no batch-normalization layer or ``images`` is empty.

    Examples
    --------
    >>> batch_statistics(model, small_train[0])["dense1_bn"][1].shape  # doctest: +SKIP
    (500,)
    """
    layers = batch_norm_layers(model)
    if not layers or len(images) == 0:
        raise LenetError(f"batch_statistics needs a model with batch normalization "
                         f"({model.name} has {len(layers)} such layers) and at least one "
                         f"image ({len(images)} given).")
    probe = keras.Model(model.inputs[0], [layer.input for layer in layers])
    saved = moving_statistics(model)  # training mode updates them; put them back below
    sums = {layer.name: [0.0, 0.0] for layer in layers}
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            outputs = probe(batch, training=True)
            outputs = outputs if len(layers) > 1 else [outputs]  # one output comes bare
            for layer, inputs in zip(layers, outputs, strict=True):
                values = np.asarray(inputs, dtype="float64")
                axes = tuple(range(values.ndim - 1))
                sums[layer.name][0] += values.mean(axis=axes) * len(batch)
                sums[layer.name][1] += values.var(axis=axes) * len(batch)
    finally:
        set_moving_statistics(model, saved)
    return {name: (mean / len(images), variance / len(images))
            for name, (mean, variance) in sums.items()}


def reestimate_batch_norm(model: keras.Model, images: np.ndarray, batch_size: int = 128) -> None:
    """Replace the moving statistics by the batch statistics of ``images``.

    After this, inference mode normalizes every layer by what it saw in
    training mode with the final weights, however stale the moving averages
    were.

    Examples
    --------
    >>> reestimate_batch_norm(model, small_train[0])  # doctest: +SKIP
    """
    set_moving_statistics(model, batch_statistics(model, images, batch_size))


def by_layer(model: keras.Model, values: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
    """One flat array per layer from one array per trainable variable.

    Pairs ``values`` (for instance SDLM's ``h_kk`` from
    :func:`lenet_utils.lenet5.diagonal_curvature`) with
    ``model.trainable_variables`` and joins each layer's kernel and bias.

    Parameters
    ----------
    model : keras.Model
    values : iterable of ndarray
        One array per trainable variable, in their order.

    Returns
    -------
    dict of str to ndarray
        Layer name to its values, flattened, in the model's order.

    Examples
    --------
    >>> medians = {name: np.median(h) for name, h in by_layer(model, curvatures).items()}
    ... # doctest: +SKIP
    """
    values = list(values)
    variables = model.trainable_variables
    if len(values) != len(variables):
        raise LenetError(f"{len(values)} arrays for the {len(variables)} trainable "
                         "variables of the model: give one per variable.")
    layers: dict[str, list[np.ndarray]] = {}
    for variable, value in zip(variables, values, strict=True):
        if tuple(np.shape(value)) != tuple(variable.shape):
            raise LenetError(f"an array of shape {np.shape(value)} for the variable "
                             f"{variable.path}, of shape {tuple(variable.shape)}.")
        layers.setdefault(variable.path.split("/")[-2], []).append(np.ravel(value))
    return {name: np.concatenate(parts) for name, parts in layers.items()}


def error_percent(model: keras.Model, data: tuple[np.ndarray, np.ndarray],
                  batch_size: int = 1024) -> float:
    """A compiled model's error on ``data``, in percent: 100 (1 - accuracy).

    The accuracy is the one the model was compiled with, so the same rule
    decides a prediction for every output (softmax or LeNet-5's RBF units).

    Parameters
    ----------
    model : keras.Model
        Compiled with ``metrics=["accuracy"]``.
    data : tuple of ndarray
        Images and labels.
    batch_size : int, default=1024

    Returns
    -------
    float

    Examples
    --------
    >>> error_percent(model, splits.test)  # doctest: +SKIP
    1.49
    """
    images, labels = data
    scores = model.evaluate(images, labels, batch_size=batch_size, verbose=0,
                            return_dict=True)
    if "accuracy" not in scores:
        raise LenetError(f"the model reports {sorted(scores)}, not its accuracy: "
                         'compile it with metrics=["accuracy"].')
    return 100 * (1 - float(scores["accuracy"]))


def errors_per_pass(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The training error (%) of each pass, one column per named history.

    Keras's running accuracy over each epoch, while the weights change,
    turned into an error in percent and rounded to two decimals.

    Raises
    ------
    LenetError
        If a history has no ``accuracy`` column.

    Examples
    --------
    >>> history = pd.DataFrame({"accuracy": [0.9, 0.99]}, index=[1, 2])
    >>> errors_per_pass({"run": history})["run"].tolist()
    [10.0, 1.0]
    """
    missing = [name for name, history in histories.items() if "accuracy" not in history]
    if missing:
        raise LenetError(f"histories {missing} have no 'accuracy' column: "
                         "compile the models with metrics=['accuracy'].")
    errors = {name: 100 * (1 - history["accuracy"]) for name, history in histories.items()}
    return pd.DataFrame(errors).rename_axis("pass").round(2)


def breaks(history: pd.DataFrame) -> bool:
    """Whether a run breaks: over some pass from 2 on, its training error is at
    least twice the lowest over the passes before it.

    The rule of the appendix's runs that keep their first curvature estimate
    (chapters 9e and 9f), read from Keras's running accuracy per pass.

    Examples
    --------
    >>> breaks(pd.DataFrame({"accuracy": [0.9, 0.99, 0.97]}, index=[1, 2, 3]))
    True
    >>> breaks(pd.DataFrame({"accuracy": [0.9, 0.99, 0.985]}, index=[1, 2, 3]))
    False
    """
    errors = 1 - history["accuracy"]
    lowest_before = errors.cummin().shift(1)
    return bool((errors.iloc[1:] >= 2 * lowest_before.iloc[1:]).any())


def run_errors(models: dict[str, keras.Model], histories: dict[str, pd.DataFrame],
               test: tuple[np.ndarray, np.ndarray],
               train: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """One row per named run: its test error, its training errors and whether it breaks.

    Columns: ``test error (%)``; ``training error (%)``, over the last pass
    (Keras's running accuracy, while the weights still change);
    ``training error, finished (%)``, of the finished network on ``train``;
    ``breaks`` (:func:`breaks`). Errors are rounded to two decimals.

    Examples
    --------
    >>> run_errors(models, histories, splits.test, splits.all_training)  # doctest: +SKIP
    """
    rows = {
        name: {
            "test error (%)": error_percent(model, test),
            "training error (%)": 100 * (1 - histories[name]["accuracy"].iloc[-1]),
            "training error, finished (%)": error_percent(model, train),
            "breaks": breaks(histories[name]),
        }
        for name, model in models.items()
    }
    runs = pd.DataFrame.from_dict(rows, orient="index")
    error_columns = [column for column in runs if column.endswith("(%)")]
    runs[error_columns] = runs[error_columns].round(2)
    return runs
