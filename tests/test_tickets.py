"""Run directories: ticket files, the tickets.json manifest, atomic writes."""

import json
import os

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import tickets
from freetickets_tf.tickets import RunDirectory


@pytest.fixture
def sparse_mlp(mlp):
    return ft.sparsify(mlp, 0.3, seed=0)


def _read_manifest(path):
    with open(os.path.join(path, "tickets.json")) as f:
        return json.load(f)


def test_save_ticket_writes_file_and_manifest(tmp_path, sparse_mlp):
    run = RunDirectory.create(tmp_path, "dst", 2, {"density": 0.3})
    entry = run.save_ticket(sparse_mlp, 1, seed=7, epoch=4, val_accuracy=0.5,
                            training_flops=123.0)
    manifest = _read_manifest(tmp_path)
    assert manifest["method"] == "dst" and manifest["num_members"] == 2
    assert manifest["config"] == {"density": 0.3}
    (stored,) = manifest["tickets"]
    assert stored == entry
    assert stored["member"] == 1 and stored["file"] == "ticket_1.keras"
    assert stored["seed"] == 7 and stored["epoch"] == 4
    assert stored["val_accuracy"] == 0.5 and stored["training_flops"] == 123.0
    assert stored["density"] == pytest.approx(ft.masking.overall_density(sparse_mlp))
    assert stored["layer_densities"] == pytest.approx(ft.masking.layer_densities(sparse_mlp))
    assert {"freetickets_tf", "keras", "backend", "python"} <= set(stored["versions"])
    if keras.backend.backend() == "tensorflow":
        assert "tensorflow" in stored["versions"]
    assert not run.complete and run.finished_members == {1}


def test_format_1_runs_read_with_epochs_numbered_from_1(tmp_path, sparse_mlp):
    # Format 1 numbered epochs from 0 (the index Keras passes to callbacks);
    # format 2 numbers them as fit's progress bar does, everywhere.
    run = RunDirectory.create(tmp_path, "dst", 2)
    run.save_ticket(sparse_mlp, 0, epoch=4)
    run.save_snapshot(sparse_mlp, 0, 3)
    manifest = _read_manifest(tmp_path)
    assert manifest["format"] == 2
    manifest.update(format=1)
    manifest["tickets"][0]["epoch"] = 4
    (tmp_path / "tickets.json").write_text(json.dumps(manifest))
    os.replace(tmp_path / "snapshots" / "member_0_epoch0003.keras",
               tmp_path / "snapshots" / "member_0_epoch_2.keras")  # format 1's name
    run.save_snapshot(sparse_mlp, 0, 5)
    run.release()
    old = RunDirectory.open(tmp_path)
    assert old.tickets[0]["epoch"] == 5
    assert [e for e, _ in old.snapshots()[0]] == [3, 5]
    resumed = RunDirectory.create(tmp_path, "dst", 2)
    resumed.save_ticket(sparse_mlp, 1, epoch=7)
    manifest = _read_manifest(tmp_path)
    assert manifest["format"] == 2
    assert [t["epoch"] for t in manifest["tickets"]] == [5, 7]


