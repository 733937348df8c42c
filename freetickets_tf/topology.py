"""The drop-and-grow math of a DST topology update (docs/algorithms.md §3), as pure functions.

Arrays in (numpy arrays or backend tensors), a new boolean mask out (a backend
tensor). Nothing here touches a variable. Ties are broken deterministically:
among equal scores the lower flat index (C order, Keras kernel layout) wins,
which is how `top_k` orders equal values. Scores are compared as integer
keys of their float32 bits (`order_key`, `magnitude_key`), so that the order
is the same on every backend, NaN included (above infinity). Selection is
`top_n_mask`: exact counts in O(size) passes, no sort, no host read, on
every backend.

Example:

>>> import numpy as np
>>> from keras import ops
>>> w = np.array([[0.3, -0.1], [0.0, 2.0]])
>>> mask = np.array([[True, True], [False, True]])
>>> survivors = magnitude_prune(w, mask, 1)  # drops -0.1
>>> gradient = np.array([[0.0, 5.0], [1.0, 0.0]])
>>> ops.convert_to_numpy(grow(survivors, gradient, 1))  # regrows it
array([[ True,  True],
       [False,  True]])
"""

import math

import keras
from keras import ops

from freetickets_tf import backend


def count_active(mask):
    """Number of True entries of a boolean mask, as a Python int."""
    return int(ops.convert_to_numpy(backend.count_true(ops.cast(mask, "bool"))))


def drop_count(mask, death_rate):
    """`ceil(death_rate * n_active)`, the number of weights to move in a layer."""
    return moved_count(count_active(mask), death_rate)


def moved_count(active, death_rate):
    """`ceil(death_rate * active)` for a count of active weights (an int)."""
    # Rounded first so that float noise (0.07 * 100 = 7.000000000000001)
    # cannot add a weight.
    return math.ceil(round(death_rate * active, 9))


def _flat(x, dtype):
    return ops.reshape(ops.cast(ops.convert_to_tensor(x), dtype), (-1,))


def order_key(scores):
    """Keys of float `scores` that compare as the scores do, for
    `backend.top_n_cut` and the comparisons around it: equal scores
    give equal keys (-0.0 and 0.0 too), a larger score a larger key.

    int32 keys from the float32 bits, with the non-sign bits of negative
    floats flipped (so that more negative is smaller) and -0.0 made +0.0:
    float comparisons may flush subnormal floats to zero (XLA on a CPU
    does), integer ones cannot, and NaN gets a place in the order (above
    infinity, with its sign), the same on every backend.
    """
    bits = ops.view(ops.cast(scores, "float32"), "int32")
    bits = ops.where(bits == -(2**31), ops.zeros_like(bits), bits)  # -0.0
    return ops.where(bits >= 0, bits, ops.bitwise_xor(bits, 0x7FFFFFFF))


def magnitude_key(x, smallest=False):
    """Keys ordered as `abs(x)` (with `smallest`, as `-abs(x)`), as
    `order_key` of those would be but cheaper: the float32 bits without the
    sign bit, which order magnitudes as the floats do (NaN above infinity;
    -0.0 and 0.0 equal), reversed by flipping the other 31 bits; one bitwise
    pass, where `order_key` takes three."""
    bits = ops.bitwise_and(ops.view(ops.cast(x, "float32"), "int32"), 0x7FFFFFFF)
    return ops.bitwise_xor(bits, 0x7FFFFFFF) if smallest else bits


def top_n_mask(scores, eligible, n):
    """The `n` largest `scores` among the `eligible` positions, as a mask;
    among equal scores the lower index is taken, as `top_k` does.

    Exact and sort-free (`backend.top_n_cut`): the threshold `t`, the
    `n`-th largest eligible key (O(size)), then every eligible key `> t`
    (fewer than `n`), and of the keys equal to `t` the first ones by index,
    as many as are missing (a prefix count, only where more tie than are
    missing). `n` may be a tensor (one compiled program for every count); it
    must not exceed the number of eligible positions.

    Args:
        scores: 1-D float scores.
        eligible: 1-D boolean mask of the positions that may be taken.
        n: Number of positions to take.

    Returns:
        A 1-D boolean mask with exactly `n` True entries.

    Example:

    >>> scores = ops.convert_to_tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    >>> eligible = ops.convert_to_tensor([True, True, True, True, True])
    >>> ops.convert_to_numpy(top_n_mask(scores, eligible, 2)).tolist()
    [False, True, True, False, False]
    """
    return _top_n_keys(order_key(scores), ops.cast(eligible, "bool"), n)


