"""Bad command lines of the three installed commands, table-driven: each
case runs the command's own entry point in-process (a subprocess per case
would cost CI minutes) and must end with exit status 2 and one short line
on stderr that names the flag, no traceback, and every file unchanged.
"""

import dataclasses
import os
import stat
import sys

import pytest
from absl import flags

import freetickets_tf as ft
from freetickets_tf.scripts import evaluate
from freetickets_tf.scripts import export
from freetickets_tf.scripts import train
from freetickets_tf.tickets import RunDirectory

COMMANDS = {"train": ("freetickets-train", train), "evaluate": (
    "freetickets-evaluate", evaluate), "export": ("freetickets-export", export)}


@dataclasses.dataclass
class Case:
    id: str
    command: str
    args: list     # "{tmp}" stands for the case's directory
    names: str     # text the error line must contain


CASES = []


def case(id, command, args, names):
    CASES.append(Case(id, command, list(args), names))


TRAIN = [
    ("method-unknown", ["--method=lottery"], "method"),
    ("method-empty", ["--method="], "method"),
    ("unknown-flag", ["--epochz=3"], "epochz"),
    ("epochs-negative", ["--epochs=-1"], "--epochs=-1: expected an integer >= 1"),
    ("epochs-zero", ["--epochs=0"], "--epochs"),
    ("epochs-text", ["--epochs=ten"], "epochs"),
    ("epochs-float", ["--epochs=2.5"], "epochs"),
    ("edst-epochs-zero", ["--edst_epochs=0"], "--edst_epochs"),
    ("exploration-not-shorter", ["--edst_epochs=4", "--exploration_epochs=4"],
     "exploration_epochs"),
    ("exploration-zero", ["--exploration_epochs=0"], "--exploration_epochs"),
    ("exploration-for-dst", ["--method=dst", "--exploration_epochs=3"],
     "--exploration_epochs is a setting"),
    ("growth-for-static", ["--method=static", "--growth=random"], "--growth is a setting"),
    ("growth-unknown", ["--growth=rigl"], "growth"),
    ("death-unknown", ["--death=oldest"], "death"),
    ("schedule-unknown", ["--death_rate_schedule=linear"], "death_rate_schedule"),
    ("growth-batch-for-static", ["--method=static", "--growth_batch=last"],
     "--growth_batch is a setting"),
    ("growth-batch-last-random", ["--growth=random", "--growth_batch=last"],
     "growth_batch"),
    ("members-zero", ["--num_members=0"], "num_members"),
    ("members-text", ["--num_members=three"], "num_members"),
    ("model-unknown", ["--model=resnet1000"], "resnet1000"),
    ("dataset-unknown", ["--dataset=imagenet"], "dataset"),
    ("strategy-unknown", ["--strategy=horovod"], "strategy"),
    ("data-dir-missing", ["--dataset=cifar10", "--data_dir=/nonexistent"], "--data_dir"),
    ("folder-without-path", ["--dataset=folder"], "--image_folder"),
    ("folder-test-without-folder", ["--image_folder_test=x"],
     "--image_folder_test needs --dataset=folder"),
    ("folder-without-folder-dataset", ["--image_folder=x"], "--image_folder needs"),
    ("image-size-zero", ["--image_size=0"], "--image_size"),
    ("precision-unknown", ["--precision=float16"], "precision"),
    ("density-zero", ["--density=0"], "density"),
    ("density-above-one", ["--density=1.5"], "density"),
    ("density-nan", ["--density=nan"], "density"),
    ("density-text", ["--density=most"], "density"),
    ("distribution-unknown", ["--distribution=normal"], "distribution"),
    ("lr-zero", ["--lr=0"], "learning_rate"),
    ("lr-negative", ["--lr=-0.1"], "learning_rate"),
    ("lr-inf", ["--lr=inf"], "learning_rate"),
    ("momentum-above", ["--momentum=1.5"], "momentum"),
    ("momentum-one", ["--momentum=1"], "momentum"),
    ("momentum-nan", ["--momentum=nan"], "momentum"),
    ("weight-decay-negative", ["--weight_decay=-0.1"], "weight_decay"),
    ("weight-decay-nan", ["--weight_decay=nan"], "weight_decay"),
    ("weight-decay-mode", ["--weight_decay_mode=l2"], "weight_decay_mode"),
    ("weight-decay-scope", ["--weight_decay_scope=biases"], "weight_decay_scope"),
    ("initializer-unknown", ["--initializer=he"], "initializer"),
    ("label-smoothing-one", ["--label_smoothing=1"], "label_smoothing"),
    ("death-rate-one", ["--death_rate=1"], "death_rate"),
    ("large-death-rate-negative", ["--large_death_rate=-0.5"], "large_death_rate"),
    ("update-frequency-zero", ["--update_frequency=0"], "--update_frequency"),
    ("update-end-fraction", ["--method=dst", "--update_end_fraction=2"],
     "update_end_fraction"),
    ("batch-size-zero", ["--batch_size=0"], "--batch_size=0"),
    ("warmup-negative", ["--warmup_epochs=-1"], "--warmup_epochs"),
    ("snapshot-every-zero", ["--snapshot_every=0"], "--snapshot_every"),
    ("lr-milestones-text", ["--method=dst", "--lr_milestones=0.5,late"], "lr_milestones"),
    ("lr-milestones-range", ["--method=dst", "--lr_milestones=0.5,1.5"], "lr_milestones"),
    ("refinement-lrs-negative", ["--refinement_lrs=-0.1,0.01"], "refinement"),
    ("refinement-lrs-text", ["--refinement_lrs=fast,slow"], "refinement_lrs"),
    ("phase-milestones-text", ["--phase_milestones=mid"], "phase_milestones"),
    ("exploration-milestones-for-dst", ["--method=dst", "--exploration_milestones=3"],
     "--exploration_milestones is a setting"),
    ("finetune-for-dst", ["--method=dst", "--finetune_epochs=3"],
     "--finetune_epochs is a setting"),
    ("finetune-lr-zero", ["--method=pf", "--finetune_lr=0"], "finetune"),
    ("pruning-for-dst", ["--method=dst", "--pruning_end=0.5"], "--pruning_end is a setting"),
    ("pruning-end-before-begin", ["--method=gmp", "--pruning_begin=0.5", "--pruning_end=0.4"],
     "pruning_end"),
    ("pruning-end-one", ["--method=gmp", "--pruning_end=1"], "pruning_end"),
    ("pruning-frequency-zero", ["--method=gmp", "--pruning_frequency=0"],
     "--pruning_frequency"),
    ("pruning-frequency-too-long", ["--method=gmp", "--epochs=1",
                                    "--pruning_frequency=100000"], "pruning_frequency"),
    ("cpu-devices-without-mirrored", ["--cpu_devices=2"], "--cpu_devices"),
    ("seed-negative", ["--seed=-1"], "seed"),
    ("validation-fraction-one", ["--validation_fraction=1.0"], "validation_fraction"),
    ("validation-fraction-negative", ["--validation_fraction=-0.1"], "validation_fraction"),
    ("output-dir-is-a-file", ["--output_dir={tmp}/existing/tickets.json/runs"], "is a file"),
    ("output-dir-read-only", ["--output_dir={tmp}/read-only/runs"], "output_dir"),
    ("other-settings", ["--output_dir={tmp}", "--method=dst", "--nocompare",
                        "--density=0.4"], "--overwrite"),
]
for id, args, names in TRAIN:
    if not any(a.startswith("--output_dir") for a in args):
        args = [*args, "--output_dir={tmp}/runs"]
    case(f"train-{id}", "train", args, names)

