"""GradualPruning inside model.fit: tfmot's gradual magnitude pruning."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import flops
from freetickets_tf import topology
from freetickets_tf.callbacks import GradualPruning
from freetickets_tf.callbacks import TrainingFlopsCallback
from freetickets_tf.pruning_schedules import ConstantSparsity
from freetickets_tf.pruning_schedules import PolynomialDecay

BATCH = 32  # toy_data: 256 examples, 8 steps per epoch


class _Probe(keras.callbacks.Callback):
    """Records, before every step (after the pruning callback ran), each
    masked kernel's active count and the sparse forward FLOPs."""

    def __init__(self):
        super().__init__()
        self.active, self.forward = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.active.append([int(np.asarray(mk.mask).sum())
                            for mk in ft.masked_kernels(self.model)])
        self.forward.append(flops.forward_flops(self.model))


def _prunable(mlp, compile_model):
    return compile_model(ft.sparsify(mlp, 1.0, "uniform"))


def test_masks_follow_the_schedule_step_by_step(mlp, toy_data, compile_model):
    model = _prunable(mlp, compile_model)
    sizes = [int(np.prod(mk.mask.shape)) for mk in ft.masked_kernels(model)]
    schedule = PolynomialDecay(0.1, 0.9, begin_step=2, end_step=20, frequency=3)
    probe = _Probe()
    x, y = toy_data
    history = model.fit(x, y, batch_size=BATCH, epochs=4, verbose=0,
                        callbacks=[GradualPruning(schedule), probe])
    # What tfmot's masks hold before each step: the sparsity of the latest
    # pruning step at or before it (none before `begin_step`: dense).
    sparsity = None
    for step, active in enumerate(probe.active):
        if schedule.should_prune(step):
            sparsity = schedule.sparsity(step)
        expected = sizes if sparsity is None else [
            topology.kept_count(size, sparsity) for size in sizes]
        assert active == expected, step
    assert history.history["pruning_sparsity"][-1] == pytest.approx(0.9)
    ft.masking.zero_inactive_weights(model)
    for mk in ft.masked_kernels(model):
        assert not np.asarray(mk.kernel)[~np.asarray(mk.mask)].any()
    # Pruned weights never come back.
    for before, after in zip(probe.active, probe.active[1:]):
        assert all(a <= b for a, b in zip(after, before))


def test_each_pruning_step_keeps_the_largest_magnitudes(mlp, toy_data, compile_model):
    model = _prunable(mlp, compile_model)
    x, y = toy_data
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    callback = GradualPruning(ConstantSparsity(0.6, 0))
    callback.set_model(model)
    kernels = [np.asarray(mk.kernel) for mk in ft.masked_kernels(model)]
    callback.prune(0, 0.6)
    for kernel, mk in zip(kernels, ft.masked_kernels(model)):
        k = topology.kept_count(kernel.size, 0.6)
        threshold = np.sort(np.abs(kernel), axis=None)[::-1][k - 1]
        np.testing.assert_array_equal(np.asarray(mk.mask), np.abs(kernel) >= threshold)
        np.testing.assert_array_equal(np.asarray(mk.kernel),
                                      np.where(np.asarray(mk.mask), kernel, 0.0))


def test_training_flops_follow_the_shrinking_masks(mlp, toy_data, compile_model):
    model = _prunable(mlp, compile_model)
    pruning = GradualPruning(PolynomialDecay(0.0, 0.8, begin_step=0, end_step=12,
                                             frequency=4))
    probe = _Probe()
    counter = TrainingFlopsCallback(BATCH, sparsity_callback=pruning)
    x, y = toy_data
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0,
              callbacks=[pruning, probe, counter])
    assert pruning.updates_done == 4  # steps 0, 4, 8, 12
    assert counter.total_flops == pytest.approx(3 * BATCH * sum(probe.forward), rel=1e-9)
    assert probe.forward[-1] < 0.3 * probe.forward[0]


def test_stripped_model_predicts_as_the_pruned_one(mlp, toy_data, compile_model):
    model = _prunable(mlp, compile_model)
    x, y = toy_data
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0,
              callbacks=[GradualPruning(ConstantSparsity(0.7, 0, frequency=4))])
    plain = ft.strip_sparsity(model)
    assert not ft.masked_kernels(plain)
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_bad_input(mlp, toy_data, compile_model):
    with pytest.raises(ValueError, match="Invalid `pruning_schedule`"):
        GradualPruning(0.8)
    dense = compile_model(mlp)
    x, y = toy_data
    with pytest.raises(ValueError, match="sparsify"):
        dense.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
                  callbacks=[GradualPruning(ConstantSparsity(0.5, 0))])


def test_config_round_trip():
    callback = GradualPruning(PolynomialDecay(0.0, 0.5, 0, 100, frequency=10), verbose=1)
    again = GradualPruning.from_config(callback.get_config())
    assert again.pruning_schedule == callback.pruning_schedule and again.verbose == 1


def test_a_schedule_the_run_does_not_finish_is_reported(mlp, toy_data, compile_model):
    model = _prunable(mlp, compile_model)
    x, y = toy_data
    # 16 steps; the schedule ends at step 100.
    with pytest.warns(UserWarning, match="final sparsity is 0.8000"):
        model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[
            GradualPruning(PolynomialDecay(0.0, 0.8, 0, 100, frequency=4))])


@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="Keras' PyTorch trainer runs one step per execution")
def test_steps_per_execution_prune_before_the_execution_holding_the_step(
        mlp, toy_data, compile_model):
    model = compile_model(ft.sparsify(mlp, 1.0, "uniform"), steps_per_execution=4)
    pruning = GradualPruning(PolynomialDecay(0.0, 0.8, begin_step=0, end_step=6,
                                             frequency=3))
    x, y = toy_data
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[pruning])
    # Executions of steps 0-3 and 4-7: steps 0 and 3 fall in the first (one
    # pruning, at step 3's sparsity), step 6 in the second.
    assert pruning.updates_done == 2 and pruning.sparsity == pytest.approx(0.8)
    for mk in ft.masked_kernels(model):
        size = int(np.prod(mk.mask.shape))
        assert int(np.asarray(mk.mask).sum()) == topology.kept_count(size, 0.8)
