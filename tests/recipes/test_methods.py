"""The ensemble methods end to end: EDST, DST, static, PF, GMP, dense and deep
ensembles (SPEC §4)."""

import json
import os

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import recipes
from freetickets_tf.recipes import EnsembleConfig
from freetickets_tf.tickets import RunDirectory


def build():
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(4),
        ]
    )


@pytest.fixture
def data(toy_data):
    x, y = toy_data
    return (x[:192], y[:192]), (x[192:], y[192:])


def _config(**kwargs):
    settings = dict(num_members=2, epochs=3, exploration_epochs=1, density=0.3,
                    update_frequency=2, batch_size=64, learning_rate=0.05,
                    weight_decay=0.0, finetune_epochs=1, pruning_frequency=1, verbose=0)
    settings.update(kwargs)
    return EnsembleConfig(**settings)


def _masks(model):
    return [np.asarray(mk.mask) for mk in ft.masked_kernels(model)]


@pytest.mark.parametrize("method", recipes.METHODS)
def test_every_method_writes_its_tickets(method, data, tmp_path):
    train, val = data
    run = recipes.train_ensemble(method, build, train, val, _config(), tmp_path)
    members = 1 if method == "dense" else 2
    manifest = RunDirectory.open(tmp_path)
    assert manifest.method == method and manifest.complete
    assert len(run.tickets) == members
    tickets = manifest.load_tickets()
    sparse = method in ("edst", "dst", "static", "pf", "gmp")
    for entry, ticket in zip(run.tickets, tickets):
        assert entry["training_flops"] > 0
        assert entry["val_accuracy"] is not None
        if sparse:
            assert entry["density"] == pytest.approx(0.3, abs=0.01)
            assert ft.masked_kernels(ticket)
        else:
            assert entry["density"] == 1.0 and not ft.masked_kernels(ticket)
    ensemble = run.ensemble_model()
    assert ensemble.predict(val[0], verbose=0).shape == (64, 4)
    assert manifest.checkpoint is None  # cleaned up when the run finished
    assert manifest.manifest["flops"]["relative_training_flops"] == pytest.approx(
        run.relative_training_flops)


def test_dense_run_costs_one_dense_run_and_sparse_runs_less(data, tmp_path):
    train, val = data
    dense = recipes.train_dense(build, train, val, _config(), tmp_path / "d")
    assert dense.relative_training_flops == pytest.approx(1.0)
    static = recipes.train_static_ensemble(build, train, val, _config(), tmp_path / "s")
    f_s = ft.flops.forward_flops(static.ensemble_model().members[0])
    f_d = ft.flops.forward_flops(build(), sparse=False)
    assert static.relative_training_flops == pytest.approx(2 * f_s / f_d)


def test_dst_members_have_different_masks_and_disagree(data, tmp_path):
    train, val = data
    run = recipes.train_dst_ensemble(build, train, val, _config(), tmp_path)
    first, second = RunDirectory.open(tmp_path).load_tickets()
    assert [t["seed"] for t in run.tickets] == [0, 1]
    for a, b in zip(_masks(first), _masks(second)):
        if not a.all():
            assert (a != b).any()
    x = np.random.default_rng(1).normal(size=(512, 16)).astype("float32")
    top1 = [m.predict(x, verbose=0).argmax(-1) for m in (first, second)]
    assert 0 < (top1[0] != top1[1]).mean() < 1


def test_dst_updates_stop_at_the_end_fraction(data, tmp_path, monkeypatch):
    steps = []
    update = ft.DynamicSparsityCallback.update_topology

    def recording(self, death_rate=None):
        steps.append(int(self.model.optimizer.iterations))
        return update(self, death_rate)

    monkeypatch.setattr(ft.DynamicSparsityCallback, "update_topology", recording)
    train, val = data
    # 3 steps per epoch, 4 epochs: 12 steps; updates at multiples of 2 up to
    # floor(0.5 * 12) = 6.
    config = _config(num_members=1, epochs=4, update_end_fraction=0.5)
    recipes.train_dst_ensemble(build, train, val, config, tmp_path / "half")
    assert steps == [2, 4, 6]
    steps.clear()
    recipes.train_dst_ensemble(build, train, val, _config(num_members=1, epochs=4),
                                 tmp_path / "all")
    assert steps == [2, 4, 6, 8, 10, 12]


