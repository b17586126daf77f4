"""Per-step losses, per-epoch measurements, confidence on errors, BN statistics."""

import keras
import numpy as np
import pandas as pd
import pytest

from lenet_utils import LenetError, diagnostics
from lenet_utils.models import build_lenet


def tiny_model(batch_norm=False, learning_rate=0.0):
    stack = [keras.Input((6,)), keras.layers.Dense(4, name="hidden")]
    stack += [keras.layers.BatchNormalization(name="hidden_bn")] if batch_norm else []
    stack += [keras.layers.ReLU(), keras.layers.Dense(3, activation="softmax")]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(stack)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    return rng.normal(0, 1, (50, 6)).astype("float32"), rng.integers(0, 3, 50)


def test_step_losses_are_the_losses_of_each_batch(toy):
    images, labels = toy
    model = tiny_model()  # learning rate 0: every step's loss is its batch's loss
    steps = diagnostics.StepLosses(train_size=50, batch_size=16)
    model.fit(images, labels, batch_size=16, epochs=2, shuffle=False, verbose=0,
              callbacks=[steps])
    expected = [model.evaluate(images[start:start + 16], labels[start:start + 16],
                               verbose=0) for start in (0, 16, 32, 48)]
    np.testing.assert_allclose(steps.losses, expected * 2, rtol=1e-4)
    series = steps.series()
    assert list(series.index[[0, -1]]) == [1, 8] and series.index.name == "step"


def test_step_losses_reject_bad_sizes():
    with pytest.raises(LenetError, match="batch_size=0"):
        diagnostics.StepLosses(train_size=10, batch_size=0)


def test_epoch_measurements_keep_one_row_per_epoch(toy):
    model = tiny_model(learning_rate=0.1)
    measured = diagnostics.EpochMeasurements(
        lambda model: {"kernel sum": float(np.sum(model.layers[0].kernel))})
    model.fit(*toy, epochs=3, verbose=0, callbacks=[measured])
    table = measured.table()
    assert list(table.index) == [1, 2, 3] and list(table.columns) == ["kernel sum"]
    assert table["kernel sum"].iloc[-1] == pytest.approx(float(np.sum(model.layers[0].kernel)))
    assert table["kernel sum"].nunique() == 3
    some = diagnostics.EpochMeasurements(lambda model: {"one": 1.0}, epochs=[2, 4])
    model.fit(*toy, epochs=4, verbose=0, callbacks=[some])
    assert list(some.table().index) == [2, 4] and some.table().index.name == "epoch"


def test_confidence_on_errors_splits_the_loss():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1],
                              [0.2, 0.2, 0.6]])
    labels = np.array([0, 1, 1, 0])
    result = diagnostics.confidence_on_errors(probabilities, labels)
    assert result["errors"] == 2
    assert result["confidence on errors"] == pytest.approx((0.5 + 0.6) / 2)
    assert result["confidence when right"] == pytest.approx((0.7 + 0.6) / 2)
    keras_loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
    assert result["loss"] == pytest.approx(float(np.mean(keras_loss)), rel=1e-5)
    assert result["loss from errors"] == pytest.approx(-(np.log(0.4) + np.log(0.2)) / 4)
    assert result["loss from errors"] + result["loss from correct"] == pytest.approx(
        result["loss"])


def test_confidence_on_errors_checks_shapes():
    with pytest.raises(LenetError, match="one row per label"):
        diagnostics.confidence_on_errors(np.ones((3, 2)), np.zeros(4))


def test_batch_statistics_are_what_training_mode_normalizes_by(toy):
    images, _ = toy
    model = tiny_model(batch_norm=True)
    before = diagnostics.moving_statistics(model)
    measured = diagnostics.batch_statistics(model, images, batch_size=25)
    hidden = np.asarray(model.get_layer("hidden")(images))
    halves = [hidden[:25], hidden[25:]]
    np.testing.assert_allclose(measured["hidden_bn"][0],
                               np.mean([h.mean(axis=0) for h in halves], axis=0), atol=1e-6)
    np.testing.assert_allclose(measured["hidden_bn"][1],
                               np.mean([h.var(axis=0) for h in halves], axis=0), rtol=1e-5)
    for old, new in zip(before["hidden_bn"], diagnostics.moving_statistics(model)["hidden_bn"],
                        strict=True):
        np.testing.assert_array_equal(old, new)  # measuring changed nothing


def test_reestimated_statistics_make_inference_match_training(toy):
    images, _ = toy
    model = tiny_model(batch_norm=True)
    training_mode = np.asarray(model(images, training=True))
    assert not np.allclose(np.asarray(model(images, training=False)), training_mode,
                           atol=1e-3)
    diagnostics.reestimate_batch_norm(model, images, batch_size=len(images))
    np.testing.assert_allclose(np.asarray(model(images, training=False)), training_mode,
                               rtol=1e-4, atol=1e-5)


