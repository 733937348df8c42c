"""Bad input to the public API, table-driven: every case must fail with a
clear error of the expected type, whose message names the argument, and
leave every file where it was (no run directory started, none changed).

Each case runs in a fresh directory holding a copy of one finished run
(`existing`); `new` is the path a recipe would create. The command-line
scripts' cases are in `tests/scripts/test_bad_input_cli.py`.
"""

import dataclasses
import json
import math
import os
import re
import shutil

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import recipes
from freetickets_tf.tickets import RunDirectory

NAN, INF = math.nan, math.inf


def small(units=8):
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(units, activation="relu", name="hidden"),
        keras.layers.Dense(3, name="logits")])


def wider():
    return small(units=12)


def no_kernels():
    return keras.Sequential([keras.Input((6,)), keras.layers.Activation("softmax")])


RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 6)).astype("float32")
Y = RNG.integers(0, 3, 48).astype("int32")
X_VAL, Y_VAL = X[:16], Y[:16]
BASE = dict(num_members=2, epochs=1, exploration_epochs=1, batch_size=16,
            update_frequency=1, verbose=0, learning_rate=0.05)


def config(**changes):
    return ft.EnsembleConfig(**{**BASE, **changes})


@dataclasses.dataclass
class Env:
    existing: str  # a finished `dst` run of `small` on (X, Y), BASE settings
    new: str       # a path no run has used yet
    tree: object   # the `tree` fixture
    before: dict = None


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("finished") / "run")
    recipes.train_ensemble("dst", small, (X, Y), (X_VAL, Y_VAL), config(), path)
    return path


@pytest.fixture
def env(tmp_path, finished_run, monkeypatch, tree):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished_run, tmp_path / "existing")
    return Env(existing=str(tmp_path / "existing"), new=str(tmp_path / "new"), tree=tree)


@dataclasses.dataclass
class Case:
    id: str
    call: object   # env -> anything; must raise
    names: str     # regex the message must match: the argument and what is wrong
    error: type = ValueError


CASES = []


def case(id, call, names, error=ValueError):
    CASES.append(Case(id, call, names, error))


# --- EnsembleConfig, through the recipes: refused before any directory ----


def train(method="dst", build=small, data=(X, Y), val=(X_VAL, Y_VAL), **changes):
    return lambda env: ft.train_ensemble(method, build, data, val, config(**changes),
                                         env.new)


BAD_SETTINGS = [
    ("num_members", 0), ("num_members", -1), ("num_members", 1.5), ("num_members", "3"),
    ("num_members", True), ("epochs", 0), ("epochs", -2), ("epochs", 2.0),
    ("epochs", NAN), ("reference_epochs", 0), ("density", 0.0), ("density", 1.5),
    ("density", -0.2), ("density", NAN), ("density", "0.2"), ("distribution", "erdos"),
    ("distribution", None), ("update_frequency", 0), ("update_frequency", 0.5),
    ("update_end_fraction", 0.0), ("update_end_fraction", 1.5),
    ("update_end_fraction", NAN), ("death_rate", 1.0), ("death_rate", -0.1),
    ("death_rate", NAN), ("death_rate", INF), ("large_death_rate", 1.2),
    ("death_rate_schedule", "linear"), ("death", "random"), ("growth", "hebbian"),
    ("growth_batch", "first"), ("batch_size", 0), ("batch_size", 16.0),
    ("learning_rate", 0.0), ("learning_rate", -0.1), ("learning_rate", NAN),
    ("learning_rate", INF), ("lr_milestones", (0.5, 1.5)), ("lr_milestones", (0.0,)),
    ("warmup_epochs", -1), ("label_smoothing", 1.0), ("label_smoothing", -0.1),
    ("label_smoothing", NAN), ("momentum", 1.0), ("momentum", 1.5), ("momentum", -1.0),
    ("momentum", NAN), ("weight_decay", -5e-4), ("weight_decay", NAN),
    ("weight_decay", INF), ("weight_decay_mode", "adamw"),
    ("weight_decay_scope", "biases"), ("selection", "first"), ("snapshot_every", 0),
    ("monitor", "val_f1"), ("seed", -1), ("seed", 0.5), ("jit_compile", "sometimes"),
    ("verbose", "loud"), ("exploration_milestones", (1,)), ("phase_milestones", (1,)),
]
for field, value in BAD_SETTINGS:
    case(f"config-{field}-{value!r}", train(**{field: value}), rf"`?{field}`?")

