"""Training recipes for FreeTickets ensembles and their baselines (SPEC §4).

Each recipe takes a function that builds the (dense, uncompiled) network,
training and validation data, an `EnsembleConfig` and a run directory. It
trains the members, writes each ticket there as it finishes (see
`freetickets_tf.tickets`), and returns an `EnsembleRun` with the tickets and
the training FLOPs. Re-running a recipe on the same directory resumes it:
finished tickets are kept, and an EDST run restarts from its last ticket.

Methods (`METHODS`):

* `edst`: one DST run harvesting M tickets (`EDSTCallback`).
* `dst`: M independent DST runs with their own seeds.
* `static`: M random ERK masks, never updated.
* `pf`: M dense runs, each pruned by global magnitude and fine-tuned.
* `deep_ensemble`: M dense runs.
* `dense`: one dense run (M = 1).

Example:

>>> def build():
...     return freetickets_tf.models.get("lenet300-100", 10, (8, 8, 1))
>>> config = EnsembleConfig(epochs=30, exploration_epochs=12, batch_size=64,
...                         learning_rate=0.05, update_frequency=50)
>>> run = train_ensemble("edst", build, (x, y), (x_val, y_val), config, "runs/edst")
>>> ensemble = run.ensemble_model()
"""

import dataclasses
import math
import os

import keras

from freetickets_tf import flops
from freetickets_tf import masking
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_death_rate
from freetickets_tf._validation import check_density
from freetickets_tf._validation import check_int
from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback
from freetickets_tf.callbacks.edst import EDSTCallback
from freetickets_tf.callbacks.snapshots import PeriodicSnapshots
from freetickets_tf.callbacks.ticket_checkpoint import SELECTIONS
from freetickets_tf.callbacks.ticket_checkpoint import TicketCheckpoint
from freetickets_tf.callbacks.training_flops import TrainingFlopsCallback
from freetickets_tf.densities import DISTRIBUTIONS
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.ensemble_model import output_kind
from freetickets_tf.schedules import EDSTSchedule
from freetickets_tf.schedules import step_decay_learning_rate
from freetickets_tf.tickets import RunDirectory

METHODS = ("edst", "dst", "static", "pf", "deep_ensemble", "dense")


