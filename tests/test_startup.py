"""The scripts' quiet start: TensorFlow's known C++ start-up lines are held
back, everything else written to stderr is passed through in order."""

import os
import subprocess
import sys

import keras
import pytest

from freetickets_tf import _startup

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796223036.408145    8535 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off "
    "errors from different computation orders. To turn them off, set the environment "
    "variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796223036.408541    8535 cudart_stub.cc:31] Could not find cuda drivers "
    "on your machine, GPU will not be used.",
    "E0000 00:00:1733.12 1 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting "
    "to register factory for plugin cuDNN when one has already been registered",
]
KEPT = [
    "E0000 00:00:1796223041.143916    8535 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1.1 1 some_other.cc:1] a line nobody has classified",
    "Traceback (most recent call last):",
]


def test_known_start_up_lines_are_held_back_and_the_rest_kept_in_order(capfd):
    lines = [NOISE[0], KEPT[0], NOISE[1], NOISE[2], KEPT[1], NOISE[3], KEPT[2]]
    with _startup.native_noise_filtered():
        os.write(2, "".join(line + "\n" for line in lines).encode())
        os.write(2, b"a later line\n")
    assert capfd.readouterr().err.splitlines() == [*KEPT, "a later line"]


def test_disabled_filter_passes_everything(capfd):
    with _startup.native_noise_filtered(enabled=False):
        os.write(2, (NOISE[1] + "\n").encode())
    assert capfd.readouterr().err == NOISE[1] + "\n"


def test_an_error_in_the_block_still_restores_stderr(capfd):
    with pytest.raises(ImportError), _startup.native_noise_filtered():
        os.write(2, (KEPT[2] + "\n" + NOISE[2] + "\n").encode())
        raise ImportError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == KEPT[2] + "\nafter\n"


@pytest.mark.parametrize("argv, orig_argv, expected", [
    (["/venv/bin/freetickets-train", "--epochs=3"], ["python", "/venv/bin/freetickets-train"],
     True),
    (["-m"], ["python", "-m", "freetickets_tf.scripts.evaluate", "--run_dir=r"], True),
    (["-m"], ["python", "-m", "pytest"], False),
    (["my_script.py"], ["python", "my_script.py"], False),
])
def test_only_the_scripts_are_quietened(monkeypatch, argv, orig_argv, expected):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert _startup.running_a_script() is expected


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow prints its start-up lines where it is the backend")
def test_a_script_starts_without_tensorflows_start_up_lines():
    run = [sys.executable, "-m", "freetickets_tf.scripts.export", "--help"]
    result = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert "--run_dir" in result.stdout + result.stderr  # it did start
    assert not [line for line in result.stderr.splitlines() if _startup.is_noise(line)]


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_a_script_turns_tensorflows_info_lines_off_unless_told_otherwise(
        monkeypatch, preset, expected):
    monkeypatch.setattr(_startup, "running_a_script", lambda: True)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    if preset is not None:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", preset)
    with _startup.script_start_quietened():
        pass
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == expected


def test_a_library_user_is_left_alone(monkeypatch):
    monkeypatch.setattr(_startup, "running_a_script", lambda: False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with _startup.script_start_quietened():
        pass
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