EDST_SETTINGS = [
    ("exploration_epochs", -1), ("exploration_epochs", 5), ("epochs", 2),
    ("refinement_learning_rates", (-0.01, 0.001)), ("refinement_learning_rates", (NAN,)),
    ("phase_milestones", (0,)), ("exploration_milestones", (3,)),
    ("large_death_rate", NAN), ("warmup_epochs", 9),
]
for field, value in EDST_SETTINGS:
    settings = {"epochs": 4, "exploration_epochs": 2, field: value}
    case(f"edst-{field}-{value!r}", train("edst", **settings),
         rf"{field}|epochs|exploration")
case("pf-finetune_epochs-0", train("pf", finetune_epochs=0), "finetune_epochs")
case("pf-finetune_learning_rate-nan", train("pf", finetune_learning_rate=NAN),
     "finetune_learning_rate")
case("growth_batch-last-with-random-growth",
     train(growth_batch="last", growth="random"), "growth_batch")
case("method-unknown", train("lottery"), "method")
case("method-None", train(None), "method")
case("config-not-a-config", lambda env: ft.train_ensemble(
    "dst", small, (X, Y), (X_VAL, Y_VAL), {"epochs": 1}, env.new), "config")


# --- The data and the model, through the recipes ---------------------------


BAD_DATA = [
    ("x-y-lengths", (X, Y[:40]), "length|examples"),
    ("labels-too-large", (X, np.full(48, 3, "int32")), r"label.*3"),
    ("labels-negative", (X, np.full(48, -1, "int32")), r"label.*-1"),
    ("labels-float", (X, Y + 0.5), "label|integer"),
    ("labels-two-dimensional", (X, Y[:, None].repeat(2, 1)), "label|y"),
    ("nan-image", (np.where(np.arange(48)[:, None] == 7, NAN, X).astype("float32"), Y),
     "NaN|finite"),
    ("inf-image", (np.where(np.arange(48)[:, None] == 7, INF, X).astype("float32"), Y),
     "NaN|finite|Inf"),
    ("wrong-input-shape", (X[:, :5], Y), "shape"),
    ("strings", (np.array(["a"] * 48), Y), "x|string|dtype"),
    ("one-element-tuple", (X,), "train_data|pair"),
    ("not-data", "abc", "train_data"),
    ("no-examples", (X[:0], Y[:0]), "empty|examples|no "),
]
for name, data, names in BAD_DATA:
    case(f"train-data-{name}", train(data=data), names)

BAD_VALIDATION = [
    ("lengths", (X_VAL, Y_VAL[:10]), "length|examples"),
    ("labels", (X_VAL, Y_VAL + 5), "label"),
    ("nan", (np.full_like(X_VAL, NAN), Y_VAL), "NaN|finite"),
    ("shape", (X_VAL[:, :4], Y_VAL), "shape"),
    ("three-arrays", (X_VAL, Y_VAL, Y_VAL), "validation_data"),
]
for name, val, names in BAD_VALIDATION:
    case(f"validation-{name}", train(val=val), names)
case("monitor-needs-validation", train(val=None, monitor="val_accuracy"),
     "monitor|validation")
case("build-not-callable", train(build=small()), "build_model|callable")
case("build-returns-layer", train(build=lambda: keras.layers.Dense(3)),
     "build_model|keras.Model|Model")
case("sparse-method-no-kernels", train(build=no_kernels), "no .*layer|maskable|kernel")


# --- Resuming a run directory: refused, nothing deleted --------------------


def resume(method="dst", build=small, data=(X, Y), val=(X_VAL, Y_VAL), **changes):
    return lambda env: ft.train_ensemble(method, build, data, val, config(**changes),
                                         env.existing)


case("resume-other-density", resume(density=0.3), r"density.*0\.2.*0\.3")
case("resume-other-epochs", resume(epochs=2), r"epochs")
case("resume-other-seed", resume(seed=4), r"seed")
case("resume-other-method", resume("static"), r"dst|method")
case("resume-other-members", resume(num_members=3), r"num_members|members")
case("resume-other-architecture", resume(build=wider), r"architecture")
case("resume-other-training-data", resume(data=(X * 2, Y)), r"train_data")
case("resume-other-validation-data", resume(val=(X_VAL, np.roll(Y_VAL, 1))),
     r"validation_data")
case("resume-other-weight-decay-mode", resume(weight_decay_mode="decoupled"),
     "weight_decay_mode")
