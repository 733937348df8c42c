"""Corrupted test-set loaders: tfds config names, offline errors, the CIFAR-C
numpy layout and up-front validation. No network, no files outside tmp_path."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from freetickets_tf.data import corruptions as C


def write_cifar_c(directory, names=("fog",), n=4, labels_len=None):
    """`<name>.npy` with 5 blocks of `n` images; pixel value 10*block + row."""
    block, row = np.divmod(np.arange(5 * n), n)
    values = (10 * block + row).astype("uint8")[:, None, None, None]
    images = np.broadcast_to(values, (5 * n, 32, 32, 3))
    for name in names:
        np.save(directory / f"{name}.npy", images)
    np.save(directory / "labels.npy", np.arange(labels_len or 5 * n) % 100)
    return directory


def test_standard_names_and_order():
    assert len(C.CORRUPTIONS) == 15 and len(set(C.CORRUPTIONS)) == 15
    assert C.CORRUPTIONS[:2] == ("gaussian_noise", "shot_noise")
    assert C.CORRUPTIONS[4] == "glass_blur" and C.CORRUPTIONS[9] == "fog"
    assert C.CORRUPTIONS[-3:] == ("elastic_transform", "pixelate", "jpeg_compression")
    assert C.SEVERITIES == (1, 2, 3, 4, 5)


def test_every_config_name_exists_in_the_tfds_builder():
    configs = {c.name for c in tfds.builder_cls("cifar10_corrupted").BUILDER_CONFIGS}
    mapped = {C.tfds_config_name(c, s) for c in C.CORRUPTIONS for s in C.SEVERITIES}
    assert len(mapped) == 75 and mapped <= configs
    assert C.tfds_config_name("elastic_transform", 2) == "elastic_2"
    assert C.tfds_config_name("glass_blur", 5) == "frosted_glass_blur_5"
    assert C.tfds_config_name("fog", 1) == "fog_1"


def test_aliases_and_severity_checks():
    assert C.check_corruption("elastic") == "elastic_transform"
    assert C.check_corruption("frosted_glass_blur") == "glass_blur"
    assert type(C.check_severity(np.int64(4))) is int and C.check_severity(4) == 4
    for bad in (0, 6, True, 2.0, "3", None):
        with pytest.raises(ValueError, match=r"`severity`.*1, 2, 3, 4, 5"):
            C.check_severity(bad)


@pytest.mark.parametrize("bad", ["gaussian", "Fog", "", None, ["fog"]])
def test_unknown_corruption_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match="`corruption`") as info:
        C.check_corruption(bad)
    assert all(repr(name) in str(info.value) for name in C.CORRUPTIONS)


@pytest.mark.parametrize(
    "corruption,severity", [("elastic_transform", 1), ("glass_blur", 5)]
)
def test_tfds_loader_with_mock_data(tmp_path, no_network, corruption, severity):
    with tfds.testing.mock_data(num_examples=6):
        x, y = C.load_cifar10_corrupted(corruption, severity, data_dir=str(tmp_path))
        x4, y4 = C.load_cifar10_corrupted(
            corruption, severity, str(tmp_path), max_examples=4
        )
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (6,) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5  # scaled, not clipped
    assert ((0 <= y) & (y < 10)).all()
    np.testing.assert_array_equal(x4, x[:4])
    np.testing.assert_array_equal(y4, y[:4])


def test_tfds_loader_missing_dataset_explains_how_to_provide_it(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as info:
        C.load_cifar10_corrupted("elastic_transform", 3, data_dir=str(tmp_path))
    message = str(info.value)
    assert "cifar10_corrupted/elastic_3" in message and str(tmp_path) in message
    assert "tfds build" in message and "data_dir=DIR" in message
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or prepared


def test_directory_loader_reads_exactly_the_severity_block(tmp_path, monkeypatch):
    write_cifar_c(tmp_path, names=("elastic_transform",))
    loads = []
    real_load = np.load
    spy = lambda *args, **kwargs: loads.append(kwargs) or real_load(*args, **kwargs)
    monkeypatch.setattr(np, "load", spy)
    x, y = C.load_cifar_c_directory(tmp_path, "elastic", 3)  # alias -> the release file
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(x[:, 0, 0, 0], (20 + np.arange(4)) / 255.0)
    assert (x == x[:, :1, :1, :1]).all()
    np.testing.assert_array_equal(y, [8, 9, 10, 11])
    assert all(k.get("mmap_mode") == "r" for k in loads) and len(loads) == 2
    x2, y2 = C.load_cifar_c_directory(
        str(tmp_path), "elastic_transform", 5, max_examples=2
    )
    np.testing.assert_allclose(x2[:, 0, 0, 0], [40 / 255.0, 41 / 255.0])
    np.testing.assert_array_equal(y2, [16, 17])


def test_directory_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        C.load_cifar_c_directory(tmp_path / "absent", "fog", 1)
    write_cifar_c(tmp_path, names=("fog",))
    with pytest.raises(FileNotFoundError, match=r"snow\.npy"):
        C.load_cifar_c_directory(tmp_path, "snow", 1)
    with pytest.raises(ValueError, match="`severity`"):
        C.load_cifar_c_directory(tmp_path, "fog", 6)
    write_cifar_c(tmp_path, names=("fog",), labels_len=19)
    with pytest.raises(ValueError, match="19 labels"):
        C.load_cifar_c_directory(tmp_path, "fog", 1)
    write_cifar_c(tmp_path, names=("fog",), n=4)
    np.save(tmp_path / "fog.npy", np.zeros((19, 32, 32, 3), "uint8"))
    np.save(tmp_path / "labels.npy", np.zeros(19, "int64"))
    with pytest.raises(ValueError, match="divisible by 5"):
        C.load_cifar_c_directory(tmp_path, "fog", 1)
    (tmp_path / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels\.npy"):
        C.load_cifar_c_directory(tmp_path, "fog", 1)


def test_corrupted_test_sets_yields_combinations_in_order(tmp_path):
    write_cifar_c(tmp_path, names=("fog", "snow"))
    sets = C.corrupted_test_sets(str(tmp_path), ["snow", "fog"], [2, 1], max_examples=3)
    sets = list(sets)
    pairs = [(c, s) for c, s, _, _ in sets]
    assert pairs == [("snow", 2), ("snow", 1), ("fog", 2), ("fog", 1)]
    for _, severity, x, y in sets:
        assert x.shape == (3, 32, 32, 3)
        np.testing.assert_array_equal(y, (severity - 1) * 4 + np.arange(3))
    single = list(C.corrupted_test_sets(tmp_path, "fog", 5))
    assert [(c, s) for c, s, _, _ in single] == [("fog", 5)]


def test_corrupted_test_sets_defaults_to_all_combinations_from_tfds(monkeypatch):
    calls = []
    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return np.zeros((1, 32, 32, 3), "float32"), np.zeros(1, "int32")

    checked = []
    monkeypatch.setattr(C, "load_cifar10_corrupted", fake)
    monkeypatch.setattr(C.sources, "read_tfds",
                        lambda *args: checked.append(args) or iter([None]))
    sets = C.corrupted_test_sets(data_dir="D", max_examples=7)
    # The first set's preparation is checked on the call, before any loading.
    assert checked == [("cifar10_corrupted/gaussian_noise_1", "test", "D", 1)] and not calls
    pairs = [(c, s) for c, s, _, _ in sets]
    assert pairs == [(c, s) for c in C.CORRUPTIONS for s in C.SEVERITIES]
    assert calls == [((c, s), {"data_dir": "D", "max_examples": 7}) for c, s in pairs]


def test_unprepared_tfds_corruptions_fail_on_the_call(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="tfds build cifar10_corrupted --config fog_3"):
        C.corrupted_test_sets("cifar10", ["fog", "snow"], [3], data_dir=str(tmp_path))


def test_corrupted_test_sets_validates_before_loading(tmp_path, monkeypatch):
    write_cifar_c(tmp_path, names=("fog", "snow"))

    def fail(*args, **kwargs):
        raise AssertionError("loaded data before validating the arguments")

    monkeypatch.setattr(np, "load", fail)
    monkeypatch.setattr(C, "load_cifar10_corrupted", fail)
    with pytest.raises(ValueError, match="`severity`"):
        C.corrupted_test_sets(tmp_path, ["fog"], [1, 2, 6])
    with pytest.raises(ValueError, match="`severity`"):
        C.corrupted_test_sets("cifar10", ["fog"], [0])
    with pytest.raises(ValueError, match="`corruption`"):
        C.corrupted_test_sets("cifar10", ["fog", "smog"])
    with pytest.raises(FileNotFoundError, match=r"frost\.npy"):
        C.corrupted_test_sets(tmp_path, ["fog", "frost"])  # a later file is missing
    with pytest.raises(ValueError, match="`source`.*'cifar10'"):
        C.corrupted_test_sets("cifar100")
    with pytest.raises(ValueError, match="`max_examples`"):
        C.corrupted_test_sets("cifar10", max_examples=0)
