"""Overhead of dynamic sparse training (DST) with freetickets_tf.

What is measured, on a CIFAR-shaped (32x32x3 inputs, 10 classes) Wide ResNet
fed with synthetic data, all in one process:

* ``dense_step_s`` / ``masked_step_s``: median seconds per training step of
  the plain Keras model and of its sparsified copy
  (``freetickets_tf.sparsify``). Both are compiled the same way
  (``SGD(0.1, momentum=0.9)``, ``SparseCategoricalCrossentropy(from_logits=
  True)``, ``steps_per_execution=--steps``) and timed through Keras' own
  compiled train function: one call runs ``--steps`` optimizer steps on a
  fixed batch inside one ``tf.while_loop``. Blocks are interleaved (dense,
  masked, dense, masked, ...) so that machine drift hits both models alike;
  ``--warmup`` untimed blocks per model come first (tracing, compilation).
  ``masked_over_dense`` is their ratio; the goal is <= 1.03, i.e. the mask
  (a kernel constraint that re-zeroes inactive weights after every step)
  should cost at most 3%.
* ``topology_update_s``: median wall time of one full
  ``DynamicSparsityCallback.update_topology()`` on the sparse model (gradient
  growth, magnitude death, death rate ``--death_rate``): draw a growth batch,
  one dense-gradient pass, then per-layer drop + grow + variable writes, and
  the ITOP rate. ``topology_update_in_steps`` divides it by
  ``masked_step_s``; the goal is <= 1.5 steps. ``gradient_pass_s`` times only
  the callback's compiled gradient function (``cb._gradient_fn(x, y)``) on
  one batch, and ``drop_and_grow_s`` is everything else: the median over
  updates of (update time - the time of the gradient pass inside that same
  update), which stays right when the machine is busy. Gradient passes and
  updates alternate.
* ``constraint_s``: what the masks add to a step by themselves (every masked
  kernel's ``v.assign(v.constraint(v))`` in one tf.function), a noise-free
  estimate of the masked step's overhead; ``masked_over_dense_paired`` and
  ``masked_over_dense_min`` are ratio estimates that are less sensitive to
  load than the ratio of medians, and ``*_cpu_s`` / ``masked_over_dense_cpu``
  use process CPU time, which other processes on the machine barely change.
  ``timing_noisy`` is true when the step samples spread by more than 10%:
  then trust ``constraint_s`` and the min / CPU ratios over the medians.
* ``update_breakdown``: one more set of updates run with the library's
  functions temporarily wrapped by timers (nothing in the library is
  changed), giving the median seconds per update spent in each piece summed
  over layers (inclusive times; ``rewire`` is each layer's compiled
  drop-and-grow and its variable writes), the number of host syncs
  (``ops.convert_to_numpy`` calls) per update, and the slowest layers.
* ``mask_bytes`` (bool masks, 1 byte per weight), ``explored_bytes`` (the
  ITOP "explored" record, same size), ``kernel_bytes`` (the masked kernels'
  float weights) and their ratios.
* The environment: Keras / TensorFlow versions, backend, device, CPU count.

The result is ONE JSON object on stdout; progress goes to stderr.

Run it from the repository root:

    python benchmarks/dst_overhead.py                    # WRN-16-4, batch 128
    python benchmarks/dst_overhead.py --quick            # smoke run: WRN-10-1,
                                                         # batch 32, 2 steps
    python benchmarks/dst_overhead.py --model wrn-28-10 --batch_size 64
    python benchmarks/dst_overhead.py --depth 22 --width 2 --repeats 5
    python benchmarks/dst_overhead.py --jit_compile      # XLA (GPU)

Set ``TF_CPP_MIN_LOG_LEVEL=3`` to silence TensorFlow's C++ logging (the
script sets it when it is unset).
"""

import argparse
import contextlib
import math
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (benchmarks/_common.py)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MASKED_OVER_DENSE_GOAL = 1.03
UPDATE_IN_STEPS_GOAL = 1.5

_QUICK = {"model": "wrn-10-1", "batch_size": 32, "steps": 2, "warmup": 1}
_DEFAULTS = {"model": "wrn-16-4", "batch_size": 128, "steps": 5, "warmup": 2}


