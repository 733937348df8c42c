"""`data.load` on prepared tensorflow-datasets data (mock data, empty
data_dirs: no network, no downloads): seeded validation splits, CIFAR-10-C,
out-of-distribution normalisation, errors that say how to prepare data."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import freetickets_tf as ft


# --- tensorflow-datasets (mock data: no network) -----------------------------------

@pytest.mark.parametrize("name, num_classes", [
    ("cifar10", 10), ("cifar100", 100), ("svhn_cropped", 10)])
def test_load_mock_data(tmp_path, no_network, name, num_classes, batches):
    with tfds.testing.mock_data(num_examples=50):
        data = ft.data.load(name, data_dir=tmp_path, batch_size=16, seed=1)
        raw_test = next(iter(tfds.as_numpy(tfds.builder(name, data_dir=str(tmp_path))
                                           .as_dataset(split="test", as_supervised=True)
                                           .batch(50))))
    assert data.name == name and data.num_classes == num_classes
    assert data.input_shape == (32, 32, 3)
    assert data.train.examples == 45 and data.train.steps_per_epoch == 3
    x, y = batches(data.train.epoch(0))[0]
    assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert ((0 <= y) & (y < num_classes)).all()
    assert sum(len(b[1]) for b in batches(data.validation)) == 5
    test = batches(data.test)
    assert [len(b[1]) for b in test] == [16, 16, 16, 2]
    # The test split, in order, normalised with the dataset's constants.
    mean, std = ft.data.NORMALIZATION[name]
    np.testing.assert_allclose(np.concatenate([b[0] for b in test]),
                               (raw_test[0] / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in test]), raw_test[1])


def raw_rows(ds):
    """uint8 rows of the images of a pipeline built with normalization (0, 1)."""
    x = np.concatenate([images.numpy() for images, _ in ds])
    return {r.tobytes() for r in np.round(x * 255).astype("uint8").reshape(len(x), -1)}


def test_load_validation_split_is_seeded_disjoint_and_ten_percent(tmp_path, no_network):
    identity = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    def split(split_seed=0, seed=0):
        data = ft.data.load("cifar10", data_dir=tmp_path, batch_size=64, seed=seed,
                            augment=False, normalization=identity,
                            split_seed=split_seed)
        return raw_rows(data.train.epoch(0)), raw_rows(data.validation)

    with tfds.testing.mock_data(num_examples=100):
        train, val = split()
        raw = next(iter(tfds.as_numpy(tfds.builder("cifar10", data_dir=str(tmp_path))
                                      .as_dataset(split="train", as_supervised=True)
                                      .batch(100))))[0]
        assert split(seed=5) == (train, val)  # the training seed keeps the split
        train_2, val_2 = split(split_seed=2)
    assert len(val) == 10 and len(train) == 90 and not train & val
    assert train | val == {r.tobytes() for r in raw.reshape(100, -1)}
    assert val_2 != val and len(val_2) == 10


def test_load_without_validation_and_with_max_examples(tmp_path, no_network, batches):
    with tfds.testing.mock_data(num_examples=30):
        data = ft.data.load("cifar100", data_dir=tmp_path, batch_size=8,
                            validation_fraction=0, max_examples=20, eval_batch_size=5)
    assert data.validation is None and data.train.examples == 20
    assert [len(b[1]) for b in batches(data.test)] == [5] * 4


def test_load_cifar10_corrupted_is_test_only(tmp_path, no_network, batches):
    with tfds.testing.mock_data(num_examples=12):
        data = ft.data.load("cifar10_corrupted", data_dir=tmp_path, batch_size=5,
                            corruption="glass_blur", severity=2)
    assert data.name == "cifar10_corrupted/frosted_glass_blur_2"
    assert data.train is None and data.validation is None
    assert [len(b[1]) for b in batches(data.test)] == [5, 5, 2]
    with pytest.raises(ValueError, match="needs `corruption`"):
        ft.data.load("cifar10_corrupted", data_dir=tmp_path)
    with pytest.raises(ValueError, match="severity"):
        ft.data.load("cifar10_corrupted", data_dir=tmp_path, corruption="fog", severity=6)
    with pytest.raises(ValueError, match="not 'cifar10'"):
        ft.data.load("cifar10", data_dir=tmp_path, corruption="fog", severity=1)


def test_ood_normalisation_by_name(tmp_path, no_network, batches):
    with tfds.testing.mock_data(num_examples=4):
        own = ft.data.load("svhn_cropped", data_dir=tmp_path, batch_size=4)
        as_cifar = ft.data.load("svhn_cropped", data_dir=tmp_path, batch_size=4,
                                normalization="cifar10")
    (x_own, _), = batches(own.test)
    (x_cifar, _), = batches(as_cifar.test)
    raw = x_own * np.array(ft.data.NORMALIZATION["svhn_cropped"][1]) + np.array(
        ft.data.NORMALIZATION["svhn_cropped"][0])
    mean, std = ft.data.NORMALIZATION["cifar10"]
    np.testing.assert_allclose(x_cifar, (raw - mean) / std, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="normalization"):
        ft.data.load("svhn_cropped", data_dir=tmp_path, normalization="mnist")


def test_missing_dataset_says_how_to_prepare_it(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as info:
        ft.data.load("cifar10", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build cifar10 --data_dir DIR" in message and str(tmp_path) in message
    assert "data_dir=DIR" in message and "--data_dir DIR" in message
    with pytest.raises(FileNotFoundError) as info:
        ft.data.load("imagenet2012", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build imagenet2012 --manual_dir MANUAL --data_dir DIR" in message
    assert "prepare_imagenet" in message and "data_dir=DIR" in message
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing downloaded


def test_unknown_names_list_the_datasets():
    with pytest.raises(ValueError) as info:
        ft.data.load("mnist")
    for name in ft.data.DATASETS:
        assert repr(name) in str(info.value)
    assert set(ft.data.DATASETS) == {
        "cifar10", "cifar100", "svhn_cropped", "cifar10_corrupted", "imagenet2012"}
    with pytest.raises(ValueError, match="validation_fraction"):
        ft.data.load("cifar10", validation_fraction=1.0)
