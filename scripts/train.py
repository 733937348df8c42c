r"""Trains a FreeTickets ensemble and reports accuracy, calibration and cost.

Runs on the bundled digits by default, so it needs no download:

    freetickets-train                     # EDST ensemble, then the baselines
    freetickets-train --nocompare         # the EDST ensemble only
    freetickets-train --method dst --num_members 5 --density 0.1

The paper's runs (tensorflow-datasets data prepared in `--data_dir`):

    freetickets-train --flagfile=scripts/flags/wrn28x10_cifar10_edst.cfg --data_dir=DIR
    freetickets-train --dataset cifar100 --method dst --strategy mirrored
    TF_CONFIG=... freetickets-train --flagfile=... --strategy multi_worker  # each machine
    freetickets-train --flagfile=scripts/flags/resnet50_imagenet_edst.cfg --data_dir=DIR

Settings left unset take the preset of `--dataset` (see `PRESETS`): for
`cifar10` / `cifar100` the paper's Wide ResNet-28-10 setting (docs/algorithms.md §4), for
`imagenet2012` its ResNet-50 setting, for the bundled `digits` a small
setting that trains in minutes on a CPU. Any flag overrides its preset.

For the chosen method it prints accuracy, NLL and ECE of the ensemble and of
each member on the test set, and the ensemble's training FLOPs relative to
one dense model trained for `--epochs`. With `--compare` (the default on
`digits`) it then trains the dense single model, the dense deep ensemble,
the static sparse ensemble and the DST ensemble on the same data and prints
one table of all of them.

Tickets go to `<output_dir>/<method>/` (`ticket_<m>.keras` + `tickets.json`).
The full training state is saved there after every epoch: running the same
command again after an interruption continues where it stopped.
"""

import os
import re
import shutil

from absl import app
from absl import flags

from freetickets_tf.scripts import common_flags  # noqa: F401  --seed, --verbose, --data_dir
from freetickets_tf.scripts.console import fail
from freetickets_tf.scripts.console import quiet_tensorflow
from freetickets_tf.scripts.console import run_app

METHODS = ("edst", "dst", "static", "pf", "gmp", "deep_ensemble", "dense")
BASELINES = ("dense", "deep_ensemble", "static", "dst")
DATASETS = ("digits", "cifar10", "cifar100", "svhn_cropped", "imagenet2012", "folder")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# The library's choices, as literals so that defining the flags imports no
# library module (tests/scripts/test_train.py checks that they match).
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
WEIGHT_DECAY_SCOPES = ("all", "kernels")
INITIALIZERS = ("original", "glorot")
GROWTH_BATCHES = ("fresh", "last")
GROWTH_MODES = ("gradient", "random", "momentum")
DEATH_RULES = ("magnitude", "set")
DEATH_RATE_SCHEDULES = ("constant", "cosine")
DISTRIBUTIONS = ("erk", "er", "uniform")

_CIFAR = {
    "model": "wrn-28-10", "epochs": 250, "edst_epochs": 450, "exploration_epochs": 150,
    "batch_size": 128, "lr": 0.1, "weight_decay": 5e-4, "update_frequency": 1000,
    "compare": False,
}
# Defaults of the settings that depend on the data set (docs/algorithms.md §4).
PRESETS = {
    # A smoke run, small enough for two CPU cores in minutes (on data this
    # easy the dense model wins; the README says where the method pays off).
    "digits": {
        "model": "mlp-cifar10", "epochs": 30, "edst_epochs": None,
        "exploration_epochs": None, "batch_size": 64, "lr": 0.05,
        "weight_decay": 5e-4, "update_frequency": 50, "compare": True,
    },
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "svhn_cropped": _CIFAR,
    "folder": {**_CIFAR, "model": "resnet18"},
    "imagenet2012": {
        "model": "resnet50", "epochs": 100, "edst_epochs": 310,
        "exploration_epochs": 100, "batch_size": 128, "lr": 0.1,
        "weight_decay": 1e-4, "update_frequency": 4000, "compare": False,
        "label_smoothing": 0.1, "warmup_epochs": 5, "lr_milestones": [0.3, 0.6, 0.9],
        "exploration_milestones": [30, 60, 90], "phase_milestones": [30, 60],
        "refinement_lrs": [0.01, 0.001, 0.0001], "death_rate_schedule": "cosine",
    },
}
# Settings only some methods use: setting one for another method is an error.
_METHOD_FLAGS = {
    "edst_epochs": ("edst",),
    "exploration_epochs": ("edst",),
    "large_death_rate": ("edst",),
    "exploration_milestones": ("edst",),
    "phase_milestones": ("edst",),
    "refinement_lrs": ("edst",),
    "finetune_epochs": ("pf",),
    "finetune_lr": ("pf",),
    "pruning_begin": ("gmp",),
    "pruning_end": ("gmp",),
    "pruning_frequency": ("gmp",),
    "pruning_power": ("gmp",),
    "update_frequency": ("edst", "dst"),
    "update_end_fraction": ("dst",),
    "death_rate": ("edst", "dst"),
    "death_rate_schedule": ("edst", "dst"),
    "death": ("edst", "dst"),
    "growth": ("edst", "dst"),
    "prune_dense_layers": ("edst", "dst"),
    "growth_batch": ("edst", "dst"),
}

