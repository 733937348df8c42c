"""EDSTCallback: learning-rate pattern, global exploration and tickets (SPEC §4)."""

import math

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.callbacks import DynamicSparsityCallback
from freetickets_tf.callbacks import EDSTCallback
from freetickets_tf.tickets import RunDirectory


class LearningRateLog(keras.callbacks.Callback):
    """Reads the learning rate each epoch, after EDSTCallback has set it."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


@pytest.fixture
def setup(mlp, toy_data, compile_model, tmp_path):
    model = compile_model(ft.sparsify(mlp, 0.3, seed=0), metrics=["accuracy"])
    dst = DynamicSparsityCallback(data=toy_data, update_frequency=3, seed=0)
    return model, dst, toy_data, tmp_path / "run"


def test_global_exploration_moves_q_of_every_layers_active_weights(setup):
    model, dst, _, run_dir = setup
    edst = EDSTCallback(dst, run_dir, epochs=6, exploration_epochs=2, num_members=2,
                        verbose=0)
    edst.set_model(model)
    dst.set_model(model)
    before = [(np.asarray(mk.mask), np.asarray(mk.kernel))
              for mk in ft.masked_kernels(model)]
    edst.on_epoch_begin(2)  # phase 1 starts: no exploration
    for (mask, kernel), mk in zip(before, ft.masked_kernels(model)):
        np.testing.assert_array_equal(np.asarray(mk.mask), mask)
    edst.on_epoch_begin(4)  # phase 2 starts with a global exploration
    checked = 0
    for (mask, kernel), mk in zip(before, ft.masked_kernels(model)):
        new_mask, new_kernel = np.asarray(mk.mask), np.asarray(mk.kernel)
        active = int(mask.sum())
        if active == mask.size:
            np.testing.assert_array_equal(new_mask, mask)  # dense: left alone
            continue
        checked += 1
        assert new_mask.sum() == active
        # Survivors keep their (non-zero) value; dropped weights are gone or,
        # if regrown at once, restart from zero.
        dropped = mask & ((~new_mask) | (new_kernel == 0))
        assert dropped.sum() == math.ceil(0.8 * active)
    assert checked == 2
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_fit_follows_the_schedule_and_writes_one_ticket_per_phase(setup):
    model, dst, (x, y), run_dir = setup
    edst = EDSTCallback(dst, run_dir, epochs=7, exploration_epochs=3, num_members=2,
                        learning_rates=(0.1, 0.01, 0.001), seed=0, verbose=0)
    log = LearningRateLog()
    model.fit(x, y, batch_size=64, epochs=7, validation_data=(x, y), verbose=0,
              callbacks=[dst, edst, log])
    expected = [0.1, 0.1, 0.1, 0.01, 0.001, 0.01, 0.001]
    np.testing.assert_allclose(log.rates, expected, rtol=1e-6)
    run = RunDirectory.open(run_dir)
    assert run.complete and run.method == "edst"
    first, second = run.tickets
    assert 4 <= first["epoch"] < 6 and 6 <= second["epoch"] < 8  # numbered from 1
    assert first["monitor"] == "val_accuracy" and first["seed"] == 0
    assert first["density"] == pytest.approx(0.3, abs=0.01)
    # Training checkpoints are TrainingCheckpoint's job (the recipe adds it).
    assert run.checkpoint is None
    # Each ticket is its phase's best-validation checkpoint.
    history_val = None  # recomputed below from the saved ticket
    ticket = run.load_ticket(1)
    ticket.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    history_val = ticket.evaluate(x, y, verbose=0)[1]
    assert history_val == pytest.approx(second["val_accuracy"], abs=1e-6)


def test_best_validation_without_validation_data_is_a_clear_error(setup):
    model, dst, (x, y), run_dir = setup
    edst = EDSTCallback(dst, run_dir, epochs=3, exploration_epochs=1, num_members=2,
                        verbose=0)
    with pytest.raises(ValueError, match="val_accuracy.*validation_data"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[dst, edst])


def test_last_selection_needs_no_validation_data(setup):
    model, dst, (x, y), run_dir = setup
    edst = EDSTCallback(dst, run_dir, epochs=3, exploration_epochs=1, num_members=2,
                        selection="last", verbose=0)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[dst, edst])
    assert [t["epoch"] for t in RunDirectory.open(run_dir).tickets] == [2, 3]


def test_fit_epochs_must_match_the_schedule(setup):
    model, dst, (x, y), run_dir = setup
    edst = EDSTCallback(dst, run_dir, epochs=5, exploration_epochs=1, num_members=2,
                        verbose=0)
    with pytest.raises(ValueError, match="epochs=4"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[dst, edst])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_members": 0}, "num_members"),
        ({"exploration_epochs": 6}, "exploration_epochs"),
        ({"exploration_epochs": 5, "num_members": 2}, "shorter than one epoch"),
        ({"large_death_rate": 1.0}, "large_death_rate"),
        ({"selection": "median"}, "selection"),
    ],
)
def test_bad_arguments(setup, kwargs, match):
    _, dst, _, run_dir = setup
    args = {"epochs": 6, "exploration_epochs": 2, "num_members": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        EDSTCallback(dst, run_dir, **args)


def test_sparsity_callback_must_be_a_dst_callback(tmp_path):
    with pytest.raises(ValueError, match="sparsity_callback"):
        EDSTCallback(keras.callbacks.History(), tmp_path, 6, 2, 2)


def test_learning_rate_schedule_optimizer_is_refused(mlp, toy_data, tmp_path):
    model = ft.sparsify(mlp, 0.3, seed=0)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(keras.optimizers.SGD(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dst = DynamicSparsityCallback(data=toy_data, update_frequency=3)
    edst = EDSTCallback(dst, tmp_path, 3, 1, 2, verbose=0)
    with pytest.raises(ValueError, match="LearningRateSchedule"):
        model.fit(*toy_data, epochs=3, verbose=0, callbacks=[dst, edst])
