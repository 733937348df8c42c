"""sparsify / init_masks / density reports (SPEC §2)."""

import math
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import freetickets_tf as ft
from freetickets_tf.masking import sample_mask


def _np(x):
    return ops.convert_to_numpy(x)


def _expected_counts(model, density, distribution="erk"):
    """Exact active counts per kernel: round(d_l * N_l) of erk_densities."""
    shapes = [tuple(mk.kernel.shape) for mk in ft.masked_kernels(model)]
    return [
        max(1, round(d * math.prod(s)))
        for d, s in zip(ft.erk_densities(shapes, density, distribution), shapes)
    ]


def _check_sparse_copy(dense, sparse, density, distribution="erk"):
    kernels = ft.masked_kernels(sparse)
    counts = [int(_np(mk.mask).sum()) for mk in kernels]
    assert counts == _expected_counts(sparse, density, distribution)
    total = sum(math.prod(mk.kernel.shape) for mk in kernels)
    # Overall density exact up to rounding of one weight per layer.
    assert abs(sum(counts) - density * total) <= len(kernels)
    dense_by_path = {v.path: _np(v) for v in dense.weights}
    for mk in kernels:
        mask, kernel = _np(mk.mask), _np(mk.kernel)
        assert np.all(kernel[~mask] == 0)
        # Active weights are the dense model's weights, untouched.
        np.testing.assert_array_equal(kernel[mask], dense_by_path[mk.kernel.path][mask])
        np.testing.assert_array_equal(_np(mk.explored), mask)


def test_sample_mask_has_exact_count_and_is_seeded():
    rng = np.random.default_rng(0)
    mask = sample_mask((3, 3, 16, 32), 0.137, rng)
    assert mask.sum() == round(0.137 * 3 * 3 * 16 * 32)
    same = sample_mask((3, 3, 16, 32), 0.137, np.random.default_rng(0))
    np.testing.assert_array_equal(sample_mask((3, 3, 16, 32), 0.137, np.random.default_rng(0)), same)
    assert sample_mask((4, 4), 0.001, rng).sum() == 1  # never cut off entirely


def test_sparsify_sequential(mlp):
    sparse = ft.sparsify(mlp, 0.2, seed=0)
    assert sparse is not mlp
    assert [type(l).__name__ for l in sparse.layers] == ["MaskedDense"] * 3
    _check_sparse_copy(mlp, sparse, 0.2)
    # The original model is left dense.
    assert all(type(l) is keras.layers.Dense for l in mlp.layers)
    x = np.ones((2, 16), "float32")
    assert sparse(x).shape == (2, 4)


@pytest.mark.parametrize("distribution", ["erk", "er", "uniform"])
def test_sparsify_functional_with_nested_model(distribution):
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(16, 3, name="inner_conv"),
         keras.layers.BatchNormalization(name="inner_bn")],
        name="inner",
    )
    inputs = keras.Input((8, 8, 3))
    x = inner(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, name="head")(x)
    model = keras.Model(inputs, outputs)
    sparse = ft.sparsify(model, 0.3, distribution=distribution, seed=1)
    kinds = {mk.kernel.path.split("/")[-2] for mk in ft.masked_kernels(sparse)}
    assert kinds == {"inner_conv", "dw", "head"}
    _check_sparse_copy(model, sparse, 0.3, distribution)
    # BatchNorm parameters are copied and never masked.
    np.testing.assert_array_equal(
        _np(sparse.get_layer("inner").get_layer("inner_bn").gamma),
        _np(inner.get_layer("inner_bn").gamma),
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the graph copy is backend-independent; a 150-layer "
                    "network takes 20 s to trace on JAX, where the masked layers' "
                    "behaviour has its own tests")
def test_sparsify_keras_applications_network():
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    )
    sparse = ft.sparsify(model, 0.2, seed=0)
    kinds = {type(l).__name__ for l in sparse.layers if "Masked" in type(l).__name__}
    assert kinds == {"MaskedConv2D", "MaskedDepthwiseConv2D", "MaskedDense"}
    _check_sparse_copy(model, sparse, 0.2)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    assert sparse.predict(x, verbose=0).shape == (2, 10)


