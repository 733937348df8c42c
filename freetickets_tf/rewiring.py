"""Applies one DST drop-and-grow step to a masked kernel's variables (SPEC §3).

`topology` computes new masks; this module writes them back together with
what must change alongside: dropped weights are zeroed, grown weights start at
zero, their optimizer slots are reset, and the explored record grows.
"""

from keras import ops

from freetickets_tf import topology

DEATH_MODES = {"magnitude": topology.magnitude_prune, "set": topology.set_prune}
GROWTH_MODES = ("gradient", "random", "momentum")


def rewire(masked_kernel, death_rate, death="magnitude", scores=None, seed=None,
           slots=(), skip_dense=True):
    """Moves `ceil(death_rate * n_active)` weights of one masked kernel.

    Args:
        masked_kernel: A `freetickets_tf.layers.MaskedKernel`.
        death_rate: Fraction of the active weights to drop and regrow.
        death: `"magnitude"` or `"set"`.
        scores: Growth scores of the kernel's shape (gradient or momentum);
            `None` grows at random.
        seed: Seed for random growth (int or `keras.random.SeedGenerator`).
        slots: Optimizer slot variables to zero at the grown positions.
        skip_dense: Leave a kernel without inactive weights (ERK may give a
            layer density 1) alone (SPEC §3). False rewires it too, as the
            original's `truncate_weights`: its `n` smallest weights are
            dropped and, being the only inactive positions, regrown at zero.

    Returns:
        The number of positions active now that were not before.
    """
    mk = masked_kernel
    # A snapshot: on TensorFlow `.value` is the live variable, which the
    # assignments below would change under our feet.
    mask = ops.copy(mk.mask.value)
    if skip_dense and int(ops.convert_to_numpy(ops.all(mask))):
        return 0
    n = topology.drop_count(mask, death_rate)
    if n == 0:
        return 0
    survivors = DEATH_MODES[death](mk.kernel.value, mask, n)
    if scores is None:
        new_mask = topology.random_grow(survivors, n, seed=seed)
    else:
        new_mask = topology.grow(survivors, scores, n)
    # Positions regrown right after being dropped count as grown: they
    # restart from zero too (RigL).
    grown = ops.logical_and(new_mask, ops.logical_not(survivors))
    mk.kernel.assign(ops.where(survivors, mk.kernel.value, ops.zeros_like(mk.kernel.value)))
    mk.mask.assign(new_mask)
    mk.explored.assign(ops.logical_or(mk.explored.value, new_mask))
    for slot in slots:
        slot.assign(ops.where(grown, ops.zeros_like(slot.value), slot.value))
    return topology.count_active(ops.logical_and(new_mask, ops.logical_not(mask)))
