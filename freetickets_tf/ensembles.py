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
import json
import math
import os
import typing
import warnings

import keras
import numpy as np

from freetickets_tf import distribute
from freetickets_tf import flops
from freetickets_tf import losses
from freetickets_tf import masking
from freetickets_tf import optimizers
from freetickets_tf.data.preprocessing import apply_preprocessing
from freetickets_tf.data.training_set import TrainingSet
from freetickets_tf.data.training_set import array_digest
from freetickets_tf.data.training_set import from_arrays
from freetickets_tf.data.training_set import from_dataset
from freetickets_tf import tickets
from freetickets_tf import updaters
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_death_rate
from freetickets_tf._validation import check_density
from freetickets_tf._validation import check_int
from freetickets_tf._validation import check_momentum
from freetickets_tf._validation import check_positive
from freetickets_tf._validation import check_weight_decay
from freetickets_tf.callbacks.dynamic_sparsity import GROWTH_BATCHES
from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback
from freetickets_tf.callbacks.edst import EDSTCallback
from freetickets_tf.callbacks.non_finite import NonFiniteGuard
from freetickets_tf.callbacks.snapshots import PeriodicSnapshots
from freetickets_tf.callbacks.ticket_checkpoint import SELECTIONS
from freetickets_tf.callbacks.ticket_checkpoint import TicketCheckpoint
from freetickets_tf.callbacks.training_checkpoint import TrainingCheckpoint
from freetickets_tf.callbacks.training_flops import TrainingFlopsCallback
from freetickets_tf.densities import DISTRIBUTIONS
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.ensemble_model import output_kind
from freetickets_tf.schedules import DEATH_RATE_SCHEDULES
from freetickets_tf.schedules import EDSTSchedule
from freetickets_tf.schedules import step_decay_learning_rate
from freetickets_tf.tickets import RunDirectory

METHODS = ("edst", "dst", "static", "pf", "deep_ensemble", "dense")
# The methods that train dense models (the others make them sparse).
DENSE_METHODS = ("deep_ensemble", "dense")


