"""The schema of a run's `tickets.json`, checked before anything trusts it.

A manifest is read back by every tool (the recipes when they resume,
`EnsembleModel.from_run`, the evaluate and export scripts), possibly after a
hand edit or a copy from elsewhere, so each of its facts is checked: types,
member indices, counts, and file names that stay inside the run directory.
"""

import numbers
import os
import re

_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Errors:
    """Collects the first problem, phrased for `ValueError`."""

    def __init__(self, manifest_path):
        self.manifest_path = manifest_path

    def fail(self, where, problem):
        raise ValueError(f"Corrupt manifest {self.manifest_path!r}: {where} {problem}.")


def _is_int(value, minimum=0):
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and value >= minimum)


def inside(run_dir, name):
    """The path of the file `name` of a manifest, if it stays inside
    `run_dir` (a relative path, no `..` out, no link out), else None."""
    if not isinstance(name, str) or not name or os.path.isabs(name):
        return None
    root = os.path.realpath(run_dir)
    path = os.path.realpath(os.path.join(root, name))
    return path if os.path.commonpath([root, path]) == root and path != root else None


def check(manifest, run_dir, manifest_path, format_versions):
    """Raises `ValueError` naming the first thing wrong with `manifest`.

    Checked: the top-level keys and their types, the format version, and for
    every ticket its keys (`member`, `file`, `sha256`, `density`), a member
    index in `0 .. num_members - 1` seen once, a density in (0, 1], a file
    inside `run_dir` that exists; no more tickets than members; a checkpoint
    record, if any, naming files inside `run_dir`.
    """
    errors = _Errors(manifest_path)
    if not isinstance(manifest, dict):
        errors.fail("the manifest", f"is a {type(manifest).__name__}, not an object")
    for key in ("format", "method", "num_members", "tickets"):
        if key not in manifest:
            errors.fail("the manifest", f"lacks the key {key!r}")
    if manifest["format"] not in format_versions:
        errors.fail("`format`", f"is {manifest['format']!r}; this version of "
                    "freetickets_tf reads formats "
                    + ", ".join(map(str, format_versions)))
    if not isinstance(manifest["method"], str):
        errors.fail("`method`", f"is {manifest['method']!r}, not a name")
    members = manifest["num_members"]
    if not _is_int(members, 1):
        errors.fail("`num_members`", f"is {members!r}, not a positive integer")
    if not isinstance(manifest.get("config", {}), dict):
        errors.fail("`config`", "is not an object")
    tickets = manifest["tickets"]
    if not isinstance(tickets, list):
        errors.fail("`tickets`", f"is a {type(tickets).__name__}, not a list")
    if len(tickets) > members:
        errors.fail("`tickets`", f"lists {len(tickets)} tickets for {members} members")
    seen = set()
    for i, entry in enumerate(tickets):
        where = f"tickets[{i}]"
        if not isinstance(entry, dict):
            errors.fail(where, "is not an object")
        for key in ("member", "file", "sha256", "density"):
            if key not in entry:
                errors.fail(where, f"lacks the key {key!r}")
        member = entry["member"]
        if not _is_int(member) or member >= members:
            errors.fail(f"{where}.member", f"is {member!r}; this run has members "
                        f"0..{members - 1}")
        if member in seen:
            errors.fail(f"{where}.member", f"repeats member {member}")
        seen.add(member)
        density = entry["density"]
        if (isinstance(density, bool) or not isinstance(density, numbers.Real)
                or not 0 < density <= 1):
            errors.fail(f"{where}.density", f"is {density!r}, not a fraction in (0, 1]")
        if not isinstance(entry["sha256"], str) or not _SHA256.fullmatch(entry["sha256"]):
            errors.fail(f"{where}.sha256", "is not a SHA-256 hex digest")
        path = inside(run_dir, entry["file"])
        if path is None:
            errors.fail(f"{where}.file", f"{entry['file']!r} is not a file name inside "
                        "the run directory")
        if not os.path.isfile(path):
            errors.fail(f"{where}.file", f"{entry['file']!r} is missing")
    record = manifest.get("checkpoint")
    if record is not None:
        if not isinstance(record, dict) or "file" not in record:
            errors.fail("`checkpoint`", "is not a checkpoint record")
        for key in ("file", "best_file"):
            if key in record and inside(run_dir, record[key]) is None:
                errors.fail(f"checkpoint.{key}", f"{record[key]!r} is not a file name "
                            "inside the run directory")