case("check-resumable-other-density", lambda env: recipes.check_resumable(
    "dst", small, (X, Y), (X_VAL, Y_VAL), config(density=0.5), env.existing),
    "density")


def corrupt_manifest(change):
    def call(env):
        path = os.path.join(env.existing, "tickets.json")
        with open(path) as f:
            manifest = json.load(f)
        change(manifest)
        with open(path, "w") as f:
            json.dump(manifest, f)
        # The corrupted manifest is the state the case starts from.
        env_tree_reset(env)
        ft.EnsembleModel.from_run(env.existing)
    return call


def env_tree_reset(env):
    """Marks the current tree as the case's starting point (see the test)."""
    env.before = env.tree(os.path.dirname(env.existing))


MANIFEST_CHANGES = [
    ("ticket-outside", lambda m: m["tickets"][0].update(file="../../../etc/passwd"),
     "inside|outside"),
    ("ticket-absolute", lambda m: m["tickets"][0].update(file="/etc/passwd"),
     "inside|outside|absolute"),
    ("member-out-of-range", lambda m: m["tickets"][1].update(member=7), "member"),
    ("member-twice", lambda m: m["tickets"][1].update(member=0), "member"),
    ("num-members-disagrees", lambda m: m.update(num_members=5), "num_members|members"),
    ("density-wrong", lambda m: m["tickets"][0].update(density=0.9), "density"),
    ("no-sha256", lambda m: m["tickets"][0].pop("sha256"), "sha256"),
    ("no-member", lambda m: m["tickets"][0].pop("member"), "member"),
    ("tickets-not-list", lambda m: m.update(tickets="oops"), "tickets"),
    ("method-not-a-name", lambda m: m.update(method=3), "method"),
    ("sha256-wrong", lambda m: m["tickets"][0].update(sha256="0" * 64),
     "sha256|checksum"),
]
for name, change, names in MANIFEST_CHANGES:
    case(f"manifest-{name}", corrupt_manifest(change), names)


def truncated_ticket(env):
    path = os.path.join(env.existing, "ticket_0.keras")
    with open(path, "r+b") as f:
        f.truncate(100)
    env_tree_reset(env)
    RunDirectory.open(env.existing).load_tickets()


case("ticket-truncated", truncated_ticket, "ticket_0|checksum|sha256")
case("open-missing-directory", lambda env: RunDirectory.open(env.new),
     "no run|not found|does not exist|tickets.json")
case("from-run-missing-directory", lambda env: ft.EnsembleModel.from_run(env.new),
     "no run|not found|does not exist|tickets.json")
case("create-no-method", lambda env: RunDirectory.create(env.new, "", 3), "method")
case("create-zero-members", lambda env: RunDirectory.create(env.new, "dst", 0),
     "num_members")


# --- Making models sparse ----------------------------------------------------


def built():
    return small()


SPARSIFY = [
    ("density-0", dict(density=0.0), "density"),
    ("density-1.5", dict(density=1.5), "density"),
    ("density-nan", dict(density=NAN), "density"),
    ("density-string", dict(density="0.2"), "density"),
    ("distribution", dict(density=0.2, distribution="lognormal"), "distribution"),
    ("exclude-unknown-layer", dict(density=0.2, exclude=["nope"]), "exclude"),
]
for name, kwargs, names in SPARSIFY:
    case(f"sparsify-{name}", lambda env, kwargs=kwargs: ft.sparsify(built(), **kwargs),
         names)
case("sparsify-not-a-model", lambda env: ft.sparsify(keras.layers.Dense(3), 0.2), "model")
case("sparsify-no-kernels", lambda env: ft.sparsify(no_kernels(), 0.2),
     "no .*layer|maskable|kernel")
case("init-masks-density", lambda env: ft.masking.init_masks(ft.sparsify(built(), 0.5), 2.0),
     "density")
case("prune-global-density", lambda env: ft.masking.prune_global_magnitude(built(), NAN),
     "density")
case("erk-densities-density", lambda env: ft.erk_densities([(6, 8), (8, 3)], 0.0),
     "density")
case("erk-densities-distribution",
     lambda env: ft.erk_densities([(6, 8), (8, 3)], 0.2, "gaussian"), "distribution")
case("erk-densities-no-shapes", lambda env: ft.erk_densities([], 0.2), "shapes")
case("models-get-unknown", lambda env: ft.models.get("resnet-7"), "resnet-7|name|model")
case("models-get-initializer", lambda env: ft.models.get("lenet5", initializer="he"),
     "initializer")
