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


def test_layer_table_total():
    table = models.layer_table(models.build_lenet())
    assert table.loc["total", "parameters"] == 1_256_080
    assert table.loc["conv1", "output shape"] == "(28, 28, 20)"


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
