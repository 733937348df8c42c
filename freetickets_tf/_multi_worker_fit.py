"""Makes Keras 3's TensorFlow `fit` run under `MultiWorkerMirroredStrategy`.

Keras 3 (up to at least 3.15) fails in two places when several workers train
together (keras-team/keras#20585):

1. Before the first step, `fit` builds the model symbolically from one batch,
   which it obtains by `strategy.reduce("MEAN", batch)`; a multi-worker
   strategy cannot reduce a per-replica *input* batch (it needs a tensor).
   The build only needs the batch's shapes, so one replica's shard will do.
2. After each step it averages the logged scalars with
   `strategy.reduce("MEAN", value, axis=0)`, which also reduces *along* axis
   0 and so fails on scalars. The mean over replicas is `axis=None`, which is
   what the single-worker branch of the same function computes.

`apply()` replaces those two functions with fixed ones that defer to the
originals for every other strategy. It is applied by
`distribute.get_strategy("multi_worker")`; delete this module once Keras
ships the fix.
"""

import functools

_applied = False


def apply():
    """Patches Keras' TensorFlow trainer once; a no-op afterwards."""
    global _applied
    if _applied:
        return
    import keras
    import tensorflow as tf

    try:
        from keras.src.backend.tensorflow import trainer
        original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
        original_reduce = trainer.reduce_per_replica
        is_multi_worker = trainer._collective_all_reduce_multi_worker
    except (ImportError, AttributeError) as error:
        raise NotImplementedError(
            f"strategy='multi_worker': Keras {keras.__version__} moved the "
            "internals this library repairs for keras-team/keras#20585; use "
            "strategy='mirrored', or a Keras version in 3.3-3.15."
        ) from error

    def first_shard(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    @functools.wraps(original_build)
    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: first_shard(value, strategy), next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    @functools.wraps(original_reduce)
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _applied = True
