"""Finding optimizer slots of a variable across Keras optimizers."""

import keras
import numpy as np
import pytest

from freetickets_tf import optimizer_slots


def _fitted(optimizer):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    return model


@pytest.mark.parametrize(
    "optimizer,slots,momentum",
    [
        (lambda: keras.optimizers.SGD(0.1, momentum=0.9), 1, True),
        (lambda: keras.optimizers.SGD(0.1), 0, False),
        (lambda: keras.optimizers.Adam(), 2, True),
        (lambda: keras.optimizers.AdamW(), 2, True),
        (lambda: keras.optimizers.RMSprop(momentum=0.9), 2, True),
        (lambda: keras.optimizers.Adagrad(), 1, False),
    ],
    ids=["sgd-momentum", "sgd", "adam", "adamw", "rmsprop", "adagrad"],
)
def test_slots_of_kernel(optimizer, slots, momentum):
    opt = optimizer()
    model = _fitted(opt)
    kernel = model.layers[0].kernel
    found = optimizer_slots.slot_variables(opt, kernel)
    assert len(found) == slots
    assert all(s.shape == kernel.shape and s is not kernel for s in found)
    # The bias has its own slots, distinct from the kernel's.
    bias_slots = optimizer_slots.slot_variables(opt, model.layers[0].bias)
    assert not {id(s) for s in bias_slots} & {id(s) for s in found}
    assert optimizer_slots.has_momentum(opt) is momentum
    if momentum:
        assert any(optimizer_slots.momentum_variable(opt, kernel) is s for s in found)
    else:
        with pytest.raises(ValueError, match="keeps no momentum"):
            optimizer_slots.momentum_variable(opt, kernel)


def test_loss_scale_optimizer_is_unwrapped():
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1, momentum=0.9))
    model = _fitted(opt)
    assert len(optimizer_slots.slot_variables(opt, model.layers[0].kernel)) == 1
