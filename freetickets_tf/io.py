"""Atomic writes: a file is either the old version or the complete new one."""

import os
import tempfile


def save_model_atomic(model, path):
    """Saves `model` to the `.keras` file `path` via a temporary file and rename.

    An interrupted save leaves any previous file at `path` untouched.

    Example:

    >>> save_model_atomic(model, "runs/ticket_0.keras")
    """
    if not str(path).endswith(".keras"):
        raise ValueError(f"Invalid `path`: {path!r}. Expected a `.keras` file name.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same directory, so the final rename cannot cross file systems.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
