"""`GradualPruning`: gradual magnitude pruning (dense to sparse) inside
`model.fit`, with tfmot's semantics, for Keras 3."""

import warnings

import keras
from keras import ops

from freetickets_tf import masking
from freetickets_tf import topology
from freetickets_tf.pruning_schedules import PruningSchedule

from ._step_counter import StepCounter


class GradualPruning(keras.callbacks.Callback):
    """Prunes every masked layer to the sparsity of `pruning_schedule`
    (Zhu & Gupta's gradual magnitude pruning; tfmot's `prune_low_magnitude`
    with its `UpdatePruningStep` callback, in one).

    Before each optimizer step `s` for which the schedule says to prune,
    each masked layer keeps its `max(round(size * (1 - sparsity(s))), 1)`
    largest-magnitude weights (`topology.prune_to_sparsity`) and the others
    are zeroed and stay masked: the mask only shrinks. Steps are read from
    `optimizer.iterations`, so a resumed run prunes at the same steps. With
    `steps_per_execution > 1` a pruning step inside an execution is applied
    before that execution, at its sparsity.

    Make the model prunable with `freetickets_tf.sparsify(model, density=1.0)`
    (masks all ones; `exclude` keeps layers dense), and fold the masks for
    serving with `freetickets_tf.strip_sparsity`. At the end of each epoch
    the callback adds `pruning_sparsity` (the schedule's latest sparsity) to
    `logs`.

    Args:
        pruning_schedule: A `freetickets_tf.pruning_schedules.PruningSchedule`
            (`PolynomialDecay` or `ConstantSparsity`).
        verbose: 1 prints one line per pruning step.

    Attributes:
        updates_done: Pruning steps made by this callback so far (a
            `TrainingFlopsCallback` given it as `sparsity_callback` counts
            the FLOPs at the new masks from then on).

    Example:

    >>> schedule = freetickets_tf.pruning_schedules.PolynomialDecay(
    ...     initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=1000)
    >>> prunable = freetickets_tf.sparsify(model, density=1.0)
    >>> prunable.compile("sgd", "sparse_categorical_crossentropy")
    >>> prunable.fit(x_train, y_train, epochs=5,
    ...              callbacks=[freetickets_tf.callbacks.GradualPruning(schedule)])
    >>> plain = freetickets_tf.strip_sparsity(prunable)
    """

    def __init__(self, pruning_schedule, verbose=0):
        super().__init__()
        if not isinstance(pruning_schedule, PruningSchedule):
            raise ValueError(
                "Invalid `pruning_schedule`: expected a freetickets_tf."
                "pruning_schedules.PolynomialDecay or ConstantSparsity, got "
                f"{type(pruning_schedule).__name__}.")
        self.pruning_schedule = pruning_schedule
        self.verbose = verbose
        self.updates_done = 0
        self.sparsity = None  # the latest pruning step's sparsity
        self._steps = StepCounter()
        self._next_step = 0  # the first step not looked at yet
        self._steps_per_execution = 1

    def update_flops(self, sparse_forward, dense_forward, batch_size):
        """FLOPs of a pruning step beyond the training steps: none (no
        gradient pass; the magnitudes are at hand)."""
        return 0.0

    def prune(self, step, sparsity):
        """Prunes every masked layer to `sparsity` now (the step is for the
        log line)."""
        kernels = masking.masked_kernels(self.model)
        if not kernels:
            raise ValueError(
                "GradualPruning needs a model with masked layers; this one has "
                "none. Make it prunable with `freetickets_tf.sparsify(model, "
                "density=1.0)`.")
        for mk in kernels:
            mask = topology.prune_to_sparsity(mk.kernel.value, mk.mask.value, sparsity)
            mk.kernel.assign(ops.where(mask, mk.kernel.value, ops.zeros_like(mk.kernel.value)))
            mk.mask.assign(mask)
        self.updates_done += 1
        self.sparsity = sparsity
        if self.verbose:
            print(f"Gradual pruning at step {step}: sparsity {sparsity:.4f}, "
                  f"overall density {masking.overall_density(self.model):.4f}")

    def on_epoch_begin(self, epoch, logs=None):
        # Read here, after any checkpoint restored in `on_train_begin`; once
        # per epoch, since touching `self.model` syncs JAX's whole state.
        model = self.model
        self._next_step = self._steps.read(model)
        self._steps_per_execution = getattr(model, "steps_per_execution", 1) or 1

    def on_train_batch_begin(self, batch, logs=None):
        start = self._steps.epoch_start + batch  # steps done before this batch
        end = start + self._steps_per_execution
        due = [s for s in range(self._next_step, end)
               if self.pruning_schedule.should_prune(s)]
        self._next_step = end
        if due:
            self.prune(due[-1], self.pruning_schedule.sparsity(due[-1]))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.sparsity is not None:
            logs["pruning_sparsity"] = self.sparsity

    def on_train_end(self, logs=None):
        final = self.pruning_schedule.final_sparsity_value
        if self.sparsity is None or self.sparsity < final - 1e-9:
            # A schedule longer than the run, or with no pruning turn at its
            # end: the model is denser than the schedule's name says.
            reached = "no pruning step" if self.sparsity is None else (
                f"sparsity {self.sparsity:.4f}")
            warnings.warn(
                f"GradualPruning: training ended with {reached}; the schedule's "
                f"final sparsity is {final:.4f} ({self.pruning_schedule!r}). "
                "Train longer, or end the schedule on a pruning step "
                "(`end_step - begin_step` a multiple of `frequency`).", stacklevel=2)

    def get_config(self):
        return {"pruning_schedule": keras.saving.serialize_keras_object(
                    self.pruning_schedule),
                "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["pruning_schedule"] = keras.saving.deserialize_keras_object(
            config["pruning_schedule"])
        return cls(**config)