EVALUATE = [
    ("run-dir-required", [], "run_dir"),
    ("run-dir-missing", ["--run_dir={tmp}/nowhere"], "--run_dir"),
    ("run-dir-partial", ["--run_dir={tmp}/partial"], "partial"),
    ("run-dir-is-a-file", ["--run_dir={tmp}/existing/tickets.json"], "--run_dir"),
    ("modes-unknown", ["--run_dir={tmp}/existing", "--modes=predict,vibes"], "modes"),
    ("modes-tsne-without-snapshots", ["--run_dir={tmp}/existing", "--modes=tsne"],
     "snapshot"),
    ("num-bins-zero", ["--run_dir={tmp}/existing", "--num_bins=0"], "num_bins"),
    ("tsne-examples-zero", ["--run_dir={tmp}/existing", "--modes=tsne",
                            "--tsne_examples=0"], "tsne_examples"),
    ("data-unknown", ["--run_dir={tmp}/existing", "--data=imagenet22k"], "--data"),
    ("ood-missing-file", ["--run_dir={tmp}/existing", "--modes=ood",
                          "--ood={tmp}/missing.npz"], "missing.npz"),
    ("severities-text", ["--run_dir={tmp}/existing", "--modes=corruption",
                         "--severities=high"], "severities"),
    ("severities-range", ["--run_dir={tmp}/existing", "--modes=corruption",
                          "--severities=7"], "severit"),
    ("corruptions-unknown", ["--run_dir={tmp}/existing", "--modes=corruption",
                             "--corruptions=rain"], "corruption"),
    # A digits run has no CIFAR-C images to score: refused before any work.
    ("corruption-of-a-digits-run", ["--run_dir={tmp}/existing", "--modes=corruption"],
     "CIFAR-C images (32, 32, 3), but the members take (8, 8, 1)"),
    ("data-tfds-not-prepared", ["--run_dir={tmp}/existing", "--data=cifar10",
                                "--data_dir={tmp}/empty"], "tfds build cifar10"),
    ("report-dir-is-a-file", ["--run_dir={tmp}/existing",
                              "--report_dir={tmp}/existing/tickets.json"], "report_dir"),
]
for id, args, names in EVALUATE:
    case(f"evaluate-{id}", "evaluate", args, names)

