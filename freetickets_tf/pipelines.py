"""Deprecated: the input pipelines are now `freetickets_tf.data` (the same
names: `data.load`, `data.from_arrays`, `data.TrainingSet`, ...)."""

import warnings

from freetickets_tf.data import *  # noqa: F401,F403

warnings.warn(
    "`freetickets_tf.pipelines` is deprecated: use `freetickets_tf.data`, which "
    "has the same names.", DeprecationWarning, stacklevel=2)
