"""Training on several devices or machines with `tf.distribute` (TensorFlow).

The glue is small because the sparse core needs no special treatment under a
strategy: models, masks and optimizers are created inside `strategy.scope()`,
so mask variables are mirrored, and the topology update runs between steps
in the cross-replica context, where assigning a mirrored variable writes the
same value to every replica. The masks are therefore identical on all
replicas after every update. Every worker of a multi-worker run draws the
same growth batch (same seed and step) from the same data; each replica
takes the growth gradient on its own shard of it (`split_over_replicas`)
and the gradients are all-reduced, as in a train step, so the replicas
share the gradient work and every worker grows by the same gradient to the
same masks.

Several machines: `get_strategy("multi_worker")` reads the cluster from the
`TF_CONFIG` environment variable, like every `MultiWorkerMirroredStrategy`,
and repairs the two places where Keras 3's `fit` fails under it
(keras-team/keras#20585; see `_multi_worker_fit`). Every worker runs the same
command; the chief writes the run directory and the others write beside it
(`worker_directory`), so that each can resume from its own checkpoint.
After an interruption, start every worker again; the recipes first check
that all workers would resume from the same point (`check_workers_agree`).

Example:

>>> strategy = distribute.get_strategy("mirrored")  # all local GPUs
>>> run = recipes.train_ensemble("edst", build, train, val, config,
...                                run_dir="runs/edst", strategy=strategy)
"""

import contextlib
import os

import keras

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def _require_tensorflow(feature):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise NotImplementedError(
            f"{feature} uses tf.distribute, which needs KERAS_BACKEND="
            f"'tensorflow'; this process runs {backend!r}. On JAX, distribute "
            "with `keras.distribution` (e.g. DataParallel) instead."
        )


def use_cpu_devices(count):
    """Splits the CPU into `count` logical devices, so that a strategy can be
    tried (and tested) on a machine without accelerators. Call it before
    anything else touches TensorFlow's devices.

    Example:

    >>> use_cpu_devices(2)
    >>> get_strategy("mirrored").num_replicas_in_sync
    2
    """
    check_int("count", count, 1)
    _require_tensorflow("use_cpu_devices")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as error:
        raise RuntimeError(
            "use_cpu_devices must run before TensorFlow initialises its devices "
            "(before building any model or tensor)."
        ) from error


def get_strategy(name="default", tpu=None):
    """A `tf.distribute.Strategy` by name, or None for the default device.

    Args:
        name: One of `STRATEGIES`: `"default"` (no strategy), `"mirrored"`
            (every local GPU, else every logical CPU device), `"multi_worker"`
            (`MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`;
            without it, this machine alone), or `"tpu"`.
        tpu: The TPU's name or address for `"tpu"` (None: the local TPU).

    Returns:
        A strategy, or None for `"default"`.

    Example:

    >>> strategy = get_strategy("mirrored")
    >>> with strategy.scope():
    ...     model = build()
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "default":
        return None
    _require_tensorflow(f"strategy={name!r}")
    import tensorflow as tf

    if name == "mirrored":
        devices = None
        if not tf.config.list_logical_devices("GPU"):
            # MirroredStrategy would use one CPU; take every logical CPU
            # (see `use_cpu_devices`).
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        from freetickets_tf import _multi_worker_fit

        _multi_worker_fit.apply()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def check_strategy(strategy):
    """`strategy` if it is None or a `tf.distribute.Strategy`; else an error."""
    if strategy is None:
        return None
    _require_tensorflow("`strategy`")
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(
            f"Invalid `strategy`: expected a tf.distribute.Strategy or None, got "
            f"{type(strategy).__name__}. Make one with "
            f"`freetickets_tf.distribute.get_strategy(name)`, name in {STRATEGIES}."
        )
    return strategy


def num_replicas(strategy):
    """Replicas that share each global batch (1 without a strategy)."""
    return 1 if strategy is None else strategy.num_replicas_in_sync


def check_batch_size(batch_size, strategy):
    """Raises `ValueError` unless the global `batch_size` splits evenly over
    the replicas of `strategy`."""
    replicas = num_replicas(strategy)
    if batch_size % replicas:
        raise ValueError(
            f"Invalid `batch_size`: the global batch of {batch_size} does not "
            f"split evenly over the {replicas} replicas of "
            f"{type(strategy).__name__}; use a multiple of {replicas}."
        )


def split_over_replicas(strategy, batch):
    """`batch` (a structure of arrays with one batch dimension) split into
    one shard per replica of `strategy`, replica `i` of all of them (on
    every worker) taking the `i`-th of `np.array_split`'s contiguous shards.

    Returns:
        `(per_replica_batch, batch_size)`: the shards as distributed values
        for `strategy.run`, and the size of the whole batch.
    """
    import numpy as np
    import tensorflow as tf

    batch = keras.tree.map_structure(tf.convert_to_tensor, batch)
    size = int(keras.tree.flatten(batch)[0].shape[0])
    replicas = strategy.num_replicas_in_sync
    if size < replicas:
        raise ValueError(
            f"A batch of {size} examples cannot be split over the {replicas} "
            f"replicas of {type(strategy).__name__}: use a growth batch of at "
            f"least {replicas} (a multiple of {replicas} keeps shards equal).")
    bounds = np.cumsum([0] + [len(s) for s in np.array_split(np.arange(size), replicas)])

    def shard(context):
        i = context.replica_id_in_sync_group
        return keras.tree.map_structure(lambda t: t[bounds[i]:bounds[i + 1]], batch)

    return strategy.experimental_distribute_values_from_function(shard), size


def _task(strategy):
    """(task type, task id) of this process in a multi-worker cluster, or
    None when the strategy spans one machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the
    workers of a multi-worker cluster other than the chief (the `chief` task,
    else worker 0)."""
    task = _task(strategy)
    if task is None:
        return True
    task_type, task_id = task
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker"
                                    and task_id == 0)


def worker_directory(run_dir, strategy):
    """Where this process keeps a run: `run_dir` on the chief, and
    `<run_dir>.<task>-<id>` on the other workers of a multi-worker cluster.

    Every worker trains the same tickets, but two processes must not write
    one file, so the chief's copy is the run and each other worker keeps its
    own copy beside it, from which it resumes after an interruption.

    Example:

    >>> worker_directory("runs/edst", None)
    'runs/edst'
    """
    if is_chief(strategy):
        return run_dir
    task_type, task_id = _task(strategy)
    return f"{os.path.normpath(run_dir)}.{task_type}-{task_id}"


def check_workers_agree(strategy, what, values, advice=""):
    """Raises `RuntimeError` unless every worker of a multi-worker cluster
    passes the same `values` (a sequence of ints); a no-op on one machine.

    A collective operation: every worker must call it, in the same order.

    Args:
        strategy: The strategy, or None.
        what: What `values` are, for the message.
        values: This worker's integers.
        advice: What to do about a disagreement, appended to the message.
    """
    if _task(strategy) is None:
        return
    import tensorflow as tf

    local = tf.constant([list(values)], tf.int64)
    rows = [tuple(row) for row in strategy.gather(local, axis=0).numpy().tolist()]
    if len(set(rows)) > 1:
        raise RuntimeError(
            f"The workers disagree on {what}: {sorted(set(rows))}. {advice}".strip()
        )


def scope(strategy):
    """`strategy.scope()`, or a no-op context without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()