@dataclasses.dataclass
class EnsembleConfig:
    """Settings of an ensemble run. Defaults are the original's CIFAR ones
    (SPEC §4) except `epochs`; scale them down for small data.

    Attributes:
        num_members: Tickets M (`dense` always trains one).
        epochs: Epochs of each member run; for `edst` the whole run's `E`.
        exploration_epochs: EDST's exploration phase `E_explo`.
        reference_epochs: Epochs of the dense model that training FLOPs are
            compared with; None means `epochs` (for EDST, pass the epochs a
            single dense model would get, e.g. 250 against EDST's 450).
        density: Overall density of the sparse methods.
        distribution: Layer densities, `"erk"`, `"er"` or `"uniform"`.
        rescale_init: Sparse methods: scale each layer's initial weights by
            `1 / sqrt(d_l)` (`masking.sparse_init_scale`), for networks
            without normalisation layers. Off in the original.
        update_frequency: Optimizer steps between DST updates (ΔT).
        update_end_fraction: `dst`: no topology update after this fraction
            of each member's steps (RigL stops at 0.75, before the smallest
            learning rates, where weights regrown at zero cannot recover).
            None updates to the end, as the original.
        death_rate: DST death rate `p`.
        death_rate_schedule: `"constant"` or `"cosine"`.
        large_death_rate: EDST's global-exploration death rate `q`.
        death: `"magnitude"` or `"set"`.
        growth: `"gradient"`, `"random"` or `"momentum"`.
        reset_optimizer_state: Zero the optimizer slots of grown weights.
        batch_size: Batch size (for array data).
        learning_rate: Initial learning rate of SGD (EDST: exploration rate;
            its refinement phases use 1/10 and 1/100 of it).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        finetune_epochs: PF: fine-tuning epochs after pruning.
        finetune_learning_rate: PF: constant fine-tuning learning rate.
        selection: `"best"` validation checkpoint per ticket, or `"last"`.
        snapshot_every: Keep the model every this many epochs in the run's
            `snapshots/` (for `evaluate(..., modes=["tsne"])`); None keeps
            none. Not for `pf`.
        monitor: The validation log that selects checkpoints.
        seed: Seed of member 0; member m uses `seed + m`.
        verbose: Keras `fit` verbosity; 0 also silences the recipe's lines.
        jit_compile: Passed to `compile` (`"auto"`, True or False).
    """

    num_members: int = 3
    epochs: int = 250
    exploration_epochs: int = 150
    reference_epochs: int = None
    density: float = 0.2
    distribution: str = "erk"
    rescale_init: bool = False
    update_frequency: int = 1000
    update_end_fraction: float = None
    death_rate: float = 0.5
    death_rate_schedule: str = "constant"
    large_death_rate: float = 0.8
    death: str = "magnitude"
    growth: str = "gradient"
    reset_optimizer_state: bool = True
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    finetune_epochs: int = 10
    finetune_learning_rate: float = 0.001
    selection: str = "best"
    snapshot_every: int = None
    monitor: str = "val_accuracy"
    seed: int = 0
    verbose: int = 2
    jit_compile: object = "auto"

    def validate(self, method):
        """Raises `ValueError` for settings that cannot work for `method`."""
        check_choice("method", method, METHODS)
        check_int("num_members", self.num_members, 1)
        check_int("epochs", self.epochs, 1)
        check_int("reference_epochs", self.reference_epochs, 1, allow_none=True)
        check_density(self.density)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_int("update_frequency", self.update_frequency, 1)
        check_death_rate(self.death_rate)
        check_death_rate(self.large_death_rate, "large_death_rate")
        if self.update_end_fraction is not None and not (
            0 < self.update_end_fraction <= 1
        ):
            raise ValueError(
                f"Invalid `update_end_fraction`: {self.update_end_fraction!r}. "
                "Expected a fraction in (0, 1], or None (update to the end)."
            )
        check_int("batch_size", self.batch_size, 1)
        check_int("finetune_epochs", self.finetune_epochs, 1)
        check_int("seed", self.seed, 0)
        check_int("snapshot_every", self.snapshot_every, 1, allow_none=True)
        check_choice("selection", self.selection, SELECTIONS)
        for name in ("learning_rate", "finetune_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Invalid `{name}`: {getattr(self, name)!r}. Expected > 0.")
        if method == "edst":
            # Checks epochs / exploration / phase lengths with clear messages.
            EDSTSchedule(self.epochs, self.exploration_epochs, self.num_members)

    def to_dict(self):
        """The settings that define the run (verbosity excluded)."""
        settings = dataclasses.asdict(self)
        del settings["verbose"]
        return settings


@dataclasses.dataclass
class EnsembleRun:
    """What a recipe produced: the run directory, its tickets and FLOPs.

    Attributes:
        run_dir: The run directory.
        method: The ensemble method.
        tickets: Manifest entries of the tickets, by member.
        training_flops: Training FLOPs of the whole ensemble (SPEC §6).
        dense_training_flops: FLOPs of one dense model trained for
            `reference_epochs` on the same data.
    """

    run_dir: str
    method: str
    tickets: list
    training_flops: float
    dense_training_flops: float

    @property
    def relative_training_flops(self):
        return self.training_flops / self.dense_training_flops

    def ensemble_model(self, **kwargs):
        """The tickets as one `EnsembleModel`."""
        return EnsembleModel.from_run(self.run_dir, **kwargs)


def _fit_data(data, batch_size):
    """`fit` keyword arguments for an `(x, y)` tuple or a batched dataset."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return {"x": data[0], "y": data[1], "batch_size": batch_size}
    return {"x": data}


def _steps_per_epoch(data, batch_size):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return math.ceil(len(data[0]) / batch_size)
    cardinality = int(data.cardinality())
    return cardinality if cardinality > 0 else sum(1 for _ in data)


def _batch_examples(data, batch_size):
    """Examples per step, as the FLOPs count assumes."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return min(batch_size, len(data[0]))
    x = next(iter(data))[0]
    return int(x.shape[0])


