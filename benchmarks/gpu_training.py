"""Training speed of dense and sparse Wide ResNets, float32 and mixed bfloat16.

Made for the GPU machines (which have JAX, not TensorFlow): it runs with
``KERAS_BACKEND=jax`` and with ``KERAS_BACKEND=tensorflow``. For each
precision in ``--precisions`` (Keras dtype policies, set globally while the
models are built), all in one process:

* ``dense_step_s`` / ``masked_step_s``: median seconds per training step of
  ``freetickets_tf.models.get(--model)`` (32x32x3 synthetic images, 10
  classes) and of its ``freetickets_tf.sparsify``'d copy (ERK, ``--density``),
  both compiled alike (``SGD(0.1, momentum=0.9)``,
  ``SparseCategoricalCrossentropy(from_logits=True)``,
  ``steps_per_execution=--steps``, ``jit_compile=--jit_compile``). A step is
  Keras' own compiled train function, called the way ``fit`` calls it, on a
  fixed batch already on the device: on TensorFlow one call of
  ``model.train_function`` runs ``--steps`` steps in one ``tf.while_loop``;
  on JAX ``model.train_function(state, iterator)`` runs ``--steps`` jitted
  steps (asynchronous dispatch), fed with the state arrays as ``fit`` feeds
  them. Every block ends by waiting for its results (``block_until_ready``
  on JAX, the loss pulled to the host on TensorFlow), so its wall time is
  the device's. Blocks are interleaved (dense, masked, then masked, dense,
  ...) after ``--warmup`` untimed blocks per model (tracing, compilation).
  ``masked_over_dense`` is the ratio of the medians; ``_paired`` is the
  median of the ratios of adjacent blocks. ``*_images_per_s`` is
  ``batch_size / step``.
* ``topology_update_s``: one topology update of every masked layer (drop by
  magnitude, grow by gradient, death rate ``--death_rate``) given a
  gradient computed beforehand, i.e. without the gradient pass. It is the
  library's own code path: ``DynamicSparsityCallback.update_topology(
  scores=grads)`` with gradients from ``cb.growth_gradients(x, y)`` computed
  beforehand (so no growth batch is drawn); it computes the ITOP rate.
* ``topology_update_with_gradient_s``: the full ``update_topology()``,
  gradient pass included; ``gradient_pass_s`` is that gradient function
  alone on one batch of ``--batch_size``. Each repeat runs: gradient pass,
  update with that gradient, full update; the optimizer step is moved on by
  one update period before every update, as in training. Every timing waits
  for the device.

Goals (on an H100, WRN-28-10, batch 128): ``masked_over_dense`` <= 1.02;
``topology_update_s`` < 50 ms (the original PyTorch code: about 140 ms); a
masked mixed-bfloat16 step < 10 ms (the original with bf16 autocast: about
22 ms). ``goals`` gives value and pass/fail per goal and precision, with
``comparable`` false unless the run was on a GPU with the goal's model and
batch size (``"device": "cpu"`` runs are never comparable).

ONE JSON object goes to stdout; progress to stderr. From the repository root:

    KERAS_BACKEND=jax python benchmarks/gpu_training.py             # the GPU run
    python benchmarks/gpu_training.py --model wrn-16-4 --batch_size 32 --steps 2
    python benchmarks/gpu_training.py --skip_training --precisions float32
"""

import argparse
import contextlib
import os
import platform
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (benchmarks/_common.py)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PRECISIONS = ("float32", "mixed_bfloat16")
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10

# The spec's goals, and what the original PyTorch code takes.
GOAL_MODEL = "wrn-28-10"
GOAL_BATCH_SIZE = 128
GOAL_DEVICE = "NVIDIA H100"
MASKED_OVER_DENSE_GOAL = 1.02
TOPOLOGY_UPDATE_GOAL_S = 0.050
MASKED_BF16_STEP_GOAL_S = 0.010
REFERENCE_PYTORCH = {
    "topology_update_s": 0.140,
    "masked_step_bf16_autocast_s": 0.022,
    "note": "original FreeTickets PyTorch code on an H100, WRN-28-10, batch 128 "
    "(figures from the task specification)",
}


