"""The training script end to end on the bundled data, as a user runs it."""

import os
import subprocess
import sys

import pytest

from freetickets_tf.tickets import RunDirectory

SMALL = [
    "--model=lenet300-100", "--epochs=2", "--edst_epochs=4", "--exploration_epochs=2",
    "--num_members=2", "--update_frequency=10", "--density=0.3", "--verbose=0",
]


def _train(*flags, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "freetickets_tf.scripts.train", *flags],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


def test_main_job_trains_edst_and_the_baselines(tmp_path):
    result = _train(*SMALL, f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("edst ensemble on the digits"))
    assert lines[start + 1].split() == ["Accuracy", "NLL", "ECE", "Train", "FLOPs"]
    ensemble = lines[start + 2].split()
    assert ensemble[0] == "ensemble" and ensemble[-1].endswith("x")
    accuracy, nll, ece = map(float, ensemble[1:4])
    assert 0.5 < accuracy <= 1 and nll > 0 and 0 <= ece < 0.5
    assert float(ensemble[-1][:-1]) < 1  # sparse EDST costs less than one dense run
    members = [lines[start + 3].split(), lines[start + 4].split()]
    assert [m[:2] for m in members] == [["member", "0"], ["member", "1"]]
    assert "one dense model trained 2 epochs" in out
    start = next(i for i, l in enumerate(lines) if l.startswith("All methods"))
    table = {l.split()[0]: l.split()[1:] for l in lines[start + 2 : start + 7]}
    assert list(table) == ["dense", "deep_ensemble", "static", "dst", "edst"]
    assert table["dense"][-1] == "1.00x" and table["deep_ensemble"][-1] == "2.00x"
    for method in table:
        assert RunDirectory.open(tmp_path / method).complete

    # The same command again reuses the finished tickets.
    again = _train(*SMALL, f"--output_dir={tmp_path}", "--nocompare", "--verbose=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already complete" in again.stdout
    assert again.stdout.splitlines()[-1] == out.splitlines()[
        next(i for i, l in enumerate(lines) if l.startswith("Training FLOPs"))]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--growth=rigl"], "gradient"),
        (["--edst_epochs=4", "--exploration_epochs=4"], "exploration_epochs"),
        (["--num_members=0"], "num_members"),
        (["--model=resnet1000"], "resnet1000"),
    ],
)
def test_bad_flags_fail_before_training(flags, message, tmp_path):
    result = _train(*flags, f"--output_dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.exists(tmp_path / "dense")
