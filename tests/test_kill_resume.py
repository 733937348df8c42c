"""A user-written `model.fit` (DST + EDST + TrainingCheckpoint) killed with
SIGKILL after an epoch resumes, in a new process, to the tickets of an
uninterrupted run. Real processes, so TensorFlow only (tests/conftest.py);
the restore itself is tested in-process on every backend
(tests/callbacks/test_training_checkpoint.py)."""

import os
import signal
import subprocess
import sys

import numpy as np

from freetickets_tf.tickets import RunDirectory

SCRIPT = '''
import os, signal, sys
import keras, numpy as np
import freetickets_tf as ft

run_dir, kill_after = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 16)).astype("float32")
y = x[:, :4].argmax(axis=1).astype("int32")
train = ft.data.from_arrays(x[:192], y[:192], batch_size=32, seed=0)
keras.utils.set_random_seed(0)
model = ft.sparsify(keras.Sequential([keras.Input((16,)),
    keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4)]), 0.3, seed=0)
model.compile(ft.optimizers.TorchSGD(0.1, momentum=0.9, weight_decay=5e-4),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
dst = ft.callbacks.DynamicSparsityCallback(data=train, update_frequency=3, seed=0)
flops = ft.callbacks.TrainingFlopsCallback(32, dst)
edst = ft.callbacks.EDSTCallback(dst, run_dir, 5, 1, 2, seed=0, flops_callback=flops,
                                 verbose=0)
checkpoint = ft.callbacks.TrainingCheckpoint(edst.run, edst.snapshot, flops, stage="edst")


class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


start = checkpoint.initial_epoch
print("start", start, flush=True)
model.fit(train.epochs(start, 5), steps_per_epoch=train.steps_per_epoch,
          initial_epoch=start, epochs=5, validation_data=(x[192:], y[192:]),
          callbacks=[dst, flops, edst, checkpoint, Kill()], shuffle=False, verbose=0)
'''


def _run(path, run_dir, kill_after):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(path), str(run_dir), str(kill_after)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_killed_user_fit_resumes_to_the_same_tickets(tmp_path):
    script = tmp_path / "user_fit.py"
    script.write_text(SCRIPT)
    whole = _run(script, tmp_path / "whole", 0)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _run(script, tmp_path / "killed", 3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _run(script, tmp_path / "killed", 0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "start 3" in resumed.stdout
    a, b = (RunDirectory.open(tmp_path / name) for name in ("whole", "killed"))
    assert a.complete and b.complete
    for ta, tb in zip(a.load_tickets(), b.load_tickets(), strict=True):
        for wa, wb in zip(ta.get_weights(), tb.get_weights(), strict=True):
            np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb))
    assert [t["training_flops"] for t in a.tickets] == [t["training_flops"] for t in b.tickets]
