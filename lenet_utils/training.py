"""Seeding, compiling, fitting, caching trained models, and the run record."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import lenet_utils
from lenet_utils import lenet5, models
from lenet_utils.data import Splits, make_dataset, stratified_subset
from lenet_utils.device import PRECISIONS, device_name, dtype_policy, gpus, resolve_precision
from lenet_utils.errors import LenetError
from lenet_utils.profile import Profile
from lenet_utils.schedules import SCHEDULES

CACHE_VARIABLE = "LENET_CACHE_DIR"
MODEL_BUILDERS = {"lenet": models.build_lenet, "lenet5": models.build_lenet5}
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
              "sdlm": lenet5.SDLM}
LOSSES = {"sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
          "categorical_crossentropy": "categorical_crossentropy",
          "rbf": lenet5.RBFLoss()}
# Losses that take one-hot labels, which only the "numpy_float64" pipeline makes.
ONE_HOT_LOSSES = ("categorical_crossentropy",)
VALIDATION_MODES = ("every_epoch", "at_end")
PIPELINES = ("tf_data", "numpy_float64")
CURVATURE_MODES = ("every_pass", "first_pass")
# Attributes added after the cache key first held the whole configuration:
# at these values they are left out of the key, so earlier entries stay valid.
_KEYED_UNLESS = {"precision": "float32", "pipeline": "tf_data", "optimizer_options": {},
                 "curvature": "every_pass", "steps_per_execution": 1,
                 "curvature_again_from": None, "schedule_options": {}}
EVALUATION_BATCH = 1024
Arrays = tuple[np.ndarray, np.ndarray]
# Images and seconds of every fit in this process, for the run record's throughput.
_TRAINING_TALLY = {"images": 0, "seconds": 0.0}
# The device that trained each model loaded from the cache, in the order loaded.
_LOADED_FROM_CACHE: list[str] = []
TRAINED_ON_FILE = "trained_on.json"
NOT_RECORDED = "a device not recorded"
UNREADABLE_ENTRY = "cache entry"  # how the notice of a retrained entry begins


class CurvatureEstimateFrom(lenet5.CurvatureEstimate):
    """A :class:`~lenet_utils.lenet5.CurvatureEstimate` that may begin re-estimating late.

    Parameters
    ----------
    images, samples, seed, every_pass
        As for :class:`~lenet_utils.lenet5.CurvatureEstimate`.
    again_from : int or None
        With ``every_pass=False``, estimate again before every pass from this
        one on (counted from 1), with the images ``every_pass=True`` would draw.

    Examples
    --------
    >>> CurvatureEstimateFrom(np.zeros((4, 28, 28, 1)), again_from=3).again_from
    3
    """

    def __init__(self, images, samples: int = lenet5.CURVATURE_SAMPLES, seed: int = 0,
                 every_pass: bool = True, again_from: int | None = None):
        super().__init__(images, samples, seed, every_pass)
        self.again_from = again_from

    def on_epoch_begin(self, epoch, logs=None):
        if self.again_from is not None and epoch + 1 >= self.again_from:
            self.every_pass = True
        super().on_epoch_begin(epoch, logs)


def set_seed(seed: int, *, deterministic_ops: bool | None = None) -> None:
    """Seed Python, NumPy, Keras and TensorFlow; on a CPU, make TF ops deterministic.

    On a CPU the same seed gives bit-identical weights, metrics and
    predictions on the same machine and versions. (Another CPU may differ in
    the last bits: oneDNN picks its kernels by the instructions a CPU has.)

    On a GPU the seed fixes the initial weights, the order of the batches,
    the dropout masks and the augmentation draws, but the training
    arithmetic is not bit-identical from run to run: cuDNN's fast kernels for
    convolutions and their gradients, and reductions that add with atomic
    operations, sum in a varying order. The differences start in the last
    bits and grow as training goes on, so two runs with one seed end with
    close but not equal metrics. TensorFlow's op determinism would make them
    equal, but it raises an error, at training time, for any op without a
    deterministic GPU kernel, and it slows cuDNN down; so it is left off on
    a GPU unless asked for.

    Parameters
    ----------
    seed : int
    deterministic_ops : bool, optional
        Call ``tf.config.experimental.enable_op_determinism()``. By default
        True without a GPU and False with one.

    Examples
    --------
    >>> set_seed(0)
    """
    keras.utils.set_random_seed(seed)
    if deterministic_ops is None:
        deterministic_ops = not gpus()
    if deterministic_ops:
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
        A name of :data:`LOSSES` (``"rbf"``: LeNet-5's RBF output, eq. 9).
    optimizer_options : dict
        Extra keyword arguments for the optimizer (SDLM's ``mu``). SDLM also
        gets ``samples_per_step=batch_size`` and estimates its curvature on
        500 training images (:class:`lenet_utils.lenet5.CurvatureEstimate`).
    curvature : {"every_pass", "first_pass"}
        With SDLM, re-estimate the curvature before every epoch (the paper's
        way) or only before the first one, keeping that estimate.
    curvature_again_from : int or None
        With ``curvature="first_pass"``, estimate again before every epoch
        from this one on (counted from 1): the paper's re-estimates, begun
        late. None keeps the first estimate to the end.
    steps_per_execution : int
        Training steps Keras runs per call of its compiled step; more make
        small batches faster and change nothing else.
    validate : {"every_epoch", "at_end"}
        Evaluate the validation set after every epoch (for learning curves)
        or only after the last one, which is cheaper when nobody plots the
        curves. Early stopping needs ``"every_epoch"``.
    precision : {"float32", "mixed_bfloat16", "auto"}
        ``"mixed_bfloat16"`` computes in bfloat16 and keeps the weights (and
        LeNet's softmax) in float32; ``"auto"`` picks it only where the
        device computes bfloat16 faster than float32 (AMX, or an
        NVIDIA GPU from the A100 on; :func:`lenet_utils.device.resolve_precision`).
    pipeline : {"tf_data", "numpy_float64"}
        How raw uint8 images reach ``fit`` in
        :func:`lenet_utils.benchmark.time_to_accuracy`: ``"tf_data"`` scales
        each batch to float32 in a ``tf.data`` pipeline; ``"numpy_float64"``
        is the starting script's way, NumPy arrays scaled with
        ``astype("float") / 255.0`` (float64) and one-hot labels, which need
        ``loss="categorical_crossentropy"``. :func:`train_or_load` takes
        scaled arrays and always feeds them through ``tf.data``.
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
    precision: str = "float32"
    pipeline: str = "tf_data"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    curvature: str = "every_pass"
    steps_per_execution: int = 1
    curvature_again_from: int | None = None
    schedule_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in MODEL_BUILDERS:
            raise LenetError(f"model={self.model!r} is unknown; choose one of "
                             f"{', '.join(MODEL_BUILDERS)}.")
        for attribute, options in [("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                                   ("loss", LOSSES), ("validate", VALIDATION_MODES),
                                   ("precision", PRECISIONS), ("pipeline", PIPELINES),
                                   ("curvature", CURVATURE_MODES)]:
            if getattr(self, attribute) not in options:
                raise LenetError(f"{attribute}={getattr(self, attribute)!r} is unknown; "
                                 f"choose one of {', '.join(options)}.")
        if self.early_stopping is not None and self.validate != "every_epoch":
            raise LenetError("early_stopping watches the validation loss every epoch; "
                             "set validate='every_epoch'.")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise LenetError(f"early_stopping={self.early_stopping} must be a positive "
                             "number of epochs, or None.")
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_execution < 1:
            raise LenetError(f"epochs={self.epochs}, batch_size={self.batch_size} and "
                             f"steps_per_execution={self.steps_per_execution} must be "
                             "positive integers.")
        if self.curvature != "every_pass" and self.optimizer != "sdlm":
            raise LenetError(f"curvature={self.curvature!r} is SDLM's option; "
                             f"optimizer={self.optimizer!r} estimates no curvature.")
        if self.curvature_again_from is not None and not (
                self.curvature == "first_pass" and self.curvature_again_from >= 2):
            raise LenetError(f"curvature_again_from={self.curvature_again_from} needs "
                             "curvature='first_pass' and an epoch from 2 on.")
        if not self.learning_rate > 0:
            raise LenetError(f"learning_rate={self.learning_rate} must be positive.")
        self._check_schedule_options()
        if (self.loss in ONE_HOT_LOSSES) != (self.pipeline == "numpy_float64"):
            raise LenetError(f"loss={self.loss!r} does not fit pipeline={self.pipeline!r}: "
                             "only the 'numpy_float64' pipeline makes one-hot labels, and "
                             f"it needs a loss among {', '.join(ONE_HOT_LOSSES)}.")

    def _check_schedule_options(self) -> None:
        parameters = inspect.signature(SCHEDULES[self.schedule]).parameters.values()
        takes = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
        needs = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY
                 and p.default is inspect.Parameter.empty}
        given = set(self.schedule_options)
        if given - takes or needs - given:
            takes_text = (f"schedule_options {sorted(takes)}, {sorted(needs)} needed"
                          if takes else "no schedule_options")
            raise LenetError(f"schedule={self.schedule!r} takes {takes_text}; "
                             f"got {sorted(given) or 'none'}.")

    @property
    def resolved_precision(self) -> str:
        """``precision``, with ``"auto"`` decided for this machine."""
        return resolve_precision(self.precision)

    def build_model(self, steps_per_epoch: int = 1) -> keras.Model:
        """Seed, build and compile the configured model.

        Parameters
        ----------
        steps_per_epoch : int
            Batches per epoch, which schedules that span the run need.
        """
        set_seed(self.seed)
        with dtype_policy(self.resolved_precision):
            model = MODEL_BUILDERS[self.model](**self.model_options)
        rate = SCHEDULES[self.schedule](self.learning_rate, steps_per_epoch, self.epochs,
                                        **self.schedule_options)
        options = dict(self.optimizer_options)
        if self.optimizer == "sdlm":
            options.setdefault("samples_per_step", self.batch_size)
        model.compile(optimizer=OPTIMIZERS[self.optimizer](learning_rate=rate, **options),
                      loss=LOSSES[self.loss], metrics=["accuracy"],
                      steps_per_execution=self.steps_per_execution)
        return model

    def but(self, **changes: Any) -> TrainingConfig:
        """A copy with some attributes changed.

        Examples
        --------
        >>> TrainingConfig().but(seed=1).seed
        1
        """
        return dataclasses.replace(self, **changes)

    def callbacks(self, train: Arrays | None = None) -> list[keras.callbacks.Callback]:
        """The callbacks the configuration asks for (early stopping, SDLM's curvature)."""
        callbacks = []
        if self.optimizer == "sdlm":
            if train is None:
                raise LenetError("optimizer='sdlm' estimates curvature on training images; "
                                 "pass train to callbacks().")
            callbacks.append(CurvatureEstimateFrom(
                train[0], seed=self.seed, every_pass=self.curvature == "every_pass",
                again_from=self.curvature_again_from))
        if self.early_stopping is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.early_stopping, restore_best_weights=True))
        return callbacks

    def fingerprint(self) -> dict[str, Any]:
        """The configuration with builder options equal to their defaults left out.

        ``{"dense_dropout": 0.0}`` builds the same model as ``{}``, so both runs
        share one cache entry. ``precision="auto"`` is keyed as the precision
        it resolves to on this machine.
        """
        defaults = {name: parameter.default for name, parameter in
                    inspect.signature(MODEL_BUILDERS[self.model]).parameters.items()}
        options = {name: value for name, value in sorted(self.model_options.items())
                   if defaults.get(name, inspect.Parameter.empty) != value}
        fingerprint = {**dataclasses.asdict(self), "model_options": options,
                       "precision": self.resolved_precision}
        for name, value in _KEYED_UNLESS.items():
            if fingerprint[name] == value:
                del fingerprint[name]
        return fingerprint