FLAGS = flags.FLAGS

flags.DEFINE_enum("method", "edst", METHODS, "Ensemble method.")
flags.DEFINE_bool("compare", None, "Also train the baselines and print one table "
                  "(preset: on for digits).")
flags.DEFINE_enum("dataset", "digits", DATASETS,
                  "Training data: the bundled digits, a tensorflow-datasets name "
                  "(prepared in --data_dir), or `folder` (--image_folder).")
flags.DEFINE_string("image_folder", None,
                    "--dataset=folder: a folder with one sub-folder of images per class.")
flags.DEFINE_string("image_folder_test", None,
                    "--dataset=folder: test images, in the same class sub-folders "
                    "(without it, the report is on the validation split).")
flags.DEFINE_integer("image_size", 32, "--dataset=folder: images are resized to this.")
flags.DEFINE_float("validation_fraction", 0.1, "Training data held out for selection.")
flags.DEFINE_string("model", None, "Model name (see freetickets_tf.models.available_models()).")
flags.DEFINE_integer("num_members", 3, "Tickets per ensemble (M).")
flags.DEFINE_float("density", 0.2, "Overall fraction of active weights, in (0, 1].")
flags.DEFINE_enum("distribution", "erk", DISTRIBUTIONS,
                  "Sparse initialisation: how the density is spread over layers.")
flags.DEFINE_bool("rescale_init", False,
                  "Scale sparse initial weights by 1/sqrt(layer density).")
flags.DEFINE_integer("epochs", None, "Epochs of each dense/DST/static/PF member run.")
flags.DEFINE_integer("edst_epochs", None,
                     "Epochs of the one EDST run (default 1.8 x --epochs, as 450 vs 250).")
flags.DEFINE_integer("exploration_epochs", None,
                     "EDST exploration epochs (default 0.6 x --epochs, as 150 vs 250).")
flags.DEFINE_integer("batch_size", None, "Global batch size (all replicas together).")
flags.DEFINE_float("lr", None, "Initial learning rate of SGD.")
flags.DEFINE_list("lr_milestones", None,
                  "Member runs: fractions of the epochs where the rate drops x 0.1 "
                  "(default 0.5,0.75).")
flags.DEFINE_integer("warmup_epochs", None, "Epochs of linear learning-rate warm-up.")
flags.DEFINE_list("refinement_lrs", None,
                  "EDST: the learning rates of each refinement phase (default lr/10,lr/100).")
flags.DEFINE_list("phase_milestones", None,
                  "EDST: epochs into each phase where the next refinement rate starts "
                  "(default mid-phase).")
flags.DEFINE_list("exploration_milestones", None,
                  "EDST: exploration epochs where its rate drops x 0.1.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum, in [0, 1).")
flags.DEFINE_float("weight_decay", None, "SGD weight decay.")
flags.DEFINE_enum("weight_decay_mode", "coupled", WEIGHT_DECAY_MODES,
                  "coupled: torch.optim.SGD's L2 in the gradient before the momentum, "
                  "as the original; decoupled: Keras' SGD(weight_decay=...).")
flags.DEFINE_enum("weight_decay_scope", "all", WEIGHT_DECAY_SCOPES,
                  "Parameters weight decay reaches: all (the original) or kernels "
                  "(not biases or normalisation parameters).")
flags.DEFINE_enum("initializer", "original", INITIALIZERS,
                  "Initial weights: the original model's (PyTorch's) or Keras' glorot.")
flags.DEFINE_float("label_smoothing", None, "Label smoothing of the cross-entropy.")
flags.DEFINE_integer("update_frequency", None, "Optimizer steps between topology updates.")
flags.DEFINE_float("update_end_fraction", None, "DST: no update after this fraction of steps.")
flags.DEFINE_float("death_rate", 0.5, "Fraction of active weights moved per update.")
flags.DEFINE_float("large_death_rate", 0.8, "EDST global-exploration death rate q.")
flags.DEFINE_enum("death_rate_schedule", None, DEATH_RATE_SCHEDULES,
                  "Death-rate schedule (default constant; cosine for ImageNet).")
