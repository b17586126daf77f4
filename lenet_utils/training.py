"""Seeding, compiling, fitting, caching trained models, and the run record."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import lenet_utils
from lenet_utils import models
from lenet_utils.data import Splits, make_dataset, stratified_subset
from lenet_utils.errors import LenetError
from lenet_utils.profile import Profile

CACHE_VARIABLE = "LENET_CACHE_DIR"
MODEL_BUILDERS = {"lenet": models.build_lenet, "lenet5": models.build_lenet5}
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
Arrays = tuple[np.ndarray, np.ndarray]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, Keras and TensorFlow, and make TF ops deterministic.

    Examples
    --------
    >>> set_seed(0)
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run, and so its cache key.

    Attributes
    ----------
    model : {"lenet", "lenet5"}
        Which builder of :mod:`lenet_utils.models`.
    model_options : dict
        Keyword arguments for the builder (dropout, batch norm, ...).
    optimizer : {"sgd", "adam"}
    learning_rate : float
    batch_size : int
    epochs : int
        The most epochs to train for.
    seed : int
        Seeds the weights, the shuffling, dropout and augmentation.
    early_stopping : int or None
        Stop when the validation loss has not improved for this many epochs,
        and restore the best epoch's weights; None trains every epoch.
    """

    model: str = "lenet"
    model_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    batch_size: int = 128
    epochs: int = 20
    seed: int = 0
    early_stopping: int | None = None

    def __post_init__(self) -> None:
        if self.model not in MODEL_BUILDERS:
            raise LenetError(f"model={self.model!r} is unknown; choose one of "
                             f"{', '.join(MODEL_BUILDERS)}.")
        if self.optimizer not in OPTIMIZERS:
            raise LenetError(f"optimizer={self.optimizer!r} is unknown; choose one of "
                             f"{', '.join(OPTIMIZERS)}.")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise LenetError(f"early_stopping={self.early_stopping} must be a positive "
                             "number of epochs, or None.")
        if self.epochs < 1 or self.batch_size < 1:
            raise LenetError(f"epochs={self.epochs} and batch_size={self.batch_size} "
                             "must be positive integers.")

    def build_model(self) -> keras.Model:
        """Seed, build and compile the configured model."""
        set_seed(self.seed)
        model = MODEL_BUILDERS[self.model](**self.model_options)
        optimizer = OPTIMIZERS[self.optimizer](learning_rate=self.learning_rate)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """The callbacks the configuration asks for (early stopping)."""
        if self.early_stopping is None:
            return []
        return [keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.early_stopping, restore_best_weights=True)]

    def fingerprint(self) -> dict[str, Any]:
        """The configuration with builder options equal to their defaults left out.

        ``{"dense_dropout": 0.0}`` builds the same model as ``{}``, so both runs
        share one cache entry.
        """
        defaults = {name: parameter.default for name, parameter in
                    inspect.signature(MODEL_BUILDERS[self.model]).parameters.items()}
        options = {name: value for name, value in sorted(self.model_options.items())
                   if defaults.get(name, inspect.Parameter.empty) != value}
        return {**dataclasses.asdict(self), "model_options": options}


def _metric_order(name: str) -> tuple[bool, bool]:
    """Training before validation metrics, the loss first in each."""
    return name.startswith("val_"), name.removeprefix("val_") != "loss"


