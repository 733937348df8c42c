"""Corrupted test sets for corruption robustness (Hendrycks & Dietterich, 2019):
CIFAR-10-C through tensorflow-datasets, CIFAR-10-C / CIFAR-100-C from a folder
in the original release layout. Nothing here touches the network: a dataset
that is not prepared raises an error that says how to prepare it elsewhere.
"""

import functools
import numbers
import os

import numpy as np

from freetickets_tf._validation import check_int
from freetickets_tf.data import preprocessing
from freetickets_tf.data import sources

# The 15 benchmark corruptions in the paper's order (noise, blur, weather,
# digital); also the file names (`<name>.npy`) of the original release.
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)

__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "check_corruption",
    "check_severity",
    "corrupted_test_sets",
    "load_cifar10_corrupted",
    "load_cifar_c_directory",
    "tfds_config_name",
]

# tensorflow-datasets' `cifar10_corrupted` names two configs differently from
# the paper and the release files; everything else is spelled the same.
_TFDS_NAMES = {"glass_blur": "frosted_glass_blur", "elastic_transform": "elastic"}
_ALIASES = {tfds_name: name for name, tfds_name in _TFDS_NAMES.items()}


def check_corruption(corruption):
    """Returns the canonical name of `corruption` (one of `CORRUPTIONS`, or its
    tfds alias `frosted_glass_blur` / `elastic`), or raises `ValueError`.

    Example:

    >>> check_corruption("elastic")
    'elastic_transform'
    """
    if isinstance(corruption, str):
        corruption = _ALIASES.get(corruption, corruption)
        if corruption in CORRUPTIONS:
            return corruption
    allowed = ", ".join(map(repr, CORRUPTIONS))
    aliases = ", ".join(f"{a!r} for {c!r}" for a, c in _ALIASES.items())
    raise ValueError(
        f"Invalid `corruption`: {corruption!r}. Allowed values: {allowed} "
        f"(aliases: {aliases})."
    )


def check_severity(severity):
    """Returns `severity` as an `int` in `SEVERITIES`, or raises `ValueError`.

    Example:

    >>> check_severity(3)
    3
    """
    # `True == 1` and `3.0 == 3`, so test the type rather than membership only.
    is_int = isinstance(severity, numbers.Integral) and type(severity) is not bool
    if not is_int or int(severity) not in SEVERITIES:
        allowed = ", ".join(map(str, SEVERITIES))
        raise ValueError(
            f"Invalid `severity`: {severity!r}. Allowed values: {allowed}."
        )
    return int(severity)


def tfds_config_name(corruption, severity):
    """The `cifar10_corrupted` builder config of `corruption` at `severity`.

    Example:

    >>> tfds_config_name("glass_blur", 2)
    'frosted_glass_blur_2'
    """
    corruption = check_corruption(corruption)
    return f"{_TFDS_NAMES.get(corruption, corruption)}_{check_severity(severity)}"


def _to_arrays(images, labels):
    """uint8 images and integer labels -> float32 in [0, 1] and int32."""
    return preprocessing.to_unit_range(images, "images"), np.asarray(labels, "int32")


def load_cifar10_corrupted(corruption, severity, data_dir=None, max_examples=None):
    """CIFAR-10-C test images for one corruption and severity, read from an
    already prepared tensorflow-datasets `cifar10_corrupted` dataset.

    Args:
        corruption: One of `CORRUPTIONS` (or a tensorflow-datasets alias).
        severity: One of `SEVERITIES`.
        data_dir: The tensorflow-datasets data directory of the prepared data;
            `None` for tfds' default (`$TFDS_DATA_DIR`, `~/tensorflow_datasets`).
        max_examples: Optional cap on the number of (first) test examples.

    Returns:
        `(x, y)`: images as float32 of shape `(n, 32, 32, 3)` in [0, 1] and
        labels as int32 of shape `(n,)`.

    Raises:
        FileNotFoundError: If the config is not prepared in `data_dir`; this
            function never downloads.

    Example:

    >>> x, y = load_cifar10_corrupted("fog", 3, data_dir="/data/tfds")
    >>> x.shape, y.shape
    ((10000, 32, 32, 3), (10000,))
    """
    config = tfds_config_name(corruption, severity)
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    # The same reader as `data.load("cifar10_corrupted", ...)`: one way in.
    return _to_arrays(*sources.decoded_split(
        f"cifar10_corrupted/{config}", "test", data_dir, max_examples, cache=False))


