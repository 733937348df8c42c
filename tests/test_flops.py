"""FLOP counts (SPEC §6): per layer by hand, sparse scaling, graphs, WRN-28-10."""

import doctest
import math

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import flops
from freetickets_tf import layers as fl
from freetickets_tf.models import wide_resnet


def _model(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers])


# (input shape without batch, layer, FLOPs of one example worked out by hand)
LAYER_CASES = [
    pytest.param((3,), keras.layers.Dense(4), 2 * 3 * 4, id="dense"),
    pytest.param(
        (5, 3), keras.layers.Dense(4), 2 * 3 * 4 * 5, id="dense-rank3-per-position"
    ),
    pytest.param(
        (8, 8, 2),
        keras.layers.Conv2D(5, 3, padding="same"),
        2 * 3 * 3 * 2 * 5 * 8 * 8,
        id="conv2d-same",
    ),
    pytest.param(
        (9, 9, 3),
        keras.layers.Conv2D(4, 3, strides=2, padding="valid"),
        2 * 3 * 3 * 3 * 4 * 4 * 4,  # (9 - 3) // 2 + 1 = 4
        id="conv2d-strided-valid",
    ),
    pytest.param(
        (3, 6, 6),
        keras.layers.Conv2D(4, 3, data_format="channels_first"),
        2 * 3 * 3 * 3 * 4 * 4 * 4,
        id="conv2d-channels-first",
    ),
    pytest.param(
        (5, 5, 4),
        keras.layers.Conv2D(6, 3, padding="same", groups=2),
        2 * 3 * 3 * (4 // 2) * 6 * 5 * 5,
        id="conv2d-grouped",
    ),
    pytest.param(
        (10, 3), keras.layers.Conv1D(4, 3), 2 * 3 * 3 * 4 * 8, id="conv1d"
    ),
    pytest.param(
        (4, 4, 4, 2),
        keras.layers.Conv3D(3, 2),
        2 * 2 * 2 * 2 * 2 * 3 * 3 * 3 * 3,
        id="conv3d",
    ),
    pytest.param(
        (7, 7, 3),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        2 * 3 * 3 * 3 * 2 * 7 * 7,
        id="depthwise",
    ),
    pytest.param(
        (7, 7, 3),
        keras.layers.SeparableConv2D(4, 3, depth_multiplier=2),
        2 * 3 * 3 * 3 * 2 * 5 * 5 + 2 * (3 * 2) * 4 * 5 * 5,
        id="separable",
    ),
    pytest.param(
        (6, 4),
        keras.layers.EinsumDense("abc,cd->abd", output_shape=(6, 7)),
        2 * 6 * 4 * 7,
        id="einsum",
    ),
    pytest.param(
        (6, 4),
        keras.layers.EinsumDense("...c,cd->...d", output_shape=7),
        2 * 6 * 4 * 7,
        id="einsum-ellipsis",
    ),
    pytest.param(
        (6, 4),
        keras.layers.EinsumDense("abc,cd->ad", output_shape=7),
        2 * 6 * 4 * 7,  # b is summed over, still one MAC per (b, c, d)
        id="einsum-reduction",
    ),
]


@pytest.mark.parametrize("input_shape, layer, expected", LAYER_CASES)
def test_layer_flops_by_hand(input_shape, layer, expected):
    model = _model(input_shape, layer)
    assert flops.layer_flops(model) == {layer.name: expected}
    assert flops.forward_flops(model, sparse=False) == expected


def test_ignored_layers_cost_nothing():
    model = _model(
        (8, 8, 2),
        keras.layers.Conv2D(5, 3, padding="same", use_bias=True),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    )
    assert list(flops.layer_flops(model)) == [model.layers[0].name, model.layers[-1].name]
    assert flops.forward_flops(model) == 2 * 9 * 2 * 5 * 64 + 2 * 5 * 3


def test_uncounted_kernel_layer_warns():
    model = _model((4, 4, 2), keras.layers.Conv2DTranspose(3, 2), keras.layers.Flatten())
    with pytest.warns(UserWarning, match="not counted.*Conv2DTranspose"):
        assert flops.layer_flops(model) == {}


def _set_mask(mask_variable, active):
    """Sets the first `active` positions (C order) of a mask, clears the rest."""
    flat = np.zeros(math.prod(mask_variable.shape), dtype=bool)
    flat[:active] = True
    mask_variable.assign(flat.reshape(mask_variable.shape))


def test_sparse_scales_masked_kernels_by_density():
    model = _model((10,), fl.MaskedDense(10, name="masked"), keras.layers.Dense(5, name="plain"))
    _set_mask(model.layers[0].kernel_mask, 30)  # density 0.3
    assert flops.layer_flops(model) == {"masked": 2 * 100 * 0.3, "plain": 2 * 50}
    assert flops.layer_flops(model, sparse=False) == {"masked": 200, "plain": 100}


def test_separable_parts_scale_by_their_own_density():
    layer = fl.MaskedSeparableConv2D(4, 3, depth_multiplier=2, name="sep")
    model = _model((7, 7, 3), layer)
    _set_mask(layer.depthwise_kernel_mask, 27)  # of 54: density 0.5
    _set_mask(layer.pointwise_kernel_mask, 6)  # of 24: density 0.25
    depthwise, pointwise = 2 * 54 * 25, 2 * 24 * 25
    assert flops.forward_flops(model) == 0.5 * depthwise + 0.25 * pointwise
    assert flops.forward_flops(model, sparse=False) == depthwise + pointwise


def test_sparsify_uniform_density_scales_forward_flops(mlp):
    sparse = ft.sparsify(mlp, 0.5, distribution="uniform", seed=0)
    dense = flops.forward_flops(mlp)
    assert flops.forward_flops(sparse, sparse=False) == dense
    # Uniform: exactly half of each (even-sized) kernel is active.
    assert flops.forward_flops(sparse) == dense / 2
    assert list(flops.layer_flops(sparse)) == ["hidden1", "hidden2", "logits"]


def test_nested_model_and_shared_layer_count_every_call():
    inner = _model((4,), keras.layers.Dense(6, name="inner_dense"))
    inner.name = "inner"
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((3,))
    a = shared(keras.layers.Dense(4, name="a")(inputs))
    b = shared(keras.layers.Dense(4, name="b")(inputs))
    outputs = keras.layers.Concatenate()([inner(a), inner(b)])
    model = keras.Model(inputs, outputs)
    assert flops.layer_flops(model) == {
        "a": 2 * 3 * 4,
        "b": 2 * 3 * 4,
        "shared": 2 * (2 * 4 * 4),
        "inner/inner_dense": 2 * (2 * 4 * 6),
    }


def test_calls_outside_the_model_are_not_counted():
    layer = keras.layers.Dense(4, name="d")
    model = _model((3,), layer)
    _model((3,), layer)  # another graph calls the same layer
    assert flops.layer_flops(model) == {"d": 24}


def test_subclassed_model_counts_each_layer_once_from_build_shapes():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, name="hidden")
            self.out = keras.layers.Dense(2, name="out")

        def call(self, x):
            return self.out(self.hidden(x))

    net = Net()
    net(np.zeros((5, 3), "float32"))
    assert flops.layer_flops(net) == {"hidden": 2 * 3 * 8, "out": 2 * 8 * 2}


