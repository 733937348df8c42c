"""Run directories: the tickets of an ensemble run and their manifest.

A run directory holds one `.keras` file per ticket (`ticket_0.keras`, ...),
and `tickets.json`, the manifest: the method, the number of members the run
will produce, its configuration, and one entry per finished ticket (member
index, seed, density and per-layer densities, the epoch and validation score
at which it was selected, training FLOPs spent so far, a checksum of the file,
library versions). While it trains, a run also keeps `checkpoint/`, the full
training state at the end of the last epoch, so that it resumes where it
stopped.

Every file is written atomically (temporary file, then rename) and the ticket
file is written before the manifest names it, so an interruption at any
moment leaves a consistent directory: at worst the last ticket is missing and
is trained again. A process writing a run holds the directory's lock
(`.lock`, released by the operating system when the process dies), so two
processes never write one run; the holder sweeps the temporary files a
killed writer left behind.
"""

import hashlib
import json
import math
import os
import platform
import re
import socket
import time

try:
    import fcntl
except ImportError:  # Windows: runs are not locked there
    fcntl = None

import keras

from freetickets_tf import io
from freetickets_tf import manifest as manifest_schema
from freetickets_tf import masking
from freetickets_tf._validation import check_int
from freetickets_tf.version import __version__

MANIFEST_NAME = "tickets.json"
LOCK_NAME = ".lock"
CHECKPOINT_DIR = "checkpoint"
# Format 2 numbers epochs as Keras' progress bar does (1 is the first); format
# 1 numbered them from 0 and is converted when read.
FORMAT_VERSION = 2
_READABLE_FORMATS = (1, 2)
SNAPSHOT_DIR = "snapshots"
_SNAPSHOT_NAME = re.compile(r"member_(\d+)_epoch(\d+)\.keras")
# Snapshots written before format 2, named by the 0-based epoch.
_SNAPSHOT_NAME_0_BASED = re.compile(r"member_(\d+)_epoch_(\d+)\.keras")


def _upgraded(manifest):
    """`manifest` in the current format: format 1's 0-based ticket epochs
    numbered from 1. The file itself changes at the run's next write."""
    if manifest["format"] == 1:
        for entry in manifest["tickets"]:
            if isinstance(entry.get("epoch"), int):
                entry["epoch"] += 1
        manifest["format"] = FORMAT_VERSION
    return manifest