def _check_directory(directory, corruptions):
    """Raises unless `directory` holds `labels.npy` and `<c>.npy` for each `c`."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Invalid `directory`: {os.fspath(directory)!r} is not a directory "
            "(expected the CIFAR-10-C / CIFAR-100-C folder)."
        )
    for name in ("labels",) + tuple(corruptions):
        path = os.path.join(directory, f"{name}.npy")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Missing file {path!r} in `directory`.")


def load_cifar_c_directory(directory, corruption, severity, max_examples=None):
    """CIFAR-10-C / CIFAR-100-C test images for one corruption and severity,
    from the original release layout: `directory/<corruption>.npy` (uint8,
    `(5 * n, 32, 32, 3)`, severities 1..5 as consecutive blocks of `n`) and
    `directory/labels.npy` (`(5 * n,)`). Only the requested block is read:
    the files are memory-mapped.

    Args:
        directory: The extracted `CIFAR-10-C` or `CIFAR-100-C` folder.
        corruption: One of `CORRUPTIONS` (or a tensorflow-datasets alias).
        severity: One of `SEVERITIES`.
        max_examples: Optional cap on the number of (first) examples.

    Returns:
        `(x, y)` as in `load_cifar10_corrupted`.

    Example:

    >>> x, y = load_cifar_c_directory("/data/CIFAR-100-C", "snow", 5)
    >>> x.shape, y.shape
    ((10000, 32, 32, 3), (10000,))
    """
    corruption = check_corruption(corruption)
    severity = check_severity(severity)
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    _check_directory(directory, [corruption])
    images_path = os.path.join(directory, f"{corruption}.npy")
    images = np.load(images_path, mmap_mode="r")
    labels = np.load(os.path.join(directory, "labels.npy"), mmap_mode="r")
    if len(images) != len(labels) or len(images) % len(SEVERITIES):
        raise ValueError(
            f"{images_path!r} has {len(images)} images and `labels.npy` has "
            f"{len(labels)} labels; expected equal lengths divisible by "
            f"{len(SEVERITIES)} (one block per severity)."
        )
    n = len(images) // len(SEVERITIES)
    start = (severity - 1) * n
    stop = start + (n if max_examples is None else min(n, max_examples))
    return _to_arrays(images[start:stop], labels[start:stop])


def corrupted_test_sets(
    source="cifar10",
    corruptions=None,
    severities=None,
    data_dir=None,
    max_examples=None,
):
    """Iterates over corrupted test sets, one `(corruption, severity)` at a time
    so only one is in memory. Arguments (and a directory's files) are checked
    on the call, so a typo fails at once rather than after hours of evaluation;
    so is the preparation of tensorflow-datasets' first requested set.

    Args:
        source: `"cifar10"` for tensorflow-datasets' `cifar10_corrupted`, or
            the path of a CIFAR-10-C / CIFAR-100-C directory.
        corruptions: Names (or one name) from `CORRUPTIONS`; `None` for all.
        severities: Values (or one value) from `SEVERITIES`; `None` for all.
        data_dir: tensorflow-datasets data directory (only with `"cifar10"`).
        max_examples: Optional cap on the examples of each set.

    Returns:
        A generator of `(corruption, severity, x, y)`, corruption-major, with
        `x`, `y` as in `load_cifar10_corrupted`.

    Example:

    >>> for name, severity, x, y in corrupted_test_sets("/data/CIFAR-100-C", "fog"):
    ...     print(name, severity, x.shape)
    fog 1 (10000, 32, 32, 3)
    ...
    fog 5 (10000, 32, 32, 3)
    """
    if isinstance(corruptions, str):  # one name, not a sequence of letters
        corruptions = [corruptions]
    if isinstance(severities, numbers.Integral):
        severities = [severities]
    corruptions = list(CORRUPTIONS if corruptions is None else corruptions)
    severities = list(SEVERITIES if severities is None else severities)
    corruptions = [check_corruption(c) for c in corruptions]
    severities = [check_severity(s) for s in severities]
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    if isinstance(source, str) and source == "cifar10":
        load = functools.partial(
            load_cifar10_corrupted, data_dir=data_dir, max_examples=max_examples
        )
        # Unprepared data fails now, not after the first sets were scored.
        first = tfds_config_name(corruptions[0], severities[0])
        next(sources.read_tfds(f"cifar10_corrupted/{first}", "test", data_dir, 1))
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        _check_directory(source, corruptions)
        load = functools.partial(
            load_cifar_c_directory, source, max_examples=max_examples
        )
    else:
        raise ValueError(
            f"Invalid `source`: {source!r}. Allowed values: 'cifar10' "
            "(tensorflow-datasets) or an existing CIFAR-10-C / CIFAR-100-C folder."
        )
    # The checks above run on the call; only the loading is deferred.
    return ((c, s, *load(c, s)) for c in corruptions for s in severities)