EXPORT = [
    ("run-dir-required", ["--output={tmp}/exported"], "run_dir"),
    ("output-required", ["--run_dir={tmp}/existing"], "output"),
    ("run-dir-missing", ["--run_dir={tmp}/nowhere", "--output={tmp}/exported"],
     "--run_dir"),
    ("run-dir-partial", ["--run_dir={tmp}/partial", "--output={tmp}/exported"], "partial"),
    ("output-is-a-file", ["--run_dir={tmp}/existing",
                          "--output={tmp}/existing/tickets.json"], "--output"),
    ("output-is-another-directory", ["--run_dir={tmp}/existing",
                                     "--output={tmp}/existing"], "--output"),
    ("unknown-flag", ["--run_dir={tmp}/existing", "--output={tmp}/exported",
                      "--format=onnx"], "format"),
]
for id, args, names in EXPORT:
    case(f"export-{id}", "export", args, names)


@pytest.fixture
def workdir(tmp_path, monkeypatch, digits_model):
    """A finished 2-ticket run, a partial one and a read-only folder."""
    monkeypatch.chdir(tmp_path)
    run = RunDirectory.create(str(tmp_path / "existing"), "dst", 2, {"epochs": 1})
    for member in range(2):
        run.save_ticket(ft.sparsify(digits_model(member), 0.5, seed=member), member=member)
    run.release()
    partial = RunDirectory.create(str(tmp_path / "partial"), "dst", 2)
    partial.save_ticket(ft.sparsify(digits_model(0), 0.5, seed=0), member=0)
    partial.release()
    os.makedirs(tmp_path / "read-only")
    os.chmod(tmp_path / "read-only", stat.S_IRUSR | stat.S_IXUSR)
    yield tmp_path
    os.chmod(tmp_path / "read-only", stat.S_IRWXU)


def test_the_table_is_large_enough():
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_command_line_is_a_short_usage_error(case, workdir, global_flags, tree,
                                                 monkeypatch, capsys):
    if case.id == "train-output-dir-read-only":
        # Root may write anywhere (CI may run as root): answer os.access as
        # for any other user.
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: (
            "read-only" not in str(path) and real_access(path, mode)))
    program, module = COMMANDS[case.command]
    args = [a.replace("{tmp}", str(workdir)) for a in case.args]
    if case.id == "train-other-settings":  # a dst run of other settings is there
        RunDirectory.create(str(workdir / "dst"), "dst", 3, {"density": 0.2}).release()
    before = tree(workdir)
    flags.FLAGS.unparse_flags()
    monkeypatch.setattr(sys, "argv", [program, *args])
    with pytest.raises(SystemExit) as exit_:
        module.run()
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, (out + err)[-3000:]
    # The error is the last thing printed (TensorFlow may log before it).
    start = err.rfind(f"{program}: error: ")
    assert start >= 0, err[-3000:]
    message = err[start:]
    assert case.names in message, message
    assert len(message.splitlines()) <= 3, message
    assert "Traceback" not in err + out
    assert tree(workdir) == before
