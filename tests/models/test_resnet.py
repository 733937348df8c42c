"""Tests for `freetickets_tf.models.resnet`."""

import doctest
import importlib
import math

import keras
import numpy as np
import pytest

from freetickets_tf.masking import sparsify
from freetickets_tf.models import resnet as resnet_module
from freetickets_tf.models.resnet import resnet18
from freetickets_tf.models.resnet import resnet34
from freetickets_tf.models.resnet import resnet50


def _conv_bn(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + 2 * c_out  # No conv bias.


def _expected_basic_params(blocks, num_classes, in_channels=3):
    """Counts the parameters of the PyTorch CIFAR ResNet by hand."""
    total = _conv_bn(3, in_channels, 64)
    channels = 64
    for stage, (num_blocks, width) in enumerate(
        zip(blocks, (64, 128, 256, 512))
    ):
        for block in range(num_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            total += _conv_bn(3, channels, width) + _conv_bn(3, width, width)
            if stride != 1 or channels != width:
                total += _conv_bn(1, channels, width)
            channels = width
    return total + channels * num_classes + num_classes


def _expected_bottleneck_params(blocks, num_classes, in_channels=3):
    """Counts the parameters of torchvision's bottleneck ResNet by hand."""
    total = _conv_bn(7, in_channels, 64)
    channels = 64
    for stage, (num_blocks, width) in enumerate(
        zip(blocks, (64, 128, 256, 512))
    ):
        for block in range(num_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            total += _conv_bn(1, channels, width)
            total += _conv_bn(3, width, width)
            total += _conv_bn(1, width, 4 * width)
            if stride != 1 or channels != 4 * width:
                total += _conv_bn(1, channels, 4 * width)
            channels = 4 * width
    return total + channels * num_classes + num_classes


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _convs(model):
    return [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]


@pytest.fixture(scope="module")
def r50():
    return resnet50()


@pytest.fixture(scope="module")
def r50_small():
    return resnet50(num_classes=10, input_shape=(64, 64, 3))


@pytest.fixture(scope="module")
def r18():
    return resnet18()


def test_hand_counts_are_the_known_ones():
    assert _expected_bottleneck_params((3, 4, 6, 3), 1000) == 25_557_032
    assert _expected_basic_params((2, 2, 2, 2), 10) == 11_173_962
    assert _expected_basic_params((3, 4, 6, 3), 10) == 21_282_122


def test_resnet50_trainable_params_match_torchvision(r50):
    assert _trainable(r50) == 25_557_032
    assert r50.input_shape == (None, 224, 224, 3)
    assert r50.output_shape == (None, 1000)


def test_resnet18_trainable_params(r18):
    assert _trainable(r18) == 11_173_962


def test_resnet34_trainable_params():
    assert _trainable(resnet34()) == 21_282_122


def test_cifar_params_match_hand_count_for_100_classes():
    model = resnet18(num_classes=100)
    assert _trainable(model) == _expected_basic_params((2, 2, 2, 2), 100)


def test_small_resnet50_has_the_same_count(r50_small):
    # Counts do not depend on the image size (global average pooling).
    assert _trainable(r50_small) == _expected_bottleneck_params(
        (3, 4, 6, 3), 10
    )


def test_resnet50_shapes(r50):
    assert r50.get_layer("stem_conv").output.shape == (None, 112, 112, 64)
    assert r50.get_layer("stem_pool").output.shape == (None, 56, 56, 64)
    assert r50.get_layer("stage1_block3_out_relu").output.shape == (
        None, 56, 56, 256
    )
    assert r50.get_layer("stage4_block3_out_relu").output.shape == (
        None, 7, 7, 2048
    )


def test_resnet50_layout_is_torchvision(r50):
    convs = _convs(r50)
    assert len(convs) == 1 + 3 * 16 + 4
    for conv in convs:
        assert not conv.use_bias
        bn = r50.get_layer(conv.name.replace("conv", "bn"))
        assert bn.input is conv.output
    # The stride is on the 3x3 conv of the bottleneck.
    assert r50.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert r50.get_layer("stage2_block1_conv2").strides == (2, 2)
    assert r50.get_layer("stage2_block1_shortcut_conv").strides == (2, 2)
    # Only the first block of each stage projects.
    shortcuts = [c.name for c in convs if "shortcut" in c.name]
    assert shortcuts == [f"stage{s}_block1_shortcut_conv" for s in (1, 2, 3, 4)]
    assert r50.get_layer("logits").use_bias


def test_strided_convs_pad_symmetrically_like_pytorch(r50):
    for conv in _convs(r50):
        if conv.strides == (1, 1):
            assert conv.padding == "same"
            continue
        assert conv.padding == "valid"
        kernel = conv.kernel_size[0]
        if kernel > 1:
            pad = r50.get_layer(f"{conv.name}_pad")
            assert conv.input is pad.output
            half = kernel // 2
            assert pad.padding == ((half, half), (half, half))
    pool_pad = r50.get_layer("stem_pool_pad")
    assert r50.get_layer("stem_pool").input is pool_pad.output
    assert pool_pad.padding == ((1, 1), (1, 1))


@pytest.mark.parametrize("kernel", [3, 7])
def test_strided_conv_samples_the_pytorch_positions(kernel):
    # A kernel that picks its top-left tap reads input pixel
    # (2i - kernel // 2, 2j - kernel // 2), zero outside, as PyTorch's
    # conv(stride=2, padding=kernel // 2) does; Keras' "same" would read
    # (2i - (kernel - 2) // 2, ...) instead.
    inputs = keras.Input((8, 8, 1))
    outputs = resnet_module._conv(inputs, 1, kernel, 2, "probe", lambda: "ones")
    model = keras.Model(inputs, outputs)
    weights = np.zeros((kernel, kernel, 1, 1), "float32")
    weights[0, 0] = 1.0
    model.get_layer("probe").kernel.assign(weights)
    image = np.arange(1, 65, dtype="float32").reshape(1, 8, 8, 1)
    got = np.asarray(model(image))[0, :, :, 0]
    half = kernel // 2
    padded = np.pad(image[0, :, :, 0], half)
    expected = padded[0:8:2, 0:8:2]
    np.testing.assert_array_equal(got, expected)


def test_resnet18_layout(r18):
    assert r18.get_layer("stem_conv").kernel_size == (3, 3)
    assert r18.get_layer("stem_conv").strides == (1, 1)
    assert not any(
        isinstance(l, keras.layers.MaxPooling2D) for l in r18.layers
    )
    convs = _convs(r18)
    assert len(convs) == 1 + 8 * 2 + 3
    assert all(not c.use_bias for c in convs)
    shortcuts = [c.name for c in convs if "shortcut" in c.name]
    assert shortcuts == [f"stage{s}_block1_shortcut_conv" for s in (2, 3, 4)]
    assert r18.get_layer("stage2_block1_conv1").strides == (2, 2)
    assert r18.get_layer("avg_pool").input.shape == (None, 4, 4, 512)
    # Post-activation: the sum goes through a ReLU.
    assert (
        r18.get_layer("stage1_block1_out_relu").input
        is r18.get_layer("stage1_block1_add").output
    )


def test_conv_init_is_he_normal_fan_out(r18):
    kernel = r18.get_layer("stage3_block2_conv1").kernel.numpy()
    assert kernel.shape == (3, 3, 256, 256)
    expected_std = math.sqrt(2.0 / (3 * 3 * 256))
    assert abs(kernel.std() - expected_std) < 0.05 * expected_std


def test_batch_norm_uses_pytorch_defaults(r18):
    bns = [
        l for l in r18.layers if isinstance(l, keras.layers.BatchNormalization)
    ]
    assert len(bns) == len(_convs(r18))
    for bn in bns:
        assert bn.momentum == pytest.approx(0.9)
        assert bn.epsilon == pytest.approx(1e-5)


def test_sparsified_resnet18_predicts(r18):
    sparse = sparsify(r18, 0.2, seed=0)
    images = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
    logits = np.asarray(sparse(images, training=False))
    assert logits.shape == (2, 10)
    assert np.all(np.isfinite(logits))


def test_sparsified_resnet34_predicts():
    model = resnet34(num_classes=7, input_shape=(16, 16, 3), name="mine")
    assert model.name == "mine"
    sparse = sparsify(model, 0.2, seed=0)
    images = np.random.default_rng(0).random((1, 16, 16, 3), "float32")
    assert tuple(sparse(images, training=False).shape) == (1, 7)


def test_sparsified_resnet50_predicts(r50_small):
    sparse = sparsify(r50_small, 0.2, seed=0)
    images = np.random.default_rng(0).random((2, 64, 64, 3), "float32")
    logits = np.asarray(sparse(images, training=False))
    assert logits.shape == (2, 10)
    assert np.all(np.isfinite(logits))
    assert sparse.output_shape == r50_small.output_shape


def test_names(r18, r50):
    assert r18.name == "resnet18"
    assert r50.name == "resnet50"


@pytest.mark.parametrize("builder", [resnet18, resnet34, resnet50])
def test_invalid_num_classes_raises(builder):
    with pytest.raises(ValueError, match="num_classes"):
        builder(num_classes=0)


def test_docstring_examples():
    module = importlib.import_module("freetickets_tf.models.resnet")
    assert doctest.testmod(module).failed == 0