def log(message):
    print(f"[gpu_training] {message}", file=sys.stderr, flush=True)


def _jit_flag(value):
    value = str(value).lower()
    if value in ("auto", "true", "false"):
        return value
    raise argparse.ArgumentTypeError("expected auto, true or false")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", default="wrn-28-10",
        help="a freetickets_tf.models.get name, e.g. wrn-28-10, wrn-16-4",
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument(
        "--steps", type=int, default=20,
        help="timed training steps per block (= steps_per_execution)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2,
        help="untimed blocks per model, and untimed topology updates",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed blocks per model"
    )
    parser.add_argument(
        "--update_repeats", type=int, default=5,
        help="timed topology updates (each way) per precision",
    )
    parser.add_argument(
        "--precisions", default=",".join(PRECISIONS),
        help="comma-separated Keras dtype policies (default: float32,mixed_bfloat16)",
    )
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument(
        "--death_rate", type=float, default=0.5, help="fraction moved per update"
    )
    parser.add_argument(
        "--jit_compile", type=_jit_flag, nargs="?", const="true", default="auto",
        help="auto (Keras' default: XLA on JAX, and on TensorFlow with a GPU), "
        "true (also a bare --jit_compile) or false",
    )
    parser.add_argument(
        "--skip_training", action="store_true",
        help="time only the topology updates (no training steps)",
    )
    parser.add_argument(
        "--skip_update", action="store_true",
        help="time only the training steps (no topology updates)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in args.precisions if p not in PRECISIONS]
    if unknown or not args.precisions:
        parser.error(f"--precisions: unknown {unknown}; choose from {list(PRECISIONS)}")
    if not re.fullmatch(r"wrn-\d+-\d+|lenet5(-x\d+)?|lenet300-100|mlp-cifar10",
                        args.model):
        parser.error(f"--model: unknown model {args.model!r}")
    for name in ("batch_size", "steps", "repeats", "update_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first call traces / compiles)")
    if not 0 < args.density <= 1:
        parser.error("--density must be in (0, 1]")
    if not 0 < args.death_rate < 1:
        parser.error("--death_rate must be in (0, 1)")
    if args.skip_training and args.skip_update:
        parser.error("--skip_training and --skip_update leave nothing to time")
    return args


# --------------------------------------------------------------------------
# Backend-specific pieces: device name, waiting for the device.


def _backend():
    import keras

    return keras.backend.backend()


def device_info():
    """`(platform, device name)`: ("cpu", "cpu") when there is no accelerator."""
    if _backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return "cpu", "cpu"
        return device.platform, device.device_kind
    if _backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu", "cpu"
        details = tf.config.experimental.get_device_details(gpus[0])
        return "gpu", details.get("device_name", gpus[0].name)
    return "unknown", "unknown"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_TF_HAS_GPU = []


def wait_for(values):
    """Blocks until `values` (any nest of backend arrays) are computed.

    JAX: `block_until_ready`. TensorFlow: on a GPU, waits for every device
    (`tf.test.experimental.sync_devices`); on the CPU, eager ops and
    tf.function calls have finished when they return.
    """
    if _backend() == "jax":
        import jax

        jax.block_until_ready(values)
    elif _backend() == "tensorflow":
        import tensorflow as tf

        if not _TF_HAS_GPU:
            _TF_HAS_GPU.append(bool(tf.config.list_logical_devices("GPU")))
        if _TF_HAS_GPU[0]:
            tf.test.experimental.sync_devices()
    else:
        import keras

        for leaf in keras.tree.flatten(values):
            keras.ops.convert_to_numpy(leaf)


def median(values):
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------
# Training steps.


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy while models are built."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_models(args, precision):
    import keras

    import freetickets_tf

    def compile_(model):
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=args.steps,
            jit_compile={"auto": "auto", "true": True, "false": False}[args.jit_compile],
        )
        return model

    with dtype_policy(precision):
        dense = freetickets_tf.models.get(
            args.model, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE
        )
        masked = freetickets_tf.sparsify(
            dense, density=args.density, distribution="erk", seed=args.seed
        )
    return compile_(dense), compile_(masked)


