"""`TorchSGD` computes torch.optim.SGD's update, checked against PyTorch itself."""

import keras
import numpy as np
import pytest
import torch

import freetickets_tf as ft
from freetickets_tf import recipes
from freetickets_tf import optimizer_slots
from freetickets_tf.optimizers import TorchSGD
from freetickets_tf.optimizers import make_sgd

STEPS = 20
DROP_AT = 10  # the learning rate drops x0.1 before this step


def _gradients(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(STEPS)]


def _torch_run(initial, gradients, lr, momentum, weight_decay, nesterov=False,
               decay_mask=None):
    """torch.optim.SGD on parameters `initial`, fed `gradients` step by step,
    lr x0.1 from step DROP_AT; `decay_mask[i]` False puts parameter i in a
    group without weight decay."""
    params = [torch.nn.Parameter(torch.tensor(w)) for w in initial]
    decay_mask = decay_mask or [True] * len(params)
    groups = [{"params": [p for p, d in zip(params, decay_mask) if d]},
              {"params": [p for p, d in zip(params, decay_mask) if not d],
               "weight_decay": 0.0}]
    optimizer = torch.optim.SGD([g for g in groups if g["params"]], lr=lr,
                                momentum=momentum, weight_decay=weight_decay,
                                nesterov=nesterov)
    for step, grads in enumerate(gradients):
        if step == DROP_AT:
            for group in optimizer.param_groups:
                group["lr"] = lr / 10
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        optimizer.step()
    return [p.detach().numpy() for p in params]


def _keras_run(initial, gradients, optimizer, lr):
    variables = [keras.Variable(w) for w in initial]
    for step, grads in enumerate(gradients):
        if step == DROP_AT:
            optimizer.learning_rate = lr / 10
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads],
                                      variables))
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.mark.parametrize("nesterov", [False, True])
def test_twenty_steps_equal_torch_sgd_across_a_learning_rate_drop(nesterov):
    shapes = [(6, 5), (5,), (3, 3, 2, 4)]
    initial = [g.copy() for g in _gradients(shapes, seed=1)[0]]
    gradients = _gradients(shapes)
    expected = _torch_run(initial, gradients, 0.1, 0.9, 5e-4, nesterov)
    got = _keras_run(initial, gradients,
                     TorchSGD(0.1, momentum=0.9, nesterov=nesterov, weight_decay=5e-4),
                     0.1)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)


def test_kernels_scope_leaves_biases_undecayed_as_a_torch_param_group():
    shapes = [(6, 5), (5,)]
    initial = [g.copy() for g in _gradients(shapes, seed=2)[0]]
    gradients = _gradients(shapes)
    expected = _torch_run(initial, gradients, 0.1, 0.9, 0.05, decay_mask=[True, False])
    got = _keras_run(initial, gradients, TorchSGD(
        0.1, momentum=0.9, weight_decay=0.05, weight_decay_scope="kernels"), 0.1)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)


def test_keras_sgd_differs_where_torch_semantics_matter():
    # The reason TorchSGD exists: decoupled decay, and a velocity that keeps
    # the old learning rate after the drop.
    shapes = [(6, 5)]
    initial = [g.copy() for g in _gradients(shapes, seed=3)[0]]
    gradients = _gradients(shapes)
    expected = _torch_run(initial, gradients, 0.1, 0.9, 0.05)
    got = _keras_run(initial, gradients,
                     keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05), 0.1)
    assert np.abs(got[0] - expected[0]).max() > 1e-2


def test_config_round_trips_and_the_buffer_is_where_dst_looks():
    optimizer = TorchSGD(0.05, momentum=0.8, nesterov=True, weight_decay=1e-4,
                         weight_decay_scope="kernels")
    clone = TorchSGD.from_config(optimizer.get_config())
    assert (clone.momentum, clone.nesterov, clone.l2, clone.weight_decay_scope) == (
        0.8, True, 1e-4, "kernels")
    assert clone.weight_decay is None  # Keras' decoupled decay stays off
    kernel = keras.Variable(np.ones((2, 3), "float32"))
    optimizer.build([kernel])
    assert optimizer_slots.momentum_variable(optimizer, kernel) is optimizer.momentums[0]


