"""TrainingFlopsCallback inside model.fit (SPEC §6)."""

import keras
import pytest

import freetickets_tf as ft
from freetickets_tf import flops
from freetickets_tf.callbacks import DynamicSparsityCallback
from freetickets_tf.callbacks import TrainingFlopsCallback

BATCH = 32  # toy_data has 256 examples: 8 steps per epoch


def _sparse(mlp, compile_model, **compile_kwargs):
    return compile_model(ft.sparsify(mlp, 0.2, seed=0), **compile_kwargs)


def _forward(model):
    return flops.forward_flops(model), flops.forward_flops(model, sparse=False)


def _fit(model, data, callbacks, epochs=3):
    x, y = data
    return model.fit(x, y, batch_size=BATCH, epochs=epochs, callbacks=callbacks, verbose=0)


def test_static_masks_count_three_sparse_forwards_per_example(mlp, toy_data, compile_model):
    sparse = _sparse(mlp, compile_model)
    f_s, f_d = _forward(sparse)
    assert f_s < f_d
    counter = TrainingFlopsCallback(BATCH)
    history = _fit(sparse, toy_data, [counter])
    assert counter.total_flops == pytest.approx(24 * 3 * f_s * BATCH, rel=1e-12)
    expected_logs = [e * 8 * 3 * f_s * BATCH for e in (1, 2, 3)]
    assert history.history["training_gflops"] == pytest.approx(
        [f / 1e9 for f in expected_logs], rel=1e-12)


@pytest.mark.parametrize("counter_first", [False, True])
def test_dst_updates_add_growth_passes_in_any_callback_order(
    mlp, toy_data, compile_model, counter_first
):
    sparse = _sparse(mlp, compile_model)
    f_s, f_d = _forward(sparse)
    dst = DynamicSparsityCallback(data=toy_data, update_frequency=5, batch_size=16, seed=0)
    counter = TrainingFlopsCallback(BATCH, sparsity_callback=dst)
    _fit(sparse, toy_data, [counter, dst] if counter_first else [dst, counter])
    assert dst.updates_done == 4  # steps 5, 10, 15, 20 of 24
    # DST keeps every layer's active count, so f_S is the same all along.
    assert _forward(sparse) == (f_s, f_d)
    expected = 24 * 3 * f_s * BATCH + 4 * (f_s + 2 * f_d) * 16
    assert counter.total_flops == pytest.approx(expected, rel=1e-12)


class _Redensify(keras.callbacks.Callback):
    """A stand-in sparsity callback: at one step it samples masks of another
    density (which DST never does), so f_S changes mid-epoch."""

    def __init__(self, at_step, density, growth="gradient"):
        super().__init__()
        self.at_step, self.density, self.growth = at_step, density, growth
        self.updates_done = 0
        self.batch_size = 8

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.at_step:
            ft.masking.init_masks(self.model, self.density, seed=1)
            self.updates_done += 1


@pytest.mark.parametrize("counter_first", [False, True])
def test_steps_are_counted_at_the_density_they_ran_with(
    mlp, toy_data, compile_model, counter_first
):
    sparse = _sparse(mlp, compile_model)
    before = _forward(sparse)
    change = _Redensify(at_step=5, density=0.5)
    counter = TrainingFlopsCallback(BATCH, sparsity_callback=change)
    _fit(sparse, toy_data, [counter, change] if counter_first else [change, counter], epochs=1)
    after = _forward(sparse)
    assert after[0] > before[0]
    expected = (
        5 * 3 * before[0] * BATCH  # steps 1-5 at density 0.2
        + (before[0] + 2 * before[1]) * 8  # the growth pass, before the change
        + 3 * 3 * after[0] * BATCH  # steps 6-8 at density 0.5
    )
    assert counter.total_flops == pytest.approx(expected, rel=1e-12)


