"""What the benchmark scripts share: the record of where a figure was
measured, and a `main` that prints one JSON object.

The benchmarks run as scripts (`python benchmarks/x.py`) and are loaded by
file path in the tests, so each puts this folder on `sys.path` to import it.
"""

import contextlib
import json
import os
import platform
import sys
import time


def environment():
    """Library versions, backend, devices, CPUs and load of this process:
    what a figure depends on besides the code (any Keras backend)."""
    import keras

    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus_usable = os.cpu_count()
    env = {
        "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()],
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpus_usable,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        # XLA's options can change its programs' speed (its CPU schedule
        # once cost the topology update 10%: benchmarks/RESULTS.md).
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    if env["backend"] == "jax":
        import jax
        import jaxlib

        env.update(jax_version=jax.__version__, jaxlib_version=jaxlib.__version__,
                   devices=[str(d) for d in jax.devices()])
    elif env["backend"] == "torch":
        import torch

        env.update(torch_version=torch.__version__,
                   devices=["cuda"] if torch.cuda.is_available() else ["cpu"])
    else:
        import tensorflow as tf

        env.update(tensorflow_version=tf.__version__,
                   devices=[d.name for d in tf.config.list_logical_devices()])
    accelerators = [d for d in env["devices"]
                    if any(k in d.lower() for k in ("gpu", "tpu", "cuda"))]
    env["device"] = accelerators[0] if accelerators else env["devices"][0]
    return env


def json_main(parse_args, run, argv=None):
    """Runs `run(parse_args(argv))` with everything the libraries print sent
    to stderr, then prints its result, with `wall_s`, as JSON on stdout."""
    args = parse_args(argv)
    start = time.perf_counter()
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = run(args)
    result["wall_s"] = time.perf_counter() - start
    json.dump(result, stdout, indent=2)
    stdout.write("\n")
    stdout.flush()
    return result
