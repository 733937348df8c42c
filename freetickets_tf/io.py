"""Atomic writes: a file is either the old version or the complete new one."""

import contextlib
import json
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    For writers that take a file name (savefig, model.save): write to the
    yielded path; an exception leaves any previous `path` untouched.

    Example:

    >>> with atomic_path("report.png", ".png") as tmp:
    ...     figure.savefig(tmp)
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same directory, so the final rename cannot cross file systems.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model_atomic(model, path):
    """Saves `model` to the `.keras` file `path` via a temporary file and rename.

    An interrupted save leaves any previous file at `path` untouched.

    Example:

    >>> save_model_atomic(model, "runs/ticket_0.keras")
    """
    if not str(path).endswith(".keras"):
        raise ValueError(f"Invalid `path`: {path!r}. Expected a `.keras` file name.")
    with atomic_path(path, ".keras") as tmp:
        model.save(tmp)


def write_text_atomic(text, path):
    """Writes the string `text` to `path` via a temporary file and rename.

    Example:

    >>> write_text_atomic("| Method | Accuracy |\n", "runs/report.md")
    """
    with atomic_path(path, ".tmp") as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(data, path):
    """Writes `data` as indented JSON to `path` via a temporary file and rename.

    Example:

    >>> write_json_atomic({"tickets": []}, "runs/edst/tickets.json")
    """
    write_text_atomic(json.dumps(data, indent=2) + "\n", path)


def save_arrays_atomic(arrays, path):
    """Saves a list of numpy arrays to the `.npz` file `path` atomically.

    Example:

    >>> save_arrays_atomic(model.get_weights(), "best.npz")
    >>> model.set_weights(load_arrays("best.npz"))
    """
    with atomic_path(path, ".npz") as tmp:
        # Keyed by position, zero-padded so the archive keeps their order.
        np.savez(tmp, **{f"a{i:05d}": a for i, a in enumerate(arrays)})


def load_arrays(path):
    """The list of arrays saved by `save_arrays_atomic`, in order."""
    with np.load(path) as archive:
        return [archive[name] for name in sorted(archive.files)]
