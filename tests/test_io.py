"""Atomic writes: durable (file and directory flushed), readable as the umask
says, all-or-nothing on failure (a full disk included), strict JSON."""

import errno
import json
import os
import stat

import numpy as np
import pytest

from freetickets_tf import io


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_honour_the_umask(tmp_path, umask_022):
    io.write_text_atomic("x", tmp_path / "a.txt")
    io.save_arrays_atomic([np.ones(3)], tmp_path / "a.npz")
    assert _mode(tmp_path / "a.txt") == 0o644 and _mode(tmp_path / "a.npz") == 0o644
    os.umask(0o077)
    io.write_text_atomic("y", tmp_path / "b.txt")
    assert _mode(tmp_path / "b.txt") == 0o600


def test_directories_honour_the_umask(tmp_path, umask_022):
    with io.atomic_directory(str(tmp_path / "export")) as tmp:
        os.makedirs(os.path.join(tmp, "variables"))
        with open(os.path.join(tmp, "variables", "data"), "w") as f:
            f.write("weights")
    assert _mode(tmp_path / "export") == 0o755
    assert _mode(tmp_path / "export" / "variables") == 0o755
    assert _mode(tmp_path / "export" / "variables" / "data") == 0o644


def test_file_and_directory_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    flushed = []
    real = io._fsync_path

    def recording(path):
        flushed.append((os.path.basename(path), os.path.exists(tmp_path / "a.json")))
        real(path)

    monkeypatch.setattr(io, "_fsync_path", recording)
    io.write_json_atomic({"a": 1}, tmp_path / "a.json")
    (name, renamed), (directory, after) = flushed
    assert name.startswith(io.TEMPORARY_PREFIX) and not renamed  # the file, first
    assert directory == tmp_path.name and after  # then its directory


def test_a_full_disk_keeps_the_last_good_file_and_no_temporary(tmp_path, monkeypatch):
    io.write_text_atomic("good", tmp_path / "a.txt")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "_fsync_path", no_space)
    with pytest.raises(OSError, match="No space"):
        io.write_text_atomic("new", tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text() == "good"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_failed_directory_write_keeps_the_old_directory(tmp_path):
    target = str(tmp_path / "export")
    with io.atomic_directory(target) as tmp:
        open(os.path.join(tmp, "old"), "w").close()
    with pytest.raises(RuntimeError):
        with io.atomic_directory(target) as tmp:
            open(os.path.join(tmp, "new"), "w").close()
            raise RuntimeError("export failed")
    assert os.listdir(target) == ["old"] and os.listdir(tmp_path) == ["export"]


def test_json_is_strict():
    data = {"nll": float("nan"), "ece": np.float32("inf"), "n": np.int64(3),
            "rows": [1.5, float("-inf")], "pair": (np.float64(0.25), None)}
    assert io.strict_json(data) == {"nll": None, "ece": None, "n": 3,
                                    "rows": [1.5, None], "pair": [0.25, None]}


def test_written_json_parses_with_a_strict_parser(tmp_path):
    io.write_json_atomic({"ece": float("nan"), "ok": 1.0}, tmp_path / "r.json")

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    parsed = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert parsed == {"ece": None, "ok": 1.0}


def test_sweep_removes_only_temporary_names(tmp_path):
    (tmp_path / ".tmp-abc.keras").write_text("half a model")
    (tmp_path / ".tmp-dir-x").mkdir()
    (tmp_path / "ticket_0.keras").write_text("a ticket")
    assert io.sweep_temporary(tmp_path) == [".tmp-abc.keras", ".tmp-dir-x"]
    assert os.listdir(tmp_path) == ["ticket_0.keras"]
    assert io.sweep_temporary(tmp_path / "missing") == []
