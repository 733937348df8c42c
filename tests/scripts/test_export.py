"""The export script, run in-process through its absl `main`."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import app

import freetickets_tf as ft
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.scripts import export
from freetickets_tf.tickets import RunDirectory


def conv_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(3, name="classifier"),
        ],
        name="ticket",
    )


tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="SavedModel export needs TensorFlow"
)


@pytest.fixture
def run_export(run_main):
    return lambda *args: run_main(export, *args)


def make_run(path, finished=3):
    run = RunDirectory.create(str(path), "dst", 3)
    for i in range(finished):
        run.save_ticket(ft.sparsify(conv_model(), 0.5, seed=i), member=i, seed=i)
    return run


@tensorflow_only
def test_export_writes_saved_model_of_run(tmp_path, run_export, capsys):
    run = make_run(tmp_path / "run")
    output = tmp_path / "exported"
    run_export(f"--run_dir={run.path}", f"--output={output}")
    printed = capsys.readouterr().out
    assert "Exported 3 members" in printed and "(8, 8, 1)" in printed
    assert "3 classes" in printed and str(output) in printed

    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    ensemble = EnsembleModel.from_run(run.path, return_member_probabilities=True)
    expected = keras.tree.map_structure(keras.ops.convert_to_numpy, ensemble(x))
    outputs = tf.saved_model.load(str(output)).signatures["serving_default"](
        inputs=tf.constant(x))
    for key, value in expected.items():
        np.testing.assert_allclose(outputs[key].numpy(), value, atol=1e-5)


@tensorflow_only
def test_export_partial_run(tmp_path, run_export, capsys):
    run = make_run(tmp_path / "run", finished=2)
    output = tmp_path / "exported"
    with pytest.raises(app.UsageError, match="--run_dir: .*partial: 2 of 3"):
        run_export(f"--run_dir={run.path}", f"--output={output}")
    assert not os.path.exists(output)
    run_export(f"--run_dir={run.path}", f"--output={output}", "--allow_partial")
    assert "Exported 2 members" in capsys.readouterr().out


def test_export_bad_run_dir(tmp_path, run_export):
    with pytest.raises(app.UsageError, match="--run_dir: .*does not exist"):
        run_export(f"--run_dir={tmp_path / 'missing'}", f"--output={tmp_path / 'out'}")
    with pytest.raises(app.UsageError, match="--run_dir: .*not a run directory"):
        run_export(f"--run_dir={tmp_path}", f"--output={tmp_path / 'out'}")
    assert not os.path.exists(tmp_path / "out")