def starting_recipe(profile: Profile, seed: int = 0) -> TrainingConfig:
    """The starting script's recipe: SGD 0.01, batch 128, 20 epochs (capped by the profile).

    Examples
    --------
    >>> starting_recipe(get_profile("quick")).epochs  # doctest: +SKIP
    2
    """
    return TrainingConfig(model="lenet", optimizer="sgd", learning_rate=0.01,
                          batch_size=128, epochs=profile.epochs(20), seed=seed)


def sdlm_recipe(profile: Profile, seed: int = 0) -> TrainingConfig:
    """Chapter 9c's recipe: LeNet-5 with the paper's SDLM, one image per update.

    The paper's RBF outputs and eq. 9, weights in ``+-2.4/sqrt(F_i)``, SDLM
    at its ``eta`` schedule from 0.0005 and ``mu = 0.02``, with ``h_kk``
    estimated once, before the first pass, and kept; 20 passes (capped by
    the profile), scored once at the end. ``steps_per_execution=50`` runs 50
    single-image steps per call of Keras's compiled step and changes no number.

    Examples
    --------
    >>> sdlm_recipe(get_profile("full")).batch_size  # doctest: +SKIP
    1
    """
    return TrainingConfig(
        model="lenet5", model_options={"init_scale": "sqrt_fan_in"}, loss="rbf",
        optimizer="sdlm", optimizer_options={"mu": lenet5.SDLM_MU}, learning_rate=5e-4,
        schedule="lenet5_paper", curvature="first_pass", batch_size=1,
        steps_per_execution=50, epochs=profile.epochs(20), validate="at_end", seed=seed)


