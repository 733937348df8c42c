"""Deprecated: the training recipes are now `freetickets_tf.recipes` (the same
names: `recipes.train_ensemble`, `recipes.EnsembleConfig`, ...)."""

import warnings

from freetickets_tf.recipes import *  # noqa: F401,F403

warnings.warn(
    "`freetickets_tf.ensembles` is deprecated: use `freetickets_tf.recipes`, which "
    "has the same names.", DeprecationWarning, stacklevel=2)
