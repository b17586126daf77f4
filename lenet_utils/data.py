"""Load, verify, split and batch MNIST.

The loader never trusts a file: every array is checked for its key, shape,
dtype, label range and SHA-256 before anything is returned, so a chapter
either gets the real MNIST or a :class:`~lenet_utils.LenetError` that says
what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from scipy import ndimage
from sklearn.model_selection import train_test_split

from lenet_utils.errors import LenetError

MNIST_PATH_VARIABLE = "LENET_MNIST_PATH"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ArraySpec:
    """What one array of ``mnist.npz`` must be."""

    shape: tuple[int, ...]
    dtype: str
    sha256: str


# SHA-256 of ``array.tobytes()`` for the official MNIST, in Keras's order.
MNIST_ARRAYS = {
    "x_train": ArraySpec(
        (60000, 28, 28), "uint8",
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ),
    "y_train": ArraySpec(
        (60000,), "uint8",
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ),
    "x_test": ArraySpec(
        (10000, 28, 28), "uint8",
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ),
    "y_test": ArraySpec(
        (10000,), "uint8",
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
}

_FIX = (
    f"Pass path= to load_mnist, or set {MNIST_PATH_VARIABLE} to a copy of the "
    "full MNIST in Keras's layout (mnist.npz); unset it to download with Keras."
)


def load_mnist(
    path: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the full MNIST and verify every array.

    Parameters
    ----------
    path : str or path-like, optional
        An ``.npz`` in Keras's layout. When omitted, the environment variable
        ``LENET_MNIST_PATH`` is used; when that is unset too,
        ``keras.datasets.mnist.load_data()`` downloads the data (Colab, a
        laptop with network). Nothing is ever copied into ``~/.keras``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of ndarray
        ``uint8`` images of shape ``(n, 28, 28)`` with values 0-255, and
        ``uint8`` labels 0-9, exactly as Keras returns them.

    Raises
    ------
    LenetError
        If the file is missing, unreadable, truncated, lacks a key, or holds
        an array of the wrong shape, dtype, label range or checksum.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_mnist("mnist.npz")  # doctest: +SKIP
    """
    source = resolve_mnist_path(path)
    if source is None:
        arrays, origin = _download_with_keras(), "keras.datasets.mnist.load_data()"
    else:
        arrays, origin = _read_npz(source), str(source)
    verify_mnist(arrays, origin)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def resolve_mnist_path(path: str | os.PathLike | None = None) -> Path | None:
    """Return where MNIST will be read from: the argument, the variable, or None.

    ``None`` means the Keras download.
    """
    if path is not None:
        return Path(path)
    from_environment = os.environ.get(MNIST_PATH_VARIABLE, "").strip()
    return Path(from_environment) if from_environment else None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise LenetError(f"MNIST file {path} does not exist. {_FIX}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise LenetError(
                f"MNIST file {path} holds a single array, not an .npz archive. {_FIX}"
            )
        with archive:
            missing = [key for key in MNIST_ARRAYS if key not in archive.files]
            if missing:
                raise LenetError(
                    f"MNIST file {path} has no array {', '.join(missing)} "
                    f"(it holds {', '.join(archive.files) or 'nothing'}). "
                    f"It is not MNIST in Keras's layout. {_FIX}"
                )
            return {key: archive[key] for key in MNIST_ARRAYS}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise LenetError(
            f"MNIST file {path} cannot be read as an .npz archive ({error}); it is "
            f"probably truncated or corrupt. Replace it with a fresh copy. {_FIX}"
        ) from error


