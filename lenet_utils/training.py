"""Seeding, compiling, fitting, caching trained models, and the run record."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import platform
import shutil
import sys
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
from lenet_utils.schedules import SCHEDULES

CACHE_VARIABLE = "LENET_CACHE_DIR"
MODEL_BUILDERS = {"lenet": models.build_lenet, "lenet5": models.build_lenet5}
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
LOSSES = {"sparse_categorical_crossentropy": "sparse_categorical_crossentropy"}
VALIDATION_MODES = ("every_epoch", "at_end")
EVALUATION_BATCH = 1024
Arrays = tuple[np.ndarray, np.ndarray]
# Images and seconds of every fit in this process, for the run record's throughput.
_TRAINING_TALLY = {"images": 0, "seconds": 0.0}


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
    schedule : str
        A name of :data:`lenet_utils.schedules.SCHEDULES`: how the learning
        rate changes over the run (``"constant"``, ``"one_cycle"``, ...).
    loss : str
        A name of :data:`LOSSES`.
    validate : {"every_epoch", "at_end"}
        Evaluate the validation set after every epoch (for learning curves)
        or only after the last one, which is cheaper when nobody plots the
        curves. Early stopping needs ``"every_epoch"``.
    """

    model: str = "lenet"
    model_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    batch_size: int = 128
    epochs: int = 20
    seed: int = 0
    early_stopping: int | None = None
    schedule: str = "constant"
    loss: str = "sparse_categorical_crossentropy"
    validate: str = "every_epoch"

    def __post_init__(self) -> None:
        if self.model not in MODEL_BUILDERS:
            raise LenetError(f"model={self.model!r} is unknown; choose one of "
                             f"{', '.join(MODEL_BUILDERS)}.")
        for attribute, options in [("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                                   ("loss", LOSSES), ("validate", VALIDATION_MODES)]:
            if getattr(self, attribute) not in options:
                raise LenetError(f"{attribute}={getattr(self, attribute)!r} is unknown; "
                                 f"choose one of {', '.join(options)}.")
        if self.early_stopping is not None and self.validate != "every_epoch":
            raise LenetError("early_stopping watches the validation loss every epoch; "
                             "set validate='every_epoch'.")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise LenetError(f"early_stopping={self.early_stopping} must be a positive "
                             "number of epochs, or None.")
        if self.epochs < 1 or self.batch_size < 1:
            raise LenetError(f"epochs={self.epochs} and batch_size={self.batch_size} "
                             "must be positive integers.")

    def build_model(self, steps_per_epoch: int = 1) -> keras.Model:
        """Seed, build and compile the configured model.

        Parameters
        ----------
        steps_per_epoch : int
            Batches per epoch, which schedules that span the run need.
        """
        set_seed(self.seed)
        model = MODEL_BUILDERS[self.model](**self.model_options)
        rate = SCHEDULES[self.schedule](self.learning_rate, steps_per_epoch, self.epochs)
        model.compile(optimizer=OPTIMIZERS[self.optimizer](learning_rate=rate),
                      loss=LOSSES[self.loss], metrics=["accuracy"])
        return model

    def but(self, **changes: Any) -> TrainingConfig:
        """A copy with some attributes changed.

        Examples
        --------
        >>> TrainingConfig().but(seed=1).seed
        1
        """
        return dataclasses.replace(self, **changes)

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


def starting_recipe(profile: Profile, seed: int = 0) -> TrainingConfig:
    """The starting script's recipe: SGD 0.01, batch 128, 20 epochs (capped by the profile).

    Examples
    --------
    >>> starting_recipe(get_profile("quick")).epochs  # doctest: +SKIP
    2
    """
    return TrainingConfig(model="lenet", optimizer="sgd", learning_rate=0.01,
                          batch_size=128, epochs=profile.epochs(20), seed=seed)


def _metric_order(name: str) -> tuple[bool, bool]:
    """Training before validation metrics, the loss first in each."""
    return name.startswith("val_"), name.removeprefix("val_") != "loss"


class EpochLog(keras.callbacks.Callback):
    """Keep every epoch's metrics and, if asked, print one line per epoch.

    Keras's own history cannot hold epochs without validation metrics next
    to epochs with them; this log can (missing values are NaN).
    """

    def __init__(self, echo: bool) -> None:
        super().__init__()
        self.echo = echo
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {name: float(value) for name, value in (logs or {}).items()}
        self.rows.append(logs)
        if self.echo:
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
    validate: str = "every_epoch",
    log_epochs: bool = False,
) -> pd.DataFrame:
    """Train a compiled model and print one summary line (or one line per epoch).

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
    validate : {"every_epoch", "at_end"}
        When to evaluate the validation set.
    log_epochs : bool
        Print a line after every epoch as well as the summary.

    Returns
    -------
    pandas.DataFrame
        One row per epoch (index starting at 1): loss, accuracy, val_loss,
        val_accuracy (NaN on epochs that were not validated).

    Examples
    --------
    >>> history = fit(model, splits.train, splits.validation,
    ...               epochs=20, batch_size=128)  # doctest: +SKIP
    20 epochs, 54,000 images in 338 s (3,195 images/s); val_accuracy 0.9853
    """
    log = EpochLog(echo=log_epochs)
    started = time.perf_counter()
    model.fit(
        make_dataset(*train, batch_size, shuffle=True, seed=seed),
        validation_data=make_dataset(*validation, EVALUATION_BATCH),
        validation_freq=1 if validate == "every_epoch" else [epochs],
        epochs=epochs, shuffle=False, verbose=0,
        callbacks=[log, *(callbacks or [])],
    )
    seconds = time.perf_counter() - started
    table = pd.DataFrame(log.rows)
    table = table[sorted(table, key=_metric_order)]
    table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
    images = len(table) * len(train[1])
    _TRAINING_TALLY["images"] += images
    _TRAINING_TALLY["seconds"] += seconds
    print(_summary_line(table, images, seconds))
    return table


def _summary_line(history: pd.DataFrame, images: int, seconds: float) -> str:
    last = history.iloc[-1]
    accuracy = last.get("val_accuracy", math.nan)
    return (f"{len(history)} epochs, {images:,} images in {seconds:.0f} s "
            f"({images / max(seconds, 1e-9):,.0f} images/s); val_accuracy {accuracy:.4f}")


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
    loss, accuracy = model.evaluate(*train, batch_size=EVALUATION_BATCH, verbose=0)
    val_loss, val_accuracy = model.evaluate(*validation, batch_size=EVALUATION_BATCH,
                                            verbose=0)
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


def model_code_fingerprint(model: str) -> str:
    """A hash of the source of the module that builds ``model``.

    Part of the cache key, so that a change to a builder (a new default, a
    fixed layer) never serves a model built by the old code.

    Examples
    --------
    >>> len(model_code_fingerprint("lenet"))
    16
    """
    module = sys.modules[MODEL_BUILDERS[model].__module__]
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:16]


