"""Augmentation and normalisation of the training sets against numpy
references, and the original's normalisation constants."""

import numpy as np
import pytest

import freetickets_tf as ft


# --- augmentation and normalisation against numpy ---------------------------------

def candidates(image, padding, mode, flip):
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode=mode)
    h, w = image.shape[:2]
    windows = [padded[dy:dy + h, dx:dx + w]
               for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    if flip:
        windows += [window[:, ::-1] for window in windows]
    return {window.tobytes(): window for window in windows}


@pytest.mark.parametrize("augment, mode, padding", [
    ("reflect_crop_flip", "reflect", 2),
    ("crop_flip", "constant", 2),
    ("crop", "constant", 1),
    ("reflect_crop", "reflect", 3),
    ("flip", None, 0),
])
def test_augmentation_matches_numpy(augment, mode, padding, batches):
    # One hand-made image with distinct pixel values (non-square, 2 channels),
    # repeated: every output must be one of numpy's windows of the padded
    # image (flipped or not), and every window must turn up.
    image = (np.arange(5 * 6 * 2).reshape(5, 6, 2) + 1).astype("float32")
    n = 600
    train = ft.data.from_arrays(np.repeat(image[None], n, 0), np.zeros(n, int),
                                batch_size=128, seed=0, augment=augment,
                                padding=padding)
    out = np.concatenate([b[0] for b in batches(train.epoch(0))])
    flip = "flip" in augment
    expected = (candidates(image, padding, mode, flip) if mode
                else {image.tobytes(): image, image[:, ::-1].tobytes(): image[:, ::-1]})
    seen = {o.tobytes() for o in out}
    assert seen <= set(expected)
    assert seen == set(expected)
    if mode == "constant":
        assert (out == 0).any()


def test_cifar_padding_defaults_to_4_and_reflection_is_valid():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    assert ft.data.from_arrays(x, [0, 1], 2, augment="crop_flip").padding == 4
    with pytest.raises(ValueError, match="padding"):
        ft.data.from_arrays(x[:, :3, :3], [0, 1], 2, augment="reflect_crop", padding=3)


def test_normalisation_matches_numpy(batches, labelled_images):
    x, y = labelled_images(20)
    mean, std = ft.data.NORMALIZATION["cifar100"]
    train = ft.data.from_arrays(x, y, batch_size=8, mean=mean, std=std)
    for images, labels in batches(train.epoch(0)):
        expected = (x[labels] / 255.0 - np.array(mean)) / np.array(std)
        np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)
    plain = ft.data.from_arrays(x, y, batch_size=8)  # uint8: scaled only
    images, labels = batches(plain.epoch(0))[0]
    np.testing.assert_allclose(images, x[labels] / 255.0, rtol=1e-6)
    floats = ft.data.from_arrays(x.astype("float64"), y, batch_size=8)  # as they are
    images, labels = batches(floats.epoch(0))[0]
    np.testing.assert_array_equal(images, x[labels].astype("float32"))
    any_shape = ft.data.from_arrays(np.ones((5, 7), "float32"), np.arange(5), 2)
    assert batches(any_shape.epoch(0))[0][0].shape == (2, 7)


def test_original_normalisation_constants():
    # VITA-Group/FreeTickets, sparselearning/utils.py.
    assert ft.data.NORMALIZATION["cifar10"] == (
        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert ft.data.NORMALIZATION["cifar100"][0][0] == 0.5070751592371323
    assert ft.data.NORMALIZATION["imagenet2012"] == (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("kwargs, match", [
    (dict(augment="rotate"), "Allowed values: 'crop_flip'"),
    (dict(augment="crop", padding=-1), "padding"),
    (dict(mean=(0.5,) * 3), "both `mean` and `std`"),
    (dict(mean=(0.5,) * 2, std=(1,) * 2), "3 channels"),
    (dict(mean=(0.5,) * 3, std=(0, 1, 1)), "std"),
    (dict(batch_size=0), "batch_size"),
    (dict(seed=-1), "seed"),
])
def test_from_arrays_errors(kwargs, match, labelled_images):
    x, y = labelled_images(4)
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        ft.data.from_arrays(x, y, **kwargs)


def test_from_arrays_data_errors(labelled_images):
    x, y = labelled_images(4)
    with pytest.raises(ValueError, match="labels of shape"):
        ft.data.from_arrays(x, y[:3], 2)
    with pytest.raises(ValueError, match="integer labels"):
        ft.data.from_arrays(x, y.astype("float32"), 2)
    with pytest.raises(ValueError, match=r"\(n, h, w, c\)"):
        ft.data.from_arrays(x[..., 0], y, 2, augment="flip")


def test_every_path_scales_pixels_to_the_same_floats(tmp_path, batches):
    """One preprocessing definition: the training pipeline (tf.data), the
    numpy evaluation path, the `.npz` loader and the corruption loader give
    bit-identical inputs for the same uint8 pixels."""
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 4, 4, 1)
    labels = np.arange(16)
    want = pixels.astype("float32") * np.float32(1.0 / 255.0)  # the rule, by hand
    train = ft.data.from_arrays(pixels, labels, batch_size=16)
    (images, order), = batches(train.epoch(0))
    np.testing.assert_array_equal(images, want[order])
    np.testing.assert_array_equal(
        ft.data.apply_preprocessing(pixels, train.preprocessing()), want)
    np.savez(tmp_path / "set.npz", x_train=pixels, y_train=labels, x_test=pixels, y_test=labels)
    np.testing.assert_array_equal(ft.data.load_npz(tmp_path / "set.npz")[0][0], want)
    np.testing.assert_array_equal(ft.data.to_unit_range(pixels), want)
    mean, std = (0.25,), (0.5,)
    normalized = ft.data.from_arrays(pixels, labels, batch_size=16, mean=mean, std=std)
    (images, order), = batches(normalized.epoch(0))
    np.testing.assert_array_equal(
        images, ft.data.apply_preprocessing(pixels, normalized.preprocessing())[order])


def test_integer_pixels_other_than_uint8_are_refused(tmp_path):
    # int64 pixels in 0..255 would otherwise pass unscaled: 255x too large.
    with pytest.raises(ValueError, match="`x` dtype int64.*uint8"):
        ft.data.to_unit_range(np.zeros((2, 4, 4, 1), "int64"))
    np.savez(tmp_path / "ints.npz", x_train=np.zeros((2, 4, 4), "int64"),
             y_train=np.zeros(2), x_test=np.zeros((2, 4, 4), "int64"), y_test=np.zeros(2))
    with pytest.raises(ValueError, match="dtype int64"):
        ft.data.load_npz(tmp_path / "ints.npz")


@pytest.mark.parametrize("old, new", [("pipelines", "data"), ("corruptions", "data.corruptions")])
def test_old_module_names_still_work_and_say_the_new_one(old, new):
    import importlib
    import sys

    sys.modules.pop(f"freetickets_tf.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"freetickets_tf.{new}`"):
        module = importlib.import_module(f"freetickets_tf.{old}")
    target = importlib.import_module(f"freetickets_tf.{new}")
    for name in target.__all__:
        assert getattr(module, name) is getattr(target, name)