def log(message):
    print(f"[dst_overhead] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=None,
        help="Wide ResNet name 'wrn-<depth>-<width>' (default wrn-16-4; "
        "--depth/--width override its parts).",
    )
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=None, help="default 128")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per block (default 5)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed blocks per model, and timed topology updates",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed blocks per model and untimed updates (default 2)",
    )
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="compile both models with jit_compile=True (default off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--death_rate", type=float, default=0.5, help="fraction moved per update"
    )
    parser.add_argument(
        "--data_size",
        type=int,
        default=None,
        help="synthetic samples the callback draws its growth batch from "
        "(default 8 * batch_size)",
    )
    parser.add_argument(
        "--no_breakdown",
        action="store_true",
        help="skip the instrumented per-piece timing of the update",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: wrn-10-1, batch 32, 2 steps, 1 warm-up block "
        "(explicit flags still win)",
    )
    args = parser.parse_args(argv)

    defaults = _QUICK if args.quick else _DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    match = re.fullmatch(r"wrn-(\d+)-(\d+)", args.model)
    if not match:
        parser.error(f"--model must look like 'wrn-16-4'; got {args.model!r}")
    if args.depth is None:
        args.depth = int(match.group(1))
    if args.width is None:
        args.width = int(match.group(2))
    args.model = f"wrn-{args.depth}-{args.width}"
    if args.data_size is None:
        args.data_size = 8 * args.batch_size
    for name in ("batch_size", "steps", "repeats", "data_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first call traces)")
    if not 0 < args.density <= 1:
        parser.error("--density must be in (0, 1]")
    return args


# --------------------------------------------------------------------------
# Timing helpers


def median(values):
    return statistics.median(values) if values else None


def _sync(value):
    """Forces a result to the host (waits for the device)."""
    import keras

    if isinstance(value, dict):
        value = next(iter(value.values()))
    if isinstance(value, (list, tuple)):
        value = value[-1]
    return keras.ops.convert_to_numpy(value)


class StepTimer:
    """Times Keras' compiled train function, `steps` optimizer steps a call."""

    def __init__(self, model, x, y, steps):
        import tensorflow as tf

        self.model = model
        self.steps = steps
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
        self.iterator = iter(dataset)
        model.make_train_function()

    def block(self):
        """Runs one block; returns (wall, process CPU) seconds per step."""
        cpu = time.process_time()
        start = time.perf_counter()
        logs = self.model.train_function(self.iterator)
        _sync(logs)
        wall = time.perf_counter() - start
        return wall / self.steps, (time.process_time() - cpu) / self.steps


def build_models(args):
    import keras

    import freetickets_tf

    shape, classes = (32, 32, 3), 10

    def compile_(model):
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=args.steps,
            jit_compile=bool(args.jit_compile),
        )
        return model

    dense = freetickets_tf.models.wide_resnet(
        depth=args.depth, width=args.width, num_classes=classes, input_shape=shape
    )
    masked = freetickets_tf.sparsify(
        dense, density=args.density, distribution="erk", seed=args.seed
    )
    return compile_(dense), compile_(masked)


def memory_stats(model):
    import numpy as np

    import freetickets_tf

    def nbytes(variable):
        return math.prod(variable.shape) * np.dtype(variable.dtype).itemsize

    kernels = freetickets_tf.masked_kernels(model)
    mask_bytes = sum(nbytes(mk.mask) for mk in kernels)
    explored_bytes = sum(nbytes(mk.explored) for mk in kernels)
    kernel_bytes = sum(nbytes(mk.kernel) for mk in kernels)
    return {
        "masked_kernels": len(kernels),
        "masked_weights": sum(math.prod(mk.kernel.shape) for mk in kernels),
        "mask_bytes": mask_bytes,
        "explored_bytes": explored_bytes,
        "kernel_bytes": kernel_bytes,
        "mask_over_kernel_bytes": mask_bytes / kernel_bytes,
        "mask_and_explored_over_kernel_bytes": (mask_bytes + explored_bytes)
        / kernel_bytes,
    }


# --------------------------------------------------------------------------
# Instrumented update: wraps library functions with timers, then restores them


