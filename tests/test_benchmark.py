"""The benchmark script: its capped quick check (what CI runs), errors, stored results."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lenet_utils import fast

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "time_to_99.py"


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
    for expected in ["(a) starting recipe", "(b) fast recipe", "seconds to 99.0%", "images/s",
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


def test_stored_results_are_a_full_run_and_agree_with_their_histories():
    results = fast.load_benchmark_results()
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
