"""Tests for `freetickets_tf.models.lenet`."""

import doctest

import keras
import numpy as np
import pytest

from freetickets_tf.models import lenet as lenet_module
from freetickets_tf.models.lenet import lenet300_100
from freetickets_tf.models.lenet import lenet5


def test_lenet5_param_count():
    assert lenet5().count_params() == 431_080


def test_lenet5_width_2_param_count():
    conv1 = 5 * 5 * 1 * 40 + 40
    conv2 = 5 * 5 * 40 * 100 + 100
    fc3 = 4 * 4 * 100 * 1000 + 1000
    logits = 1000 * 10 + 10
    model = lenet5(width=2)
    assert model.count_params() == conv1 + conv2 + fc3 + logits
    assert model.name == "lenet5_x2"


def test_lenet5_layers_are_caffe_lenet():
    model = lenet5()
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [20, 50]
    for conv in convs:
        assert conv.kernel_size == (5, 5)
        assert conv.padding == "valid"
        assert conv.use_bias
    assert model.get_layer("flatten").output.shape == (None, 800)
    assert model.get_layer("fc3").units == 500


def test_lenet5_outputs_logits_on_a_batch():
    model = lenet5(num_classes=3)
    images = np.random.default_rng(0).random((4, 28, 28, 1), "float32")
    logits = np.asarray(model(images))
    assert logits.shape == (4, 3)
    # Logits, not probabilities: rows need not sum to one.
    assert model.get_layer("logits").activation is keras.activations.linear


def test_lenet300_100_param_count():
    model = lenet300_100()
    assert model.count_params() == 266_610
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "logits")] == [
        300,
        100,
        10,
    ]


def test_lenet300_100_outputs_logits_on_a_batch():
    model = lenet300_100(num_classes=5)
    images = np.zeros((2, 28, 28, 1), "float32")
    assert tuple(model(images).shape) == (2, 5)


def test_default_names():
    assert lenet5().name == "lenet5"
    assert lenet300_100().name == "lenet300_100"
    assert lenet5(name="mine").name == "mine"


@pytest.mark.parametrize(
    "build, kwargs",
    [
        (lenet5, {"num_classes": 0}),
        (lenet5, {"width": 0}),
        (lenet300_100, {"num_classes": 0}),
    ],
)
def test_invalid_arguments_raise(build, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        build(**kwargs)


def test_docstring_examples():
    assert doctest.testmod(lenet_module).failed == 0
