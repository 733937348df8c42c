"""Tests for `freetickets_tf.topology` (SPEC §3, drop-and-grow math)."""

import doctest

import keras
import numpy as np
import pytest

from freetickets_tf import backend
from freetickets_tf import topology as topology_module
from freetickets_tf.topology import drop_count
from freetickets_tf.topology import grow
from freetickets_tf.topology import magnitude_prune
from freetickets_tf.topology import random_grow
from freetickets_tf.topology import set_prune


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _random_case(seed, shape=(6, 7), density=0.5):
    """Float32 weights with distinct magnitudes and a random mask."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    # Distinct magnitudes: a permutation of 1..size, scaled, random signs.
    magnitudes = (rng.permutation(size) + 1).astype(np.float32) / size
    signs = rng.choice([-1.0, 1.0], size=size).astype(np.float32)
    weights = (magnitudes * signs).reshape(shape)
    mask = np.zeros(size, dtype=bool)
    mask[rng.choice(size, size=int(round(density * size)), replace=False)] = True
    return weights, mask.reshape(shape)


# --------------------------------------------------------------------------
# drop_count
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_active, rate, expected",
    [
        (7, 0.5, 4),  # 3.5 -> 4
        (8, 0.5, 4),  # exactly 4
        (10, 0.25, 3),  # 2.5 -> 3
        (1, 0.5, 1),  # 0.5 -> 1
        (0, 0.5, 0),  # nothing active, nothing moved
        (9, 0.0, 0),
        (100, 0.8, 80),
    ],
)
def test_drop_count_is_ceil_of_rate_times_active(n_active, rate, expected):
    """n = ceil(p * n_active), worked by hand."""
    mask = np.zeros((5, 4, 5), dtype=bool)
    mask.reshape(-1)[:n_active] = True
    assert drop_count(mask, rate) == expected
    assert isinstance(drop_count(mask, rate), int)


def test_drop_count_accepts_backend_tensors():
    """Works on a backend boolean tensor as well as numpy."""
    mask = keras.ops.convert_to_tensor(np.array([True, False, True, True, True]))
    assert drop_count(mask, 0.5) == 2  # ceil(0.5 * 4)


# --------------------------------------------------------------------------
# magnitude_prune
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 5, 21])
def test_magnitude_prune_matches_argsort_reference(seed, n):
    """Drops exactly the n smallest |w| among the active positions."""
    weights, mask = _random_case(seed)
    flat_w = weights.reshape(-1)
    flat_m = mask.reshape(-1)
    active_idx = np.flatnonzero(flat_m)
    order = active_idx[np.argsort(np.abs(flat_w[active_idx]), kind="stable")]
    expected = flat_m.copy()
    expected[order[:n]] = False

    result = _np(magnitude_prune(weights, mask, n))
    assert result.dtype == bool
    assert result.shape == mask.shape
    np.testing.assert_array_equal(result.reshape(-1), expected)
    assert result.sum() == mask.sum() - n


def test_magnitude_prune_never_picks_inactive_positions():
    """Inactive positions with tiny weights are ignored."""
    weights = np.array([0.0, 1e-9, 0.5, -0.2, 0.9, -0.01, 3.0, 0.0], np.float32)
    mask = np.array([False, False, True, True, True, False, True, True])
    # Active |w|: idx2 .5, idx3 .2, idx4 .9, idx6 3.0, idx7 0.0
    # n = 3 drops idx7 (0.0), idx3 (0.2), idx2 (0.5).
    result = _np(magnitude_prune(weights, mask, 3))
    np.testing.assert_array_equal(
        result, [False, False, False, False, True, False, True, False]
    )


def test_magnitude_prune_ties_go_to_lower_index_and_are_deterministic():
    """Equal |w|: the lower flat index is dropped first, every call."""
    weights = np.array([[0.5, -0.5, 0.5], [0.5, -0.5, 2.0]], np.float32)
    mask = np.array([[True, True, False], [True, True, True]])
    # Active: idx0 .5, idx1 .5, idx3 .5, idx4 .5, idx5 2.0 -> drop idx0, idx1.
    expected = np.array([[False, False, False], [True, True, True]])
    for _ in range(3):
        np.testing.assert_array_equal(_np(magnitude_prune(weights, mask, 2)), expected)
    # n = 3 takes the next tie, idx3.
    np.testing.assert_array_equal(
        _np(magnitude_prune(weights, mask, 3)),
        [[False, False, False], [False, True, True]],
    )


def test_magnitude_prune_n_zero_returns_mask_unchanged():
    """n = 0 drops nothing."""
    weights, mask = _random_case(3)
    result = _np(magnitude_prune(weights, mask, 0))
    assert result.shape == mask.shape
    np.testing.assert_array_equal(result, mask)


@pytest.mark.parametrize("n", [-1, 22])
def test_magnitude_prune_bad_n_raises(n):
    """More than the active count (or negative) is refused."""
    weights, mask = _random_case(0)  # 21 active of 42
    assert mask.sum() == 21
    with pytest.raises(ValueError):
        magnitude_prune(weights, mask, n)


def test_magnitude_prune_all_active_can_drop_everything():
    """n == n_active empties the mask."""
    weights, mask = _random_case(1)
    result = _np(magnitude_prune(weights, mask, int(mask.sum())))
    assert not result.any()


def test_magnitude_prune_conv_kernel_and_backend_tensors():
    """4-D kernels keep their shape; backend tensors are accepted."""
    weights, mask = _random_case(4, shape=(3, 3, 4, 5), density=0.3)
    n = 17
    flat_w = weights.reshape(-1)
    active_idx = np.flatnonzero(mask)
    drop = active_idx[np.argsort(np.abs(flat_w[active_idx]), kind="stable")[:n]]
    expected = mask.reshape(-1).copy()
    expected[drop] = False
    expected = expected.reshape(mask.shape)

    for w_in, m_in in [
        (weights, mask),
        (keras.ops.convert_to_tensor(weights), keras.ops.convert_to_tensor(mask)),
    ]:
        result = _np(magnitude_prune(w_in, m_in, n))
        assert result.shape == (3, 3, 4, 5)
        np.testing.assert_array_equal(result, expected)


# --------------------------------------------------------------------------
# set_prune
# --------------------------------------------------------------------------


def test_set_prune_hand_worked():
    """n // 2 from the negatives closest to 0, the rest from the smallest w >= 0."""
    # idx:       0     1     2     3     4      5     6     7     8
    weights = np.array(
        [0.5, -0.2, 0.1, -0.05, 0.3, -0.4, 0.0, 0.7, -0.01], np.float32
    )
    mask = np.array([True, True, True, True, True, True, True, True, False])
    # n = 5: 5 // 2 = 2 negatives, 3 non-negatives.
    # Active negatives by closeness to 0: idx3 (-0.05), idx1 (-0.2), idx5 (-0.4)
    #   (idx8 = -0.01 is inactive) -> drop idx3, idx1.
    # Active non-negatives ascending: idx6 (0.0), idx2 (0.1), idx4 (0.3), ...
    #   -> drop idx6, idx2, idx4.
    expected = np.array([True, False, False, False, False, True, False, True, False])
    np.testing.assert_array_equal(_np(set_prune(weights, mask, 5)), expected)


