"""Datasets. The bundled default: scikit-learn's handwritten digits.

scikit-learn ships the 1,797 8x8 digit images inside the package, so the
quickstart and the tests run without any download.
"""

import numpy as np

from freetickets_tf._validation import check_int


def load_digits(test_fraction=0.25, seed=0):
    """The bundled 8x8 digits, split into train and test sets.

    Args:
        test_fraction: Fraction of the 1,797 images held out for testing.
        seed: Seed of the (stratified-free, uniform) shuffle before the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: images as float32 arrays of
        shape `(n, 8, 8, 1)` scaled to [0, 1], labels as int32 in 0..9.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape
    (1348, 8, 8, 1)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"Invalid `test_fraction`: {test_fraction!r}. Expected a number in (0, 1)."
        )
    check_int("seed", seed, 0)
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])
