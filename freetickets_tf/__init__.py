"""freetickets_tf: FreeTickets for Keras 3.

Ensembles of sparse subnetworks found by dynamic sparse training (DST). Make a
model sparse with `sparsify`, train it with `DynamicSparsityCallback` inside
`model.fit`; train whole ensembles (EDST, DST and the baselines) with
`train_ensemble`, combine their tickets with `EnsembleModel`, measure them
with `evaluate_ensemble` and serve them with `export_saved_model`.

The top level holds the names most programs need; everything else lives in
submodules, loaded when first used (`ft.data`, `ft.metrics`, `ft.flops`,
`ft.updaters`, `ft.schedules`, ...).

Example:

>>> import freetickets_tf as ft
>>> sparse = ft.sparsify(model, density=0.2)
>>> sparse.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
>>> sparse.fit(x, y, epochs=10, callbacks=[
...     ft.DynamicSparsityCallback(data=(x, y), update_frequency=100)])
>>> print(ft.sparsity_summary(sparse))
>>> run = ft.train_ensemble("edst", build, (x, y), (x_val, y_val),
...                         ft.EnsembleConfig(epochs=450), "runs/edst")
>>> ensemble = ft.EnsembleModel.from_run("runs/edst")
"""

import importlib
import warnings

# In the command-line scripts, TensorFlow's C++ start-up lines are kept out
# of the report (`_startup`).
from freetickets_tf import _startup

# Imported at once, not lazily: these modules register their classes with
# Keras (masked layers, the torch-semantics SGD, the loss, the metrics, the
# ensemble), so a `.keras` ticket or checkpoint loads with
# `keras.models.load_model` after a plain `import freetickets_tf`.
with _startup.script_start_quietened():
    from freetickets_tf import ensemble_model  # noqa: F401
    from freetickets_tf import layers  # noqa: F401
    from freetickets_tf import losses  # noqa: F401
    from freetickets_tf import metrics  # noqa: F401
    from freetickets_tf import optimizers  # noqa: F401
from freetickets_tf.version import __version__

# The public names: name -> the submodule that defines it.
_EXPORTS = {
    "sparsify": "masking",
    "strip_sparsity": "masking",
    "sparsity_summary": "masking",
    "masked_kernels": "masking",
    "erk_densities": "densities",
    "DynamicSparsityCallback": "callbacks",
    "EDSTCallback": "callbacks",
    "GradualPruning": "callbacks",
    "TrainingCheckpoint": "callbacks",
    "SparsityMonitor": "callbacks",
    "EnsembleConfig": "recipes",
    "train_ensemble": "recipes",
    "EnsembleModel": "ensemble_model",
    "evaluate_ensemble": "evaluation",
    "export_saved_model": "serving",
}

# Submodules, imported on first use (`ft.flops`, `ft.data`, ...).
_SUBMODULES = (
    "backend", "callbacks", "data", "densities", "distribute", "ensemble_model",
    "evaluation", "flops", "growth_batches", "io", "layers", "losses", "manifest",
    "masking", "metrics", "models", "optimizers", "plots", "pruning_schedules", "recipes",
    "running_scores",
    "schedules", "serving", "tickets", "topology", "updaters",
)

# Names that were at the top level (or modules that were renamed): they
# still work, with a DeprecationWarning that names where they are now.
_MOVED = {
    "init_masks": "masking",
    "itop_rate": "masking",
    "layer_densities": "masking",
    "overall_density": "masking",
    "prune_global_magnitude": "masking",
    "zero_inactive_weights": "masking",
}
_RENAMED_MODULES = {
    "pipelines": "data",
    "corruptions": "data.corruptions",
    "ensembles": "recipes",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _MOVED:
        warnings.warn(
            f"`freetickets_tf.{name}` is deprecated: use "
            f"`freetickets_tf.{_MOVED[name]}.{name}`.", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{_MOVED[name]}"), name)
    elif name in _RENAMED_MODULES:
        # The old module itself warns (once, when first imported).
        return importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip `__getattr__`
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