class StepTimer:
    """Times `steps` training steps of Keras' compiled train function.

    TensorFlow: `model.train_function(iterator)` on a tf.data iterator of one
    fixed batch (one call = `steps_per_execution` steps in a while loop).
    JAX: `model.train_function(state, iterator)`, the call `fit` makes, on
    a copy of the model's state (the jitted step donates its input state, so
    the model's own variables are left untouched and stay usable).
    """

    def __init__(self, model, x, y, steps):
        self.model = model
        self.steps = steps
        # Builds the optimizer, metrics and train function, and runs one step.
        model.train_on_batch(x, y)
        model.make_train_function()
        if _backend() == "jax":
            import itertools

            import jax
            import jax.numpy as jnp

            # (x, y, sample_weight) as `train_on_batch` passes it, so that
            # the train step compiled there is reused.
            batch = (jax.device_put(x), jax.device_put(y), None)
            self.iterator = itertools.repeat(batch)
            self.state = tuple(
                [jnp.array(v.value, copy=True) for v in variables]
                for variables in (
                    model.trainable_variables,
                    model.non_trainable_variables,
                    model.optimizer.variables,
                    model.metrics_variables,
                )
            )
        else:
            import tensorflow as tf

            dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
            self.iterator = iter(dataset)
        self.last_loss = None

    def block(self):
        """Runs one block; returns (wall, process CPU) seconds per step."""
        cpu = time.process_time()
        start = time.perf_counter()
        if _backend() == "jax":
            logs, self.state = self.model.train_function(self.state, self.iterator)
            wait_for((logs, self.state))
        else:
            logs = self.model.train_function(self.iterator)
            wait_for(logs)
        # The loss on the host: also what makes a block end on any backend.
        self.last_loss = float(logs["loss"])
        wall = time.perf_counter() - start
        return wall / self.steps, (time.process_time() - cpu) / self.steps


def time_training(args, dense, masked, x, y, precision):
    timers = {"dense": StepTimer(dense, x, y, args.steps),
              "masked": StepTimer(masked, x, y, args.steps)}
    for name, timer in timers.items():
        for i in range(args.warmup):
            start = time.perf_counter()
            timer.block()
            log(f"{precision} warm-up {name} block {i + 1}: "
                f"{time.perf_counter() - start:.3f}s")
    samples = {"dense": [], "masked": []}
    cpu = {"dense": [], "masked": []}
    for r in range(args.repeats):
        # Alternate which model goes first, so drift hits both alike.
        order = ("dense", "masked") if r % 2 == 0 else ("masked", "dense")
        for name in order:
            wall, cpu_s = timers[name].block()
            samples[name].append(wall)
            cpu[name].append(cpu_s)
            log(f"{precision} repeat {r + 1} {name}: {wall * 1e3:.2f} ms/step "
                f"(loss {timers[name].last_loss:.3f})")
    dense_step, masked_step = median(samples["dense"]), median(samples["masked"])
    everything = samples["dense"] + samples["masked"]
    return {
        "jit_compile": bool(masked.jit_compile),
        "dense_step_s": dense_step,
        "masked_step_s": masked_step,
        "masked_over_dense": masked_step / dense_step,
        "masked_over_dense_paired": median(
            [m / d for m, d in zip(samples["masked"], samples["dense"])]
        ),
        "masked_over_dense_min": min(samples["masked"]) / min(samples["dense"]),
        "masked_over_dense_cpu": median(cpu["masked"]) / median(cpu["dense"]),
        "dense_images_per_s": args.batch_size / dense_step,
        "masked_images_per_s": args.batch_size / masked_step,
        "timing_noisy": max(everything) > 1.1 * min(everything),
        "dense_step_samples_s": samples["dense"],
        "masked_step_samples_s": samples["masked"],
        "final_loss": {name: timer.last_loss for name, timer in timers.items()},
    }