flags.DEFINE_enum("death", "magnitude", DEATH_RULES, "Death criterion.")
flags.DEFINE_enum("growth", "gradient", GROWTH_MODES,
                  "Growth criterion: gradient (RigL), random (SET), momentum.")
flags.DEFINE_bool("reset_optimizer_state", True,
                  "Zero the optimizer slots of regrown weights (RigL); off: the original.")
flags.DEFINE_bool("prune_dense_layers", False,
                  "Rewire layers at density 1 too (the original's quirk).")
flags.DEFINE_enum("growth_batch", "fresh", GROWTH_BATCHES,
                  "Batch of the growth gradient: a fresh one per update, or the last "
                  "training batch (the original).")
flags.DEFINE_integer("finetune_epochs", None, "PF: fine-tuning epochs (default epochs / 3).")
flags.DEFINE_float("finetune_lr", 0.001, "PF: constant fine-tuning learning rate.")
flags.DEFINE_float("pruning_begin", 0.0,
                   "GMP: fraction of each member's steps where gradual pruning starts.")
flags.DEFINE_float("pruning_end", 0.75,
                   "GMP: fraction where it reaches the final sparsity (1 - --density).")
flags.DEFINE_integer("pruning_frequency", 100, "GMP: optimizer steps between pruning steps.")
flags.DEFINE_float("pruning_power", 3.0, "GMP: exponent of the polynomial sparsity schedule.")
flags.DEFINE_integer("snapshot_every", None,
                     "Keep a snapshot every this many epochs (for evaluate --modes tsne).")
flags.DEFINE_enum("strategy", "default", STRATEGIES,
                  "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.")
flags.DEFINE_integer("cpu_devices", None,
                     "Split the CPU into this many devices (try --strategy without GPUs).")
flags.DEFINE_string("tpu", None, "--strategy=tpu: the TPU name or address.")
flags.DEFINE_enum("precision", "float32", PRECISIONS, "Keras dtype policy.")
flags.DEFINE_string("output_dir", "runs", "Run directories go under this folder.")
flags.DEFINE_bool("overwrite", False, "Delete existing run directories first.")


def _setting(name):
    """The flag's value, else the dataset's preset, else None."""
    value = FLAGS[name].value
    if value is None:
        value = PRESETS[FLAGS.dataset].get(name)
    return value


def _numbers(name, kind):
    value = _setting(name)
    if value is None:
        return None
    try:
        return [kind(v) for v in value]
    except ValueError:
        raise app.UsageError(
            f"--{name}={','.join(map(str, value))}: expected a comma-separated "
            f"list of {kind.__name__}s.") from None


# Integer flags and their smallest value, checked as typed: a value derived
# from a bad one (EDST's 1.8 x --epochs) would name the wrong number.
_MINIMUMS = {"epochs": 1, "edst_epochs": 1, "exploration_epochs": 1, "batch_size": 1,
             "update_frequency": 1, "finetune_epochs": 1, "snapshot_every": 1,
             "warmup_epochs": 0, "image_size": 1, "cpu_devices": 1, "num_members": 1,
             "pruning_frequency": 1}


def _check_method_flags():
    """Settings given for a method that has no use for them are a mistake."""
    for name, minimum in _MINIMUMS.items():
        value = FLAGS[name].value
        if value is not None and value < minimum:
            raise app.UsageError(
                f"--{name}={value}: expected an integer >= {minimum}.")
    for name, users in _METHOD_FLAGS.items():
        if FLAGS[name].present and FLAGS.method not in users:
            raise app.UsageError(
                f"--{name} is a setting of --method in {list(users)}, not of "
                f"--method={FLAGS.method}. Drop it, or pick one of those methods.")
    for name in ("image_folder", "image_folder_test"):
        if getattr(FLAGS, name) and FLAGS.dataset != "folder":
            raise app.UsageError(f"--{name} needs --dataset=folder.")
    if FLAGS.dataset == "folder" and not FLAGS.image_folder:
        raise app.UsageError("--dataset=folder needs --image_folder=PATH.")
    if FLAGS.cpu_devices and FLAGS.strategy not in ("mirrored", "multi_worker"):
        raise app.UsageError("--cpu_devices splits the CPU for --strategy=mirrored "
                             "or multi_worker; it has no use without one.")


