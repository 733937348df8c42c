"""Tests for `freetickets_tf.models.mlp`."""

import doctest
import importlib

import keras
import numpy as np
import pytest

from freetickets_tf.models.mlp import mlp_cifar10

# The package re-exports the `mlp` builder, which hides the module's name.
mlp_module = importlib.import_module("freetickets_tf.models.mlp")


def test_param_count():
    expected = 3072 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 10 + 10
    assert mlp_cifar10().count_params() == expected


def test_outputs_logits_on_a_batch():
    model = mlp_cifar10(num_classes=100)
    images = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
    assert tuple(model(images).shape) == (2, 100)
    assert model.get_layer("logits").activation is keras.activations.linear


def test_name():
    assert mlp_cifar10().name == "mlp_cifar10"
    assert mlp_cifar10(name="mine").name == "mine"


def test_invalid_num_classes_raises():
    with pytest.raises(ValueError, match="num_classes"):
        mlp_cifar10(num_classes=0)


def test_docstring_examples():
    assert doctest.testmod(mlp_module).failed == 0