def test_sparsified_functional_model_with_separable_and_depthwise():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs)
    x = keras.layers.SeparableConv2D(6, 3, padding="same", name="sep")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    sparse = ft.sparsify(model, 0.5, distribution="uniform", seed=0)
    expected = 0.0
    for mk in ft.masked_kernels(sparse):
        active = int(np.asarray(mk.mask).sum())
        expected += 2 * active * 64
    assert flops.forward_flops(sparse) == expected
    assert flops.forward_flops(sparse, sparse=False) == flops.forward_flops(model)


def test_training_formulas(mlp):
    sparse = ft.sparsify(mlp, 0.5, distribution="uniform", seed=0)
    f_s, f_d = flops.forward_flops(sparse), flops.forward_flops(sparse, sparse=False)
    assert flops.dense_training_flops(sparse, num_examples=100, epochs=3) == 3 * f_d * 300
    assert flops.dense_training_flops(sparse, 100) == 3 * f_d * 100
    assert flops.training_step_flops(sparse, 32) == 3 * f_s * 32
    assert flops.growth_pass_flops(sparse, 16) == (f_s + 2 * f_d) * 16


def test_ensemble_flops(mlp):
    members = [ft.sparsify(mlp, 0.5, distribution="uniform", seed=s) for s in (0, 1, 2)]
    f_d = flops.forward_flops(mlp)
    result = flops.ensemble_flops(members, [1e6, 2e6, 3e6], mlp, num_examples=100, epochs=2)
    assert result == {
        "training_flops": 6e6,
        "test_flops": 3 * f_d / 2,
        "relative_training_flops": 6e6 / (3 * f_d * 200),
        "relative_test_flops": 1.5,
    }
    single = flops.ensemble_flops(members[:1], 5.0, mlp, num_examples=1)
    assert single["training_flops"] == 5.0 and single["relative_test_flops"] == 0.5