def test_load_ticket_round_trips_weights_and_masks(tmp_path, sparse_mlp):
    run = RunDirectory.create(tmp_path, "dst", 1)
    run.save_ticket(sparse_mlp, 0)
    loaded = RunDirectory.open(tmp_path).load_ticket(0)
    for a, b in zip(sparse_mlp.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert ft.masking.overall_density(loaded) == pytest.approx(ft.masking.overall_density(sparse_mlp))


def test_create_resumes_an_existing_run(tmp_path, sparse_mlp):
    RunDirectory.create(tmp_path, "edst", 3, {"a": 1}).save_ticket(sparse_mlp, 0)
    again = RunDirectory.create(tmp_path, "edst", 3, {"a": 1})
    assert again.finished_members == {0}


@pytest.mark.parametrize(
    "method, members, config, match",
    [
        ("dst", 3, {"a": 1}, "'edst' run"),
        ("edst", 2, {"a": 1}, "3 members"),
        ("edst", 3, {"a": 2}, "a: 1 there, 2 now"),
    ],
)
def test_create_refuses_a_different_run(tmp_path, method, members, config, match):
    RunDirectory.create(tmp_path, "edst", 3, {"a": 1})
    with pytest.raises(ValueError, match=match):
        RunDirectory.create(tmp_path, method, members, config)


def test_failed_ticket_write_keeps_everything_already_written(tmp_path, sparse_mlp,
                                                              monkeypatch):
    run = RunDirectory.create(tmp_path, "dst", 2)
    run.save_ticket(sparse_mlp, 0)
    before = sorted(os.listdir(tmp_path))
    manifest = _read_manifest(tmp_path)

    def failing_save(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        run.save_ticket(sparse_mlp, 1)
    assert sorted(os.listdir(tmp_path)) == before  # no ticket_1, no temp file
    assert _read_manifest(tmp_path) == manifest
    monkeypatch.undo()
    RunDirectory.open(tmp_path).load_ticket(0)


def test_open_errors_name_the_problem(tmp_path, sparse_mlp):
    with pytest.raises(ValueError, match="does not exist"):
        RunDirectory.open(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no tickets.json"):
        RunDirectory.open(tmp_path)
    (tmp_path / "tickets.json").write_text("{not json")
    with pytest.raises(ValueError, match="Corrupt manifest"):
        RunDirectory.open(tmp_path)
    (tmp_path / "tickets.json").write_text('{"method": "dst"}')
    with pytest.raises(ValueError, match="Corrupt manifest"):
        RunDirectory.open(tmp_path)
    os.remove(tmp_path / "tickets.json")
    run = RunDirectory.create(tmp_path, "dst", 2)
    run.save_ticket(sparse_mlp, 0)
    os.remove(tmp_path / "ticket_0.keras")
    with pytest.raises(ValueError, match="ticket_0.keras.*missing"):
        RunDirectory.open(tmp_path)


def test_changed_ticket_file_fails_its_checksum(tmp_path, sparse_mlp, mlp):
    run = RunDirectory.create(tmp_path, "dst", 1)
    run.save_ticket(sparse_mlp, 0)
    mlp.save(tmp_path / "ticket_0.keras")  # overwritten behind the manifest
    with pytest.raises(ValueError, match="checksum"):
        RunDirectory.open(tmp_path).load_ticket(0)


def test_load_tickets_partial_and_empty(tmp_path, sparse_mlp):
    run = RunDirectory.create(tmp_path, "dst", 3)
    with pytest.raises(ValueError, match="no finished ticket"):
        run.load_tickets()
    run.save_ticket(sparse_mlp, 0)
    run.save_ticket(sparse_mlp, 2)
    with pytest.raises(ValueError, match=r"partial: 2 of 3.*members \[0, 2\]"):
        run.load_tickets()
    assert len(run.load_tickets(allow_partial=True)) == 2


def test_member_out_of_range(tmp_path, sparse_mlp):
    run = RunDirectory.create(tmp_path, "dst", 2)
    with pytest.raises(ValueError, match="member"):
        run.save_ticket(sparse_mlp, 2)
    with pytest.raises(ValueError, match="num_members"):
        RunDirectory.create(tmp_path / "b", "dst", 0)


def test_checkpoint_save_and_clear(tmp_path, sparse_mlp, compile_model):
    compile_model(sparse_mlp)
    sparse_mlp.optimizer.build(sparse_mlp.trainable_variables)
    sparse_mlp.optimizer.iterations.assign(11)
    run = RunDirectory.create(tmp_path, "edst", 2)
    assert run.checkpoint is None
    run.save_checkpoint(sparse_mlp, epoch=5, training_flops=1.0)
    first, state = RunDirectory.open(tmp_path).checkpoint
    assert state == {"epoch": 5, "training_flops": 1.0}
    assert int(keras.saving.load_model(first).optimizer.iterations) == 11
    assert run.checkpoint_best_weights() is None
    # The next checkpoint goes to new files; the old ones go once it is named.
    best = [np.full((2, 3), 7.0), np.arange(4)]
    run.save_checkpoint(sparse_mlp, best_weights=best, epoch=6)
    path, state = RunDirectory.open(tmp_path).checkpoint
    assert path != first and not os.path.exists(first) and state == {"epoch": 6}
    for saved, expected in zip(RunDirectory.open(tmp_path).checkpoint_best_weights(), best):
        np.testing.assert_array_equal(saved, expected)
    run.clear_checkpoint()
    assert run.checkpoint is None and not os.path.exists(path)
    assert _read_manifest(tmp_path)["checkpoint"] is None
    assert os.listdir(tmp_path / "checkpoint") == []


def test_checkpoint_interrupted_while_saving_keeps_the_previous_one(
        tmp_path, sparse_mlp, compile_model, monkeypatch):
    compile_model(sparse_mlp)
    run = RunDirectory.create(tmp_path, "dst", 1)
    run.save_checkpoint(sparse_mlp, epoch=1)
    before = run.checkpoint

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ft.io, "save_arrays_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint(sparse_mlp, best_weights=[np.zeros(2)], epoch=2)
    reopened = RunDirectory.open(tmp_path)
    assert reopened.checkpoint == before and os.path.exists(before[0])


def test_versions_names_the_backend():
    found = tickets.versions()
    assert found["backend"] == keras.backend.backend()
    assert found["freetickets_tf"] == ft.__version__


def test_recipes_release_the_lock_also_when_they_fail(tmp_path):
    from freetickets_tf import recipes

    def broken():
        raise RuntimeError("no model today")

    x = np.zeros((16, 4), "float32")
    y = np.zeros(16, "int32")
    config = recipes.EnsembleConfig(epochs=1, batch_size=8, selection="last", verbose=0)
    with pytest.raises(RuntimeError, match="no model"):
        recipes.train_dense(broken, (x, y), None, config, tmp_path)
    assert os.path.realpath(tmp_path) not in tickets._HELD_LOCKS


def test_create_sweeps_what_a_killed_writer_left(tmp_path):
    RunDirectory.create(tmp_path, "dst", 2).release()
    os.makedirs(tmp_path / "checkpoint")
    (tmp_path / ".tmp-k3j.keras").write_text("half a ticket")
    (tmp_path / "checkpoint" / ".tmp-9x.npz").write_text("half a checkpoint")
    RunDirectory.create(tmp_path, "dst", 2).release()
    assert sorted(os.listdir(tmp_path)) == [".lock", "checkpoint", "tickets.json"]
    assert os.listdir(tmp_path / "checkpoint") == []


def test_architecture_tells_layer_classes_and_activations_apart():
    def mlp(activation, between=keras.layers.Dropout(0.1)):
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation=activation),
                                 between, keras.layers.Dense(3)])

    relu = tickets.architecture(mlp("relu"))
    # The same weight shapes, but another activation or another layer class.
    assert tickets.architecture(mlp("tanh"))["digest"] != relu["digest"]
    other = tickets.architecture(mlp("relu", keras.layers.LayerNormalization(center=False,
                                                                            scale=False)))
    assert other["digest"] != relu["digest"] and other["parameters"] == relu["parameters"]
    # A sparse copy (masked layers, boolean masks) is the same architecture.
    assert tickets.architecture(ft.sparsify(mlp("relu"), 0.5, seed=0)) == relu


def _weight_entries(path):
    import zipfile

    import h5py

    names = []
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f:
        with h5py.File(f, "r") as h5:
            h5.visititems(lambda name, item: names.append(name)
                          if isinstance(item, h5py.Dataset) else None)
    return names


def test_tickets_and_snapshots_leave_the_optimizer_out_checkpoints_keep_it(
        tmp_path, sparse_mlp, compile_model, toy_data):
    model = compile_model(sparse_mlp)
    x, y = toy_data
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    run = RunDirectory.create(tmp_path, "dst", 1, {})
    run.save_ticket(model, 0)
    snapshot = run.save_snapshot(model, 0, 1)
    run.save_checkpoint(model, member=0, epoch=1)
    for path in (tmp_path / "ticket_0.keras", snapshot):
        assert not any(n.startswith("optimizer") for n in _weight_entries(path))
    checkpoint_path, _ = run.checkpoint
    assert any(n.startswith("optimizer") for n in _weight_entries(checkpoint_path))
    assert model.optimizer is not None  # the live model keeps its optimizer
    loaded = run.load_ticket(0)
    with pytest.raises(ValueError, match="saved for inference"):
        run.load_ticket(0, compile=True)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