def small_batch_recipes(profile: Profile) -> dict[str, TrainingConfig]:
    """Chapter 9's two closest recipes, as chapter 9b trains them on new seeds.

    LeNet-5 with the paper's RBF outputs and eq. 9, Adam in batches of 16 for
    20 passes (capped by the profile), scored once at the end. "as published":
    Adam's rate falls in the shape of the paper's steps, from 0.001; "with
    distortions": a constant 0.001, every training image distorted afresh each
    time it is seen. Unlike :func:`sdlm_recipe` it takes no seed: both come
    with seed 0, and ``.but(seed=...)`` sets another.

    Parameters
    ----------
    profile : Profile
        Caps the number of passes.

    Returns
    -------
    dict of str to TrainingConfig
        Keyed ``"as published"`` and ``"with distortions"``.

    Examples
    --------
    >>> from lenet_utils.profile import get_profile
    >>> recipes = small_batch_recipes(get_profile("full"))
    >>> recipes["as published"].schedule, recipes["with distortions"].model_options
    ('lenet5_paper', {'distortions': True})
    """
    recipe = TrainingConfig(
        model="lenet5", loss="rbf", optimizer="adam", learning_rate=1e-3, batch_size=16,
        epochs=profile.epochs(20), validate="at_end")
    return {
        "as published": recipe.but(schedule="lenet5_paper"),
        "with distortions": recipe.but(model_options={"distortions": True}),
    }


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
    count_training(images, seconds)
    print(_summary_line(table, images, seconds))
    return table