def test_no_growth_pass_without_gradient_growth(mlp, toy_data, compile_model):
    sparse = _sparse(mlp, compile_model)
    f_s, _ = _forward(sparse)
    dst = DynamicSparsityCallback(update_frequency=5, growth="random", seed=0)
    counter = TrainingFlopsCallback(BATCH, sparsity_callback=dst)
    _fit(sparse, toy_data, [dst, counter], epochs=1)
    assert dst.updates_done == 1
    assert counter.total_flops == pytest.approx(8 * 3 * f_s * BATCH, rel=1e-12)


def test_steps_per_execution_initial_flops_and_growth_batch_size(mlp, toy_data, compile_model):
    # Keras' PyTorch trainer needs steps_per_execution=1; the counts below
    # hold for both (updates at steps 5, 10, 15, 20 then).
    steps = 1 if keras.backend.backend() == "torch" else 2
    sparse = _sparse(mlp, compile_model, steps_per_execution=steps)
    f_s, f_d = _forward(sparse)
    dst = DynamicSparsityCallback(data=toy_data, update_frequency=5, seed=0)
    counter = TrainingFlopsCallback(
        BATCH, sparsity_callback=dst, growth_batch_size=20, initial_flops=1e9
    )
    history = _fit(sparse, toy_data, [dst, counter])
    assert int(sparse.optimizer.iterations) == 24
    assert dst.updates_done == 4  # at steps 6, 10, 16, 20: batches end on even steps
    expected = 1e9 + 24 * 3 * f_s * BATCH + 4 * (f_s + 2 * f_d) * 20
    assert counter.total_flops == pytest.approx(expected, rel=1e-12)
    assert history.history["training_gflops"][-1] == counter.total_flops / 1e9


def test_growth_batch_defaults_to_the_sparsity_callbacks(toy_data):
    dst = DynamicSparsityCallback(data=toy_data, batch_size=16)
    assert TrainingFlopsCallback(BATCH, dst)._growth_batch_size() == 16
    assert TrainingFlopsCallback(BATCH)._growth_batch_size() == BATCH
    assert TrainingFlopsCallback(BATCH, dst, growth_batch_size=4)._growth_batch_size() == 4


def test_count_continues_across_fits_and_counts_updates_between_them(
    mlp, toy_data, compile_model
):
    sparse = _sparse(mlp, compile_model)
    f_s, f_d = _forward(sparse)
    dst = DynamicSparsityCallback(data=toy_data, update_frequency=100, batch_size=16, seed=0)
    counter = TrainingFlopsCallback(BATCH, sparsity_callback=dst)
    _fit(sparse, toy_data, [dst, counter], epochs=1)
    dst.update_topology(death_rate=0.8)  # e.g. EDST's global exploration
    _fit(sparse, toy_data, [dst, counter], epochs=1)
    expected = 16 * 3 * f_s * BATCH + (f_s + 2 * f_d) * 16
    assert counter.total_flops == pytest.approx(expected, rel=1e-12)


def test_partial_last_batch_counts_as_full(mlp, toy_data, compile_model):
    sparse = _sparse(mlp, compile_model)
    f_s, _ = _forward(sparse)
    counter = TrainingFlopsCallback(BATCH)
    x, y = toy_data
    sparse.fit(x[:250], y[:250], batch_size=BATCH, epochs=1, callbacks=[counter], verbose=0)
    assert counter.total_flops == pytest.approx(8 * 3 * f_s * BATCH, rel=1e-12)


def test_get_config_round_trip():
    counter = TrainingFlopsCallback(64, growth_batch_size=32, initial_flops=5.0)
    config = counter.get_config()
    assert config == {"batch_size": 64, "growth_batch_size": 32, "initial_flops": 5.0}
    clone = TrainingFlopsCallback(**config)
    assert clone.get_config() == config and clone.total_flops == 5.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "32"}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 32, "growth_batch_size": 0}, "growth_batch_size"),
        ({"batch_size": 32, "initial_flops": -1.0}, "initial_flops"),
        ({"batch_size": 32, "initial_flops": "0"}, "initial_flops"),
        ({"batch_size": 32, "sparsity_callback": object()}, "sparsity_callback"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        TrainingFlopsCallback(**kwargs)


def test_exported_from_callbacks_package():
    assert ft.callbacks.TrainingFlopsCallback is TrainingFlopsCallback
