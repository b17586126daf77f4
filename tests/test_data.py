import os
import shutil

import numpy as np
import pytest

from lenet_utils import LenetError, data


def test_tiny_archive_loads_and_verifies(tiny_mnist):
    path, arrays = tiny_mnist
    (x_train, y_train), (x_test, y_test) = data.load_mnist(path)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_missing_file_names_path_and_fix(tmp_path):
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(LenetError, match="does not exist") as error:
        data.load_mnist(missing)
    assert str(missing) in str(error.value)
    assert data.MNIST_PATH_VARIABLE in str(error.value)


def test_truncated_archive_is_reported(tiny_mnist, tmp_path):
    path, _ = tiny_mnist
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LenetError, match="truncated or corrupt") as error:
        data.load_mnist(truncated)
    assert str(truncated) in str(error.value)


def test_file_that_is_not_an_archive(tmp_path):
    text = tmp_path / "mnist.npz"
    text.write_text("<html>404 Not Found</html>")
    with pytest.raises(LenetError, match="cannot be read as an .npz"):
        data.load_mnist(text)


def test_single_npy_array_is_not_an_archive(tmp_path):
    single = tmp_path / "mnist.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(LenetError, match="single array"):
        data.load_mnist(single)


def test_missing_key_is_named(tiny_mnist, tmp_path):
    _, arrays = tiny_mnist
    incomplete = tmp_path / "incomplete.npz"
    np.savez(incomplete, **{k: v for k, v in arrays.items() if k != "y_test"})
    with pytest.raises(LenetError, match="no array y_test"):
        data.load_mnist(incomplete)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.astype(np.int16), "dtype int16"),
    (lambda a: a[:-1], r"shape \(39, 28, 28\)"),
])
def test_wrong_shape_or_dtype(tiny_mnist, tmp_path, change, message):
    _, arrays = tiny_mnist
    broken = tmp_path / "broken.npz"
    np.savez(broken, **{**arrays, "x_train": change(arrays["x_train"])})
    with pytest.raises(LenetError, match=message) as error:
        data.load_mnist(broken)
    assert "x_train" in str(error.value)


def test_label_out_of_range(tiny_mnist, tmp_path):
    _, arrays = tiny_mnist
    labels = arrays["y_train"].copy()
    labels[0] = 12
    broken = tmp_path / "labels.npz"
    np.savez(broken, **{**arrays, "y_train": labels})
    with pytest.raises(LenetError, match="label 12, outside 0-9"):
        data.load_mnist(broken)


def test_one_flipped_byte_fails_the_checksum(tiny_mnist, tmp_path):
    _, arrays = tiny_mnist
    images = arrays["x_test"].copy()
    images[3, 14, 14] ^= 0x01
    flipped = tmp_path / "flipped.npz"
    np.savez(flipped, **{**arrays, "x_test": images})
    with pytest.raises(LenetError, match="x_test has SHA-256"):
        data.load_mnist(flipped)


def test_environment_variable_is_used(tiny_mnist, monkeypatch):
    path, arrays = tiny_mnist
    monkeypatch.setenv(data.MNIST_PATH_VARIABLE, str(path))
    (_, y_train), _ = data.load_mnist()
    np.testing.assert_array_equal(y_train, arrays["y_train"])


def test_argument_wins_over_environment(tiny_mnist, monkeypatch, tmp_path):
    path, _ = tiny_mnist
    monkeypatch.setenv(data.MNIST_PATH_VARIABLE, str(tmp_path / "wrong.npz"))
    assert data.resolve_mnist_path(path) == path


def test_keras_download_is_the_fallback(tiny_mnist, monkeypatch):
    import keras

    _, arrays = tiny_mnist
    monkeypatch.delenv(data.MNIST_PATH_VARIABLE, raising=False)
    keras_result = ((arrays["x_train"], arrays["y_train"]),
                    (arrays["x_test"], arrays["y_test"]))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: keras_result)
    (x_train, _), _ = data.load_mnist()
    np.testing.assert_array_equal(x_train, arrays["x_train"])


def test_failed_download_explains_the_variable(monkeypatch):
    import keras

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.delenv(data.MNIST_PATH_VARIABLE, raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(LenetError, match=data.MNIST_PATH_VARIABLE):
        data.load_mnist()


def test_real_mnist_loads(mnist_path):
    (x_train, y_train), (x_test, y_test) = data.load_mnist(mnist_path)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist()[:2] == [980, 1135]


def test_real_mnist_with_one_flipped_pixel_is_rejected(mnist_path, tmp_path):
    with np.load(mnist_path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["x_train"][12345, 10, 10] ^= 0x80
    copy = tmp_path / "mnist.npz"
    np.savez(copy, **arrays)
    with pytest.raises(LenetError, match="x_train has SHA-256"):
        data.load_mnist(copy)


def test_loading_never_writes_to_keras_home(mnist_path, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    copy = tmp_path / "mnist.npz"
    shutil.copy(mnist_path, copy)
    data.load_mnist(copy)
    assert not (tmp_path / "keras").exists()
    assert copy.stat().st_size == os.path.getsize(mnist_path)


def test_scale_images():
    raw = np.array([[[0, 255] * 14] * 28], dtype=np.uint8)
    scaled = data.scale_images(raw)
    assert scaled.shape == (1, 28, 28, 1) and scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 28, 28, 3), (28, 28)])
