"""Training LeNet fast: recipes, a one-cycle schedule, and timing to a target accuracy.

A :class:`Recipe` says everything about *how* the modern LeNet is trained,
from the input pipeline to the number format; :data:`STARTING_RECIPE` is the
starting script's way and :data:`FAST_RECIPE` the fastest way found on the
book's 2-core machine. :func:`time_to_accuracy` trains with a recipe until the
validation accuracy reaches a target, timing every epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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
from lenet_utils.models import build_lenet
from lenet_utils.schedules import OneCycle
from lenet_utils.training import OPTIMIZERS, set_seed

PIPELINES = ("numpy_float64", "tf_data")
SCHEDULES = ("constant", "one_cycle")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# CPU flags under which oneDNN runs bfloat16 convolutions and matrix products
# natively; without them TensorFlow emulates bfloat16, slower than float32.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
EVALUATION_BATCH = 1024
RESULTS_IN_CHECKOUT = (Path(__file__).resolve().parents[1]
                       / "benchmarks" / "results" / "time_to_99.json")
RESULTS_URL = ("https://raw.githubusercontent.com/lenet-book/lenet-book/main/"
               "benchmarks/results/time_to_99.json")


@dataclass(frozen=True)
class Recipe:
    """How to train the modern LeNet: pipeline, optimizer, schedule, precision.

    Attributes
    ----------
    name : str
        A label for tables.
    pipeline : {"numpy_float64", "tf_data"}
        ``"numpy_float64"`` is the starting script's way: images scaled with
        ``astype("float") / 255.0`` (float64), one-hot labels, NumPy arrays
        straight into ``fit``. ``"tf_data"`` keeps the uint8 images in a cached
        ``tf.data`` pipeline that shuffles, batches, scales each batch to
        float32 and prefetches the next batch while the model trains.
    optimizer : {"sgd", "adam"}
    learning_rate : float
        The constant rate, or the peak of the one-cycle schedule.
    schedule : {"constant", "one_cycle"}
        See :class:`OneCycle`.
    batch_size : int
    epochs : int
        The most epochs to train for; the one-cycle schedule spans them.
    precision : {"float32", "mixed_bfloat16", "auto"}
        ``"mixed_bfloat16"`` computes in bfloat16 and keeps the weights in
        float32; ``"auto"`` picks it only on a CPU with native bfloat16
        (:func:`cpu_has_native_bfloat16`).
    batch_norm : bool
        Batch normalization before each hidden ReLU (chapter 6).
    """

    name: str
    pipeline: str = "tf_data"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    batch_size: int = 128
    epochs: int = 20
    precision: str = "float32"
    batch_norm: bool = False

    def __post_init__(self) -> None:
        for attribute, options in [("pipeline", PIPELINES), ("optimizer", tuple(OPTIMIZERS)),
                                   ("schedule", SCHEDULES), ("precision", PRECISIONS)]:
            if getattr(self, attribute) not in options:
                raise LenetError(f"{attribute}={getattr(self, attribute)!r} is not an option; "
                                 f"choose one of {', '.join(options)}.")
        for attribute in ("batch_size", "epochs"):
            if getattr(self, attribute) < 1:
                raise LenetError(f"{attribute}={getattr(self, attribute)} must be positive.")
        if self.learning_rate <= 0:
            raise LenetError(f"learning_rate={self.learning_rate} must be positive.")

    def but(self, name: str, **changes: Any) -> Recipe:
        """A copy under a new name with some attributes changed.

        Examples
        --------
        >>> STARTING_RECIPE.but("+ batch 512", batch_size=512).batch_size
        512
        """
        return dataclasses.replace(self, name=name, **changes)

    @property
    def resolved_precision(self) -> str:
        """``precision``, with ``"auto"`` decided for this machine."""
        if self.precision != "auto":
            return self.precision
        return "mixed_bfloat16" if cpu_has_native_bfloat16() else "float32"


STARTING_RECIPE = Recipe(
    "starting recipe", pipeline="numpy_float64", optimizer="sgd", learning_rate=0.01,
    batch_size=128, epochs=20,
)
FAST_RECIPE = Recipe(
    "fast recipe", pipeline="tf_data", optimizer="adam", learning_rate=3e-3,
    schedule="one_cycle", batch_size=256, epochs=3, precision="auto",
)


def cpu_has_native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX-512 BF16).

    Reads the Linux CPU flags; elsewhere, or when unreadable, says False.

    Examples
    --------
    >>> isinstance(cpu_has_native_bfloat16(), bool)
    True
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags")
             for flag in line.split(":", 1)[1].split()}
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under a Keras dtype policy, then restore the previous one.

    Layers keep the policy they were built with, so a model built inside
    trains and predicts in that policy after the block ends.

    Examples
    --------
    >>> with dtype_policy("mixed_bfloat16"):
    ...     model = build_lenet()  # doctest: +SKIP
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    """The modern LeNet, compiled as the recipe says.

    Parameters
    ----------
    recipe : Recipe
    steps_per_epoch : int
        Batches per epoch, which the one-cycle schedule needs.

    Returns
    -------
    keras.Model
    """
    with dtype_policy(recipe.resolved_precision):
        model = build_lenet(batch_norm="before" if recipe.batch_norm else None)
    learning_rate = recipe.learning_rate
    if recipe.schedule == "one_cycle":
        learning_rate = OneCycle(recipe.learning_rate, steps_per_epoch * recipe.epochs)
    one_hot = recipe.pipeline == "numpy_float64"
    model.compile(
        optimizer=OPTIMIZERS[recipe.optimizer](learning_rate=learning_rate),
        loss="categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def model_inputs(
    recipe: Recipe, images: np.ndarray, labels: np.ndarray, *, training: bool, seed: int = 0,
) -> dict[str, Any]:
    """Keyword arguments that feed raw uint8 images to ``fit`` or ``evaluate``.

    Parameters
    ----------
    recipe : Recipe
        Its ``pipeline`` and ``batch_size`` decide the form.
    images : ndarray
        uint8 images, ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.
    labels : ndarray
        Integer labels.
    training : bool
        Shuffle every epoch and use the recipe's batch size; otherwise keep
        the order and use large batches.
    seed : int
        Seeds the shuffle.

    Returns
    -------
    dict
        ``{"x": ..., "y": ..., "batch_size": ...}`` for NumPy arrays, or
        ``{"x": dataset}``.
    """
    if images.dtype != np.uint8 or images.shape[1:3] != (28, 28):
        raise LenetError(f"Expected raw uint8 images of 28x28 pixels, got {images.dtype} "
                         f"images of shape {images.shape}; load them with scaled=False.")
    images = images.reshape(-1, 28, 28, 1)
    batch_size = recipe.batch_size if training else EVALUATION_BATCH
    if recipe.pipeline == "numpy_float64":
        return {"x": images.astype("float") / 255.0,
                "y": keras.utils.to_categorical(labels, 10), "batch_size": batch_size}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
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
    """

    def __init__(self, target: float, started: float) -> None:
        super().__init__()
        self.target = target
        self.started = started
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.rows.append({"epoch": epoch + 1, "seconds": time.perf_counter() - self.started,
                          **{name: float(value) for name, value in logs.items()}})
        if logs.get("val_accuracy", 0.0) >= self.target:
            self.model.stop_training = True


