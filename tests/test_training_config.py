"""TrainingConfig's precision and pipeline, and seeding on a CPU and on a GPU."""

import numpy as np
import pytest

from lenet_utils import LenetError, training


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    images = rng.random((80, 28, 28, 1), dtype=np.float32)
    images[np.arange(80), labels, labels] = 3.0
    return (images[:60], labels[:60]), (images[60:], labels[60:])


@pytest.mark.parametrize(("change", "message"), [
    ({"precision": "float16"}, "precision='float16' is unknown"),
    ({"pipeline": "csv"}, "pipeline='csv' is unknown"),
    ({"learning_rate": 0.0}, "learning_rate=0.0 must be positive"),
    ({"loss": "categorical_crossentropy"}, "only the 'numpy_float64' pipeline"),
    ({"pipeline": "numpy_float64"}, "does not fit pipeline='numpy_float64'"),
])
def test_config_rejects_bad_precision_pipeline_and_rate(change, message):
    with pytest.raises(LenetError, match=message):
        training.TrainingConfig(**change)


def test_precision_and_pipeline_at_their_defaults_leave_the_cache_key_as_it_was():
    fingerprint = training.TrainingConfig().fingerprint()
    assert "precision" not in fingerprint and "pipeline" not in fingerprint
    bfloat16 = training.TrainingConfig(precision="mixed_bfloat16").fingerprint()
    assert bfloat16["precision"] == "mixed_bfloat16"


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_keyed_as_what_it_resolves_to(monkeypatch, toy_data, native):
    monkeypatch.setattr("lenet_utils.device.has_native_bfloat16", lambda: native)
    auto = training.TrainingConfig(precision="auto")
    resolved = training.TrainingConfig(precision="mixed_bfloat16" if native else "float32")
    assert training.cache_key(auto, *toy_data) == training.cache_key(resolved, *toy_data)


def test_train_or_load_trains_in_the_configured_precision(toy_data, tmp_path, monkeypatch):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=1, batch_size=16, precision="mixed_bfloat16")
    model, _ = training.train_or_load(config, *toy_data)
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    loaded, _ = training.train_or_load(config, *toy_data)
    assert loaded.get_layer("conv1").compute_dtype == "bfloat16"


def test_train_or_load_refuses_the_raw_numpy_pipeline(toy_data):
    config = training.TrainingConfig(pipeline="numpy_float64",
                                     loss="categorical_crossentropy")
    with pytest.raises(LenetError, match="use pipeline='tf_data'"):
        training.train_or_load(config, *toy_data)


@pytest.mark.parametrize(("visible_gpus", "asked", "expected"), [
    ([], None, True), (["GPU:0"], None, False), (["GPU:0"], True, True), ([], False, False),
])
def test_op_determinism_is_on_for_a_cpu_and_off_for_a_gpu_unless_asked(
        monkeypatch, visible_gpus, asked, expected):
    calls = []
    monkeypatch.setattr(training, "gpus", lambda: visible_gpus)
    monkeypatch.setattr(training.tf.config.experimental, "enable_op_determinism",
                        lambda: calls.append("on"))
    training.set_seed(3, deterministic_ops=asked)
    assert calls == (["on"] if expected else [])
    first = np.random.random()
    training.set_seed(3, deterministic_ops=asked)
    assert np.random.random() == first
