"""`NonFiniteGuard`: a run whose loss or weights stop being numbers ends, loudly."""

import keras
from keras import ops


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training with an error when a loss or a weight is NaN or infinite.

    Keras' `TerminateOnNaN` only stops `fit`, and the callbacks after it
    would still save the epoch's model as a checkpoint or ticket. This one
    raises `FloatingPointError` at the end of the first epoch whose training
    or validation loss, or any weight, is not finite, before any later
    callback sees that epoch: put it first in the callback list. The error
    names the run (`label`) and the epoch. Nothing of that epoch is saved;
    the checkpoint of the epoch before stays the one to resume from.

    Args:
        label: Names the run in the error, e.g. `"member 1 (seed 1) of the
            dst run"`.

    Example:

    >>> model.fit(x, y, epochs=10, callbacks=[NonFiniteGuard("my run"), checkpoint])
    """

    def __init__(self, label="the run"):
        super().__init__()
        self.label = label

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not bool(ops.convert_to_numpy(ops.isfinite(value))):
                self._fail(epoch, f"its {key} is {float(value)}")
        for variable in self.model.weights:
            if variable.dtype not in ("float16", "bfloat16", "float32", "float64"):
                continue
            finite = ops.convert_to_numpy(ops.all(ops.isfinite(variable.value)))
            if not bool(finite):
                self._fail(epoch, f"weight {variable.path} holds NaN or Inf")

    def _fail(self, epoch, what):
        raise FloatingPointError(
            f"Training of {self.label} diverged in epoch {epoch + 1}: {what}. "
            "Nothing of this epoch was saved. Lower the learning rate, or check "
            "the inputs and the loss for NaN or Inf."
        )
