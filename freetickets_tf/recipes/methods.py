"""The ensemble methods (docs/algorithms.md §4), each a short composition of the shared
stages of `stages.Recipe`, and their registry.

| method | members | sparse | each member |
| --- | --- | --- | --- |
| `edst` | M phases of one run | yes | a refinement phase of one DST run (`edst.train`) |
| `dst` | M runs | yes | a DST run with its own seed |
| `static` | M runs | yes | a random ERK mask, never updated |
| `pf` | M runs | yes | a dense run, pruned by global magnitude, fine-tuned |
| `gmp` | M runs | yes | a run from dense, pruned gradually by magnitude (Zhu & Gupta) |
| `deep_ensemble` | M runs | no | a dense run |
| `dense` | 1 run | no | a dense run |
"""

import dataclasses
import math
import typing

from freetickets_tf import distribute
from freetickets_tf import masking
from freetickets_tf.callbacks.gradual_pruning import GradualPruning
from freetickets_tf.pruning_schedules import PolynomialDecay
from freetickets_tf.recipes import edst
from freetickets_tf.recipes.stages import for_each_member


@dataclasses.dataclass(frozen=True)
class Method:
    """What sets an ensemble method apart; the recipe does the rest.

    Attributes:
        name: The name in `METHODS`.
        train: `train(recipe)` trains the members the run still lacks.
        sparse: Whether its networks are sparse (the model must be maskable).
        one_model: It trains one member whatever `num_members` says.
        one_run: Its tickets are phases of one run: the run's FLOPs count
            once, and every member shares one data order.
        check: `check(recipe)` raises `ValueError` for settings that cannot
            work on this run's data, before the run directory is made.
    """

    name: str
    train: typing.Callable
    sparse: bool = True
    one_model: bool = False
    one_run: bool = False
    check: typing.Callable = None


def _sparse_start(recipe, seed):
    return lambda: recipe.compile(recipe.new_sparse_model(seed),
                                  recipe.config.optimizer.learning_rate)


def _dense_start(recipe, seed):
    return lambda: recipe.compile(recipe.new_model(seed),
                                  recipe.config.optimizer.learning_rate)


def _dst_member(recipe, member, seed):
    config = recipe.config
    end_step = None
    if config.dst.update_end_fraction is not None:
        total = config.epochs * recipe.steps_per_epoch
        end_step = math.floor(config.dst.update_end_fraction * total)
    recipe.fit_member(member, seed, "train", _sparse_start(recipe, seed), config.epochs,
                      sparsity_callback=recipe.dst_callback(seed, member, end_step))


def _static_member(recipe, member, seed):
    recipe.fit_member(member, seed, "train", _sparse_start(recipe, seed),
                      recipe.config.epochs)


def _dense_member(recipe, member, seed):
    recipe.fit_member(member, seed, "train", _dense_start(recipe, seed),
                      recipe.config.epochs)


def _pf_member(recipe, member, seed):
    config = recipe.config
    checkpoint = recipe.run.checkpoint
    finetuning = checkpoint is not None and (
        checkpoint[1].get("member"), checkpoint[1].get("stage")) == (member, "finetune")
    dense = counter = None
    if not finetuning:
        dense, counter = recipe.fit_member(member, seed, "dense", _dense_start(recipe, seed),
                                           config.epochs, ticket=False)

    def prune():
        # Resumed in the fine-tuning, the checkpoint's weights and masks go
        # into a pruned model of the same structure (the trained dense model
        # is not at hand).
        source = dense if dense is not None else recipe.new_model(seed)
        with distribute.scope(recipe.strategy):
            pruned = masking.prune_global_magnitude(source, config.sparsity.density)
        return recipe.compile(pruned, config.pf.finetune_learning_rate)

    recipe.fit_member(member, seed, "finetune", prune, config.pf.finetune_epochs,
                      learning_rate_schedule=False,
                      initial_flops=0.0 if counter is None else counter.total_flops)


def _gmp_schedule(recipe):
    """Each GMP member's `PolynomialDecay`, in optimizer steps of the run."""
    config = recipe.config
    total = config.epochs * recipe.steps_per_epoch
    frequency = config.gmp.pruning_frequency
    begin = math.floor(config.gmp.pruning_begin * total)
    # The last pruning step must run (at most the member's last step) and be
    # a pruning turn, so that the tickets reach the final sparsity.
    end = min(math.floor(config.gmp.pruning_end * total), total - 1)
    end = begin + (end - begin) // frequency * frequency
    if end <= begin:
        raise ValueError(
            f"Invalid `pruning_frequency`: {frequency} steps leave no pruning step "
            f"after the first (step {begin}) within `pruning_end` "
            f"({config.gmp.pruning_end} of {total} steps per member), so the tickets "
            "would never reach the final sparsity. Lower it, or train longer.")
    return PolynomialDecay(0.0, 1.0 - config.sparsity.density, begin, end,
                           power=config.gmp.pruning_power, frequency=frequency)


def _gmp_member(recipe, member, seed):
    config = recipe.config
    schedule = _gmp_schedule(recipe)

    def start():
        with distribute.scope(recipe.strategy):
            prunable = masking.sparsify(recipe.new_model(seed), 1.0, "uniform", seed=seed)
        return recipe.compile(prunable, config.optimizer.learning_rate)

    # The ticket: an epoch after the last pruning step (step `end_step` is
    # pruned before it runs, in epoch `end_step // steps_per_epoch`).
    recipe.fit_member(member, seed, "train", start, config.epochs,
                      sparsity_callback=GradualPruning(schedule),
                      first_ticket_epoch=schedule.end_step // recipe.steps_per_epoch)


REGISTRY = {
    method.name: method for method in (
        Method("edst", edst.train, one_run=True),
        Method("dst", for_each_member(_dst_member)),
        Method("static", for_each_member(_static_member)),
        Method("pf", for_each_member(_pf_member)),
        Method("gmp", for_each_member(_gmp_member), check=_gmp_schedule),
        Method("deep_ensemble", for_each_member(_dense_member), sparse=False),
        Method("dense", for_each_member(_dense_member), sparse=False, one_model=True),
    )
}
METHODS = tuple(REGISTRY)
# The methods that train dense models (the others make them sparse).
DENSE_METHODS = tuple(name for name, method in REGISTRY.items() if not method.sparse)
