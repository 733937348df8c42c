"""What the command-line scripts share besides flags."""

import os
import sys

from absl import app
from absl import flags


def quiet_tensorflow():
    """Keeps TensorFlow's retracing and SavedModel chatter (Python absl INFO
    lines) out of the report. (Its C++ lines are quietened before it loads,
    by `freetickets_tf._startup`.)"""
    from absl import logging

    logging.set_verbosity(logging.WARNING)
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


def run_app(main, *flag_modules):
    """Runs an absl `main` as a console script whose expected failures are
    short usage errors: a bad flag value or a `UsageError` raised by `main`
    prints one line on stderr and exits with status 2, as argparse does,
    instead of absl's module docstring, flag list and status 1.

    Args:
        main: The script's `main(argv)`.
        *flag_modules: Modules whose flags `--help` lists
            (`show_flags_in_help`).
    """
    show_flags_in_help(*flag_modules)

    def parse_flags(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            fail(f"{error} (--help lists the flags)")

    def checked_main(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            fail(str(error))

    app.run(checked_main, argv=sys.argv, flags_parser=parse_flags)
