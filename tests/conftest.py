"""Shared test setup: quiet TensorFlow, deterministic seeds, tiny models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# CI runs the whole suite on TensorFlow, then again on JAX and on PyTorch.
# The JAX and PyTorch runs leave out what does not depend on the Keras backend
# (command-line plumbing, tensorflow-datasets loaders, packaging, the model
# zoo's shapes and parameter counts, file locking and writing, the manifest
# schema, the table of argument checks, killing real processes) to stay within CI's time; the scripts'
# work itself (recipes, evaluation) is covered there by the library's tests.
collect_ignore = [] if keras.backend.backend() == "tensorflow" else [
    "scripts", "benchmarks", "models", "data", "test_packaging.py",
    "test_run_lock.py", "test_manifest.py",
    "test_io.py", "test_bad_input.py", "test_kill_resume.py",
]


def file_tree(root):
    """Every path under `root` with its contents' digest (None: a directory),
    to assert that a failed call changed nothing on disk."""
    import hashlib

    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture
def tree():
    """`tree(root)`: see `file_tree`."""
    return file_tree


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def mlp():
    """A small dense Sequential classifier on 16 features, 4 classes."""
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(64, activation="relu", name="hidden1"),
            keras.layers.Dense(64, activation="relu", name="hidden2"),
            keras.layers.Dense(4, name="logits"),
        ]
    )


@pytest.fixture
def toy_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x[:, :4].argmax(axis=1)).astype("int32")
    return x, y


@pytest.fixture
def compile_model():
    """`compile_model(model, optimizer=None, **compile_kwargs)` for classifiers."""

    def compile_model(model, optimizer=None, **kwargs):
        model.compile(
            optimizer=optimizer or keras.optimizers.SGD(0.05, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            **kwargs,
        )
        return model

    return compile_model


@pytest.fixture
def read_scalars():
    """`read_scalars(directory) -> {tag: {step: value}}` from TensorBoard
    event files, scalars only."""
    import glob

    import tensorflow as tf

    def read_scalars(directory):
        found = {}
        for path in glob.glob(os.path.join(str(directory), "events.out.tfevents.*")):
            for event in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(event.numpy())
                for value in event.summary.value:
                    if value.HasField("tensor"):
                        array = tf.make_ndarray(value.tensor)
                        if array.ndim or array.dtype.kind not in "fiu":
                            continue  # text, images, graphs
                        number = float(array)
                    else:
                        number = value.simple_value
                    found.setdefault(value.tag, {})[event.step] = number
        return found

    return read_scalars


@pytest.fixture
def no_network(monkeypatch):
    """Fails the test if anything opens a network connection."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
