"""Deprecated: the corrupted test sets are now `freetickets_tf.data.corruptions`."""

import warnings

from freetickets_tf.data.corruptions import *  # noqa: F401,F403

warnings.warn(
    "`freetickets_tf.corruptions` is deprecated: use "
    "`freetickets_tf.data.corruptions`, which has the same names.",
    DeprecationWarning, stacklevel=2)