class EpochLine(keras.callbacks.Callback):
    """Print one line per epoch: no progress bar, no timings, same every run."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        names = sorted(logs, key=_metric_order)
        metrics = "  ".join(f"{name} {logs[name]:.4f}" for name in names)
        print(f"epoch {epoch + 1:>3}/{self.params['epochs']}  {metrics}")


def fit(
    model: keras.Model,
    train: Arrays,
    validation: Arrays,
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> pd.DataFrame:
    """Train a compiled model, printing at most one line per epoch.

    Parameters
    ----------
    model : keras.Model
        A compiled model.
    train, validation : tuple of ndarray
        ``(images, labels)``; the validation set is never the test set.
    epochs, batch_size : int
    seed : int
        Seeds the shuffling of the training set.
    callbacks : list of keras.callbacks.Callback, optional
        Extra callbacks (early stopping, say).

    Returns
    -------
    pandas.DataFrame
        One row per epoch (index starting at 1): loss, accuracy, val_loss,
        val_accuracy.

    Examples
    --------
    >>> history = fit(model, splits.train, splits.validation,
    ...               epochs=20, batch_size=128)  # doctest: +SKIP
    """
    history = model.fit(
        make_dataset(*train, batch_size, shuffle=True, seed=seed),
        validation_data=make_dataset(*validation, 1024),
        epochs=epochs, shuffle=False, verbose=0,
        callbacks=[EpochLine(), *(callbacks or [])],
    )
    table = pd.DataFrame(history.history)
    table = table[sorted(table, key=_metric_order)]
    table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
    return table


def evaluate_gaps(
    model: keras.Model, train: Arrays, validation: Arrays
) -> dict[str, float]:
    """Loss and accuracy on training and validation data, in inference mode.

    Unlike the training metrics Keras logs, which are averaged over an epoch
    with dropout active, both sides are measured the same way, by the
    finished model.

    Returns
    -------
    dict
        ``accuracy``, ``val_accuracy``, ``accuracy gap`` (their difference),
        ``loss``, ``val_loss`` and ``loss gap`` (validation minus training).

    Examples
    --------
    >>> evaluate_gaps(model, small_train, splits.validation)  # doctest: +SKIP
    """
    loss, accuracy = model.evaluate(*train, batch_size=1024, verbose=0)
    val_loss, val_accuracy = model.evaluate(*validation, batch_size=1024, verbose=0)
    return {"accuracy": accuracy, "val_accuracy": val_accuracy,
            "accuracy gap": accuracy - val_accuracy,
            "loss": loss, "val_loss": val_loss, "loss gap": val_loss - loss}


def small_data_regime(
    splits: Splits, profile: Profile, seed: int = 0
) -> tuple[TrainingConfig, Arrays]:
    """The overfitting regime chosen in chapter 4, used by the remedy chapters.

    1,000 training images (100 per digit; 10 in the quick profile), Adam with
    learning rate 0.001, batch 128, 40 epochs (capped by the profile).

    Returns
    -------
    config : TrainingConfig
    train : tuple of ndarray
        The stratified training subset; validate on ``splits.validation``.

    Examples
    --------
    >>> config, small_train = small_data_regime(splits, get_profile())  # doctest: +SKIP
    """
    train = stratified_subset(*splits.train, profile.choose(full=100, quick=10), seed=seed)
    config = TrainingConfig(model="lenet", optimizer="adam", learning_rate=0.001,
                            batch_size=128, epochs=profile.epochs(40), seed=seed)
    return config, train


def with_gaps(history: pd.DataFrame) -> pd.DataFrame:
    """The history plus the two generalisation gaps of every epoch.

    ``accuracy gap`` is training minus validation accuracy, ``loss gap`` is
    validation minus training loss: both grow when a model overfits.

    Examples
    --------
    >>> with_gaps(history).tail(1)  # doctest: +SKIP
    """
    return history.assign(**{
        "accuracy gap": history["accuracy"] - history["val_accuracy"],
        "loss gap": history["val_loss"] - history["loss"],
    })


def cache_key(config: TrainingConfig, train: Arrays, validation: Arrays) -> str:
    """A short hash of the configuration and the exact training data."""
    digest = hashlib.sha256(json.dumps(config.fingerprint(), sort_keys=True).encode())
    for array in (*train, *validation):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where trained models are kept: ``LENET_CACHE_DIR`` or ``~/.cache/lenet_utils``."""
    configured = os.environ.get(CACHE_VARIABLE, "").strip()
    return Path(configured) if configured else Path.home() / ".cache" / "lenet_utils"


def train_or_load(
    config: TrainingConfig, train: Arrays, validation: Arrays
) -> tuple[keras.Model, pd.DataFrame]:
    """Train ``config`` on the data, or load the identical run from the cache.

    A chapter that needs a model another chapter trained with the same
    configuration and data gets it back instead of training it again, and
    still works when run alone.

    Parameters
    ----------
    config : TrainingConfig
    train, validation : tuple of ndarray

    Returns
    -------
    model : keras.Model
    history : pandas.DataFrame
        As returned by :func:`fit`.

    Examples
    --------
    >>> model, history = train_or_load(TrainingConfig(), splits.train,
    ...                                splits.validation)  # doctest: +SKIP
    """
    key = cache_key(config, train, validation)
    folder = cache_dir() / key
    if (folder / "model.keras").is_file() and (folder / "history.csv").is_file():
        print(f"loaded the trained model from the cache ({key}): the same configuration "
              "and data were trained before")
        history = pd.read_csv(folder / "history.csv", index_col="epoch")
        return keras.models.load_model(folder / "model.keras"), history
    model = config.build_model()
    history = fit(model, train, validation, epochs=config.epochs,
                  batch_size=config.batch_size, seed=config.seed,
                  callbacks=config.callbacks())
    _save_atomically(folder, model, history, config)
    return model, history


def _save_atomically(
    folder: Path, model: keras.Model, history: pd.DataFrame, config: TrainingConfig
) -> None:
    # Write into a temporary folder, then rename: a crash never leaves half a cache entry.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
    try:
        model.save(staging / "model.keras")
        history.to_csv(staging / "history.csv")
        (staging / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class RunRecord:
    """When a notebook run started and under which profile.

    Examples
    --------
    >>> record = RunRecord(get_profile())  # doctest: +SKIP
    >>> print(record.report())  # doctest: +SKIP
    """

    profile: Profile
    started: float = field(default_factory=time.perf_counter)

    def report(self) -> str:
        """The run record: profile, wall time and versions, one per line."""
        seconds = time.perf_counter() - self.started
        return "\n".join([
            f"profile: {self.profile.name}",
            f"wall time: {seconds:.0f} s",
            f"python: {platform.python_version()}",
            f"tensorflow: {tf.__version__}",
            f"keras: {keras.__version__}",
            f"lenet_utils: {lenet_utils.__version__}",
        ])