def _download_with_keras() -> dict[str, np.ndarray]:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises many kinds when offline
        raise LenetError(
            f"keras.datasets.mnist.load_data() failed ({error}). Without network, "
            f"set {MNIST_PATH_VARIABLE} to a local mnist.npz."
        ) from error
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def verify_mnist(arrays: dict[str, np.ndarray], origin: str = "MNIST") -> None:
    """Check keys, shapes, dtypes, label range and checksums against MNIST.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The four arrays, keyed as in Keras's ``mnist.npz``.
    origin : str
        Where they came from, for the error message.

    Raises
    ------
    LenetError
        On the first array that differs from the official MNIST.

    Examples
    --------
    >>> verify_mnist({"x_train": x_train, ...}, "mnist.npz")  # doctest: +SKIP
    """
    for key, spec in MNIST_ARRAYS.items():
        if key not in arrays:
            raise LenetError(f"{origin}: array {key} is missing. {_FIX}")
        array = arrays[key]
        if array.shape != spec.shape or array.dtype != np.dtype(spec.dtype):
            raise LenetError(
                f"{origin}: {key} has shape {array.shape} and dtype {array.dtype}, "
                f"expected {spec.shape} and {spec.dtype}. {_FIX}"
            )
        if key.startswith("y_") and array.size and array.max() >= NUM_CLASSES:
            raise LenetError(
                f"{origin}: {key} holds label {array.max()}, outside 0-9. {_FIX}"
            )
        digest = hashlib.sha256(array.tobytes()).hexdigest()
        if digest != spec.sha256:
            raise LenetError(
                f"{origin}: {key} has SHA-256 {digest[:12]}…, expected "
                f"{spec.sha256[:12]}…: the file is corrupt or not the official "
                f"MNIST. {_FIX}"
            )


def scale_images(images: np.ndarray) -> np.ndarray:
    """Turn ``uint8`` digits into ``float32`` in [0, 1] with a channel axis.

    Parameters
    ----------
    images : ndarray of shape (n, 28, 28) or (n, 28, 28, 1)
        Pixel values 0-255.

    Returns
    -------
    ndarray of shape (n, 28, 28, 1), float32

    Raises
    ------
    LenetError
        If the images are not 28x28 single-channel.

    Examples
    --------
    >>> scale_images(np.zeros((2, 28, 28), np.uint8)).shape
    (2, 28, 28, 1)
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[1:] != (*IMAGE_SHAPE, 1):
        raise LenetError(
            f"images have shape {images.shape}; expected (n, 28, 28) or "
            "(n, 28, 28, 1). Pass MNIST-sized grayscale digits."
        )
    return images.astype(np.float32) / np.float32(255.0)


def train_validation_split(
    images: np.ndarray, labels: np.ndarray, validation_size: int = 6000, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split the training set into train and validation, stratified by class.

    Parameters
    ----------
    images, labels : ndarray
        The training images and labels (never the test set).
    validation_size : int
        How many examples to hold out for validation.
    seed : int
        The same seed gives the same split.

    Returns
    -------
    (x_train, y_train), (x_validation, y_validation) : tuple of tuple of ndarray

    Examples
    --------
    >>> (x_tr, y_tr), (x_val, y_val) = train_validation_split(x, y, 6000, seed=0)  # doctest: +SKIP
    """
    if not 0 < validation_size < len(labels):
        raise LenetError(
            f"validation_size={validation_size} must be between 1 and "
            f"{len(labels) - 1}, the number of examples minus one."
        )
    x_train, x_val, y_train, y_val = train_test_split(
        images, labels, test_size=validation_size, stratify=labels, random_state=seed
    )
    return (x_train, y_train), (x_val, y_val)


