"""Flags shared by the training and evaluation scripts, defined once.

absl keeps one global flag registry, and the scripts are imported into one
process by the tests (and by users' own tools), so a flag two scripts take is
defined here, not in both.
"""

from absl import flags

flags.DEFINE_integer(
    "seed", 0, "Random seed: member 0's seed and the bundled data's train/test split.")
flags.DEFINE_integer(
    "verbose", 2, "0: quiet; 1 or 2: Keras fit verbosity and progress lines.")
flags.DEFINE_string(
    "data_dir", None,
    "tensorflow-datasets data directory of prepared data (never downloaded).")