@dataclasses.dataclass
class EnsembleConfig:
    """Settings of an ensemble run. Defaults are the original's CIFAR ones
    (SPEC §4), and train as the original code does (coupled weight decay,
    per-member data order); scale `epochs` down for small data.

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
        reset_optimizer_state: Zero the optimizer slots of grown weights
            (RigL); False keeps them, as the original.
        prune_dense_layers: Rewire layers at density 1 too, as the
            original's `truncate_weights` (SPEC §3 skips them).
        growth_batch: `"fresh"` (a batch drawn for each update, SPEC §3) or
            `"last"` (the batch the update's step trained on, as the
            original).
        batch_size: Global batch size (for array data; a `TrainingSet`
            brings its own).
        learning_rate: Initial learning rate of SGD (EDST: exploration rate).
        lr_milestones: Member runs (not EDST): fractions of the epochs where
            the learning rate drops × 0.1.
        warmup_epochs: Epochs of linear learning-rate warm-up (ImageNet: 5).
        refinement_learning_rates: EDST: the rates of each refinement phase,
            in order; None: `learning_rate` / 10, then / 100 at mid-phase.
        phase_milestones: EDST: epochs into each phase where the next
            refinement rate starts; None: mid-phase (ImageNet: 30, 60).
        exploration_milestones: EDST: epochs of exploration where its rate
            drops × 0.1 (ImageNet: 30, 60, 90).
        label_smoothing: Of the cross-entropy loss (ImageNet: 0.1).
        momentum: SGD momentum, in [0, 1).
        weight_decay: SGD weight decay, finite and >= 0.
        weight_decay_mode: `"coupled"`: `torch.optim.SGD`'s L2, `wd * w`
            added to the gradient before the momentum, as the original
            (`optimizers.TorchSGD`). `"decoupled"`: Keras' `SGD` with its
            decoupled `weight_decay` (about 10x weaker at momentum 0.9).
        weight_decay_scope: `"all"` trainable parameters (weights, biases,
            normalisation scales and offsets: the original) or `"kernels"`
            only (parameters with two or more dimensions).
        finetune_epochs: PF: fine-tuning epochs after pruning.
        finetune_learning_rate: PF: constant fine-tuning learning rate.
        selection: `"best"` validation checkpoint per ticket, or `"last"`.
        snapshot_every: Keep the model every this many epochs in the run's
            `snapshots/` (for `evaluate(..., modes=["tsne"])`); None keeps
            none. Not for `pf`.
        monitor: The validation log that selects checkpoints.
        seed: Seed of member 0; member m uses `seed + m`, for its
            initialisation, mask and data order (array data; a
            `TrainingSet` member m shuffles with its own `seed + m`).
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
    prune_dense_layers: bool = False
    growth_batch: str = "fresh"
    batch_size: int = 128
    learning_rate: float = 0.1
    lr_milestones: tuple = (0.5, 0.75)
    warmup_epochs: int = 0
    refinement_learning_rates: tuple = None
    phase_milestones: tuple = None
    exploration_milestones: tuple = ()
    label_smoothing: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    weight_decay_mode: str = "coupled"
    weight_decay_scope: str = "all"
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
        check_choice("death_rate_schedule", self.death_rate_schedule,
                     DEATH_RATE_SCHEDULES)
        check_choice("death", self.death, tuple(updaters.DEATH_RULES))
        check_choice("growth", self.growth, updaters.GROWTH_MODES)
        if self.update_end_fraction is not None and not (
            0 < self.update_end_fraction <= 1
        ):
            raise ValueError(
                f"Invalid `update_end_fraction`: {self.update_end_fraction!r}. "
                "Expected a fraction in (0, 1], or None (update to the end)."
            )
        check_choice("growth_batch", self.growth_batch, GROWTH_BATCHES)
        if self.growth_batch == "last" and self.growth != "gradient":
            raise ValueError(
                "Invalid `growth_batch`: 'last' chooses the batch of the growth "
                f"gradient; growth={self.growth!r} uses none. Use 'fresh'.")
        check_momentum(self.momentum)
        check_weight_decay(self.weight_decay)
        check_choice("weight_decay_mode", self.weight_decay_mode,
                     optimizers.WEIGHT_DECAY_MODES)
        check_choice("weight_decay_scope", self.weight_decay_scope,
                     optimizers.WEIGHT_DECAY_SCOPES)
        check_int("batch_size", self.batch_size, 1)
        check_int("finetune_epochs", self.finetune_epochs, 1)
        check_int("seed", self.seed, 0)
        check_int("snapshot_every", self.snapshot_every, 1, allow_none=True)
        check_choice("selection", self.selection, SELECTIONS)
        for name in ("learning_rate", "finetune_learning_rate"):
            check_positive(name, getattr(self, name))
        check_int("warmup_epochs", self.warmup_epochs, 0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"Invalid `warmup_epochs`: {self.warmup_epochs} of a {self.epochs}-epoch "
                "run; the warm-up must end before the run does.")
        check_int("verbose", self.verbose, 0)
        check_choice("jit_compile", self.jit_compile, ("auto", True, False))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"Invalid `label_smoothing`: {self.label_smoothing!r}. Expected a "
                "number in [0, 1)."
            )
        if any(not 0.0 < f < 1.0 for f in self.lr_milestones):
            raise ValueError(
                f"Invalid `lr_milestones`: {self.lr_milestones!r}. Expected "
                "fractions of the epochs, each in (0, 1)."
            )
        for i, rate in enumerate(self.refinement_learning_rates or ()):
            check_positive(f"refinement_learning_rates[{i}]", rate)
        if method == "edst":
            # Checks epochs / exploration / phase lengths with clear messages.
            self.edst_schedule()
        elif self.exploration_milestones or self.phase_milestones is not None:
            raise ValueError(
                "`exploration_milestones` and `phase_milestones` are EDST settings; "
                f"method {method!r} uses `lr_milestones`."
            )

    def edst_schedule(self):
        """The `EDSTSchedule` of these settings."""
        lr = self.learning_rate
        refinement = self.refinement_learning_rates or (lr / 10, lr / 100)
        return EDSTSchedule(
            self.epochs, self.exploration_epochs, self.num_members,
            (lr, *refinement), self.phase_milestones, self.exploration_milestones,
            self.warmup_epochs,
        )

    def to_dict(self):
        """The settings that define the run (verbosity excluded)."""
        settings = dataclasses.asdict(self)
        del settings["verbose"]
        # As stored in a manifest (tuples become lists), so that a resumed
        # run's settings compare equal to the stored ones.
        return json.loads(json.dumps(settings))


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


def _training_set(data, batch_size, seed):
    """`data` as a `data.TrainingSet`: each epoch's batches then depend
    only on the seed and the epoch, so a resumed run trains on exactly the
    batches an uninterrupted one would."""
    if isinstance(data, TrainingSet):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return from_arrays(data[0], data[1], batch_size, seed=seed)
    if hasattr(data, "element_spec"):
        return from_dataset(data)
    raise ValueError(
        "Invalid `train_data`: expected `(x, y)` arrays, a "
        "`freetickets_tf.data.TrainingSet` or a batched tf.data.Dataset, "
        f"got {type(data).__name__}."
    )


# What `fit` logs with the recipes' compile (loss and accuracy).
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")


def _check_fits_model(method, model, train, train_data, validation_data, config):
    """The data fits the model, the model can be made sparse and the monitor
    exists, checked before a run directory is made (a late error would leave
    one behind)."""
    check_choice("monitor", config.monitor, MONITORS)
    if method not in DENSE_METHODS:
        masking.check_maskable(model)
    if (config.selection == "best" and config.monitor.startswith("val_")
            and validation_data is None):
        raise ValueError(
            f"Invalid `monitor`: {config.monitor!r} needs `validation_data`; "
            "use 'accuracy' or 'loss', or pass validation data.")
    if not isinstance(model.input_shape, list):  # one input
        expected = tuple(model.input_shape[1:])
        shapes = [("train_data", tuple(train.input_shape))]
        if isinstance(validation_data, (tuple, list)):
            shapes.append(("validation_data", np.shape(validation_data[0])[1:]))
        for name, got in shapes:
            if len(expected) != len(got) or any(
                    e is not None and e != g for e, g in zip(expected, got)):
                raise ValueError(
                    f"Invalid `{name}`: its examples have shape {got}; the model "
                    f"takes {expected}.")
    classes = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if not isinstance(data, (tuple, list)) or classes is None:
            continue
        labels = np.asarray(data[1])
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"Invalid `{name}`: labels run from {labels.min()} to {labels.max()}; "
                f"the model has {classes} outputs (classes 0..{classes - 1}).")


def _data_identity(data):
    """What defines evaluation data, for a run's identity: the arrays' size
    and digest, or the kind of dataset."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)):
        x, y = (np.asarray(part) for part in data)
        return {"examples": len(x), "sha256": array_digest(x, y)}
    return {"kind": type(data).__name__,
            "element_spec": repr(getattr(data, "element_spec", None))}


