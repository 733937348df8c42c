"""Keras callbacks of freetickets_tf (installed as `freetickets_tf.callbacks`)."""

from freetickets_tf.callbacks.dynamic_sparsity import GROWTH_BATCHES
from freetickets_tf.callbacks.dynamic_sparsity import DynamicSparsityCallback
from freetickets_tf.callbacks.edst import EDSTCallback
from freetickets_tf.callbacks.gradual_pruning import GradualPruning
from freetickets_tf.callbacks.non_finite import NonFiniteGuard
from freetickets_tf.callbacks.snapshots import PeriodicSnapshots
from freetickets_tf.callbacks.sparsity_monitor import SparsityMonitor
from freetickets_tf.callbacks.ticket_checkpoint import TicketCheckpoint
from freetickets_tf.callbacks.training_checkpoint import TrainingCheckpoint
from freetickets_tf.callbacks.training_flops import TrainingFlopsCallback

__all__ = [
    "GROWTH_BATCHES",
    "DynamicSparsityCallback",
    "EDSTCallback",
    "GradualPruning",
    "NonFiniteGuard",
    "PeriodicSnapshots",
    "SparsityMonitor",
    "TicketCheckpoint",
    "TrainingCheckpoint",
    "TrainingFlopsCallback",
]
