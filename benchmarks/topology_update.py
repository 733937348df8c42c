"""One DST topology update of a Wide ResNet: ours on each backend against a
plain NumPy reference, side by side in one run.

For each model in ``--models`` (CIFAR-shaped Wide ResNets, ``sparsify``'d at
``--density`` with ERK) and each backend in ``--backends`` (every backend runs
in its own subprocess of this script, pinned to ``--threads`` CPUs, 1 by
default, as the figures of issue 16 were taken; ``cpus`` in the JSON), on the
same synthetic batch:

* ``update_s``: median wall time of the library's update given the gradient,
  ``DynamicSparsityCallback.update_topology(scores=gradients)`` (magnitude
  death, gradient growth, death rate ``--death_rate``; kernels, masks,
  explored records and momentum slots written), waited for.
* ``first_update_s``: the first such update, timed apart: it includes what a
  backend traces or compiles once.
* ``update_with_gradient_s``: the full ``update_topology()``, gradient pass
  on a growth batch of ``--batch_size`` included; ``train_step_s`` is one
  ``train_on_batch`` of the same batch, and ``update_with_gradient_in_steps``
  their ratio (goal: <= 1.2).
* ``numpy_reference_s``: the same update written in NumPy on host copies of
  the same kernels, masks and gradients: per layer ``n = ceil(p * active)``,
  the ``n`` smallest ``|w|`` among the active dropped and the ``n`` largest
  ``|g|`` among the inactive grown, each with ``np.argpartition`` (O(n)),
  then the kernel zeroed outside the new mask. ``reference_agrees`` says
  that ours equal its masks when ties are broken as the library breaks
  them (lower index first; a stable sort, run apart and not timed).
  ``update_over_numpy`` is ``update_s / numpy_reference_s`` (goal: <= 1).
  Each repeat times it twice, right before and right after ours (whose
  passes leave the caches cold for what follows); the median is over both.
* ``numpy_same_writes_s``: the reference writing also what the library's
  update writes besides masks and kernels (the explored record, the
  momentum zeroed at the grown positions: SPEC §3 step 4, and the
  original's ``fired_masks``), timed right after the plain one;
  ``update_over_numpy_same_writes`` is ``update_s`` over it.

The update of the original PyTorch code on WRN-28-10 at density 0.2 took
4.7 s on this 2-core CPU at one thread (issue 16, measured with
``benchmarks/gpu_training.py --skip_training`` beside it); the goal for
``update_s`` there is a third of it, 1.57 s (``goals``).

ONE JSON object goes to stdout; progress to stderr. From the repository root:

    python benchmarks/topology_update.py                      # both models, 3 backends
    python benchmarks/topology_update.py --models wrn-16-4 --backends tensorflow
    python benchmarks/topology_update.py --quick              # smoke run
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (benchmarks/_common.py)

BACKENDS = ("tensorflow", "jax", "torch")
ORIGINAL_WRN_28_10_S = 4.7  # the original's update, same CPU, one thread (issue 16)


def log(message):
    print(f"[topology_update] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="wrn-16-4,wrn-28-10",
                        help="comma-separated Wide ResNets (freetickets_tf.models names)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--death_rate", type=float, default=0.5)
    parser.add_argument("--batch_size", type=int, default=32,
                        help="growth batch and training step (the ratio hardly depends on it)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="wrn-16-4 only, batch 8, one repeat: a smoke run")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # a backend's subprocess
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.quick:
        args.models, args.batch_size, args.repeats = ["wrn-16-4"], 8, 1
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown:
        parser.error(f"--backends: unknown {unknown}; allowed: {', '.join(BACKENDS)}")
    for name, low in (("repeats", 1), ("threads", 1), ("batch_size", 1)):
        if getattr(args, name) < low:
            parser.error(f"--{name} must be >= {low}")
    if not 0 < args.death_rate < 1 or not 0 < args.density < 1:
        parser.error("--death_rate and --density must lie in (0, 1)")
    return args


def _smallest(values, n, exact):
    """Positions of the `n` smallest `values`: `np.argpartition` (O(n), ties
    in any order), or with `exact` the lower index first among ties, as the
    library breaks them (a stable sort: for checking, not timed)."""
    if exact:
        return np.argsort(values, kind="stable")[:n]
    return np.argpartition(values, n - 1)[:n]


def numpy_update(kernels, masks, gradients, death_rate, exact=False, explored=None,
                 slots=None):
    """The reference: one drop-and-grow update in NumPy.

    With `explored` and `slots` (one array per kernel each: the record of
    positions ever active, the optimizer's momentum), it also writes what the
    library's update writes besides the masks and kernels, in place: the
    record extended by the new mask (the ITOP rate's, as the original's
    `fired_masks`) and the momentum zeroed at the grown positions (SPEC §3,
    step 4).

    Returns the new masks and kernels (layers at density 1 left alone)."""
    new_masks, new_kernels = [], []
    for i, (w, mask, g) in enumerate(zip(kernels, masks, gradients)):
        if mask.all():
            new_masks.append(mask)
            new_kernels.append(w)
            continue
        flat_mask, flat_w = mask.ravel(), w.ravel()
        active = np.flatnonzero(flat_mask)
        n = math.ceil(round(death_rate * active.size, 9))
        dropped = active[_smallest(np.abs(flat_w[active]), n, exact)]
        survivors = flat_mask.copy()
        survivors[dropped] = False
        inactive = np.flatnonzero(~survivors)
        grown = inactive[_smallest(-np.abs(g.ravel()[inactive]), n, exact)]
        new_mask = survivors.copy()
        new_mask[grown] = True
        new_masks.append(new_mask.reshape(mask.shape))
        new_kernels.append(np.where(survivors, flat_w, 0.0).reshape(w.shape))
        if explored is not None:
            explored[i] |= new_masks[-1]
        if slots is not None:
            slots[i].ravel()[grown] = 0.0
    return new_masks, new_kernels


def median(values):
    return statistics.median(values) if values else None


def _pinned_cpus(threads):
    """The CPUs a backend's subprocess runs on: the last `threads` of those
    this process may use (the first often serves the interrupts), or None
    where the platform cannot pin a process.

    The thread settings of `_limit_threads` do not bind every backend: JAX's
    CPU runtime runs the independent parts of a program (here each layer's)
    on as many threads as there are CPUs, whatever they say. Figures taken
    before this pinning (benchmarks/RESULTS.md, up to 2026-12-04) ran JAX's
    update on two cores."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None
    return allowed[-threads:]


def _limit_threads(threads):
    """Environment of a backend subprocess running on `threads` CPU threads."""
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads),
               TF_NUM_INTEROP_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TF_CPP_MIN_LOG_LEVEL="3")
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "")
                            + " --xla_cpu_multi_thread_eigen=false").strip()
    return env


