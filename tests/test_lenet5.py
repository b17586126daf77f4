import keras
import numpy as np
import pytest
from keras import ops

from lenet_utils import LenetError, lenet5, models
from lenet_utils.training import TrainingConfig

LENET5_PARAMS = {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
LENET5_CONNECTIONS = {"C1": 122304, "S2": 5880, "C3": 151600, "S4": 2000, "C5": 48120,
                      "F6": 10164}
FAN_INS = {"C1": 25, "S2": 4, "S4": 4, "C5": 400, "F6": 120}


def rng_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 28, 28, 1), dtype=np.float32)


def test_lenet5_layers_match_the_paper():
    model = lenet5.build_lenet5()
    for name, count in LENET5_PARAMS.items():
        assert model.get_layer(name).count_params() == count, name
    assert model.count_params() == 60_000  # the RBF codes are constants, not weights
    shapes = {name: model.get_layer(name).output.shape[1:] for name in LENET5_PARAMS}
    assert shapes == {"C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16),
                      "S4": (5, 5, 16), "C5": (1, 1, 120), "F6": (84,)}
    assert model.outputs[0].shape[1:] == (10,)


def test_models_module_still_exports_lenet5():
    assert models.build_lenet5 is lenet5.build_lenet5
    assert models.C3_CONNECTIONS is lenet5.C3_CONNECTIONS
    assert models.scaled_tanh is lenet5.scaled_tanh


def test_connection_counts_match_the_paper():
    table = models.layer_table(lenet5.build_lenet5(), connections=True)
    assert table.loc[list(LENET5_CONNECTIONS), "connections"].to_dict() == LENET5_CONNECTIONS
    assert table.loc["output", "connections"] == 840
    assert table.loc["output", "parameters"] == 0


def test_padding_is_the_paper_background():
    model = lenet5.build_lenet5()
    scaled = keras.Model(model.inputs, model.get_layer("input_range").output)
    inputs = np.ones((1, 28, 28, 1), np.float32)
    padded = np.asarray(scaled(inputs))[0, ..., 0]
    assert padded.shape == (32, 32)
    np.testing.assert_allclose(padded[:2], lenet5.BACKGROUND, rtol=1e-6)
    np.testing.assert_allclose(padded[:, -2:], lenet5.BACKGROUND, rtol=1e-6)
    np.testing.assert_allclose(padded[2:30, 2:30], lenet5.INK, rtol=1e-6)
    blank = np.asarray(scaled(np.zeros((1, 28, 28, 1), np.float32)))
    np.testing.assert_allclose(blank, -0.1, rtol=1e-6)


@pytest.mark.parametrize(("name", "scale"), [(name, scale) for name in FAN_INS
                                             for scale in lenet5.INIT_SCALES])
def test_weights_start_within_the_paper_range(name, scale):
    keras.utils.set_random_seed(0)
    layer = lenet5.build_lenet5(init_scale=scale).get_layer(name)
    limit = 2.4 / (FAN_INS[name] if scale == "fan_in" else FAN_INS[name] ** 0.5)
    for weight in layer.weights:
        values = np.asarray(weight)
        assert np.abs(values).max() <= limit, weight.path
        assert np.abs(values).max() > 0.8 * limit or values.size < 20, weight.path


@pytest.mark.parametrize(("scale", "power"), [("fan_in", 1.0), ("sqrt_fan_in", 0.5)])
def test_c3_kernels_and_biases_start_within_their_fan_in_range(scale, power):
    keras.utils.set_random_seed(0)
    c3 = lenet5.build_lenet5(init_scale=scale).get_layer("C3")
    limits = [2.4 / (25 * len(maps)) ** power for maps in lenet5.C3_CONNECTIONS]
    for kernel, limit in zip(c3.kernels, limits, strict=True):
        values = np.abs(np.asarray(kernel))
        assert values.max() <= limit
        assert values.max() > 0.8 * limit
    assert np.all(np.abs(np.asarray(c3.bias)) <= limits)