def test_edst_tickets_come_from_their_phases(data, tmp_path):
    train, val = data
    config = _config(epochs=5, exploration_epochs=1)
    run = recipes.train_edst_ensemble(build, train, val, config, tmp_path)
    assert [t["member"] for t in run.tickets] == [0, 1]
    assert 2 <= run.tickets[0]["epoch"] < 4 <= run.tickets[1]["epoch"] < 6
    # One run: the run's FLOPs are those recorded with its last ticket.
    assert run.training_flops == run.tickets[-1]["training_flops"]
    first, second = RunDirectory.open(tmp_path).load_tickets()
    assert any((a != b).any() for a, b in zip(_masks(first), _masks(second)))


def test_interrupted_dst_run_resumes_without_redoing_tickets(data, tmp_path):
    train, val = data
    calls = []

    def flaky_build():
        calls.append(1)
        if len(calls) == 3:  # the reference model, member 0, then member 1
            raise RuntimeError("killed")
        return build()

    with pytest.raises(RuntimeError, match="killed"):
        recipes.train_dst_ensemble(flaky_build, train, val, _config(), tmp_path)
    ticket0 = tmp_path / "ticket_0.keras"
    stamp = os.stat(ticket0).st_mtime_ns
    assert RunDirectory.open(tmp_path).finished_members == {0}
    run = recipes.train_dst_ensemble(build, train, val, _config(), tmp_path)
    assert os.stat(ticket0).st_mtime_ns == stamp  # not trained again
    assert [t["member"] for t in run.tickets] == [0, 1]


class _Killed(Exception):
    pass


def _kill_at_epoch_end(monkeypatch, fits_to_skip, epoch_to_kill):
    """Makes the `fits_to_skip + 1`-th `fit` die right after `epoch_to_kill`
    ends, i.e. after that epoch's checkpoint (callbacks run in order and the
    recipes add the checkpoint last)."""
    fit = keras.Model.fit
    calls = []

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == epoch_to_kill:
                raise _Killed

    def fit_then_die(self, *args, callbacks=(), **kwargs):
        calls.append(1)
        if len(calls) == fits_to_skip + 1:
            callbacks = [*callbacks, Kill()]
        return fit(self, *args, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_then_die)


def _weights(run_dir):
    return [t.get_weights() for t in RunDirectory.open(run_dir).load_tickets()]


_UNINTERRUPTED = {}


@pytest.fixture
def uninterrupted(data, tmp_path_factory):
    """`run(method, config) -> (EnsembleRun, run_dir)`: the uninterrupted
    run, trained once per method and config for every case of the module
    (runs are deterministic, so a later case may reuse it)."""
    def run(method, config):
        key = (method, json.dumps(config.to_dict(), sort_keys=True))
        if key not in _UNINTERRUPTED:
            path = tmp_path_factory.mktemp(f"uninterrupted_{method}")
            _UNINTERRUPTED[key] = (
                recipes.train_ensemble(method, build, *data, config, path), path)
        return _UNINTERRUPTED[key]
    return run


INTERRUPTIONS = [
    ("edst", 0, 2, 3),    # mid refinement phase 1 (epochs 2-3), best so far kept
    ("dst", 1, 0, 1),     # inside member 1, ticket 0 finished
    ("edst", 0, 3, 4),    # at a ticket boundary: phase 2 starts with a global exploration
    ("pf", 0, 1, 2),      # inside the dense stage of member 0
    # After the last epoch, before the ticket was written: the ticket is
    # written from the checkpoint, then the next member starts.
    ("pf", 1, 0, 0),      # (fine-tuning stage of member 0)
    ("static", 0, 2, 0),
]
if keras.backend.backend() != "tensorflow":
    # Where each recipe resumes is backend-independent bookkeeping, covered
    # on TensorFlow; JAX and PyTorch run the cases that also restore an
    # optimizer, masks and a schedule mid-run, to stay within CI's time.
    INTERRUPTIONS = INTERRUPTIONS[:2]


