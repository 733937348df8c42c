r"""Evaluates the ensemble of a run directory and writes a report.

    freetickets-evaluate --run_dir runs/edst                      # bundled digits
    freetickets-evaluate --run_dir runs/edst --modes predict,calibration,kd,ood \
        --ood noise
    freetickets-evaluate --run_dir runs/wrn --data cifar.npz \
        --modes corruption --corruption_source cifar10 --data_dir ~/tensorflow_datasets
    freetickets-evaluate --run_dir runs/rn50 --data imagenet2012 --data_dir DIR  # streamed
    freetickets-train --snapshot_every 2 && \
        freetickets-evaluate --run_dir runs/edst --modes tsne

Modes (see `freetickets_tf.evaluation`): predict, calibration, disagreement,
kd, ood, corruption, tsne. Writes `report.json`, `report.md` and the figures
to `--report_dir` (default `<run_dir>/report`) and prints `report.md`.
"""

import os
import sys

from absl import app
from absl import flags

from freetickets_tf.scripts import common_flags  # noqa: F401  --seed, --verbose, --data_dir
from freetickets_tf.scripts import run_flags  # noqa: F401  --run_dir, --allow_partial
from freetickets_tf.scripts.console import quiet_tensorflow
from freetickets_tf.scripts.console import run_app

FLAGS = flags.FLAGS

# Test sets read as a tf.data stream (`freetickets_tf.data.load(...).test`).
STREAMED = ("cifar10", "cifar100", "svhn_cropped", "imagenet2012")
# Noise images for mode ood when the test set is a stream of unknown length.
NOISE_EXAMPLES = 10_000

flags.DEFINE_list("modes", ["predict", "calibration", "disagreement", "kd"],
                  "Evaluation modes: predict, calibration, disagreement, kd, ood, "
                  "corruption, tsne.")
flags.DEFINE_string("data", "digits",
                    "Test set: 'digits' (bundled; the test split of freetickets-train "
                    "with the same --seed), an .npz file with x_test / y_test, or a "
                    f"tensorflow-datasets name ({', '.join(STREAMED)}) whose test "
                    "split is streamed from --data_dir with the run's normalisation, "
                    "scored batch by batch and never held in memory.")
flags.DEFINE_list("ood", ["noise"],
                  "Out-of-distribution sets for mode ood: 'noise' (uniform noise "
                  "images), .npz files (their x_test) or tensorflow-datasets names "
                  "such as svhn_cropped (their test split), prepared offline in "
                  "--data_dir.")
flags.DEFINE_string("corruption_source", "cifar10",
                    "Mode corruption: 'cifar10' (tensorflow-datasets' "
                    "cifar10_corrupted) or a CIFAR-C directory (e.g. CIFAR-100-C).")
flags.DEFINE_list("corruptions", None, "Subset of the 15 corruptions (default: all).")
flags.DEFINE_list("severities", None, "Subset of the severities 1..5 (default: all).")
flags.DEFINE_string("report_dir", None, "Report directory (default <run_dir>/report).")
flags.DEFINE_string("tensorboard_dir", None, "Also write the scores to TensorBoard here.")
flags.DEFINE_integer("num_bins", 15, "ECE bins.")
flags.DEFINE_integer("tsne_examples", 500, "Test examples per snapshot for t-SNE.")


def _test_set(ft, input_shape, preprocessing):
    """`(x, y)` arrays, or `(dataset of (x, y) batches, None)`."""
    if FLAGS.data == "digits":
        return ft.data.load_digits(seed=FLAGS.seed)[1]
    if FLAGS.data in STREAMED:
        # The run's own normalisation, so that the stream is what it trained on.
        normalization = None if not preprocessing else (
            preprocessing.get("mean"), preprocessing.get("std"))
        try:
            data = ft.data.load(FLAGS.data, data_dir=FLAGS.data_dir, validation_fraction=0,
                                normalization=normalization, eval_batch_size=256)
        except (FileNotFoundError, ValueError) as error:
            raise app.UsageError(f"--data={FLAGS.data}: {error}") from error
        if not preprocessing:  # a run this library did not train: say what we assume
            print(f"--data={FLAGS.data}: the run records no preprocessing; its test "
                  f"split is normalised with {FLAGS.data}'s own mean and std.",
                  file=sys.stderr, flush=True)
        if tuple(data.input_shape) != tuple(input_shape):
            raise app.UsageError(
                f"--data={FLAGS.data}: its images are {tuple(data.input_shape)}, the "
                f"run's members take {tuple(input_shape)}.")
        return data.test, None
    image_shape = tuple(input_shape) if len(input_shape) == 3 else None
    try:
        return ft.data.load_npz(FLAGS.data, image_shape)[1]
    except (OSError, ValueError) as error:
        raise app.UsageError(
            f"--data={FLAGS.data}: {error} (expected 'digits' or an .npz file "
            "of x_test, y_test)") from error


