"""Timing training to a target accuracy, and the stored time-to-99% benchmark.

:func:`time_to_accuracy` trains a :class:`~lenet_utils.training.TrainingConfig`
from raw uint8 images until the validation accuracy reaches a target, timing
every epoch. ``benchmarks/time_to_99.py`` runs it for the two recipes of
:mod:`lenet_utils.fast` and writes its results into this package
(``lenet_utils/results/time_to_99.json``), which :func:`load_benchmark_results`
reads without a network.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

from lenet_utils.data import Splits
from lenet_utils.errors import LenetError
from lenet_utils.training import TrainingConfig, count_training, set_seed

EVALUATION_BATCH = 1024
RESULTS_RESOURCE = ("results", "time_to_99.json")


def model_inputs(
    config: TrainingConfig, images: np.ndarray, labels: np.ndarray, *, training: bool,
) -> dict[str, Any]:
    """Keyword arguments that feed raw uint8 images to ``fit`` or ``evaluate``.

    Parameters
    ----------
    config : TrainingConfig
        Its ``pipeline``, ``batch_size`` and ``seed`` decide the form.
    images : ndarray
        uint8 images, ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.
    labels : ndarray
        Integer labels.
    training : bool
        Shuffle every epoch (seeded by ``config.seed``) and use the
        configured batch size; otherwise keep the order and use large batches.

    Returns
    -------
    dict
        ``{"x": ..., "y": ..., "batch_size": ...}`` for NumPy arrays, or
        ``{"x": dataset}``.

    Raises
    ------
    LenetError
        If the images are not raw uint8 28x28 images.

    Examples
    --------
    >>> model.fit(**model_inputs(config, *raw.train, training=True))  # doctest: +SKIP
    """
    if images.dtype != np.uint8 or images.shape[1:3] != (28, 28):
        raise LenetError(f"Expected raw uint8 images of 28x28 pixels, got {images.dtype} "
                         f"images of shape {images.shape}; load them with scaled=False.")
    images = images.reshape(-1, 28, 28, 1)
    batch_size = config.batch_size if training else EVALUATION_BATCH
    if config.pipeline == "numpy_float64":
        return {"x": images.astype("float") / 255.0,
                "y": keras.utils.to_categorical(labels, 10), "batch_size": batch_size}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    if training:
        dataset = dataset.shuffle(len(labels), seed=config.seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(_scale_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return {"x": dataset.prefetch(tf.data.AUTOTUNE)}


def _scale_batch(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32) / 255.0, labels


class StopAtAccuracy(keras.callbacks.Callback):
    """Log the wall time and metrics after every epoch; stop once a target is met.

    Parameters
    ----------
    target : float
        Validation accuracy at which training stops.
    started : float
        ``time.perf_counter()`` at the start of the timed run.
    stop : bool
        Stop at the target; False logs every epoch of the run.
    """

    def __init__(self, target: float, started: float, stop: bool = True) -> None:
        super().__init__()
        self.target = target
        self.started = started
        self.stop = stop
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.rows.append({"epoch": epoch + 1, "seconds": time.perf_counter() - self.started,
                          **{name: float(value) for name, value in logs.items()}})
        if self.stop and logs.get("val_accuracy", 0.0) >= self.target:
            self.model.stop_training = True


@dataclass(frozen=True)
class TimedRun:
    """What :func:`time_to_accuracy` measured.

    Attributes
    ----------
    config : TrainingConfig
    precision : str
        The precision actually used.
    target : float
    history : pandas.DataFrame
        One row per epoch: ``seconds`` since the start, the losses and accuracies.
    train_images : int
    test_accuracy : float or None
        Of the model where training stopped; None when the test set was not
        evaluated.
    """

    config: TrainingConfig
    precision: str
    target: float
    history: pd.DataFrame
    train_images: int
    test_accuracy: float | None = None

    @property
    def epochs(self) -> int:
        """Epochs trained."""
        return len(self.history)

    @property
    def epochs_to_target(self) -> int | None:
        """The first epoch whose validation accuracy reached the target, or None."""
        reached = self.history.index[self.history["val_accuracy"] >= self.target]
        return int(reached[0]) if len(reached) else None

    @property
    def reached(self) -> bool:
        """Whether the validation accuracy reached the target."""
        return self.epochs_to_target is not None

    @property
    def seconds(self) -> float:
        """Wall time of the whole run."""
        return float(self.history["seconds"].iloc[-1])

    @property
    def seconds_to_target(self) -> float | None:
        """Wall time to the end of the epoch that reached the target, or None."""
        if self.epochs_to_target is None:
            return None
        return float(self.history.loc[self.epochs_to_target, "seconds"])

    @property
    def images_per_second(self) -> float:
        """Training images per second of wall time, over the whole run."""
        return self.epochs * self.train_images / self.seconds

    def summary(self) -> dict[str, Any]:
        """One row of the benchmark's table, as plain numbers.

        ``seconds`` is the time to the target when it was reached, else the
        time of the whole run; ``test_accuracy`` is there when it was measured.
        """
        row = {
            "precision": self.precision,
            "reached": self.reached,
            "seconds": round(self.seconds_to_target or self.seconds, 1),
            "epochs": self.epochs_to_target or self.epochs,
            "images_per_second": round(self.images_per_second),
            "best_val_accuracy": round(float(self.history["val_accuracy"].max()), 4),
        }
        if self.test_accuracy is not None:
            row["test_accuracy"] = round(self.test_accuracy, 4)
        return row


def time_to_accuracy(
    config: TrainingConfig, raw: Splits, *, target: float = 0.99, stop_at_target: bool = True,
    evaluate_test: bool = False,
) -> TimedRun:
    """Train a configuration until the validation accuracy reaches a target.

    The clock runs from the raw uint8 arrays in memory to the end of the epoch
    whose validation accuracy reaches ``target``: scaling, building and
    compiling, tracing, training and the per-epoch validation all count.

    Parameters
    ----------
    config : TrainingConfig
        Its ``epochs`` caps the run; it must validate every epoch and not
        stop early.
    raw : Splits
        Unscaled splits (``load_splits(..., scaled=False)``).
    target : float
        Validation accuracy to reach, in (0, 1].
    stop_at_target : bool
        Stop at the first epoch that reaches the target; False trains every
        epoch (the history still tells when the target was reached).
    evaluate_test : bool
        Evaluate the test set once, after the clock stops.

    Returns
    -------
    TimedRun

    Raises
    ------
    LenetError
        For a target outside (0, 1], or a configuration that validates only
        at the end or stops early.

    Examples
    --------
    >>> run = time_to_accuracy(FAST_RECIPE, load_splits(scaled=False))  # doctest: +SKIP
    >>> run.seconds_to_target  # doctest: +SKIP
    """
    if not 0 < target <= 1:
        raise LenetError(f"target={target} must be a validation accuracy in (0, 1].")
    if config.validate != "every_epoch" or config.early_stopping is not None:
        raise LenetError("time_to_accuracy checks the validation accuracy after every epoch: "
                         "use a configuration with validate='every_epoch' and "
                         "early_stopping=None.")
    set_seed(config.seed)
    started = time.perf_counter()
    train = model_inputs(config, *raw.train, training=True)
    validation = model_inputs(config, *raw.validation, training=False)
    model = config.build_model(math.ceil(len(raw.y_train) / config.batch_size))
    timer = StopAtAccuracy(target, started, stop=stop_at_target)
    with _quiet_tensorflow_warnings():  # every run traces its new model; TF warns about it
        model.fit(**train, validation_data=_as_validation_data(validation),
                  epochs=config.epochs, shuffle="y" in train, verbose=0, callbacks=[timer])
    count_training(len(timer.rows) * len(raw.y_train), time.perf_counter() - started)
    with _quiet_tensorflow_warnings():
        test_accuracy = None
        if evaluate_test:
            test_inputs = model_inputs(config, *raw.test, training=False)
            test_accuracy = float(model.evaluate(**test_inputs, verbose=0)[1])
    return TimedRun(config, config.resolved_precision, target,
                    pd.DataFrame(timer.rows).set_index("epoch"), len(raw.y_train),
                    test_accuracy)


@contextlib.contextmanager
def _quiet_tensorflow_warnings() -> Iterator[None]:
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _as_validation_data(inputs: dict[str, Any]) -> Any:
    return inputs["x"] if "y" not in inputs else (inputs["x"], inputs["y"])


def timing_table(runs: Mapping[str, TimedRun]) -> pd.DataFrame:
    """One row per run, for the page: when it reached the target and how fast it ran.

    Columns: the epoch and the seconds at which the validation accuracy
    reached the target (``-`` if never), seconds per epoch, images per
    second, and the validation accuracy after the last epoch.

    Examples
    --------
    >>> timing_table({"fast recipe": run})  # doctest: +SKIP
    """
    rows = {}
    for name, run in runs.items():
        percent = f"{run.target:.0%}"
        rows[name] = {
            f"epoch at {percent}": run.epochs_to_target or "-",
            f"seconds to {percent}": ("-" if run.seconds_to_target is None
                                      else round(run.seconds_to_target, 1)),
            "s/epoch": round(run.seconds / run.epochs, 1),
            "images/s": round(run.images_per_second),
            "last val accuracy": round(float(run.history["val_accuracy"].iloc[-1]), 4),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def training_flops_per_image(model: keras.Model) -> int:
    """Floating-point operations of one training step, per image.

    Counts the multiply-adds of every convolution and dense layer (2 FLOPs
    each) in the forward pass, and twice as many for the backward pass
    (gradients for the inputs and for the weights). Pooling, activations and
    the optimizer's update are left out: they are a small fraction.

    Examples
    --------
    >>> from lenet_utils.models import build_lenet
    >>> training_flops_per_image(build_lenet())
    39132000
    """
    multiply_adds = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            positions = math.prod(layer.output.shape[1:3])
            multiply_adds += positions * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            multiply_adds += math.prod(layer.kernel.shape)
    return 3 * 2 * multiply_adds


def speedup(slow: dict[str, Any], fast: dict[str, Any]) -> tuple[float | None, str]:
    """How many times faster ``fast`` reached the target than ``slow``.

    Parameters
    ----------
    slow, fast : dict
        :meth:`TimedRun.summary` rows.

    Returns
    -------
    ratio : float or None
        None when the fast run never reached the target.
    relation : {"=", ">=", ""}
        ``">="`` when only the slow run hit its cap: the ratio is then a
        lower bound; ``""`` when there is no ratio.

    Examples
    --------
    >>> speedup({"reached": False, "seconds": 300.0}, {"reached": True, "seconds": 20.0})
    (15.0, '>=')
    """
    if not fast["reached"]:
        return None, ""
    return slow["seconds"] / fast["seconds"], "=" if slow["reached"] else ">="


def benchmark_table(rows: list[dict[str, Any]], target: float) -> pd.DataFrame:
    """The benchmark's table: one row per recipe, in readable units.

    ``seconds`` and ``epochs`` run to the target where it was reached, and
    to the cap where it was not.

    Examples
    --------
    >>> print(benchmark_table(results["rows"], 0.99))  # doctest: +SKIP
    """
    percent = f"{target:.1%}"
    table = pd.DataFrame({
        "recipe": [row["recipe"] for row in rows],
        f"reached {percent}": ["yes" if row["reached"] else "no (cap)" for row in rows],
        "seconds": [row["seconds"] for row in rows],
        "epochs": [row["epochs"] for row in rows],
        "images/s": [row["images_per_second"] for row in rows],
        "best val accuracy": [row["best_val_accuracy"] for row in rows],
        "peak RSS (MB)": [row["peak_rss_mb"] for row in rows],
        "test accuracy": [row.get("test_accuracy", math.nan) for row in rows],
    })
    return table.set_index("recipe")


def stored_results_file() -> Path:
    """Where the installed package keeps the stored benchmark run.

    Examples
    --------
    >>> stored_results_file().name
    'time_to_99.json'
    """
    return Path(str(importlib.resources.files("lenet_utils").joinpath(*RESULTS_RESOURCE)))


def load_benchmark_results(path: str | Path | None = None) -> dict[str, Any]:
    """The stored full run of ``benchmarks/time_to_99.py``, or another results file.

    Parameters
    ----------
    path : str or path-like, optional
        A results file written with ``--output``. By default the run that
        ships with the package (:func:`stored_results_file`); no network.

    Returns
    -------
    dict
        ``target``, ``machine``, ``command`` and one ``rows`` entry per recipe.

    Raises
    ------
    LenetError
        If the file is missing or not a results file.

    Examples
    --------
    >>> load_benchmark_results()["target"]
    0.99
    """
    path = Path(path) if path is not None else stored_results_file()
    try:
        text = path.read_text()
    except OSError as error:
        raise LenetError(f"Cannot read benchmark results {path}: {error.strerror}. Write them "
                         "with: python benchmarks/time_to_99.py --output "
                         f"{path}") from error
    try:
        results = json.loads(text)
    except json.JSONDecodeError as error:
        raise LenetError(f"{path} is not JSON ({error}).") from error
    if not isinstance(results, dict) or not {"target", "rows", "machine"} <= results.keys():
        raise LenetError(f"{path} is not a results file of benchmarks/time_to_99.py "
                         "(it needs target, rows and machine).")
    return results
