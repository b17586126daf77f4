"""Export chapter 3's LeNet to ONNX for the book's live page, with its provenance.

Usage: ``python tools/export_onnx.py`` (``make live-model`` runs it).

It trains the starting recipe exactly as chapter 3 does, on the full data, or
loads that run from the cache (``LENET_CACHE_DIR``); exports it with its
feature maps and float16 weights to ``book/models/lenet.onnx``; and writes
``book/models/lenet.json``: the configuration, the data, the test accuracy
of the Keras model and of the exported file (both measured here, on the
10,000 test images), what rounding the weights to float16 changes, the
versions of every package involved, and the date.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "book" / "models" / "lenet.onnx"
SEED = 0
PACKAGES = ("tensorflow", "keras", "numpy", "tf2onnx", "onnx", "onnxruntime", "lenet_utils")


def starting_recipe():
    """Chapter 3's configuration in the full profile (20 epochs)."""
    from lenet_utils.training import TrainingConfig

    return TrainingConfig(model="lenet", optimizer="sgd", learning_rate=0.01,
                          batch_size=128, epochs=20, seed=SEED)


def compare(keras_outputs: list[np.ndarray], onnx_outputs: dict[str, np.ndarray]) -> dict:
    """Largest absolute difference per output, and how many predictions differ."""
    from lenet_utils.export import OUTPUT_NAMES

    differences = {name: float(np.abs(ours - onnx_outputs[name]).max())
                   for name, ours in zip(OUTPUT_NAMES, keras_outputs, strict=True)}
    changed = int(np.sum(keras_outputs[-1].argmax(1) != onnx_outputs["probabilities"].argmax(1)))
    return {"max_abs_difference": differences, "different_predictions": changed}


def measure(model, path: Path, splits) -> dict:
    """Test accuracy before and after export, and the export against Keras."""
    from lenet_utils.export import round_weights_to_float16, run_onnx, with_feature_maps

    images, labels = splits.test
    exported = run_onnx(path, images)
    original = model.predict(images, batch_size=500, verbose=0)
    rounded = with_feature_maps(round_weights_to_float16(model)).predict(
        images, batch_size=500, verbose=0)
    return {
        "test_images": len(labels),
        "test_accuracy_keras_float32": float(np.mean(original.argmax(1) == labels)),
        "test_accuracy_exported": float(np.mean(exported["probabilities"].argmax(1) == labels)),
        "float16_rounding": {
            "max_abs_probability_difference": float(
                np.abs(original - exported["probabilities"]).max()),
            "different_predictions": int(np.sum(
                original.argmax(1) != exported["probabilities"].argmax(1))),
        },
        "onnxruntime_against_keras_with_rounded_weights": compare(rounded, exported),
    }


def file_facts(path: Path) -> dict:
    data = path.read_bytes()
    return {"file": path.name, "bytes": len(data),
            "bytes_gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "sha256": hashlib.sha256(data).hexdigest()}


def provenance(config, key: str, splits, path: Path, measured: dict) -> dict:
    from lenet_utils.export import FEATURE_LAYERS, INPUT_NAME

    return {
        "description": "Chapter 3's modern LeNet (the starting recipe), trained on the "
                       "full training split, exported by tools/export_onnx.py.",
        "model": {
            **file_facts(path),
            "weights": "float16, cast to float32 in the graph: all arithmetic is float32",
            "input": {INPUT_NAME: "float32 (N, 28, 28, 1), ink 1, background 0"},
            "outputs": {**{name: f"feature maps of {layer} (after the ReLU, before pooling)"
                           for name, layer in FEATURE_LAYERS.items()},
                        "probabilities": "softmax over the digits 0-9"},
        },
        "training": {"config": config.fingerprint(), "cache_key": key,
                     "notebook": "notebooks/03_training.ipynb"},
        "data": {"source": "MNIST (Keras's mnist.npz, checksums verified by "
                           "lenet_utils.data.load_mnist)",
                 "split_seed": SEED, "train": len(splits.y_train),
                 "validation": len(splits.y_val), "test": len(splits.y_test)},
        "measured": measured,
        "versions": {"python": platform.python_version(),
                     **{name: version(name) for name in PACKAGES}},
        "date": datetime.date.today().isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=MODEL,
                        help=f"the .onnx file to write (default {MODEL.relative_to(ROOT)}); "
                             "the provenance goes beside it as .json")
    arguments = parser.parse_args()

    from lenet_utils.data import load_splits
    from lenet_utils.export import export_onnx
    from lenet_utils.training import cache_key, set_seed, train_or_load

    config = starting_recipe()
    set_seed(SEED)
    splits = load_splits(seed=SEED)
    model, _ = train_or_load(config, splits.train, splits.validation)
    path = export_onnx(model, arguments.output, float16_weights=True)
    record = provenance(config, cache_key(config, splits.train, splits.validation), splits,
                        path, measure(model, path, splits))
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["measured"], indent=2))


if __name__ == "__main__":
    main()