def _ood_sets(ft, x_test, input_shape):
    import numpy as np

    count = NOISE_EXAMPLES if hasattr(x_test, "element_spec") else len(x_test)
    sets = {}
    for name in FLAGS.ood:
        if name == "noise":
            rng = np.random.default_rng(FLAGS.seed)
            sets[name] = rng.uniform(size=(count, *input_shape)).astype("float32")
        elif name.endswith(".npz"):
            image_shape = tuple(input_shape) if len(input_shape) == 3 else None
            try:
                sets[os.path.basename(name)] = ft.data.load_npz(name, image_shape)[1][0]
            except (OSError, ValueError) as error:
                raise app.UsageError(f"--ood={name}: {error}") from error
        else:  # a tensorflow-datasets name, read offline from --data_dir
            image_shape = tuple(input_shape) if len(input_shape) == 3 else None
            try:
                sets[name] = ft.data.load_tfds_images(
                    name, "test", data_dir=FLAGS.data_dir, image_shape=image_shape,
                    max_examples=count)[0]
            except (FileNotFoundError, ValueError) as error:
                raise app.UsageError(f"--ood: {error}") from error
    return sets


def main(argv):
    del argv
    quiet_tensorflow()
    import freetickets_tf as ft

    try:
        ensemble = ft.EnsembleModel.from_run(FLAGS.run_dir,
                                             allow_partial=FLAGS.allow_partial)
    except ValueError as error:
        raise app.UsageError(f"--run_dir: {error}") from error
    report_dir = FLAGS.report_dir
    if report_dir and os.path.exists(report_dir) and not os.path.isdir(report_dir):
        raise app.UsageError(f"--report_dir={report_dir}: is a file, not a directory.")
    severities = []
    for severity in FLAGS.severities or ():
        try:
            severities.append(int(severity))
        except ValueError:
            raise app.UsageError(
                f"--severities: {severity!r} is not a severity; expected integers "
                "1..5, e.g. --severities=1,3,5.") from None
    input_shape = ensemble.member_input_shape
    x_test, y_test = _test_set(ft, input_shape, ensemble.preprocessing)
    ood = _ood_sets(ft, x_test, input_shape) if "ood" in FLAGS.modes else None
    output_dir = FLAGS.report_dir or os.path.join(FLAGS.run_dir, "report")
    try:
        ft.evaluation.evaluate(
            FLAGS.run_dir, x_test, y_test, modes=FLAGS.modes, output_dir=output_dir,
            ood_data=ood, corruption_source=FLAGS.corruption_source,
            corruptions=FLAGS.corruptions,
            severities=severities or None,
            data_dir=FLAGS.data_dir, tsne_examples=FLAGS.tsne_examples,
            num_bins=FLAGS.num_bins, log_dir=FLAGS.tensorboard_dir, seed=FLAGS.seed,
            verbose=FLAGS.verbose)
    except (ValueError, FileNotFoundError) as error:
        raise app.UsageError(str(error)) from error
    with open(os.path.join(output_dir, "report.md")) as f:
        print(f.read())
    print(f"Report: {os.path.abspath(output_dir)}")


def run():
    """Console-script entry point (`freetickets-evaluate`)."""
    flags.mark_flags_as_required(["run_dir"])
    run_app(main, __name__, "freetickets_tf.scripts.common_flags",
            "freetickets_tf.scripts.run_flags")


if __name__ == "__main__":
    run()
