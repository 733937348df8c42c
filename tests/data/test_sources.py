"""Data loaders: the bundled digits, `.npz` sets and prepared tensorflow-datasets
image sets (mock data and empty data_dirs only: no network, no downloads)."""


import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from freetickets_tf.data import sources


def test_load_digits_split():
    (x_train, y_train), (x_test, y_test) = sources.load_digits(test_fraction=0.25, seed=0)
    assert x_train.shape == (1348, 8, 8, 1) and x_test.shape == (449, 8, 8, 1)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert set(np.unique(y_train)) == set(range(10))
    # Train and test are disjoint: no test image appears in the train set.
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap < 5  # the digits set holds a handful of exact duplicates
    (x_again, _), _ = sources.load_digits(seed=0)
    np.testing.assert_array_equal(x_again, x_train)


@pytest.mark.parametrize("fraction", [0, 1, -0.5])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        sources.load_digits(test_fraction=fraction)


def write_npz(path, x_train, x_test):
    np.savez(path, x_train=x_train, y_train=np.arange(len(x_train)),
             x_test=x_test, y_test=np.arange(len(x_test)) % 10)
    return path


def test_load_npz_scales_pads_and_tiles(tmp_path):
    x = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype("uint8")
    path = write_npz(tmp_path / "set.npz", x, x[:1])
    (x_train, y_train), (x_test, y_test) = sources.load_npz(path)
    assert x_train.shape == (2, 28, 28, 1) and x_train.dtype == np.float32
    np.testing.assert_allclose(x_train[..., 0], x / 255.0)
    assert y_train.dtype == np.int32 and y_test.tolist() == [0]
    (padded, _), (padded_test, _) = sources.load_npz(path, image_shape=(31, 32, 3))
    assert padded.shape == (2, 31, 32, 3) and padded_test.shape == (1, 31, 32, 3)
    # 3 rows and 4 columns of zeros, split around the centre (extra one after).
    np.testing.assert_array_equal(padded[:, 1:29, 2:30, :], np.repeat(x_train, 3, -1))
    assert padded[:, [0, 29, 30]].max() == 0 and padded[:, :, [0, 1, 30, 31]].max() == 0
    floats = write_npz(tmp_path / "floats.npz", x.astype("float32") / 255.0, x[:1] / 255.0)
    np.testing.assert_allclose(sources.load_npz(floats)[0][0], x_train)  # not rescaled


def test_load_npz_errors(tmp_path):
    x = np.zeros((2, 28, 28, 3), "uint8")
    path = write_npz(tmp_path / "set.npz", x, x)
    with pytest.raises(ValueError, match=r"`image_shape`.*cannot hold"):
        sources.load_npz(path, image_shape=(16, 16, 3))  # no silent resizing here
    with pytest.raises(ValueError, match=r"`image_shape`.*cannot hold"):
        sources.load_npz(path, image_shape=(32, 32, 1))
    for bad in [(32, 32), (32, 32, 0), (32.0, 32, 3), 32, "32x32"]:
        with pytest.raises(ValueError, match=r"`image_shape`.*positive integers"):
            sources.load_npz(path, image_shape=bad)
    np.savez(tmp_path / "partial.npz", x_train=x)
    with pytest.raises(ValueError, match="y_test"):
        sources.load_npz(tmp_path / "partial.npz")


# --- tensorflow-datasets image sets (offline; mock data or an empty data_dir) ---