def test_set_prune_all_positive_takes_everything_from_positives():
    """Shortfall of negatives: the non-negatives make up the count."""
    weights = np.array([[0.4, 0.1, 0.9], [0.2, 0.05, 0.3]], np.float32)
    mask = np.array([[True, True, True], [True, False, True]])
    # No negatives; active ascending: 0.1 (1), 0.2 (3), 0.3 (5), 0.4 (0), 0.9 (2)
    # n = 3 -> drop idx1, idx3, idx5 (0.05 at idx4 is inactive).
    result = _np(set_prune(weights, mask, 3))
    assert result.shape == (2, 3)
    np.testing.assert_array_equal(result, [[True, False, True], [False, False, False]])


def test_set_prune_shortfall_of_non_negatives():
    """One non-negative weight: the negatives supply the rest."""
    weights = np.array([-0.3, -0.1, 0.6, -0.9, -0.2], np.float32)
    mask = np.ones(5, dtype=bool)
    # n = 4: 2 negatives wanted, but only one non-negative exists for the
    # other 2 -> 1 non-negative (idx2), 3 negatives closest to 0:
    # idx1 (-0.1), idx4 (-0.2), idx0 (-0.3); idx3 (-0.9) survives.
    np.testing.assert_array_equal(
        _np(set_prune(weights, mask, 4)), [False, False, False, True, False]
    )


