"""Helpers shared by the input tests, as fixtures."""

import numpy as np
import pytest


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def _labelled_images(n=50, shape=(6, 6, 3)):
    """uint8 images whose label is their index, so batches tell the order."""
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    return x, np.arange(n)


@pytest.fixture
def batches():
    """`batches(ds)`: a dataset's `(x, y)` batches as numpy arrays."""
    return _batches


@pytest.fixture
def assert_same_batches():
    return _assert_same_batches


@pytest.fixture
def labelled_images():
    return _labelled_images
