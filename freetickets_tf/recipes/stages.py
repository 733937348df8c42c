"""The stages the ensemble methods are composed of (`Recipe`), and what a
recipe returns (`EnsembleRun`)."""

import dataclasses
import json
import warnings

import keras

from freetickets_tf import distribute
from freetickets_tf import flops
from freetickets_tf import losses
from freetickets_tf import masking
from freetickets_tf import optimizers
from freetickets_tf import tickets
from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback
from freetickets_tf.callbacks.non_finite import NonFiniteGuard
from freetickets_tf.callbacks.snapshots import PeriodicSnapshots
from freetickets_tf.callbacks.ticket_checkpoint import TicketCheckpoint
from freetickets_tf.callbacks.training_checkpoint import TrainingCheckpoint
from freetickets_tf.callbacks.training_flops import TrainingFlopsCallback
from freetickets_tf.data.preprocessing import apply_preprocessing
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.ensemble_model import output_kind
from freetickets_tf.recipes import inputs
from freetickets_tf.recipes.config import EnsembleConfig
from freetickets_tf.schedules import step_decay_learning_rate
from freetickets_tf.tickets import RunDirectory


@dataclasses.dataclass
class EnsembleRun:
    """What a recipe produced: the run directory, its tickets and FLOPs.

    Attributes:
        run_dir: The run directory.
        method: The ensemble method.
        tickets: Manifest entries of the tickets, by member.
        training_flops: Training FLOPs of the whole ensemble (docs/algorithms.md §6).
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


class Recipe:
    """The stages every method is composed of: making, compiling and fitting
    models, the DST and FLOPs callbacks, resuming, tickets and the final
    FLOPs. A method (`methods.Method`) says only what differs: whether it is
    sparse, how many members it trains and how they share runs."""

    def __init__(self, method, build_model, train_data, validation_data, config,
                 run_dir, strategy=None, open_run=True):
        if config is None:
            config = EnsembleConfig()
        if not isinstance(config, EnsembleConfig):
            raise ValueError(
                f"Invalid `config`: expected an EnsembleConfig, got "
                f"{type(config).__name__}; e.g. `EnsembleConfig(**settings)`.")
        config.validate(method.name)
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
        self.train = inputs.training_set(train_data, config.batch_size, config.seed)
        self.train_data = train_data
        # Validation arrays get the training batches' preprocessing (uint8
        # scaled, mean and std), or selection would score unscaled images.
        self.validation_data = inputs.checked_validation_data(validation_data)
        if isinstance(self.validation_data, (tuple, list)):
            self.validation_data = (
                apply_preprocessing(self.validation_data[0], self.train.preprocessing(),
                                    "validation_data"),
                self.validation_data[1])
        self.config = config
        self.strategy = distribute.check_strategy(strategy)
        distribute.check_batch_size(self.train.batch_size, self.strategy)
        self.num_members = 1 if method.one_model else config.num_members
        independent_runs = not method.one_run and self.num_members > 1
        if independent_runs and self.member_train(1) is self.train:
            warnings.warn(
                "The members train on a tf.data.Dataset in its own order, the "
                "same for all of them (the original shuffles each run with its "
                "own seed). Pass arrays or a freetickets_tf.data "
                "TrainingSet for per-member orders.", stacklevel=3)
        # Built once: its architecture, with the data, is part of what
        # defines the run (resuming on another is refused).
        self.reference = self.new_model(config.seed)
        inputs.check_fits_model(self.reference, self.train, train_data, self.validation_data,
                                config, sparse=method.sparse)
        self.architecture = tickets.architecture(self.reference)
        identity = {
            "preprocessing": self.train.preprocessing(),
            "architecture": self.architecture,
            "train_data": self.train.identity(),
            "validation_data": inputs.data_identity(validation_data),
        }
        # What the manifest records and a resumed run must match.
        self.settings = json.loads(json.dumps({**config.to_dict(), **identity}))
        # A run from before a setting existed ran as its default.
        self.setting_defaults = type(config)().to_dict()
        self.run_dir = distribute.worker_directory(run_dir, self.strategy)
        self.batch = self.train.batch_size
        self.steps_per_epoch = self.train.steps_per_epoch
        if method.check is not None:
            method.check(self)  # settings that depend on the data's size
        if not open_run:
            return
        self.run = RunDirectory.create(self.run_dir, method.name, self.num_members,
                                       self.settings, self.setting_defaults)
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
        shuffles and augments with seed `seed + m` (docs/algorithms.md §4), a function of
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
                self.new_model(seed), config.sparsity.density, config.sparsity.distribution,
                seed=seed, rescale=config.sparsity.rescale_init,
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
                learning_rate, config.optimizer.momentum, config.optimizer.weight_decay,
                config.optimizer.weight_decay_mode, config.optimizer.weight_decay_scope),
            loss=losses.classification_loss(
                output_kind(model) == "logits", config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
        )

    def dst_callback(self, seed, member, end_step=None):
        config = self.config
        return DynamicSparsityCallback(
            data=inputs.growth_data(self.train_data, self.member_train(member),
                                    config.dst.growth_batch),
            update_frequency=config.dst.update_frequency,
            death_rate=config.dst.death_rate,
            death_rate_schedule=config.dst.death_rate_schedule,
            death=config.dst.death,
            growth=config.dst.growth,
            reset_optimizer_state=config.dst.reset_optimizer_state,
            end_step=end_step,
            seed=seed,
            batch_size=config.batch_size,
            prune_dense_layers=config.dst.prune_dense_layers,
            growth_batch=config.dst.growth_batch,
        )

    def flops_callback(self, sparsity_callback=None, initial_flops=0.0):
        return TrainingFlopsCallback(
            self.batch, sparsity_callback=sparsity_callback, initial_flops=initial_flops
        )

    def fit(self, model, epochs, callbacks, state, snapshot=None, flops_callback=None,
            member=None, member_of_run=None):
        """`model.fit` on the training set, resumed from the last checkpoint of
        `state` (`{"member": m, "stage": s}`) if the run was interrupted there:
        a `TrainingCheckpoint` saves after every epoch and restores in
        `on_train_begin` (weights, masks, optimizer slots and step, the best
        epoch in `snapshot`, the FLOPs in `flops_callback`).

        Args:
            member: The member of snapshots (an int, an epoch -> member
                function for EDST, or None for no snapshots).
            member_of_run: The member whose training set (order) this run
                trains on; None for EDST's one run.
        """
        config = self.config
        who = ("the edst run" if member_of_run is None else
               f"member {member_of_run} ({state['stage']}) of the {self.method.name} run")
        checkpoint = TrainingCheckpoint(self.run, snapshot, flops_callback, **state)
        start = checkpoint.initial_epoch
        if start:
            self.say(f"{self.method.name}: resuming {state['stage']} of {who} after "
                     f"epoch {start} from {self.run.path}")
        # First: a diverged epoch must fail before anything saves it.
        callbacks = [NonFiniteGuard(f"{who} in {self.run.path}"), *callbacks]
        if config.snapshot_every and member is not None:
            callbacks.append(PeriodicSnapshots(self.run, config.snapshot_every, member))
        # Last: it restores after the others' `on_train_begin`.
        callbacks.append(checkpoint)
        validation = {}
        if isinstance(self.validation_data, (tuple, list)):
            validation["validation_batch_size"] = config.batch_size
        train = self.member_train(member_of_run)
        # Stopped after the last epoch's checkpoint: a `fit` of no epochs
        # restores it and lets the callbacks finish (write the ticket).
        data = train.epochs(start, epochs) if start < epochs else train.epoch(epochs - 1)
        model.fit(
            data,
            steps_per_epoch=self.steps_per_epoch,
            validation_data=self.validation_data,
            epochs=epochs,
            initial_epoch=min(start, epochs),
            callbacks=callbacks,
            verbose=config.verbose,
            shuffle=False,  # each epoch of the training set comes shuffled
            **validation,
        )
        return model

    def fit_member(self, member, seed, stage, start, epochs, sparsity_callback=None,
                   ticket=True, learning_rate_schedule=True, initial_flops=0.0,
                   first_ticket_epoch=0):
        """Trains `stage` of member `member`, continuing from its checkpoint if
        the run was interrupted in it.

        Args:
            start: Returns the new compiled model to train (or to restore
                the checkpoint into).
            ticket: Whether this stage's best checkpoint is the ticket.
            learning_rate_schedule: Step decay at 50% and 75% of `epochs`.
            initial_flops: FLOPs spent before this stage.
            first_ticket_epoch: The first epoch that may become the ticket.

        Returns:
            `(model, flops_callback)` after training.
        """
        model = start()
        counter = self.flops_callback(sparsity_callback, initial_flops)
        callbacks = [c for c in (sparsity_callback, counter) if c is not None]
        if learning_rate_schedule:
            callbacks.append(self.step_decay(epochs))
        snapshot = None
        if ticket:
            tickets = self.ticket_callback(member, seed, counter, first_ticket_epoch)
            snapshot = tickets.snapshot
            callbacks.append(tickets)
        self.fit(model, epochs, callbacks, {"member": member, "stage": stage}, snapshot,
                 counter, member=member if ticket else None, member_of_run=member)
        return model, counter

    def step_decay(self, epochs):
        config = self.config
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: step_decay_learning_rate(
                epoch, config.optimizer.learning_rate, epochs, config.optimizer.lr_milestones,
                warmup_epochs=config.optimizer.warmup_epochs)
        )

    def ticket_callback(self, member, seed, flops_callback, first_epoch=0):
        return TicketCheckpoint(
            self.run,
            member,
            monitor=self.config.monitor,
            selection=self.config.selection,
            seed=seed,
            flops_callback=flops_callback,
            first_epoch=first_epoch,
        )

    def finish(self):
        """Totals the FLOPs, records them in the manifest, returns the run."""
        config = self.config
        tickets = self.run.tickets
        spent = [t.get("training_flops") or 0.0 for t in tickets]
        # The tickets of one run (EDST) each record the run's FLOPs so far.
        spent = max(spent) if self.method.one_run else sum(spent)
        reference = flops.dense_training_flops(
            self.reference, self.batch * self.steps_per_epoch,
            config.reference_epochs or config.epochs)
        self.run.update(
            flops={
                "training_flops": spent,
                "dense_training_flops": reference,
                "relative_training_flops": spent / reference,
            }
        )
        self.run.clear_checkpoint()
        return EnsembleRun(self.run.path, self.method.name, tickets, spent, reference)

    def members_to_train(self):
        done = self.run.finished_members
        for member in range(self.num_members):
            if member in done:
                self.say(f"Ticket {member} already finished in {self.run.path}; skipped.")
                continue
            yield member, self.config.seed + member


def for_each_member(train_member):
    """A method's `train(recipe)` that runs `train_member(recipe, member,
    seed)` for each member not finished yet (each with seed `seed + m`)."""

    def train(recipe):
        for member, seed in recipe.members_to_train():
            recipe.say(f"{recipe.method.name}: member {member + 1}/{recipe.num_members} "
                       f"(seed {seed})")
            train_member(recipe, member, seed)

    return train