def test_set_prune_shortfall_of_negatives():
    """Fewer negatives than n // 2: the non-negatives supply the rest."""
    weights = np.array([0.3, -0.1, 0.6, 0.9, 0.2, 0.05], np.float32)
    mask = np.ones(6, dtype=bool)
    # n = 4: 2 negatives wanted, only idx1 exists -> idx1 + 3 smallest w >= 0:
    # idx5 (0.05), idx4 (0.2), idx0 (0.3).
    np.testing.assert_array_equal(
        _np(set_prune(weights, mask, 4)), [False, False, True, True, False, False]
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [0, 1, 4, 9, 21])
def test_set_prune_matches_loop_reference(seed, n):
    """Random case against a plain loop implementation of the split rule."""
    weights, mask = _random_case(seed)
    flat_w = weights.reshape(-1)
    flat_m = mask.reshape(-1)
    negatives = [i for i in range(flat_w.size) if flat_m[i] and flat_w[i] < 0]
    non_negatives = [i for i in range(flat_w.size) if flat_m[i] and flat_w[i] >= 0]
    negatives.sort(key=lambda i: (-flat_w[i], i))  # closest to zero first
    non_negatives.sort(key=lambda i: (flat_w[i], i))  # smallest first
    k_neg = min(n // 2, len(negatives))
    k_pos = min(n - k_neg, len(non_negatives))
    k_neg = n - k_pos
    expected = flat_m.copy()
    for i in negatives[:k_neg] + non_negatives[:k_pos]:
        expected[i] = False

    result = _np(set_prune(weights, mask, n))
    np.testing.assert_array_equal(result.reshape(-1), expected)
    assert result.sum() == mask.sum() - n


def test_set_prune_too_many_raises():
    """More than the active count is refused."""
    weights, mask = _random_case(0)
    with pytest.raises(ValueError):
        set_prune(weights, mask, int(mask.sum()) + 1)


# --------------------------------------------------------------------------
# grow
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 6, 21])
def test_grow_matches_argsort_reference(seed, n):
    """Activates exactly the n largest |score| among inactive positions."""
    scores, mask = _random_case(seed + 50)
    flat_s = scores.reshape(-1)
    flat_m = mask.reshape(-1)
    inactive_idx = np.flatnonzero(~flat_m)
    order = inactive_idx[np.argsort(-np.abs(flat_s[inactive_idx]), kind="stable")]
    expected = flat_m.copy()
    expected[order[:n]] = True

    result = _np(grow(mask, scores, n))
    assert result.dtype == bool
    assert result.shape == mask.shape
    np.testing.assert_array_equal(result.reshape(-1), expected)
    assert result.sum() == mask.sum() + n


def test_grow_ignores_active_positions_and_sign():
    """Huge scores at active positions are skipped; |score| is used."""
    mask = np.array([True, False, False, True, False, False])
    scores = np.array([1e6, 0.3, -5.0, -1e6, 2.0, 0.0], np.float32)
    # Inactive |score|: idx1 0.3, idx2 5.0, idx4 2.0, idx5 0.0
    # n = 2 -> idx2 (the negative one, |-5| largest) and idx4.
    np.testing.assert_array_equal(
        _np(grow(mask, scores, 2)), [True, False, True, True, True, False]
    )


