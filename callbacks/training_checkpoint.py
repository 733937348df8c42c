"""`TrainingCheckpoint`: the full training state after every epoch, to resume."""

import keras

from freetickets_tf._validation import check_int
from freetickets_tf.tickets import RunDirectory


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves everything a run needs to continue, at the end of every epoch.

    The model is saved with its optimizer: weights, masks, optimizer slots and
    the step count (which the sparsity callbacks read their schedules from).
    Next to it go the weights of the best epoch so far (`snapshot`), the
    training FLOPs so far (`flops_callback`) and `state` (which member and
    stage of the recipe this is). Writes are atomic and the run directory's
    manifest names the checkpoint only once it is complete (see
    `RunDirectory.save_checkpoint`), so a process killed at any moment
    leaves a checkpoint to resume from: at worst the epoch it was in is
    trained again. The recipes of `freetickets_tf.ensembles` add one of these
    to every `fit` and resume from it.

    Args:
        run: The `RunDirectory` of the run.
        snapshot: The `BestSnapshot` of the ticket being selected, or None.
        flops_callback: The run's `TrainingFlopsCallback`, or None.
        every: Save after every this many epochs (and after the last one).
        **state: JSON-serialisable facts recorded with each checkpoint, e.g.
            `member=0, stage="train"`.

    Example:

    >>> run = RunDirectory.create("runs/dst", "dst", num_members=3)
    >>> ticket = TicketCheckpoint(run, member=0)
    >>> model.fit(x, y, epochs=250, validation_data=(x_val, y_val), callbacks=[
    ...     ticket, TrainingCheckpoint(run, ticket.snapshot, member=0)])
    >>> path, state = run.checkpoint  # state["epoch"] == 250
    """

    def __init__(self, run, snapshot=None, flops_callback=None, every=1, **state):
        super().__init__()
        if not isinstance(run, RunDirectory):
            raise ValueError(
                f"Invalid `run`: expected a RunDirectory, got {type(run).__name__}."
            )
        self.run = run
        self.snapshot = snapshot
        self.flops_callback = flops_callback
        self.every = check_int("every", every, 1)
        self.state = state

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
        return {"every": self.every, **self.state}