def _top_n_keys(key, eligible, n, nonnegative=False):
    """`top_n_mask` of keys already made (`order_key`; `magnitude_key`,
    whose keys are `nonnegative`)."""
    threshold, last = backend.top_n_cut(key, eligible, n, nonnegative)
    index = ops.arange(ops.shape(key)[0], dtype="int32")
    taken = ops.logical_or(key > threshold, ops.logical_and(key == threshold, index <= last))
    return ops.logical_and(eligible, taken)


def _smallest_magnitudes(x, eligible, n):
    """The `n` eligible positions of smallest `|x|` (ties: lower index)."""
    return _top_n_keys(magnitude_key(x, smallest=True), eligible, n, nonnegative=True)


def _largest_magnitudes(x, eligible, n):
    """The `n` eligible positions of largest `|x|` (ties: lower index)."""
    return _top_n_keys(magnitude_key(x), eligible, n, nonnegative=True)


def first_n_true(mask, n):
    """The first `n` True entries of a 1-D boolean `mask`, by index
    (`backend.nth_true_index`: two plain passes, no sort).

    Args:
        mask: 1-D boolean mask.
        n: Number of entries to keep (an int or an int32 scalar tensor), at
            most the number of True entries.

    Returns:
        A 1-D boolean mask: the first `n` True entries of `mask`.

    Example:

    >>> mask = ops.convert_to_tensor([False, True, True, False, True])
    >>> ops.convert_to_numpy(first_n_true(mask, 2)).tolist()
    [False, True, True, False, False]
    """
    index = ops.arange(ops.shape(mask)[0], dtype="int32")
    return ops.logical_and(mask, index <= backend.nth_true_index(mask, n))


def _check_n(n, available, what):
    if not 0 <= n <= available:
        raise ValueError(
            f"Cannot {what} {n} weights: only {available} positions qualify."
        )


def magnitude_prune(weights, mask, n):
    """Deactivates the `n` active weights of smallest magnitude.

    Args:
        weights: Kernel values.
        mask: Boolean mask of the same shape (True = active).
        n: Number of weights to drop, at most the number of active ones.

    Returns:
        The new boolean mask.
    """
    shape = ops.shape(weights)
    flat_mask = _flat(mask, "bool")
    _check_n(n, count_active(flat_mask), "drop")
    if n == 0:
        return ops.reshape(flat_mask, shape)
    # Smallest magnitude first, among the active weights only.
    dropped = _smallest_magnitudes(_flat(weights, "float32"), flat_mask, n)
    return ops.reshape(ops.logical_and(flat_mask, ops.logical_not(dropped)), shape)


