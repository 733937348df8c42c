"""`EDSTCallback`: harvests an EDST ensemble from one `model.fit` run."""

import keras

from freetickets_tf._validation import check_death_rate
from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback
from freetickets_tf.callbacks.ticket_checkpoint import BestSnapshot
from freetickets_tf.callbacks.ticket_checkpoint import open_run
from freetickets_tf.schedules import EDSTSchedule

# docs/algorithms.md §4: the large death rate of EDST's global exploration.
LARGE_DEATH_RATE = 0.8


class EDSTCallback(keras.callbacks.Callback):
    """Drives an EDST run (docs/algorithms.md §4): learning rate, global exploration, tickets.

    Use it next to the `DynamicSparsityCallback` of the same model. Per epoch
    it sets the optimizer's learning rate from an `EDSTSchedule` (exploration
    at `learning_rates[0]`; each refinement phase at `learning_rates[1]`,
    dropping to `learning_rates[2]` at mid-phase); at the start of phases
    2..M it runs one global exploration, a topology update with the large
    death rate `q`; at the end of each phase it writes that phase's
    best-validation checkpoint as ticket m into `run_dir`. DST updates
    continue inside the phases. To resume an interrupted run, add a
    `TrainingCheckpoint(run, edst.snapshot)` (the EDST recipe does).

    Args:
        sparsity_callback: The run's `DynamicSparsityCallback`; its settings
            (growth mode, data, seed) are used for the global exploration.
        run_dir: A path or a `freetickets_tf.tickets.RunDirectory`.
        epochs: Total epochs of the run; `fit` must use the same number.
        exploration_epochs: Epochs of the exploration phase.
        num_members: Number of tickets (refinement phases).
        large_death_rate: `q`, the death rate of the global exploration.
        learning_rates: `(exploration, refinement, mid-phase)` learning
            rates, or more refinement rates with `phase_milestones`.
        phase_milestones, exploration_milestones, warmup_epochs: The rest of
            the learning-rate schedule (see `schedules.EDSTSchedule`).
        monitor: Log that selects each phase's best epoch.
        mode: `"max"`, `"min"`, or None (`"min"` for losses).
        selection: `"best"` or `"last"` (no validation data).
        seed: Seed of the run, recorded with each ticket.
        flops_callback: A `TrainingFlopsCallback`; its count is recorded.
        verbose: 1 prints a line per phase, exploration and ticket.

    Example:

    >>> dst = DynamicSparsityCallback(data=(x, y), update_frequency=1000)
    >>> edst = EDSTCallback(dst, "runs/edst", epochs=450, exploration_epochs=150,
    ...                     num_members=3)
    >>> sparse.fit(x, y, epochs=450, validation_data=(x_val, y_val),
    ...            callbacks=[dst, edst])
    """

    def __init__(self, sparsity_callback, run_dir, epochs, exploration_epochs,
                 num_members=3, large_death_rate=LARGE_DEATH_RATE,
                 learning_rates=(0.1, 0.01, 0.001), phase_milestones=None,
                 exploration_milestones=(), warmup_epochs=0,
                 monitor="val_accuracy", mode=None, selection="best", seed=None,
                 flops_callback=None, verbose=1):
        super().__init__()
        if not isinstance(sparsity_callback, DynamicSparsityCallback):
            raise ValueError(
                "Invalid `sparsity_callback`: expected the run's "
                f"DynamicSparsityCallback, got {type(sparsity_callback).__name__}."
            )
        self.schedule = EDSTSchedule(
            epochs, exploration_epochs, num_members, learning_rates,
            phase_milestones, exploration_milestones, warmup_epochs,
        )
        self.large_death_rate = check_death_rate(large_death_rate, "large_death_rate")
        self.sparsity_callback = sparsity_callback
        self.snapshot = BestSnapshot(monitor, mode, selection)
        self.run = open_run(
            run_dir, "edst", num_members, {"schedule": self.schedule.get_config()}
        )
        self.seed = seed
        self.flops_callback = flops_callback
        self.verbose = verbose

    def _print(self, message):
        if self.verbose:
            print(message, flush=True)

    def _flops(self):
        return None if self.flops_callback is None else self.flops_callback.total_flops

    def on_train_begin(self, logs=None):
        epochs = (self.params or {}).get("epochs")
        if epochs is not None and epochs != self.schedule.epochs:
            raise ValueError(
                f"`fit(epochs={epochs})` does not match the EDST schedule's "
                f"{self.schedule.epochs} epochs; pass the same number to both."
            )
        if self.sparsity_callback.model is None:
            self.sparsity_callback.set_model(self.model)

    def _set_learning_rate(self, value):
        try:
            self.model.optimizer.learning_rate = value
        except TypeError as error:
            raise ValueError(
                "EDSTCallback sets the learning rate each epoch, so the optimizer "
                "needs a float learning rate, not a LearningRateSchedule."
            ) from error

    def on_epoch_begin(self, epoch, logs=None):
        self._set_learning_rate(self.schedule.learning_rate(epoch))
        phase = self.schedule.phase_of(epoch)
        if phase is None or epoch != self.schedule.phases[phase][0]:
            return
        self.snapshot.reset()
        start, end = self.schedule.phases[phase]
        self._print(
            f"EDST phase {phase + 1}/{self.schedule.num_members}: epochs "
            f"{start + 1}-{end}, learning rate {self.schedule.learning_rate(epoch):g}"
        )
        if epoch in self.schedule.exploration_epochs:
            stats = self.sparsity_callback.update_topology(self.large_death_rate)
            self._print(
                f"Global exploration (q={self.large_death_rate:g}): moved "
                f"{stats['weights_moved']:,} weights, ITOP rate "
                f"{stats['itop_rate']:.4f}"
            )

    def on_epoch_end(self, epoch, logs=None):
        phase = self.schedule.phase_of(epoch)
        if phase is None:
            return
        self.snapshot.offer(self.model, epoch, logs)
        if epoch != self.schedule.phases[phase][1] - 1:
            return
        entry = self.snapshot.save_ticket(
            self.model, self.run, phase, seed=self.seed, training_flops=self._flops()
        )
        self._print(
            f"Ticket {phase} saved: {entry['file']} (epoch {entry['epoch']}, "
            + ("" if entry["monitor_value"] is None else
               f"{self.snapshot.monitor}={entry['monitor_value']:.4f}, ")
            + f"density {entry['density']:.4f})"
        )