def versions():
    """Versions of the software that wrote a ticket."""
    found = {
        "freetickets_tf": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def architecture(model):
    """What a checkpoint or run must match to be resumed on `model`: input
    and output shapes, parameter count, and a digest of every weight's shape
    and every layer's class and activation, in order (masks left out and a
    masked layer named by its Keras class, so a model and its sparse copy
    agree; layer names left out, as Keras numbers them anew in every build).

    Example:

    >>> architecture(models.get("lenet300-100"))["parameters"]
    266610
    """
    shapes = [[int(d) for d in v.shape] for v in model.weights if v.dtype != "bool"]
    tensors = [*(getattr(model, "inputs", None) or ()),
               *(getattr(model, "outputs", None) or ())]
    ports = [[None if d is None else int(d) for d in tensor.shape[1:]] for tensor in tensors]
    layers = [[masking.base_class(layer).__name__, layer.get_config().get("activation")]
              for layer in masking.leaf_layers(model)]
    digest = hashlib.sha256(json.dumps([ports, shapes, layers], default=str).encode()
                            ).hexdigest()
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    return {"parameters": int(trainable), "shapes": ports, "digest": digest[:16]}


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunInUseError(RuntimeError):
    """Another process holds the lock of a run directory."""


# Locks this process holds: real path -> [file descriptor, holders]. A
# process may open its own run several times (a recipe, then a callback);
# `flock` would refuse the second open even within one process.
_HELD_LOCKS = {}


def _describe_holder(fd):
    """Who holds a lock, from what its holder wrote into the lock file."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on host {holder['host']!r}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


def _try_lock(path):
    """`(fd, None)` with the lock taken, or `(None, holder)` if another
    process holds it."""
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe_holder(fd)
            os.close(fd)
            return None, holder
    return fd, None


def lock_holder(path):
    """Who else holds the lock of the run directory `path` (e.g. `"pid 41
    on host 'gpu3'"`), or None when no other process does.

    Example:

    >>> lock_holder("runs/edst")   # None: free, or held by this process
    """
    path = os.fspath(path)
    if os.path.realpath(path) in _HELD_LOCKS or not os.path.exists(
            os.path.join(path, LOCK_NAME)):
        return None
    fd, holder = _try_lock(path)
    if fd is not None:
        os.close(fd)
    return holder


def _lock(path):
    """Takes the exclusive lock of the run directory `path` for this process
    (re-entrant), or raises `RunInUseError` naming the holder."""
    key = os.path.realpath(path)
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key][1] += 1
        return
    fd, holder = _try_lock(path)
    if fd is None:
        raise RunInUseError(
            f"Run directory {path!r} is in use by another process ({holder}). "
            "Wait for it to finish, stop it, or use another directory."
        )
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    _HELD_LOCKS[key] = [fd, 1]


def _unlock(path):
    key = os.path.realpath(path)
    held = _HELD_LOCKS.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD_LOCKS[key]
        os.close(held[0])  # releases the flock


def _dotted(settings, prefix=""):
    """Nested settings as one flat dict with dotted keys (`"dst.death_rate"`),
    so that a difference is named down to the one setting."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class RunDirectory:
    """The tickets and manifest of one ensemble run.

    Use `RunDirectory.create` to write a run (it resumes an existing run of
    the same method; it holds the directory's lock until `release`) and
    `RunDirectory.open` to read a finished one.

    Example:

    >>> run = RunDirectory.create("runs/edst", method="edst", num_members=3)
    >>> run.save_ticket(model, member=0, seed=0, epoch=200, val_accuracy=0.95)
    >>> RunDirectory.open("runs/edst").load_tickets(allow_partial=True)
    """

    def __init__(self, path, manifest):
        self.path = os.fspath(path)
        self.manifest = manifest
        self._locked = False

    def release(self):
        """Gives up this object's hold on the directory's lock (from
        `create`; also when the object is garbage-collected); the lock is
        free once every holder in the process has released it, or the
        process has ended."""
        if getattr(self, "_locked", False):
            self._locked = False
            _unlock(self.path)

    def __del__(self):
        self.release()

    @property
    def manifest_path(self):
        return os.path.join(self.path, MANIFEST_NAME)

    @property
    def method(self):
        return self.manifest["method"]

    @property
    def num_members(self):
        return self.manifest["num_members"]

    @classmethod
    def create(cls, path, method, num_members, config=None, defaults=None):
        """Starts a run in `path`, or resumes the one already there.

        Args:
            path: The run directory; created if missing.
            method: The ensemble method, e.g. `"edst"`.
            num_members: How many tickets the run will produce.
            config: JSON-serialisable settings of the run, kept in the
                manifest; resuming with different settings is an error.
            defaults: The settings' defaults: a setting the stored run lacks
                (added in a later version) may be at its default.

        Raises:
            ValueError: `path` holds a run of another method, size or
                settings, or a corrupt manifest.
            RunInUseError: another process writes the run.
        """
        check_int("num_members", num_members, 1)
        if not isinstance(method, str) or not method:
            raise ValueError(
                f"Invalid `method`: {method!r}. Expected the method's name, e.g. "
                "'edst'.")
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        _lock(path)
        try:
            run = cls._create_locked(path, method, num_members, config, defaults)
        except BaseException:
            _unlock(path)
            raise
        run._locked = True
        return run

    @classmethod
    def _create_locked(cls, path, method, num_members, config, defaults):
        # Only this process writes here now: what a killed writer left is
        # garbage.
        for folder in (path, os.path.join(path, CHECKPOINT_DIR),
                       os.path.join(path, SNAPSHOT_DIR)):
            io.sweep_temporary(folder)
        run = cls.check_resumable(path, method, num_members, config, defaults)
        if run is not None:
            return run
        manifest = {
            "format": FORMAT_VERSION,
            "method": method,
            "num_members": num_members,
            "config": config or {},
            "versions": versions(),
            "tickets": [],
            "checkpoint": None,
        }
        run = cls(path, manifest)
        run._write_manifest()
        return run

    @classmethod
    def check_resumable(cls, path, method, num_members, config=None, defaults=None):
        """Whether `create` would take `path`, checked without writing: None
        if it holds no run yet, the (unlocked) run if it holds this one.

        A setting of `config` that the stored run lacks (one added in a later
        version) counts as unchanged if it is at its value in `defaults`.

        Raises:
            ValueError: `path` holds a run of another method, size or
                settings (naming each differing setting and both values), or
                a corrupt manifest.
        """
        path = os.fspath(path)
        if not os.path.exists(os.path.join(path, MANIFEST_NAME)):
            return None
        run = cls.open(path)
        if (run.method, run.num_members) != (method, num_members):
            raise ValueError(
                f"{path!r} already holds a {run.method!r} run with "
                f"{run.num_members} members; this run is {method!r} with "
                f"{num_members}. Use another directory, or delete it."
            )
        stored = _dotted(run.manifest.get("config") or {})
        config = _dotted(config or {})
        defaults = _dotted(defaults or {})
        changed = sorted(
            key for key in set(stored) | set(config)
            if config and stored.get(key) != config.get(key)
            # A setting newer than the run: it ran as the setting's default.
            and not (key not in stored and key in defaults
                     and config.get(key) == defaults[key])
        )
        if changed:
            raise ValueError(
                f"{path!r} already holds a {method!r} run with other settings ("
                + ", ".join(
                    f"{k}: {stored.get(k)!r} there, {config.get(k)!r} now"
                    for k in changed
                )
                + "). Use another directory, or delete it to start over."
            )
        return run

    @classmethod
    def open(cls, path):
        """Opens an existing run directory for reading (or resuming).

        Raises:
            ValueError: the directory or its manifest is missing, the
                manifest is not valid JSON of this format, or breaks its
                schema (`freetickets_tf.manifest.check`: member indices,
                counts, files inside the directory, a ticket it lists is
                missing).
        """
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise ValueError(f"Run directory {path!r} does not exist.")
        manifest_path = os.path.join(path, MANIFEST_NAME)
        if not os.path.exists(manifest_path):
            raise ValueError(
                f"{path!r} is not a run directory: it has no {MANIFEST_NAME}. "
                "Runs are written by the ensemble recipes "
                "(freetickets_tf.recipes) or `freetickets-train`."
            )
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"Corrupt manifest {manifest_path!r}: {error}") from error
        manifest_schema.check(manifest, path, manifest_path, _READABLE_FORMATS)
        return cls(path, _upgraded(manifest))

    @property
    def tickets(self):
        """Manifest entries of the finished tickets, ordered by member."""
        return sorted(self.manifest["tickets"], key=lambda entry: entry["member"])

    @property
    def finished_members(self):
        return {entry["member"] for entry in self.manifest["tickets"]}

    @property
    def complete(self):
        return len(self.finished_members) == self.num_members

    def ticket_path(self, member):
        return os.path.join(self.path, f"ticket_{member}.keras")

    def _write_manifest(self):
        io.write_json_atomic(self.manifest, self.manifest_path)

    def save_ticket(self, model, member, **info):
        """Writes `model` as ticket `member` and records it in the manifest.

        Args:
            model: The ticket (a Keras model; sparse or dense).
            member: Its index, in `[0, num_members)`.
            **info: JSON-serialisable facts to record: `seed`, `epoch`,
                `val_accuracy`, `training_flops`, ...

        Returns:
            The manifest entry.
        """
        check_int("member", member, 0)
        if member >= self.num_members:
            raise ValueError(
                f"Invalid `member`: {member}. This run has {self.num_members} "
                f"members (0..{self.num_members - 1})."
            )
        path = self.ticket_path(member)
        masking.zero_inactive_weights(model)  # a no-op except on JAX
        io.save_model_atomic(model, path, include_optimizer=False)
        kernels = masking.masked_kernels(model)
        entry = {
            "member": member,
            "file": os.path.basename(path),
            "method": self.method,
            "density": masking.overall_density(model) if kernels else 1.0,
            "layer_densities": masking.layer_densities(model),
            **info,
            "sha256": _sha256(path),
            "versions": versions(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.manifest["tickets"] = [
            e for e in self.manifest["tickets"] if e["member"] != member
        ] + [entry]
        self._write_manifest()
        return entry

    def load_ticket(self, member, compile=False):
        """Loads ticket `member`, checking the file against its checksum.

        Tickets are saved for inference, without the optimizer or the
        compile settings: `compile=True` on such a ticket is a `ValueError`
        (compile the loaded model yourself); tickets saved with them, by
        earlier versions, come back compiled.
        """
        entries = {entry["member"]: entry for entry in self.manifest["tickets"]}
        if member not in entries:
            raise ValueError(
                f"Run directory {self.path!r} has no ticket {member}; finished: "
                f"{sorted(entries) or 'none'}."
            )
        entry = entries[member]
        path = os.path.join(self.path, entry["file"])
        if _sha256(path) != entry["sha256"]:
            raise ValueError(
                f"Corrupt ticket {path!r}: its checksum does not match the one "
                "recorded in the manifest (the file changed after it was saved)."
            )
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
        if compile and not model.compiled:
            raise ValueError(
                f"Ticket {path!r} was saved for inference, without compile "
                "settings: load it with compile=False and call `compile` on it.")
        measured = masking.overall_density(model) if masking.masked_kernels(model) else 1.0
        if abs(measured - entry["density"]) > 1e-6:
            raise ValueError(
                f"Corrupt run directory {self.path!r}: ticket {member} has density "
                f"{measured:.6f}, the manifest records {entry['density']!r}.")
        return model

    def load_tickets(self, allow_partial=False):
        """Loads every finished ticket, in member order.

        Raises:
            ValueError: the run has no tickets, or (unless `allow_partial`)
                fewer than `num_members`.
        """
        members = sorted(self.finished_members)
        if not members:
            raise ValueError(f"Run directory {self.path!r} has no finished ticket.")
        if not allow_partial and len(members) < self.num_members:
            raise ValueError(
                f"Run directory {self.path!r} is partial: {len(members)} of "
                f"{self.num_members} tickets are finished (members {members}). "
                "Resume the run to finish it, or pass `allow_partial=True`."
            )
        return [self.load_ticket(member) for member in members]

    def save_checkpoint(self, model, best_weights=None, **state):
        """Saves the full training state so the run can resume from here.

        Writes `model` with its optimizer (weights, masks, slots, step count)
        and, if given, the weights of the best epoch so far, under new file
        names; then the manifest names them together with `state` (e.g.
        `member`, `epoch`, `training_flops`); then the previous checkpoint's
        files are deleted. An interruption at any moment therefore leaves the
        manifest naming one complete checkpoint (the old or the new one).

        Args:
            model: The compiled model being trained.
            best_weights: Optional list of arrays (`model.get_weights()` of
                the best epoch so far), restored with `checkpoint_best_weights`.
            **state: JSON-serialisable facts needed to resume.
        """
        previous = self.manifest.get("checkpoint") or {}
        serial = previous.get("serial", 0) + 1
        stem = os.path.join(CHECKPOINT_DIR, f"state_{serial}")
        record = {"file": stem + ".keras", "serial": serial, **state}
        os.makedirs(os.path.join(self.path, CHECKPOINT_DIR), exist_ok=True)
        io.save_model_atomic(model, os.path.join(self.path, record["file"]))
        if best_weights is not None:
            record["best_file"] = stem + ".best.npz"
            io.save_arrays_atomic(
                best_weights, os.path.join(self.path, record["best_file"])
            )
        record["architecture"] = architecture(model)["digest"]
        record["sha256"] = {key: _sha256(os.path.join(self.path, record[key]))
                            for key in ("file", "best_file") if key in record}
        self.manifest["checkpoint"] = record
        self._write_manifest()
        self._remove_checkpoint_files(previous)

    def _remove_checkpoint_files(self, record):
        for key in ("file", "best_file"):
            if record.get(key):
                path = os.path.join(self.path, record[key])
                if os.path.exists(path):
                    os.remove(path)

    @property
    def checkpoint(self):
        """`(path, state)` of the last checkpoint, or None."""
        record = self.manifest.get("checkpoint")
        if not record:
            return None
        state = {
            k: v for k, v in record.items()
            if k not in ("file", "best_file", "serial", "sha256", "architecture")
        }
        return os.path.join(self.path, record["file"]), state

    def checkpoint_of(self, **state):
        """`(path, state)` of the last checkpoint if its state has these
        values (e.g. `member=0, stage="train"`), else None: another member's
        or stage's checkpoint is not one to resume from."""
        checkpoint = self.checkpoint
        if checkpoint is None or any(
                checkpoint[1].get(key) != value for key, value in state.items()):
            return None
        return checkpoint

    def load_checkpoint(self, expected_architecture=None):
        """Loads the last checkpoint's model (compiled, optimizer state
        included) after checking its files against their checksums and its
        architecture against the one it was saved with and
        `expected_architecture` (an `architecture(...)["digest"]`).

        Raises:
            ValueError: the checkpoint is missing, changed, or of another
                architecture; nothing is deleted, the error says what to do.
        """
        record = self.manifest.get("checkpoint")
        if not record:
            raise ValueError(f"Run directory {self.path!r} has no checkpoint.")
        advice = (f" Nothing was deleted. To train this member again from its "
                  f"start, delete {os.path.join(self.path, CHECKPOINT_DIR)!r} and "
                  "set \"checkpoint\" to null in the manifest; or start the run "
                  "over (freetickets-train --overwrite).")
        for key, digest in (record.get("sha256") or {}).items():
            path = os.path.join(self.path, record[key])
            if not os.path.isfile(path):
                raise ValueError(f"Corrupt checkpoint: {path!r} is missing.{advice}")
            if _sha256(path) != digest:
                raise ValueError(
                    f"Corrupt checkpoint: {path!r} does not match its checksum (it "
                    f"was truncated or changed after it was saved).{advice}")
        model = keras.saving.load_model(
            os.path.join(self.path, record["file"]), safe_mode=True)
        found = architecture(model)["digest"]
        for expected, what in ((record.get("architecture"), "it was saved with"),
                               (expected_architecture, "this run builds")):
            if expected is not None and found != expected:
                raise ValueError(
                    f"Checkpoint {record['file']!r} in {self.path!r} holds a model of "
                    f"another architecture ({found}) than {what} ({expected}).{advice}")
        return model

    def checkpoint_best_weights(self):
        """The best-epoch weights saved with the last checkpoint, or None."""
        record = self.manifest.get("checkpoint") or {}
        if not record.get("best_file"):
            return None
        return io.load_arrays(os.path.join(self.path, record["best_file"]))

    def clear_checkpoint(self):
        """Forgets and deletes the checkpoint (the run no longer needs it)."""
        record = self.manifest.get("checkpoint")
        if not record:
            return
        self.manifest["checkpoint"] = None
        self._write_manifest()  # first, so the manifest never names a missing file
        self._remove_checkpoint_files(record)

    def snapshot_path(self, member, epoch):
        return os.path.join(
            self.path, SNAPSHOT_DIR, f"member_{member}_epoch{epoch:04d}.keras"
        )

    def save_snapshot(self, model, member, epoch):
        """Keeps `model` as it is after epoch `epoch` (numbered from 1, as
        Keras' progress bar and `tickets.json` number them) on member
        `member`'s trajectory (for the t-SNE of function space). Atomic."""
        check_int("member", member, 0)
        check_int("epoch", epoch, 1)
        path = self.snapshot_path(member, epoch)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        masking.zero_inactive_weights(model)  # compact on JAX too
        io.save_model_atomic(model, path, include_optimizer=False)
        return path

    def snapshots(self):
        """`{member: [(epoch, path), ...]}` of the saved snapshots, by epoch
        (numbered from 1)."""
        folder = os.path.join(self.path, SNAPSHOT_DIR)
        found = {}
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            match, shift = _SNAPSHOT_NAME.fullmatch(name), 0
            if not match:
                match, shift = _SNAPSHOT_NAME_0_BASED.fullmatch(name), 1
            if match:
                member, epoch = int(match[1]), int(match[2]) + shift
                found.setdefault(member, []).append((epoch, os.path.join(folder, name)))
        return {member: sorted(found[member]) for member in sorted(found)}

    def update(self, **fields):
        """Records run-level facts (e.g. a FLOPs summary) in the manifest."""
        self.manifest.update(fields)
        self._write_manifest()
