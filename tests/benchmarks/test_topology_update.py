"""`benchmarks/topology_update.py`: its NumPy reference against a hand-made
case, and one in-process run of a tiny Wide ResNet."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def test_numpy_reference_by_hand(load_benchmark):
    bench = load_benchmark("topology_update")
    w = np.array([[0.5, -0.1, 0.0], [2.0, 0.3, 0.0]], "float32")
    mask = np.array([[True, True, False], [True, True, False]])
    g = np.array([[0.0, 0.0, 9.0], [0.0, 0.0, 1.0]], "float32")
    dense = np.ones((2, 2), bool)
    (new, untouched), (kernel, _) = bench.numpy_update(
        [w, np.ones((2, 2))], [mask, dense], [g, np.zeros((2, 2))], death_rate=0.5)
    # 4 active, p = 0.5: the 2 smallest |w| (-0.1, 0.3) die; the 2 largest |g|
    # among the inactive (9.0, then 1.0) grow.
    np.testing.assert_array_equal(new, [[True, False, True], [True, False, True]])
    np.testing.assert_array_equal(kernel, [[0.5, 0.0, 0.0], [2.0, 0.0, 0.0]])
    assert untouched is dense  # a layer at density 1 is left alone


def test_numpy_reference_writes_the_record_and_the_momentum(load_benchmark):
    bench = load_benchmark("topology_update")
    w = np.array([0.5, -0.1, 0.0, 2.0], "float32")
    mask = np.array([True, True, False, True])
    g = np.array([0.0, 0.0, 9.0, 0.0], "float32")
    explored = [np.array([True, True, False, True])]
    momentum = [np.array([1.0, 2.0, 3.0, 4.0], "float32")]
    (new,), _ = bench.numpy_update([w], [mask], [g], 0.5, exact=True, explored=explored,
                                   slots=momentum)
    # n = ceil(0.5 * 3) = 2: -0.1 and 0.5 die, 9.0 and then the first of the
    # zero |g| (index 0, just dropped; ties to the lower index) grow.
    assert new.tolist() == [True, False, True, True]
    assert explored[0].tolist() == [True, True, True, True]
    assert momentum[0].tolist() == [0.0, 2.0, 0.0, 4.0]  # zeroed where grown


def test_one_backend_in_process(capsys, load_benchmark):
    bench = load_benchmark("topology_update")
    args = bench.parse_args(["--single", "tensorflow", "--models", "wrn-10-1",
                             "--batch_size", "4", "--repeats", "1"])
    result = bench.main(["--single", "tensorflow", "--models", "wrn-10-1",
                         "--batch_size", "4", "--repeats", "1"])
    assert json.loads(capsys.readouterr().out)["models"] == result["models"]
    figures = result["models"]["wrn-10-1"]
    assert figures["reference_agrees"] is True
    assert figures["overall_density"] == pytest.approx(args.density, abs=1e-3)
    for key in ("first_update_s", "update_s", "numpy_reference_s", "numpy_same_writes_s",
                "train_step_s", "update_with_gradient_s"):
        assert figures[key] > 0, key
    assert figures["update_over_numpy"] == pytest.approx(
        figures["update_s"] / figures["numpy_reference_s"])
    assert figures["update_over_numpy_same_writes"] == pytest.approx(
        figures["update_s"] / figures["numpy_same_writes_s"])
    # The XLA options it ran under, which change the update's speed.
    assert result["environment"]["xla_flags"] == os.environ.get("XLA_FLAGS", "")
    rows = bench.goals({"tensorflow": result})
    assert {r["goal"] for r in rows} == {"update_over_numpy <= 1",
                                         "update_with_gradient_in_steps <= 1.2"}


def test_bad_arguments_name_the_flag(load_benchmark):
    bench = load_benchmark("topology_update")
    with pytest.raises(SystemExit):
        bench.parse_args(["--backends", "tensorflow,mxnet"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--death_rate", "1.5"])


def test_exact_reference_breaks_ties_as_the_library(load_benchmark):
    bench = load_benchmark("topology_update")
    w6 = np.array([0.2, -0.2, 0.2, 0.9, 0.0, 0.0], "float32")  # equal magnitudes
    mask6 = np.array([True, True, True, True, False, False])
    g6 = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0], "float32")
    (new6,), _ = bench.numpy_update([w6], [mask6], [g6], 0.5, exact=True)
    # Two die: the lower indices among the equal |0.2|; two grow: the equal
    # |g| at 4 and 5 (the only inactive positions left with a score).
    assert new6.tolist() == [False, False, True, True, True, True]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_each_backend_runs_pinned_to_its_cpus(monkeypatch, load_benchmark):
    bench = load_benchmark("topology_update")
    allowed = sorted(os.sched_getaffinity(0))
    assert bench._pinned_cpus(1) == allowed[-1:]
    assert bench._pinned_cpus(len(allowed) + 3) == allowed
    started, real_run = [], subprocess.run

    def fake_run(command, **kwargs):
        started.append(kwargs)
        return subprocess.CompletedProcess(command, 0, stdout='{"models": {}}')

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    result = bench.run(bench.parse_args(["--backends", "tensorflow,jax"]))
    assert result["cpus"] == allowed[-1:] and len(started) == 2
    # What each backend's process sees: only its CPUs (JAX would use all).
    seen = real_run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        preexec_fn=started[1]["preexec_fn"], stdout=subprocess.PIPE, text=True, check=True)
    assert json.loads(seen.stdout) == allowed[-1:]
