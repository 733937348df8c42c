"""The drop-and-grow math of a DST topology update (SPEC §3), as pure functions.

Arrays in (numpy arrays or backend tensors), a new boolean mask out (a backend
tensor). Nothing here touches a variable. Ties are broken deterministically:
among equal scores the lower flat index (C order, Keras kernel layout) wins,
which is how `top_k` orders equal values.

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
    return int(ops.convert_to_numpy(ops.sum(ops.cast(mask, "int32"))))


def drop_count(mask, death_rate):
    """`ceil(death_rate * n_active)`, the number of weights to move in a layer."""
    active = count_active(mask)
    # Rounded first so that float noise (0.07 * 100 = 7.000000000000001)
    # cannot add a weight.
    return math.ceil(round(death_rate * active, 9))


def _flat(x, dtype):
    return ops.reshape(ops.cast(ops.convert_to_tensor(x), dtype), (-1,))


def _set_positions(mask, indices, value):
    """Returns `mask` (flat) with `mask[indices] = value`."""
    updates = ops.full((ops.shape(indices)[0],), value, dtype="bool")
    return ops.scatter_update(mask, ops.expand_dims(indices, -1), updates)


def _top(scores, n):
    """Indices of the `n` largest scores; equal scores go to the lower index."""
    return backend.top_k_indices(scores, n)


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
    magnitude = ops.abs(_flat(weights, "float32"))
    # Smallest magnitude first; inactive positions can never be picked.
    scores = ops.where(flat_mask, -magnitude, -float("inf"))
    return ops.reshape(_set_positions(flat_mask, _top(scores, n), False), shape)


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
    if take_positive:
        scores = ops.where(positive, -w, -float("inf"))
        flat_mask = _set_positions(flat_mask, _top(scores, take_positive), False)
    if take_negative:
        scores = ops.where(negative, w, -float("inf"))
        flat_mask = _set_positions(flat_mask, _top(scores, take_negative), False)
    return ops.reshape(flat_mask, shape)


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
    magnitude = ops.abs(_flat(scores, "float32"))
    candidates = ops.where(flat_mask, -float("inf"), magnitude)
    return ops.reshape(_set_positions(flat_mask, _top(candidates, n), True), shape)


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


def global_magnitude_masks(weights, density):
    """Masks keeping the `round(density * total)` largest `|w|` over all
    kernels together (global magnitude pruning, the PF ensemble of SPEC §4).

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
    magnitude = ops.abs(ops.concatenate(flats))
    kept = _set_positions(ops.zeros((total,), "bool"), _top(magnitude, keep), True)
    masks, offset = [], 0
    for w, size in zip(weights, sizes):
        masks.append(ops.reshape(kept[offset : offset + size], ops.shape(w)))
        offset += size
    return masks