@dataclass(frozen=True)
class TimedRun:
    """What :func:`time_to_accuracy` measured.

    Attributes
    ----------
    recipe : Recipe
    precision : str
        The precision actually used.
    target : float
    history : pandas.DataFrame
        One row per epoch: ``seconds`` since the start, the losses and accuracies.
    train_images : int
    test_accuracy : float
        Of the model where training stopped.
    """

    recipe: Recipe
    precision: str
    target: float
    history: pd.DataFrame
    train_images: int
    test_accuracy: float

    @property
    def reached(self) -> bool:
        """Whether the validation accuracy reached the target."""
        return bool((self.history["val_accuracy"] >= self.target).any())

    @property
    def epochs(self) -> int:
        """Epochs trained."""
        return len(self.history)

    @property
    def seconds(self) -> float:
        """Wall time of the whole run; to the target when it was reached."""
        return float(self.history["seconds"].iloc[-1])

    def summary(self) -> dict[str, Any]:
        """One row of the benchmark's table, as plain numbers."""
        return {
            "recipe": self.recipe.name,
            "precision": self.precision,
            "reached": self.reached,
            "seconds": round(self.seconds, 1),
            "epochs": self.epochs,
            "images_per_second": round(self.epochs * self.train_images / self.seconds),
            "best_val_accuracy": round(float(self.history["val_accuracy"].max()), 4),
            "test_accuracy": round(self.test_accuracy, 4),
        }