def _checked_validation_data(data):
    """Validation arrays must pair up and hold numbers: a NaN would make
    every epoch's score NaN, and best-validation selection meaningless."""
    if not isinstance(data, (tuple, list)):
        return data
    if len(data) != 2:
        raise ValueError(
            f"Invalid `validation_data`: expected (x_val, y_val), got {len(data)} parts.")
    x, y = (np.asarray(part) for part in data)
    if len(x) != len(y):
        raise ValueError(
            f"Invalid `validation_data`: x_val has {len(x)} examples, y_val {len(y)}.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(
            f"Invalid `validation_data`: x_val holds {int((~np.isfinite(x)).sum())} "
            "NaN or infinite values.")
    return data


def _growth_data(data, train, growth_batch):
    """What the DST callback draws its growth batches from: the training set,
    so that they are preprocessed as the training batches (uint8 images
    scaled), or for fresh batches a user's dataset itself, cycled (skipping
    to batch `step` of it at every update would cost ever more)."""
    if hasattr(data, "element_spec") and growth_batch == "fresh":
        return data
    return train


class Resumed(typing.NamedTuple):
    """Where a recipe continues an interrupted member (see `_Recipe.resume`)."""

    model: keras.Model
    epoch: int
    training_flops: float
    best: tuple  # (weights, info) of `BestSnapshot.state()`, or None


