r"""Trains a FreeTickets ensemble and reports accuracy, calibration and cost.

Runs on the bundled digits by default, so it needs no download:

    freetickets-train                     # EDST ensemble, then the baselines
    freetickets-train --nocompare         # the EDST ensemble only
    freetickets-train --method dst --num_members 5 --density 0.1

For the chosen method it prints accuracy, NLL and ECE of the ensemble and of
each member, and the ensemble's training FLOPs relative to one dense model
trained for `--epochs`. With `--compare` (the default) it then trains the
dense single model, the dense deep ensemble, the static sparse ensemble and
the DST ensemble on the same data and prints one table of all of them.

Tickets go to `<output_dir>/<method>/` (`ticket_<m>.keras` + `tickets.json`).
Running the same command again resumes: finished tickets are reused.
"""

import os
import shutil
import sys

from absl import app
from absl import flags

from freetickets_tf.scripts import common_flags  # noqa: F401  --seed, --verbose
from freetickets_tf.scripts.console import quiet_tensorflow

METHODS = ("edst", "dst", "static", "pf", "deep_ensemble", "dense")
BASELINES = ("dense", "deep_ensemble", "static", "dst")

FLAGS = flags.FLAGS

flags.DEFINE_enum("method", "edst", METHODS, "Ensemble method.")
flags.DEFINE_bool("compare", True, "Also train the baselines and print one table.")
flags.DEFINE_enum("dataset", "digits", ["digits"], "Training data.")
flags.DEFINE_string(
    "model", "mlp-cifar10",
    "Model name (see freetickets_tf.models); the default 1024-512 MLP is wide "
    "enough for sparse tickets to pay off on the digits.")
flags.DEFINE_integer("num_members", 3, "Tickets per ensemble (M).")
flags.DEFINE_float("density", 0.2, "Overall fraction of active weights, in (0, 1].")
flags.DEFINE_enum("distribution", "erk", ["erk", "er", "uniform"], "Layer densities.")
flags.DEFINE_integer("epochs", 30, "Epochs of each dense/DST/static member run.")
flags.DEFINE_integer(
    "edst_epochs", None,
    "Epochs of the one EDST run (default 1.8 x --epochs, as 450 vs 250 in the paper).")
flags.DEFINE_integer(
    "exploration_epochs", None,
    "EDST exploration epochs (default 0.6 x --epochs, as 150 vs 250 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("lr", 0.05, "Initial learning rate of SGD with momentum 0.9.")
flags.DEFINE_float("weight_decay", 5e-4, "SGD weight decay.")
flags.DEFINE_integer("update_frequency", 50, "Optimizer steps between topology updates.")
flags.DEFINE_float("death_rate", 0.5, "Fraction of active weights moved per update.")
flags.DEFINE_float("large_death_rate", 0.8, "EDST global-exploration death rate q.")
flags.DEFINE_enum("death_rate_schedule", "constant", ["constant", "cosine"], "Death-rate schedule.")
flags.DEFINE_enum("death", "magnitude", ["magnitude", "set"], "Death criterion.")
flags.DEFINE_enum("growth", "gradient", ["gradient", "random", "momentum"], "Growth criterion.")
flags.DEFINE_integer(
    "snapshot_every", None,
    "Keep a snapshot every this many epochs (for freetickets-evaluate --modes tsne).")
flags.DEFINE_string("output_dir", "runs", "Run directories go under this folder.")
flags.DEFINE_bool("overwrite", False, "Delete existing run directories first.")


def _config(method):
    import freetickets_tf as ft

    epochs = FLAGS.epochs
    if method == "edst":
        epochs = FLAGS.edst_epochs or round(1.8 * FLAGS.epochs)
    return ft.ensembles.EnsembleConfig(
        num_members=FLAGS.num_members,
        epochs=epochs,
        exploration_epochs=FLAGS.exploration_epochs or round(0.6 * FLAGS.epochs),
        reference_epochs=FLAGS.epochs,
        density=FLAGS.density,
        distribution=FLAGS.distribution,
        update_frequency=FLAGS.update_frequency,
        death_rate=FLAGS.death_rate,
        death_rate_schedule=FLAGS.death_rate_schedule,
        large_death_rate=FLAGS.large_death_rate,
        death=FLAGS.death,
        growth=FLAGS.growth,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.lr,
        weight_decay=FLAGS.weight_decay,
        finetune_epochs=max(1, FLAGS.epochs // 3),
        seed=FLAGS.seed,
        snapshot_every=FLAGS.snapshot_every,
        verbose=FLAGS.verbose,
    )


def _row(name, scores, flops=""):
    return (
        f"{name:<16} {scores['accuracy']:>8.4f} {scores['nll']:>8.4f} "
        f"{scores['ece']:>8.4f} {flops:>12}"
    )


HEADER = f"{'':<16} {'Accuracy':>8} {'NLL':>8} {'ECE':>8} {'Train FLOPs':>12}"


def main(argv):
    del argv
    quiet_tensorflow()
    import freetickets_tf as ft

    methods = [FLAGS.method]
    if FLAGS.compare:
        methods = [m for m in BASELINES if m != FLAGS.method] + methods
    configs = {method: _config(method) for method in methods}
    try:
        for method, config in configs.items():
            config.validate(method)  # every error before any training
        if FLAGS.model not in ft.models.available_models():
            ft.models.get(FLAGS.model, num_classes=10, input_shape=(8, 8, 1))
    except ValueError as error:
        raise app.UsageError(str(error)) from error

    (x_train, y_train), (x_test, y_test) = ft.data.load_digits(seed=FLAGS.seed)
    (x_fit, y_fit), (x_val, y_val) = ft.data.split(x_train, y_train, 0.1, FLAGS.seed)

    def build():
        return ft.models.get(FLAGS.model, num_classes=10, input_shape=x_train.shape[1:])

    results = {}
    for method in methods:
        run_dir = os.path.join(FLAGS.output_dir, method)
        if FLAGS.overwrite and os.path.isdir(run_dir):
            shutil.rmtree(run_dir)
        print(f"\n=== {method} -> {run_dir}", flush=True)
        run = ft.ensembles.train_ensemble(
            method, build, (x_fit, y_fit), (x_val, y_val), configs[method], run_dir
        )
        ensemble = run.ensemble_model(return_member_probabilities=True)
        report = ft.evaluation.evaluate_ensemble(ensemble, x_test, y_test)
        results[method] = (run, report)

    run, report = results[FLAGS.method]
    print(f"\n{FLAGS.method} ensemble on the digits test set "
          f"({len(x_test)} images), density {FLAGS.density}:")
    print(HEADER)
    print(_row("ensemble", report["ensemble"], f"{run.relative_training_flops:.2f}x"))
    for m, scores in enumerate(report["members"]):
        print(_row(f"member {m}", scores))
    print(f"Training FLOPs: {run.training_flops:.3e}, "
          f"{run.relative_training_flops:.2f}x one dense model trained "
          f"{FLAGS.epochs} epochs ({run.dense_training_flops:.3e}).")
    if FLAGS.compare:
        print("\nAll methods (ensembles of "
              f"{FLAGS.num_members}; sparse ones at density {FLAGS.density}):")
        print(HEADER)
        for method in methods:
            run, report = results[method]
            print(_row(method, report["ensemble"], f"{run.relative_training_flops:.2f}x"))


def run():
    """Console-script entry point (`freetickets-train`)."""
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
