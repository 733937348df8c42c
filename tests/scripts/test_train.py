"""The training script end to end on the bundled data, as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from freetickets_tf.tickets import RunDirectory

SMALL = [
    "--model=lenet300-100", "--epochs=2", "--edst_epochs=4", "--exploration_epochs=2",
    "--num_members=2", "--update_frequency=10", "--density=0.3", "--lr=0.2", "--verbose=0",
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


def _ticket_weights(run_dir):
    return [t.get_weights() for t in RunDirectory.open(run_dir).load_tickets()]


def test_killed_training_process_resumes_to_the_same_tickets(tmp_path):
    """SIGKILL in the middle of EDST's first refinement phase; the same
    command continues from the last epoch's checkpoint."""
    flags = ["--model=lenet300-100", "--nocompare", "--epochs=4", "--edst_epochs=8",
             "--exploration_epochs=2", "--num_members=2", "--update_frequency=5",
             "--verbose=1"]
    whole = _train(*flags, f"--output_dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-3000:]

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "freetickets_tf.scripts.train", *flags,
               f"--output_dir={tmp_path / 'killed'}"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    manifest = tmp_path / "killed" / "edst" / "tickets.json"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if manifest.exists():
                state = json.loads(manifest.read_text()).get("checkpoint") or {}
                if state.get("epoch", 0) >= 3:  # inside phase 1 (epochs 3-5)
                    break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    checkpoint = json.loads(manifest.read_text())["checkpoint"]
    assert 3 <= checkpoint["epoch"] < 8

    resumed = _train(*flags, f"--output_dir={tmp_path / 'killed'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"after epoch {checkpoint['epoch']}" in resumed.stdout
    for expected, got in zip(_ticket_weights(tmp_path / "whole" / "edst"),
                             _ticket_weights(tmp_path / "killed" / "edst")):
        for a, b in zip(expected, got):
            np.testing.assert_allclose(a, b, atol=1e-5)
    # The same report: same tickets, same FLOPs.
    assert resumed.stdout.splitlines()[-1] == whole.stdout.splitlines()[-1]


TINY = ["--model=mlp-256-128", "--method=dst", "--nocompare", "--num_members=2",
        "--epochs=1", "--batch_size=8", "--update_frequency=2", "--density=0.3",
        "--verbose=0"]


def _report(printed, evaluated_on):
    lines = printed.splitlines()
    start = next(i for i, l in enumerate(lines)
                 if l.startswith(f"dst ensemble on the {evaluated_on}"))
    accuracy, nll, ece = map(float, lines[start + 2].split()[1:4])
    assert 0 <= accuracy <= 1 and nll > 0 and 0 <= ece <= 1
    assert [lines[start + 3].split()[:2], lines[start + 4].split()[:2]] == [
        ["member", "0"], ["member", "1"]]


def test_main_job_on_tensorflow_datasets_mock_data(tmp_path, no_network, run_main,
                                                   capsys):
    import tensorflow_datasets as tfds

    from freetickets_tf.scripts import train

    with tfds.testing.mock_data(num_examples=40):
        run_main(train, *TINY, "--dataset=cifar10", f"--data_dir={tmp_path / 'data'}",
                 f"--output_dir={tmp_path / 'runs'}")
    _report(capsys.readouterr().out, "cifar10 test set")
    run = RunDirectory.open(tmp_path / "runs" / "dst")
    assert run.complete and run.manifest["config"]["batch_size"] == 8
    ticket = run.load_tickets()[0]
    assert ticket.input_shape == (None, 32, 32, 3) and ticket.output_shape == (None, 10)


@pytest.mark.parametrize("test_folder, evaluated_on", [
    (True, "folder test set"), (False, "folder validation split")])
def test_main_job_on_a_folder_of_images(test_folder, evaluated_on, tmp_path, run_main,
                                        capsys):
    from freetickets_tf.scripts import train

    rng = np.random.default_rng(0)
    for split, count in (("images", 12), ("test_images", 3)):
        for label, name in enumerate(["cat", "dog", "fox"]):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 100, (20, 24, 3)) + 60 * label
                keras.utils.save_img(str(tmp_path / split / name / f"{i}.png"), image,
                                     scale=False)
    test_flags = [f"--image_folder_test={tmp_path / 'test_images'}"] if test_folder else []
    run_main(train, *TINY, "--dataset=folder", f"--image_folder={tmp_path / 'images'}",
             *test_flags, "--image_size=16", f"--output_dir={tmp_path / 'runs'}")
    _report(capsys.readouterr().out, evaluated_on)
    ticket = RunDirectory.open(tmp_path / "runs" / "dst").load_tickets()[0]
    assert ticket.input_shape == (None, 16, 16, 3) and ticket.output_shape == (None, 3)


def test_flag_files_parse_and_reproduce_the_paper_settings(run_main, monkeypatch):
    from freetickets_tf.scripts import train

    seen = {}

    def record(method, build, train_data, validation, config, run_dir, strategy):
        seen[method] = config
        raise SystemExit(0)

    no_data = ((None, None), None, (None, None), "test set", 10, (32, 32, 3))
    monkeypatch.setattr(train, "_load_data", lambda: no_data)
    monkeypatch.setattr("freetickets_tf.recipes.train_ensemble", record)
    # No data here, so nothing to check a run directory against.
    monkeypatch.setattr("freetickets_tf.recipes.check_resumable", lambda *a, **k: None)
    folder = os.path.join(os.path.dirname(train.__file__), "flags")
    with pytest.raises(SystemExit):
        run_main(train, f"--flagfile={os.path.join(folder, 'wrn28x10_cifar10_edst.cfg')}")
    edst = seen["edst"]
    assert (edst.epochs, edst.exploration_epochs, edst.reference_epochs) == (450, 150, 250)
    assert edst.edst_schedule().learning_rates == (0.1, 0.01, 0.001)
    assert (edst.density, edst.update_frequency, edst.batch_size) == (0.2, 1000, 128)
    with pytest.raises(SystemExit):
        run_main(train, f"--flagfile={os.path.join(folder, 'wrn28x10_cifar100_dst.cfg')}")
    dst = seen["dst"]
    assert (dst.epochs, dst.weight_decay, dst.lr_milestones) == (250, 5e-4, (0.5, 0.75))
    with pytest.raises(SystemExit):
        run_main(train, f"--flagfile={os.path.join(folder, 'resnet50_imagenet_edst.cfg')}")
    imagenet = seen["edst"]
    schedule = imagenet.edst_schedule()
    assert schedule.phases == [(100, 170), (170, 240), (240, 310)]
    assert (imagenet.label_smoothing, imagenet.update_frequency) == (0.1, 4000)
    assert schedule.learning_rate(4) == pytest.approx(0.1)
    assert schedule.learning_rate(200) == pytest.approx(0.001)


def test_help_of_the_installed_command_lists_its_flags():
    command = os.path.join(os.path.dirname(sys.executable), "freetickets-train")
    result = subprocess.run([command, "--help"], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 1, result.stderr[-2000:]  # absl's --help exit status
    assert "  --method:" in result.stdout and "  --seed:" in result.stdout


@pytest.mark.parametrize("program, module, own, shared", [
    ("freetickets-evaluate", "evaluate", "--modes", "--run_dir"),
    ("freetickets-export", "export", "--output", "--run_dir"),
])
def test_help_lists_the_commands_own_flags(program, module, own, shared, monkeypatch,
                                           capsys, global_flags):
    # In-process, as the installed wrapper runs it (its argv[0] is the program).
    import importlib

    script = importlib.import_module(f"freetickets_tf.scripts.{module}")
    monkeypatch.setattr(sys, "argv", [program, "--help"])
    with pytest.raises(SystemExit):
        script.run()
    out = capsys.readouterr().out
    assert f"  {own}:" in out and f"  {shared}:" in out


def test_flag_choices_are_the_library_choices():
    import freetickets_tf as ft
    from freetickets_tf.scripts import train

    assert train.WEIGHT_DECAY_MODES == ft.optimizers.WEIGHT_DECAY_MODES
    assert train.WEIGHT_DECAY_SCOPES == ft.optimizers.WEIGHT_DECAY_SCOPES
    assert train.INITIALIZERS == ft.models.INITIALIZERS
    assert train.GROWTH_BATCHES == ft.callbacks.GROWTH_BATCHES
    assert train.GROWTH_MODES == ft.updaters.GROWTH_MODES
    assert train.DEATH_RULES == tuple(ft.updaters.DEATH_RULES)
    assert train.DEATH_RATE_SCHEDULES == ft.schedules.DEATH_RATE_SCHEDULES
    assert train.DISTRIBUTIONS == ft.densities.DISTRIBUTIONS
    assert train.METHODS == ft.recipes.METHODS
    assert train.STRATEGIES == ft.distribute.STRATEGIES


def test_batch_not_divisible_by_replicas_fails_from_the_command_line(tmp_path):
    result = _train("--strategy=mirrored", "--cpu_devices=2", "--batch_size=65",
                    f"--output_dir={tmp_path}", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "does not split evenly over the 2 replicas" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "dense")


def test_a_full_disk_ends_with_a_short_error_and_a_resumable_directory(
        tmp_path, run_main, monkeypatch, capsys):
    import errno

    from freetickets_tf import io
    from freetickets_tf.scripts import train

    real = io._fsync_path
    calls = []

    def filling(path):
        calls.append(path)
        if len(calls) > 6:  # the disk fills up during training
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path)

    monkeypatch.setattr(io, "_fsync_path", filling)
    with pytest.raises(SystemExit) as exit_:
        run_main(train, *SMALL, "--nocompare", f"--output_dir={tmp_path}")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: cannot write" in err and "No space left on device" in err
    assert "Traceback" not in err
    RunDirectory.open(tmp_path / "edst")  # a consistent directory to resume from


def test_overwrite_refuses_a_directory_another_process_writes(tmp_path, run_main, capsys):
    from freetickets_tf.scripts import train

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from freetickets_tf.tickets import RunDirectory\n"
         "run = RunDirectory.create(sys.argv[1], 'edst', 2)\n"
         "print('locked', flush=True); time.sleep(60)", str(tmp_path / "edst")],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit) as exit_:
            run_main(train, *SMALL, "--nocompare", "--overwrite",
                     f"--output_dir={tmp_path}")
        assert exit_.value.code == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
        assert os.path.exists(tmp_path / "edst" / "tickets.json")  # not deleted
    finally:
        holder.kill()
        holder.wait()


def test_another_model_on_a_finished_run_is_refused_at_start_up(tmp_path, run_main):
    from absl import app

    from freetickets_tf.scripts import train

    flags = ["--method=dense", "--nocompare", "--model=lenet300-100", "--epochs=1",
             "--lr=0.2", "--verbose=0", f"--output_dir={tmp_path}"]
    run_main(train, *flags)
    with pytest.raises(app.UsageError, match="architecture.*--overwrite"):
        run_main(train, *flags, "--model=mlp-cifar10")
    with pytest.raises(app.UsageError, match="train_data"):
        run_main(train, *flags, "--validation_fraction=0.2")
