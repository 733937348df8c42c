"""Growth-batch sources: one `step -> (x, y)` function per kind of data."""

import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.growth_batches import growth_source

X = np.arange(40, dtype="float32").reshape(20, 2)
Y = np.arange(20, dtype="int32")


def test_arrays_draw_a_seeded_batch_per_step():
    draw = growth_source((X, Y), batch_size=8, seed=3)
    x, y = draw(100)
    index = np.sort(np.random.default_rng([3, 100]).choice(20, 8, replace=False))
    np.testing.assert_array_equal(y, index)  # labels are the example indices
    np.testing.assert_array_equal(x, X[index])
    np.testing.assert_array_equal(growth_source((X, Y), 8, seed=3)(100)[1], y)  # resumed
    assert not np.array_equal(draw(101)[1], y)
    assert len(growth_source((X, Y), batch_size=64)(0)[1]) == 20  # at most all


def test_training_sets_functions_and_batch_lists():
    train = ft.data.from_arrays(X, Y, batch_size=4, seed=1)
    from_set = growth_source(train, seed=2)
    expected = next(iter(train.growth_batches(2, start=7)))
    np.testing.assert_array_equal(np.asarray(from_set(7)[1]), np.asarray(expected[1]))
    own = lambda step: (X[:step], Y[:step])
    assert growth_source(own) is own
    batches = growth_source([(X[:2], Y[:2]), (X[2:4], Y[2:4])])
    assert [list(batches(s)[1]) for s in range(3)] == [[0, 1], [2, 3], [0, 1]]  # cycled


@pytest.mark.parametrize("data, match", [
    (None, "None"), ("abc", "str is not training data"), ((X, Y[:5]), "20, 5"),
    (iter([(X, Y)]), "one-shot"), ([], "yielded no batch"),
])
def test_bad_sources(data, match):
    with pytest.raises(ValueError, match=match):
        growth_source(data)(0)
