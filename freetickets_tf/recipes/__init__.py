"""Training recipes for FreeTickets ensembles and their baselines (docs/algorithms.md §4).

`train_ensemble(method, build_model, train_data, validation_data, config,
run_dir)` trains the members, writes each ticket to the run directory as it
finishes (see `freetickets_tf.tickets`), and returns an `EnsembleRun` with
the tickets and the training FLOPs. Re-running it on the same directory
resumes: finished tickets are kept, and an interrupted member continues from
the checkpoint of its last epoch.

| module | what it holds |
| --- | --- |
| `config` | `EnsembleConfig` and its sections (sparsity, DST, EDST, PF, GMP, optimizer) |
| `inputs` | the checks and derivations of the data, before a run directory exists |
| `stages` | `Recipe`: the stages every method is composed of |
| `methods` | the methods (`METHODS`), each a short composition of stages |
| `edst` | EDST's one run |

Example:

>>> def build():
...     return freetickets_tf.models.get("lenet300-100", 10, (8, 8, 1))
>>> config = EnsembleConfig(epochs=30, batch_size=64,
...                         edst=EDSTConfig(exploration_epochs=12),
...                         dst=DSTConfig(update_frequency=50),
...                         optimizer=OptimizerConfig(learning_rate=0.05))
>>> run = train_ensemble("edst", build, (x, y), (x_val, y_val), config, "runs/edst")
>>> ensemble = run.ensemble_model()
"""

import os

from freetickets_tf._validation import check_choice
from freetickets_tf.recipes.config import MONITORS
from freetickets_tf.recipes.config import DSTConfig
from freetickets_tf.recipes.config import EDSTConfig
from freetickets_tf.recipes.config import EnsembleConfig
from freetickets_tf.recipes.config import GMPConfig
from freetickets_tf.recipes.config import OptimizerConfig
from freetickets_tf.recipes.config import PFConfig
from freetickets_tf.recipes.config import SparsityConfig
from freetickets_tf.recipes.methods import DENSE_METHODS
from freetickets_tf.recipes.methods import METHODS
from freetickets_tf.recipes.methods import REGISTRY
from freetickets_tf.recipes.stages import EnsembleRun
from freetickets_tf.recipes.stages import Recipe
from freetickets_tf.tickets import RunDirectory

__all__ = [
    "DENSE_METHODS",
    "DSTConfig",
    "EDSTConfig",
    "EnsembleConfig",
    "EnsembleRun",
    "GMPConfig",
    "METHODS",
    "MONITORS",
    "OptimizerConfig",
    "PFConfig",
    "SparsityConfig",
    "check_resumable",
    "train_deep_ensemble",
    "train_dense",
    "train_dst_ensemble",
    "train_edst_ensemble",
    "train_ensemble",
    "train_pf_ensemble",
    "train_static_ensemble",
]


def _recipe(method, build_model, train_data, validation_data, config, run_dir, strategy,
            open_run=True):
    method = REGISTRY[check_choice("method", method, METHODS)]
    run_dir = run_dir or os.path.join("runs", method.name)
    return Recipe(method, build_model, train_data, validation_data, config, run_dir,
                  strategy, open_run=open_run)


def check_resumable(method, build_model, train_data, validation_data=None,
                    config=None, run_dir=None, strategy=None):
    """Raises `ValueError` if `train_ensemble` with these arguments would
    refuse `run_dir` (a run of another method, size, setting, architecture
    or data); writes nothing. For tools that check everything before they
    start (`freetickets-train`).

    Example:

    >>> check_resumable("edst", build, (x, y), (x_val, y_val), config, "runs/edst")
    """
    recipe = _recipe(method, build_model, train_data, validation_data, config, run_dir,
                     strategy, open_run=False)
    RunDirectory.check_resumable(recipe.run_dir, recipe.method.name, recipe.num_members,
                                 recipe.settings, recipe.setting_defaults)


def train_ensemble(method, build_model, train_data, validation_data=None,
                   config=None, run_dir=None, strategy=None):
    """Trains an ensemble with any method of `METHODS` (see `methods`).

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

    Example:

    >>> run = train_ensemble("dst", build, (x, y), (x_val, y_val),
    ...                      EnsembleConfig(epochs=30), "runs/dst")
    >>> run.relative_training_flops
    0.47
    """
    recipe = _recipe(method, build_model, train_data, validation_data, config, run_dir,
                     strategy)
    try:
        recipe.method.train(recipe)
        return recipe.finish()
    finally:
        recipe.run.release()


def train_edst_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/edst", strategy=None):
    """EDST Ensemble: one DST run harvesting M tickets, one per refinement
    phase, with a global exploration before phases 2..M. Same as `train_ensemble('edst', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('edst', build_model, train_data, validation_data, config,
                          run_dir, strategy)


def train_dst_ensemble(build_model, train_data, validation_data=None, config=None,
                       run_dir="runs/dst", strategy=None):
    """DST Ensemble: M independent DST runs with seeds `seed + m`; topology
    updates stop after `dst.update_end_fraction` of the steps, if set. Same as `train_ensemble('dst', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('dst', build_model, train_data, validation_data, config,
                          run_dir, strategy)


def train_static_ensemble(build_model, train_data, validation_data=None, config=None,
                          run_dir="runs/static", strategy=None):
    """Static sparse ensemble: M random ERK masks, never updated. Same as `train_ensemble('static', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('static', build_model, train_data, validation_data, config,
                          run_dir, strategy)


def train_pf_ensemble(build_model, train_data, validation_data=None, config=None,
                      run_dir="runs/pf", strategy=None):
    """PF ensemble: M dense runs, each pruned by global magnitude to
    `sparsity.density` and fine-tuned with its mask fixed (`pf` settings). Same as `train_ensemble('pf', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('pf', build_model, train_data, validation_data, config,
                          run_dir, strategy)


def train_deep_ensemble(build_model, train_data, validation_data=None, config=None,
                        run_dir="runs/deep_ensemble", strategy=None):
    """Dense deep ensemble: M dense runs with their own seeds. Same as `train_ensemble('deep_ensemble', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('deep_ensemble', build_model, train_data, validation_data, config,
                          run_dir, strategy)


def train_dense(build_model, train_data, validation_data=None, config=None,
                run_dir="runs/dense", strategy=None):
    """One dense model (`num_members` is ignored), as a one-ticket run. Same as `train_ensemble('dense', ...)`.

    Returns:
        An `EnsembleRun`.
    """
    return train_ensemble('dense', build_model, train_data, validation_data, config,
                          run_dir, strategy)
