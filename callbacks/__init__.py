"""Keras callbacks of freetickets_tf (installed as `freetickets_tf.callbacks`)."""

from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback

__all__ = ["DynamicSparsityCallback"]
