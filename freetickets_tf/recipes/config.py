"""The settings of an ensemble run, by concern: `SparsityConfig`,
`DSTConfig`, `EDSTConfig`, `PFConfig`, `GMPConfig` and `OptimizerConfig` inside one
`EnsembleConfig`. Defaults are the original's CIFAR ones (docs/algorithms.md §4) and train
as the original code does (coupled weight decay, per-member data order).

Example:

>>> config = EnsembleConfig(
...     epochs=30, batch_size=64,
...     sparsity=SparsityConfig(density=0.1),
...     dst=DSTConfig(update_frequency=50),
...     edst=EDSTConfig(exploration_epochs=12),
...     optimizer=OptimizerConfig(learning_rate=0.05))
>>> # The same, written flat: each setting goes to the section that owns it.
>>> config = EnsembleConfig(epochs=30, batch_size=64, density=0.1,
...                         update_frequency=50, exploration_epochs=12,
...                         learning_rate=0.05)
>>> config.dst.update_frequency
50
"""

import dataclasses
import json
import warnings

from freetickets_tf import optimizers
from freetickets_tf import updaters
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_death_rate
from freetickets_tf._validation import check_density
from freetickets_tf._validation import check_int
from freetickets_tf._validation import check_momentum
from freetickets_tf._validation import check_positive
from freetickets_tf._validation import check_weight_decay
from freetickets_tf.callbacks.dynamic_sparsity import GROWTH_BATCHES
from freetickets_tf.callbacks.ticket_checkpoint import SELECTIONS
from freetickets_tf.densities import DISTRIBUTIONS
from freetickets_tf.schedules import DEATH_RATE_SCHEDULES
from freetickets_tf.schedules import EDSTSchedule

# What `fit` logs with the recipes' compile (loss and accuracy).
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")


@dataclasses.dataclass
class SparsityConfig:
    """How sparse the sparse methods' networks are (docs/algorithms.md §2).

    Attributes:
        density: Overall density.
        distribution: Layer densities, `"erk"`, `"er"` or `"uniform"`.
        rescale_init: Scale each layer's initial weights by `1 / sqrt(d_l)`
            (`masking.sparse_init_scale`), for networks without
            normalisation layers. Off in the original.
    """

    density: float = 0.2
    distribution: str = "erk"
    rescale_init: bool = False

    def validate(self):
        check_density(self.density)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)


@dataclasses.dataclass
class DSTConfig:
    """The topology updates of dynamic sparse training (docs/algorithms.md §3).

    Attributes:
        update_frequency: Optimizer steps between updates (ΔT).
        update_end_fraction: `dst`: no update after this fraction of each
            member's steps (RigL stops at 0.75, before the smallest learning
            rates, where weights regrown at zero cannot recover). None
            updates to the end, as the original.
        death_rate: The death rate `p`.
        death_rate_schedule: `"constant"` or `"cosine"`.
        death: `"magnitude"` or `"set"` (`updaters.DEATH_RULES`).
        growth: `"gradient"`, `"random"` or `"momentum"` (`updaters.GROWTH_MODES`).
        reset_optimizer_state: Zero the optimizer slots of grown weights
            (RigL); False keeps them, as the original.
        prune_dense_layers: Rewire layers at density 1 too, as the
            original's `truncate_weights` (docs/algorithms.md §3 skips them).
        growth_batch: `"fresh"` (a batch drawn for each update, docs/algorithms.md §3) or
            `"last"` (the batch the update's step trained on, as the
            original).
    """

    update_frequency: int = 1000
    update_end_fraction: float = None
    death_rate: float = 0.5
    death_rate_schedule: str = "constant"
    death: str = "magnitude"
    growth: str = "gradient"
    reset_optimizer_state: bool = True
    prune_dense_layers: bool = False
    growth_batch: str = "fresh"

    def validate(self):
        check_int("update_frequency", self.update_frequency, 1)
        check_death_rate(self.death_rate)
        check_choice("death_rate_schedule", self.death_rate_schedule, DEATH_RATE_SCHEDULES)
        check_choice("death", self.death, tuple(updaters.DEATH_RULES))
        check_choice("growth", self.growth, updaters.GROWTH_MODES)
        if self.update_end_fraction is not None and not 0 < self.update_end_fraction <= 1:
            raise ValueError(
                f"Invalid `update_end_fraction`: {self.update_end_fraction!r}. "
                "Expected a fraction in (0, 1], or None (update to the end).")
        check_choice("growth_batch", self.growth_batch, GROWTH_BATCHES)
        if self.growth_batch == "last" and self.growth != "gradient":
            raise ValueError(
                "Invalid `growth_batch`: 'last' chooses the batch of the growth "
                f"gradient; growth={self.growth!r} uses none. Use 'fresh'.")


