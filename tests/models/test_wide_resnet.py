"""Tests for `freetickets_tf.models.wide_resnet`."""

import doctest
import importlib
import math

import keras
import numpy as np
import pytest

from freetickets_tf.models.wide_resnet import wide_resnet


def _expected_params(depth, width, num_classes, in_channels=3):
    """Counts the parameters of the original PyTorch WideResNet by hand."""
    num_blocks = (depth - 4) // 6
    total = 9 * in_channels * 16  # Stem conv, no bias.
    channels = 16
    for group, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(num_blocks):
            strides = 2 if group > 0 and block == 0 else 1
            total += 2 * channels + 9 * channels * filters  # BN, conv1.
            total += 2 * filters + 9 * filters * filters  # BN, conv2.
            if channels != filters or strides != 1:
                total += channels * filters  # 1x1 projection shortcut.
            channels = filters
    return total + 2 * channels + channels * num_classes + num_classes


def _convs(model):
    return [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]


@pytest.fixture(scope="module")
def wrn_28_10():
    return wide_resnet(depth=28, width=10, num_classes=10)


def test_wrn_28_10_trainable_params_match_pytorch(wrn_28_10):
    trainable = sum(int(np.prod(w.shape)) for w in wrn_28_10.trainable_weights)
    assert trainable == 36_479_194
    assert _expected_params(28, 10, 10) == 36_479_194


@pytest.mark.parametrize(
    "depth, width, num_classes", [(10, 1, 10), (16, 4, 10), (28, 2, 100)]
)
def test_trainable_params_match_hand_count(depth, width, num_classes):
    model = wide_resnet(depth=depth, width=width, num_classes=num_classes)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == _expected_params(depth, width, num_classes)


def test_wrn_28_10_has_28_bias_free_convs(wrn_28_10):
    convs = _convs(wrn_28_10)
    assert len(convs) == 1 + 3 * 4 * 2 + 3
    for conv in convs:
        assert not conv.use_bias
        assert conv.padding == "same"
        assert len(conv.weights) == 1


def test_conv_init_std_is_he_normal_fan_out(wrn_28_10):
    kernel = wrn_28_10.get_layer("group1_block2_conv1").kernel.numpy()
    assert kernel.shape == (3, 3, 160, 160)
    expected_std = math.sqrt(2.0 / (3 * 3 * 160))
    assert abs(kernel.std() - expected_std) < 0.1 * expected_std
    assert abs(kernel.mean()) < 0.1 * expected_std


def test_batch_norm_uses_pytorch_defaults(wrn_28_10):
    bns = [
        l
        for l in wrn_28_10.layers
        if isinstance(l, keras.layers.BatchNormalization)
    ]
    assert len(bns) == 3 * 4 * 2 + 1
    for bn in bns:
        assert bn.momentum == pytest.approx(0.9)
        assert bn.epsilon == pytest.approx(1e-5)
        np.testing.assert_array_equal(bn.gamma.numpy(), 1.0)
        np.testing.assert_array_equal(bn.beta.numpy(), 0.0)


def test_classifier_uses_pytorch_linear_init(wrn_28_10):
    logits = wrn_28_10.get_layer("logits")
    assert logits.kernel.shape == (640, 10)
    assert logits.activation is keras.activations.linear
    np.testing.assert_array_equal(logits.bias.numpy(), 0.0)
    bound = 1.0 / math.sqrt(640)
    assert np.abs(logits.kernel.numpy()).max() <= bound


def test_wrn_16_4_output_shape_on_a_batch():
    model = wide_resnet(depth=16, width=4, num_classes=7)
    images = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
    logits = model(images, training=False)
    assert tuple(logits.shape) == (2, 7)
    assert np.all(np.isfinite(logits))


def test_only_first_block_of_each_group_projects():
    model = wide_resnet(depth=16, width=4)
    shortcuts = [c.name for c in _convs(model) if c.kernel_size == (1, 1)]
    assert shortcuts == [
        "group1_block1_shortcut_conv",
        "group2_block1_shortcut_conv",
        "group3_block1_shortcut_conv",
    ]


def test_width_1_first_block_is_identity():
    # 16 -> 16 channels at stride 1, so the first group needs no projection.
    model = wide_resnet(depth=10, width=1)
    shortcuts = [c.name for c in _convs(model) if c.kernel_size == (1, 1)]
    assert shortcuts == [
        "group2_block1_shortcut_conv",
        "group3_block1_shortcut_conv",
    ]


def test_projection_reads_the_pre_activated_input():
    model = wide_resnet(depth=16, width=4)
    shortcut = model.get_layer("group2_block1_shortcut_conv")
    assert shortcut.input is model.get_layer("group2_block1_preact_relu").output


def test_downsampling_strides():
    model = wide_resnet(depth=16, width=4)
    assert model.get_layer("group1_block1_conv1").strides == (1, 1)
    assert model.get_layer("group2_block1_conv1").strides == (2, 2)
    assert model.get_layer("group2_block2_conv1").strides == (1, 1)
    assert model.get_layer("group3_block1_shortcut_conv").strides == (2, 2)
    assert model.get_layer("head_relu").output.shape == (None, 8, 8, 256)


def test_names():
    assert wide_resnet(depth=10, width=1).name == "wrn_10_1"
    assert wide_resnet(depth=10, width=1, name="mine").name == "mine"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 27}, "depth"),
        ({"depth": 4}, "depth"),
        ({"depth": -2}, "depth"),
        ({"width": 0}, "width"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wide_resnet(**kwargs)


def test_docstring_examples():
    # The package re-exports the builder under the module's own name, so the
    # module itself is only reachable through the import system.
    module = importlib.import_module("freetickets_tf.models.wide_resnet")
    assert doctest.testmod(module).failed == 0