@pytest.mark.parametrize("method, fits_to_skip, epoch, first_epoch_after", INTERRUPTIONS)
def test_interrupted_run_resumes_to_the_same_tickets(
        method, fits_to_skip, epoch, first_epoch_after, data, uninterrupted, tmp_path,
        monkeypatch):
    train, val = data
    config = _config(epochs=6 if method == "edst" else 3, exploration_epochs=2)
    whole, whole_dir = uninterrupted(method, config)

    _kill_at_epoch_end(monkeypatch, fits_to_skip, epoch)
    with pytest.raises(_Killed):
        recipes.train_ensemble(method, build, train, val, config, tmp_path / "b")
    monkeypatch.undo()
    assert RunDirectory.open(tmp_path / "b").checkpoint is not None

    epochs_run = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    fit = keras.Model.fit

    def recording_fit(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, Record()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    resumed = recipes.train_ensemble(method, build, train, val, config, tmp_path / "b")
    assert epochs_run[0] == first_epoch_after
    assert [t["member"] for t in resumed.tickets] == [t["member"] for t in whole.tickets]
    for expected, got in zip(_weights(whole_dir), _weights(tmp_path / "b")):
        for a, b in zip(expected, got):
            np.testing.assert_allclose(a, b, atol=1e-6)
    for a, b in zip(whole.tickets, resumed.tickets):
        assert a["epoch"] == b["epoch"]
        assert a["training_flops"] == pytest.approx(b["training_flops"])
    assert resumed.training_flops == pytest.approx(whole.training_flops)
    assert RunDirectory.open(tmp_path / "b").checkpoint is None  # cleaned up


@pytest.mark.parametrize(
    "method, kwargs, match",
    [
        ("edst", {"num_members": 0}, "num_members"),
        ("dst", {"num_members": 0}, "num_members"),
        ("edst", {"epochs": 4, "exploration_epochs": 4}, "exploration_epochs"),
        ("edst", {"epochs": 4, "exploration_epochs": 3}, "shorter than one epoch"),
        ("dst", {"density": 0.0}, "density"),
        ("dst", {"selection": "median"}, "selection"),
        ("dst", {"update_end_fraction": 1.5}, "update_end_fraction"),
        ("dense", {"weight_decay_mode": "l2"}, "weight_decay_mode.*'coupled', 'decoupled'"),
        ("dense", {"weight_decay": -5e-4}, "weight_decay"),
        ("dense", {"weight_decay": float("nan")}, "weight_decay"),
        ("deep_ensemble", {"momentum": 1.5}, r"momentum.*\[0, 1\)"),
        ("dst", {"momentum": -1}, "momentum"),
        ("dst", {"weight_decay_scope": "bias"}, "weight_decay_scope"),
        ("dst", {"growth_batch": "previous"}, "growth_batch.*'fresh', 'last'"),
        ("edst", {"growth": "random", "growth_batch": "last"}, "growth_batch"),
        ("dense", {"learning_rate": float("inf")}, "learning_rate"),
        ("mystery", {}, "method"),
    ],
)
def test_bad_settings_fail_before_training(method, kwargs, match, data, tmp_path):
    train, val = data
    with pytest.raises(ValueError, match=match):
        recipes.train_ensemble(method, build, train, val, _config(**kwargs), tmp_path)
    assert not os.path.exists(tmp_path / "tickets.json")


def test_best_selection_needs_validation_data(data, tmp_path):
    train, _ = data
    with pytest.raises(ValueError, match="validation_data"):
        recipes.train_dst_ensemble(build, train, None, _config(), tmp_path)
    run = recipes.train_dst_ensemble(
        build, train, None, _config(selection="last", num_members=1), tmp_path)
    assert run.tickets[0]["epoch"] == 3


def test_build_model_must_return_a_built_model(data, tmp_path):
    train, val = data
    with pytest.raises(ValueError, match="build_model"):
        recipes.train_dense(lambda: keras.Sequential([keras.layers.Dense(2)]),
                              train, val, _config(), tmp_path)


def test_resuming_with_other_settings_is_refused(data, tmp_path):
    train, val = data
    recipes.train_dense(build, train, val, _config(), tmp_path)
    with pytest.raises(ValueError, match="other settings.*learning_rate"):
        recipes.train_dense(build, train, val, _config(learning_rate=0.2), tmp_path)


def test_a_run_from_before_a_setting_existed_resumes_at_its_default(data, tmp_path):
    train, val = data
    config = _config(epochs=2, pruning_frequency=100)  # gmp's settings at their defaults
    recipes.train_dense(build, train, val, config, tmp_path)
    manifest_path = tmp_path / "tickets.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["config"]["gmp"]  # as written before the gmp method existed
    manifest_path.write_text(json.dumps(manifest))
    recipes.check_resumable("dense", build, train, val, config, tmp_path)
    assert len(recipes.train_dense(build, train, val, config, tmp_path).tickets) == 1
    with pytest.raises(ValueError, match="other settings.*gmp.pruning_frequency"):
        recipes.check_resumable("dense", build, train, val, _config(epochs=2), tmp_path)


def test_tf_data_input(data, tmp_path):
    import tensorflow as tf

    (x, y), val = data
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    run = recipes.train_dst_ensemble(
        build, dataset, val, _config(num_members=1), tmp_path)
    assert run.relative_training_flops < 1


@pytest.mark.parametrize("method", ["static", "dst", "edst"])
def test_rescale_init_reaches_every_sparse_member(method, data, tmp_path, monkeypatch):
    seen = []
    sparsify = ft.masking.sparsify

    def recording(*args, **kwargs):
        seen.append(kwargs.get("rescale"))
        return sparsify(*args, **kwargs)

    monkeypatch.setattr(ft.masking, "sparsify", recording)
    train, val = data
    config = _config(epochs=4, exploration_epochs=2, rescale_init=True)
    recipes.train_ensemble(method, build, train, val, config, tmp_path)
    assert seen == [True] * (1 if method == "edst" else 2)


@pytest.mark.parametrize("method", ["deep_ensemble", "dst", "static", "pf"])
def test_members_train_in_their_own_reproducible_data_order(method, data, tmp_path,
                                                            monkeypatch):
    seen = []
    fit = keras.Model.fit

    def recording(self, x=None, *args, **kwargs):
        first_inputs, _ = next(iter(x))
        seen.append(np.asarray(first_inputs))
        return fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording)
    (x, y), val = data
    config = _config(epochs=1, num_members=3)
    recipes.train_ensemble(method, build, (x, y), val, config, tmp_path / "run")
    if method == "pf":  # a dense and a fine-tuning fit per member, one order
        np.testing.assert_array_equal(seen[0], seen[1])
        seen = seen[::2]
    assert len(seen) == 3
    for member, first_batch in enumerate(seen):
        # A function of (seed, member, epoch): what a resumed member sees.
        own = ft.data.from_arrays(x, y, config.batch_size, seed=config.seed + member)
        expected, _ = next(iter(own.epoch(0)))
        np.testing.assert_array_equal(first_batch, np.asarray(expected))
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(seen[i], seen[j])


