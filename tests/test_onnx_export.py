"""The ONNX export behind the live digit page: lenet_utils.export and its stored file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from lenet_utils import LenetError, export
from lenet_utils.data import load_mnist, scale_images
from lenet_utils.models import build_lenet

# The export's tools come with requirements.txt (the maintainers' stack), not with the
# package: make test-matrix's environments, which install the package alone, skip these
# tests. CI installs requirements.txt, so there a missing tool fails instead of skipping.
if os.environ.get("CI"):
    import onnx
    import onnxruntime  # noqa: F401
else:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "book" / "models" / "lenet.onnx"
PROVENANCE = MODEL.with_suffix(".json")
CHAPTER_3 = ROOT / "notebooks" / "03_training.ipynb"


def randomised_lenet(seed: int = 0) -> keras.Model:
    # Non-zero biases: a converter may drop an addition of zeros.
    model = build_lenet()
    rng = np.random.default_rng(seed)
    model.set_weights([weight + rng.normal(0, 0.05, weight.shape).astype(np.float32)
                       for weight in model.get_weights()])
    return model


def largest_differences(ours: list[np.ndarray], theirs: dict[str, np.ndarray]) -> dict:
    """Largest absolute difference per output, in units of the output's scale.

    The scale is 1 for the probabilities; a feature map's values reach about
    20, where float32 itself resolves only about 2e-6, so its differences are
    divided by its largest value when that exceeds 1.
    """
    return {name: float(np.abs(mine - theirs[name]).max() / max(1.0, np.abs(mine).max()))
            for name, mine in zip(export.OUTPUT_NAMES, ours, strict=True)}


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> tuple[keras.Model, Path]:
    model = randomised_lenet()
    path = tmp_path_factory.mktemp("export") / "lenet.onnx"
    return model, export.export_onnx(model, path)


@pytest.fixture(scope="module")
def test_digits() -> tuple[np.ndarray, np.ndarray]:
    _, (x_test, y_test) = load_mnist()
    return scale_images(x_test), y_test


@pytest.fixture(scope="module")
def stored_model() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL.relative_to(ROOT)} is absent: export it with make live-model")
    return MODEL


def test_export_has_named_input_outputs_and_float16_weights(small_export):
    _, path = small_export
    graph = onnx.load(path).graph
    assert [value.name for value in graph.input] == ["image"]
    assert [value.name for value in graph.output] == ["conv1", "conv2", "probabilities"]
    weights = {init.name: init.data_type for init in graph.initializer if "/" in init.name}
    assert set(weights) == {f"{layer}/{kind}" for layer in ("conv1", "conv2", "dense1", "output")
                            for kind in ("kernel", "bias")}
    assert set(weights.values()) == {onnx.TensorProto.FLOAT16}


def test_export_computes_keras_with_float16_weights(small_export):
    model, path = small_export
    images = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    ours = export.run_onnx(path, images, batch_size=20)
    rounded = export.with_feature_maps(export.round_weights_to_float16(model)).predict(
        images, verbose=0)
    assert [ours[name].shape[1:] for name in export.OUTPUT_NAMES] == [
        (28, 28, 20), (14, 14, 50), (10,)]
    assert max(largest_differences(rounded, ours).values()) <= 1e-5
    original = export.with_feature_maps(model).predict(images, verbose=0)
    assert max(largest_differences(original, ours).values()) > 1e-5, "weights were not rounded"


def test_float32_export_keeps_the_weights(small_export, tmp_path):
    model, _ = small_export
    path = export.export_onnx(model, tmp_path / "float32.onnx", float16_weights=False)
    stored = export.weights_from_onnx(path)
    for layer in model.layers:
        for variable in layer.weights:
            assert np.array_equal(stored[f"{layer.name}/{variable.name}"], np.asarray(variable))


def test_lenet_from_onnx_holds_the_rounded_weights(small_export):
    model, path = small_export
    rebuilt = export.lenet_from_onnx(path)
    rounded = export.round_weights_to_float16(model)
    for mine, theirs in zip(rebuilt.get_weights(), rounded.get_weights(), strict=True):
        assert np.array_equal(mine, theirs)


def test_rounding_leaves_the_original_model_alone():
    model = randomised_lenet()
    before = [weight.copy() for weight in model.get_weights()]
    rounded = export.round_weights_to_float16(model)
    for original, kept, new in zip(before, model.get_weights(), rounded.get_weights(),
                                   strict=True):
        assert np.array_equal(original, kept)
        assert np.array_equal(new, original.astype(np.float16).astype(np.float32))


def test_errors_name_the_problem(tmp_path):
    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)], name="plain")
    with pytest.raises(LenetError, match="'plain' has no layer conv1_relu, conv2_relu"):
        export.with_feature_maps(plain)
    with pytest.raises(LenetError, match="does not exist; create it first"):
        export.export_onnx(build_lenet(), tmp_path / "missing" / "lenet.onnx")
    with pytest.raises(LenetError, match="make live-model"):
        export.weights_from_onnx(tmp_path / "absent.onnx")
    with pytest.raises(LenetError, match="make live-model"):
        export.run_onnx(tmp_path / "absent.onnx", np.zeros((1, 28, 28, 1), np.float32))


def test_stored_model_equals_keras_on_1000_test_digits(stored_model, test_digits):
    # The Keras model with the file's weights is chapter 3's model with its
    # weights rounded to float16 (checked by the provenance test below).
    images = test_digits[0][:1000]
    ours = export.run_onnx(stored_model, images)
    keras_outputs = export.with_feature_maps(export.lenet_from_onnx(stored_model)).predict(
        images, batch_size=500, verbose=0)
    differences = largest_differences(keras_outputs, ours)
    assert max(differences.values()) <= 1e-5, differences
    assert np.array_equal(keras_outputs[-1].argmax(1), ours["probabilities"].argmax(1))


def test_provenance_describes_the_stored_model(stored_model, test_digits):
    record = json.loads(PROVENANCE.read_text())
    assert record["model"]["sha256"] == hashlib.sha256(stored_model.read_bytes()).hexdigest()
    assert record["training"]["config"] == {
        "model": "lenet", "model_options": {}, "optimizer": "sgd", "learning_rate": 0.01,
        "batch_size": 128, "epochs": 20, "seed": 0, "early_stopping": None,
        "schedule": "constant", "loss": "sparse_categorical_crossentropy",
        "validate": "every_epoch"}
    images, labels = test_digits
    probabilities = export.run_onnx(stored_model, images)["probabilities"]
    measured = record["measured"]
    assert measured["test_accuracy_exported"] == float(np.mean(probabilities.argmax(1) == labels))
    assert measured["onnxruntime_against_keras_with_rounded_weights"][
        "different_predictions"] == 0


def test_provenance_accuracy_is_chapter_3s_stored_result():
    if not PROVENANCE.is_file():
        pytest.skip(f"{PROVENANCE.relative_to(ROOT)} is absent: make live-model writes it")
    outputs = "".join("".join(output.get("text", ""))
                      for cell in json.loads(CHAPTER_3.read_text())["cells"]
                      for output in cell.get("outputs", []))
    chapter = re.search(r"test accuracy (0\.\d{4})", outputs)
    assert chapter, "chapter 3 prints its test accuracy"
    accuracy = json.loads(PROVENANCE.read_text())["measured"]["test_accuracy_keras_float32"]
    assert f"{accuracy:.4f}" == chapter.group(1), "re-export with make live-model"


def test_stored_weights_are_chapter_3s_model_rounded_to_float16(stored_model):
    # Needs chapter 3's full-profile model in LENET_CACHE_DIR (make notebooks or
    # make live-model leave it there); CI has only quick-profile models, and
    # relies on the accuracy test above instead.
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from export_onnx import starting_recipe
    finally:
        sys.path.pop(0)
    from lenet_utils.data import load_splits
    from lenet_utils.training import cache_dir, cache_key

    config = starting_recipe()
    splits = load_splits(seed=config.seed)
    folder = cache_dir() / cache_key(config, splits.train, splits.validation)
    if not (folder / "model.keras").is_file():
        pytest.skip(f"chapter 3's full-profile model is not cached in {cache_dir()}")
    trained = keras.models.load_model(folder / "model.keras")
    stored = export.weights_from_onnx(stored_model)
    for layer in trained.layers:
        for variable in layer.weights:
            rounded = np.asarray(variable).astype(np.float16).astype(np.float32)
            assert np.array_equal(stored[f"{layer.name}/{variable.name}"], rounded)