def test_scale_images_rejects_wrong_shapes(shape):
    with pytest.raises(LenetError, match=r"expected \(n, 28, 28\)"):
        data.scale_images(np.zeros(shape, np.uint8))


def labelled_ids(n_per_class=100):
    labels = np.repeat(np.arange(10), n_per_class)
    return np.arange(len(labels)), labels


def test_split_is_stratified_disjoint_and_seeded():
    ids, labels = labelled_ids()
    (train_ids, train_labels), (val_ids, val_labels) = data.train_validation_split(
        ids, labels, validation_size=200, seed=3)
    assert len(val_ids) == 200 and len(train_ids) == 800
    assert set(train_ids).isdisjoint(val_ids)
    assert np.bincount(val_labels).tolist() == [20] * 10
    np.testing.assert_array_equal(labels[train_ids], train_labels)
    (again, _), _ = data.train_validation_split(ids, labels, 200, seed=3)
    (other, _), _ = data.train_validation_split(ids, labels, 200, seed=4)
    np.testing.assert_array_equal(train_ids, again)
    assert not np.array_equal(train_ids, other)


def test_split_rejects_impossible_sizes():
    ids, labels = labelled_ids()
    with pytest.raises(LenetError, match="validation_size=1000"):
        data.train_validation_split(ids, labels, validation_size=1000)


def test_stratified_subset():
    ids, labels = labelled_ids()
    subset_ids, subset_labels = data.stratified_subset(ids, labels, per_class=7, seed=1)
    assert np.bincount(subset_labels).tolist() == [7] * 10
    assert len(set(subset_ids)) == 70
    np.testing.assert_array_equal(labels[subset_ids], subset_labels)
    again, _ = data.stratified_subset(ids, labels, per_class=7, seed=1)
    np.testing.assert_array_equal(subset_ids, again)
    with pytest.raises(LenetError, match="per_class=101"):
        data.stratified_subset(ids, labels, per_class=101)


def test_make_dataset_batches_and_seeded_shuffle():
    ids, labels = labelled_ids(10)
    batches = list(data.make_dataset(ids, labels, 32, shuffle=True, seed=5))
    assert [len(x) for x, _ in batches] == [32, 32, 32, 4]
    first = np.concatenate([x for x, _ in batches])
    again = np.concatenate([x for x, _ in data.make_dataset(ids, labels, 32, shuffle=True,
                                                            seed=5)])
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == list(ids) and not np.array_equal(first, ids)
    with pytest.raises(LenetError, match="batch_size=0"):
        data.make_dataset(ids, labels, 0)


def test_load_splits_quick_sizes(mnist_path):
    splits = data.load_splits(mnist_path, seed=0, train_per_class=20,
                              validation_per_class=5, test_per_class=10)
    assert splits.x_train.shape == (200, 28, 28, 1)
    assert splits.x_val.shape == (50, 28, 28, 1)
    assert splits.x_test.shape == (100, 28, 28, 1)
    assert splits.x_train.dtype == np.float32 and splits.x_train.max() <= 1.0
    images, labels = splits.all_training
    assert images.shape == (250, 28, 28, 1) and labels.shape == (250,)
    np.testing.assert_array_equal(images[:200], splits.x_train)
    np.testing.assert_array_equal(labels[200:], splits.y_val)


def test_shift_images_moves_and_fills_with_background():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 10, 10] = 1.0
    moved = data.shift_images(image, right=3, down=-2)
    assert moved[0, 8, 13] == 1.0 and moved.sum() == 1.0
    assert data.shift_images(image, right=20, down=0).sum() == 0.0
    np.testing.assert_array_equal(data.shift_images(image, 0, 0), image)


def test_rotate_images_keeps_shape_and_turns_anticlockwise():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 14, 20:26] = 1.0  # a bar to the right of the centre
    rotated = data.rotate_images(image, 90)
    assert rotated.shape == image.shape and rotated.dtype == image.dtype
    rows, columns = np.nonzero(rotated[0, :, :, 0] > 0.5)
    assert rows.max() < 14 and abs(columns.mean() - 14) < 1.5  # now above the centre