def test_members_of_a_dataset_share_its_order_with_a_warning(data, tmp_path):
    import tensorflow as tf

    (x, y), val = data
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    with pytest.warns(UserWarning, match="own order"):
        recipes.train_deep_ensemble(build, dataset, val, _config(epochs=1), tmp_path)


@pytest.mark.parametrize("method", ["dense", "dst", "edst"])
def test_a_diverging_run_fails_naming_it_and_saves_nothing(method, data, tmp_path):
    train, val = data
    config = _config(epochs=4, exploration_epochs=2, learning_rate=1e12)
    with pytest.raises(FloatingPointError, match="diverged in epoch 1") as error:
        recipes.train_ensemble(method, build, train, val, config, tmp_path)
    assert ("the edst run" if method == "edst" else "member 0 (train)") in str(error.value)
    manifest = RunDirectory.open(tmp_path).manifest
    assert manifest["tickets"] == [] and manifest["checkpoint"] is None
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".keras")]


@pytest.mark.parametrize("where", ["train", "validation"])
def test_nan_inputs_are_refused_before_anything_is_written(where, data, tmp_path):
    (x, y), (x_val, y_val) = data
    x, x_val = x.copy(), x_val.copy()
    (x if where == "train" else x_val)[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        recipes.train_dense(build, (x, y), (x_val, y_val), _config(), tmp_path / "run")
    assert not os.path.exists(tmp_path / "run")


def _wider():
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(65, activation="relu"),
                             keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)])