class _Recipe:
    """Shared machinery of the recipes: compiling, fitting, FLOPs, tickets."""

    def __init__(self, method, build_model, train_data, validation_data, config,
                 run_dir):
        if config is None:
            config = EnsembleConfig()
        config.validate(method)
        if not callable(build_model):
            raise ValueError(
                "Invalid `build_model`: expected a function with no arguments "
                "returning a built, uncompiled Keras model."
            )
        if config.selection == "best" and validation_data is None:
            raise ValueError(
                "Best-validation ticket selection needs `validation_data`; pass "
                "it, or set `EnsembleConfig(selection='last')`."
            )
        self.method = method
        self.build_model = build_model
        self.train_data = train_data
        self.validation_data = validation_data
        self.config = config
        self.num_members = 1 if method == "dense" else config.num_members
        self.run = RunDirectory.create(
            run_dir, method, self.num_members, config.to_dict()
        )
        self.batch = _batch_examples(train_data, config.batch_size)
        self.steps_per_epoch = _steps_per_epoch(train_data, config.batch_size)

    def say(self, message):
        if self.config.verbose:
            print(message, flush=True)

    def new_sparse_model(self, seed):
        config = self.config
        return masking.sparsify(
            self.new_model(seed), config.density, config.distribution, seed=seed,
            rescale=config.rescale_init,
        )

    def new_model(self, seed):
        keras.utils.set_random_seed(seed)
        model = self.build_model()
        if not isinstance(model, keras.Model) or not model.built:
            raise ValueError(
                "`build_model()` must return a built keras.Model (give it a "
                f"keras.Input); got {type(model).__name__}."
            )
        return model

    def compile(self, model, learning_rate):
        config = self.config
        model.compile(
            optimizer=keras.optimizers.SGD(
                learning_rate,
                momentum=config.momentum,
                weight_decay=config.weight_decay or None,
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=output_kind(model) == "logits"
            ),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
        )
        return model

    def dst_callback(self, seed, end_step=None):
        config = self.config
        return DynamicSparsityCallback(
            data=self.train_data,
            update_frequency=config.update_frequency,
            death_rate=config.death_rate,
            death_rate_schedule=config.death_rate_schedule,
            death=config.death,
            growth=config.growth,
            reset_optimizer_state=config.reset_optimizer_state,
            end_step=end_step,
            seed=seed,
            batch_size=config.batch_size,
        )

    def flops_callback(self, sparsity_callback=None, initial_flops=0.0):
        return TrainingFlopsCallback(
            self.batch, sparsity_callback=sparsity_callback, initial_flops=initial_flops
        )

    def fit(self, model, epochs, callbacks, initial_epoch=0, member=None):
        if self.config.snapshot_every and member is not None:
            callbacks = [*callbacks, PeriodicSnapshots(
                self.run, self.config.snapshot_every, member)]
        return model.fit(
            **_fit_data(self.train_data, self.config.batch_size),
            validation_data=self.validation_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=self.config.verbose,
        )

    def step_decay(self, epochs):
        config = self.config
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: step_decay_learning_rate(epoch, config.learning_rate, epochs)
        )

    def ticket_callback(self, member, seed, flops_callback):
        return TicketCheckpoint(
            self.run,
            member,
            monitor=self.config.monitor,
            selection=self.config.selection,
            seed=seed,
            flops_callback=flops_callback,
        )

    def finish(self, reference_model):
        """Totals the FLOPs, records them in the manifest, returns the run."""
        config = self.config
        tickets = self.run.tickets
        spent = sum(t.get("training_flops") or 0.0 for t in tickets)
        if self.method == "edst":
            spent = max(t.get("training_flops") or 0.0 for t in tickets)
        reference = flops.forward_flops(reference_model, sparse=False) * 3 * (
            self.batch * self.steps_per_epoch * (config.reference_epochs or config.epochs)
        )
        self.run.update(
            flops={
                "training_flops": spent,
                "dense_training_flops": reference,
                "relative_training_flops": spent / reference,
            }
        )
        self.run.clear_checkpoint()
        return EnsembleRun(self.run.path, self.method, tickets, spent, reference)

    def members_to_train(self):
        done = self.run.finished_members
        for member in range(self.num_members):
            if member in done:
                self.say(f"Ticket {member} already finished in {self.run.path}; skipped.")
                continue
            yield member, self.config.seed + member