def stratified_subset(
    images: np.ndarray, labels: np.ndarray, per_class: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``per_class`` examples of every class, in shuffled order.

    Parameters
    ----------
    images, labels : ndarray
        The pool to draw from.
    per_class : int
        Examples per class; every class must have that many.
    seed : int
        The same seed gives the same subset.

    Returns
    -------
    images, labels : ndarray
        ``per_class * n_classes`` examples.

    Examples
    --------
    >>> x_small, y_small = stratified_subset(x, y, per_class=50, seed=0)  # doctest: +SKIP
    """
    classes, counts = np.unique(labels, return_counts=True)
    if per_class < 1 or per_class > counts.min():
        raise LenetError(
            f"per_class={per_class} must be between 1 and {counts.min()}, the size "
            "of the smallest class."
        )
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
        for label in classes
    ]
    order = rng.permutation(np.concatenate(chosen))
    return images[order], labels[order]


@dataclass(frozen=True)
class Splits:
    """Train, validation and test arrays: scaled for a model, or raw uint8."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_val, y_val)``."""
        return self.x_val, self.y_val

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_test, y_test)``."""
        return self.x_test, self.y_test

    @property
    def all_training(self) -> tuple[np.ndarray, np.ndarray]:
        """The training and validation images together, in that order.

        With the default split these are all 60,000 of MNIST's training
        images, which the LeNet-5 paper trains on: the appendix's chapters
        use them to follow its recipe, and score only the test set.
        """
        return (np.concatenate([self.x_train, self.x_val]),
                np.concatenate([self.y_train, self.y_val]))


def load_splits(
    path: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    validation_size: int = 6000,
    train_per_class: int | None = None,
    validation_per_class: int | None = None,
    test_per_class: int | None = None,
    scaled: bool = True,
) -> Splits:
    """Load MNIST, split off validation, optionally shrink it, and scale it.

    Parameters
    ----------
    path : str or path-like, optional
        Passed to :func:`load_mnist`.
    seed : int
        Seeds the split and the subsets.
    validation_size : int
        Examples held out of the 60,000 training images for validation.
    train_per_class, validation_per_class, test_per_class : int, optional
        Keep only this many examples per class (the quick profile's sizes).
    scaled : bool
        Scale the images to float32 in [0, 1] with a channel axis; False keeps
        the raw uint8 arrays, for recipes that scale them their own way.

    Returns
    -------
    Splits

    Examples
    --------
    >>> splits = load_splits(seed=0, **get_profile().data_limits)  # doctest: +SKIP
    """
    (x_train, y_train), (x_test, y_test) = load_mnist(path)
    train, validation = train_validation_split(x_train, y_train, validation_size, seed)
    parts = [train, validation, (x_test, y_test)]
    limits = [train_per_class, validation_per_class, test_per_class]
    parts = [
        part if limit is None else stratified_subset(*part, limit, seed)
        for part, limit in zip(parts, limits, strict=True)
    ]
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = parts
    if not scaled:
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te)
    return Splits(
        scale_images(x_tr), y_tr, scale_images(x_val), y_val, scale_images(x_te), y_te
    )


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline: optionally shuffle, then batch and prefetch.

    Parameters
    ----------
    images, labels : ndarray
        Scaled images and integer labels.
    batch_size : int
        Examples per batch.
    shuffle : bool
        Reshuffle the whole set every epoch (for training).
    seed : int, optional
        Seeds the shuffle, so the same seed gives the same batches.

    Returns
    -------
    tf.data.Dataset
        Batches of ``(images, labels)``.

    Examples
    --------
    >>> train_batches = make_dataset(x, y, 128, shuffle=True, seed=0)  # doctest: +SKIP
    """
    if batch_size < 1:
        raise LenetError(f"batch_size={batch_size} must be a positive integer.")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def shift_images(images: np.ndarray, right: int, down: int) -> np.ndarray:
    """Move every image ``right`` and ``down`` pixels, filling with background.

    Parameters
    ----------
    images : ndarray of shape (n, height, width) or (n, height, width, 1)
    right, down : int
        Pixels to move; negative values move left and up.

    Returns
    -------
    ndarray
        Same shape and dtype; pixels moved past the border are lost.

    Examples
    --------
    >>> shift_images(np.eye(3)[None], 1, 0)[0]
    array([[0., 1., 0.],
           [0., 0., 1.],
           [0., 0., 0.]])
    """
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    rows_to = slice(max(down, 0), height + min(down, 0))
    rows_from = slice(max(-down, 0), height + min(-down, 0))
    cols_to = slice(max(right, 0), width + min(right, 0))
    cols_from = slice(max(-right, 0), width + min(-right, 0))
    moved[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return moved


def rotate_images(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image anticlockwise about its centre, filling with background.

    Parameters
    ----------
    images : ndarray of shape (n, height, width) or (n, height, width, 1)
    degrees : float

    Returns
    -------
    ndarray
        Same shape and dtype.

    Examples
    --------
    >>> rotate_images(x_test, 15).shape == x_test.shape  # doctest: +SKIP
    True
    """
    rotated = ndimage.rotate(images, degrees, axes=(2, 1), reshape=False, order=1,
                             mode="constant", cval=0.0)
    return rotated.astype(images.dtype)
