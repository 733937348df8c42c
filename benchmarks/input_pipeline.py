"""Is the input pipeline the bottleneck? The CIFAR training pipeline of
`freetickets_tf.data` alone versus training a model on it.

What is measured, in one process:

* ``pipeline_images_per_s``: images per second of iterating the training
  pipeline alone, ``train.epochs(0, 1)`` (stateless shuffle, reflect-pad-4
  random crop, flip, per-channel normalisation: CIFAR-10's augmentation),
  over ``--pipeline_batches`` batches (default: the whole epoch). The wait
  for the first batch (building the pipeline and the epoch's draws) is
  reported apart as ``pipeline_first_batch_s``.
* ``training_images_per_s``: images per second of training the model
  (``freetickets_tf.models.get(--model)``, SGD with momentum, compiled once)
  fed from that pipeline, one ``train_on_batch`` per batch (fetching the
  batch is timed too), in blocks of ``--steps`` steps after ``--warmup``
  untimed ones (tracing).
* ``compute_images_per_s``: the same on one batch held in memory, i.e. the
  model alone. Fed and in-memory blocks alternate, ``--repeats`` of each, so
  that drift in the machine's load hits both alike; speeds are medians over
  blocks (``training_block_images_per_s`` / ``compute_block_images_per_s``
  list them all).
* ``pipeline_over_training``: ``pipeline_images_per_s /
  training_images_per_s``; above 1 the pipeline produces faster than the
  model consumes (it runs ahead, prefetched, on the other cores), so input is
  not the bottleneck. ``feeding_overhead`` is ``1 - training / compute``:
  what feeding from the pipeline costs the training steps (noise around 0
  when it costs nothing).
* ``environment``: Keras / TensorFlow versions, backend, device, CPU count,
  load average.

Data (one of): ``--synthetic`` (default: ``--examples`` random uint8
CIFAR-shaped images, 50,000 by default), ``--data FILE.npz`` (an image set
with ``x_train`` / ``y_train``, e.g. Fashion-MNIST, padded and tiled to
32x32x3 by ``freetickets_tf.data.load_npz`` and kept as uint8 like the
decoded tfds cache), or ``--tfds NAME --data_dir DIR`` (a prepared
tensorflow-datasets set through ``data.load``; nothing is downloaded).

The result is ONE JSON object on stdout; progress goes to stderr.

Run it from the repository root:

    python benchmarks/input_pipeline.py                       # synthetic, wrn-16-4
    python benchmarks/input_pipeline.py --quick               # smoke run
    python benchmarks/input_pipeline.py --data ../shared/data/fashion_mnist.npz
    python benchmarks/input_pipeline.py --tfds cifar10 --data_dir /data/tfds
    python benchmarks/input_pipeline.py --model wrn-28-10 --steps 20 --jit_compile

Set ``TF_CPP_MIN_LOG_LEVEL=3`` to silence TensorFlow's C++ logging (the
script sets it when it is unset).
"""