case("models-get-classes", lambda env: ft.models.get("lenet5", num_classes=0),
     "num_classes")


# --- Callbacks ---------------------------------------------------------------


DST_CALLBACK = [
    ("update_frequency-0", dict(update_frequency=0), "update_frequency"),
    ("update_frequency-2.5", dict(update_frequency=2.5), "update_frequency"),
    ("death_rate-1", dict(death_rate=1.0), "death_rate"),
    ("death_rate-nan", dict(death_rate=NAN), "death_rate"),
    ("death_rate_schedule", dict(death_rate_schedule="step"), "death_rate_schedule"),
    ("death", dict(death="oldest"), "death"),
    ("growth", dict(growth="largest"), "growth"),
    ("growth_batch", dict(growth_batch="any"), "growth_batch"),
    ("start_step", dict(start_step=-1), "start_step"),
    ("end_step", dict(start_step=10, end_step=5), "end_step"),
    ("batch_size", dict(batch_size=0), "batch_size"),
    ("data-lengths", dict(data=(X[:40], Y[:20])), "data.*40.*20"),
    ("data-string", dict(data="abc"), "data"),
    ("data-four-arrays", dict(data=(X, Y, Y, Y)), "data"),
    ("data-one-shot-iterator", dict(data=iter([(X, Y)])), "data.*iterator"),
    ("data-empty", dict(data=(X[:0], Y[:0])), "data.*no examples"),
    ("gradient-growth-without-data", dict(data=None), "data"),
]
for name, kwargs, names in DST_CALLBACK:
    case(f"dst-callback-{name}",
         lambda env, kwargs=kwargs: ft.DynamicSparsityCallback(**{"data": (X, Y), **kwargs}),
         names)


case("dst-callback-schedule-not-a-schedule",
     lambda env: ft.DynamicSparsityCallback(data=(X, Y), schedule={"update_frequency": 4}),
     "schedule")
case("dst-schedule-end-before-start", lambda env: ft.schedules.DSTSchedule(
    start_step=10, end_step=5), "end_step")
case("updater-unknown", lambda env: ft.updaters.get("hebbian"), "growth")
case("updater-death-conflict",
     lambda env: ft.updaters.get(ft.updaters.SET("set"), death="magnitude-ish"), "death")
case("growth-source-string",
     lambda env: ft.growth_batches.growth_source("abc"), "data")
case("strip-sparsity-of-a-layer",
     lambda env: ft.strip_sparsity(keras.layers.Dense(3)), "model")


def edst_callback(**kwargs):
    def call(env):
        dst = ft.DynamicSparsityCallback(data=(X, Y), update_frequency=1)
        settings = dict(run_dir=env.new, epochs=4, exploration_epochs=2, num_members=2)
        settings.update(kwargs)
        ft.EDSTCallback(dst, **settings)
    return call


EDST_CALLBACK = [
    ("sparsity_callback", lambda env: ft.EDSTCallback(
        "dst", env.new, epochs=4, exploration_epochs=2)),
    ("exploration_epochs", edst_callback(exploration_epochs=4)),
    ("epochs", edst_callback(epochs=0)),
    ("num_members", edst_callback(num_members=0)),
    ("large_death_rate", edst_callback(large_death_rate=1.0)),
    ("learning_rates", edst_callback(learning_rates=(0.1, -1.0))),
    ("monitor|mode", edst_callback(mode="up")),
    ("selection", edst_callback(selection="median")),
    ("warmup_epochs", edst_callback(warmup_epochs=-1)),
]
for name, call in EDST_CALLBACK:
    case(f"edst-callback-{name}", call, name)
case("ticket-checkpoint-mode",
     lambda env: ft.callbacks.TicketCheckpoint(env.new, 0, mode="sideways"), "mode")
case("ticket-checkpoint-selection",
     lambda env: ft.callbacks.TicketCheckpoint(env.new, 0, selection="median"),
     "selection")
case("ticket-checkpoint-member",
     lambda env: ft.callbacks.TicketCheckpoint(env.new, 3, num_members=3), "member")
case("training-checkpoint-run",
     lambda env: ft.callbacks.TrainingCheckpoint(env.new), "run")
case("training-checkpoint-every", lambda env: ft.callbacks.TrainingCheckpoint(
    RunDirectory.open(env.existing), every=0), "every")
case("flops-callback-batch-size",
     lambda env: ft.callbacks.TrainingFlopsCallback(0), "batch_size")
