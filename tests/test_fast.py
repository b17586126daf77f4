import json

import keras
import numpy as np
import pytest

from lenet_utils import LenetError, fast
from lenet_utils.data import Splits
from lenet_utils.models import build_lenet


@pytest.fixture(scope="module")
def raw_toy():
    """Raw uint8 splits with one bright pixel per class: learnable in an epoch."""
    rng = np.random.default_rng(0)

    def part(per_class):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 30, (len(labels), 28, 28), dtype=np.uint8)
        images[np.arange(len(labels)), 2 * labels + 4, 2 * labels + 4] = 255
        return images, labels

    return Splits(*part(20), *part(5), *part(5))


@pytest.mark.parametrize("change", [
    {"pipeline": "csv"}, {"optimizer": "rmsprop"}, {"schedule": "step"},
    {"precision": "float16"}, {"batch_size": 0}, {"epochs": 0}, {"learning_rate": 0.0},
])
def test_recipe_rejects_unknown_options(change):
    with pytest.raises(LenetError, match=next(iter(change))):
        fast.STARTING_RECIPE.but("bad", **change)


def test_the_starting_recipe_is_the_starting_script():
    recipe = fast.STARTING_RECIPE
    assert (recipe.pipeline, recipe.optimizer, recipe.learning_rate, recipe.batch_size,
            recipe.epochs, recipe.precision) == ("numpy_float64", "sgd", 0.01, 128, 20, "float32")


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu avx512f amx_bf16 amx_tile", True),
    ("fpu avx512f avx512_bf16", True),
    ("fpu avx2 fma", False),
])
def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert fast.cpu_has_native_bfloat16(cpuinfo) is expected
    assert fast.cpu_has_native_bfloat16(tmp_path / "missing") is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_cpu(monkeypatch, native):
    monkeypatch.setattr(fast, "cpu_has_native_bfloat16", lambda: native)
    expected = "mixed_bfloat16" if native else "float32"
    assert fast.FAST_RECIPE.resolved_precision == expected


def test_dtype_policy_is_restored_even_after_an_error():
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError), fast.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError
    assert keras.config.dtype_policy().name == before


def test_one_cycle_warms_up_to_the_peak_then_anneals_to_zero():
    schedule = fast.OneCycle(peak=0.004, total_steps=101, warmup_fraction=0.2)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(0.004 / 25)
    assert rates.argmax() == 20 and rates.max() == pytest.approx(0.004)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert fast.OneCycle(**schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(LenetError):
        fast.OneCycle(peak=0.004, total_steps=1)


def test_mixed_precision_model_keeps_float32_weights_and_output():
    recipe = fast.FAST_RECIPE.but("bf16", precision="mixed_bfloat16")
    model = fast.build_model(recipe, steps_per_epoch=10)
    conv1 = model.get_layer("conv1")
    assert conv1.compute_dtype == "bfloat16" and conv1.variable_dtype == "float32"
    assert model(np.zeros((2, 28, 28, 1), "float32")).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_starting_pipeline_feeds_float64_arrays_and_one_hot_labels(raw_toy):
    inputs = fast.model_inputs(fast.STARTING_RECIPE, *raw_toy.train, training=True)
    assert inputs["x"].dtype == np.float64 and inputs["x"].shape == (200, 28, 28, 1)
    assert inputs["x"].max() == 1.0 and inputs["y"].shape == (200, 10)
    assert inputs["batch_size"] == 128


def test_fast_pipeline_yields_scaled_float32_batches(raw_toy):
    recipe = fast.FAST_RECIPE.but("small batches", batch_size=64)
    images, labels = next(iter(fast.model_inputs(recipe, *raw_toy.train, training=True)["x"]))
    assert images.dtype == "float32" and images.shape == (64, 28, 28, 1)
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) == 1.0
    assert labels.shape == (64,)


def test_pipelines_refuse_images_that_are_already_scaled(raw_toy):
    with pytest.raises(LenetError, match="scaled=False"):
        fast.model_inputs(fast.FAST_RECIPE, raw_toy.x_train / 255.0, raw_toy.y_train,
                          training=True)


def test_training_stops_at_the_target(raw_toy):
    recipe = fast.FAST_RECIPE.but("toy", batch_size=20, precision="float32")
    run = fast.time_to_accuracy(recipe, raw_toy, target=0.05)
    assert run.reached and run.epochs == 1
    assert list(run.history.columns[:1]) == ["seconds"] and run.seconds > 0
    assert run.summary()["images_per_second"] == round(200 / run.seconds)


def test_training_stops_at_the_cap_when_the_target_is_not_met(raw_toy):
    recipe = fast.STARTING_RECIPE.but("toy", epochs=2)
    run = fast.time_to_accuracy(recipe, raw_toy, target=1.0)
    assert run.epochs == 2 and not run.reached
    assert run.history["seconds"].is_monotonic_increasing
    with pytest.raises(LenetError, match="target"):
        fast.time_to_accuracy(recipe, raw_toy, target=99)


def test_same_seed_same_quick_numbers(raw_toy):
    recipe = fast.FAST_RECIPE.but("toy", batch_size=20, epochs=2)
    first = fast.time_to_accuracy(recipe, raw_toy, target=1.0, seed=3)
    second = fast.time_to_accuracy(recipe, raw_toy, target=1.0, seed=3)
    columns = ["loss", "val_loss", "val_accuracy"]
    assert first.history[columns].equals(second.history[columns])
    assert first.test_accuracy == second.test_accuracy


def test_training_flops_of_the_modern_lenet():
    multiply_adds = (28 * 28 * 20 * 5 * 5 * 1      # conv1, "same" padding
                     + 14 * 14 * 50 * 5 * 5 * 20   # conv2
                     + 7 * 7 * 50 * 500            # dense1
                     + 500 * 10)                   # output
    assert fast.training_flops_per_image(build_lenet()) == 3 * 2 * multiply_adds


def row(seconds, reached, epochs=3):
    return {"recipe": "r", "reached": reached, "seconds": seconds, "epochs": epochs,
            "images_per_second": 1000, "best_val_accuracy": 0.99, "peak_rss_mb": 900,
            "test_accuracy": 0.99}


def test_speedup_is_a_lower_bound_when_only_the_slow_run_hit_its_cap():
    assert fast.speedup(row(300.0, True), row(20.0, True)) == (15.0, "=")
    assert fast.speedup(row(300.0, False), row(20.0, True)) == (15.0, ">=")
    assert fast.speedup(row(300.0, True), row(20.0, False)) == (None, "")


def test_benchmark_table_marks_runs_that_hit_the_cap():
    table = fast.benchmark_table([row(300.0, False), row(20.0, True)], 0.99)
    assert list(table["reached 99.0%"]) == ["no (cap)", "yes"]
    assert list(table["seconds to 99.0%"]) == ["-", 20.0]


def test_results_loader_explains_missing_and_wrong_files(tmp_path):
    with pytest.raises(LenetError, match="--output"):
        fast.load_benchmark_results(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"rows": []}))
    with pytest.raises(LenetError, match="target, rows and machine"):
        fast.load_benchmark_results(wrong)
    wrong.write_text("{not json")
    with pytest.raises(LenetError, match="not JSON"):
        fast.load_benchmark_results(wrong)
