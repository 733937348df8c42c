"""Tests for the `freetickets_tf.models` registry."""

import doctest

import numpy as np
import pytest

from freetickets_tf import models

_FIXED = {
    "wrn-28-10": (32, 32, 3),
    "wrn-28-2": (32, 32, 3),
    "wrn-22-8": (32, 32, 3),
    "wrn-16-8": (32, 32, 3),
    "wrn-16-10": (32, 32, 3),
    "lenet5": (28, 28, 1),
    "lenet300-100": (28, 28, 1),
    "mlp-cifar10": (32, 32, 3),
    "vgg-c": (32, 32, 3),
    "vgg-d": (32, 32, 3),
    "vgg-like": (32, 32, 3),
    "resnet18": (32, 32, 3),
    "resnet34": (32, 32, 3),
    "resnet50": (224, 224, 3),
}


def test_available_models():
    assert sorted(models.available_models()) == sorted(_FIXED)


# Model names and trainable parameters with `num_classes` logits, from the
# hand counts of the original PyTorch models in test_vgg.py and
# test_resnet.py: (name, count for 10 classes, inputs of the logits layer).
_NEW_MODELS = {
    "vgg-c": ("vgg16_c", 11_323_466, 512),
    "vgg-d": ("vgg16_d", 15_255_626, 512),
    "vgg-like": ("vgg16_like", 14_991_946, 512),
    "resnet18": ("resnet18", 11_173_962, 512),
    "resnet34": ("resnet34", 21_282_122, 512),
    # 25,557,032 for torchvision's 1000 classes.
    "resnet50": ("resnet50", 25_557_032 - 990 * (2048 + 1), 2048),
}


@pytest.mark.parametrize("name", sorted(_FIXED))
def test_get_builds_each_fixed_name(name):
    model = models.get(name, num_classes=100)
    assert model.input_shape == (None,) + _FIXED[name]
    assert model.output_shape == (None, 100)
    if name in _NEW_MODELS:
        model_name, count_10, features = _NEW_MODELS[name]
        assert model.name == model_name
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == count_10 + 90 * (features + 1)


@pytest.mark.parametrize(
    "name, input_shape",
    [
        ("wrn-16-4", None),
        ("lenet5", None),
        ("mlp-cifar10", None),
        ("vgg-c", None),
        ("resnet18", (16, 16, 3)),
        ("resnet50", (64, 64, 3)),
    ],
)
def test_get_models_run_on_a_tiny_batch(name, input_shape):
    model = models.get(name, input_shape=input_shape)
    images = np.zeros((1,) + model.input_shape[1:], "float32")
    assert tuple(model(images).shape) == (1, 10)


def test_get_parses_any_wide_resnet():
    model = models.get("wrn-16-4")
    assert model.name == "wrn_16_4"
    assert model.get_layer("logits").kernel.shape == (256, 10)


def test_get_passes_input_shape():
    model = models.get("mlp-cifar10", input_shape=(28, 28, 1))
    assert model.input_shape == (None, 28, 28, 1)


def test_models_use_only_plain_keras_layers():
    # `sparsify` clones models and swaps layers by their Keras class.
    for name in ("wrn-16-4", "lenet5", "lenet300-100", "mlp-cifar10",
                 "vgg-c", "resnet18", "resnet50"):
        for layer in models.get(name).layers:
            assert type(layer).__module__.startswith("keras.")


@pytest.mark.parametrize(
    "name", ["resnet101", "vgg-e", "VGG-D", "wrn-28", "WRN_28_10", ""]
)
def test_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError, match="Unknown model name") as error:
        models.get(name)
    for valid in _FIXED:
        assert valid in str(error.value)


def test_invalid_wide_resnet_depth_raises():
    with pytest.raises(ValueError, match="depth"):
        models.get("wrn-27-10")


def test_new_builders_are_exported():
    for builder in ("vgg16", "resnet18", "resnet34", "resnet50"):
        assert builder in models.__all__
        assert callable(getattr(models, builder))


def test_docstring_examples():
    assert doctest.testmod(models).failed == 0


def test_get_builds_wider_lenet5():
    wide = models.get("lenet5-x4", num_classes=10)
    # conv 80 filters, conv 200, dense 2000 (x4 of 20, 50, 500)
    expected = (5 * 5 * 1 * 80 + 80) + (5 * 5 * 80 * 200 + 200) + (
        4 * 4 * 200 * 2000 + 2000) + (2000 * 10 + 10)
    assert sum(int(np.prod(w.shape)) for w in wide.trainable_weights) == expected
    with pytest.raises(ValueError, match="lenet5-x0"):
        models.get("lenet5-x0")


def test_get_builds_an_mlp_of_any_widths():
    model = models.get("mlp-2048-1024", num_classes=10)
    assert [layer.units for layer in model.layers if hasattr(layer, "units")] == [
        2048, 1024, 10]
    assert model.input_shape == (None, 28, 28, 1)
    # 28*28*2048 + 2048 + 2048*1024 + 1024 + 1024*10 + 10
    assert model.count_params() == 3_716_106
    same = models.get("mlp-1024-512", input_shape=(32, 32, 3))
    assert same.count_params() == models.get("mlp-cifar10").count_params()
    for bad in ("mlp-", "mlp-0", "mlp-12-x"):
        with pytest.raises(ValueError, match="mlp-<units>"):
            models.get(bad)