def measure(args, model_name):
    """The figures of one model on this process's backend."""
    import keras

    import freetickets_tf as ft
    from freetickets_tf import optimizer_slots

    def host(values):
        return [np.array(keras.ops.convert_to_numpy(v)) for v in values]

    keras.utils.set_random_seed(args.seed)
    model = ft.sparsify(ft.models.get(model_name, 10, (32, 32, 3)), args.density,
                        seed=args.seed)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(args.batch_size * 4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, len(x)).astype("int32")
    batch = (x[:args.batch_size], y[:args.batch_size])
    model.train_on_batch(*batch)  # builds the optimizer (momentum slots)
    cb = ft.DynamicSparsityCallback(data=(x, y), update_frequency=100,
                                    death_rate=args.death_rate, batch_size=args.batch_size,
                                    seed=args.seed)
    cb.set_model(model)
    cb.prepare()
    written = []
    for mk in cb.masked_kernels:
        written += [mk.kernel, mk.mask, mk.explored,
                    *optimizer_slots.slot_variables(model.optimizer, mk.kernel)]

    def wait():
        host([written[0].value, written[-1].value])

    def advance():  # the step moves on by one period, as in training
        iterations = model.optimizer.iterations
        iterations.assign(iterations + cb.update_frequency)

    def timed(fn):
        start = time.perf_counter()
        result = fn()
        wait()
        return time.perf_counter() - start, result

    gradients = cb.growth_gradients(*batch)
    host(gradients)
    advance()
    first_s, _ = timed(lambda: cb.update_topology(death_rate=args.death_rate, scores=gradients))
    log(f"{model_name}: first update {first_s:.2f} s (with tracing/compilation)")
    figures = {"update": [], "with_gradient": [], "train_step": [], "numpy": [],
               "numpy_same_writes": []}
    agrees = True
    for repeat in range(args.repeats):
        gradients = cb.growth_gradients(*batch)
        kernels = host([mk.kernel.value for mk in cb.masked_kernels])
        masks = host([mk.mask.value for mk in cb.masked_kernels])
        grads = host(gradients)
        records = host([mk.explored.value for mk in cb.masked_kernels])
        momenta = host([optimizer_slots.momentum_variable(model.optimizer, mk.kernel).value
                        for mk in cb.masked_kernels])
        advance()

        def numpy_references():
            start = time.perf_counter()
            numpy_update(kernels, masks, grads, args.death_rate)
            figures["numpy"].append(time.perf_counter() - start)
            start = time.perf_counter()
            numpy_update(kernels, masks, grads, args.death_rate, explored=records,
                         slots=momenta)
            figures["numpy_same_writes"].append(time.perf_counter() - start)

        # NumPy both before and after ours, whose passes leave the caches
        # cold for whatever runs next.
        numpy_references()
        seconds, _ = timed(lambda: cb.update_topology(death_rate=args.death_rate,
                                                      scores=gradients))
        figures["update"].append(seconds)
        numpy_references()
        # Checked apart, with ties broken as the library breaks them: 36 M
        # random float32 weights hold equal magnitudes.
        want_masks, _ = numpy_update(kernels, masks, grads, args.death_rate, exact=True)
        got = host([mk.mask.value for mk in cb.masked_kernels])
        agrees = agrees and all(np.array_equal(a, b) for a, b in zip(got, want_masks))
        advance()
        seconds, _ = timed(lambda: cb.update_topology(death_rate=args.death_rate))
        figures["with_gradient"].append(seconds)
        seconds, _ = timed(lambda: model.train_on_batch(*batch))
        figures["train_step"].append(seconds)
        log(f"{model_name} repeat {repeat + 1}: update {figures['update'][-1]:.3f} s, "
            f"numpy {figures['numpy'][-1]:.3f} s, with gradient "
            f"{figures['with_gradient'][-1]:.3f} s, train step {seconds:.3f} s")
    update, numpy_s = median(figures["update"]), median(figures["numpy"])
    same_writes_s = median(figures["numpy_same_writes"])
    with_gradient, step = median(figures["with_gradient"]), median(figures["train_step"])
    return {
        "parameters": int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
        "masked_layers": len(cb.masked_kernels),
        "overall_density": ft.masking.overall_density(model),
        "first_update_s": first_s,
        "update_s": update,
        "numpy_reference_s": numpy_s,
        "update_over_numpy": update / numpy_s,
        "numpy_same_writes_s": same_writes_s,
        "update_over_numpy_same_writes": update / same_writes_s,
        "reference_agrees": bool(agrees),
        "update_with_gradient_s": with_gradient,
        "train_step_s": step,
        "update_with_gradient_in_steps": with_gradient / step,
        "samples_s": figures,
    }


