r"""Exports the tickets of a run directory as one TensorFlow SavedModel.

    freetickets-export --run_dir runs/edst --output exported/edst
    python -m freetickets_tf.scripts.export --run_dir runs/dst --output out \
        --allow_partial

The SavedModel runs the whole ensemble in one graph: its `serving_default`
signature takes a float32 batch and returns the ensemble's `probabilities`
and the `member_probabilities`. Masks are folded into plain kernels, so
serving it needs TensorFlow only. An existing SavedModel at `--output` is
replaced once the new one is complete.
"""

import os

from absl import app
from absl import flags

from freetickets_tf.scripts import run_flags  # noqa: F401  --run_dir, --allow_partial
from freetickets_tf.scripts.console import quiet_tensorflow
from freetickets_tf.scripts.console import run_app

FLAGS = flags.FLAGS

flags.DEFINE_string("output", None, "Directory of the SavedModel to write.")


def main(argv):
    del argv
    quiet_tensorflow()
    from freetickets_tf.ensemble_model import EnsembleModel
    from freetickets_tf.serving import export_saved_model

    try:
        ensemble = EnsembleModel.from_run(
            FLAGS.run_dir, allow_partial=FLAGS.allow_partial
        )
    except ValueError as error:
        raise app.UsageError(f"--run_dir: {error}") from error
    try:
        export_saved_model(ensemble, FLAGS.output, verbose=False)
    except ValueError as error:
        raise app.UsageError(f"--output: {error}") from error
    print(
        f"Exported {ensemble.num_members} members of {FLAGS.run_dir}: input shape "
        f"{ensemble.member_input_shape}, {ensemble.num_classes} classes, outputs "
        "'probabilities' and 'member_probabilities' (signature 'serving_default')"
        f" -> {os.path.abspath(FLAGS.output)}"
    )


def run():
    """Console-script entry point (`freetickets-export`)."""
    # Required only on the command line, so that importing this module (as the
    # tests do) puts no constraint on other users of the global flags.
    flags.mark_flags_as_required(["run_dir", "output"])
    run_app(main, __name__, "freetickets_tf.scripts.run_flags")


if __name__ == "__main__":
    run()