class _Recipe:
    """Shared machinery of the recipes: compiling, fitting, FLOPs, tickets."""

    def __init__(self, method, build_model, train_data, validation_data, config,
                 run_dir, strategy=None, open_run=True):
        if config is None:
            config = EnsembleConfig()
        if not isinstance(config, EnsembleConfig):
            raise ValueError(
                f"Invalid `config`: expected an EnsembleConfig, got "
                f"{type(config).__name__}; e.g. `EnsembleConfig(**settings)`.")
        config.validate(method)
        if isinstance(build_model, keras.Model) or not callable(build_model):
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
        self.train = _training_set(train_data, config.batch_size, config.seed)
        self.train_data = train_data
        # Validation arrays get the training batches' preprocessing (uint8
        # scaled, mean and std), or selection would score unscaled images.
        self.validation_data = _checked_validation_data(validation_data)
        if isinstance(self.validation_data, (tuple, list)):
            self.validation_data = (
                apply_preprocessing(self.validation_data[0],
                                              self.train.preprocessing(), "validation_data"),
                self.validation_data[1])
        self.config = config
        self.strategy = distribute.check_strategy(strategy)
        distribute.check_batch_size(self.train.batch_size, self.strategy)
        self.num_members = 1 if method == "dense" else config.num_members
        independent_runs = method != "edst" and self.num_members > 1
        if independent_runs and self.member_train(1) is self.train:
            warnings.warn(
                "The members train on a tf.data.Dataset in its own order, the "
                "same for all of them (the original shuffles each run with its "
                "own seed). Pass arrays or a freetickets_tf.data "
                "TrainingSet for per-member orders.", stacklevel=3)
        # Built once: its architecture, with the data, is part of what
        # defines the run (resuming on another is refused).
        self.reference = self.new_model(config.seed)
        _check_fits_model(method, self.reference, self.train, train_data, self.validation_data,
                          config)
        self.architecture = tickets.architecture(self.reference)
        identity = {
            "preprocessing": self.train.preprocessing(),
            "architecture": self.architecture,
            "train_data": self.train.identity(),
            "validation_data": _data_identity(validation_data),
        }
        # What the manifest records and a resumed run must match.
        self.settings = json.loads(json.dumps({**config.to_dict(), **identity}))
        self.run_dir = distribute.worker_directory(run_dir, self.strategy)
        if not open_run:
            return
        self.run = RunDirectory.create(self.run_dir, method, self.num_members,
                                       self.settings)
        self.batch = self.train.batch_size
        self.steps_per_epoch = self.train.steps_per_epoch
        try:
            distribute.check_workers_agree(
                self.strategy, "where to resume (finished tickets, checkpoint number)",
                self.progress(),
                advice=f"They were stopped between one worker's write and another's. "
                       f"Copy the chief's {run_dir} over the other workers' copies "
                       f"({distribute.worker_directory(run_dir, self.strategy)} on "
                       "this one) and start all of them again.")
        except BaseException:
            self.run.release()
            raise

    def progress(self):
        """(finished tickets, number of the checkpoint to resume from or 0):
        equal on every worker of a cluster that can resume together."""
        record = self.run.manifest.get("checkpoint") or {}
        finished = self.run.finished_members
        live = record and record.get("member") not in finished
        return len(finished), record.get("serial", 0) if live else 0

    def member_train(self, member):
        """The training set of `member` (None: EDST's one run): member m
        shuffles and augments with seed `seed + m` (SPEC §4), a function of
        (seed, member, epoch) only, so a resumed member sees the same batches."""
        if member is None:
            return self.train
        return self.train.with_seed(self.train.seed + member)

    def say(self, message):
        if self.config.verbose:
            print(message, flush=True)

    def new_sparse_model(self, seed):
        config = self.config
        with distribute.scope(self.strategy):
            return masking.sparsify(
                self.new_model(seed), config.density, config.distribution,
                seed=seed, rescale=config.rescale_init,
            )

    def new_model(self, seed):
        keras.utils.set_random_seed(seed)
        with distribute.scope(self.strategy):
            model = self.build_model()
        if not isinstance(model, keras.Model) or not model.built:
            raise ValueError(
                "`build_model()` must return a built keras.Model (give it a "
                f"keras.Input); got {type(model).__name__}."
            )
        return model

    def compile(self, model, learning_rate):
        with distribute.scope(self.strategy):
            self._compile(model, learning_rate)
        return model

    def _compile(self, model, learning_rate):
        config = self.config
        model.compile(
            optimizer=optimizers.make_sgd(
                learning_rate, config.momentum, config.weight_decay,
                config.weight_decay_mode, config.weight_decay_scope),
            loss=losses.classification_loss(
                output_kind(model) == "logits", config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
        )

    def dst_callback(self, seed, member, end_step=None):
        config = self.config
        return DynamicSparsityCallback(
            data=_growth_data(self.train_data, self.member_train(member),
                              config.growth_batch),
            update_frequency=config.update_frequency,
            death_rate=config.death_rate,
            death_rate_schedule=config.death_rate_schedule,
            death=config.death,
            growth=config.growth,
            reset_optimizer_state=config.reset_optimizer_state,
            end_step=end_step,
            seed=seed,
            batch_size=config.batch_size,
            prune_dense_layers=config.prune_dense_layers,
            growth_batch=config.growth_batch,
        )

    def flops_callback(self, sparsity_callback=None, initial_flops=0.0):
        return TrainingFlopsCallback(
            self.batch, sparsity_callback=sparsity_callback, initial_flops=initial_flops
        )

    def resume(self, member, stage):
        """The checkpoint of `member`'s `stage` to continue from, or None.

        Returns:
            None, or a `Resumed` with the loaded model (compiled, optimizer
            state included), the epoch to continue at, the FLOPs spent and
            the best-epoch snapshot.
        """
        # None also for a finished member's last checkpoint.
        checkpoint = self.run.checkpoint_of(member=member, stage=stage)
        if checkpoint is None:
            return None
        path, state = checkpoint
        self.say(f"{self.method}: resuming {stage} of member {member} after epoch "
                 f"{state['epoch']} from {path}")
        with distribute.scope(self.strategy):
            model = self.run.load_checkpoint(self.architecture["digest"])
        best = None
        if state.get("best") is not None:
            best = (self.run.checkpoint_best_weights(), state["best"])
        return Resumed(model, state["epoch"], state.get("training_flops") or 0.0, best)

    def fit(self, model, epochs, callbacks, initial_epoch=0, member=None,
            checkpoint=None, member_of_run=None):
        """`model.fit` on the training set from `initial_epoch`.

        Args:
            member: The member of snapshots (an int, an epoch -> member
                function for EDST, or None for no snapshots).
            member_of_run: The member whose training set (order) this run
                trains on; None for EDST's one run.
            checkpoint: `(snapshot, flops_callback, state)` for a
                `TrainingCheckpoint` after every epoch, or None.
        """
        config = self.config
        stage = (checkpoint[2] if checkpoint else {}).get("stage")
        who = ("the edst run" if member_of_run is None else
               f"member {member_of_run} ({stage}) of the {self.method} run")
        # First: a diverged epoch must fail before anything saves it.
        callbacks = [NonFiniteGuard(f"{who} in {self.run.path}"), *callbacks]
        if config.snapshot_every and member is not None:
            callbacks.append(PeriodicSnapshots(self.run, config.snapshot_every, member))
        if checkpoint is not None:
            snapshot, counter, state = checkpoint
            # The recipes load a checkpoint themselves (`resume`), before `fit`.
            callbacks.append(TrainingCheckpoint(self.run, snapshot, counter, restore=False,
                                                **state))
        validation = {}
        if isinstance(self.validation_data, (tuple, list)):
            validation["validation_batch_size"] = config.batch_size
        return model.fit(
            self.member_train(member_of_run).epochs(initial_epoch, epochs),
            steps_per_epoch=self.steps_per_epoch,
            validation_data=self.validation_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=config.verbose,
            shuffle=False,  # each epoch of the training set comes shuffled
            **validation,
        )

    def fit_member(self, member, seed, stage, start, epochs, sparsity_callback=None,
                   ticket=True, learning_rate_schedule=True, initial_flops=0.0):
        """Trains `stage` of member `member`, continuing from its checkpoint if
        the run was interrupted in it.

        Args:
            start: Returns the new compiled model (not called on resume).
            ticket: Whether this stage's best checkpoint is the ticket.
            learning_rate_schedule: Step decay at 50% and 75% of `epochs`.
            initial_flops: FLOPs spent before this stage.

        Returns:
            `(model, flops_callback)` after training.
        """
        resumed = self.resume(member, stage)
        if resumed is None:
            resumed = Resumed(start(), 0, initial_flops, None)
        model = resumed.model
        counter = self.flops_callback(sparsity_callback, resumed.training_flops)
        callbacks = [c for c in (sparsity_callback, counter) if c is not None]
        if learning_rate_schedule:
            callbacks.append(self.step_decay(epochs))
        snapshot = None
        if ticket:
            checkpoint = self.ticket_callback(member, seed, counter)
            if resumed.best is not None:
                checkpoint.snapshot.restore(*resumed.best)
            snapshot = checkpoint.snapshot
            callbacks.append(checkpoint)
            if resumed.epoch >= epochs:
                # Stopped after the last epoch's checkpoint: only writing the
                # ticket was left.
                checkpoint.set_model(model)
                checkpoint.on_train_end()
                return model, counter
        elif resumed.epoch >= epochs:
            return model, counter
        self.fit(model, epochs, callbacks, resumed.epoch,
                 member=member if ticket else None,
                 checkpoint=(snapshot, counter, {"member": member, "stage": stage}),
                 member_of_run=member)
        return model, counter

    def step_decay(self, epochs):
        config = self.config
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: step_decay_learning_rate(
                epoch, config.learning_rate, epochs, config.lr_milestones,
                warmup_epochs=config.warmup_epochs)
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
    """Runs `train_member(member, seed)` for each unfinished member, then
    gives up the run directory's lock (also when training fails)."""
    try:
        for member, seed in recipe.members_to_train():
            recipe.say(
                f"{recipe.method}: member {member + 1}/{recipe.num_members} (seed {seed})"
            )
            train_member(member, seed)
        return recipe.finish(recipe.reference)
    finally:
        recipe.run.release()


def train_dst_ensemble(build_model, train_data, validation_data=None, config=None,
                       run_dir="runs/dst", strategy=None):
    """DST Ensemble: M independent DST runs with seeds `seed + m` (SPEC §4).

    Each run trains `config.epochs` epochs with the learning rate × 0.1 at
    50% and 75%; its best-validation checkpoint is ticket m. Topology updates
    stop after `config.update_end_fraction` of the steps, if set.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("dst", build_model, train_data, validation_data, config,
                     run_dir, strategy)
    config = recipe.config

    def train_member(member, seed):
        end_step = None
        if config.update_end_fraction is not None:
            total = config.epochs * recipe.steps_per_epoch
            end_step = math.floor(config.update_end_fraction * total)
        recipe.fit_member(
            member, seed, "train",
            lambda: recipe.compile(recipe.new_sparse_model(seed), config.learning_rate),
            config.epochs, sparsity_callback=recipe.dst_callback(seed, member, end_step))

    return _train_members(recipe, train_member)


def train_static_ensemble(build_model, train_data, validation_data=None,
                          config=None, run_dir="runs/static", strategy=None):
    """Static sparse ensemble: M random ERK masks, never updated (SPEC §1).

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("static", build_model, train_data, validation_data, config,
                     run_dir, strategy)
    config = recipe.config

    def train_member(member, seed):
        recipe.fit_member(
            member, seed, "train",
            lambda: recipe.compile(recipe.new_sparse_model(seed), config.learning_rate),
            config.epochs)

    return _train_members(recipe, train_member)


def _train_dense_members(method, build_model, train_data, validation_data, config,
                         run_dir, strategy):
    recipe = _Recipe(method, build_model, train_data, validation_data, config,
                     run_dir, strategy)
    config = recipe.config

    def train_member(member, seed):
        recipe.fit_member(
            member, seed, "train",
            lambda: recipe.compile(recipe.new_model(seed), config.learning_rate),
            config.epochs)

    return _train_members(recipe, train_member)


def train_deep_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/deep_ensemble", strategy=None):
    """Dense deep ensemble: M dense runs with their own seeds.

    Returns:
        An `EnsembleRun`.
    """
    return _train_dense_members(
        "deep_ensemble", build_model, train_data, validation_data, config, run_dir,
        strategy,
    )


def train_dense(build_model, train_data, validation_data=None, config=None,
                run_dir="runs/dense", strategy=None):
    """One dense model (`config.num_members` is ignored), as a one-ticket run.

    Returns:
        An `EnsembleRun`.
    """
    return _train_dense_members(
        "dense", build_model, train_data, validation_data, config, run_dir, strategy
    )


def train_pf_ensemble(build_model, train_data, validation_data=None, config=None,
                      run_dir="runs/pf", strategy=None):
    """PF ensemble (SPEC §4): M dense runs, each pruned by global magnitude to
    `config.density` and fine-tuned with its mask fixed for
    `config.finetune_epochs` at `config.finetune_learning_rate`.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("pf", build_model, train_data, validation_data, config,
                     run_dir, strategy)
    config = recipe.config

    def train_member(member, seed):
        checkpoint = recipe.run.checkpoint
        finetuning = checkpoint is not None and checkpoint[1].get("stage") == "finetune"
        dense = counter = None
        if not (finetuning and checkpoint[1].get("member") == member):
            dense, counter = recipe.fit_member(
                member, seed, "dense",
                lambda: recipe.compile(recipe.new_model(seed), config.learning_rate),
                config.epochs, ticket=False)

        def prune():
            with distribute.scope(recipe.strategy):
                pruned = masking.prune_global_magnitude(dense, config.density)
            return recipe.compile(pruned, config.finetune_learning_rate)

        recipe.fit_member(
            member, seed, "finetune", prune, config.finetune_epochs,
            learning_rate_schedule=False,
            initial_flops=0.0 if counter is None else counter.total_flops)

    return _train_members(recipe, train_member)


def train_edst_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/edst", strategy=None):
    """EDST Ensemble (SPEC §4): one DST run of `config.epochs` epochs that
    explores for `config.exploration_epochs`, then harvests one ticket per
    refinement phase, with a global exploration before phases 2..M.

    An interrupted run resumes from the checkpoint of its last epoch.

    Returns:
        An `EnsembleRun`.
    """
    recipe = _Recipe("edst", build_model, train_data, validation_data, config,
                     run_dir, strategy)
    try:
        return _train_edst(recipe)
    finally:
        recipe.run.release()


def _train_edst(recipe):
    config = recipe.config
    seed = config.seed
    run = recipe.run
    if run.complete:
        recipe.say(f"EDST run in {run.path} is already complete.")
        return recipe.finish(recipe.reference)
    resumed = recipe.resume(None, "edst")
    if resumed is None:
        model = recipe.compile(recipe.new_sparse_model(seed), config.learning_rate)
        resumed = Resumed(model, 0, 0.0, None)
    dst = recipe.dst_callback(seed, None)
    counter = recipe.flops_callback(dst, resumed.training_flops)
    schedule = config.edst_schedule()
    edst = EDSTCallback(
        dst,
        run,
        config.epochs,
        config.exploration_epochs,
        config.num_members,
        large_death_rate=config.large_death_rate,
        learning_rates=schedule.learning_rates,
        phase_milestones=schedule.phase_milestones,
        exploration_milestones=schedule.exploration_milestones,
        warmup_epochs=schedule.warmup_epochs,
        monitor=config.monitor,
        selection=config.selection,
        seed=seed,
        flops_callback=counter,
        verbose=config.verbose,
    )
    if resumed.best is not None:
        edst.snapshot.restore(*resumed.best)
    recipe.fit(resumed.model, config.epochs, [dst, counter, edst],
               initial_epoch=resumed.epoch,
               member=lambda epoch: schedule.phase_of(epoch) or 0,
               checkpoint=(edst.snapshot, counter, {"member": None, "stage": "edst"}))
    return recipe.finish(recipe.reference)


RECIPES = {
    "edst": train_edst_ensemble,
    "dst": train_dst_ensemble,
    "static": train_static_ensemble,
    "pf": train_pf_ensemble,
    "deep_ensemble": train_deep_ensemble,
    "dense": train_dense,
}


def check_resumable(method, build_model, train_data, validation_data=None,
                    config=None, run_dir=None, strategy=None):
    """Raises `ValueError` if `train_ensemble` with these arguments would
    refuse `run_dir` (a run of another method, size, setting, architecture
    or data); writes nothing. For tools that check everything before they
    start (`freetickets-train`).

    Example:

    >>> check_resumable("edst", build, (x, y), (x_val, y_val), config, "runs/edst")
    """
    check_choice("method", method, METHODS)
    run_dir = run_dir or os.path.join("runs", method)
    recipe = _Recipe(method, build_model, train_data, validation_data, config, run_dir,
                     strategy, open_run=False)
    RunDirectory.check_resumable(recipe.run_dir, method, recipe.num_members,
                                 recipe.settings)


def train_ensemble(method, build_model, train_data, validation_data=None,
                   config=None, run_dir=None, strategy=None):
    """Trains an ensemble with any method of `METHODS` (see the recipes).

    Every recipe saves the full training state after each epoch in the run
    directory, and calling it again with the same arguments continues an
    interrupted run where it stopped, to the same tickets.

    Args:
        method: One of `METHODS`.
        build_model: Function with no arguments returning a built, uncompiled
            dense Keras model (ending in logits or a softmax). It is called
            after `keras.utils.set_random_seed(member_seed)`.
        train_data: `(x, y)` arrays (integer labels; shuffled each epoch by
            `config.seed` and the epoch), a `data.TrainingSet` (e.g.
            `data.load("cifar10").train`), or a batched tf.data.Dataset
            (one pass per epoch; a resumed run sees other batches).
        validation_data: `(x, y)` arrays or a batched `tf.data.Dataset`;
            needed for best-validation selection.
        config: An `EnsembleConfig` (default: the original's settings).
        run_dir: Where tickets go (default `runs/<method>`). Under a
            multi-worker strategy, only the chief writes there; the others
            write to `distribute.worker_directory(run_dir, strategy)`.
        strategy: A `tf.distribute.Strategy` to train under (TensorFlow
            backend), e.g. from `freetickets_tf.distribute.get_strategy`;
            None trains on the default device. `config.batch_size` is the
            global batch.

    Returns:
        An `EnsembleRun`.
    """
    check_choice("method", method, METHODS)
    run_dir = run_dir or os.path.join("runs", method)
    return RECIPES[method](build_model, train_data, validation_data, config, run_dir,
                           strategy)
