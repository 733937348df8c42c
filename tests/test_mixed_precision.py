"""Dynamic sparse training under Keras' mixed-precision policies: masks stay
exact, and loss scaling leaves the growth gradient alone."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.backend import make_loss_gradient_fn


@pytest.fixture
def policy(request):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy(previous)


def _sparse_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(4, dtype="float32"),  # logits in float32, as Keras advises
    ])
    return ft.sparsify(model, 0.3, seed=seed)


def _compile(model):
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"], indirect=True)
def test_masks_stay_exact_through_training(policy, toy_data):
    x, y = toy_data
    model = _compile(_sparse_model())
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    counts = [int(np.sum(mk.mask)) for mk in ft.masked_kernels(model)]
    dst = ft.callbacks.DynamicSparsityCallback(
        data=(x, y), update_frequency=2, batch_size=64, seed=0)
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[dst], verbose=0)
    assert dst.updates_done >= 4
    for mk, count in zip(ft.masked_kernels(model), counts):
        mask = np.asarray(mk.mask)
        assert mask.dtype == bool and int(mask.sum()) == count
        assert mk.kernel.dtype == "float32"  # variables stay float32
        ft.masking.zero_inactive_weights(model)
        assert not np.any(np.asarray(mk.kernel)[~mask])


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_loss_scaling_does_not_scale_the_growth_gradient(policy, toy_data):
    x, y = toy_data
    mixed = _compile(_sparse_model())
    mixed.optimizer.build(mixed.trainable_variables)
    assert float(keras.ops.convert_to_numpy(mixed.optimizer.scale_loss(1.0))) > 1
    kernels = [mk.kernel for mk in ft.masked_kernels(mixed)]
    mixed_grads = make_loss_gradient_fn(mixed, kernels)(x[:64], y[:64])

    keras.mixed_precision.set_global_policy("float32")
    full = _compile(_sparse_model())
    full.set_weights(mixed.get_weights())
    full_grads = make_loss_gradient_fn(
        full, [mk.kernel for mk in ft.masked_kernels(full)])(x[:64], y[:64])
    for a, b in zip(mixed_grads, full_grads):
        a, b = np.asarray(a, "float32"), np.asarray(b, "float32")
        # The same gradient (not times the loss scale), up to float16
        # rounding (which flips a few ReLUs at zero).
        assert np.linalg.norm(a) / np.linalg.norm(b) == pytest.approx(1, abs=0.05)
        assert np.linalg.norm(a - b) < 0.05 * np.linalg.norm(b)