def _train_members(recipe, train_member):
    """Runs `train_member(member, seed)` for each unfinished member."""
    for member, seed in recipe.members_to_train():
        recipe.say(
            f"{recipe.method}: member {member + 1}/{recipe.num_members} (seed {seed})"
        )
        train_member(member, seed)
    return recipe.finish(recipe.new_model(recipe.config.seed))


def train_dst_ensemble(build_model, train_data, validation_data=None, config=None,
                       run_dir="runs/dst"):
    """DST Ensemble: M independent DST runs with seeds `seed + m` (SPEC §4).

    Each run trains `config.epochs` epochs with the learning rate × 0.1 at
    50% and 75%; its best-validation checkpoint is ticket m. Topology updates
    stop after `config.update_end_fraction` of the steps, if set.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("dst", build_model, train_data, validation_data, config, run_dir)
    config = recipe.config

    def train_member(member, seed):
        model = recipe.new_sparse_model(seed)
        recipe.compile(model, config.learning_rate)
        end_step = None
        if config.update_end_fraction is not None:
            total = config.epochs * recipe.steps_per_epoch
            end_step = math.floor(config.update_end_fraction * total)
        dst = recipe.dst_callback(seed, end_step)
        counter = recipe.flops_callback(dst)
        recipe.fit(model, config.epochs, [
            dst, counter, recipe.step_decay(config.epochs),
            recipe.ticket_callback(member, seed, counter)], member=member)

    return _train_members(recipe, train_member)


def train_static_ensemble(build_model, train_data, validation_data=None,
                          config=None, run_dir="runs/static"):
    """Static sparse ensemble: M random ERK masks, never updated (SPEC §1).

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("static", build_model, train_data, validation_data, config, run_dir)
    config = recipe.config

    def train_member(member, seed):
        model = recipe.new_sparse_model(seed)
        recipe.compile(model, config.learning_rate)
        counter = recipe.flops_callback()
        recipe.fit(model, config.epochs, [
            counter, recipe.step_decay(config.epochs),
            recipe.ticket_callback(member, seed, counter)], member=member)

    return _train_members(recipe, train_member)


def _train_dense_members(method, build_model, train_data, validation_data, config,
                         run_dir):
    recipe = _Recipe(method, build_model, train_data, validation_data, config, run_dir)
    config = recipe.config

    def train_member(member, seed):
        model = recipe.compile(recipe.new_model(seed), config.learning_rate)
        counter = recipe.flops_callback()
        recipe.fit(model, config.epochs, [
            counter, recipe.step_decay(config.epochs),
            recipe.ticket_callback(member, seed, counter)], member=member)

    return _train_members(recipe, train_member)


def train_deep_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/deep_ensemble"):
    """Dense deep ensemble: M dense runs with their own seeds.

    Returns:
        An `EnsembleRun`.
    """
    return _train_dense_members(
        "deep_ensemble", build_model, train_data, validation_data, config, run_dir
    )


def train_dense(build_model, train_data, validation_data=None, config=None,
                run_dir="runs/dense"):
    """One dense model (`config.num_members` is ignored), as a one-ticket run.

    Returns:
        An `EnsembleRun`.
    """
    return _train_dense_members(
        "dense", build_model, train_data, validation_data, config, run_dir
    )


