"""SparsityMonitor: sparsity scalars in TensorBoard event files."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.callbacks import DynamicSparsityCallback
from freetickets_tf.callbacks import SparsityMonitor
from freetickets_tf.callbacks import TrainingFlopsCallback


def test_monitor_writes_sparsity_scalars_beside_keras_tensorboard(
        mlp, toy_data, compile_model, tmp_path, read_scalars):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    dst = DynamicSparsityCallback(data=(x, y), update_frequency=5, seed=0)
    flops = TrainingFlopsCallback(32, dst)
    logs = tmp_path / "logs"
    history = sparse.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[
        dst, flops, keras.callbacks.TensorBoard(str(logs)),
        SparsityMonitor(str(logs), dst, flops)])
    scalars = read_scalars(logs / "train")
    assert "epoch_loss" in scalars  # Keras' own, in the same event directory
    assert scalars["sparsity/density"][1] == pytest.approx(ft.masking.overall_density(sparse))
    assert scalars["sparsity/itop_rate"][1] == pytest.approx(history.history["itop_rate"][1])
    assert scalars["sparsity/itop_rate"][0] < scalars["sparsity/itop_rate"][1]
    for path, density in ft.masking.layer_densities(sparse).items():
        assert scalars[f"sparsity/layer_density/{path}"][1] == pytest.approx(density)
    assert scalars["sparsity/death_rate"][1] == pytest.approx(0.5)
    assert scalars["sparsity/training_flops"][1] == pytest.approx(flops.total_flops, rel=1e-6)
    # 8 batches per epoch, 16 steps, an update every 5: steps 5, 10, 15.
    moved = scalars["sparsity/update/weights_moved"]
    assert sorted(moved) == [5, 10, 15]
    assert sum(moved.values()) == sum(history.history["weights_moved"])
    assert set(scalars["sparsity/update/death_rate"].values()) == {0.5}


def test_monitor_without_other_callbacks_and_bad_arguments(
        mlp, toy_data, compile_model, tmp_path, read_scalars):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.5, seed=0))
    sparse.fit(x, y, batch_size=64, epochs=1, verbose=0,
               callbacks=[SparsityMonitor(tmp_path)])
    scalars = read_scalars(tmp_path / "train")
    assert scalars["sparsity/density"][0] == pytest.approx(ft.masking.overall_density(sparse))
    assert not any(tag.startswith("sparsity/update/") for tag in scalars)
    assert SparsityMonitor(tmp_path).get_config() == {"log_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="log_dir"):
        SparsityMonitor("")
    with pytest.raises(ValueError, match="sparsity_callback.*DynamicSparsityCallback"):
        SparsityMonitor(tmp_path, sparsity_callback=object())
    with pytest.raises(ValueError, match="flops_callback.*TrainingFlopsCallback"):
        SparsityMonitor(tmp_path, flops_callback=np.zeros(1))