def test_sparsify_is_reproducible_with_seed(mlp):
    a, b, c = (ft.sparsify(mlp, 0.2, seed=s) for s in (7, 7, 8))
    masks = lambda m: [_np(mk.mask) for mk in ft.masked_kernels(m)]
    for x, y in zip(masks(a), masks(b)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(masks(a), masks(c)))


def test_exclude_by_name_and_predicate(mlp):
    by_name = ft.sparsify(mlp, 0.2, exclude=["logits"])
    assert type(by_name.get_layer("logits")) is keras.layers.Dense
    by_predicate = ft.sparsify(mlp, 0.2, exclude=lambda layer: layer.name == "hidden1")
    assert type(by_predicate.get_layer("hidden1")) is keras.layers.Dense
    assert len(ft.masked_kernels(by_predicate)) == 2
    with pytest.raises(ValueError, match="exclude.*nope"):
        ft.sparsify(mlp, 0.2, exclude=["nope"])


def test_unsupported_layers_stay_dense_and_are_named():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2DTranspose(4, 3, name="up")(inputs)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    with pytest.warns(UserWarning, match=r"up \(Conv2DTranspose\)"):
        sparse = ft.sparsify(model, 0.5, seed=0)
    summary = ft.sparsity_summary(sparse)
    assert "Not masked (dense): up (Conv2DTranspose)" in summary
    # Excluding a layer on purpose does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ft.sparsify(model, 0.5, exclude=["up"])


@pytest.mark.parametrize("density", [0, -0.1, 1.5, "0.2", True, None])
def test_bad_density(mlp, density):
    with pytest.raises(ValueError, match="density.*\\(0, 1\\]"):
        ft.sparsify(mlp, density)


def test_bad_distribution(mlp):
    with pytest.raises(ValueError, match="distribution.*'erk', 'er', 'uniform'"):
        ft.sparsify(mlp, 0.2, distribution="gaussian")


def test_model_without_maskable_layer():
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="no layer that can be masked"):
        ft.sparsify(model, 0.5)


def test_unbuilt_and_subclassed_models_are_clear_errors():
    with pytest.raises(ValueError, match="not built"):
        ft.sparsify(keras.Sequential([keras.layers.Dense(3)]), 0.5)

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.ones((1, 4)))
    with pytest.raises(ValueError, match="subclassed.*init_masks"):
        ft.sparsify(net, 0.5)


def test_init_masks_on_model_built_from_masked_layers():
    model = keras.Sequential(
        [keras.Input((20,)), ft.layers.MaskedDense(30), ft.layers.MaskedDense(10)]
    )
    densities = ft.masking.init_masks(model, 0.25, seed=0)
    counts = [int(_np(mk.mask).sum()) for mk in ft.masked_kernels(model)]
    assert counts == [round(d * n) for d, n in zip(densities, [600, 300])]
    with pytest.raises(ValueError, match="no masked kernels"):
        ft.masking.init_masks(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), 0.5)


def test_layer_densities_summary_and_itop(mlp):
    sparse = ft.sparsify(mlp, 0.2, seed=0)
    densities = ft.masking.layer_densities(sparse)
    for mk in ft.masked_kernels(sparse):
        mask = _np(mk.mask)
        assert densities[mk.kernel.path] == pytest.approx(mask.mean())
    total = 16 * 64 + 64 * 64 + 64 * 4
    active = sum(int(_np(mk.mask).sum()) for mk in ft.masked_kernels(sparse))
    assert ft.masking.overall_density(sparse) == pytest.approx(active / total)
    assert ft.masking.itop_rate(sparse) == pytest.approx(active / total)
    # Of some kernels only: their explored positions over their size.
    first, *_ = ft.masked_kernels(sparse)
    first.explored.assign(np.ones(first.explored.shape, bool))
    assert ft.masking.explored_fraction([first]) == 1.0
    with pytest.raises(TypeError, match="itop_rate"):
        ft.masking.explored_fraction(sparse)
    with pytest.raises(TypeError, match="not a MaskedKernel"):
        ft.masking.explored_fraction([first.kernel])
    assert ft.masking.itop_rate(sparse) == pytest.approx((active - int(_np(first.mask).sum())
                                                          + 16 * 64) / total)
    summary = ft.sparsity_summary(sparse)
    first = ft.masked_kernels(sparse)[0]
    assert first.kernel.path in summary and "(16, 64)" in summary
    assert f"{active:,} of {total:,}" in summary
    assert f"Overall density: {active / total:.4f}" in summary


