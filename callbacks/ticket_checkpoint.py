"""`TicketCheckpoint`: saves the best-validation checkpoint of a run as a ticket."""

import keras

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int
from freetickets_tf.tickets import RunDirectory

SELECTIONS = ("best", "last")


def _default_mode(monitor):
    return "min" if monitor.endswith("loss") else "max"


class BestSnapshot:
    """Keeps the weights of the best epoch seen so far, in memory.

    Args:
        monitor: The log to compare, e.g. `"val_accuracy"`.
        mode: `"max"` or `"min"`; None picks `"min"` for losses.
        selection: `"best"` (by `monitor`) or `"last"` (the latest epoch,
            when there is no validation data).
        first_epoch: Epochs before this one are never recorded (gradual
            pruning: a ticket must be at its final sparsity).
    """

    def __init__(self, monitor="val_accuracy", mode=None, selection="best", first_epoch=0):
        self.monitor = monitor
        self.mode = check_choice("mode", mode or _default_mode(monitor), ("max", "min"))
        self.selection = check_choice("selection", selection, SELECTIONS)
        self.first_epoch = check_int("first_epoch", first_epoch, 0)
        self.reset()

    def reset(self):
        self.weights = None
        self.epoch = None
        self.value = None
        self.logs = {}

    def _improves(self, value):
        if self.value is None or self.selection == "last":
            return True
        return value > self.value if self.mode == "max" else value < self.value

    def offer(self, model, epoch, logs):
        """Records `model`'s weights if `epoch` is the best so far."""
        if epoch < self.first_epoch:
            return
        logs = logs or {}
        value = logs.get(self.monitor)
        if self.selection == "best" and value is None:
            raise ValueError(
                f"Best-validation selection needs {self.monitor!r} in the epoch "
                f"logs, which only has {sorted(logs)}. Pass `validation_data` "
                "to `fit`, monitor another log, or use selection='last'."
            )
        if self._improves(value):
            self.weights = model.get_weights()  # numpy copies
            self.epoch, self.value, self.logs = epoch, value, dict(logs)

    def state(self):
        """`(weights, info)`: what `restore` needs to continue after a restart
        (`info` is JSON-serialisable)."""
        info = {
            "epoch": self.epoch,
            "value": _float_or_none(self.value),
            "logs": {k: _float_or_none(v) for k, v in self.logs.items()},
        }
        return self.weights, info

    def restore(self, weights, info):
        """Continues from a `state()` saved before a restart."""
        self.weights = weights
        self.epoch, self.value = info["epoch"], info["value"]
        self.logs = dict(info["logs"])

    def save_ticket(self, model, run, member, **info):
        """Writes the recorded weights as ticket `member` of `run`, leaving
        `model` as it was; returns the manifest entry."""
        if self.weights is None:
            raise ValueError("No epoch has been recorded yet; nothing to save.")
        current = model.get_weights()
        model.set_weights(self.weights)
        try:
            return run.save_ticket(
                model,
                member,
                epoch=self.epoch + 1,  # as Keras' progress bar numbers it
                monitor=self.monitor,
                monitor_value=None if self.value is None else float(self.value),
                val_accuracy=_float_or_none(self.logs.get("val_accuracy")),
                **info,
            )
        finally:
            model.set_weights(current)


def _float_or_none(value):
    return None if value is None else float(value)


def open_run(run_dir, method, num_members, config=None):
    """A `RunDirectory` from a path (created or resumed) or as given."""
    if isinstance(run_dir, RunDirectory):
        return run_dir
    return RunDirectory.create(run_dir, method, num_members, config)


class TicketCheckpoint(keras.callbacks.Callback):
    """Saves the best-validation checkpoint of a run as one ticket.

    During `fit` it keeps the weights (masks included) of the epoch with the
    best `monitor` in memory; when training ends it writes them as ticket
    `member` of the run directory, with its manifest entry. Used for each
    member of a DST, static, PF or dense deep ensemble.

    Args:
        run_dir: A path or a `freetickets_tf.tickets.RunDirectory`.
        member: Index of the ticket this run produces.
        method: Ensemble method recorded in the manifest (path only).
        num_members: Tickets of the whole run (path only).
        monitor: Log compared between epochs.
        mode: `"max"`, `"min"`, or None (`"min"` for losses).
        selection: `"best"` or `"last"`.
        seed: Seed of this member, recorded in the manifest.
        flops_callback: A `TrainingFlopsCallback` whose count is recorded.
        first_epoch: The first epoch that may become the ticket.

    Example:

    >>> model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[
    ...     dst, TicketCheckpoint("runs/dst", member=0, method="dst",
    ...                           num_members=3, seed=0)])
    """

    def __init__(self, run_dir, member, method="dst", num_members=1,
                 monitor="val_accuracy", mode=None, selection="best", seed=None,
                 flops_callback=None, first_epoch=0):
        super().__init__()
        # Every argument checked before the run directory is made.
        self.member = check_int("member", member, 0)
        num_members = (run_dir.num_members if isinstance(run_dir, RunDirectory)
                       else check_int("num_members", num_members, 1))
        if self.member >= num_members:
            raise ValueError(
                f"Invalid `member`: {member}; a run of {num_members} tickets has "
                f"members 0..{num_members - 1}.")
        self.snapshot = BestSnapshot(monitor, mode, selection, first_epoch)
        self.run = open_run(run_dir, method, num_members)
        self.seed = seed
        self.flops_callback = flops_callback
        self.entry = None

    def on_epoch_end(self, epoch, logs=None):
        self.snapshot.offer(self.model, epoch, logs)

    def on_train_end(self, logs=None):
        if self.snapshot.weights is None:
            return  # stopped before the first epoch ended
        flops = None if self.flops_callback is None else self.flops_callback.total_flops
        self.entry = self.snapshot.save_ticket(
            self.model, self.run, self.member, seed=self.seed, training_flops=flops
        )