def set_prune(weights, mask, n):
    """SET death: drops half of `n` from the smallest non-negative active
    weights and the rest from the negative ones closest to zero.

    When one side has too few active weights, the other side makes up the
    difference, so that exactly `n` weights are dropped (SET's own code lets
    the count drift in that case).
    """
    shape = ops.shape(weights)
    flat_mask = _flat(mask, "bool")
    w = _flat(weights, "float32")
    positive = ops.logical_and(flat_mask, w >= 0)
    negative = ops.logical_and(flat_mask, w < 0)
    n_positive = count_active(positive)
    n_negative = count_active(negative)
    _check_n(n, n_positive + n_negative, "drop")
    take_negative = min(n // 2, n_negative)
    take_positive = min(n - take_negative, n_positive)
    take_negative = n - take_positive
    dropped = ops.logical_or(top_n_mask(-w, positive, take_positive),
                             top_n_mask(w, negative, take_negative))
    return ops.reshape(ops.logical_and(flat_mask, ops.logical_not(dropped)), shape)


def grow(mask, scores, n):
    """Activates the `n` inactive positions with the largest `|scores|`.

    With the dense gradient as `scores` this is RigL's gradient growth; with
    the optimizer's momentum, momentum growth.

    Args:
        mask: Boolean mask (True = active).
        scores: Array of the mask's shape.
        n: Number of positions to activate, at most the number of inactive ones.

    Returns:
        The new boolean mask.
    """
    shape = ops.shape(mask)
    flat_mask = _flat(mask, "bool")
    _check_n(n, int(ops.size(flat_mask)) - count_active(flat_mask), "grow")
    if n == 0:
        return ops.reshape(flat_mask, shape)
    grown = _largest_magnitudes(_flat(scores, "float32"), ops.logical_not(flat_mask), n)
    return ops.reshape(ops.logical_or(flat_mask, grown), shape)


def drop_and_grow(weights, mask, scores, n):
    """One layer's magnitude death and growth by `|scores|`, without a host
    read: `grow(magnitude_prune(weights, mask, n), scores, n)` (the dropped
    positions may regrow), for `n` a tensor too.

    Returns:
        `(survivors, new_mask)`: the active weights kept, and the new mask.

    Example:

    >>> w = ops.convert_to_tensor([[0.3, -0.1], [0.0, 2.0]])
    >>> mask = ops.convert_to_tensor([[True, True], [False, True]])
    >>> gradient = ops.convert_to_tensor([[0.0, 5.0], [1.0, 0.0]])
    >>> survivors, new_mask = drop_and_grow(w, mask, gradient, 1)
    >>> ops.convert_to_numpy(new_mask).tolist()  # -0.1 dropped, then regrown
    [[True, True], [False, True]]
    """
    shape = ops.shape(mask)
    flat_mask = _flat(mask, "bool")
    dropped = _smallest_magnitudes(_flat(weights, "float32"), flat_mask, n)
    survivors = ops.logical_and(flat_mask, ops.logical_not(dropped))
    grown = _largest_magnitudes(_flat(scores, "float32"), ops.logical_not(survivors), n)
    return (ops.reshape(survivors, shape),
            ops.reshape(ops.logical_or(survivors, grown), shape))


def random_grow(mask, n, seed=None):
    """Activates `n` inactive positions drawn uniformly at random.

    Args:
        mask: Boolean mask (True = active).
        n: Number of positions to activate.
        seed: An int or a `keras.random.SeedGenerator` (advanced by the call).

    Returns:
        The new boolean mask.
    """
    scores = keras.random.uniform(ops.shape(mask), seed=seed)
    return grow(mask, scores, n)


def kept_count(size, sparsity):
    """Weights a layer of `size` keeps at `sparsity` under gradual magnitude
    pruning: `max(round(size * (1 - sparsity)), 1)`, as tfmot (round half
    to even)."""
    return max(int(round(size * (1.0 - sparsity))), 1)


def prune_to_sparsity(weights, mask, sparsity):
    """The mask keeping a layer's `kept_count(size, sparsity)` largest
    `|w|`, active weights before inactive ones (the step of gradual
    magnitude pruning, as tfmot's `prune_low_magnitude`).

    tfmot keeps every weight `>=` the k-th largest magnitude, so ties at the
    threshold may keep more than k; here exactly k are kept, ties to the
    lower index. Pruned weights are zero, so they stay pruned while the
    sparsity rises.

    Example:

    >>> import numpy as np
    >>> w = np.array([[0.3, -0.1], [0.0, 2.0]])
    >>> mask = np.array([[True, True], [False, True]])
    >>> ops.convert_to_numpy(prune_to_sparsity(w, mask, 0.5)).tolist()
    [[True, False], [False, True]]
    """
    shape = ops.shape(weights)
    flat_mask = _flat(mask, "bool")
    n = kept_count(int(ops.size(flat_mask)), sparsity)
    scores = ops.where(flat_mask, ops.abs(_flat(weights, "float32")), -1.0)
    kept = top_n_mask(scores, ops.ones_like(flat_mask), n)
    return ops.reshape(kept, shape)


def global_magnitude_masks(weights, density):
    """Masks keeping the `round(density * total)` largest `|w|` over all
    kernels together (global magnitude pruning, the PF ensemble of docs/algorithms.md §4).

    Unlike per-layer pruning, layers compete: a layer whose weights are all
    small may lose all of them. Ties go to the lower index in the
    concatenation of the flattened kernels.

    Args:
        weights: List of kernels (arrays).
        density: Fraction of all weights to keep, in (0, 1].

    Returns:
        A list of boolean masks (backend tensors), one per kernel.

    Example:

    >>> masks = global_magnitude_masks([[1.0, -3.0], [0.5, 2.0]], 0.5)
    >>> [ops.convert_to_numpy(m).tolist() for m in masks]
    [[False, True], [False, True]]
    """
    weights = [ops.convert_to_tensor(w) for w in weights]
    flats = [_flat(w, "float32") for w in weights]
    sizes = [int(ops.size(f)) for f in flats]
    total = sum(sizes)
    keep = min(total, max(1, round(density * total)))
    kept = _largest_magnitudes(ops.concatenate(flats), ops.ones((total,), "bool"), keep)
    masks, offset = [], 0
    for w, size in zip(weights, sizes):
        masks.append(ops.reshape(kept[offset : offset + size], ops.shape(w)))
        offset += size
    return masks