def test_prune_global_magnitude_keeps_the_largest_trained_weights(mlp):
    pruned = ft.masking.prune_global_magnitude(mlp, 0.25)
    kernels = [w for w in mlp.weights if w.name == "kernel"]
    flat = np.concatenate([np.abs(np.asarray(k)).ravel() for k in kernels])
    keep = round(0.25 * flat.size)
    threshold = np.sort(flat)[::-1][keep - 1]
    for mk, kernel in zip(ft.masked_kernels(pruned), kernels, strict=True):
        mask = np.asarray(mk.mask)
        np.testing.assert_array_equal(mask, np.abs(np.asarray(kernel)) >= threshold)
        np.testing.assert_array_equal(np.asarray(mk.explored), mask)
        np.testing.assert_array_equal(
            np.asarray(mk.kernel), np.where(mask, np.asarray(kernel), 0.0))
    assert ft.masking.overall_density(pruned) == pytest.approx(keep / flat.size)


def test_prune_global_magnitude_bad_density(mlp):
    with pytest.raises(ValueError, match="density"):
        ft.masking.prune_global_magnitude(mlp, 1.5)


def test_rescale_scales_active_weights_by_inverse_sqrt_layer_density(mlp):
    dense = [_np(v) for v in mlp.trainable_weights]
    plain = ft.sparsify(mlp, 0.2, seed=3)
    scaled = ft.sparsify(mlp, 0.2, seed=3, rescale=True)
    densities = ft.erk_densities(
        [tuple(mk.kernel.shape) for mk in ft.masked_kernels(plain)], 0.2
    )
    for a, b, d in zip(ft.masked_kernels(plain), ft.masked_kernels(scaled), densities):
        np.testing.assert_array_equal(_np(a.mask), _np(b.mask))
        np.testing.assert_allclose(_np(b.kernel), _np(a.kernel) / math.sqrt(d), rtol=1e-6)
    # Biases and the dense source model are untouched.
    np.testing.assert_array_equal(_np(scaled.layers[0].bias), dense[1])
    np.testing.assert_array_equal(_np(mlp.trainable_weights[0]), dense[0])


def test_rescale_restores_the_dense_pre_activation_variance():
    """The point of rescaling: a unit's input variance at density d matches
    the dense layer's, instead of shrinking by d."""
    inputs = keras.Input((2000,))
    model = keras.Model(inputs, keras.layers.Dense(500, use_bias=False)(inputs))
    x = np.random.default_rng(0).normal(size=(256, 2000)).astype("float32")
    dense_var = np.var(_np(model(x)))
    plain = np.var(_np(ft.sparsify(model, 0.1, "uniform", seed=0)(x)))
    scaled = np.var(_np(ft.sparsify(model, 0.1, "uniform", seed=0, rescale=True)(x)))
    assert plain == pytest.approx(0.1 * dense_var, rel=0.1)
    assert scaled == pytest.approx(dense_var, rel=0.1)


@pytest.mark.parametrize("density", [0.0, 1.5, "half"])
def test_sparse_init_scale_rejects_bad_density(density):
    assert ft.masking.sparse_init_scale(0.25) == 2.0
    with pytest.raises(ValueError, match="layer_density"):
        ft.masking.sparse_init_scale(density)


def test_sparsify_of_a_model_without_weights_says_so():
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="has no weights"):
        ft.sparsify(model, 0.5)


def test_strip_sparsity_beside_sparsify_gives_a_plain_model(mlp):
    sparse = ft.sparsify(mlp, 0.3, seed=0)
    plain = ft.strip_sparsity(sparse)
    assert ft.serving.fold_masks is ft.strip_sparsity  # the earlier name
    assert not ft.masked_kernels(plain)
    assert {type(layer).__name__ for layer in plain.layers} == {"Dense"}
    x = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(plain(x)),
                               keras.ops.convert_to_numpy(sparse(x)), atol=1e-6)


def test_sparsify_accepts_an_already_sparse_model(mlp):
    sparse = ft.sparsify(mlp, 0.3, seed=0)
    again = ft.sparsify(sparse, 0.5, seed=1)
    assert ft.masking.overall_density(again) == pytest.approx(0.5, abs=0.02)
