"""`DynamicSparsityCallback`: dynamic sparse training inside `model.fit`."""

import keras

from freetickets_tf import backend
from freetickets_tf import growth_batches
from freetickets_tf import masking
from freetickets_tf import optimizer_slots
from freetickets_tf import updaters
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_death_rate
from freetickets_tf._validation import check_int
from freetickets_tf.backend import make_loss_gradient_fn
from freetickets_tf.data.training_set import TrainingSet
from freetickets_tf.schedules import DSTSchedule

from ._step_counter import StepCounter
from ._step_counter import optimizer_step


# Where the growth gradient's batch comes from: a "fresh" batch drawn for the
# update (docs/algorithms.md §3), or the "last" training batch, as the original (whose
# `truncate_weights` reads the `.grad` the last step left).
GROWTH_BATCHES = ("fresh", "last")


class DynamicSparsityCallback(keras.callbacks.Callback):
    """Dynamic sparse training (SET / RigL) for a sparse Keras model.

    Every `update_frequency` optimizer steps, each masked layer that is not
    dense drops `ceil(p * n_active)` of its active weights (smallest magnitude,
    or SET's rule) and grows as many inactive ones: those with the largest
    dense gradient of the training loss on one batch from `data` (RigL), at
    random (SET), or by the largest optimizer momentum. Grown weights start at
    zero and their optimizer slots are zeroed. Steps count from
    `optimizer.iterations` (read once per epoch), so `steps_per_execution > 1`
    and resumed runs keep the same schedule.

    The model must have masked layers: make it with `freetickets_tf.sparsify`.
    At the end of each epoch the callback adds to `logs`: `itop_rate` (the
    In-Time Over-Parameterisation rate), `weights_moved` (during that epoch)
    and `death_rate`.

    Args:
        data: Training data for the growth gradient: an `(x, y)` tuple of
            arrays (batches of `batch_size` are drawn from it), a
            `data.TrainingSet` (batch number `step` of its growth
            stream), a `tf.data.Dataset` of `(x, y)` batches or any
            re-iterable of them, or a function `step -> (x, y)`
            (`freetickets_tf.growth_batches.growth_source`). Required for
            `growth="gradient"`.
        update_frequency: Optimizer steps between topology updates (ΔT).
        death_rate: Fraction `p` of each layer's active weights moved per
            update, in [0, 1).
        death_rate_schedule: `"constant"` or `"cosine"` (from `p` down to
            0.005 at `end_step`, or at the end of `fit` if `end_step` is None).
        death: `"magnitude"` or `"set"`.
        growth: `"gradient"` (RigL), `"random"` (SET) or `"momentum"`, or an
            updater object (`freetickets_tf.updaters.SET` or a subclass: a
            custom growth rule overrides its `grow_scores`).
        start_step: No update before this optimizer step.
        end_step: No update after this optimizer step (None: never stop).
        reset_optimizer_state: Zero the optimizer slots of grown weights
            (RigL). False keeps the original code's behaviour.
        seed: Seed for random growth and for drawing growth batches from
            arrays. Draws depend on (seed, step) only, so a resumed run
            makes the same updates as an uninterrupted one.
        verbose: 1 prints one line per update.
        batch_size: Size of the growth batch when `data` is a tuple of arrays.
        prune_dense_layers: Rewire layers that have no inactive weights too
            (the original's quirk: their `ceil(p * N)` smallest weights are
            zeroed and regrown at zero each update). False (docs/algorithms.md §3) leaves
            them alone.
        growth_batch: `"fresh"`: the growth gradient is taken on a batch
            drawn for the update (docs/algorithms.md §3). `"last"`: on the batch of the
            training step that triggered the update, at the weights before
            that step, as the original's `.grad`. `"last"` needs `data` to be
            the `data.TrainingSet` that `fit` trains on, from epoch 0
            (`train.epochs(...)`), and `steps_per_execution=1`; EDST's
            global exploration then uses the last batch of the epoch before.

    Attributes:
        updater: The `freetickets_tf.updaters` object that performs each
            update (`growth` and `death` name its rule).
        updates_done: Topology updates run by this callback object so far
            (other callbacks, e.g. `TrainingFlopsCallback`, watch it).
        last_update: `{"step", "weights_moved", "death_rate", "itop_rate"}`
            of the latest update, or None.

    Example:

    >>> sparse = freetickets_tf.sparsify(model, density=0.2)
    >>> sparse.compile("sgd", "sparse_categorical_crossentropy")
    >>> dst = freetickets_tf.callbacks.DynamicSparsityCallback(
    ...     data=(x_train, y_train), update_frequency=100)
    >>> sparse.fit(x_train, y_train, epochs=5, callbacks=[dst])
    """

    def __init__(
        self,
        data=None,
        update_frequency=1000,
        death_rate=0.5,
        death_rate_schedule="constant",
        death="magnitude",
        growth="gradient",
        start_step=0,
        end_step=None,
        reset_optimizer_state=True,
        seed=None,
        verbose=0,
        batch_size=128,
        prune_dense_layers=False,
        growth_batch="fresh",
        schedule=None,
    ):
        super().__init__()
        if schedule is None:
            schedule = DSTSchedule(update_frequency, death_rate, death_rate_schedule,
                                   start_step, end_step)
        elif not isinstance(schedule, DSTSchedule):
            raise ValueError(
                f"Invalid `schedule`: expected a freetickets_tf.schedules.DSTSchedule, "
                f"got {type(schedule).__name__}.")
        self.schedule = schedule
        self.updater = updaters.get(growth, death)
        self.growth, self.death = self.updater.name, self.updater.death
        if self.updater.needs_gradient and data is None:
            raise ValueError(
                f"growth={self.growth!r} needs `data`: a tf.data.Dataset or iterable "
                "of (x, y) batches, or an (x, y) tuple of training arrays. "
                "Or choose growth='random' or 'momentum'."
            )
        self.growth_batch = check_choice("growth_batch", growth_batch, GROWTH_BATCHES)
        if growth_batch == "last" and (
                not self.updater.needs_gradient
                or not isinstance(data, TrainingSet)):
            raise ValueError(
                "growth_batch='last' takes the gradient of the batch each step "
                "trained on: it needs growth='gradient' and `data` = the "
                "freetickets_tf.data.TrainingSet that `fit` trains on "
                "(`train.epochs(...)`).")
        self.data = growth_batches.check_growth_data(data)
        self.prune_dense_layers = bool(prune_dense_layers)
        self.reset_optimizer_state = bool(reset_optimizer_state)
        self.seed = seed
        self.verbose = verbose
        self.batch_size = check_int("batch_size", batch_size, 1)
        self._prepared_for = None
        self._steps = StepCounter()
        # growth_batch="last": (step, gradients) of the last training batch,
        # taken before its step ran.
        self._last_gradient = None
        # Counts `update_topology` calls in this process, so that other
        # callbacks (training FLOPs) can tell when the masks changed.
        self.updates_done = 0
        # The step and statistics of the latest update (for monitoring).
        self.last_update = None

    # The schedule's settings, read where a run reports or resumes them.
    update_frequency = property(lambda self: self.schedule.update_frequency)
    death_rate = property(lambda self: self.schedule.death_rate)
    death_rate_schedule = property(lambda self: self.schedule.death_rate_schedule)
    start_step = property(lambda self: self.schedule.start_step)
    end_step = property(lambda self: self.schedule.end_step)

    @property
    def masked_kernels(self):
        """The model's `MaskedKernel`s that the updates rewire, in order."""
        self.prepare()
        return list(self._kernels)

    def prepare(self):
        """Checks the model and builds per-model state, once per model
        (`fit` calls it; call it after `set_model` to use the callback's
        methods outside `fit`)."""
        if self.model is None:
            raise ValueError(
                "The callback has no model: pass it to `model.fit(callbacks=...)` "
                "or call `callback.set_model(model)` first."
            )
        if self._prepared_for is self.model:
            return
        self._kernels = masking.masked_kernels(self.model)
        if not self._kernels:
            raise ValueError(
                "DynamicSparsityCallback needs a model with masked layers; this "
                "one has none. Create one with `freetickets_tf.sparsify(model, "
                "density)`."
            )
        optimizer = self.model.optimizer
        if optimizer is None:
            raise ValueError("The model is not compiled: call `model.compile` first.")
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.updater.check_model(self.model)
        if self.updater.needs_gradient:
            self._gradient_fn = make_loss_gradient_fn(
                self.model, [mk.kernel for mk in self._kernels]
            )
            # The source of each step's growth batch (the data layer's).
            self._growth_batch = growth_batches.growth_source(
                self.data, self.batch_size, self.seed)
        self._prepared_for = self.model

    def _step(self):
        return optimizer_step(self.model)

    def scheduled_death_rate(self, step=None):
        """The death rate the schedule gives at `step` (default: now)."""
        step = self._step() if step is None else step
        params = self.params or {}  # None outside `fit`
        epochs, steps = params.get("epochs"), params.get("steps")
        return self.schedule.death_rate_at(step, epochs * steps if epochs and steps
                                           else None)

    def growth_gradients(self, x, y):
        """The dense gradients of the loss with respect to the masked kernels
        on the batch `(x, y)`: the pass gradient growth (RigL) makes."""
        self.prepare()
        if not self.updater.needs_gradient:
            raise ValueError(f"growth={self.growth!r} takes no gradient.")
        return list(self._gradient_fn(x, y))

    def _growth_gradients(self, step):
        """The dense gradients the updater grows by, or None if it needs none."""
        if not self.updater.needs_gradient:
            return None
        if self.growth_batch == "last":
            if self._last_gradient is not None and self._last_gradient[0] == step:
                return list(self._last_gradient[1])
            if step < 1:
                raise ValueError("growth_batch='last' has no last batch before "
                                 "the first training step.")
            # Called outside the batch hooks (by hand): the last batch at
            # the weights after its step.
            return list(self._gradient_fn(*self.data.training_batch(step - 1)))
        return list(self._gradient_fn(*self._growth_batch(step)))

    def _growth_scores(self, step):
        return self.updater.grow_scores(self.model, self._kernels,
                                        self._growth_gradients(step))

    def update_topology(self, death_rate=None, scores=None):
        """Runs one topology update now, on every masked layer.

        Args:
            death_rate: Overrides the scheduled death rate for this update,
                e.g. EDST's global exploration with `q = 0.8`.
            scores: Growth scores, one per masked kernel (`masked_kernels`),
                to use instead of the updater's own, e.g. gradients computed
                beforehand (`growth_gradients`); None per kernel grows at
                random.

        Returns:
            A dict with `weights_moved`, `death_rate` and `itop_rate`.
        """
        self.prepare()
        if death_rate is None:
            death_rate = self.scheduled_death_rate()
        death_rate = check_death_rate(death_rate)
        optimizer = self.model.optimizer
        step = self._step()
        if scores is None:
            scores = self._growth_scores(step)
        kernels = [mk.kernel for mk in self._kernels]
        slots = (optimizer_slots.slot_variables_each(optimizer, kernels)
                 if self.reset_optimizer_state else [()] * len(kernels))
        seeds = [int(growth_batches.step_rng(self.seed, step, i).integers(2**31))
                 for i in range(len(self._kernels))]
        moved = self.updater.update(self._kernels, death_rate, scores, seeds, slots,
                                    skip_dense=not self.prune_dense_layers)
        self.updates_done += 1
        stats = {
            "weights_moved": moved,
            "death_rate": death_rate,
            "itop_rate": masking.explored_fraction(self._kernels),
        }
        self.last_update = {"step": step, **stats}
        if self.verbose:
            print(
                f"DST update at step {step}: moved {moved:,} weights "
                f"(death rate {death_rate:.4f}), ITOP rate {stats['itop_rate']:.4f}"
            )
        return stats

    def on_train_begin(self, logs=None):
        self.prepare()
        if self.growth_batch == "last" and self.model.steps_per_execution != 1:
            raise ValueError(
                "growth_batch='last' needs the weights before each update's "
                "last step: compile with steps_per_execution=1 (got "
                f"{self.model.steps_per_execution}), or use growth_batch='fresh'.")
        self._last_step = self._steps.read(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        if self.growth_batch != "last":
            return
        step = self._steps.after_batch(batch) - 1  # steps done before this one
        last_of_epoch = batch + 1 == (self.params or {}).get("steps")
        # The gradient is needed before this step changes the weights: for an
        # update due after it, or for an update at the epoch's end (EDST's
        # global exploration).
        if self.schedule.is_due(step, step + 1) or last_of_epoch:
            # Touching `self.model` syncs JAX's live training state into the
            # variables the gradient function reads.
            _ = self.model
            gradients = self._gradient_fn(*self.data.training_batch(step))
            self._last_gradient = (step + 1, gradients)

    def on_epoch_begin(self, epoch, logs=None):
        self._moved_this_epoch = 0
        # Read again here: a checkpoint restored after `on_train_begin` may
        # have moved the step on.
        self._last_step = self._steps.read(self.model)

    def on_train_batch_end(self, batch, logs=None):
        step = self._steps.after_batch(batch)
        if self.schedule.is_due(self._last_step, step):
            self._moved_this_epoch += self.update_topology()["weights_moved"]
        self._last_step = step

    def on_epoch_end(self, epoch, logs=None):
        if backend.masks_in_forward_pass():
            # Keeps the stored kernels sparse, as on TensorFlow, wherever a
            # checkpoint callback may read them.
            masking.zero_inactive_weights(self.model)
        if logs is not None:
            logs["itop_rate"] = masking.itop_rate(self.model)
            logs["weights_moved"] = self._moved_this_epoch
            logs["death_rate"] = self.scheduled_death_rate()
