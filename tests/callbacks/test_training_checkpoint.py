"""TrainingCheckpoint saves and restores: a user's own `fit` of an EDST run,
stopped after any epoch, resumes to the tickets of an uninterrupted run."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.callbacks import DynamicSparsityCallback
from freetickets_tf.callbacks import EDSTCallback
from freetickets_tf.callbacks import TrainingCheckpoint
from freetickets_tf.callbacks import TrainingFlopsCallback
from freetickets_tf.tickets import RunDirectory

EPOCHS, EXPLORATION, MEMBERS = 5, 1, 2


class Stop(Exception):
    """Stands in for the process dying after a checkpoint was written."""


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Stop


def _user_fit(toy_data, run_dir, stop_after=None):
    """What a user writes: their model, DST + EDST + FLOPs + checkpoint."""
    x, y = toy_data
    train = ft.data.from_arrays(x[:192], y[:192], batch_size=32, seed=0)
    keras.utils.set_random_seed(0)
    model = ft.sparsify(keras.Sequential([
        keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(4)]), 0.3, seed=0)
    model.compile(ft.optimizers.TorchSGD(0.1, momentum=0.9, weight_decay=5e-4),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    dst = DynamicSparsityCallback(data=train, update_frequency=3, seed=0)
    flops = TrainingFlopsCallback(32, dst)
    edst = EDSTCallback(dst, run_dir, EPOCHS, EXPLORATION, MEMBERS, seed=0,
                        flops_callback=flops, verbose=0)
    checkpoint = TrainingCheckpoint(edst.run, edst.snapshot, flops, stage="edst")
    start = checkpoint.initial_epoch
    callbacks = [dst, flops, edst, checkpoint]
    if stop_after is not None:
        callbacks.append(StopAfter(stop_after))
    model.fit(train.epochs(start, EPOCHS), steps_per_epoch=train.steps_per_epoch,
              initial_epoch=start, epochs=EPOCHS, validation_data=(x[192:], y[192:]),
              callbacks=callbacks, shuffle=False, verbose=0)
    edst.run.release()
    return start


def _tickets(path):
    run = RunDirectory.open(path)
    return [[np.asarray(w) for w in t.get_weights()] for t in run.load_tickets()], run.tickets


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_stopped_user_fit_resumes_to_the_same_tickets(toy_data, tmp_path, stop_after):
    _user_fit(toy_data, str(tmp_path / "whole"))
    with pytest.raises(Stop):
        _user_fit(toy_data, str(tmp_path / "stopped"), stop_after=stop_after)
    assert _user_fit(toy_data, str(tmp_path / "stopped")) == stop_after
    (whole, whole_entries), (resumed, resumed_entries) = (
        _tickets(tmp_path / "whole"), _tickets(tmp_path / "stopped"))
    assert len(whole) == len(resumed) == MEMBERS
    for a, b in zip(whole, resumed):
        for wa, wb in zip(a, b):
            if wa.dtype == bool:
                np.testing.assert_array_equal(wa, wb)  # masks and explored records
            else:
                np.testing.assert_allclose(wa, wb, atol=1e-6)
    for a, b in zip(whole_entries, resumed_entries):
        assert (a["epoch"], a["training_flops"]) == (b["epoch"], b["training_flops"])


def test_fit_at_another_epoch_than_the_checkpoint_is_refused(toy_data, tmp_path):
    with pytest.raises(Stop):
        _user_fit(toy_data, str(tmp_path / "run"), stop_after=2)
    x, y = toy_data
    run = RunDirectory.create(str(tmp_path / "run"), "edst", MEMBERS)
    model = ft.sparsify(keras.Sequential([
        keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(4)]), 0.3, seed=0)
    model.compile(ft.optimizers.TorchSGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    checkpoint = TrainingCheckpoint(run, stage="edst")
    assert checkpoint.initial_epoch == 2
    with pytest.raises(ValueError, match="after epoch 2 .* starts at epoch 0.*initial_epoch"):
        model.fit(x, y, epochs=3, callbacks=[checkpoint], verbose=0)
    other = TrainingCheckpoint(run, stage="finetune")  # another stage's: not restored
    assert other.initial_epoch == 0
    run.release()