def _config(method):
    import freetickets_tf as ft

    epochs = _setting("epochs")
    exploration = _setting("exploration_epochs") or round(0.6 * epochs)
    if method == "edst":
        epochs = _setting("edst_epochs") or round(1.8 * epochs)
    refinement = _numbers("refinement_lrs", float)
    phase_milestones = _numbers("phase_milestones", int)
    return ft.recipes.EnsembleConfig(
        num_members=FLAGS.num_members,
        epochs=epochs,
        exploration_epochs=exploration,
        reference_epochs=_setting("epochs"),
        density=FLAGS.density,
        distribution=FLAGS.distribution,
        rescale_init=FLAGS.rescale_init,
        update_frequency=_setting("update_frequency"),
        update_end_fraction=FLAGS.update_end_fraction if method == "dst" else None,
        death_rate=FLAGS.death_rate,
        death_rate_schedule=_setting("death_rate_schedule") or "constant",
        large_death_rate=FLAGS.large_death_rate,
        death=FLAGS.death,
        growth=FLAGS.growth,
        reset_optimizer_state=FLAGS.reset_optimizer_state,
        prune_dense_layers=FLAGS.prune_dense_layers,
        growth_batch=FLAGS.growth_batch,
        batch_size=_setting("batch_size"),
        learning_rate=_setting("lr"),
        lr_milestones=tuple(_numbers("lr_milestones", float) or (0.5, 0.75)),
        warmup_epochs=_setting("warmup_epochs") or 0,
        refinement_learning_rates=None if refinement is None else tuple(refinement),
        phase_milestones=(
            tuple(phase_milestones) if phase_milestones and method == "edst" else None),
        exploration_milestones=(
            tuple(_numbers("exploration_milestones", int) or ())
            if method == "edst" else ()),
        momentum=FLAGS.momentum,
        weight_decay=_setting("weight_decay"),
        weight_decay_mode=FLAGS.weight_decay_mode,
        weight_decay_scope=FLAGS.weight_decay_scope,
        label_smoothing=_setting("label_smoothing") or 0.0,
        finetune_epochs=FLAGS.finetune_epochs or max(1, _setting("epochs") // 3),
        finetune_learning_rate=FLAGS.finetune_lr,
        pruning_begin=FLAGS.pruning_begin,
        pruning_end=FLAGS.pruning_end,
        pruning_frequency=FLAGS.pruning_frequency,
        pruning_power=FLAGS.pruning_power,
        seed=FLAGS.seed,
        snapshot_every=FLAGS.snapshot_every,
        verbose=FLAGS.verbose,
    )


def _load_data():
    """`(train, validation, test, test_name, num_classes, input_shape)`:
    arrays for the digits, a `TrainingSet` and datasets otherwise."""
    import freetickets_tf as ft

    if FLAGS.dataset == "digits":
        (x_train, y_train), test = ft.data.load_digits(seed=FLAGS.seed)
        train, validation = ft.data.split(
            x_train, y_train, FLAGS.validation_fraction, FLAGS.seed)
        return train, validation, test, "test set", 10, x_train.shape[1:]
    common = {"batch_size": _setting("batch_size"),
              "validation_fraction": FLAGS.validation_fraction, "seed": FLAGS.seed}
    if FLAGS.dataset == "folder":
        images = ft.data.image_folder(
            FLAGS.image_folder, (FLAGS.image_size, FLAGS.image_size),
            test_path=FLAGS.image_folder_test, **common)
    else:
        images = ft.data.load(FLAGS.dataset, data_dir=FLAGS.data_dir, **common)
    test, test_name = images.test, "test set"
    if test is None:  # a folder without --image_folder_test
        test, test_name = images.validation, "validation split"
    return (images.train, images.validation, (test, None), test_name,
            images.num_classes, images.input_shape)


def _check_writable(path):
    """`--output_dir` can hold run directories: it, or the first of its
    parents that exists, is a writable directory (nothing is created yet)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--output_dir={path}: {existing} is a file, not a directory.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--output_dir={path}: {existing} is not writable.")


def _remove_run(path):
    """--overwrite: deletes a run directory, unless another process writes it."""
    import freetickets_tf as ft

    holder = ft.tickets.lock_holder(path)
    if holder is not None:
        raise ft.tickets.RunInUseError(
            f"Run directory {path!r} is in use by another process ({holder}); "
            "--overwrite will not delete it under it.")
    shutil.rmtree(path)


def _row(name, scores, flops=""):
    return (
        f"{name:<16} {scores['accuracy']:>8.4f} {scores['nll']:>8.4f} "
        f"{scores['ece']:>8.4f} {flops:>12}"
    )


HEADER = f"{'':<16} {'Accuracy':>8} {'NLL':>8} {'ECE':>8} {'Train FLOPs':>12}"


def _start_devices():
    """Precision and devices, which must be set before any model exists."""
    import keras

    import freetickets_tf as ft

    keras.mixed_precision.set_global_policy(FLAGS.precision)
    if FLAGS.cpu_devices:
        ft.distribute.use_cpu_devices(FLAGS.cpu_devices)
    return ft.distribute.get_strategy(FLAGS.strategy, tpu=FLAGS.tpu)


def main(argv):
    del argv
    quiet_tensorflow()
    import freetickets_tf as ft

    compare = _setting("compare")
    methods = [FLAGS.method]
    if compare:
        methods = [m for m in BASELINES if m != FLAGS.method] + methods
    _check_method_flags()
    model_name = _setting("model")
    try:
        configs = {method: _config(method) for method in methods}
        for method, config in configs.items():
            config.validate(method)  # every error before any training
        if model_name not in ft.models.available_models():
            ft.models.get(model_name, num_classes=10, input_shape=(8, 8, 1),
                          initializer=FLAGS.initializer)
        _check_writable(FLAGS.output_dir)
        strategy = _start_devices()
        ft.distribute.check_batch_size(_setting("batch_size"), strategy)
        run_dirs = {method: ft.distribute.worker_directory(
            os.path.join(FLAGS.output_dir, method), strategy) for method in methods}
        (train, validation, (x_test, y_test), test_name, num_classes,
         input_shape) = _load_data()

        def build():
            return ft.models.get(model_name, num_classes=num_classes,
                                 input_shape=input_shape, initializer=FLAGS.initializer)

        if not FLAGS.overwrite:  # every refusal before any training
            for method in methods:
                ft.recipes.check_resumable(
                    method, build, train, validation, configs[method],
                    os.path.join(FLAGS.output_dir, method), strategy)
    except (ValueError, NotImplementedError) as error:
        message = str(error)
        if "already holds" in message:  # the flags that say it for a script
            message = re.sub(
                r"Use another directory, or delete it( to start over)?\.",
                "Pass --overwrite to start it over, or another --output_dir.", message)
        raise app.UsageError(message) from error
    except FileNotFoundError as error:
        raise app.UsageError(
            f"{error}\nPoint --data_dir at the tensorflow-datasets directory that "
            "holds it.") from error

    replicas = ft.distribute.num_replicas(strategy)
    if FLAGS.verbose:
        print(f"{FLAGS.dataset}: {model_name}, {FLAGS.precision}, "
              f"{replicas} replica(s), global batch {_setting('batch_size')}", flush=True)
    results = {}
    for method in methods:
        own_dir = run_dirs[method]
        print(f"\n=== {method} -> {own_dir}", flush=True)
        try:
            if FLAGS.overwrite and os.path.isdir(own_dir):
                _remove_run(own_dir)
            run = ft.recipes.train_ensemble(
                method, build, train, validation, configs[method],
                os.path.join(FLAGS.output_dir, method), strategy)
        except ft.tickets.RunInUseError as error:
            fail(str(error))
        except FloatingPointError as error:
            fail(f"{error} The run directory {own_dir} keeps the last good epoch.")
        except OSError as error:
            fail(f"cannot write {error.filename or own_dir}: {error.strerror or error}. "
                 f"{own_dir} keeps its last complete state; fix that and run the "
                 "same command again to continue.")
        ensemble = run.ensemble_model(return_member_probabilities=True)
        report = ft.evaluation.evaluate_ensemble(ensemble, x_test, y_test)
        results[method] = (run, report)

    run, report = results[FLAGS.method]
    print(f"\n{FLAGS.method} ensemble on the {FLAGS.dataset} {test_name}, "
          f"density {FLAGS.density}:")
    print(HEADER)
    print(_row("ensemble", report["ensemble"], f"{run.relative_training_flops:.2f}x"))
    for m, scores in enumerate(report["members"]):
        print(_row(f"member {m}", scores))
    print(f"Training FLOPs: {run.training_flops:.3e}, "
          f"{run.relative_training_flops:.2f}x one dense model trained "
          f"{_setting('epochs')} epochs ({run.dense_training_flops:.3e}).")
    if compare:
        print("\nAll methods (ensembles of "
              f"{FLAGS.num_members}; sparse ones at density {FLAGS.density}):")
        print(HEADER)
        for method in methods:
            run, report = results[method]
            print(_row(method, report["ensemble"], f"{run.relative_training_flops:.2f}x"))


def run():
    """Console-script entry point (`freetickets-train`)."""
    run_app(main, __name__, "freetickets_tf.scripts.common_flags")


if __name__ == "__main__":
    run()
