"""Atomic, durable writes: a file is either the old version or the complete new one.

Every writer here writes a temporary file (or directory) beside its target,
flushes it to disk, gives it the permissions the process umask asks for (as
`open` would; `mkstemp` makes files only the owner can read), renames it
into place and flushes the directory, so that the rename survives a power
loss too. Temporary names start with `TEMPORARY_PREFIX`, so that
`sweep_temporary` can clear what a killed process left behind.
"""

import contextlib
import json
import math
import os
import shutil
import tempfile

import numpy as np

TEMPORARY_PREFIX = ".tmp-"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path):
    """Flushes the file or directory `path` to disk."""
    flags = os.O_RDONLY
    if os.path.isdir(path):
        flags |= getattr(os, "O_DIRECTORY", 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish(tmp, directory=False):
    """Flushes `tmp` (a file, or a directory tree) and sets its permissions."""
    mode = (0o777 if directory else 0o666) & ~_umask()
    if directory:
        for root, dirs, files in os.walk(tmp):
            for name in dirs:
                os.chmod(os.path.join(root, name), mode)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~_umask())
                _fsync_path(os.path.join(root, name))
            _fsync_path(root)
    else:
        _fsync_path(tmp)
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_path(path, suffix):
    """Yields a temporary path beside `path`; moves it onto `path` on success.

    For writers that take a file name (savefig, model.save): write to the
    yielded path; an exception leaves any previous `path` untouched. The
    new file is flushed to disk and its directory too.

    Example:

    >>> with atomic_path("report.png", ".png") as tmp:
    ...     figure.savefig(tmp)
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same directory, so the final rename cannot cross file systems.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        _finish(tmp)
        os.replace(tmp, path)
        _fsync_path(directory)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory beside `path`; puts it at `path` on success.

    An existing `path` is moved aside only once the new directory is
    complete (every file flushed to disk), and restored if the final rename
    fails.

    Example:

    >>> with atomic_directory("serving/edst") as tmp:
    ...     tf.saved_model.save(module, tmp)
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    # Same directory, so the renames cannot cross file systems.
    tmp = tempfile.mkdtemp(dir=parent, prefix=TEMPORARY_PREFIX + "dir-")
    old = tmp + "-old"
    try:
        yield tmp
        _finish(tmp, directory=True)
        if os.path.lexists(path):
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if os.path.lexists(old):
                os.rename(old, path)
            raise
        _fsync_path(parent)
    finally:
        for leftover in (tmp, old):
            if os.path.lexists(leftover):
                shutil.rmtree(leftover, ignore_errors=True)


def sweep_temporary(directory):
    """Removes the temporary files and directories a killed writer left in
    `directory` (names starting with `TEMPORARY_PREFIX`); returns their names.

    Only call it while no other process writes there (a run directory's
    lock).
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in sorted(os.listdir(directory)):
        if not name.startswith(TEMPORARY_PREFIX):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        removed.append(name)
    return removed


def save_model_atomic(model, path, include_optimizer=True):
    """Saves `model` to the `.keras` file `path` via a temporary file and rename.

    An interrupted save leaves any previous file at `path` untouched.

    Args:
        model: A Keras model.
        path: A `.keras` file name.
        include_optimizer: False saves the architecture and weights only
            (what a ticket needs for inference; a `.keras` file of a
            compiled model otherwise carries every optimizer slot, e.g. a
            dense momentum array per kernel). Subclassed models, which Keras
            cannot copy, are saved whole.

    Example:

    >>> save_model_atomic(model, "runs/ticket_0.keras", include_optimizer=False)
    """
    if not str(path).endswith(".keras"):
        raise ValueError(f"Invalid `path`: {path!r}. Expected a `.keras` file name.")
    if not include_optimizer and getattr(model, "optimizer", None) is not None:
        model = _weights_only_copy(model)
    with atomic_path(path, ".keras") as tmp:
        model.save(tmp)


def _weights_only_copy(model):
    """An uncompiled copy of a Sequential or functional `model` with its
    weights, or `model` itself where its class cannot rebuild it."""
    # From the architecture's config: `clone_model` would carry the
    # compiled optimizer over.
    try:
        copy = type(model).from_config(model.get_config())
    except (ValueError, TypeError, NotImplementedError):
        return model
    copy.set_weights(model.get_weights())
    return copy


def write_text_atomic(text, path):
    """Writes the string `text` to `path` via a temporary file and rename.

    Example:

    >>> write_text_atomic("| Method | Accuracy |\n", "runs/report.md")
    """
    with atomic_path(path, ".tmp") as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def strict_json(data):
    """`data` with every NaN or infinite float replaced by None, so that it
    serialises as strict JSON (`null`; bare `NaN` is not JSON).

    Example:

    >>> strict_json({"ece": float("nan"), "values": [1.0, float("inf")]})
    {'ece': None, 'values': [1.0, None]}
    """
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    if isinstance(data, (float, np.floating)):
        return float(data) if math.isfinite(data) else None
    if isinstance(data, np.integer):
        return int(data)
    return data


def write_json_atomic(data, path):
    """Writes `data` as indented, strict JSON to `path` via a temporary file
    and rename (non-finite numbers become `null`, see `strict_json`).

    Example:

    >>> write_json_atomic({"tickets": []}, "runs/edst/tickets.json")
    """
    write_text_atomic(json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n", path)


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