def train_pf_ensemble(build_model, train_data, validation_data=None, config=None,
                      run_dir="runs/pf"):
    """PF ensemble (SPEC §4): M dense runs, each pruned by global magnitude to
    `config.density` and fine-tuned with its mask fixed for
    `config.finetune_epochs` at `config.finetune_learning_rate`.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("pf", build_model, train_data, validation_data, config, run_dir)
    config = recipe.config

    def train_member(member, seed):
        dense = recipe.compile(recipe.new_model(seed), config.learning_rate)
        dense_counter = recipe.flops_callback()
        recipe.fit(dense, config.epochs, [dense_counter, recipe.step_decay(config.epochs)])
        pruned = masking.prune_global_magnitude(dense, config.density)
        recipe.compile(pruned, config.finetune_learning_rate)
        counter = recipe.flops_callback(initial_flops=dense_counter.total_flops)
        recipe.fit(pruned, config.finetune_epochs, [
            counter, recipe.ticket_callback(member, seed, counter)])

    return _train_members(recipe, train_member)


def train_edst_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/edst"):
    """EDST Ensemble (SPEC §4): one DST run of `config.epochs` epochs that
    explores for `config.exploration_epochs`, then harvests one ticket per
    refinement phase, with a global exploration before phases 2..M.

    An interrupted run resumes from the checkpoint written with its last
    finished ticket.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("edst", build_model, train_data, validation_data, config, run_dir)
    config = recipe.config
    seed = config.seed
    run = recipe.run
    if run.complete:
        recipe.say(f"EDST run in {run.path} is already complete.")
        return recipe.finish(recipe.new_model(seed))
    checkpoint = run.checkpoint
    if checkpoint is not None:
        path, state = checkpoint
        recipe.say(f"Resuming EDST run from {path} at epoch {state['epoch'] + 1}.")
        # Seeds the shuffling of the remaining epochs, so a resumed run is
        # reproducible too.
        keras.utils.set_random_seed(seed + state["epoch"])
        model = keras.saving.load_model(path)
        initial_epoch, initial_flops = state["epoch"], state.get("training_flops") or 0.0
    else:
        model = recipe.new_sparse_model(seed)
        recipe.compile(model, config.learning_rate)
        initial_epoch, initial_flops = 0, 0.0
    dst = recipe.dst_callback(seed)
    counter = recipe.flops_callback(dst, initial_flops)
    lr = config.learning_rate
    edst = EDSTCallback(
        dst,
        run,
        config.epochs,
        config.exploration_epochs,
        config.num_members,
        large_death_rate=config.large_death_rate,
        learning_rates=(lr, lr / 10, lr / 100),
        monitor=config.monitor,
        selection=config.selection,
        seed=seed,
        flops_callback=counter,
        verbose=config.verbose,
    )
    schedule = EDSTSchedule(config.epochs, config.exploration_epochs, config.num_members)
    recipe.fit(model, config.epochs, [dst, counter, edst], initial_epoch=initial_epoch,
               member=lambda epoch: schedule.phase_of(epoch) or 0)
    return recipe.finish(recipe.new_model(seed))


RECIPES = {
    "edst": train_edst_ensemble,
    "dst": train_dst_ensemble,
    "static": train_static_ensemble,
    "pf": train_pf_ensemble,
    "deep_ensemble": train_deep_ensemble,
    "dense": train_dense,
}


def train_ensemble(method, build_model, train_data, validation_data=None,
                   config=None, run_dir=None):
    """Trains an ensemble with any method of `METHODS` (see the recipes).

    Args:
        method: One of `METHODS`.
        build_model: Function with no arguments returning a built, uncompiled
            dense Keras model (ending in logits or a softmax). It is called
            after `keras.utils.set_random_seed(member_seed)`.
        train_data: `(x, y)` arrays (integer labels) or a batched
            `tf.data.Dataset` of `(x, y)`.
        validation_data: Same forms; needed for best-validation selection.
        config: An `EnsembleConfig` (default: the original's settings).
        run_dir: Where tickets go (default `runs/<method>`).

    Returns:
        An `EnsembleRun`.
    """
    check_choice("method", method, METHODS)
    run_dir = run_dir or os.path.join("runs", method)
    return RECIPES[method](build_model, train_data, validation_data, config, run_dir)