def test_grow_ties_go_to_lower_index():
    """Equal |score|: the lower flat index is grown first, every call."""
    mask = np.array([[True, False, False], [False, False, True]])
    scores = np.array([[9.0, 1.0, -1.0], [1.0, -1.0, 9.0]], np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(
            _np(grow(mask, scores, 2)), [[True, True, True], [False, False, True]]
        )
    # All scores zero: still the lowest inactive indices.
    np.testing.assert_array_equal(
        _np(grow(mask, np.zeros((2, 3), np.float32), 3)),
        [[True, True, True], [True, False, True]],
    )


def test_grow_n_zero_and_bad_n():
    """n = 0 is a no-op; more than the inactive count raises."""
    scores, mask = _random_case(7)
    np.testing.assert_array_equal(_np(grow(mask, scores, 0)), mask)
    n_inactive = int((~mask).sum())
    assert _np(grow(mask, scores, n_inactive)).all()
    with pytest.raises(ValueError):
        grow(mask, scores, n_inactive + 1)
    with pytest.raises(ValueError):
        grow(mask, scores, -1)


def test_grow_conv_kernel_shape_preserved():
    """4-D masks keep their shape; backend tensors are accepted."""
    scores, mask = _random_case(8, shape=(3, 3, 2, 4), density=0.25)
    n = 10
    inactive_idx = np.flatnonzero(~mask)
    flat_s = scores.reshape(-1)
    top = inactive_idx[np.argsort(-np.abs(flat_s[inactive_idx]), kind="stable")[:n]]
    expected = mask.reshape(-1).copy()
    expected[top] = True
    result = _np(
        grow(keras.ops.convert_to_tensor(mask), keras.ops.convert_to_tensor(scores), n)
    )
    assert result.shape == (3, 3, 2, 4)
    np.testing.assert_array_equal(result.reshape(-1), expected)


# --------------------------------------------------------------------------
# random_grow
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 123])
def test_random_grow_adds_exactly_n_previously_inactive(seed):
    """n new positions, all of them inactive before, old ones kept."""
    _, mask = _random_case(seed, shape=(8, 8, 3), density=0.4)
    n = 25
    result = _np(random_grow(mask, n, seed=seed))
    assert result.shape == mask.shape
    assert result.sum() == mask.sum() + n
    assert np.all(result[mask])  # nothing active was dropped
    new = result & ~mask
    assert new.sum() == n


def test_random_grow_same_seed_same_result_different_seeds_differ():
    """An int seed is reproducible; different seeds pick different positions."""
    _, mask = _random_case(2, shape=(20, 20), density=0.3)
    a = _np(random_grow(mask, 50, seed=7))
    b = _np(random_grow(mask, 50, seed=7))
    np.testing.assert_array_equal(a, b)
    others = [_np(random_grow(mask, 50, seed=s)) for s in (8, 9, 10)]
    assert any(not np.array_equal(a, o) for o in others)


def test_random_grow_seed_generator_advances():
    """A SeedGenerator is advanced, so two calls usually differ."""
    _, mask = _random_case(5, shape=(20, 20), density=0.3)
    gen = keras.random.SeedGenerator(3)
    a = _np(random_grow(mask, 50, seed=gen))
    b = _np(random_grow(mask, 50, seed=gen))
    assert a.sum() == b.sum() == mask.sum() + 50
    assert not np.array_equal(a, b)


def test_random_grow_too_many_raises():
    """More than the inactive count is refused."""
    _, mask = _random_case(0)
    with pytest.raises(ValueError):
        random_grow(mask, int((~mask).sum()) + 1, seed=0)


