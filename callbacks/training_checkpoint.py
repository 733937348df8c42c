"""`TrainingCheckpoint`: the full training state after every epoch, to resume."""

import keras

from freetickets_tf import tickets
from freetickets_tf._validation import check_int
from freetickets_tf.tickets import RunDirectory


def restore_training_state(source, model):
    """Copies the weights (masks and explored records included) and the
    optimizer state (slots and step) of `source`, a loaded checkpoint, into
    `model`, whose optimizer is built here if it is not yet."""
    model.set_weights(source.get_weights())
    optimizer = model.optimizer
    if optimizer is None:
        raise ValueError("The model is not compiled: compile it before `fit` resumes.")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    saved = source.optimizer.variables if source.optimizer is not None else []
    if [tuple(v.shape) for v in saved] != [tuple(v.shape) for v in optimizer.variables]:
        raise ValueError(
            f"The checkpoint's optimizer ({type(source.optimizer).__name__}, "
            f"{len(saved)} variables) does not match the model's "
            f"({type(optimizer).__name__}, {len(optimizer.variables)} variables): "
            "compile with the optimizer the run was trained with.")
    for target, value in zip(optimizer.variables, saved):
        target.assign(value)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves everything a run needs to continue, at the end of every epoch,
    and restores it when `fit` starts again (as Keras' `BackupAndRestore`).

    The model is saved with its optimizer: weights, masks, optimizer slots and
    the step count (which the sparsity callbacks read their schedules from).
    Next to it go the weights of the best epoch so far (`snapshot`), the
    training FLOPs so far (`flops_callback`) and `state` (which member and
    stage of the run this is). Writes are atomic and the run directory's
    manifest names the checkpoint only once it is complete (see
    `RunDirectory.save_checkpoint`), so a process killed at any moment
    leaves a checkpoint to resume from: at worst the epoch it was in is
    trained again.

    To resume, build the same model and callbacks again and start `fit` at
    `initial_epoch`, with the data from that epoch: at `on_train_begin` the
    checkpoint whose `state` matches this one's is restored into the model
    (weights, masks, explored records, optimizer slots and step), the
    snapshot and the FLOPs count. A `fit` that starts at another epoch than
    the checkpoint's is an error, not a silently different run.

    Args:
        run: The `RunDirectory` of the run.
        snapshot: The `BestSnapshot` of the ticket being selected, or None.
        flops_callback: The run's `TrainingFlopsCallback`, or None.
        every: Save after every this many epochs (and after the last one).
        restore: Restore a matching checkpoint when `fit` starts (False:
            only save, e.g. when the caller has loaded the checkpoint).
        **state: JSON-serialisable facts recorded with each checkpoint, e.g.
            `member=0, stage="train"`; a checkpoint is restored only into a
            callback of the same state.

    Example:

    >>> run = RunDirectory.create("runs/dst", "dst", num_members=1)
    >>> ticket = TicketCheckpoint(run, member=0)
    >>> checkpoint = TrainingCheckpoint(run, ticket.snapshot, member=0)
    >>> start = checkpoint.initial_epoch          # 0, or where a killed run stopped
    >>> model.fit(train.epochs(start, 250), initial_epoch=start, epochs=250,
    ...           steps_per_epoch=train.steps_per_epoch,
    ...           validation_data=(x_val, y_val), callbacks=[dst, ticket, checkpoint])
    """

    def __init__(self, run, snapshot=None, flops_callback=None, every=1, restore=True,
                 **state):
        super().__init__()
        if not isinstance(run, RunDirectory):
            raise ValueError(
                f"Invalid `run`: expected a RunDirectory, got {type(run).__name__}."
            )
        self.run = run
        self.snapshot = snapshot
        self.flops_callback = flops_callback
        self.every = check_int("every", every, 1)
        self.restore = bool(restore)
        self.state = state
        self._expected_epoch = None

    @property
    def initial_epoch(self):
        """The epoch to start `fit` at: the matching checkpoint's, or 0."""
        checkpoint = self.run.checkpoint_of(**self.state)
        return 0 if checkpoint is None else checkpoint[1]["epoch"]

    def on_train_begin(self, logs=None):
        checkpoint = self.run.checkpoint_of(**self.state) if self.restore else None
        if checkpoint is None:
            return
        _, state = checkpoint
        saved = self.run.load_checkpoint(tickets.architecture(self.model)["digest"])
        restore_training_state(saved, self.model)
        if self.snapshot is not None and state.get("best") is not None:
            self.snapshot.restore(self.run.checkpoint_best_weights(), state["best"])
        if self.flops_callback is not None and state.get("training_flops") is not None:
            self.flops_callback.total_flops = state["training_flops"]
        self._expected_epoch = state["epoch"]

    def on_epoch_begin(self, epoch, logs=None):
        expected, self._expected_epoch = self._expected_epoch, None
        if expected is not None and epoch != expected:
            raise ValueError(
                f"Restored the checkpoint saved after epoch {expected} of {self.run.path!r}, "
                f"but `fit` starts at epoch {epoch}. Pass `initial_epoch="
                "checkpoint.initial_epoch` to `fit`, and the data from that epoch on "
                "(`train.epochs(checkpoint.initial_epoch, epochs)`).")

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == (self.params or {}).get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        best_weights, best = None, None
        if self.snapshot is not None and self.snapshot.weights is not None:
            best_weights, best = self.snapshot.state()
        flops = None if self.flops_callback is None else self.flops_callback.total_flops
        self.run.save_checkpoint(
            self.model,
            best_weights=best_weights,
            best=best,
            epoch=epoch + 1,
            training_flops=flops,
            **self.state,
        )

    def get_config(self):
        """The serialisable settings (the run and callbacks are not)."""
        return {"every": self.every, "restore": self.restore, **self.state}
