"""Shared fixtures: tiny MNIST-shaped files and the real MNIST when available."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from lenet_utils import data


def spec_of(array: np.ndarray) -> data.ArraySpec:
    return data.ArraySpec(array.shape, str(array.dtype),
                          hashlib.sha256(array.tobytes()).hexdigest())


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch) -> tuple[Path, dict[str, np.ndarray]]:
    """A small valid archive, with the expected specs patched to match it."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "y_train": np.repeat(np.arange(10, dtype=np.uint8), 4),
        "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_test": np.repeat(np.arange(10, dtype=np.uint8), 2),
    }
    monkeypatch.setattr(data, "MNIST_ARRAYS", {k: spec_of(v) for k, v in arrays.items()})
    path = tmp_path / "tiny.npz"
    np.savez_compressed(path, **arrays)
    return path, arrays


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The real MNIST named by LENET_MNIST_PATH (CI sets it)."""
    configured = os.environ.get(data.MNIST_PATH_VARIABLE)
    if not configured:
        pytest.skip(f"{data.MNIST_PATH_VARIABLE} is not set")
    return Path(configured)