# --------------------------------------------------------------------------
# A whole update.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("prune", [magnitude_prune, set_prune])
@pytest.mark.parametrize(
    # 288 positions at density 0.2 -> round(57.6) = 58 active.
    # ceil(0.1 * 58) = ceil(5.8) = 6; 0.5 * 58 = 29; ceil(0.8 * 58) = ceil(46.4) = 47.
    "rate, expected_n",
    [(0.1, 6), (0.5, 29), (0.8, 47)],
)
def test_drop_then_grow_keeps_active_count(prune, rate, expected_n):
    """Drop n then grow n: the number of active weights is unchanged."""
    weights, mask = _random_case(11, shape=(3, 3, 4, 8), density=0.2)
    gradient, _ = _random_case(12, shape=(3, 3, 4, 8))
    assert mask.sum() == 58
    n = drop_count(mask, rate)
    assert n == expected_n
    dropped = _np(prune(weights, mask, n))
    assert dropped.sum() == mask.sum() - n
    regrown = _np(grow(dropped, gradient, n))
    assert regrown.sum() == mask.sum()
    again = _np(random_grow(dropped, n, seed=0))
    assert again.sum() == mask.sum()


def test_just_dropped_positions_can_regrow():
    """Growth candidates include the positions dropped in the same update."""
    weights = np.array([0.1, 0.9, 0.8, 0.0], np.float32)
    mask = np.array([True, True, True, False])
    dropped = _np(magnitude_prune(weights, mask, 1))  # drops idx0
    np.testing.assert_array_equal(dropped, [False, True, True, False])
    gradient = np.array([5.0, 0.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(
        _np(grow(dropped, gradient, 1)), [True, True, True, False]
    )


def test_module_docstring_example_semantics():
    """The module example: drop -0.1, regrow the position with gradient 5."""
    w = np.array([[0.3, -0.1], [0.0, 2.0]])
    mask = np.array([[True, True], [False, True]])
    survivors = _np(magnitude_prune(w, mask, 1))
    np.testing.assert_array_equal(survivors, [[True, False], [False, True]])
    np.testing.assert_array_equal(
        _np(grow(survivors, np.array([[0, 5.0], [1.0, 0]]), 1)),
        [[True, True], [False, True]],
    )


def test_module_doctests():
    """The docstring examples run as doctests, like the rest of the project."""
    assert doctest.testmod(topology_module).failed == 0


# --- global magnitude pruning (PF ensemble, SPEC §4) ----------------------


def test_global_magnitude_masks_keep_the_largest_over_all_kernels():
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=(4, 5)), rng.normal(size=(3, 3, 2, 2)) * 0.1,
               rng.normal(size=(7,))]
    masks = [keras.ops.convert_to_numpy(m) for m in topology_module.global_magnitude_masks(weights, 0.3)]
    flat = np.concatenate([np.abs(w).ravel() for w in weights])
    keep = round(0.3 * flat.size)
    threshold = np.sort(flat)[::-1][keep - 1]
    expected = [np.abs(w) >= threshold for w in weights]
    for mask, want, w in zip(masks, expected, weights):
        assert mask.shape == w.shape
        np.testing.assert_array_equal(mask, want)
    assert sum(m.sum() for m in masks) == keep


def test_global_magnitude_masks_ties_go_to_the_lower_index():
    masks = topology_module.global_magnitude_masks([np.ones(3), np.ones(2)], 0.4)
    assert [keras.ops.convert_to_numpy(m).tolist() for m in masks] == [
        [True, True, False], [False, False]]


# --------------------------------------------------------------------------
# top_n_mask: the selection under every drop and grow
# --------------------------------------------------------------------------

def _reference_top_n(scores, eligible, n):
    """numpy: the n largest eligible scores, the lower index first among ties."""
    order = np.lexsort((np.arange(scores.size), -scores, ~eligible))  # eligible first
    chosen = np.zeros(scores.size, bool)
    chosen[order[:n]] = True
    return chosen


_COMPILED_TOP_N = backend.compile_array_function(topology_module.top_n_mask)


