"""Per-layer densities for a target overall density (docs/algorithms.md §2).

Pure numpy: kernel shapes in, per-layer densities out. Shapes are in Keras
layout, `(..., fan_in, fan_out)`: `(n_in, n_out)` for `Dense` and
`(kh, kw, c_in, c_out)` for `Conv2D`.
"""

import numpy as np

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_density

DISTRIBUTIONS = ("erk", "er", "uniform")


def _raw_score(shape, distribution):
    if distribution == "erk":
        # Erdős–Rényi-Kernel: sum / prod over every dimension. The score is
        # permutation-invariant, so Keras and PyTorch layouts agree.
        return np.sum(shape) / np.prod(shape)
    # Erdős–Rényi (SET) only looks at the two fan dimensions.
    n_in, n_out = shape[-2], shape[-1]
    return (n_in + n_out) / (n_in * n_out)


def erk_densities(shapes, density, distribution="erk"):
    """Densities per layer so that the whole network has `density`.

    `erk` and `er` give each layer a density proportional to a raw score
    (`eps * raw_l`), with `eps` solving
    `sum_l eps * raw_l * N_l = density * sum_l N_l`. A layer whose density
    would exceed 1 is made dense, its weights are counted as dense on the
    right-hand side, and `eps` is solved again until no layer exceeds 1.

    Args:
        shapes: List of kernel shapes (tuples of ints), one per masked kernel.
        density: Overall fraction of active weights, in (0, 1].
        distribution: `"erk"` (default), `"er"` or `"uniform"` (every layer
            gets `density`).

    Returns:
        A list of floats in (0, 1], one per shape.

    Example:

    >>> [round(d, 3) for d in erk_densities(
    ...     [(3, 3, 3, 16), (3, 3, 16, 16), (16, 10)], density=0.5)]
    [1.0, 0.372, 1.0]
    """
    density = check_density(density)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if not shapes:
        raise ValueError("`shapes` is empty: there is no layer to give a density.")
    for shape in shapes:
        if len(shape) < 2 or min(shape) < 1:
            raise ValueError(
                f"Invalid kernel shape {shape}: expected at least 2 positive "
                "dimensions (..., fan_in, fan_out)."
            )
    if distribution == "uniform":
        return [density] * len(shapes)

    sizes = np.array([np.prod(s) for s in shapes], dtype=np.float64)
    raw = np.array([_raw_score(s, distribution) for s in shapes])
    dense = np.zeros(len(shapes), dtype=bool)
    while not dense.all():
        # Budget left for the sparse layers once the dense ones are paid for.
        rhs = density * sizes.sum() - sizes[dense].sum()
        eps = rhs / np.sum(raw[~dense] * sizes[~dense])
        too_dense = ~dense & (eps * raw > 1.0)
        if not too_dense.any():
            return [1.0 if d else float(eps * r) for d, r in zip(dense, raw)]
        # eps only grows when layers are taken out, so removing every
        # offender at once ends where removing them one by one would.
        dense |= too_dense
    return [1.0] * len(shapes)
