"""Timing to a target accuracy, the benchmark script (its capped quick check is what CI
runs), its tables and its stored results."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet_utils import LenetError, benchmark, fast
from lenet_utils.data import Splits
from lenet_utils.models import build_lenet

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "time_to_99.py"


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


def test_starting_pipeline_feeds_float64_arrays_and_one_hot_labels(raw_toy):
    inputs = benchmark.model_inputs(fast.STARTING_RECIPE, *raw_toy.train, training=True)
    assert inputs["x"].dtype == np.float64 and inputs["x"].shape == (200, 28, 28, 1)
    assert inputs["x"].max() == 1.0 and inputs["y"].shape == (200, 10)
    assert inputs["batch_size"] == 128


def test_fast_pipeline_yields_scaled_float32_batches(raw_toy):
    config = fast.FAST_RECIPE.but(batch_size=64)
    dataset = benchmark.model_inputs(config, *raw_toy.train, training=True)["x"]
    images, labels = next(iter(dataset))
    assert images.dtype == "float32" and images.shape == (64, 28, 28, 1)
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) == 1.0
    assert labels.shape == (64,)


def test_pipelines_refuse_images_that_are_already_scaled(raw_toy):
    with pytest.raises(LenetError, match="scaled=False"):
        benchmark.model_inputs(fast.FAST_RECIPE, raw_toy.x_train / 255.0, raw_toy.y_train,
                               training=True)


def test_training_stops_at_the_target(raw_toy):
    config = fast.FAST_RECIPE.but(batch_size=20, precision="float32")
    run = benchmark.time_to_accuracy(config, raw_toy, target=0.05)
    assert run.reached and run.epochs == run.epochs_to_target == 1
    assert list(run.history.columns[:1]) == ["seconds"] and run.seconds > 0
    assert run.seconds_to_target == run.seconds
    assert run.test_accuracy is None and "test_accuracy" not in run.summary()
    assert run.summary()["images_per_second"] == round(200 / run.seconds)


def test_training_can_go_on_past_the_target(raw_toy):
    config = fast.FAST_RECIPE.but(batch_size=20, precision="float32", epochs=2)
    run = benchmark.time_to_accuracy(config, raw_toy, target=0.05, stop_at_target=False,
                                     evaluate_test=True)
    assert run.epochs == 2 and run.epochs_to_target == 1
    assert run.seconds_to_target == run.history.loc[1, "seconds"] < run.seconds
    assert 0 <= run.summary()["test_accuracy"] <= 1


def test_training_stops_at_the_cap_when_the_target_is_not_met(raw_toy):
    config = fast.STARTING_RECIPE.but(epochs=2)
    run = benchmark.time_to_accuracy(config, raw_toy, target=1.0)
    assert run.epochs == 2 and not run.reached and run.seconds_to_target is None
    assert run.history["seconds"].is_monotonic_increasing
    table = benchmark.timing_table({"starting": run})
    assert table.loc["starting", "seconds to 100%"] == "-"
    assert table.loc["starting", "s/epoch"] == round(run.seconds / 2, 1)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"target": 99}, "target"),
    ({"config": fast.FAST_RECIPE.but(validate="at_end")}, "validate='every_epoch'"),
])
def test_time_to_accuracy_refuses_what_it_cannot_time(raw_toy, arguments, message):
    config = arguments.pop("config", fast.FAST_RECIPE)
    with pytest.raises(LenetError, match=message):
        benchmark.time_to_accuracy(config, raw_toy, **arguments)


def test_same_seed_same_quick_numbers(raw_toy):
    config = fast.FAST_RECIPE.but(batch_size=20, epochs=2, seed=3)
    first = benchmark.time_to_accuracy(config, raw_toy, target=1.0, evaluate_test=True)
    second = benchmark.time_to_accuracy(config, raw_toy, target=1.0, evaluate_test=True)
    columns = ["loss", "val_loss", "val_accuracy"]
    assert first.history[columns].equals(second.history[columns])
    assert first.test_accuracy == second.test_accuracy


def test_training_flops_of_the_modern_lenet():
    multiply_adds = (28 * 28 * 20 * 5 * 5 * 1      # conv1, "same" padding
                     + 14 * 14 * 50 * 5 * 5 * 20   # conv2
                     + 7 * 7 * 50 * 500            # dense1
                     + 500 * 10)                   # output
    assert benchmark.training_flops_per_image(build_lenet()) == 3 * 2 * multiply_adds


def row(seconds, reached, epochs=3):
    return {"recipe": "r", "reached": reached, "seconds": seconds, "epochs": epochs,
            "images_per_second": 1000, "best_val_accuracy": 0.99, "peak_rss_mb": 900,
            "test_accuracy": 0.99}


def test_speedup_is_a_lower_bound_when_only_the_slow_run_hit_its_cap():
    assert benchmark.speedup(row(300.0, True), row(20.0, True)) == (15.0, "=")
    assert benchmark.speedup(row(300.0, False), row(20.0, True)) == (15.0, ">=")
    assert benchmark.speedup(row(300.0, True), row(20.0, False)) == (None, "")


def test_benchmark_table_marks_runs_that_hit_the_cap():
    table = benchmark.benchmark_table([row(300.0, False), row(20.0, True)], 0.99)
    assert list(table["reached 99.0%"]) == ["no (cap)", "yes"]
    assert list(table["seconds"]) == [300.0, 20.0] and len(table.columns) == 7


def test_results_loader_explains_missing_and_wrong_files(tmp_path):
    with pytest.raises(LenetError, match="--output"):
        benchmark.load_benchmark_results(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"rows": []}))
    with pytest.raises(LenetError, match="target, rows and machine"):
        benchmark.load_benchmark_results(wrong)
    wrong.write_text("{not json")
    with pytest.raises(LenetError, match="not JSON"):
        benchmark.load_benchmark_results(wrong)


def run_script(*arguments, cwd=ROOT):
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def load_script():
    spec = importlib.util.spec_from_file_location("time_to_99", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_check_prints_the_table_and_writes_results(mnist_path, tmp_path):
    output = tmp_path / "results" / "quick.json"
    finished = run_script("--quick", "--mnist", str(mnist_path), "--output", str(output))
    assert finished.returncode == 0, finished.stderr[-2000:]
    table = finished.stdout
    for expected in ["(a) starting recipe", "(b) fast recipe", "reached 99.0%", "images/s",
                     "peak RSS (MB)", "best val accuracy", "test accuracy", "speed-up (a)/(b)"]:
        assert expected in table
    results = json.loads(output.read_text())
    assert results["quick"] is True and len(results["rows"]) == 2
    for row in results["rows"]:
        assert row["epochs"] == 1 and row["peak_rss_mb"] > 100
        assert row["seconds"] == pytest.approx(row["history"][-1]["seconds"], abs=0.05)
    assert list(tmp_path.rglob("*.tmp")) == []


@pytest.mark.parametrize(("arguments", "message"), [
    (["--precision", "fp8"], "unrecognized arguments"),
    (["--target", "1.5"], "must be in (0, 1]"),
    (["--starting-epochs", "0"], "must be positive"),
    (["--store", "--quick"], "cannot be combined"),
])
def test_bad_options_are_refused(arguments, message):
    finished = run_script(*arguments)
    assert finished.returncode == 2 and message in finished.stderr


def test_a_missing_data_file_fails_clearly_and_writes_nothing(tmp_path):
    output = tmp_path / "results.json"
    finished = run_script("--quick", "--mnist", str(tmp_path / "nowhere.npz"),
                          "--output", str(output))
    assert finished.returncode == 1
    assert "nowhere.npz" in finished.stderr and "no results were written" in finished.stderr
    assert not output.exists()


def test_report_states_a_lower_bound_when_the_starting_recipe_hits_its_cap():
    rows = [{"recipe": "(a)", "reached": False, "seconds": 600.0, "epochs": 40,
             "images_per_second": 3600, "best_val_accuracy": 0.989, "peak_rss_mb": 2100,
             "test_accuracy": 0.9881},
            {"recipe": "(b)", "reached": True, "seconds": 24.0, "epochs": 4,
             "images_per_second": 9000, "best_val_accuracy": 0.9915, "peak_rss_mb": 900,
             "test_accuracy": 0.992}]
    text = load_script().report({"target": 0.99, "rows": rows})
    assert "speed-up (a)/(b) to 99.0%: >= 25.0x (a lower bound" in text
    assert "cap of 40 epochs" in text


def test_stored_results_ship_inside_the_package_where_the_script_stores_them():
    import lenet_utils

    stored = benchmark.stored_results_file()
    assert stored == Path(lenet_utils.__file__).parent / "results" / "time_to_99.json"
    script_target = load_script().STORED_RESULTS
    assert script_target == ROOT / "lenet_utils" / "results" / "time_to_99.json"
    assert stored.read_bytes() == script_target.read_bytes()


def test_stored_results_are_a_full_run_and_agree_with_their_histories():
    results = benchmark.load_benchmark_results()
    assert results["quick"] is False and results["target"] == 0.99
    assert [row["recipe"] for row in results["rows"]] == ["(a) starting recipe",
                                                          "(b) fast recipe"]
    for row in results["rows"]:
        history = row["history"]
        assert row["epochs"] == len(history)
        assert row["seconds"] == pytest.approx(history[-1]["seconds"], abs=0.05)
        reached = [epoch["val_accuracy"] >= results["target"] for epoch in history]
        assert row["reached"] == any(reached)
        assert not any(reached[:-1]), "a run must stop at the first epoch that reaches the target"


def test_time_axis_labels_are_plain_seconds():
    import pandas as pd

    from lenet_utils.plots import plot_accuracy_against_time

    history = pd.DataFrame({"seconds": [6.0, 13.0, 19.0, 340.0],
                            "val_accuracy": [0.97, 0.985, 0.991, 0.992]})
    figure = plot_accuracy_against_time({"run": history}, 0.99)
    figure.canvas.draw()
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    labels = [label.get_text() for label in axes.get_xticklabels()
              if low <= label.get_position()[0] <= high]
    assert labels and all(label.replace(".", "").isdigit() for label in labels), labels
    assert {"10", "20", "50", "100"} <= set(labels)
    assert not any(label.get_text() for label in axes.xaxis.get_minorticklabels())


def test_timed_runs_count_in_the_run_records_throughput(raw_toy):
    from lenet_utils.profile import get_profile
    from lenet_utils.training import RunRecord

    record = RunRecord(get_profile("quick"))
    config = fast.FAST_RECIPE.but(batch_size=20, precision="float32", epochs=2)
    benchmark.time_to_accuracy(config, raw_toy, target=1.0)
    assert record.report().splitlines()[3].startswith("training: 400 images in ")
