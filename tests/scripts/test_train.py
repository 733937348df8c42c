"""The training script end to end on the bundled data, as a user runs it."""

import os
import subprocess
import sys

import keras
import numpy as np

import freetickets_tf as ft


def test_train_script_runs_and_saves(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable, "-m", "freetickets_tf.scripts.train",
            "--epochs=3", "--update_frequency=10", "--density=0.3",
            f"--output_dir={tmp_path}",
        ],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Overall density: 0.3000" in result.stdout
    line = [l for l in result.stdout.splitlines() if l.startswith("Test accuracy")][0]
    accuracy = float(line.split()[2])
    assert accuracy > 0.5  # three epochs on digits already beat chance by far
    model = keras.saving.load_model(str(tmp_path / "model.keras"))
    assert abs(ft.overall_density(model) - 0.3) < 0.01
    for mk in ft.masked_kernels(model):
        mask = keras.ops.convert_to_numpy(mk.mask)
        assert np.all(keras.ops.convert_to_numpy(mk.kernel)[~mask] == 0)


def test_train_script_rejects_bad_flag():
    result = subprocess.run(
        [sys.executable, "-m", "freetickets_tf.scripts.train", "--growth=rigl"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "growth" in result.stderr and "gradient" in result.stderr
