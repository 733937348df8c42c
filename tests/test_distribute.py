"""Tests for `freetickets_tf.distribute`: strategies, masks across replicas
and workers (in subprocesses, since devices are fixed once TF starts)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from freetickets_tf import distribute

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
TENSORFLOW_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute is TensorFlow's")


def _run_worker(out, *flags, env=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen(
        [sys.executable, WORKER, str(out), *flags], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]


def _arrays(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _assert_same_training(a, b):
    masks = sorted(k for k in a if k.startswith("mask_"))
    assert masks and a["updates"] == b["updates"] >= 3
    for name in masks:
        np.testing.assert_array_equal(a[name], b[name])
    for name in (k for k in a if k.startswith("kernel_")):
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)


@pytest.fixture(scope="module")
def one_replica_run(tmp_path_factory):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's")
    out = tmp_path_factory.mktemp("one") / "run.npz"
    _finish(_run_worker(out))
    return _arrays(out)


@TENSORFLOW_ONLY
def test_two_replicas_match_one_replica_with_the_same_global_batch(
        one_replica_run, tmp_path):
    out = tmp_path / "run.npz"
    _finish(_run_worker(out, "--strategy", "mirrored", "--cpu_devices", "2"))
    two = _arrays(out)
    assert two["replicas"] == 2
    assert two["replica_checks"] > 0  # masks compared on both replicas, each batch
    _assert_same_training(one_replica_run, two)


@TENSORFLOW_ONLY
def test_multi_worker_is_refused_with_the_upstream_reason():
    with pytest.raises(NotImplementedError, match="keras-team/keras#20585.*mirrored"):
        distribute.get_strategy("multi_worker")


def test_default_strategy_is_none():
    assert distribute.get_strategy("default") is None
    assert distribute.num_replicas(None) == 1
    with distribute.scope(None):
        pass


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mirrored.*multi_worker"):
        distribute.get_strategy("horovod")


def test_batch_not_divisible_by_replicas_is_a_clear_error():
    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ValueError, match="batch_size.*129.*2 replicas"):
        distribute.check_batch_size(129, TwoReplicas())
    distribute.check_batch_size(128, TwoReplicas())


def test_not_a_strategy_is_a_clear_error():
    if keras.backend.backend() != "tensorflow":
        with pytest.raises(NotImplementedError, match="tensorflow.*keras.distribution"):
            distribute.check_strategy(object())
        return
    with pytest.raises(ValueError, match="tf.distribute.Strategy"):
        distribute.check_strategy("mirrored")


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="the error is for the other backends")
def test_strategies_name_the_backend_and_the_alternative():
    with pytest.raises(NotImplementedError, match=keras.backend.backend()):
        distribute.get_strategy("mirrored")