def test_make_sgd_modes():
    coupled = make_sgd(0.1, 0.9, 5e-4)
    assert isinstance(coupled, TorchSGD) and coupled.l2 == 5e-4
    decoupled = make_sgd(0.1, 0.9, 5e-4, "decoupled")
    assert isinstance(decoupled, keras.optimizers.SGD) and decoupled.weight_decay == 5e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_decay_mode": "l2"}, "weight_decay_mode.*'coupled', 'decoupled'"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"momentum": 1.5}, r"momentum.*\[0, 1\)"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"weight_decay_scope": "biases"}, "weight_decay_scope.*'all', 'kernels'"),
    ],
)
def test_bad_optimizer_settings_are_clear_errors(kwargs, match):
    settings = {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 5e-4, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_sgd(**settings)


def _zero_input_dense_run(tmp_path, mode, steps_per_epoch=4, epochs=4):
    """The `dense` recipe on all-zero inputs: the first kernel (initialised
    to ones) gets no gradient, so only weight decay moves it."""
    def build():
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, kernel_initializer="ones", name="first")(inputs)
        outputs = keras.layers.Dense(2, name="logits")(keras.layers.ReLU()(hidden))
        return keras.Model(inputs, outputs)

    batch = 8
    x = np.zeros((steps_per_epoch * batch, 3), "float32")
    y = np.arange(len(x)) % 2
    config = recipes.EnsembleConfig(
        epochs=epochs, batch_size=batch, learning_rate=0.1, momentum=0.9,
        weight_decay=0.05, weight_decay_mode=mode, selection="last", verbose=0)
    run = recipes.train_dense(build, (x, y), None, config, tmp_path / mode)
    ticket = ft.tickets.RunDirectory.open(run.run_dir).load_tickets()[0]
    return np.asarray(ticket.get_layer("first").kernel)


def test_dense_recipe_decays_a_zero_gradient_kernel_as_torch_does(tmp_path):
    # The case of the issue that found the difference: 4 epochs of 20 steps.
    steps_per_epoch, epochs = 20, 4
    # torch.optim.SGD on one parameter with zero gradient, lr x0.1 at 50% and
    # 75% of the epochs (MultiStepLR), as the recipe's schedule.
    w = torch.nn.Parameter(torch.ones(()))
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2, 3], 0.1)
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            w.grad = torch.zeros(())
            optimizer.step()
        scheduler.step()
    expected = float(w.detach())

    coupled = _zero_input_dense_run(tmp_path, "coupled", steps_per_epoch, epochs)
    np.testing.assert_allclose(coupled, expected, rtol=1e-5)
    assert round(expected, 3) == 0.047
    # Keras' decoupled decay: w <- w (1 - lr wd) each step, momentum aside.
    decoupled = _zero_input_dense_run(tmp_path, "decoupled", steps_per_epoch, epochs)
    lrs = [0.1] * 40 + [0.01] * 20 + [0.001] * 20
    np.testing.assert_allclose(decoupled, np.prod([1 - lr * 0.05 for lr in lrs]),
                               rtol=1e-5)
    assert round(float(decoupled.mean()), 3) == 0.809


def test_coupled_decay_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, kernel_initializer="ones", name="first")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(TorchSGD(0.1, momentum=0.9, weight_decay=0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.zeros((32, 3), "float32"), np.zeros(32, "int32"), batch_size=8,
              epochs=1, verbose=0, shuffle=False)
    w, v = 1.0, 0.0
    for _ in range(4):
        v = 0.9 * v + 0.05 * w
        w -= 0.1 * v
    kernel = keras.ops.convert_to_numpy(model.get_layer("first").kernel)
    assert model.get_layer("first").kernel.dtype == "float32"
    np.testing.assert_allclose(kernel, w, rtol=1e-6)