def test_unbuilt_or_shapeless_models_raise():
    with pytest.raises(ValueError, match="`model`.*keras.Model"):
        flops.forward_flops(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="`model`.*not built"):
        flops.layer_flops(keras.Sequential([keras.layers.Dense(3)]))
    variable = _model((None, None, 3), keras.layers.Conv2D(4, 3))
    with pytest.raises(ValueError, match="not fully known"):
        flops.forward_flops(variable)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda m: flops.dense_training_flops(m, 0), "num_examples"),
        (lambda m: flops.dense_training_flops(m, 10, epochs=1.5), "epochs"),
        (lambda m: flops.training_step_flops(m, True), "batch_size"),
        (lambda m: flops.growth_pass_flops(m, -1), "batch_size"),
        (lambda m: flops.ensemble_flops(m, 1.0, m, 10), "members"),
        (lambda m: flops.ensemble_flops([], 1.0, m, 10), "members"),
        (lambda m: flops.ensemble_flops([m, "x"], 1.0, m, 10), "members"),
        (lambda m: flops.ensemble_flops([m], -1.0, m, 10), "training_flops"),
        (lambda m: flops.ensemble_flops([m], [1.0, "2"], m, 10), "training_flops"),
        (lambda m: flops.ensemble_flops([m], 1.0, None, 10), "model"),
        (lambda m: flops.ensemble_flops([m], 1.0, m, 10, epochs=0), "epochs"),
    ],
)
def test_bad_arguments_name_the_argument(mlp, call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call(mlp)


# --- Wide ResNet-28-10 (SPEC §8) ---------------------------------------------


def _wrn_forward_flops(depth, width, num_classes, size=32, in_channels=3):
    """Dense forward FLOPs of the original WideResNet, worked out from SPEC §8."""
    conv = lambda k, c_in, c_out, hw: 2 * k * k * c_in * c_out * hw * hw  # noqa: E731
    total = conv(3, in_channels, 16, size)  # stem
    channels = 16
    for filters, stride in ((16 * width, 1), (32 * width, 2), (64 * width, 2)):
        for block in range((depth - 4) // 6):
            block_stride = stride if block == 0 else 1
            size //= block_stride
            total += conv(3, channels, filters, size) + conv(3, filters, filters, size)
            if channels != filters or block_stride != 1:
                total += conv(1, channels, filters, size)  # projection shortcut
            channels = filters
    return total + 2 * channels * num_classes  # classifier


@pytest.fixture(scope="module")
def wrn_28_10():
    return wide_resnet(28, 10, num_classes=10, input_shape=(32, 32, 3))


def test_wrn_28_10_dense_forward_flops(wrn_28_10):
    params = sum(math.prod(w.shape) for w in wrn_28_10.trainable_weights)
    assert params == 36_479_194
    expected = _wrn_forward_flops(28, 10, 10)
    assert flops.forward_flops(wrn_28_10, sparse=False) == expected
    assert flops.forward_flops(wrn_28_10) == expected  # no masks: dense
    per_layer = flops.layer_flops(wrn_28_10)
    assert len(per_layer) == 1 + 12 * 2 + 3 + 1  # stem, block convs, shortcuts, dense
    assert per_layer["stem_conv"] == 2 * 9 * 3 * 16 * 32 * 32
    assert per_layer["group3_block1_shortcut_conv"] == 2 * 320 * 640 * 8 * 8
    assert per_layer["logits"] == 2 * 640 * 10
    assert expected == pytest.approx(10.49e9, rel=1e-3)  # ~5.25 GMACs


def test_module_doctests():
    """The docstring examples run as doctests, like the rest of the project."""
    results = doctest.testmod(flops)
    assert results.attempted > 0 and results.failed == 0