@pytest.mark.parametrize("name", ["svhn_cropped", "cifar10"])
def test_load_tfds_images_with_mock_data(tmp_path, no_network, name):
    with tfds.testing.mock_data(num_examples=7):
        x, y = sources.load_tfds_images(name, "test", data_dir=str(tmp_path))
        x3, y3 = sources.load_tfds_images(name, data_dir=tmp_path, max_examples=3)
        x_same, _ = sources.load_tfds_images(name, data_dir=tmp_path, image_shape=[32, 32, 3])
        raw = next(iter(tfds.as_numpy(
            tfds.builder(name, data_dir=str(tmp_path))
            .as_dataset(split="test", as_supervised=True).batch(7))))[0]
    assert x.shape == (7, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (7,) and y.dtype == np.int32 and ((0 <= y) & (y < 10)).all()
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5  # scaled, not clipped
    np.testing.assert_allclose(x, raw / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(x3, x[:3])
    np.testing.assert_array_equal(y3, y[:3])
    np.testing.assert_array_equal(x_same, x)  # already the right shape


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_tfds_images_pads_greyscale_to_the_model_shape(tmp_path, no_network, name):
    with tfds.testing.mock_data(num_examples=5):
        x, y = sources.load_tfds_images(name, data_dir=str(tmp_path))
        padded, y_padded = sources.load_tfds_images(
            name, data_dir=str(tmp_path), image_shape=(32, 32, 3), max_examples=4)
    assert x.shape == (5, 28, 28, 1) and padded.shape == (4, 32, 32, 3)
    assert padded.dtype == np.float32 and y_padded.dtype == np.int32
    np.testing.assert_array_equal(padded[:, 2:30, 2:30, :], np.repeat(x[:4], 3, -1))
    assert padded[:, [0, 1, 30, 31]].max() == 0 and padded[:, :, [0, 1, 30, 31]].max() == 0
    np.testing.assert_array_equal(y_padded, y[:4])


def test_load_tfds_images_shrinks_larger_images(tmp_path, no_network):
    with tfds.testing.mock_data(num_examples=3):
        x, _ = sources.load_tfds_images("cifar10", data_dir=str(tmp_path))
        small, _ = sources.load_tfds_images(
            "cifar10", data_dir=str(tmp_path), image_shape=(16, 16, 3))
        wide, _ = sources.load_tfds_images(
            "cifar10", data_dir=str(tmp_path), image_shape=(8, 16, 3))
        tall, _ = sources.load_tfds_images(
            "cifar10", data_dir=str(tmp_path), image_shape=(16, 8, 3))
    assert small.shape == (3, 16, 16, 3) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    expected = tf.image.resize(x, (16, 16), "bilinear", antialias=True).numpy()
    np.testing.assert_allclose(small, expected, atol=1e-6)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=0.02)
    # Aspect ratio kept: 32x32 fits (8, 16) as 8x8, centred between zeros.
    assert wide.shape == (3, 8, 16, 3) and wide[:, :, 4:12].max() > 0
    assert wide[:, :, :4].max() == 0 and wide[:, :, 12:].max() == 0
    assert tall.shape == (3, 16, 8, 3) and tall[:, [*range(4), *range(12, 16)]].max() == 0
    np.testing.assert_array_equal(tall[:, 4:12], wide[:, :, 4:12])  # the same 8x8


def test_fitting_images_of_varying_size(monkeypatch):
    batches = [(np.full((1, 40, 20, 1), 255, "uint8"), np.array([1])),
               (np.full((1, 10, 10, 1), 255, "uint8"), np.array([2]))]
    monkeypatch.setattr(sources, "read_tfds", lambda *args: iter(batches))
    x, y = sources.load_tfds_images("ds", image_shape=(20, 21, 2))
    assert x.shape == (2, 20, 21, 2) and y.tolist() == [1, 2]
    np.testing.assert_allclose(x[0, :, 5:15], 1.0)  # 40x20 -> 20x10, padded 5 + 6
    assert x[0, :, :5].max() == 0 and x[0, :, 15:].max() == 0
    np.testing.assert_array_equal(x[1, 5:15, 5:15], 1.0)  # 10x10 padded
    assert x[1].sum() == 10 * 10 * 2
    with pytest.raises(ValueError, match=r"vary in size.*`image_shape`"):
        sources.load_tfds_images("ds")
    monkeypatch.setattr(sources, "read_tfds", lambda *args: iter([]))
    with pytest.raises(ValueError, match="no examples"):
        sources.load_tfds_images("ds")


def test_load_tfds_images_not_prepared_explains_how_to_provide_it(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as info:
        sources.load_tfds_images("svhn_cropped", data_dir=str(tmp_path))
    message = str(info.value)
    assert "`svhn_cropped` is not prepared" in message and str(tmp_path) in message
    assert "tfds build svhn_cropped --data_dir DIR" in message
    assert "data_dir=DIR" in message and "never downloads" in message
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or prepared


def test_load_tfds_images_unknown_or_namespaced_names(tmp_path, no_network):
    message = r"'svhn' is not a tensorflow-datasets.*Did you mean .*'svhn_cropped'"
    with pytest.raises(ValueError, match=message):
        sources.load_tfds_images("svhn", data_dir=str(tmp_path))
    for name in ["huggingface:mnist", "kaggle:some/set", "", None]:
        with pytest.raises(ValueError, match="`name`"):
            sources.load_tfds_images(name, data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_load_tfds_images_checks_arguments_before_reading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("read the dataset before checking the arguments")

    monkeypatch.setattr(sources, "read_tfds", fail)
    for bad in [0, -1, 2.5, True, "10"]:
        with pytest.raises(ValueError, match="`max_examples`"):
            sources.load_tfds_images("cifar10", max_examples=bad)
    for bad in [(32, 32), (32, -32, 3), (32, 32, None), 32]:
        with pytest.raises(ValueError, match="`image_shape`"):
            sources.load_tfds_images("cifar10", image_shape=bad)
