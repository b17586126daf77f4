import ast
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from lenet_utils import LenetError, training
from lenet_utils.device import device_name
from lenet_utils.profile import get_profile

CHAPTER_9B = Path(__file__).parents[1] / "notebooks" / "09b_lenet5_new_seeds.ipynb"


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    images = rng.random((80, 28, 28, 1), dtype=np.float32)
    images[np.arange(80), labels, labels] = 3.0  # a learnable pixel per class
    return (images[:60], labels[:60]), (images[60:], labels[60:])


def quick_fit(config, toy_data):
    model = config.build_model()
    history = training.fit(model, *toy_data, epochs=config.epochs,
                           batch_size=config.batch_size, seed=config.seed)
    return model, history


def test_same_seed_same_weights(toy_data):
    config = training.TrainingConfig(epochs=2, batch_size=16, seed=7)
    first, history = quick_fit(config, toy_data)
    second, again = quick_fit(config, toy_data)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(history, again)
    other, _ = quick_fit(training.TrainingConfig(epochs=2, batch_size=16, seed=8), toy_data)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_fit_prints_one_summary_line(toy_data, capfd):
    _, history = quick_fit(training.TrainingConfig(epochs=3, batch_size=16), toy_data)
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("3 epochs, 180 images in ")
    assert lines[0].endswith(f"val_accuracy {history['val_accuracy'].iloc[-1]:.4f}")
    assert len(lines[0]) <= 80
    assert list(history.columns) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert list(history.index) == [1, 2, 3]


def test_fit_logs_every_epoch_when_asked(toy_data, capfd):
    model = training.TrainingConfig(epochs=3, batch_size=16).build_model()
    training.fit(model, *toy_data, epochs=3, batch_size=16, log_epochs=True)
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("epoch   1/3  loss ")
    assert all("\r" not in line and "step" not in line and len(line) <= 80
               for line in lines)


def test_validation_at_the_end_only(toy_data, tmp_path, monkeypatch):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    every = training.TrainingConfig(epochs=3, batch_size=16)
    at_end = every.but(validate="at_end")
    _, full_history = training.train_or_load(every, *toy_data)
    _, history = training.train_or_load(at_end, *toy_data)
    assert history["val_loss"].isna().tolist() == [True, True, False]
    pd.testing.assert_series_equal(history["loss"], full_history["loss"])
    assert history["val_accuracy"].iloc[-1] == full_history["val_accuracy"].iloc[-1]
    with pytest.raises(LenetError, match="validate='every_epoch'"):
        every.but(validate="at_end", early_stopping=2)


def test_one_cycle_schedule_spans_the_run(toy_data):
    config = training.TrainingConfig(optimizer="adam", learning_rate=3e-3,
                                     schedule="one_cycle", epochs=3, batch_size=16)
    model = config.build_model(steps_per_epoch=4)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(3e-3 / 25)
    schedule = model.optimizer._learning_rate
    assert schedule.total_steps == 12


def test_train_or_load_reuses_the_identical_run(toy_data, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=2, batch_size=16)
    model, history = training.train_or_load(config, *toy_data)
    capfd.readouterr()
    loaded, loaded_history = training.train_or_load(config, *toy_data)
    accuracy = history["val_accuracy"].iloc[-1]
    assert capfd.readouterr().out == (
        f"loaded from the cache ({training.cache_key(config, *toy_data)}): "
        f"2 epochs, val_accuracy {accuracy:.4f}\n")
    images = toy_data[1][0]
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  loaded.predict(images, verbose=0))
    pd.testing.assert_frame_equal(history, loaded_history, check_exact=False)
    assert [p.name for p in tmp_path.iterdir()] == [training.cache_key(config, *toy_data)]


def test_cache_key_depends_on_config_and_data(toy_data):
    config = training.TrainingConfig()
    key = training.cache_key(config, *toy_data)
    assert key == training.cache_key(training.TrainingConfig(), *toy_data)
    assert key != training.cache_key(training.TrainingConfig(seed=1), *toy_data)
    (images, labels), validation = toy_data
    assert key != training.cache_key(config, (images[:-1], labels[:-1]), validation)


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "rmsprop"}, "optimizer='rmsprop' is unknown"),
    ({"model": "alexnet"}, "model='alexnet' is unknown"),
    ({"epochs": 0}, "epochs=0"),
])
def test_config_rejects_unknown_options(kwargs, message):
    with pytest.raises(LenetError, match=message):
        training.TrainingConfig(**kwargs)


