"""Training on several devices or machines with `tf.distribute` (TensorFlow).

The glue is small because the sparse core needs no special treatment under a
strategy: models, masks and optimizers are created inside `strategy.scope()`,
so mask variables are mirrored, and the topology update runs between steps
in the cross-replica context, where assigning a mirrored variable writes the
same value to every replica. The masks are therefore identical on all
replicas after every update. The growth gradient is taken on the whole
global growth batch, which is the mean (all-reduced) gradient of the
replicas' equal shards of it; every worker of a multi-worker run draws the
same growth batch (same seed and step) from the same data, so all workers
compute the same gradient and the same masks.

Several machines: Keras 3's `fit` does not run under
`MultiWorkerMirroredStrategy` (keras-team/keras#20585), so
`get_strategy("multi_worker")` explains that instead of failing mid-run.

Example:

>>> strategy = distribute.get_strategy("mirrored")  # all local GPUs
>>> run = ensembles.train_ensemble("edst", build, train, val, config,
...                                run_dir="runs/edst", strategy=strategy)
"""

import contextlib

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
            (every local GPU, else every logical CPU device), `"tpu"`, or
            `"multi_worker"`, which is refused with an explanation: Keras 3's
            `fit` does not run under `MultiWorkerMirroredStrategy` yet.
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
        # Keras 3's TensorFlow `fit` fails under this strategy (it reduces
        # per-replica batches and scalar logs in ways only the single-worker
        # strategies accept: keras-team/keras#20585, still open in 3.15), so
        # say so now rather than after the cluster has started.
        raise NotImplementedError(
            "strategy='multi_worker': Keras 3's `fit` does not run under "
            "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585). "
            "Use strategy='mirrored' for the GPUs of one machine, or "
            "KERAS_BACKEND=jax with keras.distribution for several machines."
        )
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


def scope(strategy):
    """`strategy.scope()`, or a no-op context without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()