@dataclasses.dataclass
class EDSTConfig:
    """EDST's phases (docs/algorithms.md §4): exploration, then one refinement phase per
    ticket with a global exploration before phases 2..M.

    Attributes:
        exploration_epochs: The exploration phase `E_explo`.
        large_death_rate: The global-exploration death rate `q`.
        refinement_learning_rates: The rates of each refinement phase, in
            order; None: the initial rate / 10, then / 100 at mid-phase.
        phase_milestones: Epochs into each phase where the next refinement
            rate starts; None: mid-phase (ImageNet: 30, 60).
        exploration_milestones: Epochs of exploration where its rate drops
            × 0.1 (ImageNet: 30, 60, 90).
    """

    exploration_epochs: int = 150
    large_death_rate: float = 0.8
    refinement_learning_rates: tuple = None
    phase_milestones: tuple = None
    exploration_milestones: tuple = ()

    def validate(self):
        check_death_rate(self.large_death_rate, "large_death_rate")
        for i, rate in enumerate(self.refinement_learning_rates or ()):
            check_positive(f"refinement_learning_rates[{i}]", rate)


@dataclasses.dataclass
class PFConfig:
    """Prune-and-fine-tune (docs/algorithms.md §4): each dense member pruned by global
    magnitude and fine-tuned with its mask fixed.

    Attributes:
        finetune_epochs: Fine-tuning epochs after pruning.
        finetune_learning_rate: The constant fine-tuning learning rate.
    """

    finetune_epochs: int = 10
    finetune_learning_rate: float = 0.001

    def validate(self):
        check_int("finetune_epochs", self.finetune_epochs, 1)
        check_positive("finetune_learning_rate", self.finetune_learning_rate)