class _Timers:
    def __init__(self):
        self.seconds = {}
        self.calls = {}

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + (
                    time.perf_counter() - start
                )
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed


@contextlib.contextmanager
def _patched(patches):
    """Temporarily sets `obj.attr = value` (or `obj[key] = value` for dicts)."""
    saved = []
    try:
        for obj, attr, value in patches:
            if isinstance(obj, dict):
                saved.append((obj, attr, obj[attr]))
                obj[attr] = value
            else:
                saved.append((obj, attr, getattr(obj, attr)))
                setattr(obj, attr, value)
        yield
    finally:
        for obj, attr, value in reversed(saved):
            if isinstance(obj, dict):
                obj[attr] = value
            else:
                setattr(obj, attr, value)


def instrumented_update(cb, death_rate):
    """One `update_topology()` with per-piece timers; returns the timings."""
    import keras

    from freetickets_tf import topology
    from freetickets_tf.callbacks import dynamic_sparsity

    timers = _Timers()
    per_layer = {}
    # One layer's share of `updater.update` (its per-layer step).
    original_rewire = cb.updater._rewire

    def rewire(mk, *args, **kwargs):
        start = time.perf_counter()
        moved = original_rewire(mk, *args, **kwargs)
        moved_now = int(keras.ops.convert_to_numpy(moved))  # waits for the layer
        per_layer[mk.kernel.path] = (time.perf_counter() - start, moved_now)
        return moved

    # Library internals move; wrap only what exists.
    candidates = [
        (cb, "_growth_scores", "growth_scores"),
        (cb, "_gradient_fn", "gradient_fn"),
        (cb, "_growth_batch", "draw_growth_batch"),
        (cb.updater, "_rewire", "rewire"),
        (dynamic_sparsity.optimizer_slots, "slot_variables", "slot_variables"),
        (dynamic_sparsity.masking, "itop_rate", "itop_rate"),
        (topology, "moved_count", "drop_count"),
        (keras.ops, "convert_to_numpy", "host_syncs"),
    ]
    patches = []
    for obj, attr, name in candidates:
        if isinstance(obj, dict):
            fn = obj.get(attr)
        else:
            fn = getattr(obj, attr, None)
        if not callable(fn):
            continue
        if name == "rewire":
            fn = rewire
        patches.append((obj, attr, timers.wrap(name, fn)))
    batches = getattr(cb, "_growth_batches", None)
    if batches is not None and not hasattr(cb, "_growth_batch"):
        patches.append(
            (cb, "_growth_batches", _TimedIterator(batches, timers, "draw_growth_batch"))
        )
    _advance(cb)
    start = time.perf_counter()
    with _patched(patches):
        cb.update_topology(death_rate=death_rate)
    total = time.perf_counter() - start
    return total, timers, per_layer


def _advance(cb):
    """Moves the optimizer step on by one update period, as training would.

    The callback may draw its growth batch from the step, so repeated updates
    at one step would see one batch and, after the first, move nothing.
    """
    iterations = cb.model.optimizer.iterations
    iterations.assign(iterations + cb.update_frequency)


class _TimedIterator:
    def __init__(self, iterator, timers, name):
        self._next = timers.wrap(name, lambda: next(iterator))

    def __iter__(self):
        return self

    def __next__(self):
        return self._next()