def test_cache_key_depends_on_the_model_code_and_version(toy_data, monkeypatch):
    config = training.TrainingConfig()
    key = training.cache_key(config, *toy_data)
    monkeypatch.setattr(training.inspect, "getsource", lambda module: "changed code")
    assert training.cache_key(config, *toy_data) != key
    monkeypatch.undo()
    monkeypatch.setattr(training.lenet_utils, "__version__", "9.9.9")
    assert training.cache_key(config, *toy_data) != key


@pytest.mark.parametrize("damage", ["truncate model", "delete history", "empty history"])
def test_a_broken_cache_entry_is_reported_and_retrained(toy_data, tmp_path, monkeypatch,
                                                        capfd, damage):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=1, batch_size=16)
    model, _ = training.train_or_load(config, *toy_data)
    folder = tmp_path / training.cache_key(config, *toy_data)
    if damage == "truncate model":
        data = (folder / "model.keras").read_bytes()
        (folder / "model.keras").write_bytes(data[: len(data) // 2])
    elif damage == "delete history":
        (folder / "history.csv").unlink()
    else:
        (folder / "history.csv").write_text("epoch,loss\n")
    capfd.readouterr()
    again, history = training.train_or_load(config, *toy_data)
    out = capfd.readouterr().out.splitlines()
    assert out[0].startswith(f"cache entry {folder.name} is unreadable (")
    assert out[0].endswith("); training again")
    assert len(history) == 1
    images = toy_data[1][0]
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  again.predict(images, verbose=0))
    assert "loaded from the cache" in _run_and_capture(config, toy_data, capfd)


def _run_and_capture(config, toy_data, capfd):
    training.train_or_load(config, *toy_data)
    return capfd.readouterr().out


def test_run_record_names_profile_device_throughput_and_versions(toy_data):
    record = training.RunRecord(get_profile("quick"))
    untrained = record.report().splitlines()
    assert untrained[3] == "training: none (every model came from the cache)"
    quick_fit(training.TrainingConfig(epochs=2, batch_size=16), toy_data)
    lines = record.report().splitlines()
    assert lines[0] == "profile: quick"
    assert lines[1].startswith("wall time: ") and lines[1].endswith(" s")
    assert lines[2].startswith(("device: CPU: ", "device: GPU: "))
    assert lines[3].startswith("training: 120 images in ")
    assert lines[3].endswith(" images/s")
    assert lines[4] == "from the cache: none"
    assert [line.split(":")[0] for line in lines[5:]] == [
        "python", "tensorflow", "keras", "lenet_utils"]


def test_cache_entries_record_the_device_that_trained_them(toy_data, tmp_path, monkeypatch):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=1, batch_size=16, seed=3)
    training.train_or_load(config, *toy_data)
    folder = tmp_path / training.cache_key(config, *toy_data)
    assert training.trained_on(folder) == device_name()
    record = training.RunRecord(get_profile("quick"))
    training.train_or_load(config, *toy_data)
    (folder / training.TRAINED_ON_FILE).write_text("{not json")
    training.train_or_load(config, *toy_data)
    assert record.report().splitlines()[4:6] == [
        f"from the cache: 1 trained on {device_name()}",
        f"                1 trained on {training.NOT_RECORDED}"]


def test_train_or_load_each_names_the_runs_and_keeps_the_logs_quiet(
        toy_data, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=1, batch_size=16)
    configs = {"seed 0": config, "seed 1": config.but(seed=1)}
    models, histories = training.train_or_load_each(configs, *toy_data)
    assert list(models) == list(histories) == ["seed 0", "seed 1"]
    assert all(len(history) == 1 for history in histories.values())
    assert capfd.readouterr().out == ""
    assert not np.array_equal(models["seed 0"].get_weights()[0],
                              models["seed 1"].get_weights()[0])


def test_sdlm_recipe_is_chapter_9cs_single_image_recipe():
    recipe = training.sdlm_recipe(get_profile("full"), seed=2)
    assert (recipe.model, recipe.loss, recipe.optimizer) == ("lenet5", "rbf", "sdlm")
    assert recipe.model_options == {"init_scale": "sqrt_fan_in"}
    assert recipe.optimizer_options == {"mu": 0.02}
    assert (recipe.learning_rate, recipe.schedule) == (5e-4, "lenet5_paper")
    assert (recipe.batch_size, recipe.epochs, recipe.seed) == (1, 20, 2)
    assert (recipe.curvature, recipe.validate) == ("first_pass", "at_end")
    assert training.sdlm_recipe(get_profile("quick")).epochs < 20


