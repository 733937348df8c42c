"""tickets.json is checked before it is trusted: types, members, counts, and
files that stay inside the run directory."""

import json
import os

import pytest

import freetickets_tf as ft
from freetickets_tf.tickets import RunDirectory


@pytest.fixture
def run_dir(tmp_path, mlp):
    sparse = ft.sparsify(mlp, 0.3, seed=0)
    path = tmp_path / "run"
    run = RunDirectory.create(path, "dst", 2)
    run.save_ticket(sparse, 0, seed=0)
    run.save_ticket(sparse, 1, seed=1)
    run.release()
    (tmp_path / "outside.keras").write_bytes((path / "ticket_0.keras").read_bytes())
    return path


def _edit(path, change):
    manifest_path = os.path.join(path, "tickets.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    change(manifest)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(manifest):
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _drop(index, key):
    def change(manifest):
        del manifest["tickets"][index][key]
    return change


CASES = [
    (_set("tickets", 0, "file", "/etc/passwd"), r"tickets\[0\].file.*not a file name inside"),
    (_set("tickets", 0, "file", "../outside.keras"), r"tickets\[0\].file.*inside"),
    (_set("tickets", 0, "file", ""), r"tickets\[0\].file"),
    (_set("tickets", 0, "file", 3), r"tickets\[0\].file"),
    (_set("tickets", 0, "file", "gone.keras"), r"tickets\[0\].file.*missing"),
    (_set("tickets", 1, "member", 7), r"tickets\[1\].member.*is 7.*0..1"),
    (_set("tickets", 1, "member", -1), r"tickets\[1\].member"),
    (_set("tickets", 1, "member", "1"), r"tickets\[1\].member"),
    (_set("tickets", 1, "member", True), r"tickets\[1\].member"),
    (_set("tickets", 1, "member", 0), r"tickets\[1\].member.*repeats member 0"),
    (_set("num_members", 0), "num_members"),
    (_set("num_members", "2"), "num_members"),
    (_set("num_members", 1), "lists 2 tickets for 1 members"),
    (_set("tickets", "oops"), "`tickets` is a str, not a list"),
    (_set("tickets", 0, "oops"), r"tickets\[0\] is not an object"),
    (_drop(0, "sha256"), r"tickets\[0\] lacks the key 'sha256'"),
    (_drop(1, "member"), r"tickets\[1\] lacks the key 'member'"),
    (_drop(0, "file"), r"tickets\[0\] lacks the key 'file'"),
    (_drop(0, "density"), r"tickets\[0\] lacks the key 'density'"),
    (_set("tickets", 0, "density", 1.5), r"tickets\[0\].density"),
    (_set("tickets", 0, "density", 0), r"tickets\[0\].density"),
    (_set("tickets", 0, "density", "0.3"), r"tickets\[0\].density"),
    (_set("tickets", 0, "sha256", "abc"), r"tickets\[0\].sha256"),
    (_set("format", 3), "format.*reads formats 1, 2"),
    (_set("method", 4), "`method`"),
    (_set("config", "x"), "`config`"),
    (_set("checkpoint", {"file": "../../state.keras"}), "checkpoint.file"),
    (_set("checkpoint", {"file": "checkpoint/s.keras", "best_file": "/tmp/x"}),
     "checkpoint.best_file"),
    (_set("checkpoint", "yes"), "`checkpoint`"),
]


@pytest.mark.parametrize("change, match", CASES)
def test_a_broken_manifest_is_refused_by_every_reader(run_dir, change, match):
    _edit(run_dir, change)
    with pytest.raises(ValueError, match=match):
        RunDirectory.open(run_dir)
    with pytest.raises(ValueError, match=match):
        ft.EnsembleModel.from_run(run_dir)
    with pytest.raises(ValueError, match=match):
        RunDirectory.create(run_dir, "dst", 2)


def test_the_whole_manifest_must_be_an_object(run_dir):
    with open(run_dir / "tickets.json", "w") as f:
        json.dump(["tickets"], f)
    with pytest.raises(ValueError, match="is a list, not an object"):
        RunDirectory.open(run_dir)


def test_a_ticket_linked_out_of_the_directory_is_refused(run_dir):
    os.remove(run_dir / "ticket_0.keras")
    os.symlink(run_dir.parent / "outside.keras", run_dir / "ticket_0.keras")
    with pytest.raises(ValueError, match="inside the run directory"):
        RunDirectory.open(run_dir)


def test_a_wrong_recorded_density_is_refused_on_load(run_dir):
    _edit(run_dir, _set("tickets", 0, "density", 0.9))
    run = RunDirectory.open(run_dir)
    with pytest.raises(ValueError, match="ticket 0 has density 0.3.*records 0.9"):
        run.load_ticket(0)