@dataclasses.dataclass
class GMPConfig:
    """Gradual magnitude pruning (Zhu & Gupta; `callbacks.GradualPruning`):
    each member trains from dense and every masked layer is pruned to the
    sparsity `1 - sparsity.density` along tfmot's `PolynomialDecay` from 0;
    its ticket is taken from the epochs after the last pruning step.

    Attributes:
        pruning_begin: Fraction of each member's steps where pruning starts.
        pruning_end: Fraction where it reaches the final sparsity
            (`> pruning_begin`; 0.75 leaves a quarter of training to
            recover).
        pruning_frequency: Optimizer steps between pruning steps.
        pruning_power: Exponent of the polynomial (3, as Zhu & Gupta).
    """

    pruning_begin: float = 0.0
    pruning_end: float = 0.75
    pruning_frequency: int = 100
    pruning_power: float = 3.0

    def validate(self):
        for name in ("pruning_begin", "pruning_end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0.0 <= value < 1.0):
                raise ValueError(
                    f"Invalid `{name}`: {value!r}. Expected a fraction of each "
                    "member's steps in [0, 1).")
        if self.pruning_end <= self.pruning_begin:
            raise ValueError(
                f"Invalid `pruning_end`: {self.pruning_end!r}. Expected a fraction "
                f"> `pruning_begin` ({self.pruning_begin!r}).")
        check_int("pruning_frequency", self.pruning_frequency, 1)
        check_positive("pruning_power", self.pruning_power)


@dataclasses.dataclass
class OptimizerConfig:
    """SGD and its learning-rate schedule (`optimizers.make_sgd`).

    Attributes:
        learning_rate: The initial rate (EDST: the exploration rate).
        lr_milestones: Member runs (not EDST): fractions of the epochs where
            the rate drops × 0.1.
        warmup_epochs: Epochs of linear warm-up (ImageNet: 5).
        momentum: In [0, 1).
        weight_decay: Finite and >= 0.
        weight_decay_mode: `"coupled"`: `torch.optim.SGD`'s L2, `wd * w`
            added to the gradient before the momentum, as the original
            (`optimizers.TorchSGD`). `"decoupled"`: Keras' `SGD` with its
            decoupled `weight_decay` (about 10x weaker at momentum 0.9).
        weight_decay_scope: `"all"` trainable parameters (weights, biases,
            normalisation scales and offsets: the original) or `"kernels"`
            only (parameters with two or more dimensions).
    """

    learning_rate: float = 0.1
    lr_milestones: tuple = (0.5, 0.75)
    warmup_epochs: int = 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    weight_decay_mode: str = "coupled"
    weight_decay_scope: str = "all"

    def validate(self):
        check_positive("learning_rate", self.learning_rate)
        check_int("warmup_epochs", self.warmup_epochs, 0)
        check_momentum(self.momentum)
        check_weight_decay(self.weight_decay)
        check_choice("weight_decay_mode", self.weight_decay_mode, optimizers.WEIGHT_DECAY_MODES)
        check_choice("weight_decay_scope", self.weight_decay_scope,
                     optimizers.WEIGHT_DECAY_SCOPES)
        if any(not 0.0 < f < 1.0 for f in self.lr_milestones):
            raise ValueError(
                f"Invalid `lr_milestones`: {self.lr_milestones!r}. Expected "
                "fractions of the epochs, each in (0, 1).")


SECTIONS = {
    "sparsity": SparsityConfig,
    "dst": DSTConfig,
    "edst": EDSTConfig,
    "pf": PFConfig,
    "gmp": GMPConfig,
    "optimizer": OptimizerConfig,
}
# Flat setting name -> the section that owns it.
_OWNER = {f.name: section for section, cls in SECTIONS.items()
          for f in dataclasses.fields(cls)}


@dataclasses.dataclass
class EnsembleConfig:
    """Settings of an ensemble run: the run's own, and one section per
    concern. Any section setting may also be passed flat (e.g.
    `EnsembleConfig(density=0.1)` sets `sparsity.density`); read it from
    its section (`config.sparsity.density`).

    Attributes:
        num_members: Tickets M (`dense` always trains one).
        epochs: Epochs of each member run; for `edst` the whole run's `E`.
        reference_epochs: Epochs of the dense model that training FLOPs are
            compared with; None means `epochs` (for EDST, pass the epochs a
            single dense model would get, e.g. 250 against EDST's 450).
        batch_size: Global batch size (for array data; a `TrainingSet`
            brings its own).
        label_smoothing: Of the cross-entropy loss (ImageNet: 0.1).
        selection: `"best"` validation checkpoint per ticket, or `"last"`.
        snapshot_every: Keep the model every this many epochs in the run's
            `snapshots/` (for `evaluate(..., modes=["tsne"])`); None keeps
            none. Not for `pf`.
        monitor: The validation log that selects checkpoints (`MONITORS`).
        seed: Seed of member 0; member m uses `seed + m`, for its
            initialisation, mask and data order.
        verbose: Keras `fit` verbosity; 0 also silences the recipe's lines.
        jit_compile: Passed to `compile` (`"auto"`, True or False).
        sparsity: A `SparsityConfig`.
        dst: A `DSTConfig`.
        edst: An `EDSTConfig`.
        pf: A `PFConfig`.
        gmp: A `GMPConfig`.
        optimizer: An `OptimizerConfig`.

    Example:

    >>> config = EnsembleConfig(epochs=30, dst=DSTConfig(update_frequency=50))
    >>> config.to_dict()["dst"]["update_frequency"]
    50
    """

    num_members: int = 3
    epochs: int = 250
    reference_epochs: int = None
    batch_size: int = 128
    label_smoothing: float = 0.0
    selection: str = "best"
    snapshot_every: int = None
    monitor: str = "val_accuracy"
    seed: int = 0
    verbose: int = 2
    jit_compile: object = "auto"
    sparsity: SparsityConfig = None
    dst: DSTConfig = None
    edst: EDSTConfig = None
    pf: PFConfig = None
    gmp: GMPConfig = None
    optimizer: OptimizerConfig = None

    def __post_init__(self):
        for section, cls in SECTIONS.items():
            value = getattr(self, section)
            if value is None:
                value = cls()
            elif isinstance(value, dict):
                value = cls(**value)
            elif not isinstance(value, cls):
                raise ValueError(
                    f"Invalid `{section}`: expected a {cls.__name__}, got "
                    f"{type(value).__name__}.")
            # A copy: changing this config never changes the caller's section.
            object.__setattr__(self, section, dataclasses.replace(value))

    def __getattr__(self, name):
        # Only reached for names that are not attributes: the flat names.
        if name in _OWNER:
            warnings.warn(
                f"`EnsembleConfig.{name}` is deprecated: read "
                f"`config.{_OWNER[name]}.{name}`.", DeprecationWarning, stacklevel=2)
            return getattr(object.__getattribute__(self, _OWNER[name]), name)
        raise AttributeError(f"'EnsembleConfig' object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in _OWNER:
            # Never a stray attribute that the run would silently ignore.
            warnings.warn(
                f"Setting `EnsembleConfig.{name}` is deprecated: set "
                f"`config.{_OWNER[name]}.{name}`.", DeprecationWarning, stacklevel=2)
            setattr(getattr(self, _OWNER[name]), name, value)
            return
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise AttributeError(f"EnsembleConfig has no setting {name!r}.")
        object.__setattr__(self, name, value)

    def validate(self, method):
        """Raises `ValueError` for settings that cannot work for `method`
        (a name from `recipes.METHODS`)."""
        check_int("num_members", self.num_members, 1)
        check_int("epochs", self.epochs, 1)
        check_int("reference_epochs", self.reference_epochs, 1, allow_none=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("seed", self.seed, 0)
        check_int("snapshot_every", self.snapshot_every, 1, allow_none=True)
        check_choice("selection", self.selection, SELECTIONS)
        check_int("verbose", self.verbose, 0)
        check_choice("jit_compile", self.jit_compile, ("auto", True, False))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"Invalid `label_smoothing`: {self.label_smoothing!r}. Expected a "
                "number in [0, 1).")
        for section in SECTIONS:
            getattr(self, section).validate()
        if self.optimizer.warmup_epochs >= self.epochs:
            raise ValueError(
                f"Invalid `warmup_epochs`: {self.optimizer.warmup_epochs} of a "
                f"{self.epochs}-epoch run; the warm-up must end before the run does.")
        if method == "edst":
            # Checks epochs / exploration / phase lengths with clear messages.
            self.edst_schedule()
        elif self.edst.exploration_milestones or self.edst.phase_milestones is not None:
            raise ValueError(
                "`exploration_milestones` and `phase_milestones` are EDST settings; "
                f"method {method!r} uses `lr_milestones`.")

    def edst_schedule(self):
        """The `EDSTSchedule` of these settings."""
        lr, edst = self.optimizer.learning_rate, self.edst
        refinement = edst.refinement_learning_rates or (lr / 10, lr / 100)
        return EDSTSchedule(
            self.epochs, edst.exploration_epochs, self.num_members, (lr, *refinement),
            edst.phase_milestones, edst.exploration_milestones,
            self.optimizer.warmup_epochs)

    def to_dict(self):
        """The settings that define the run (verbosity excluded), nested by
        section, as stored in a manifest (tuples become lists), so that a
        resumed run's settings compare equal to the stored ones."""
        settings = dataclasses.asdict(self)
        del settings["verbose"]
        return json.loads(json.dumps(settings))


_dataclass_init = EnsembleConfig.__init__


def _init_with_flat_settings(self, *args, **settings):
    # The dataclass `__init__`, plus flat section settings (`density=0.1`),
    # each applied to the section that owns it.
    flat = {name: settings.pop(name) for name in list(settings) if name in _OWNER}
    _dataclass_init(self, *args, **settings)
    for name, value in flat.items():
        setattr(getattr(self, _OWNER[name]), name, value)


_init_with_flat_settings.__doc__ = _dataclass_init.__doc__
EnsembleConfig.__init__ = _init_with_flat_settings