def run_single(args):
    """This process's backend: every model."""
    result = {"environment": _common.environment(), "models": {}}
    for model_name in args.models:
        result["models"][model_name] = measure(args, model_name)
    return result


def goals(per_backend):
    rows = []
    for backend, result in per_backend.items():
        for model_name, figures in result.get("models", {}).items():
            rows.append({"backend": backend, "model": model_name, "goal":
                         "update_over_numpy <= 1", "value": figures["update_over_numpy"],
                         "met": figures["update_over_numpy"] <= 1.0})
            rows.append({"backend": backend, "model": model_name, "goal":
                         "update_with_gradient_in_steps <= 1.2",
                         "value": figures["update_with_gradient_in_steps"],
                         "met": figures["update_with_gradient_in_steps"] <= 1.2})
            if model_name == "wrn-28-10":
                limit = ORIGINAL_WRN_28_10_S / 3
                rows.append({"backend": backend, "model": model_name,
                             "goal": f"update_s <= {limit:.2f} (original {ORIGINAL_WRN_28_10_S} s / 3)",
                             "value": figures["update_s"], "met": figures["update_s"] <= limit})
    return rows


def run(args):
    if args.single:
        return run_single(args)
    per_backend = {}
    cpus = _pinned_cpus(args.threads)
    for backend in args.backends:
        log(f"backend {backend} ({args.threads} thread(s), CPUs {cpus})")
        command = [sys.executable, os.path.abspath(__file__), "--single", backend,
                   "--models", ",".join(args.models), "--density", str(args.density),
                   "--death_rate", str(args.death_rate), "--batch_size", str(args.batch_size),
                   "--repeats", str(args.repeats), "--seed", str(args.seed)]
        env = dict(_limit_threads(args.threads), KERAS_BACKEND=backend)
        pin = None if cpus is None else lambda: os.sched_setaffinity(0, cpus)
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True,
                              preexec_fn=pin)
        if done.returncode:
            per_backend[backend] = {"error": f"exit status {done.returncode} (see stderr)"}
            continue
        result = json.loads(done.stdout)
        result.pop("wall_s", None)
        per_backend[backend] = result
    return {"benchmark": "topology_update", "density": args.density,
            "death_rate": args.death_rate, "batch_size": args.batch_size,
            "threads": args.threads, "cpus": cpus, "repeats": args.repeats,
            "backends": per_backend, "goals": goals(per_backend)}


def main(argv=None):
    return _common.json_main(parse_args, run, argv)


if __name__ == "__main__":
    main()