import argparse
import itertools
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (benchmarks/_common.py)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_DEFAULTS = dict(examples=None, batch_size=128, model="wrn-16-4", steps=5)
_SYNTHETIC_EXAMPLES = 50_000
_QUICK = dict(examples=2_048, batch_size=32, model="wrn-10-1", steps=3)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--synthetic", action="store_true",
                        help="random uint8 CIFAR-shaped images (the default)")
    source.add_argument("--data", help=".npz with x_train / y_train (e.g. Fashion-MNIST)")
    source.add_argument("--tfds", help="a prepared tensorflow-datasets name, e.g. cifar10")
    parser.add_argument("--data_dir", help="tensorflow-datasets data_dir for --tfds")
    parser.add_argument("--examples", type=int, default=None,
                        help="synthetic images (default 50000); caps --data / --tfds")
    parser.add_argument("--batch_size", type=int, default=None, help="default 128")
    parser.add_argument("--model", default=None,
                        help="freetickets_tf.models name (default wrn-16-4)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed training steps (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed blocks of --steps steps per way (default 2)")
    parser.add_argument("--pipeline_batches", type=int, default=None,
                        help="batches of the pipeline-only pass (default: one epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit_compile", action="store_true",
                        help="compile the train step with XLA")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2048 images, batch 32, wrn-10-1, 3 steps "
                        "(explicit flags still win)")
    args = parser.parse_args(argv)
    for key, value in (_QUICK if args.quick else _DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in ("examples", "batch_size", "steps", "warmup", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.pipeline_batches is not None and args.pipeline_batches < 1:
        parser.error("--pipeline_batches must be >= 1")
    if args.data_dir and not args.tfds:
        parser.error("--data_dir goes with --tfds")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def training_set(args):
    """`(train, num_classes, source)` for the chosen data."""
    import numpy as np

    from freetickets_tf import data

    mean, std = data.NORMALIZATION["cifar10"]
    if args.tfds:
        loaded = data.load(args.tfds, data_dir=args.data_dir,
                                batch_size=args.batch_size, seed=args.seed,
                                max_examples=args.examples)
        if loaded.train is None:
            raise SystemExit(f"{args.tfds} has no training split")
        return loaded.train, loaded.num_classes, f"tfds:{args.tfds}"
    if args.data:
        (x, y), _ = data.load_npz(args.data, image_shape=(32, 32, 3))
        x = np.round(x * 255.0).astype("uint8")[:args.examples]
        y = y[:args.examples]
        source = os.path.basename(args.data)
    else:
        rng = np.random.default_rng(args.seed)
        n = args.examples or _SYNTHETIC_EXAMPLES
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        source = "synthetic"
    train = data.from_arrays(x, y, args.batch_size, seed=args.seed,
                                  augment="reflect_crop_flip", mean=mean, std=std)
    return train, int(y.max()) + 1, source


def time_pipeline(train, batches):
    start = time.perf_counter()
    iterator = iter(train.epochs(0, 1).take(batches))
    next(iterator)
    first = time.perf_counter()
    images = 0
    for _, y in iterator:
        images += int(y.shape[0])
    end = time.perf_counter()
    if not images:  # a one-batch epoch: count the first batch instead
        return train.batch_size / (end - start), end - start, 1
    return images / (end - first), first - start, batches


def build_model(args, num_classes, input_shape):
    import keras

    from freetickets_tf import models

    model = models.get(args.model, num_classes=num_classes, input_shape=input_shape)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=args.jit_compile)
    return model


def time_steps(model, batches, steps):
    """Images per second of `steps` x (`next(batches)`, `train_on_batch`)."""
    images = 0
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        model.train_on_batch(x, y)
        images += int(y.shape[0])
    return images / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    import keras

    keras.utils.set_random_seed(args.seed)
    train, num_classes, source = training_set(args)
    batches = args.pipeline_batches or train.steps_per_epoch
    batches = min(batches, train.steps_per_epoch)
    log(f"pipeline: {source}, {train.examples} images, batch {train.batch_size}, "
        f"{batches} batches")
    pipeline_speed, first_batch_s, batches = time_pipeline(train, batches)
    log(f"pipeline: {pipeline_speed:.0f} images/s")

    model = build_model(args, num_classes, train.input_shape)
    steps = args.warmup + args.steps * args.repeats
    fed = iter(train.epochs(0, -(-steps // train.steps_per_epoch)))
    x, y = next(iter(train.epoch(0)))
    fixed = itertools.repeat((x, y))
    log(f"training {args.model}: {args.warmup} warm-up step(s), then {args.repeats} "
        f"x {args.steps} steps fed by the pipeline and from memory, alternating")
    time_steps(model, fed, args.warmup)
    time_steps(model, fixed, args.warmup)
    fed_speeds, fixed_speeds = [], []
    for _ in range(args.repeats):
        fed_speeds.append(time_steps(model, fed, args.steps))
        fixed_speeds.append(time_steps(model, fixed, args.steps))
        log(f"fed by the pipeline: {fed_speeds[-1]:.1f} images/s, from memory: "
            f"{fixed_speeds[-1]:.1f} images/s")
    training_speed = statistics.median(fed_speeds)
    compute_speed = statistics.median(fixed_speeds)
    result = {
        "source": source,
        "examples": train.examples,
        "batch_size": train.batch_size,
        "model": args.model,
        "jit_compile": args.jit_compile,
        "pipeline_batches": batches,
        "pipeline_images_per_s": round(pipeline_speed, 1),
        "pipeline_first_batch_s": round(first_batch_s, 3),
        "training_steps": args.steps,
        "repeats": args.repeats,
        "training_images_per_s": round(training_speed, 2),
        "compute_images_per_s": round(compute_speed, 2),
        "training_block_images_per_s": [round(v, 2) for v in fed_speeds],
        "compute_block_images_per_s": [round(v, 2) for v in fixed_speeds],
        "pipeline_over_training": round(pipeline_speed / training_speed, 2),
        "feeding_overhead": round(1.0 - training_speed / compute_speed, 3),
        "environment": _common.environment(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