@pytest.mark.parametrize("change, field", [
    ("model", "architecture"),
    ("train", "train_data"),
    ("validation", "validation_data"),
])
def test_resuming_on_another_model_or_data_is_refused_before_writing(
        change, field, data, tmp_path, monkeypatch):
    (x, y), (x_val, y_val) = data
    config = _config(epochs=2)
    _kill_at_epoch_end(monkeypatch, fits_to_skip=0, epoch_to_kill=0)
    with pytest.raises(_Killed):
        recipes.train_dst_ensemble(build, (x, y), (x_val, y_val), config, tmp_path)
    monkeypatch.undo()
    def files():  # the lock file aside: taking the lock writes its holder's name
        return {name: os.path.getmtime(tmp_path / name)
                for name in os.listdir(tmp_path) if name != ".lock"}

    before = files()
    model = _wider if change == "model" else build
    train = (x[::-1].copy(), y[::-1].copy()) if change == "train" else (x, y)
    val = (x_val[:-1], y_val[:-1]) if change == "validation" else (x_val, y_val)
    with pytest.raises(ValueError, match=f"other settings.*{field}"):
        recipes.check_resumable("dst", model, train, val, config, tmp_path)
    with pytest.raises(ValueError, match=f"other settings.*{field}"):
        recipes.train_dst_ensemble(model, train, val, config, tmp_path)
    assert files() == before


def _checkpointed_run(data, tmp_path, monkeypatch):
    train, val = data
    _kill_at_epoch_end(monkeypatch, fits_to_skip=0, epoch_to_kill=1)
    with pytest.raises(_Killed):
        recipes.train_dst_ensemble(build, train, val, _config(), tmp_path)
    monkeypatch.undo()
    run = RunDirectory.open(tmp_path)
    return run, sorted(os.listdir(tmp_path / "checkpoint"))


def test_a_corrupt_checkpoint_is_refused_with_its_reason_and_kept(
        data, tmp_path, monkeypatch):
    run, files = _checkpointed_run(data, tmp_path, monkeypatch)
    path, _ = run.checkpoint
    with open(path, "r+b") as f:
        f.truncate(1000)
    train, val = data
    with pytest.raises(ValueError, match="does not match its checksum.*Nothing was deleted"):
        recipes.train_dst_ensemble(build, train, val, _config(), tmp_path)
    assert sorted(os.listdir(tmp_path / "checkpoint")) == files


def test_a_checkpoint_of_another_architecture_is_refused_and_kept(
        data, tmp_path, monkeypatch):
    run, files = _checkpointed_run(data, tmp_path, monkeypatch)
    path, _ = run.checkpoint
    other = ft.sparsify(_wider(), 0.3, seed=0)
    other.compile("sgd", "sparse_categorical_crossentropy")
    other.save(path)  # a hand-copied checkpoint, checksum made to match
    manifest = run.manifest
    manifest["checkpoint"]["sha256"]["file"] = ft.tickets._sha256(path)
    ft.io.write_json_atomic(manifest, run.manifest_path)
    train, val = data
    with pytest.raises(ValueError, match="another architecture"):
        recipes.train_dst_ensemble(build, train, val, _config(), tmp_path)
    assert sorted(os.listdir(tmp_path / "checkpoint")) == files


@pytest.mark.parametrize("change, match", [
    ("labels", "labels run from 0 to 9.*4 outputs"),
    ("val_labels", "validation_data.*labels run from -1"),
    ("shape", r"shape \(15,\).*takes \(16,\)"),
    ("monitor", "monitor.*'val_accuracy'"),
    ("val_monitor", "needs `validation_data`"),
])
def test_data_that_does_not_fit_the_model_is_refused_before_a_directory_exists(
        change, match, data, tmp_path):
    (x, y), (x_val, y_val) = data
    config = _config()
    val = (x_val, y_val)
    if change == "labels":
        y = y.copy()
        y[0] = 9
    elif change == "val_labels":
        y_val = y_val.copy()
        y_val[0] = -1
        val = (x_val, y_val)
    elif change == "shape":
        x = x[:, :15]
    elif change == "monitor":
        config = _config(monitor="val_acc")
    else:
        config, val = _config(monitor="val_loss"), None
    with pytest.raises(ValueError, match=match):
        recipes.train_dst_ensemble(build, (x, y), val, config, tmp_path / "run")
    assert not os.path.exists(tmp_path / "run")


