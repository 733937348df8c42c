"""The one validation split, against a hand-written numpy reference."""

import numpy as np
import pytest

from freetickets_tf.data import splits


def reference(n, fraction, seed):
    """The rule written out: a seeded permutation, its first
    round(fraction * n) (at least 1, at most n - 1) held out, both sorted."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@pytest.mark.parametrize("n, fraction, seed", [(100, 0.1, 0), (7, 0.5, 3), (2, 0.9, 1), (50, 0.01, 2)])
def test_split_indices_match_the_reference(n, fraction, seed):
    train, val = splits.split_indices(n, fraction, seed)
    want_train, want_val = reference(n, fraction, seed)
    np.testing.assert_array_equal(train, want_train)
    np.testing.assert_array_equal(val, want_val)
    assert not set(train) & set(val) and len(train) + len(val) == n


def test_split_of_arrays_is_split_indices():
    x, y = np.arange(40).reshape(20, 2), np.arange(20) * 10
    (x_fit, y_fit), (x_val, y_val) = splits.split(x, y, 0.25, seed=4)
    train, val = splits.split_indices(20, 0.25, 4)
    np.testing.assert_array_equal(x_fit, x[train])
    np.testing.assert_array_equal(y_val, y[val])
    assert len(x_val) == 5 and len(y_fit) == 15


def test_zero_fraction_keeps_everything_except_in_split():
    train, val = splits.split_indices(5, 0.0, 0)
    np.testing.assert_array_equal(train, np.arange(5))
    assert val is None
    with pytest.raises(ValueError, match="validation_fraction"):
        splits.split(np.zeros(4), np.zeros(4), 0.0)
    with pytest.raises(ValueError, match="Cannot hold out"):
        splits.split_indices(1, 0.5, 0)