def cache_key(config: TrainingConfig, train: Arrays, validation: Arrays) -> str:
    """A short hash of the configuration, the package version, the model code and the data.

    Examples
    --------
    >>> cache_key(TrainingConfig(), train, validation)  # doctest: +SKIP
    '3f9c0a1b2c3d4e5f'
    """
    identity = {"config": config.fingerprint(), "lenet_utils": lenet_utils.__version__,
                "model code": model_code_fingerprint(config.model)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for array in (*train, *validation):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where trained models are kept: ``LENET_CACHE_DIR`` or ``~/.cache/lenet_utils``."""
    configured = os.environ.get(CACHE_VARIABLE, "").strip()
    return Path(configured) if configured else Path.home() / ".cache" / "lenet_utils"


def train_or_load(
    config: TrainingConfig, train: Arrays, validation: Arrays, *, log_epochs: bool = False
) -> tuple[keras.Model, pd.DataFrame]:
    """Train ``config`` on the data, or load the identical run from the cache.

    A chapter that needs a model another chapter trained with the same
    configuration, data and model code gets it back instead of training it
    again, and still works when run alone. An unreadable cache entry is
    reported in one line and trained again.

    Parameters
    ----------
    config : TrainingConfig
    train, validation : tuple of ndarray
    log_epochs : bool
        Print one line per epoch while training, not only the summary.

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
    if folder.exists():
        try:
            loaded = _load_entry(folder)
        except Exception as error:  # noqa: BLE001 - any unreadable entry is retrained
            print(f"cache entry {key} is unreadable ({type(error).__name__}); "
                  "training again")
        else:
            print(f"loaded from the cache ({key}): trained before, same data and code")
            return loaded
    model = config.build_model(steps_per_epoch=math.ceil(len(train[1]) / config.batch_size))
    history = fit(model, train, validation, epochs=config.epochs,
                  batch_size=config.batch_size, seed=config.seed,
                  callbacks=config.callbacks(), validate=config.validate,
                  log_epochs=log_epochs)
    _save_atomically(folder, model, history, config)
    return model, history


def _load_entry(folder: Path) -> tuple[keras.Model, pd.DataFrame]:
    history = pd.read_csv(folder / "history.csv", index_col="epoch")
    if history.empty:
        raise LenetError(f"{folder / 'history.csv'} has no epochs.")
    return keras.models.load_model(folder / "model.keras"), history


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


def device_name() -> str:
    """The GPU TensorFlow trains on, or else the CPU's model name.

    Examples
    --------
    >>> isinstance(device_name(), str)
    True
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        return f"GPU: {details.get('device_name', gpu.name)}"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"CPU: {platform.processor() or platform.machine()}"
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
             if line.startswith("model name")]
    return f"CPU: {names[0] if names else platform.machine()}, {os.cpu_count()} cores"


@dataclass
class RunRecord:
    """When a notebook run started, under which profile and on which device.

    Examples
    --------
    >>> record = RunRecord(get_profile())  # doctest: +SKIP
    >>> print(record.report())  # doctest: +SKIP
    """

    profile: Profile
    started: float = field(default_factory=time.perf_counter)
    tally_at_start: dict[str, float] = field(default_factory=lambda: dict(_TRAINING_TALLY))

    def report(self) -> str:
        """The run record: profile, wall time, device, throughput and versions."""
        seconds = time.perf_counter() - self.started
        images = _TRAINING_TALLY["images"] - self.tally_at_start["images"]
        trained = _TRAINING_TALLY["seconds"] - self.tally_at_start["seconds"]
        throughput = (f"{images:,} images in {trained:.0f} s, {images / trained:,.0f} images/s"
                      if trained > 0 else "none (every model came from the cache)")
        return "\n".join([
            f"profile: {self.profile.name}",
            f"wall time: {seconds:.0f} s",
            f"device: {device_name()}",
            f"training: {throughput}",
            f"python: {platform.python_version()}",
            f"tensorflow: {tf.__version__}",
            f"keras: {keras.__version__}",
            f"lenet_utils: {lenet_utils.__version__}",
        ])