def test_uint8_and_scaled_images_train_and_evaluate_alike(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 4, 4, 1), dtype=np.uint8)
    labels = (images.reshape(96, -1).mean(axis=1) > 127).astype("int32")

    def small():
        return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(8, activation="relu"),
                                 keras.layers.Dense(2)])

    # The loss tells unscaled images apart (accuracy may not: a ReLU net on
    # 255x its inputs often ranks the classes alike).
    config = _config(epochs=2, batch_size=32, monitor="val_loss")
    runs = {}
    scaled_images = images.astype("float32") * np.float32(1 / 255)
    for kind, x in (("uint8", images), ("float", scaled_images)):
        train, val = (x[:64], labels[:64]), (x[64:], labels[64:])
        runs[kind] = recipes.train_dense(small, train, val, config, tmp_path / kind)
    (a,), (b,) = (RunDirectory.open(r.run_dir).load_tickets() for r in runs.values())
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-6)  # same batches, same selection
    # Selection scored the uint8 validation images scaled, as the float ones.
    picked = [(r.tickets[0]["epoch"], r.tickets[0]["monitor_value"]) for r in runs.values()]
    assert picked[0] == pytest.approx(picked[1])

    ensemble = ft.EnsembleModel.from_run(runs["uint8"].run_dir)
    raw, _ = ft.evaluation.ensemble_probabilities(ensemble, images)
    scaled, _ = ft.evaluation.ensemble_probabilities(ensemble, scaled_images)
    np.testing.assert_allclose(raw, scaled, atol=1e-6)
    with pytest.raises(ValueError, match="values up to 255.*divide them by 255"):
        ft.evaluation.ensemble_probabilities(ensemble, images.astype("float32"))
    with pytest.raises(ValueError, match="uint8 images would reach the model unscaled"):
        ft.evaluation.evaluate_ensemble(ft.EnsembleModel([a]), images, labels)


def test_gmp_members_prune_gradually_and_keep_a_ticket_at_the_final_sparsity(
        data, tmp_path, monkeypatch):
    sparsities = []
    prune = ft.GradualPruning.prune

    def recording(self, step, sparsity):
        sparsities.append((step, round(sparsity, 6)))
        return prune(self, step, sparsity)

    monkeypatch.setattr(ft.GradualPruning, "prune", recording)
    train, val = data
    # 3 steps per epoch, 4 epochs: 12 steps; pruning from step 0 to
    # floor(0.5 * 12) = 6, every 2 steps, to sparsity 0.7.
    config = _config(num_members=1, epochs=4, pruning_end=0.5, pruning_frequency=2)
    run = recipes.train_ensemble("gmp", build, train, val, config, tmp_path)
    schedule = ft.pruning_schedules.PolynomialDecay(0.0, 0.7, 0, 6, frequency=2)
    assert sparsities == [(s, round(schedule.sparsity(s), 6)) for s in (0, 2, 4, 6)]
    # Step 6 is pruned in epoch 3 (of 4): the ticket is epoch 3 or 4.
    assert run.tickets[0]["epoch"] >= 3
    (ticket,) = RunDirectory.open(tmp_path).load_tickets()
    for mk in ft.masked_kernels(ticket):
        size = int(np.prod(mk.mask.shape))
        assert int(np.asarray(mk.mask).sum()) == ft.topology.kept_count(size, 0.7)
    assert run.relative_training_flops < 1.0


@pytest.mark.parametrize("settings, argument", [
    ({"pruning_end": 0.0}, "pruning_end"),
    ({"pruning_begin": 0.5, "pruning_end": 0.5}, "pruning_end"),
    ({"pruning_begin": -0.1}, "pruning_begin"),
    ({"pruning_end": 1.0}, "pruning_end"),
    ({"pruning_frequency": 0}, "pruning_frequency"),
    ({"pruning_power": -1.0}, "pruning_power"),
    # 9 steps per member, pruning to step 6: no pruning turn after step 0.
    ({"pruning_frequency": 7}, "pruning_frequency"),
])
def test_bad_gmp_settings_are_refused_before_the_run_directory(
        settings, argument, data, tmp_path):
    train, val = data
    with pytest.raises(ValueError, match=f"Invalid `{argument}`"):
        recipes.train_ensemble("gmp", build, train, val, _config(**settings),
                               tmp_path / "run")
    assert not (tmp_path / "run").exists()
