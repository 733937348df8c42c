"""Flags of the scripts that read a run directory (export, evaluate), defined
once for absl's global registry."""

from absl import flags

flags.DEFINE_string("run_dir", None, "Run directory: tickets.json and the tickets.")
flags.DEFINE_bool("allow_partial", False, "Accept a run that lacks some tickets.")
