"""Tests for `freetickets_tf.models.vgg`."""

import doctest
import importlib

import keras
import numpy as np
import pytest

from freetickets_tf.masking import sparsify
from freetickets_tf.models.vgg import vgg16

# The features of the original PyTorch VGG16, written out by hand as
# (kernel size, input channels, output channels) per conv and "M" per pool.
_FEATURES_D = [
    (3, 3, 64), (3, 64, 64), "M",
    (3, 64, 128), (3, 128, 128), "M",
    (3, 128, 256), (3, 256, 256), (3, 256, 256), "M",
    (3, 256, 512), (3, 512, 512), (3, 512, 512), "M",
    (3, 512, 512), (3, 512, 512), (3, 512, 512), "M",
]
_FEATURES_C = [
    (3, 3, 64), (3, 64, 64), "M",
    (3, 64, 128), (3, 128, 128), "M",
    (3, 128, 256), (3, 256, 256), (1, 256, 256), "M",
    (3, 256, 512), (3, 512, 512), (1, 512, 512), "M",
    (3, 512, 512), (3, 512, 512), (1, 512, 512), "M",
]
_FEATURES = {"C": _FEATURES_C, "D": _FEATURES_D, "like": _FEATURES_D}

# Trainable parameters of the original for 10 classes and 32x32x3 inputs.
_EXPECTED = {"C": 11_323_466, "D": 15_255_626, "like": 14_991_946}


def _expected_params(variant, num_classes=10, image_size=32):
    """Counts the parameters of the original PyTorch VGG16 by hand.

    Every conv pads by 1, so a 3x3 conv keeps the map size and a 1x1 conv
    grows it by 2; every pool halves it.
    """
    total = 0
    size = image_size
    channels = None
    for entry in _FEATURES[variant]:
        if entry == "M":
            size //= 2
            continue
        kernel, c_in, c_out = entry
        total += kernel * kernel * c_in * c_out + c_out  # Conv with bias.
        total += 2 * c_out  # BN scale and offset.
        size += 2 - (kernel - 1)
        channels = c_out
    features = size * size * channels
    hidden = (512,) if variant == "like" else (512, 512)
    for units in hidden:
        total += features * units + units + 2 * units  # Dense, BN.
        features = units
    return total + features * num_classes + num_classes


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def models():
    return {variant: vgg16(variant) for variant in ("C", "D", "like")}


def test_hand_counts_are_the_originals():
    for variant, expected in _EXPECTED.items():
        assert _expected_params(variant) == expected
    # The conv features alone: D and like share them; C swaps three 3x3
    # convs for 1x1 ones, 8 * (256^2 + 2 * 512^2) weights fewer.
    assert _expected_params("D") - _expected_params("like") == 512 * 512 + (
        512 + 2 * 512
    )


@pytest.mark.parametrize("variant", ["C", "D", "like"])
def test_trainable_params_match_the_original(models, variant):
    assert _trainable(models[variant]) == _EXPECTED[variant]


@pytest.mark.parametrize("variant, num_classes", [("C", 100), ("like", 7)])
def test_trainable_params_match_hand_count_for_other_classes(
    variant, num_classes
):
    model = vgg16(variant, num_classes=num_classes)
    assert _trainable(model) == _expected_params(variant, num_classes)


def test_classifier_inputs(models):
    # C's padded 1x1 convs grow the 32x32 map to 2x2 after the last pool.
    assert models["C"].get_layer("flatten").output.shape == (None, 2048)
    assert models["D"].get_layer("flatten").output.shape == (None, 512)
    assert models["like"].get_layer("flatten").output.shape == (None, 512)
    assert models["C"].get_layer("block3_conv3").output.shape == (
        None, 10, 10, 256
    )


def test_classifier_layers(models):
    for variant in ("C", "D"):
        names = [l.name for l in models[variant].layers]
        start = names.index("flatten")
        assert names[start:] == [
            "flatten", "fc1", "fc1_relu", "fc1_bn",
            "fc2", "fc2_relu", "fc2_bn", "logits",
        ]
    names = [l.name for l in models["like"].layers]
    assert names[names.index("flatten"):] == [
        "flatten", "fc1", "fc1_relu", "fc1_bn", "logits"
    ]
    assert models["like"].get_layer("fc1").units == 512


def test_convs(models):
    for variant, model in models.items():
        convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
        expected = [e for e in _FEATURES[variant] if e != "M"]
        assert len(convs) == 13
        for conv, (kernel, _, filters) in zip(convs, expected):
            assert conv.kernel_size == (kernel, kernel)
            assert conv.filters == filters
            assert conv.use_bias
            assert conv.strides == (1, 1)
            # 3x3 "same" is PyTorch's padding 1; a 1x1 conv pads explicitly.
            assert conv.padding == ("same" if kernel == 3 else "valid")
    c = models["C"]
    for name in ("block3_conv3", "block4_conv3", "block5_conv3"):
        assert c.get_layer(name).input is c.get_layer(f"{name}_pad").output
        assert c.get_layer(f"{name}_pad").padding == ((1, 1), (1, 1))


def test_every_conv_is_followed_by_bn_and_relu(models):
    model = models["D"]
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            bn = model.get_layer(f"{layer.name}_bn")
            assert bn.input is layer.output
            assert bn.momentum == pytest.approx(0.9)
            assert bn.epsilon == pytest.approx(1e-5)
            relu = model.get_layer(f"{layer.name}_relu")
            assert relu.input is bn.output
    pools = [
        l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)
    ]
    assert [p.pool_size for p in pools] == [(2, 2)] * 5


@pytest.mark.parametrize("variant", ["C", "D", "like"])
def test_sparsified_model_predicts(models, variant):
    model = models[variant]
    sparse = sparsify(model, 0.2, seed=0)
    images = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
    logits = np.asarray(sparse(images, training=False))
    assert logits.shape == (2, 10)
    assert np.all(np.isfinite(logits))
    assert sparse.output_shape == model.output_shape


def test_names_and_shapes(models):
    for variant, model in models.items():
        assert model.name == f"vgg16_{variant.lower()}"
        assert model.input_shape == (None, 32, 32, 3)
        assert model.output_shape == (None, 10)
    model = vgg16("like", num_classes=5, input_shape=(64, 64, 1), name="mine")
    assert model.name == "mine"
    assert model.input_shape == (None, 64, 64, 1)
    assert model.output_shape == (None, 5)
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 512)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variant": "E"}, r"variant.*\['D', 'like', 'C'\]"),
        ({"variant": "d"}, "variant"),
        ({"num_classes": 0}, "num_classes"),
        ({"input_shape": (16, 16, 3)}, "input_shape"),
        ({"input_shape": (32, 32)}, "input_shape"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vgg16(**kwargs)


def test_docstring_examples():
    module = importlib.import_module("freetickets_tf.models.vgg")
    assert doctest.testmod(module).failed == 0
