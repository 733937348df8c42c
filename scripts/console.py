"""What the command-line scripts share besides flags."""

import os
import sys

from absl import flags


def quiet_tensorflow():
    """Keeps TensorFlow's start-up and retracing chatter out of the report."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


def show_flags_in_help(*modules):
    """Makes `--help` list the flags `modules` define (module names).

    absl's `--help` lists the key flags of the main module, which it takes
    to be `sys.argv[0]`: for a console script that is the installed wrapper,
    which defines none, so `--help` said only "Try --helpfull".
    """
    for module in modules:
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def fail(message, status=2):
    """Ends a script with `message` as a short error on stderr and exit
    status 2: for expected failures, which need no traceback."""
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)