def test_batch_norm_helpers_on_lenet():
    model = build_lenet(batch_norm="before")
    layers = [layer.name for layer in diagnostics.batch_norm_layers(model)]
    assert layers == ["conv1_bn", "conv2_bn", "dense1_bn"]
    statistics = diagnostics.batch_statistics(model, np.zeros((3, 28, 28, 1), "float32"))
    assert [statistics[name][1].shape for name in layers] == [(20,), (50,), (500,)]


def test_batch_norm_helpers_name_their_problems(toy):
    with pytest.raises(LenetError, match="batch normalization"):
        diagnostics.batch_statistics(tiny_model(), toy[0])
    with pytest.raises(LenetError, match="'nowhere'"):
        diagnostics.set_moving_statistics(tiny_model(batch_norm=True),
                                          {"nowhere": (np.zeros(4), np.ones(4))})


def test_by_layer_joins_each_layers_kernel_and_bias_in_order():
    model = tiny_model()
    values = [np.full(variable.shape, index, dtype="float32")
              for index, variable in enumerate(model.trainable_variables)]
    layers = diagnostics.by_layer(model, values)
    hidden, output = model.layers[0], model.layers[-1]
    assert list(layers) == [hidden.name, output.name]
    assert layers[hidden.name].tolist() == [0] * 24 + [1] * 4
    assert layers[output.name].tolist() == [2] * 12 + [3] * 3


@pytest.mark.parametrize(("drop_or_reshape", "message"),
                         [("drop", "3 arrays for the 4"), ("reshape", r"shape \(24,\)")])
def test_by_layer_refuses_arrays_that_do_not_match_the_variables(drop_or_reshape, message):
    model = tiny_model()
    values = [np.zeros(variable.shape) for variable in model.trainable_variables]
    if drop_or_reshape == "drop":
        values.pop()
    else:
        values[0] = values[0].ravel()
    with pytest.raises(LenetError, match=message):
        diagnostics.by_layer(model, values)


def test_error_percent_is_the_share_of_wrong_predictions(toy):
    images, labels = toy
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    wrong = np.argmax(model.predict(images, verbose=0), axis=1) != labels
    assert diagnostics.error_percent(model, toy, batch_size=16) == pytest.approx(
        100 * wrong.mean())


def test_error_percent_refuses_a_model_compiled_without_accuracy(toy):
    with pytest.raises(LenetError, match="not its accuracy"):
        diagnostics.error_percent(tiny_model(), toy)


def test_errors_per_pass_is_the_running_error_in_percent():
    histories = {"a": pd.DataFrame({"accuracy": [0.9, 0.987654]}, index=[1, 2]),
                 "b": pd.DataFrame({"accuracy": [0.5, 0.75]}, index=[1, 2])}
    table = diagnostics.errors_per_pass(histories)
    assert list(table.columns) == ["a", "b"] and table.index.name == "pass"
    assert table.loc[2, "a"] == 1.23 and table.loc[1, "b"] == 50.0
    with pytest.raises(LenetError, match=r"\['c'\] have no 'accuracy'"):
        diagnostics.errors_per_pass({"c": pd.DataFrame({"loss": [1.0]})})


@pytest.mark.parametrize("accuracies, broken", [
    ([0.90, 0.99, 0.985], False),  # 1.5% after a best of 1%: below twice
    ([0.90, 0.99, 0.98], True),  # 2% after a best of 1%: twice
    ([0.90, 0.81], False),  # pass 2 at 19% against 10%: below twice
    ([0.90, 0.79], True),
])
def test_breaks_measures_each_pass_against_the_best_before_it(accuracies, broken):
    history = pd.DataFrame({"accuracy": accuracies},
                           index=range(1, len(accuracies) + 1))
    assert diagnostics.breaks(history) is broken


def test_run_errors_has_one_row_per_run(toy):
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = pd.DataFrame({"accuracy": [0.5, 0.987654]}, index=[1, 2])
    table = diagnostics.run_errors({"a": model}, {"a": history}, toy, toy)
    assert list(table.index) == ["a"]
    assert list(table.columns) == ["test error (%)", "training error (%)",
                                   "training error, finished (%)", "breaks"]
    expected = round(diagnostics.error_percent(model, toy), 2)
    assert table.loc["a", "test error (%)"] == expected
    assert table.loc["a", "training error, finished (%)"] == expected
    assert table.loc["a", "training error (%)"] == 1.23
    assert not table.loc["a", "breaks"]
