"""The zoo starts from the original's initial weights: PyTorch's own layers
sampled side by side (bounds and variance within sampling error)."""

import math

import keras
import numpy as np
import pytest
import torch

from freetickets_tf import models


def _torch_layers(name):
    """The original's layers (sparselearning/models.py), by our layer names."""
    torch.manual_seed(0)
    if name == "lenet5":
        return {"conv1": torch.nn.Conv2d(1, 20, 5), "conv2": torch.nn.Conv2d(20, 50, 5),
                "fc3": torch.nn.Linear(800, 500), "logits": torch.nn.Linear(500, 10)}
    if name == "lenet300-100":
        return {"fc1": torch.nn.Linear(784, 300), "fc2": torch.nn.Linear(300, 100),
                "logits": torch.nn.Linear(100, 10)}
    return {"fc1": torch.nn.Linear(3072, 1024), "fc2": torch.nn.Linear(1024, 512),
            "logits": torch.nn.Linear(512, 10)}


def _check_uniform_like_torch(ours, theirs, bound):
    """Both samples lie in [-bound, bound], and their variances agree with
    bound^2 / 3 (the uniform's) and with each other within 5 standard errors."""
    expected = bound**2 / 3
    for sample in (ours, theirs):
        assert np.abs(sample).max() <= bound * (1 + 1e-6)
        # The sample variance of U(-b, b) has standard error sqrt(0.8 / n) * var.
        error = math.sqrt(0.8 / sample.size) * expected
        assert abs(sample.var() - expected) < 5 * error
    error = math.sqrt(0.8 / ours.size + 0.8 / theirs.size) * expected
    assert abs(ours.var() - theirs.var()) < 5 * error
    if ours.size >= 1000:  # the extremes reach the bound
        assert np.abs(ours).max() > 0.99 * bound


@pytest.mark.parametrize("name", ["lenet5", "lenet300-100", "mlp-cifar10"])
def test_original_initialisation_is_pytorch_default(name):
    keras.utils.set_random_seed(0)
    model = models.get(name)
    for layer_name, reference in _torch_layers(name).items():
        layer = model.get_layer(layer_name)
        fan_in = reference.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        assert kernel.size == reference.weight.numel()
        _check_uniform_like_torch(kernel, reference.weight.detach().numpy(), bound)
        bias = keras.ops.convert_to_numpy(layer.bias)
        _check_uniform_like_torch(bias, reference.bias.detach().numpy(), bound)


@pytest.mark.parametrize("name", ["lenet5", "lenet300-100", "mlp-cifar10", "wrn-10-1"])
def test_glorot_is_reachable(name):
    keras.utils.set_random_seed(0)
    model = models.get(name, initializer="glorot")
    dense = model.get_layer("logits")
    kernel = keras.ops.convert_to_numpy(dense.kernel)
    limit = math.sqrt(6 / sum(kernel.shape))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.bias), 0)


def test_vgg_biases_and_resnet50_classifier_follow_pytorch():
    keras.utils.set_random_seed(0)
    vgg = models.get("vgg-like", input_shape=(32, 32, 3))
    conv = vgg.get_layer("block2_conv1")  # 3x3 over 64 channels
    bias = keras.ops.convert_to_numpy(conv.bias)
    assert np.abs(bias).max() <= 1 / math.sqrt(9 * 64) and bias.std() > 0
    resnet = models.get("resnet50", num_classes=1000, input_shape=(32, 32, 3))
    head = keras.ops.convert_to_numpy(resnet.get_layer("logits").bias)
    _check_uniform_like_torch(head, torch.nn.Linear(2048, 1000).bias.detach().numpy(),
                              1 / math.sqrt(2048))
    # `-c fanin` of the original's ImageNet command: std sqrt(2 / fan_in).
    conv = keras.ops.convert_to_numpy(resnet.get_layer("stage4_block1_conv2").kernel)
    np.testing.assert_allclose(conv.std(), math.sqrt(2 / (9 * 512)), rtol=0.01)


def test_wide_resnet_keeps_its_fan_out_convs_and_zero_classifier_bias():
    keras.utils.set_random_seed(0)
    model = models.get("wrn-16-4")
    conv = keras.ops.convert_to_numpy(model.get_layer("group3_block1_conv2").kernel)
    np.testing.assert_allclose(conv.std(), math.sqrt(2 / (9 * 256)), rtol=0.02)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(
        model.get_layer("logits").bias), 0)


@pytest.mark.parametrize("name", ["lenet5", "wrn-10-1", "vgg-d", "resnet18"])
def test_unknown_initializer_names_the_allowed_values(name):
    with pytest.raises(ValueError, match="initializer.*'original', 'glorot'"):
        models.get(name, initializer="he")