def test_the_default_initialisation_is_the_paper_as_printed():
    keras.utils.set_random_seed(3)
    default = lenet5.build_lenet5().get_weights()
    keras.utils.set_random_seed(3)
    printed = lenet5.build_lenet5(init_scale="fan_in").get_weights()
    for ours, theirs in zip(default, printed, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert lenet5.init_limit(400) == pytest.approx(0.006)
    assert lenet5.init_limit(400, "sqrt_fan_in") == pytest.approx(0.12)


def test_unknown_initialisation_scale_is_refused_before_building():
    with pytest.raises(LenetError, match="init_scale='sqrt'.*fan_in, sqrt_fan_in"):
        lenet5.build_lenet5(init_scale="sqrt")
    with pytest.raises(LenetError, match="init_scale"):
        lenet5.TrainableSubsampling(init_scale="xavier")
    with pytest.raises(LenetError, match="fan_in"):
        lenet5.init_limit(0)


def test_subsampling_coefficients_are_drawn_not_ones():
    keras.utils.set_random_seed(0)
    coefficients = np.asarray(lenet5.build_lenet5().get_layer("S2").coefficient)
    assert not np.allclose(coefficients, 1.0)
    assert np.all(np.abs(coefficients) <= 0.6)


def test_c3_stores_only_the_connection_table_weights():
    c3 = lenet5.build_lenet5().get_layer("C3")
    stored = sum(int(np.prod(weight.shape)) for weight in c3.weights)
    assert stored == 1516
    inputs_per_map = [len(maps) for maps in lenet5.C3_CONNECTIONS]
    assert inputs_per_map == [3] * 6 + [4] * 9 + [6]
    assert [kernel.shape[2] for kernel in c3.kernels] == inputs_per_map


def test_c3_map_ignores_unconnected_inputs():
    c3 = lenet5.build_lenet5().get_layer("C3")
    inputs = np.random.default_rng(0).normal(size=(1, 14, 14, 6)).astype("float32")
    changed = inputs.copy()
    changed[..., 3] += 5.0  # C3 map 0 reads S2 maps 0-2; map 1 reads 1-3
    before, after = np.asarray(c3(inputs)), np.asarray(c3(changed))
    np.testing.assert_allclose(before[..., 0], after[..., 0])
    assert not np.allclose(before[..., 1], after[..., 1])


def per_map_c3(c3, inputs):
    """The old C3: one convolution per map over its own inputs."""
    outputs = [ops.conv(ops.take(inputs, list(maps), axis=-1), kernel, padding="valid")
               for maps, kernel in zip(c3.connections, c3.kernels, strict=True)]
    return c3.activation(ops.concatenate(outputs, axis=-1) + c3.bias)


def test_fast_c3_equals_one_convolution_per_map():
    c3 = lenet5.build_lenet5().get_layer("C3")
    for kernel in c3.kernels:  # larger weights than the initial ones, to see differences
        kernel.assign(np.random.default_rng(1).normal(size=kernel.shape))
    inputs = np.random.default_rng(0).normal(size=(3, 14, 14, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(c3(inputs)), np.asarray(per_map_c3(c3, inputs)),
                               rtol=1e-5, atol=1e-5)
    full = np.asarray(c3.full_kernel(c3.kernels))
    assert full.shape == (5, 5, 6, 16)
    assert np.count_nonzero(full) == 1500
    assert np.all(full[:, :, 3, 0] == 0)


def test_rbf_codes_are_distinct_seven_by_twelve_bitmaps():
    codes = lenet5.digit_codes()
    assert codes.shape == (10, 84)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    assert all(len(bitmap) == 12 and {len(row) for row in bitmap} == {7}
               for bitmap in lenet5.DIGIT_BITMAPS)
    differences = (codes[:, None, :] != codes[None, :, :]).sum(axis=-1)
    assert differences[~np.eye(10, dtype=bool)].min() >= 6


def test_rbf_output_is_minus_the_squared_distance_to_each_code():
    layer = lenet5.RBFOutput()
    features = np.random.default_rng(0).normal(size=(4, 84)).astype("float32")
    expected = -((features[:, None, :] - lenet5.digit_codes()[None]) ** 2).sum(axis=-1)
    np.testing.assert_allclose(np.asarray(layer(features)), expected, rtol=1e-5)
    assert np.asarray(layer(lenet5.digit_codes())).argmax(axis=1).tolist() == list(range(10))


def test_rbf_loss_is_the_paper_equation_nine():
    j = 0.5
    penalties = np.array([[3.0, 1.0, 7.0] + [50.0] * 7, [0.2] * 10], np.float32)
    labels = np.array([1, 4])
    expected = [penalties[row, label] + np.log(np.exp(-j) + np.exp(-penalties[row]).sum())
                for row, label in enumerate(labels)]
    loss = lenet5.RBFLoss(j=j, reduction=None)
    np.testing.assert_allclose(np.asarray(loss(labels, -penalties)), expected, rtol=1e-5)
    with pytest.raises(LenetError, match="j=0"):
        lenet5.RBFLoss(j=0)


def test_softmax_option_and_bad_options():
    model = lenet5.build_lenet5(output="softmax")
    assert model.get_layer("output").count_params() == 850
    assert model.count_params() == 60_850
    with pytest.raises(LenetError, match="output='sigmoid'"):
        lenet5.build_lenet5(output="sigmoid")
    with pytest.raises(LenetError, match="num_classes=26"):
        lenet5.build_lenet5(num_classes=26)


def test_distortions_act_only_in_training():
    keras.utils.set_random_seed(0)
    model = lenet5.build_lenet5(distortions=True)
    layer = model.get_layer("distortion")
    padded = np.pad(rng_images(8), ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(np.asarray(layer(padded, training=False)), padded)
    distorted = np.asarray(layer(padded, training=True))
    assert distorted.shape == padded.shape
    changed = [not np.allclose(distorted[i], padded[i]) for i in range(8)]
    assert 4 <= sum(changed) <= 8
    plain = lenet5.build_lenet5()
    plain.set_weights(model.get_weights())
    images = rng_images(2)
    np.testing.assert_allclose(model(images, training=False), plain(images, training=False),
                               rtol=1e-6)


def test_distortion_translation_moves_a_dot():
    layer = lenet5.RandomAffineDistortion(translation=0, scaling=0, squeezing=0,
                                          shearing=0, keep=0.0)
    image = np.zeros((1, 32, 32, 1), np.float32)
    image[0, 10, 20, 0] = 1.0
    np.testing.assert_allclose(np.asarray(layer(image, training=True)), image, atol=1e-6)
    shift = lenet5.RandomAffineDistortion(translation=3, scaling=0, squeezing=0,
                                          shearing=0, keep=0.0, seed=0)
    moved = np.asarray(shift(np.repeat(image, 16, axis=0), training=True))
    assert np.allclose(moved.sum(axis=(1, 2, 3)), 1.0, atol=1e-4)
    assert not np.allclose(moved, image)


def test_paper_schedule_per_pass():
    schedule = lenet5.paper_schedule(10)
    steps = [float(schedule(step)) for step in range(0, 200, 10)]
    expected = [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8
    np.testing.assert_allclose(steps, expected)
    with pytest.raises(LenetError, match="steps_per_epoch=0"):
        lenet5.paper_schedule(0)


def test_paper_shape_from_adams_rate_through_the_training_config():
    config = TrainingConfig(model="lenet5", loss="rbf", optimizer="adam", learning_rate=1e-3,
                            schedule="lenet5_paper", epochs=20)
    optimizer = config.build_model(steps_per_epoch=10).optimizer
    rates = []
    for step in range(0, 200, 10):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    expected = [1e-3] * 2 + [4e-4] * 3 + [2e-4] * 3 + [1e-4] * 4 + [2e-5] * 8
    np.testing.assert_allclose(rates, expected)


def test_curvature_of_f6_matches_the_formula():
    keras.utils.set_random_seed(0)
    model = lenet5.build_lenet5()
    images = rng_images(6)
    curvatures = dict(zip([v.path for v in model.trainable_variables],
                          lenet5.diagonal_curvature(model, images), strict=True))
    c5 = keras.Model(model.inputs, model.get_layer("flatten").output)
    inputs = np.asarray(c5(images))
    f6 = model.get_layer("F6")
    sums = inputs @ np.asarray(f6.kernel) + np.asarray(f6.bias)
    slope = 1.7159 * 2 / 3 * (1 - np.tanh(2 * sums / 3) ** 2)
    h_sums = 2.0 * slope ** 2
    np.testing.assert_allclose(curvatures[f6.kernel.path],
                               (inputs ** 2).T @ h_sums / len(images), rtol=1e-4)
    np.testing.assert_allclose(curvatures[f6.bias.path], h_sums.mean(axis=0), rtol=1e-4)
    # one layer further: C5's bias gets f'(a)^2 sum_k w_k^2 h_k
    c5_sums = np.arctanh(inputs / 1.7159) * 1.5
    c5_slope = 1.7159 * 2 / 3 * (1 - np.tanh(2 * c5_sums / 3) ** 2)
    h_c5 = c5_slope ** 2 * (h_sums @ np.asarray(f6.kernel).T ** 2)
    np.testing.assert_allclose(curvatures[model.get_layer("C5").bias.path],
                               h_c5.mean(axis=0), rtol=1e-3)
    assert all(np.all(h >= 0) for h in curvatures.values())


def test_sdlm_steps_by_eta_over_mu_plus_curvature():
    variable = keras.Variable(np.array([1.0, 1.0], np.float32))
    optimizer = lenet5.SDLM(0.1, mu=0.5, samples_per_step=4)
    optimizer.set_curvature([variable], [np.array([0.0, 1.5], np.float32)])
    optimizer.apply([ops.convert_to_tensor([1.0, 1.0])], [variable])
    np.testing.assert_allclose(np.asarray(variable), [1 - 0.4 / 0.5, 1 - 0.4 / 2.0])
    with pytest.raises(LenetError, match="mu=0"):
        lenet5.SDLM(0.1, mu=0)


def test_curvature_estimate_sets_the_optimizer_before_each_pass():
    keras.utils.set_random_seed(0)
    model = lenet5.build_lenet5()
    model.compile(optimizer=lenet5.SDLM(1e-5, samples_per_step=8), loss=lenet5.RBFLoss())
    images, labels = rng_images(16), np.arange(16) % 10
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0,
              callbacks=[lenet5.CurvatureEstimate(images, samples=8)])
    assert float(ops.sum(model.optimizer.curvatures[-1])) > 0
    adam = lenet5.build_lenet5()
    adam.compile(optimizer="adam", loss=lenet5.RBFLoss())
    with pytest.raises(LenetError, match="SDLM"):
        adam.fit(images, labels, epochs=1, verbose=0,
                 callbacks=[lenet5.CurvatureEstimate(images)])


@pytest.mark.parametrize("options", [{}, {"output": "softmax", "distortions": True},
                                     {"init_scale": "sqrt_fan_in"}])
def test_lenet5_saves_and_loads(tmp_path, options):
    model = lenet5.build_lenet5(**options)
    model.compile(optimizer=lenet5.SDLM(1e-4), loss=lenet5.RBFLoss())
    images = rng_images(4)
    model.save(tmp_path / "lenet5.keras")
    loaded = keras.models.load_model(tmp_path / "lenet5.keras")
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  loaded.predict(images, verbose=0))


def test_scaled_tanh_maps_one_to_one():
    values = np.asarray(lenet5.scaled_tanh(np.array([-1.0, 0.0, 1.0], "float32")))
    np.testing.assert_allclose(values, [-1.0, 0.0, 1.0], atol=1e-4)


def test_training_config_trains_and_caches_the_paper_recipe(tmp_path, monkeypatch, capsys):
    from lenet_utils import training

    monkeypatch.setenv(training.CACHE_VARIABLE, str(tmp_path))
    config = training.TrainingConfig(
        model="lenet5", loss="rbf", optimizer="sdlm", learning_rate=5e-4,
        optimizer_options={"mu": 6.4}, schedule="lenet5_paper", batch_size=8, epochs=1,
        validate="at_end")
    images, labels = rng_images(16), np.arange(16) % 10
    model, _ = training.train_or_load(config, (images, labels), (images[:8], labels[:8]))
    assert isinstance(model.optimizer, lenet5.SDLM)
    assert model.optimizer.samples_per_step == 8 and model.optimizer.mu == 6.4
    assert float(ops.sum(model.optimizer.curvatures[-1])) > 0
    loaded, _ = training.train_or_load(config, (images, labels), (images[:8], labels[:8]))
    assert "loaded from the cache" in capsys.readouterr().out
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-6)
    with pytest.raises(LenetError, match="pass train"):
        config.callbacks()


def test_optimizer_options_stay_out_of_old_cache_keys():
    from lenet_utils import training

    assert "optimizer_options" not in training.TrainingConfig().fingerprint()
    options = training.TrainingConfig(optimizer_options={"mu": 1.0}).fingerprint()
    assert options["optimizer_options"] == {"mu": 1.0}
    assert not {"curvature", "steps_per_execution"} & set(
        training.TrainingConfig().fingerprint())


@pytest.mark.parametrize(("every_pass", "estimates"), [(True, 3), (False, 1)])
def test_curvature_estimate_every_pass_or_only_before_the_first(monkeypatch, every_pass,
                                                                 estimates):
    calls = []
    real = lenet5.diagonal_curvature
    monkeypatch.setattr(lenet5, "diagonal_curvature",
                        lambda model, images: calls.append(len(images)) or real(model, images))
    keras.utils.set_random_seed(0)
    model = lenet5.build_lenet5()
    model.compile(optimizer=lenet5.SDLM(1e-5, samples_per_step=8), loss=lenet5.RBFLoss())
    images, labels = rng_images(16), np.arange(16) % 10
    model.fit(images, labels, batch_size=8, epochs=3, verbose=0,
              callbacks=[lenet5.CurvatureEstimate(images, samples=8, every_pass=every_pass)])
    assert calls == [8] * estimates


def test_training_config_curvature_option_reaches_the_callback():
    from lenet_utils import training

    config = training.TrainingConfig(model="lenet5", loss="rbf", optimizer="sdlm",
                                     curvature="first_pass")
    (estimate,) = config.callbacks((rng_images(4), np.arange(4)))
    assert estimate.every_pass is False
    assert config.fingerprint()["curvature"] == "first_pass"
    with pytest.raises(LenetError, match="curvature='first_pass' is SDLM's option"):
        training.TrainingConfig(curvature="first_pass")
    with pytest.raises(LenetError, match="curvature='never' is unknown"):
        training.TrainingConfig(optimizer="sdlm", curvature="never")


def test_curvature_again_from_keeps_the_first_estimate_until_that_pass(monkeypatch):
    from lenet_utils import training

    drawn = []
    real = lenet5.diagonal_curvature
    monkeypatch.setattr(lenet5, "diagonal_curvature",
                        lambda model, images: drawn.append(images.copy()) or real(model, images))
    config = training.TrainingConfig(model="lenet5", loss="rbf", optimizer="sdlm",
                                     learning_rate=1e-5, batch_size=8, epochs=4,
                                     curvature="first_pass", curvature_again_from=3)
    images, labels = rng_images(16), np.arange(16) % 10
    (estimate,) = config.callbacks((images, labels))
    model = config.build_model()
    model.fit(images, labels, batch_size=8, epochs=4, verbose=0, callbacks=[estimate])
    expected = [images[np.sort(np.random.default_rng([0, epoch]).choice(16, 16, replace=False))]
                for epoch in (0, 2, 3)]
    assert len(drawn) == 3
    for got, want in zip(drawn, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert config.fingerprint()["curvature_again_from"] == 3
    assert "curvature_again_from" not in config.but(curvature_again_from=None).fingerprint()


@pytest.mark.parametrize("changes", [{"curvature_again_from": 3},
                                     {"curvature": "first_pass", "curvature_again_from": 1}])
def test_curvature_again_from_needs_the_first_pass_mode_and_a_later_pass(changes):
    from lenet_utils import training

    with pytest.raises(LenetError, match="curvature_again_from"):
        training.TrainingConfig(model="lenet5", loss="rbf", optimizer="sdlm", **changes)


def test_steps_per_execution_changes_nothing_but_speed():
    from lenet_utils import training

    images, labels = rng_images(32), np.arange(32) % 10
    weights = []
    for steps in (1, 4):
        config = training.TrainingConfig(model="lenet5", loss="rbf", optimizer="sdlm",
                                         learning_rate=1e-3, batch_size=2, epochs=2,
                                         steps_per_execution=steps)
        model = config.build_model(steps_per_epoch=16)
        assert model.steps_per_execution == steps
        model.fit(images, labels, batch_size=2, epochs=2, shuffle=False, verbose=0,
                  callbacks=config.callbacks((images, labels)))
        weights.append(model.get_weights())
    for one, four in zip(*weights, strict=True):
        np.testing.assert_array_equal(one, four)
    with pytest.raises(LenetError, match="steps_per_execution=0"):
        training.TrainingConfig(steps_per_execution=0)
