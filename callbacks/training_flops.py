"""`TrainingFlopsCallback`: counts the training FLOPs of a run (docs/algorithms.md §6)."""

import keras

from freetickets_tf import flops
from freetickets_tf import updaters
from freetickets_tf._validation import check_int

from ._step_counter import StepCounter


class TrainingFlopsCallback(keras.callbacks.Callback):
    """Accumulates the training FLOPs of `fit`, as the paper counts them.

    Every optimizer step adds `3 * f_S * batch_size` (forward plus a backward
    of twice its cost, at the masks' current density); every topology update
    of `sparsity_callback` adds its growth pass,
    `(f_S + 2 * f_D) * growth_batch_size` (see `flops.growth_pass_flops`;
    nothing for random or momentum growth, which need no gradient). Steps are
    read from `optimizer.iterations`, so `steps_per_execution > 1` is counted
    right. Evaluation and prediction are not training and are not counted.

    `f_S` is computed at the start of `fit` and again only when
    `sparsity_callback.updates_done` has changed, i.e. after a topology
    update or a pruning step, the only times masks change during `fit` (DST
    keeps each layer's active count, so `f_S` stays the same; gradual
    pruning lowers it). Updates are looked for before each batch, so the
    steps of a batch are counted at the masks they ran with, wherever this
    callback sits in the callbacks list (`GradualPruning` prunes at the
    start of a batch: put it before this callback); several
    updates between two batches (e.g. EDST's global exploration at an epoch
    boundary) each add a growth pass, all at the density before the first.

    The last, partial batch of an epoch is counted as a full `batch_size`
    batch: the callback does not know the dataset size. Batch the data with
    `drop_remainder=True`, or read the overcount (at most one batch per
    epoch) off the numbers.

    At the end of each epoch `logs["training_gflops"]` is the running total
    in GFLOPs (1e9 FLOPs; Keras' progress line prints logs to four decimals,
    which a raw count like 4340711424.0000 does not suit); `total_flops` is
    the exact count.
    The count carries over from one `fit` to the next with the same callback,
    and `initial_flops` continues it across a restart.

    Args:
        batch_size: Training examples per optimizer step.
        sparsity_callback: The run's `DynamicSparsityCallback` or
            `GradualPruning` (or anything with an `updates_done` counter);
            None for static masks or dense training.
        growth_batch_size: Examples of the growth batch. Defaults to the
            sparsity callback's `batch_size` (what it draws from arrays; pass
            the batch size of its dataset when it is given one), else
            `batch_size`.
        initial_flops: FLOPs already spent, e.g. `total_flops` of the run
            being resumed.

    Attributes:
        total_flops: Training FLOPs so far, `initial_flops` included.

    Example:

    >>> dst = freetickets_tf.callbacks.DynamicSparsityCallback(
    ...     data=(x_train, y_train), update_frequency=100)
    >>> counter = freetickets_tf.callbacks.TrainingFlopsCallback(
    ...     batch_size=128, sparsity_callback=dst)
    >>> sparse.fit(x_train, y_train, batch_size=128, epochs=5,
    ...            callbacks=[dst, counter])
    >>> counter.total_flops / freetickets_tf.flops.dense_training_flops(
    ...     sparse, len(x_train), epochs=5)
    0.3...
    """

    def __init__(
        self,
        batch_size,
        sparsity_callback=None,
        growth_batch_size=None,
        initial_flops=0.0,
    ):
        super().__init__()
        self.batch_size = check_int("batch_size", batch_size, 1)
        if sparsity_callback is not None and not hasattr(
            sparsity_callback, "updates_done"
        ):
            raise ValueError(
                "Invalid `sparsity_callback`: expected a DynamicSparsityCallback "
                f"(with an `updates_done` counter), got {type(sparsity_callback).__name__}."
            )
        self.sparsity_callback = sparsity_callback
        self.growth_batch_size = check_int(
            "growth_batch_size", growth_batch_size, 1, allow_none=True
        )
        self.initial_flops = flops._check_count("initial_flops", initial_flops)
        self.total_flops = self.initial_flops
        self._updates_seen = None
        self._forward = None  # (f_S, f_D) at the current masks
        self._steps = StepCounter()

    def _growth_batch_size(self):
        if self.growth_batch_size is not None:
            return self.growth_batch_size
        return getattr(self.sparsity_callback, "batch_size", None) or self.batch_size

    def _measure(self):
        self._forward = (
            flops.forward_flops(self.model, sparse=True),
            flops.forward_flops(self.model, sparse=False),
        )

    def _sync_updates(self):
        """Adds the growth passes of the updates made since the last look."""
        if self.sparsity_callback is None:
            return
        done = self.sparsity_callback.updates_done
        new = done - self._updates_seen
        self._updates_seen = done
        if new <= 0:
            return
        # Anything with `updates_done` may stand in: its own `update_flops`
        # (gradual pruning), its updater's, or the rule its `growth` names.
        update_flops = getattr(self.sparsity_callback, "update_flops", None)
        if update_flops is None:
            updater = getattr(self.sparsity_callback, "updater", None) or updaters.get(
                getattr(self.sparsity_callback, "growth", "gradient"))
            update_flops = updater.update_flops
        self.total_flops += new * update_flops(*self._forward, self._growth_batch_size())
        self._measure()  # the masks changed

    def on_train_begin(self, logs=None):
        if self.sparsity_callback is not None:
            if self._updates_seen is None:
                # Updates made before this callback's first `fit` are not its run.
                self._updates_seen = self.sparsity_callback.updates_done
            else:
                self._sync_updates()  # made between two `fit` calls
        self._measure()  # the masks may have been set anew since
        self._last_step = self._steps.read(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        # Read again here: a checkpoint restored after `on_train_begin` may
        # have moved the step on.
        self._last_step = self._steps.read(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        # Nothing updates masks at batch begin, so updates seen here were made
        # before this batch's steps, whatever the callback order.
        self._sync_updates()

    def on_train_batch_end(self, batch, logs=None):
        step = self._steps.after_batch(batch)
        steps = max(0, step - self._last_step)
        self._last_step = step
        self.total_flops += 3.0 * self._forward[0] * self.batch_size * steps

    def on_epoch_end(self, epoch, logs=None):
        self._sync_updates()  # an update at the epoch's last batch
        if logs is not None:
            logs["training_gflops"] = self.total_flops / 1e9

    def on_train_end(self, logs=None):
        self._sync_updates()

    def get_config(self):
        """The constructor arguments, less `sparsity_callback` (not serialisable)."""
        return {
            "batch_size": self.batch_size,
            "growth_batch_size": self.growth_batch_size,
            "initial_flops": self.initial_flops,
        }
