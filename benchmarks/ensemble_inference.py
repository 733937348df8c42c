"""Inference speed of an EnsembleModel against running its members in turn.

What is measured, for M sparse members of a CIFAR-shaped (32x32x3 inputs,
10 classes) model from ``freetickets_tf.models`` (each made sparse with
``freetickets_tf.sparsify(density=--density)``), on synthetic data, in one
process:

* ``one_graph_images_per_s``: ``EnsembleModel(members)`` called through
  Keras' compiled predict function (``predict_on_batch``): one graph runs
  every member and averages their softmax probabilities.
* ``sequential_images_per_s``: the members called one after another, each
  through its own compiled predict function (``predict_on_batch``), then the
  softmax probabilities averaged in numpy: what a user does without
  ``EnsembleModel``.
* ``one_graph_over_sequential``: the ratio of the two; >= 1 means the
  one-graph model is not slower.

``--jit_compile`` compiles both ways with XLA, which Keras leaves off on
CPU-only machines and turns on by itself where there is a GPU.

Both ways see the same ``--batches`` batches of ``--batch_size`` images.
``--warmup`` untimed passes over the batches come first (tracing). Timed
passes are interleaved, alternating which way goes first, ``--repeats``
times; the figures are medians. ``max_abs_difference`` checks that both ways
predict the same probabilities. Other processes on the machine move the
wall-clock figures by several percent; two estimates are steadier:
``one_graph_over_sequential_paired``, the median over repeats of the ratio
within each adjacent pair of passes, and ``one_graph_over_sequential_cpu``,
from process CPU seconds per pass (``*_cpu_s``).

The result is ONE JSON object on stdout; progress goes to stderr.

Run it from the repository root:

    python benchmarks/ensemble_inference.py                 # 3 x wrn-16-2, batch 256
    python benchmarks/ensemble_inference.py --quick         # smoke run, < 30 s
    python benchmarks/ensemble_inference.py --jit_compile    # both ways with XLA
    python benchmarks/ensemble_inference.py --model wrn-16-4 --members 5
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (benchmarks/_common.py)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_QUICK = {"model": "wrn-10-1", "batch_size": 64, "batches": 2, "repeats": 5}
_DEFAULTS = {"model": "wrn-16-2", "batch_size": 256, "batches": 2, "repeats": 5}


def log(message):
    print(f"[ensemble_inference] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--members", type=int, default=3, help="ensemble size M")
    parser.add_argument(
        "--model", default=None, help="freetickets_tf.models name (default wrn-16-2)"
    )
    parser.add_argument("--batch_size", type=int, default=None, help="default 256")
    parser.add_argument(
        "--batches", type=int, default=None, help="batches per timed pass (default 2)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed passes per way (default 5)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes per way")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="compile the ensemble and every member with XLA (default: Keras' "
        "choice, which is off on CPU)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: wrn-10-1, batch 64, 2 batches, 5 repeats "
        "(explicit flags still win)",
    )
    args = parser.parse_args(argv)
    defaults = _QUICK if args.quick else _DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in ("members", "batch_size", "batches", "repeats", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not 0 < args.density <= 1:
        parser.error("--density must be in (0, 1]")
    return args


def softmax(z):
    import numpy as np

    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_graph(ensemble, batches):
    return [ensemble.predict_on_batch(x) for x in batches]


def sequential(members, kinds, batches):
    import numpy as np

    outputs = []
    for x in batches:
        probabilities = []
        for member, kind in zip(members, kinds):
            out = member.predict_on_batch(x)
            probabilities.append(out if kind == "probabilities" else softmax(out))
        outputs.append(np.mean(probabilities, axis=0))
    return outputs


def timed(fn):
    """`(wall seconds, process CPU seconds, result)` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import freetickets_tf as ft
    from freetickets_tf.ensemble_model import EnsembleModel
    from freetickets_tf.ensemble_model import output_kind

    env = _common.environment()
    log(
        f"{args.members} x {args.model}, batch {args.batch_size}, {args.batches} "
        f"batches, {args.repeats} repeats; load average "
        f"{env['load_average_1_5_15_min']}"
    )
    keras.utils.set_random_seed(args.seed)
    members = [
        ft.sparsify(
            ft.models.get(args.model, num_classes=10, input_shape=(32, 32, 3)),
            args.density,
            seed=args.seed + i,
        )
        for i in range(args.members)
    ]
    kinds = [output_kind(m) for m in members]
    ensemble = EnsembleModel(members)
    if args.jit_compile:
        for model in [ensemble, *members]:
            model.compile(jit_compile=True)
    rng = np.random.default_rng(args.seed)
    batches = [
        rng.normal(size=(args.batch_size, 32, 32, 3)).astype("float32")
        for _ in range(args.batches)
    ]
    ways = {
        "one_graph": lambda: one_graph(ensemble, batches),
        "sequential": lambda: sequential(members, kinds, batches),
    }
    results = {}
    for _ in range(args.warmup):
        for name, fn in ways.items():
            results[name] = fn()
    difference = max(
        float(np.abs(a - b).max())
        for a, b in zip(results["one_graph"], results["sequential"])
    )
    walls = {name: [] for name in ways}
    cpus = {name: [] for name in ways}
    for repeat in range(args.repeats):
        # Alternate which way goes first, so that drift hits both alike.
        order = list(ways) if repeat % 2 == 0 else list(ways)[::-1]
        for name in order:
            wall, cpu, _ = timed(ways[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
            log(f"repeat {repeat}: {name} {wall:.3f} s")
    images = args.batch_size * args.batches
    speed = {name: images / statistics.median(walls[name]) for name in ways}
    cpu_s = {name: statistics.median(cpus[name]) for name in ways}
    report = {
        "model": args.model,
        "members": args.members,
        "batch_size": args.batch_size,
        "batches": args.batches,
        "repeats": args.repeats,
        "density": args.density,
        "jit_compile": ensemble.jit_compile,
        "one_graph_images_per_s": round(speed["one_graph"], 1),
        "sequential_images_per_s": round(speed["sequential"], 1),
        "one_graph_over_sequential": round(speed["one_graph"] / speed["sequential"], 3),
        "one_graph_over_sequential_paired": round(
            statistics.median(
                s / o for o, s in zip(walls["one_graph"], walls["sequential"])
            ),
            3,
        ),
        "one_graph_over_sequential_cpu": round(
            cpu_s["sequential"] / cpu_s["one_graph"], 3
        ),
        "one_graph_cpu_s": round(cpu_s["one_graph"], 3),
        "sequential_cpu_s": round(cpu_s["sequential"], 3),
        "one_graph_pass_s": [round(t, 3) for t in walls["one_graph"]],
        "sequential_pass_s": [round(t, 3) for t in walls["sequential"]],
        "max_abs_difference": difference,
        "environment": env,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
