"""Peak memory of evaluating an ensemble on a long `tf.data` stream: scored
batch by batch (`evaluate_ensemble`) against holding every probability
(`ensemble_probabilities` then the `metrics` functions), side by side.

An ensemble of ``--members`` small classifiers (8x8x3 images, ``--classes``
classes: the probabilities, not the model, are what grows with the test set)
is evaluated on a stream of ``--examples`` synthetic images, generated batch
by batch inside `tf.data` (the images themselves are never all in memory).
Each way runs in its own subprocess of this script, after a warm-up on two
batches; its figure is the peak resident memory of the evaluation above the
process's resident memory just before it (``peak_growth_mb``, from
``ru_maxrss`` and ``/proc/self/status``).

* ``streaming``: `evaluate_ensemble(ensemble, stream, None)` at
  ``--examples`` and at a quarter of it: its peak must not grow with the
  stream (``growth_ratio_full_over_quarter``) and stays under
  ``--bound_mb`` (``within_bound``).
* ``in_memory``: `ensemble_probabilities` of the same stream, then
  accuracy, NLL, ECE, Brier, disagreement and KL from `metrics`: what an
  evaluation that keeps the probabilities costs (about
  ``examples * (members + 1) * classes`` float32s, and float64 copies).

Both report the same scores (``scores_agree``: to 1e-6).

ONE JSON object goes to stdout; progress to stderr. From the repository root:

    python benchmarks/streaming_evaluation.py                  # 200,000 images
    python benchmarks/streaming_evaluation.py --examples 20000 --quick
"""

import argparse
import json
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import environment  # noqa: E402
from _common import json_main  # noqa: E402

IMAGE_SHAPE = (8, 8, 3)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--bound_mb", type=float, default=64.0,
                        help="the streaming evaluation's peak growth must stay under this")
    parser.add_argument("--quick", action="store_true",
                        help="streaming at --examples only, no in-memory run")
    parser.add_argument("--single", choices=["streaming", "in_memory"],
                        help=argparse.SUPPRESS)  # one way, in this process
    return parser.parse_args(argv)


def _rss_mb():
    """Resident memory of this process now."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ensemble(args):
    import keras

    import freetickets_tf as ft

    members = []
    for seed in range(args.members):
        keras.utils.set_random_seed(seed)
        members.append(keras.Sequential([
            keras.Input(IMAGE_SHAPE), keras.layers.Flatten(),
            keras.layers.Dense(args.classes)]))
    return ft.EnsembleModel(members, return_member_probabilities=True)


def _stream(examples, args, labelled=True):
    """Batches of random images and labels, made inside tf.data."""
    import tensorflow as tf

    batches = -(-examples // args.batch_size)

    def batch(index):
        size = tf.minimum(tf.constant(args.batch_size, tf.int64),
                          examples - index * args.batch_size)
        seed = tf.stack([index, tf.constant(0, tf.int64)])
        images = tf.random.stateless_uniform((size, *IMAGE_SHAPE), seed)
        labels = tf.random.stateless_uniform((size,), seed + 1, 0, args.classes, "int32")
        return (images, labels) if labelled else images

    return tf.data.Dataset.range(batches).map(batch).prefetch(2)


def _in_memory_scores(ensemble, stream):
    import numpy as np

    import freetickets_tf as ft

    probs, members = ft.evaluation.ensemble_probabilities(ensemble, stream.map(
        lambda x, y: x))
    labels = np.concatenate([y for _, y in stream.as_numpy_iterator()])
    m = ft.metrics
    return {
        "ensemble": {"accuracy": m.accuracy(labels, probs), "nll": m.nll(labels, probs),
                     "ece": m.ece(labels, probs), "brier": m.brier(labels, probs)},
        "diversity": {"disagreement": m.disagreement(members),
                      "kl_divergence": m.kl_divergence(members)},
    }


def run_single(args):
    import time

    import freetickets_tf as ft

    ensemble = _ensemble(args)
    score = (_in_memory_scores if args.single == "in_memory" else
             lambda e, s: ft.evaluation.evaluate_ensemble(e, s, None))
    score(ensemble, _stream(2 * args.batch_size, args))  # warm-up: traces, allocators
    before = _rss_mb()
    start = time.perf_counter()
    report = score(ensemble, _stream(args.examples, args))
    seconds = time.perf_counter() - start
    # ru_maxrss is the peak of the whole process; the warm-up's peak is
    # below `before` plus the evaluation's own, so this is an upper bound.
    return {
        "examples": args.examples,
        "rss_before_mb": round(before, 1),
        "peak_growth_mb": round(max(_peak_rss_mb() - before, 0.0), 1),
        "seconds": round(seconds, 2),
        "ensemble": report["ensemble"],
        "diversity": report["diversity"],
    }


def _child(way, examples, args):
    command = [sys.executable, os.path.abspath(__file__), "--single", way,
               "--examples", str(examples), "--classes", str(args.classes),
               "--members", str(args.members), "--batch_size", str(args.batch_size)]
    print(f"{way}: {examples:,} images ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{way} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    print(f"  peak growth {result['peak_growth_mb']} MB in {result['seconds']} s",
          file=sys.stderr, flush=True)
    return result


def _agree(a, b):
    return all(abs(a[part][k] - b[part][k]) <= 1e-6 * max(1.0, abs(b[part][k]))
               for part in ("ensemble", "diversity") for k in a[part])


def run(args):
    if args.single:
        return run_single(args)
    full = _child("streaming", args.examples, args)
    result = {
        "environment": environment(),
        "settings": {k: getattr(args, k) for k in
                     ("examples", "classes", "members", "batch_size", "bound_mb")},
        "streaming": full,
        "within_bound": full["peak_growth_mb"] <= args.bound_mb,
    }
    if args.quick:
        return result
    quarter = _child("streaming", args.examples // 4, args)
    in_memory = _child("in_memory", args.examples, args)
    result.update(
        streaming_quarter=quarter,
        in_memory=in_memory,
        growth_ratio_full_over_quarter=round(
            full["peak_growth_mb"] / max(quarter["peak_growth_mb"], 1.0), 2),
        in_memory_over_streaming=round(
            in_memory["peak_growth_mb"] / max(full["peak_growth_mb"], 1.0), 1),
        scores_agree=_agree(full, in_memory),
    )
    return result


def main(argv=None):
    return json_main(parse_args, run, argv)


if __name__ == "__main__":
    main()
