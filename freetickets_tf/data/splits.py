"""The one validation split: a seeded random fraction of the examples held
out (docs/algorithms.md §4 keeps 10% of the training set for selecting checkpoints),
shared by arrays (`split`), tensorflow-datasets sets and image folders.
"""

import numbers

import numpy as np

from freetickets_tf._validation import check_int


def check_fraction(validation_fraction):
    if isinstance(validation_fraction, bool) or not isinstance(
            validation_fraction, numbers.Real) or not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"Invalid `validation_fraction`: {validation_fraction!r}. Expected "
            "a number in [0, 1) (0: no validation set).")
    return float(validation_fraction)


def check_split_settings(batch_size, eval_batch_size, validation_fraction, seed,
                         split_seed):
    """The settings every loader with a validation split takes, checked:
    `(batch_size, eval_batch_size or batch_size, validation_fraction, seed,
    split_seed)`."""
    batch_size = check_int("batch_size", batch_size, 1)
    eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    return (batch_size, eval_batch_size or batch_size, check_fraction(validation_fraction),
            check_int("seed", seed, 0), check_int("split_seed", split_seed, 0))


def validation_count(n, validation_fraction):
    """How many of `n` examples a `validation_fraction` holds out: the
    rounded fraction, at least 1 and at most `n - 1`."""
    return min(n - 1, max(1, int(round(validation_fraction * n))))


def split_indices(n, validation_fraction, split_seed):
    """`(train, validation)` index arrays: a seeded random
    `validation_fraction` held out, each sorted (the kept examples stay in
    their order), `validation_count` of them.

    Example:

    >>> train, val = split_indices(10, 0.2, split_seed=0)
    >>> len(train), len(val)
    (8, 2)
    """
    if not validation_fraction:
        return np.arange(n), None
    if n < 2:
        raise ValueError(f"Cannot hold out a validation set from {n} example(s).")
    order = np.random.default_rng(split_seed).permutation(n)
    n_val = validation_count(n, validation_fraction)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def split(x, y, validation_fraction=0.1, seed=0):
    """Holds out a seeded random `validation_fraction` of `(x, y)` (docs/algorithms.md §4
    keeps 10% of the training set for selecting checkpoints).

    Returns:
        `((x_train, y_train), (x_val, y_val))`.

    Example:

    >>> (x_fit, y_fit), (x_val, y_val) = split(x_train, y_train, 0.1, seed=0)
    """
    if check_fraction(validation_fraction) == 0.0:
        raise ValueError(
            f"Invalid `validation_fraction`: {validation_fraction!r}. Expected a "
            "number in (0, 1).")
    if len(x) != len(y):
        raise ValueError(f"`x` has {len(x)} examples but `y` has {len(y)}.")
    train, val = split_indices(len(x), validation_fraction, seed)
    return (x[train], y[train]), (x[val], y[val])
