"""The bundled digits dataset."""

import numpy as np
import pytest

from freetickets_tf import data


def test_load_digits_split():
    (x_train, y_train), (x_test, y_test) = data.load_digits(test_fraction=0.25, seed=0)
    assert x_train.shape == (1348, 8, 8, 1) and x_test.shape == (449, 8, 8, 1)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert set(np.unique(y_train)) == set(range(10))
    # Train and test are disjoint: no test image appears in the train set.
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap < 5  # the digits set holds a handful of exact duplicates
    (x_again, _), _ = data.load_digits(seed=0)
    np.testing.assert_array_equal(x_again, x_train)


@pytest.mark.parametrize("fraction", [0, 1, -0.5])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        data.load_digits(test_fraction=fraction)