def breakdown(cb, death_rate, repeats):
    import freetickets_tf

    runs = [instrumented_update(cb, death_rate) for _ in range(repeats)]
    totals = [run[0] for run in runs]
    names = sorted({name for run in runs for name in run[1].seconds})
    pieces = {
        name: median([run[1].seconds.get(name, 0.0) for run in runs])
        for name in names
    }
    calls = {name: runs[-1][1].calls.get(name, 0) for name in names}
    shapes = {
        mk.kernel.path: tuple(mk.kernel.shape)
        for mk in freetickets_tf.masked_kernels(cb.model)
    }
    last_layers = runs[-1][2]
    slowest = sorted(last_layers.items(), key=lambda kv: -kv[1][0])[:5]
    return {
        "instrumented_update_s": median(totals),
        "seconds_per_update": {k: round(v, 6) for k, v in sorted(pieces.items())},
        "calls_per_update": calls,
        "notes": (
            "Inclusive times summed over layers, median over "
            f"{repeats} instrumented updates. growth_scores = "
            "draw_growth_batch + gradient_fn; rewire = each layer's compiled "
            "drop-and-grow and its variable writes, waited for; drop_count = "
            "the counts taken on the host once per update; host_syncs = "
            "ops.convert_to_numpy calls anywhere in the update (the "
            "benchmark's own per-layer waits and the ITOP rate included)."
        ),
        "slowest_layers": [
            {
                "kernel": path,
                "shape": list(shapes.get(path, ())),
                "size": math.prod(shapes.get(path, ())),
                "rewire_s": round(seconds, 6),
                "weights_moved": moved,
            }
            for path, (seconds, moved) in slowest
        ],
    }


# --------------------------------------------------------------------------


def constraint_seconds(model, args):
    """Seconds per step that the masks' kernel constraints cost by themselves.

    Runs what the optimizer adds for a masked model after each step
    (`v.assign(v.constraint(v))` on every masked kernel) in one tf.function,
    compiled like the models.
    """
    import tensorflow as tf

    import freetickets_tf

    kernels = [mk.kernel for mk in freetickets_tf.masked_kernels(model)]

    @tf.function(jit_compile=bool(args.jit_compile))
    def apply_constraints():
        for v in kernels:
            v.assign(v.constraint(v))
        return tf.constant(0)

    times = []
    for i in range(args.warmup + 5 * args.repeats):
        start = time.perf_counter()
        _sync(apply_constraints())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return median(times)


