"""A quiet start for the command-line scripts.

Importing TensorFlow 2.21 prints C++ log lines (oneDNN, "Could not find cuda
drivers", the CPU-instructions note, GPU plugin registration) before it reads
`TF_CPP_MIN_LOG_LEVEL`, so no setting hides them. The scripts' output is a
report; `native_noise_filtered` keeps those known lines out of it, and only
those: anything else TensorFlow writes at start-up, errors included, is passed
through. The C++ runtime's later INFO lines (XLA's "Compiled cluster",
...) go too: a script sets `TF_CPP_MIN_LOG_LEVEL=1` before TensorFlow loads,
unless it is set already. A library user's own program is left alone.
"""

import contextlib
import os
import re
import sys
import tempfile

_SCRIPT_NAMES = ("freetickets-train", "freetickets-evaluate", "freetickets-export")
_SCRIPT_MODULES = tuple(f"freetickets_tf.scripts.{name}" for name in ("train", "evaluate",
                                                                         "export"))

# Informational start-up lines of TensorFlow's C++ runtime, and the duplicate
# plugin registrations it reports as errors on GPU machines.
_NOISE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR$"
    r"|^[IW]\d{4} .*\] (oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|TF-TRT Warning: Could not find TensorRT)"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.$"
    r"|^E\d{4} .*\] Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register "
    r"factory for plugin cu\w+ when one has already been registered$"
    r"|^(E|W)\d{4} .*\] computation placer already registered\."
)


def is_noise(line):
    """Whether `line` (without its newline) is one of the known start-up lines."""
    return bool(_NOISE.search(line))


def running_a_script():
    """Whether this process is one of freetickets_tf's command-line scripts
    (the console script, or `python -m freetickets_tf.scripts.<name>`)."""
    script = os.path.basename(sys.argv[0]) if getattr(sys, "argv", None) else ""
    command = getattr(sys, "orig_argv", [])  # the interpreter's own arguments
    return script in _SCRIPT_NAMES or any(
        a == "-m" and b in _SCRIPT_MODULES for a, b in zip(command, command[1:]))


def script_start_quietened():
    """For the command-line scripts: TensorFlow's INFO lines off (unless
    `TF_CPP_MIN_LOG_LEVEL` says otherwise) and its start-up lines filtered,
    within the block that imports it. A no-op in other programs."""
    if not running_a_script():
        return contextlib.nullcontext()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return native_noise_filtered()


@contextlib.contextmanager
def native_noise_filtered(enabled=True):
    """Within the block, what is written to file descriptor 2 is held back;
    at its end, every line but the known start-up noise goes to stderr, in
    order. A no-op where `enabled` is false or there is no descriptor 2.
    """
    try:
        os.fstat(2)
    except OSError:
        enabled = False
    if not enabled:
        yield
        return
    _flush_stderr()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines
                            if not is_noise(line.rstrip(b"\n").decode("utf-8", "replace")))
            while kept:  # os.write may take a part
                kept = kept[os.write(2, kept):]


def _flush_stderr():
    if sys.stderr is not None:  # None without a console (pythonw)
        sys.stderr.flush()
