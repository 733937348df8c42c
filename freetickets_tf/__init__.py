"""freetickets_tf: FreeTickets for Keras 3.

Ensembles of sparse subnetworks found by dynamic sparse training (DST). Make a
model sparse with `sparsify`, train it with
`callbacks.DynamicSparsityCallback` inside `model.fit`; train whole ensembles
(EDST, DST and the baselines) with `train_ensemble`, combine their tickets
with `EnsembleModel`, and measure them with `evaluation`, `metrics` and
`flops`.

Example:

>>> import freetickets_tf as ft
>>> sparse = ft.sparsify(model, density=0.2)
>>> sparse.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
>>> sparse.fit(x, y, epochs=10, callbacks=[
...     ft.callbacks.DynamicSparsityCallback(data=(x, y), update_frequency=100)])
>>> print(ft.sparsity_summary(sparse))
>>> run = ft.train_ensemble("edst", build, (x, y), (x_val, y_val),
...                         ft.EnsembleConfig(epochs=450), "runs/edst")
>>> ensemble = ft.EnsembleModel.from_run("runs/edst")
"""

from freetickets_tf import data
from freetickets_tf import io
from freetickets_tf import schedules
from freetickets_tf import tickets
from freetickets_tf import layers
from freetickets_tf import optimizers
from freetickets_tf import topology
from freetickets_tf import updaters
from freetickets_tf.densities import erk_densities
from freetickets_tf.masking import init_masks
from freetickets_tf.masking import itop_rate
from freetickets_tf.masking import layer_densities
from freetickets_tf.masking import masked_kernels
from freetickets_tf.masking import overall_density
from freetickets_tf.masking import prune_global_magnitude
from freetickets_tf.masking import sparsify
from freetickets_tf.masking import sparsity_summary
from freetickets_tf.masking import strip_sparsity
from freetickets_tf.masking import zero_inactive_weights
from freetickets_tf.version import __version__

# Imported last: they use the modules above.
from freetickets_tf import callbacks  # noqa: E402  isort: skip
from freetickets_tf import models  # noqa: E402  isort: skip
from freetickets_tf import flops  # noqa: E402  isort: skip
from freetickets_tf import metrics  # noqa: E402  isort: skip
from freetickets_tf import serving  # noqa: E402  isort: skip
from freetickets_tf.callbacks import DynamicSparsityCallback  # noqa: E402  isort: skip
from freetickets_tf.callbacks import EDSTCallback  # noqa: E402  isort: skip
from freetickets_tf.ensemble_model import EnsembleModel  # noqa: E402  isort: skip
from freetickets_tf import distribute  # noqa: E402  isort: skip
from freetickets_tf import losses  # noqa: E402  isort: skip

from freetickets_tf import ensembles  # noqa: E402  isort: skip
from freetickets_tf import evaluation  # noqa: E402  isort: skip

from freetickets_tf import plots  # noqa: E402  isort: skip
from freetickets_tf.ensembles import EnsembleConfig  # noqa: E402  isort: skip
from freetickets_tf.ensembles import train_ensemble  # noqa: E402  isort: skip

__all__ = [
    "DynamicSparsityCallback",
    "EDSTCallback",
    "EnsembleConfig",
    "EnsembleModel",
    "callbacks",
    "data",
    "distribute",
    "ensembles",
    "evaluation",
    "flops",
    "erk_densities",
    "init_masks",
    "io",
    "itop_rate",
    "layer_densities",
    "layers",
    "losses",
    "masked_kernels",
    "metrics",
    "models",
    "optimizers",
    "overall_density",
    "plots",
    "prune_global_magnitude",
    "schedules",
    "serving",
    "sparsify",
    "sparsity_summary",
    "strip_sparsity",
    "tickets",
    "topology",
    "train_ensemble",
    "updaters",
    "zero_inactive_weights",
    "__version__",
]