# --------------------------------------------------------------------------
# Topology updates.


def _advance(cb):
    """Moves the optimizer step on by one update period, as training would
    (the callback derives its growth batch and seeds from the step)."""
    iterations = cb.model.optimizer.iterations
    iterations.assign(iterations + cb.update_frequency)


def _update_variables(cb):
    """Every variable an update writes: kernels, masks, explored records and
    optimizer slots (looked up once, outside the timed region)."""
    from freetickets_tf import optimizer_slots

    variables = []
    for mk in cb.masked_kernels:
        variables += [mk.kernel, mk.mask, mk.explored]
        variables += optimizer_slots.slot_variables(cb.model.optimizer, mk.kernel)
    return variables


def time_topology_updates(args, masked, x_all, y_all, x, y, precision):
    import freetickets_tf

    cb = freetickets_tf.callbacks.DynamicSparsityCallback(
        data=(x_all, y_all),
        update_frequency=100,
        death_rate=args.death_rate,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    cb.set_model(masked)
    cb.prepare()
    written = _update_variables(cb)

    grad_times, update_times, full_times, moved, moved_full = [], [], [], [], []
    for i in range(args.warmup + args.update_repeats):
        timed = i >= args.warmup
        start = time.perf_counter()
        grads = cb.growth_gradients(x, y)
        wait_for(grads)
        grad_s = time.perf_counter() - start

        # 1. The callback's update with the gradient already computed.
        _advance(cb)
        start = time.perf_counter()
        stats = cb.update_topology(death_rate=args.death_rate, scores=grads)
        wait_for([v.value for v in written])
        update_s = time.perf_counter() - start

        # 2. The full update, gradient pass included.
        _advance(cb)
        start = time.perf_counter()
        full_stats = cb.update_topology(death_rate=args.death_rate)
        wait_for([v.value for v in written])
        full_s = time.perf_counter() - start

        log(f"{precision} {'timed' if timed else 'warm-up'} update {i + 1}: "
            f"gradient pass {grad_s * 1e3:.1f} ms; update given the gradient "
            f"{update_s * 1e3:.1f} ms (moved {stats['weights_moved']:,}); "
            f"with its gradient pass {full_s * 1e3:.1f} ms")
        if timed:
            grad_times.append(grad_s)
            update_times.append(update_s)
            full_times.append(full_s)
            moved.append(stats["weights_moved"])
            moved_full.append(full_stats["weights_moved"])
    update, full = median(update_times), median(full_times)
    return {
        "topology_update_s": update,
        "topology_update_with_gradient_s": full,
        "gradient_pass_s": median(grad_times),
        "topology_update_samples_s": update_times,
        "topology_update_with_gradient_samples_s": full_times,
        "gradient_pass_samples_s": grad_times,
        "weights_moved_per_update": median(moved),
        "weights_moved_per_update_with_gradient": median(moved_full),
        "masked_layers": len(cb.masked_kernels),
        "itop_rate_after": freetickets_tf.itop_rate(masked),
    }


# --------------------------------------------------------------------------


def _goal(name, precision, goal, value, limit, comparable, reason):
    met = None if value is None else bool(value <= limit if goal.startswith("<=")
                                          else value < limit)
    return {
        "name": name,
        "precision": precision,
        "goal": goal,
        "value": value,
        "met": met,
        "comparable": comparable and value is not None,
        "why_not_comparable": None if comparable else reason,
    }


def goals(args, result):
    reasons = []
    if result["device"] == "cpu" or result["platform"] != "gpu":
        reasons.append(f"device is {result['device']!r}, not a GPU")
    if args.model != GOAL_MODEL:
        reasons.append(f"model is {args.model}, the goals are for {GOAL_MODEL}")
    comparable = not reasons
    step_reasons = list(reasons)
    if args.batch_size != GOAL_BATCH_SIZE:
        step_reasons.append(
            f"batch size is {args.batch_size}, the goals are for {GOAL_BATCH_SIZE}"
        )
    out = []
    for precision, row in result["precisions"].items():
        out.append(_goal(
            "masked_over_dense", precision, f"<= {MASKED_OVER_DENSE_GOAL}",
            row.get("masked_over_dense"), MASKED_OVER_DENSE_GOAL,
            not step_reasons, "; ".join(step_reasons),
        ))
        out.append(_goal(
            "topology_update_s", precision, f"< {TOPOLOGY_UPDATE_GOAL_S}",
            row.get("topology_update_s"), TOPOLOGY_UPDATE_GOAL_S,
            comparable, "; ".join(reasons),
        ))
        if precision == "mixed_bfloat16":
            out.append(_goal(
                "masked_step_s", precision, f"< {MASKED_BF16_STEP_GOAL_S}",
                row.get("masked_step_s"), MASKED_BF16_STEP_GOAL_S,
                not step_reasons, "; ".join(step_reasons),
            ))
    return out


def environment():
    env = _common.environment()
    env["cpu"] = _cpu_model()
    return env


def run(args):
    import keras
    import numpy as np

    import freetickets_tf

    load = os.getloadavg()[0]
    log(f"backend {keras.backend.backend()}; 1-min load average {load:.2f}")
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data_size = 4 * args.batch_size  # the callback draws growth batches here
    x_all = rng.standard_normal((data_size, *INPUT_SHAPE)).astype("float32")
    y_all = rng.integers(0, NUM_CLASSES, size=(data_size,)).astype("int32")
    x, y = x_all[: args.batch_size], y_all[: args.batch_size]
    platform_name, device = device_info()

    result = {
        "benchmark": "gpu_training",
        "device": device,
        "platform": platform_name,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "model": args.model,
        "input_shape": list(INPUT_SHAPE),
        "num_classes": NUM_CLASSES,
        "batch_size": args.batch_size,
        "density": args.density,
        "death_rate": args.death_rate,
        "steps_per_block": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "update_repeats": args.update_repeats,
        "jit_compile_requested": args.jit_compile,
        "seed": args.seed,
        "timer": (
            "Model.train_function (steps_per_execution=steps) on a fixed batch "
            "on the device, waiting for the results"
        ),
        "precisions": {},
    }
    for precision in args.precisions:
        log(f"{precision}: building {args.model}, sparsifying to {args.density}")
        dense, masked = build_models(args, precision)
        row = {
            "parameters": dense.count_params(),
            "overall_density": freetickets_tf.overall_density(masked),
            "compute_dtype": masked.dtype_policy.compute_dtype,
            "variable_dtype": masked.dtype_policy.variable_dtype,
        }
        if not args.skip_training:
            row.update(time_training(args, dense, masked, x, y, precision))
        if not args.skip_update:
            row.update(time_topology_updates(
                args, masked, x_all, y_all, x, y, precision))
            if "masked_step_s" in row:
                row["topology_update_in_steps"] = (
                    row["topology_update_s"] / row["masked_step_s"])
        result["precisions"][precision] = row
        del dense, masked
        keras.backend.clear_session()
    result["goals"] = goals(args, result)
    result["goals_met"] = all(
        g["met"] for g in result["goals"] if g["comparable"]
    ) if any(g["comparable"] for g in result["goals"]) else None
    result["comparable_to_goals"] = any(g["comparable"] for g in result["goals"])
    result["goal_setting"] = {
        "device": GOAL_DEVICE, "model": GOAL_MODEL, "batch_size": GOAL_BATCH_SIZE,
        "same_device": GOAL_DEVICE.lower() in device.lower(),
    }
    result["reference_pytorch"] = REFERENCE_PYTORCH
    result["environment"] = environment()
    result["environment"]["load_average_1min_at_start"] = round(load, 2)
    return result


def main(argv=None):
    return _common.json_main(parse_args, run, argv)


if __name__ == "__main__":
    main()
