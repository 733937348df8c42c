"""NonFiniteGuard stops a diverged run before anything saves its epoch."""

import keras
import numpy as np
import pytest

from freetickets_tf.callbacks import NonFiniteGuard


class Saver(keras.callbacks.Callback):
    saved = []

    def on_epoch_end(self, epoch, logs=None):
        Saver.saved.append(epoch)


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="out")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def test_finite_training_passes_untouched():
    model = _model()
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[NonFiniteGuard("run a")])
    assert len(history.history["loss"]) == 2


def test_nan_weights_stop_before_the_next_callback_saves():
    model = _model()
    Saver.saved = []

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.params and batch == 0:
                kernel = self.model.get_layer("out").kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    with pytest.raises(FloatingPointError, match="run b diverged in epoch 1"):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                  callbacks=[Poison(), NonFiniteGuard("run b"), Saver()])
    assert Saver.saved == []


def test_infinite_validation_loss_stops_too():
    model = _model()
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    y_val = np.full((8, 2), 1e30, "float32")  # a square of 1e30 overflows float32
    with pytest.raises(FloatingPointError, match="val_loss"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y_val),
                  callbacks=[NonFiniteGuard()])
