import keras
import numpy as np
import pytest

from lenet_utils import LenetError, models


def test_lenet_matches_the_starting_script():
    model = models.build_lenet()
    params = {layer.name: layer.count_params() for layer in model.layers if layer.weights}
    assert params == {"conv1": 520, "conv2": 25050, "dense1": 1225500, "output": 5010}
    assert model.count_params() == 1_256_080
    assert model.get_layer("pool1").output.shape[1:] == (14, 14, 20)
    assert model.get_layer("pool2").output.shape[1:] == (7, 7, 50)
    assert model.outputs[0].shape[1:] == (10,)


def test_lenet_regularisation_options_add_layers():
    model = models.build_lenet(conv_dropout=0.25, dense_dropout=0.5, batch_norm="before")
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["conv1", "conv1_bn", "conv1_relu"]
    assert {"drop1", "drop2", "drop3"} <= set(names)
    assert model.get_layer("drop3").rate == 0.5
    after = [layer.name for layer in models.build_lenet(batch_norm="after").layers]
    assert after[:3] == ["conv1", "conv1_relu", "conv1_bn"]


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_norm": "middle"}, "batch_norm='middle' is not an option"),
    ({"conv_dropout": 1.0}, r"conv_dropout=1.0 must be in \[0, 1\)"),
    ({"dense_dropout": -0.1}, "dense_dropout=-0.1"),
    ({"input_shape": (28, 28)}, r"input_shape=\(28, 28\)"),
])
def test_lenet_rejects_bad_options(kwargs, message):
    with pytest.raises(LenetError, match=message):
        models.build_lenet(**kwargs)


LENET5_PARAMS = {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
LENET5_CONNECTIONS = {"C1": 122304, "S2": 5880, "C3": 151600, "S4": 2000, "C5": 48120,
                      "F6": 10164}


def test_lenet5_layers_match_the_paper():
    model = models.build_lenet5()
    for name, count in LENET5_PARAMS.items():
        assert model.get_layer(name).count_params() == count, name
    assert sum(LENET5_PARAMS.values()) == 60_000
    shapes = {name: model.get_layer(name).output.shape[1:] for name in LENET5_PARAMS}
    assert shapes == {"C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16),
                      "S4": (5, 5, 16), "C5": (1, 1, 120), "F6": (84,)}


def test_c3_stores_only_the_connection_table_weights():
    c3 = models.build_lenet5().get_layer("C3")
    stored = sum(int(np.prod(weight.shape)) for weight in c3.weights)
    assert stored == 1516
    inputs_per_map = [len(maps) for maps in models.C3_CONNECTIONS]
    assert inputs_per_map == [3] * 6 + [4] * 9 + [6]
    assert [kernel.shape[2] for kernel in c3.kernels] == inputs_per_map


def test_c3_map_ignores_unconnected_inputs():
    c3 = models.build_lenet5().get_layer("C3")
    inputs = np.random.default_rng(0).normal(size=(1, 14, 14, 6)).astype("float32")
    changed = inputs.copy()
    changed[..., 3] += 5.0  # C3 map 0 reads S2 maps 0-2; map 1 reads 1-3
    before, after = np.asarray(c3(inputs)), np.asarray(c3(changed))
    np.testing.assert_allclose(before[..., 0], after[..., 0])
    assert not np.allclose(before[..., 1], after[..., 1])


def test_connection_counts_match_the_paper():
    table = models.layer_table(models.build_lenet5(), connections=True)
    assert table.loc[list(LENET5_CONNECTIONS), "connections"].to_dict() == LENET5_CONNECTIONS


def test_layer_table_total():
    table = models.layer_table(models.build_lenet())
    assert table.loc["total", "parameters"] == 1_256_080
    assert table.loc["conv1", "output shape"] == "(28, 28, 20)"


def test_scaled_tanh_maps_one_to_one():
    values = np.asarray(models.scaled_tanh(np.array([-1.0, 0.0, 1.0], "float32")))
    np.testing.assert_allclose(values, [-1.0, 0.0, 1.0], atol=1e-4)


def test_lenet5_saves_and_loads(tmp_path):
    model = models.build_lenet5()
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    model.save(tmp_path / "lenet5.keras")
    loaded = keras.models.load_model(tmp_path / "lenet5.keras")
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  loaded.predict(images, verbose=0))


def test_augmentation_is_active_only_in_training():
    model = models.build_lenet(augmentation=True)
    assert [layer.name for layer in model.layers[:2]] == ["random_shift", "random_rotation"]
    assert model.count_params() == 1_256_080
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    plain = models.build_lenet()
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model(images, training=False), plain(images, training=False),
                               rtol=1e-6)
    shift = model.get_layer("random_shift")
    assert not np.allclose(shift(images, training=True), images)


def test_weight_decay_adds_a_penalty_on_every_kernel():
    model = models.build_lenet(weight_decay=0.001)
    model(np.zeros((1, 28, 28, 1), "float32"))
    assert len(model.losses) == 4
    kernels = [model.get_layer(n).kernel for n in ["conv1", "conv2", "dense1", "output"]]
    expected = 0.001 * sum(float(np.sum(np.square(k))) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(LenetError, match="weight_decay=-1"):
        models.build_lenet(weight_decay=-1)


def test_batch_norm_momentum_reaches_every_normalization_layer():
    model = models.build_lenet(batch_norm="after", batch_norm_momentum=0.99)
    momenta = [layer.momentum for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization)]
    assert momenta == [0.99, 0.99, 0.99]
    default = models.build_lenet(batch_norm="before").get_layer("dense1_bn")
    assert default.momentum == 0.9
    with pytest.raises(LenetError, match="batch_norm_momentum=1.0"):
        models.build_lenet(batch_norm="before", batch_norm_momentum=1.0)