def count_training(images: int, seconds: float) -> None:
    """Add a training run to the throughput that :class:`RunRecord` reports.

    :func:`fit` counts its runs; code that calls ``model.fit`` itself (the
    benchmark's timed runs) counts them here.

    Examples
    --------
    >>> count_training(54_000, 17.5)
    """
    _TRAINING_TALLY["images"] += images
    _TRAINING_TALLY["seconds"] += seconds


def _summary_line(history: pd.DataFrame, images: int, seconds: float) -> str:
    return (f"{len(history)} epochs, {images:,} images in {seconds:.0f} s "
            f"({images / max(seconds, 1e-9):,.0f} images/s); {_final_accuracy(history)}")


def _final_accuracy(history: pd.DataFrame) -> str:
    """``val_accuracy 0.9853``, of the last epoch, for a one-line summary."""
    return f"val_accuracy {history.iloc[-1].get('val_accuracy', math.nan):.4f}"


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
    if config.pipeline != "tf_data":
        raise LenetError(f"pipeline={config.pipeline!r} feeds raw images the starting "
                         "script's way, which only benchmark.time_to_accuracy does; "
                         "train_or_load takes scaled arrays: use pipeline='tf_data'.")
    key = cache_key(config, train, validation)
    folder = cache_dir() / key
    if folder.exists():
        try:
            loaded = _load_entry(folder)
        except Exception as error:  # noqa: BLE001 - any unreadable entry is retrained
            print(f"{UNREADABLE_ENTRY} {key} is unreadable ({type(error).__name__}); "
                  "training again")
        else:
            history = loaded[1]
            _LOADED_FROM_CACHE.append(trained_on(folder))
            print(f"loaded from the cache ({key}): {len(history)} epochs, "
                  f"{_final_accuracy(history)}")
            return loaded
    model = config.build_model(steps_per_epoch=math.ceil(len(train[1]) / config.batch_size))
    history = fit(model, train, validation, epochs=config.epochs,
                  batch_size=config.batch_size, seed=config.seed,
                  callbacks=config.callbacks(train), validate=config.validate,
                  log_epochs=log_epochs)
    _save_atomically(folder, model, history, config)
    return model, history