def run(args):
    import keras
    import numpy as np
    import tensorflow as tf

    import freetickets_tf

    load = os.getloadavg()[0]
    log(f"1-min load average before the run: {load:.2f}")
    if load > 0.5:
        log("warning: the machine is busy; timings will be noisy")
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_all = rng.standard_normal((args.data_size, 32, 32, 3)).astype("float32")
    y_all = rng.integers(0, 10, size=(args.data_size,)).astype("int32")
    x = tf.constant(x_all[: args.batch_size])
    y = tf.constant(y_all[: args.batch_size])

    log(f"building {args.model} and sparsifying to density {args.density}")
    dense, masked = build_models(args)
    log(
        f"{dense.count_params():,} parameters; overall density "
        f"{freetickets_tf.overall_density(masked):.4f}"
    )

    timers = {"dense": StepTimer(dense, x, y, args.steps)}
    timers["masked"] = StepTimer(masked, x, y, args.steps)

    for name, timer in timers.items():
        for i in range(args.warmup):
            start = time.perf_counter()
            timer.block()
            log(f"warm-up {name} block {i + 1}: {time.perf_counter() - start:.2f}s")

    samples = {"dense": [], "masked": []}
    cpu_samples = {"dense": [], "masked": []}
    for r in range(args.repeats):
        for name in ("dense", "masked"):
            wall, cpu = timers[name].block()
            samples[name].append(wall)
            cpu_samples[name].append(cpu)
            log(f"repeat {r + 1} {name}: {wall:.4f} s/step ({cpu:.4f} CPU s/step)")
    dense_step = median(samples["dense"])
    masked_step = median(samples["masked"])

    # Topology updates on the sparse model, outside fit.
    cb = freetickets_tf.callbacks.DynamicSparsityCallback(
        data=(x_all, y_all),
        update_frequency=100,
        death_rate=args.death_rate,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    cb.set_model(masked)
    cb.prepare()

    # Gradient passes and full updates alternate, so drift hits both. Inside
    # each update the callback's gradient function is timed too (synced), so
    # that drop-and-grow is `update - its own gradient pass`, a paired value.
    gradient_fn = cb._gradient_fn
    inner = []

    def timed_gradient_fn(*fn_args):
        start = time.perf_counter()
        grads = gradient_fn(*fn_args)
        _sync(grads)
        inner.append(time.perf_counter() - start)
        return grads

    grad_times, update_times, inner_times, moved = [], [], [], []
    for i in range(args.warmup + args.repeats):
        label = "warm-up" if i < args.warmup else "timed"
        start = time.perf_counter()
        _sync(gradient_fn(x, y))
        grad_elapsed = time.perf_counter() - start
        inner.clear()
        _advance(cb)
        with _patched([(cb, "_gradient_fn", timed_gradient_fn)]):
            start = time.perf_counter()
            stats = cb.update_topology(death_rate=args.death_rate)
            elapsed = time.perf_counter() - start
        log(
            f"{label} {i + 1}: gradient pass {grad_elapsed:.3f}s; topology update "
            f"{elapsed:.3f}s (its gradient pass {sum(inner):.3f}s), moved "
            f"{stats['weights_moved']:,}"
        )
        if i >= args.warmup:
            grad_times.append(grad_elapsed)
            update_times.append(elapsed)
            inner_times.append(sum(inner))
            moved.append(stats["weights_moved"])
    gradient_pass = median(grad_times)
    update = median(update_times)
    drop_and_grow = median([u - g for u, g in zip(update_times, inner_times)])

    constraint = constraint_seconds(masked, args)
    log(f"kernel constraints alone: {constraint * 1e3:.2f} ms per step")

    result = {
        "benchmark": "dst_overhead",
        "model": args.model,
        "depth": args.depth,
        "width": args.width,
        "input_shape": [32, 32, 3],
        "num_classes": 10,
        "batch_size": args.batch_size,
        "density": args.density,
        "overall_density": freetickets_tf.overall_density(masked),
        "death_rate": args.death_rate,
        "parameters": dense.count_params(),
        "steps_per_block": args.steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "jit_compile": bool(args.jit_compile),
        "seed": args.seed,
        "timer": "Model.train_function, steps_per_execution=steps, fixed batch",
        "dense_step_s": dense_step,
        "masked_step_s": masked_step,
        "masked_over_dense": masked_step / dense_step,
        "masked_over_dense_paired": median(
            [m / d for m, d in zip(samples["masked"], samples["dense"])]
        ),
        "masked_over_dense_min": min(samples["masked"]) / min(samples["dense"]),
        "dense_step_cpu_s": median(cpu_samples["dense"]),
        "masked_step_cpu_s": median(cpu_samples["masked"]),
        "masked_over_dense_cpu": median(cpu_samples["masked"])
        / median(cpu_samples["dense"]),
        "timing_noisy": max(samples["dense"] + samples["masked"])
        > 1.1 * min(samples["dense"] + samples["masked"]),
        "constraint_s": constraint,
        "constraint_over_dense_step": constraint / dense_step,
        "dense_step_samples_s": samples["dense"],
        "masked_step_samples_s": samples["masked"],
        "topology_update_s": update,
        "topology_update_samples_s": update_times,
        "topology_update_in_steps": update / masked_step,
        "gradient_pass_s": gradient_pass,
        "gradient_pass_in_steps": gradient_pass / masked_step,
        "gradient_pass_samples_s": grad_times,
        "gradient_pass_in_update_s": median(inner_times),
        "drop_and_grow_s": drop_and_grow,
        "drop_and_grow_in_steps": drop_and_grow / masked_step,
        "weights_moved_per_update": median(moved),
    }
    result.update(memory_stats(masked))
    result["goals"] = {
        "masked_over_dense": {
            "goal": f"<= {MASKED_OVER_DENSE_GOAL}",
            "value": result["masked_over_dense"],
            "met": result["masked_over_dense"] <= MASKED_OVER_DENSE_GOAL,
        },
        "topology_update_in_steps": {
            "goal": f"<= {UPDATE_IN_STEPS_GOAL}",
            "value": result["topology_update_in_steps"],
            "met": result["topology_update_in_steps"] <= UPDATE_IN_STEPS_GOAL,
        },
    }
    if not args.no_breakdown:
        log("instrumented topology updates (per-piece timing)")
        result["update_breakdown"] = breakdown(cb, args.death_rate, args.repeats)
    result["environment"] = _common.environment()
    result["environment"]["load_average_1min_at_start"] = round(load, 2)
    return result


def main(argv=None):
    return _common.json_main(parse_args, run, argv)


if __name__ == "__main__":
    main()
