"""Counting optimizer steps during `fit` without reading them every batch."""

import keras


def optimizer_step(model):
    """`model.optimizer.iterations` as an int (also a mirrored variable under
    a `tf.distribute` strategy, which `int()` does not take)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations.value))


class StepCounter:
    """Knows `optimizer.iterations` after every batch of `fit`, cheaply.

    Reading a variable after every batch costs a device-to-host copy, and on
    JAX a sync of the trainer's whole live state back into the model. The
    counter reads `optimizer.iterations` once per epoch; within an epoch,
    Keras passes `on_train_batch_end` the index of the last step it ran (also
    with `steps_per_execution > 1`), so the step is the epoch's first step
    plus that index plus one. Resumed runs start from the restored count.
    """

    def __init__(self):
        self.epoch_start = None

    def read(self, model):
        """Reads the optimizer's step count; the start of the next batches."""
        self.epoch_start = optimizer_step(model)
        return self.epoch_start

    def after_batch(self, batch):
        """The step count after batch index `batch` of the current epoch."""
        return self.epoch_start + batch + 1