case("flops-callback-sparsity-callback",
     lambda env: ft.callbacks.TrainingFlopsCallback(16, sparsity_callback="dst"),
     "sparsity_callback")
case("monitor-log-dir", lambda env: ft.callbacks.SparsityMonitor(""), "log_dir")
case("monitor-sparsity-callback",
     lambda env: ft.callbacks.SparsityMonitor("logs", sparsity_callback=3),
     "sparsity_callback")
case("snapshot-every", lambda env: ft.callbacks.PeriodicSnapshots(env.existing, 0),
     "every")
case("snapshot-member",
     lambda env: ft.callbacks.PeriodicSnapshots(env.existing, 1, member=-1), "member")
case("optimizer-momentum", lambda env: ft.optimizers.TorchSGD(0.1, momentum=1.0),
     "momentum")
case("optimizer-weight-decay",
     lambda env: ft.optimizers.TorchSGD(0.1, weight_decay=NAN), "weight_decay")
case("optimizer-scope", lambda env: ft.optimizers.TorchSGD(0.1, weight_decay_scope="x"),
     "weight_decay_scope")
case("make-sgd-mode",
     lambda env: ft.optimizers.make_sgd(0.1, weight_decay_mode="l1"), "weight_decay_mode")


# --- Ensembles, evaluation and metrics ---------------------------------------


def ensemble():
    return ft.EnsembleModel([small(), small()])


PROBS = np.full((4, 3), 1 / 3, "float32")
LABELS = np.array([0, 1, 2, 0])
BAD_PROBABILITIES = [
    ("sum-two", PROBS * 2, LABELS, "sum"),
    ("negative", PROBS - 0.5, LABELS, "negative|probabilit"),
    ("nan", np.full((4, 3), NAN, "float32"), LABELS, "NaN|finite"),
    ("labels-out-of-range", PROBS, np.array([0, 1, 2, 3]), "label"),
    ("labels-length", PROBS, LABELS[:3], "length|examples|labels"),
    ("one-dimensional", PROBS[0], LABELS[:1], "probs|shape"),
]
for fn in ("accuracy", "nll", "brier", "ece"):
    for name, probs, labels, names in BAD_PROBABILITIES:
        if fn == "accuracy" and name in ("sum-two", "negative"):
            continue  # accuracy depends only on the arg max
        case(f"metrics-{fn}-{name}",
             lambda env, fn=fn, p=probs, y=labels: getattr(ft.metrics, fn)(y, p), names)
for metric in ("NegativeLogLikelihood", "BrierScore", "ExpectedCalibrationError"):
    case(f"streaming-{metric}-sum-two",
         lambda env, m=metric: getattr(ft.metrics, m)().update_state(LABELS, PROBS * 2),
         "sum")
case("metrics-ece-bins", lambda env: ft.metrics.ece(LABELS, PROBS, num_bins=0),
     "num_bins")
case("metrics-disagreement-shape", lambda env: ft.metrics.disagreement(PROBS), "member")
case("metrics-auroc-empty",
     lambda env: ft.metrics.auroc(np.array([]), np.array([0.5])), "in_scores|empty")
case("ensemble-members-empty", lambda env: ft.EnsembleModel([]), "members")
case("ensemble-members-not-list", lambda env: ft.EnsembleModel(small()), "members")
case("ensemble-members-shapes", lambda env: ft.EnsembleModel([small(), keras.Sequential(
    [keras.Input((5,)), keras.layers.Dense(3)])]), r"members\[1\]")
case("ensemble-member-outputs", lambda env: ft.EnsembleModel([small()], "logprobs"),
     "member_outputs")
case("ensemble-uint8-call",
     lambda env: ensemble()(np.zeros((2, 6), "uint8")), "uint8")
case("evaluate-uint8-without-preprocessing", lambda env: ft.evaluation.evaluate_ensemble(
    ensemble(), np.zeros((4, 6), "uint8"), LABELS), "uint8")
case("evaluate-labels-out-of-range", lambda env: ft.evaluation.evaluate_ensemble(
    ensemble(), X[:4], np.array([0, 1, 2, 9])), "label")
case("evaluate-lengths", lambda env: ft.evaluation.evaluate_ensemble(
    ensemble(), X[:4], LABELS[:2]), "length|examples")
case("evaluate-mode", lambda env: ft.evaluation.evaluate(
    ensemble(), X[:4], LABELS, modes=["predict", "vibes"], output_dir="report"), "modes")
case("evaluate-ood-without-data", lambda env: ft.evaluation.evaluate(
    ensemble(), X[:4], LABELS, modes=["ood"], output_dir="report"), "ood")
