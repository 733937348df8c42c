"""Tests for `freetickets_tf.distribute`: strategies, masks across replicas
and workers (in subprocesses, since devices are fixed once TF starts; the
two workers of a multi-worker cluster are two processes on 127.0.0.1), and
JAX's `keras.distribution.DataParallel` over two host devices."""

import os
import socket
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from freetickets_tf import distribute
from freetickets_tf.tickets import RunDirectory

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


def _assert_same_growth_gradients(a, b):
    """The growth gradients of the 64- and 63-example batches agree: the
    replicas' all-reduced shards give the whole batch's gradient."""
    names = sorted(k for k in a if k.startswith("growth_"))
    assert len(names) == 6 and names == sorted(k for k in b if k.startswith("growth_"))
    for name in names:
        assert np.abs(a[name]).max() > 0
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7)


@TENSORFLOW_ONLY
def test_one_replica_takes_the_growth_gradient_on_the_whole_batch(one_replica_run):
    assert one_replica_run["shards_64"].tolist() == [64]
    assert one_replica_run["shards_63"].tolist() == [63]


@pytest.fixture(scope="module")
def one_replica_run(tmp_path_factory):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's")
    out = tmp_path_factory.mktemp("one") / "run.npz"
    _finish(_run_worker(out))
    return _arrays(out)


@TENSORFLOW_ONLY
@pytest.mark.parametrize("program", ["per_layer", "whole_model"])
def test_two_replicas_match_one_replica_with_the_same_global_batch(
        one_replica_run, tmp_path, program):
    # The one-replica run updates layer by layer: the whole-model program
    # must give the same masks under the strategy.
    out = tmp_path / "run.npz"
    flags = ["--whole_model"] if program == "whole_model" else []
    _finish(_run_worker(out, "--strategy", "mirrored", "--cpu_devices", "2", *flags))
    two = _arrays(out)
    assert two["replicas"] == 2
    assert two["replica_checks"] > 0  # masks compared on both replicas, each batch
    _assert_same_training(one_replica_run, two)
    # Each replica takes the growth gradient on its half of the batch (an
    # odd batch splits 32 + 31), and the sum is the whole batch's gradient.
    assert two["shards_64"].tolist() == [32]
    assert two["shards_63"].tolist() == [31, 32]
    _assert_same_growth_gradients(one_replica_run, two)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution on JAX")
@pytest.mark.parametrize("program", ["per_layer", "whole_model"])
def test_jax_data_parallel_on_two_devices_matches_one_device(tmp_path, program):
    devices = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    flags = ["--whole_model"] if program == "whole_model" else []
    runs = [_run_worker(tmp_path / "one.npz"),
            _run_worker(tmp_path / "two.npz", "--distribution", "data_parallel", *flags,
                        env=devices)]
    for run in runs:
        _finish(run)
    one, two = _arrays(tmp_path / "one.npz"), _arrays(tmp_path / "two.npz")
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["replica_checks"] > 0  # masks compared on both devices, each batch
    np.testing.assert_array_equal(one["mask_digests"], two["mask_digests"])
    _assert_same_training(one, two)
    # The growth batch is laid out one shard per device; the gradient is the
    # global batch's (a batch that does not split stays whole).
    assert two["devices_64"].tolist() == [32, 32]
    assert two["devices_63"].tolist() == [63]
    _assert_same_growth_gradients(one, two)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@TENSORFLOW_ONLY
def test_two_workers_on_localhost_agree_and_match_one_replica(one_replica_run, tmp_path):
    cluster = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    workers = [
        _run_worker(tmp_path / f"worker{task}.npz", "--strategy", "multi_worker",
                    "--cluster", cluster, "--task", str(task),
                    "--run_dir", str(tmp_path / "dst"))
        for task in range(2)
    ]
    for worker in workers:
        _finish(worker)
    chief, other = (_arrays(tmp_path / f"worker{task}.npz") for task in range(2))
    assert chief["replicas"] == other["replicas"] == 2
    # Every worker holds the same masks after every batch, the masks of a
    # one-replica run with the same global batch.
    assert len(chief["mask_digests"]) == 12
    np.testing.assert_array_equal(chief["mask_digests"], other["mask_digests"])
    np.testing.assert_array_equal(chief["mask_digests"], one_replica_run["mask_digests"])
    _assert_same_training(chief, other)
    _assert_same_training(one_replica_run, chief)
    # Each worker's replica takes its own shard of the growth batch, and the
    # all-reduced gradient is the whole batch's, the same on both workers.
    assert chief["shards_64"].tolist() == other["shards_64"].tolist() == [32]
    assert chief["shards_63"].tolist() == [32] and other["shards_63"].tolist() == [31]
    _assert_same_growth_gradients(one_replica_run, chief)
    for name in (k for k in chief if k.startswith("growth_")):
        np.testing.assert_array_equal(chief[name], other[name])

    # The ensemble recipe: the chief writes the run, the other worker its
    # own copy beside it (same tickets).
    runs = [RunDirectory.open(tmp_path / "dst"), RunDirectory.open(tmp_path / "dst.worker-1")]
    assert all(run.complete for run in runs)
    for a, b in zip(*(run.load_tickets()[0].get_weights() for run in runs)):
        np.testing.assert_array_equal(a, b)


class _FakeMultiWorker:
    """A strategy's `cluster_resolver` as MultiWorkerMirroredStrategy has it,
    and a `gather` that adds the other workers' `rows` to this one's."""

    def __init__(self, cluster, task_type, task_id, rows=()):
        self.cluster_resolver = types.SimpleNamespace(
            cluster_spec=lambda: types.SimpleNamespace(as_dict=lambda: cluster),
            task_type=task_type, task_id=task_id)
        self.rows = list(rows)

    def gather(self, value, axis):
        assert axis == 0
        return types.SimpleNamespace(
            numpy=lambda: np.concatenate([np.asarray(value), np.array(self.rows)]))


@pytest.mark.parametrize("cluster, task_type, task_id, chief, directory", [
    ({}, None, None, True, "runs/dst"),  # no TF_CONFIG: one machine
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True, "runs/dst"),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False, "runs/dst.worker-1"),
    ({"chief": ["a:1"], "worker": ["b:1"]}, "chief", 0, True, "runs/dst"),
    ({"chief": ["a:1"], "worker": ["b:1"]}, "worker", 0, False, "runs/dst.worker-0"),
])
def test_only_the_chief_writes_the_run_directory(cluster, task_type, task_id, chief,
                                                  directory):
    strategy = _FakeMultiWorker(cluster, task_type, task_id)
    assert distribute.is_chief(strategy) is chief
    assert distribute.worker_directory("runs/dst", strategy) == directory
    if not chief:  # a trailing slash must not put the copy inside the run
        assert distribute.worker_directory("runs/dst/", strategy) == directory
    assert distribute.worker_directory("runs/dst", None) == "runs/dst"


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


def test_workers_that_would_resume_from_different_points_are_stopped():
    two_workers = {"worker": ["a:1", "b:1"]}
    agree = _FakeMultiWorker(two_workers, "worker", 1, rows=[[1, 4]])
    distribute.check_workers_agree(agree, "progress", (1, 4))
    behind = _FakeMultiWorker(two_workers, "worker", 1, rows=[[1, 5]])
    with pytest.raises(RuntimeError, match=r"disagree on progress: \[\(1, 4\), \(1, 5\)\]. "
                                           "Copy the chief's"):
        distribute.check_workers_agree(behind, "progress", (1, 4), "Copy the chief's.")
    distribute.check_workers_agree(None, "progress", (1, 4))  # one machine: no-op
