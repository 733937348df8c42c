"""One training process of `test_distribute.py`'s multi-replica runs.

Trains a small sparse model with dynamic sparse training under a
`tf.distribute` strategy (or none), checks after every batch that each mask
has the same value on every local replica, records a digest of all masks
after every batch (to compare workers), and saves the final masks and
kernels to an `.npz` file for the test to compare between runs. Last, it
takes the growth gradient of a batch of 64 and of 63 examples with a fresh
gradient function, recording the batch size each replica's loss saw.

    python tests/distributed_worker.py OUT.npz --strategy mirrored --cpu_devices 2
    python tests/distributed_worker.py OUT0.npz --strategy multi_worker \
        --cluster 127.0.0.1:2001,127.0.0.1:2002 --task 0   # and --task 1
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/distributed_worker.py OUT.npz --distribution data_parallel

`--whole_model` updates the topology with the one program for all layers.
"""

import argparse
import hashlib
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--distribution", choices=["data_parallel"],
                        help="JAX: keras.distribution.DataParallel over every device")
    parser.add_argument("--cpu_devices", type=int, default=None)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--cluster", help="comma-separated worker addresses")
    parser.add_argument("--task", type=int, default=0, help="this worker's index")
    parser.add_argument("--run_dir", help="then train a DST ensemble there")
    parser.add_argument("--whole_model", action="store_true",
                        help="update every layer in one compiled program, as models of "
                             "updaters.WHOLE_MODEL_WEIGHTS weights or more are")
    args = parser.parse_args()
    if args.cluster:  # read by MultiWorkerMirroredStrategy, before TF starts
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": args.cluster.split(",")},
            "task": {"type": "worker", "index": args.task},
        })

    import keras
    import numpy as np

    import freetickets_tf as ft

    if args.whole_model:  # this model is far smaller than the threshold
        ft.updaters.WHOLE_MODEL_WEIGHTS = 0
    keras.config.disable_traceback_filtering()  # full tracebacks in the test log
    if args.cpu_devices:
        ft.distribute.use_cpu_devices(args.cpu_devices)
    keras.mixed_precision.set_global_policy(args.precision)
    strategy = ft.distribute.get_strategy(args.strategy)
    if args.distribution:
        keras.distribution.set_distribution(keras.distribution.DataParallel())

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = x[:, :4].argmax(axis=1).astype("int32")
    keras.utils.set_random_seed(0)
    shard_sizes = []  # the batch size of each loss traced while recording

    def probed_loss(y_true, y_pred):
        if shard_sizes is not None:
            shard_sizes.append(y_pred.shape[0])
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True)

    with ft.distribute.scope(strategy):
        model = keras.Sequential([
            keras.Input((16,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(4, dtype="float32"),
        ])
        sparse = ft.sparsify(model, 0.3, seed=0)
        # The recipes' optimizer (coupled weight decay), under the strategy.
        sparse.compile(
            optimizer=ft.optimizers.TorchSGD(0.05, momentum=0.9, weight_decay=0.01),
            loss=probed_loss,
        )
    dst = ft.callbacks.DynamicSparsityCallback(
        data=(x, y), update_frequency=4, batch_size=64, seed=0)
    masks = [mk.mask for mk in ft.masked_kernels(sparse)]

    class ReplicasAgree(keras.callbacks.Callback):
        checks = 0
        digests = []

        def on_train_batch_end(self, batch, logs=None):
            _ = self.model  # syncs JAX's live training state into the variables
            digest = hashlib.sha256()
            for mask in masks:
                digest.update(np.asarray(mask).tobytes())
            ReplicasAgree.digests.append(digest.hexdigest())
            for mask in masks:
                if strategy is not None:
                    copies = strategy.experimental_local_results(mask.value)
                elif args.distribution:  # a replicated jax.Array
                    copies = [shard.data for shard in mask.value.addressable_shards]
                else:
                    continue
                copies = [np.asarray(v) for v in copies]
                for copy in copies[1:]:
                    if not np.array_equal(copy, copies[0]):
                        raise AssertionError(f"replicas disagree on {mask.path}")
                ReplicasAgree.checks += len(copies) - 1

    train = ft.data.from_arrays(x, y, batch_size=64, seed=0)
    sparse.fit(train.epochs(0, 3), steps_per_epoch=train.steps_per_epoch, epochs=3,
               callbacks=[dst, ReplicasAgree()], verbose=0)
    # A fresh gradient function traces again, so the loss sees each shard.
    growth = {}
    for size in (64, 63):
        del shard_sizes[:]
        gradient_fn = ft.backend.make_loss_gradient_fn(
            sparse, [mk.kernel for mk in ft.masked_kernels(sparse)])
        gradients = gradient_fn(x[:size], y[:size])
        growth[f"shards_{size}"] = sorted(set(shard_sizes))
        if args.distribution:  # JAX traces the global batch: the layout shows the shards
            placed = ft.backend.distribute_batch((x[:size], y[:size]))[0]
            growth[f"devices_{size}"] = [
                getattr(shard, "data", placed).shape[0]
                for shard in getattr(placed, "addressable_shards", [placed])]
        growth.update({f"growth_{size}_{i}": np.asarray(g)
                       for i, g in enumerate(gradients)})
    np.savez(
        args.out,
        **growth,
        updates=dst.updates_done,
        replica_checks=ReplicasAgree.checks,
        mask_digests=np.array(ReplicasAgree.digests),
        replicas=(len(keras.distribution.list_devices()) if args.distribution
                  else ft.distribute.num_replicas(strategy)),
        **{f"mask_{i}": np.asarray(mk.mask) for i, mk in enumerate(ft.masked_kernels(sparse))},
        **{f"kernel_{i}": np.asarray(mk.kernel)
           for i, mk in enumerate(ft.masked_kernels(sparse))},
    )
    if args.run_dir:
        config = ft.EnsembleConfig(num_members=1, epochs=2, density=0.3, batch_size=64,
                                   update_frequency=4, verbose=0)
        ft.recipes.train_ensemble(
            "dst", lambda: keras.Sequential([
                keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(4)]),
            (x, y), (x[:64], y[:64]), config, args.run_dir, strategy)


if __name__ == "__main__":
    main()