case("evaluate-bins", lambda env: ft.evaluation.evaluate(
    ensemble(), X[:4], LABELS, num_bins=0, output_dir="report"), "num_bins")
case("evaluate-tsne-without-snapshots", lambda env: ft.evaluation.evaluate(
    ensemble(), X[:4], LABELS, modes=["tsne"], output_dir="report"), "snapshot|tsne")
case("preprocessing-float-255", lambda env: ft.data.apply_preprocessing(
    np.full((2, 6), 200.0, "float32"), {"input_dtype": "uint8", "mean": None,
                                        "std": None}), "255")
case("preprocessing-uint8-for-float-run", lambda env: ft.data.apply_preprocessing(
    np.zeros((2, 6), "uint8"), {"input_dtype": "float32", "mean": None, "std": None}),
    "uint8")
# SavedModel export is TensorFlow's: other backends refuse it first, saying so.
ON_TF = keras.backend.backend() == "tensorflow"
EXPORT_REFUSED = {} if ON_TF else dict(names="KERAS_BACKEND=tensorflow",
                                       error=NotImplementedError)
case(**{"id": "export-not-ensemble", "names": "ensemble", **EXPORT_REFUSED,
        "call": lambda env: ft.serving.export_saved_model(small(), "out")})
case("export-format", lambda env: ensemble().export("out", format="onnx"), "format")
case(**{"id": "export-onto-a-file", "names": "path", **EXPORT_REFUSED,
        "call": lambda env: ensemble().export(os.path.join(env.existing, "tickets.json"))})


# --- Input pipelines -----------------------------------------------------------


IMAGES = RNG.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
IMAGE_LABELS = RNG.integers(0, 3, 16)
FROM_ARRAYS = [
    ("batch_size", dict(batch_size=0)),
    ("batch_size", dict(batch_size="4")),
    ("augment", dict(augment="rotate")),
    ("mean", dict(mean=[0.5])),
    ("std", dict(mean=[0.5], std=[0.0])),
    ("mean", dict(mean=[0.5, 0.5], std=[0.2, 0.2])),
    ("padding", dict(augment="crop", padding=-1)),
    ("seed", dict(seed=-3)),
]
for name, kwargs in FROM_ARRAYS:
    settings = {"batch_size": 4, **kwargs}
    case(f"from-arrays-{name}-{sorted(kwargs.items())!r}"[:60],
         lambda env, s=settings: ft.data.from_arrays(IMAGES, IMAGE_LABELS, **s), name)
case("from-arrays-nan", lambda env: ft.data.from_arrays(
    np.full((16, 8, 8, 1), NAN, "float32"), IMAGE_LABELS, 4), "NaN|finite")
case("from-arrays-lengths",
     lambda env: ft.data.from_arrays(IMAGES, IMAGE_LABELS[:5], 4), "length|examples")
case("from-arrays-augment-needs-images",
     lambda env: ft.data.from_arrays(X, Y, 4, augment="flip"), "augment|image")
case("split-fraction", lambda env: ft.data.split(X, Y, validation_fraction=1.5),
     "validation_fraction")
case("split-lengths", lambda env: ft.data.split(X, Y[:3]), "length|examples")
case("digits-fraction", lambda env: ft.data.load_digits(test_fraction=0.0),
     "test_fraction")
case("load-npz-missing", lambda env: ft.data.load_npz("missing.npz"), "missing.npz",
     (ValueError, FileNotFoundError))
case("pipelines-load-unknown", lambda env: ft.data.load("mnist-but-bigger"), "name")
case("pipelines-load-fraction", lambda env: ft.data.load(
    "cifar10", validation_fraction=1.0), "validation_fraction")
case("corruption-name", lambda env: ft.data.corruptions.check_corruption("rain"),
     "corruption")
case("corruption-severity", lambda env: ft.data.corruptions.check_severity(6), "severity")


def test_the_table_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error(case, env):
    root = os.path.dirname(env.existing)
    env.before = env.tree(root)
    with pytest.raises(case.error) as info:
        case.call(env)
    message = str(info.value)
    assert re.search(case.names, message, re.IGNORECASE | re.DOTALL), message
    assert "Traceback" not in message
    # Nothing written, nothing deleted: no new run directory, the existing
    # run's files (and a corrupted manifest a case starts from) unchanged.
    after = env.tree(root)
    assert after == env.before, sorted(set(after.items()) ^ set(env.before.items()))