def time_to_accuracy(
    recipe: Recipe, raw: Splits, *, target: float = 0.99, seed: int = 0,
    epochs: int | None = None,
) -> TimedRun:
    """Train with a recipe until the validation accuracy reaches a target.

    The clock runs from the raw uint8 arrays in memory to the end of the epoch
    whose validation accuracy reaches ``target``: scaling, building and
    compiling, tracing, training and the per-epoch validation all count.
    The test set is evaluated once, after the clock stops.

    Parameters
    ----------
    recipe : Recipe
    raw : Splits
        Unscaled splits (``load_splits(..., scaled=False)``).
    target : float
        Validation accuracy to reach, in (0, 1].
    seed : int
    epochs : int, optional
        Overrides ``recipe.epochs`` (a cap for a quick check).

    Returns
    -------
    TimedRun

    Examples
    --------
    >>> run = time_to_accuracy(FAST_RECIPE, load_splits(scaled=False))  # doctest: +SKIP
    >>> run.summary()["seconds"]  # doctest: +SKIP
    """
    if not 0 < target <= 1:
        raise LenetError(f"target={target} must be a validation accuracy in (0, 1].")
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    set_seed(seed)
    started = time.perf_counter()
    train = model_inputs(recipe, *raw.train, training=True, seed=seed)
    validation = model_inputs(recipe, *raw.validation, training=False)
    model = build_model(recipe, math.ceil(len(raw.y_train) / recipe.batch_size))
    timer = StopAtAccuracy(target, started)
    with _quiet_tensorflow_warnings():  # every run traces its new model; TF warns about it
        model.fit(**train, validation_data=_as_validation_data(validation),
                  epochs=recipe.epochs, shuffle="y" in train, verbose=0, callbacks=[timer])
        test_accuracy = model.evaluate(**model_inputs(recipe, *raw.test, training=False),
                                       verbose=0)[1]
    return TimedRun(recipe, recipe.resolved_precision, target,
                    pd.DataFrame(timer.rows).set_index("epoch"), len(raw.y_train),
                    float(test_accuracy))


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


def training_flops_per_image(model: keras.Model) -> int:
    """Floating-point operations of one training step, per image.

    Counts the multiply-adds of every convolution and dense layer (2 FLOPs
    each) in the forward pass, and twice as many for the backward pass
    (gradients for the inputs and for the weights). Pooling, activations and
    the optimizer's update are left out: they are a small fraction.

    Examples
    --------
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
    """
    if not fast["reached"]:
        return None, ""
    return slow["seconds"] / fast["seconds"], "=" if slow["reached"] else ">="


def benchmark_table(rows: list[dict[str, Any]], target: float) -> pd.DataFrame:
    """The benchmark's table: one row per recipe, in readable units.

    Examples
    --------
    >>> print(benchmark_table(results["rows"], 0.99))  # doctest: +SKIP
    """
    percent = f"{target:.1%}"
    table = pd.DataFrame({
        "recipe": [row["recipe"] for row in rows],
        f"reached {percent}": ["yes" if row["reached"] else "no (cap)" for row in rows],
        f"seconds to {percent}": [row["seconds"] if row["reached"] else "-" for row in rows],
        "seconds trained": [row["seconds"] for row in rows],
        "epochs": [row["epochs"] for row in rows],
        "images/s": [row["images_per_second"] for row in rows],
        "best val accuracy": [row["best_val_accuracy"] for row in rows],
        "peak RSS (MB)": [row["peak_rss_mb"] for row in rows],
        "test accuracy": [row["test_accuracy"] for row in rows],
    })
    return table.set_index("recipe")


def load_benchmark_results(path: str | Path | None = None) -> dict[str, Any]:
    """The stored full run of ``benchmarks/time_to_99.py``.

    Parameters
    ----------
    path : str or path-like, optional
        A results file written with ``--output``. By default the one in this
        checkout, or, where the package was installed without the repository
        (Colab), the one on GitHub.

    Returns
    -------
    dict
        ``target``, ``machine``, ``command`` and one ``rows`` entry per recipe.

    Raises
    ------
    LenetError
        If the file is missing or not a results file.
    """
    if path is None and not RESULTS_IN_CHECKOUT.exists():
        return _parse_results(_download(RESULTS_URL), RESULTS_URL)
    path = Path(path or RESULTS_IN_CHECKOUT)
    try:
        text = path.read_text()
    except OSError as error:
        raise LenetError(f"Cannot read benchmark results {path}: {error.strerror}. Write them "
                         "with: python benchmarks/time_to_99.py --output "
                         f"{path}") from error
    return _parse_results(text, str(path))


def _download(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()
    except (urllib.error.URLError, TimeoutError) as error:
        raise LenetError(f"Cannot download the benchmark results from {url} ({error}); "
                         "run the notebook from a checkout of the repository.") from error


def _parse_results(text: str, origin: str) -> dict[str, Any]:
    try:
        results = json.loads(text)
    except json.JSONDecodeError as error:
        raise LenetError(f"{origin} is not JSON ({error}).") from error
    if not isinstance(results, dict) or not {"target", "rows", "machine"} <= results.keys():
        raise LenetError(f"{origin} is not a results file of benchmarks/time_to_99.py "
                         "(it needs target, rows and machine).")
    return results