def train_or_load_each(
    configs: dict[str, TrainingConfig], train: Arrays, validation: Arrays
) -> tuple[dict[str, keras.Model], dict[str, pd.DataFrame]]:
    """:func:`train_or_load` for each of several named runs, with their logs out of sight.

    For chapters that train on all the training images (the LeNet-5 appendix),
    where the per-epoch log would score validation images the runs trained on.
    Only the notice of an unreadable cache entry, trained again, is printed,
    after the run's name.

    Returns
    -------
    models, histories : dict
        Keyed by the names of ``configs``.

    Examples
    --------
    >>> models, histories = train_or_load_each({"seed 0": config}, train,
    ...                                        splits.validation)  # doctest: +SKIP
    """
    trained, histories = {}, {}
    for name, config in configs.items():
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            trained[name], histories[name] = train_or_load(config, train, validation)
        # A retrained entry costs the reader time: that one line stays in view.
        for line in log.getvalue().splitlines():
            if line.startswith(UNREADABLE_ENTRY):
                print(f"{name}: {line}")
    return trained, histories


def trained_on(folder: Path) -> str:
    """The device that trained the cache entry in ``folder``, as its run record named it.

    Entries written before the cache recorded it say :data:`NOT_RECORDED`.
    The device is not part of the key: the same run trained on two machines
    shares one entry, though the two may differ in their last digits.
    """
    try:
        return str(json.loads((folder / TRAINED_ON_FILE).read_text())["device"])
    except (OSError, ValueError, KeyError, TypeError):
        return NOT_RECORDED


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
        (staging / TRAINED_ON_FILE).write_text(json.dumps({
            "device": device_name(), "tensorflow": tf.__version__,
            "lenet_utils": lenet_utils.__version__}))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    loaded_at_start: int = field(default_factory=lambda: len(_LOADED_FROM_CACHE))

    def report(self) -> str:
        """The run record: profile, wall time, device, throughput, cached devices, versions."""
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
            f"from the cache: {self._cached_devices()}",
            f"python: {platform.python_version()}",
            f"tensorflow: {tf.__version__}",
            f"keras: {keras.__version__}",
            f"lenet_utils: {lenet_utils.__version__}",
        ])

    def _cached_devices(self) -> str:
        loaded = Counter(_LOADED_FROM_CACHE[self.loaded_at_start:])
        if not loaded:
            return "none"
        # One device to a line, under the first, so that the record stays narrow.
        indent = "\n" + " " * len("from the cache: ")
        return indent.join(f"{count} trained on {device}" for device, count in loaded.items())