def test_small_batch_recipes_are_chapter_9bs():
    # Chapter 9h adds seeds to chapter 9b's runs through this function, so it
    # must give the configurations chapter 9b's own cell assigns.
    cell = next(cell.source for cell in nbformat.read(CHAPTER_9B, as_version=4).cells
                if cell.cell_type == "code" and "recipes = {" in cell.source)
    assignments = [node for node in ast.parse(cell).body if isinstance(node, ast.Assign)
                   and node.targets[0].id in ("recipe", "recipes")]
    namespace = {"TrainingConfig": training.TrainingConfig, "BATCH_SIZE": 16, "EPOCHS": 20}
    exec(compile(ast.Module(assignments, type_ignores=[]), "09b", "exec"), namespace)
    assert len(assignments) == 2
    assert training.small_batch_recipes(get_profile("full")) == namespace["recipes"]
    assert all(config.epochs < 20 for config in
               training.small_batch_recipes(get_profile("quick")).values())


def test_with_gaps():
    history = pd.DataFrame({"loss": [0.5, 0.1], "accuracy": [0.8, 0.99],
                            "val_loss": [0.6, 0.4], "val_accuracy": [0.78, 0.9]})
    gaps = training.with_gaps(history)
    np.testing.assert_allclose(gaps["accuracy gap"], [0.02, 0.09])
    np.testing.assert_allclose(gaps["loss gap"], [0.1, 0.3])
    assert "accuracy gap" not in history


def test_default_model_options_share_a_cache_key(toy_data):
    explicit = training.TrainingConfig(model_options={"dense_dropout": 0.0})
    assert training.cache_key(explicit, *toy_data) == training.cache_key(
        training.TrainingConfig(), *toy_data)
    dropout = training.TrainingConfig(model_options={"dense_dropout": 0.5})
    assert training.cache_key(dropout, *toy_data) != training.cache_key(explicit, *toy_data)


def test_early_stopping_restores_the_best_epoch(toy_data, tmp_path, monkeypatch):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(optimizer="adam", learning_rate=0.05, epochs=30,
                                     batch_size=16, early_stopping=2)
    model, history = training.train_or_load(config, *toy_data)
    assert len(history) < 30
    best = history["val_loss"].min()
    assert model.evaluate(*toy_data[1], verbose=0)[0] == pytest.approx(best, rel=1e-4)
    with pytest.raises(LenetError, match="early_stopping=0"):
        training.TrainingConfig(early_stopping=0)


def test_evaluate_gaps_measures_both_sides_in_inference_mode(toy_data):
    config = training.TrainingConfig(model_options={"dense_dropout": 0.5}, epochs=1,
                                     batch_size=16)
    model, _ = quick_fit(config, toy_data)
    gaps = training.evaluate_gaps(model, *toy_data)
    train_loss, train_accuracy = model.evaluate(*toy_data[0], verbose=0)
    assert gaps["accuracy"] == pytest.approx(train_accuracy)
    assert gaps["loss gap"] == pytest.approx(gaps["val_loss"] - train_loss)
    assert gaps["accuracy gap"] == pytest.approx(gaps["accuracy"] - gaps["val_accuracy"])


def test_small_data_regime_follows_the_profile(mnist_path):
    from lenet_utils.data import load_splits

    quick = get_profile("quick")
    splits = load_splits(mnist_path, **quick.data_limits)
    config, (images, labels) = training.small_data_regime(splits, quick, seed=0)
    assert config.optimizer == "adam" and config.epochs == 2
    assert np.bincount(labels).tolist() == [10] * 10
    full_config, _ = training.small_data_regime(splits, get_profile("full"))
    assert full_config.epochs == 40


def test_train_or_load_each_shows_that_an_unreadable_entry_is_trained_again(
        toy_data, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(epochs=1, batch_size=16)
    training.train_or_load_each({"seed 0": config}, *toy_data)
    key = training.cache_key(config, *toy_data)
    (tmp_path / key / "history.csv").write_text("not a history")
    capfd.readouterr()
    training.train_or_load_each({"seed 0": config}, *toy_data)
    assert capfd.readouterr().out.startswith(f"seed 0: cache entry {key} is unreadable")