@pytest.mark.parametrize("kind", ["normal", "ties", "signed_zeros", "extremes"])
@pytest.mark.parametrize("n", [0, 1, 7, 200, 500])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_top_n_mask_matches_the_reference(kind, n, compiled):
    # "ties" and "signed_zeros" take the prefix-count branch (more keys tie
    # at the threshold than are missing), "normal" the other.
    rng = np.random.default_rng(n)
    scores = {
        "normal": rng.normal(size=600),
        "ties": np.round(rng.normal(size=600)),                    # few distinct values
        "signed_zeros": rng.choice([-0.0, 0.0, 1.0, -1.0], 600),   # -0.0 == 0.0
        "extremes": rng.choice([np.inf, -np.inf, 3e38, -3e38, 1e-45, -1e-45, 0.0], 600),
    }[kind].astype("float32")
    eligible = rng.random(600) < 0.9
    top_n_mask = _COMPILED_TOP_N if compiled else topology_module.top_n_mask
    got = np.asarray(keras.ops.convert_to_numpy(top_n_mask(
        keras.ops.convert_to_tensor(scores), keras.ops.convert_to_tensor(eligible),
        keras.ops.convert_to_tensor(n, "int32"))))
    assert got.sum() == n
    np.testing.assert_array_equal(got, _reference_top_n(scores, eligible, n))


_COMPILED_FIRST_N = backend.compile_array_function(topology_module.first_n_true)


@pytest.mark.parametrize("size", [1, 1000, 1024, 1025, 5000])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_first_n_true_keeps_the_first_n_by_index(size, compiled):
    # Sizes on both sides of a block (1,024), several blocks, a partial last one.
    rng = np.random.default_rng(size)
    mask = rng.random(size) < 0.3
    first_n_true = _COMPILED_FIRST_N if compiled else topology_module.first_n_true
    true_at = np.flatnonzero(mask)
    for n in sorted({0, 1, true_at.size // 3, true_at.size}):
        got = _np(first_n_true(keras.ops.convert_to_tensor(mask),
                               keras.ops.convert_to_tensor(n, "int32")))
        want = np.zeros(size, bool)
        want[true_at[:n]] = True
        np.testing.assert_array_equal(got, want, err_msg=f"n={n}")


def test_top_n_mask_can_take_every_eligible_position():
    scores = np.array([5.0, -1.0, 2.0, 2.0], "float32")
    eligible = np.array([True, False, True, True])
    got = keras.ops.convert_to_numpy(topology_module.top_n_mask(scores, eligible, 3))
    assert got.tolist() == [True, False, True, True]


def test_drop_and_grow_equals_prune_then_grow():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 7)).astype("float32")
    mask = rng.random((6, 7)) < 0.4
    g = rng.normal(size=(6, 7)).astype("float32")
    n = drop_count(mask, 0.5)
    survivors, new_mask = topology_module.drop_and_grow(w, mask, g, n)
    want_survivors = magnitude_prune(w, mask, n)
    np.testing.assert_array_equal(_np(survivors), _np(want_survivors))
    np.testing.assert_array_equal(_np(new_mask), _np(grow(want_survivors, g, n)))


# --- gradual magnitude pruning (tfmot's prune_low_magnitude) ---------------


@pytest.mark.parametrize("size, sparsity", [(10, 0.5), (7, 0.5), (9, 0.5), (100, 0.999),
                                            (3, 0.0), (1000, 0.873)])
def test_kept_count_is_tfmots(size, sparsity):
    # tfmot: k = max(round(size * (1 - sparsity)), 1), round half to even.
    assert topology_module.kept_count(size, sparsity) == max(
        int(np.round(size * (1 - sparsity))), 1)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.8, 0.95])
def test_prune_to_sparsity_keeps_the_largest_active_magnitudes(sparsity):
    rng = np.random.default_rng(int(sparsity * 100))
    w = rng.normal(size=(12, 9)).astype("float32")
    mask = rng.random((12, 9)) < 0.9
    w = np.where(mask, w, 0.0).astype("float32")
    got = _np(topology_module.prune_to_sparsity(w, mask, sparsity))
    k = topology_module.kept_count(w.size, sparsity)
    assert got.sum() == k
    # numpy: the k largest |w| of the active weights (all distinct here).
    order = np.argsort(-np.where(mask, np.abs(w), -1.0), axis=None, kind="stable")
    expected = np.zeros(w.size, bool)
    expected[order[:k]] = True
    np.testing.assert_array_equal(got, expected.reshape(w.shape))
    assert not (got & ~mask).any() or k > mask.sum()
