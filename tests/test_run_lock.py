"""One process per run directory, across processes: the lock is the
operating system's (flock), so it needs real second processes. Backend
independent: run on TensorFlow only (tests/conftest.py)."""

import os
import socket
import subprocess
import sys

import pytest

import freetickets_tf as ft
from freetickets_tf import tickets
from freetickets_tf.tickets import RunDirectory


@pytest.fixture
def sparse_mlp(mlp):
    return ft.sparsify(mlp, 0.3, seed=0)


_HOLD = """
import sys, time
from freetickets_tf.tickets import RunDirectory
run = RunDirectory.create(sys.argv[1], "dst", 2)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _python(code, *args):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_a_second_process_is_refused_and_the_first_unharmed(tmp_path, sparse_mlp):
    run = RunDirectory.create(tmp_path, "dst", 2)
    other = _python(_HOLD, tmp_path, 0)
    _, err = other.communicate(timeout=120)
    assert other.returncode != 0
    assert "RunInUseError" in err and f"pid {os.getpid()}" in err
    assert socket.gethostname() in err
    run.save_ticket(sparse_mlp, 0, seed=0)  # the holder goes on writing
    assert RunDirectory.open(tmp_path).finished_members == {0}
    run.release()
    again = _python(_HOLD, tmp_path, 0)
    assert again.communicate(timeout=120)[0].strip() == "locked"


def test_this_process_is_refused_while_another_holds_the_run(tmp_path):
    holder = _python(_HOLD, tmp_path, 60)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(tickets.RunInUseError, match=f"pid {holder.pid} on host"):
            RunDirectory.create(tmp_path, "dst", 2)
        assert "tickets.json" in os.listdir(tmp_path)  # nothing of ours written
    finally:
        holder.kill()
        holder.wait()
    # Killed: the operating system released the lock.
    RunDirectory.create(tmp_path, "dst", 2).release()
