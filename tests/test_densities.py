"""Tests for `freetickets_tf.densities` (SPEC §2, layer densities)."""

import doctest
import math

import numpy as np
import pytest

from freetickets_tf import densities as densities_module
from freetickets_tf.densities import erk_densities


# --------------------------------------------------------------------------
# Independent references.
# --------------------------------------------------------------------------


def _reference(shapes, density, distribution="erk"):
    """ERK / ER the way the original PyTorch code does it, in plain python.

    Each iteration removes ONLY the single sparse layer with the largest raw
    score (if it would exceed density 1) and re-solves, with dense layers
    entering the right-hand side as `-n_zeros` like the original.

    Returns:
        (densities, number of layers made dense).
    """
    sizes = [math.prod(s) for s in shapes]
    if distribution == "erk":
        raw = [sum(s) / math.prod(s) for s in shapes]
    else:  # "er": fan dimensions only.
        raw = [(s[-2] + s[-1]) / (s[-2] * s[-1]) for s in shapes]
    dense = set()
    while True:
        rhs = 0.0
        divisor = 0.0
        for i, n in enumerate(sizes):
            if i in dense:
                rhs -= n * (1.0 - density)  # its zeros must be paid elsewhere
            else:
                rhs += n * density
                divisor += raw[i] * n
        if divisor == 0.0:
            return [1.0] * len(shapes), len(dense)
        eps = rhs / divisor
        sparse = [i for i in range(len(shapes)) if i not in dense]
        top = max(sparse, key=lambda i: raw[i])  # one layer only
        if eps * raw[top] > 1.0:
            dense.add(top)
            continue
        return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))], len(
            dense
        )


def _overall(shapes, layer_densities):
    """Fraction of active weights over all kernels, computed with a loop."""
    active = 0.0
    total = 0
    for shape, d in zip(shapes, layer_densities):
        n = 1
        for dim in shape:
            n *= dim
        active += d * n
        total += n
    return active / total


def _random_shapes(seed):
    """A random mix of conv kernels `(k, k, in, out)` and dense `(in, out)`."""
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(int(rng.integers(2, 9))):
        c_in = int(rng.choice([1, 3, 8, 16, 32, 64, 128]))
        c_out = int(rng.choice([2, 10, 16, 32, 64, 256]))
        if rng.random() < 0.6:
            k = int(rng.choice([1, 3, 5]))
            shapes.append((k, k, c_in, c_out))
        else:
            shapes.append((c_in, c_out))
    return shapes


# --------------------------------------------------------------------------
# Hand-worked cases.
# --------------------------------------------------------------------------


def test_erk_two_layers_hand_worked():
    """ERK with no dense layer: densities proportional to the raw scores."""
    # A = (10, 10): N = 100, raw = 20 / 100 = 0.20
    # B = (20, 5):  N = 100, raw = 25 / 100 = 0.25
    # d = 0.5: eps * (0.20 * 100 + 0.25 * 100) = 0.5 * 200
    #          eps = 100 / 45 = 2.2222...
    # d_A = 0.2 * 100 / 45 = 4 / 9, d_B = 0.25 * 100 / 45 = 5 / 9.
    result = erk_densities([(10, 10), (20, 5)], density=0.5)
    assert result == pytest.approx([4 / 9, 5 / 9], rel=1e-12)


def test_erk_three_layers_hand_worked_with_a_dense_layer():
    """A layer pushed over 1 becomes dense and the rest are re-solved."""
    # A = (2, 2):   N = 4,   raw = 4 / 4     = 1.00
    # B = (10, 10): N = 100, raw = 20 / 100  = 0.20
    # C = (20, 5):  N = 100, raw = 25 / 100  = 0.25
    # d = 0.5, total 204 -> budget 102.
    # First solve: eps = 102 / (4 + 20 + 25) = 102 / 49 = 2.08 -> d_A = 2.08 > 1.
    # A dense: budget 102 - 4 = 98, eps = 98 / (20 + 25) = 98 / 45 = 2.1778
    #   d_B = 0.20 * 98 / 45 = 19.6 / 45 = 0.43556
    #   d_C = 0.25 * 98 / 45 = 24.5 / 45 = 0.54444
    # Check: 4 + 43.556 + 54.444 = 102.
    result = erk_densities([(2, 2), (10, 10), (20, 5)], density=0.5)
    assert result[0] == 1.0
    assert result[1:] == pytest.approx([19.6 / 45, 24.5 / 45], rel=1e-12)


def test_erk_docstring_example_by_hand():
    """The docstring's example, re-derived by hand."""
    # A = (3,3,3,16):  N = 432,  raw = 25 / 432  = 0.05787
    # B = (3,3,16,16): N = 2304, raw = 38 / 2304 = 0.01649
    # C = (16,10):     N = 160,  raw = 26 / 160  = 0.1625
    # d = 0.5, budget = 0.5 * 2896 = 1448.
    # eps = 1448 / (25 + 38 + 26) = 16.27 -> A: 0.94, C: 2.64 > 1 -> C dense.
    # eps = (1448 - 160) / (25 + 38) = 20.44 -> A: 1.18 > 1 -> A dense.
    # eps = (1448 - 160 - 432) / 38 = 856 / 38 -> B: 856 / 2304 = 0.37153.
    result = erk_densities([(3, 3, 3, 16), (3, 3, 16, 16), (16, 10)], density=0.5)
    assert result == pytest.approx([1.0, 856 / 2304, 1.0], rel=1e-12)


# --------------------------------------------------------------------------
# The iterative dense rule against the one-at-a-time reference.
# --------------------------------------------------------------------------

# Layers of growing width: small early layers have large ERK scores, so
# several rounds are needed before no layer exceeds 1.
_CHAIN = [
    (3, 3, 3, 16),
    (3, 3, 16, 32),
    (3, 3, 32, 64),
    (3, 3, 64, 128),
    (3, 3, 128, 256),
    (1, 1, 128, 256),
    (256, 10),
]


@pytest.mark.parametrize("distribution", ["erk", "er"])
@pytest.mark.parametrize("density", [0.05, 0.1, 0.2, 0.5, 0.8])
def test_dense_rule_matches_one_layer_at_a_time(distribution, density):
    """Removing all offenders at once ends where the original's loop ends."""
    expected, n_dense = _reference(_CHAIN, density, distribution)
    assert erk_densities(_CHAIN, density, distribution) == pytest.approx(
        expected, rel=1e-10
    )
    if density in (0.1, 0.2) and distribution == "erk":
        # Make sure the case really needs several rounds of the rule.
        assert n_dense >= 2


def test_dense_rule_case_needs_several_rounds():
    """The chain at d=0.2 makes >= 2 layers dense, one per reference round."""
    expected, n_dense = _reference(_CHAIN, 0.2)
    result = erk_densities(_CHAIN, 0.2)
    assert n_dense >= 2
    assert sum(d == 1.0 for d in result) == n_dense
    # The first naive solve (no dense layers) overshoots 1 somewhere.
    sizes = [math.prod(s) for s in _CHAIN]
    raw = [sum(s) / math.prod(s) for s in _CHAIN]
    eps0 = 0.2 * sum(sizes) / sum(r * n for r, n in zip(raw, sizes))
    assert max(eps0 * r for r in raw) > 1.0


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("distribution", ["erk", "er"])
def test_random_shapes_match_reference(seed, distribution):
    """Random layer lists at several densities agree with the reference."""
    shapes = _random_shapes(seed)
    for density in (0.01, 0.1, 0.3, 0.7):
        expected, _ = _reference(shapes, density, distribution)
        result = erk_densities(shapes, density, distribution)
        assert result == pytest.approx(expected, rel=1e-10, abs=1e-15)


# --------------------------------------------------------------------------
# Properties.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("distribution", ["erk", "er", "uniform"])
@pytest.mark.parametrize("density", [0.01, 0.05, 0.2, 0.5, 0.9])
def test_overall_density_equals_target(seed, distribution, density):
    """sum(d_l * N_l) / sum(N_l) == density, every d_l in (0, 1]."""
    shapes = _random_shapes(seed)
    result = erk_densities(shapes, density, distribution)
    assert len(result) == len(shapes)
    assert all(isinstance(d, float) for d in result)
    assert all(0.0 < d <= 1.0 for d in result)
    assert _overall(shapes, result) == pytest.approx(density, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("density", [0.05, 0.2, 0.6])
def test_erk_is_layout_invariant(seed, density):
    """Keras (kh, kw, in, out) and PyTorch (out, in, kh, kw) agree under ERK."""
    rng = np.random.default_rng(100 + seed)
    keras_shapes = []
    for _ in range(5):
        k = int(rng.choice([1, 3, 5, 7]))
        keras_shapes.append(
            (k, k, int(rng.integers(1, 200)), int(rng.integers(1, 200)))
        )
    torch_shapes = [(o, i, kh, kw) for (kh, kw, i, o) in keras_shapes]
    assert erk_densities(keras_shapes, density) == pytest.approx(
        erk_densities(torch_shapes, density), rel=1e-12
    )


def test_er_uses_only_the_last_two_dimensions():
    """ER: same (in, out) gives the same density whatever the kernel size."""
    shapes = [(3, 3, 64, 64), (5, 5, 64, 64), (1, 1, 64, 64), (7, 1, 32, 128)]
    er = erk_densities(shapes, 0.3, "er")
    # (3x3), (5x5), (1x1) over 64 -> 64 share raw = 128 / 4096.
    assert er[0] == pytest.approx(er[1], rel=1e-12)
    assert er[0] == pytest.approx(er[2], rel=1e-12)
    # Ratio to the (32, 128) layer: raw 160 / 4096 vs 128 / 4096.
    assert er[3] / er[0] == pytest.approx(160 / 128, rel=1e-12)
    # ERK, which sees the kernel size, does separate them.
    erk = erk_densities(shapes, 0.3, "erk")
    assert erk[0] != pytest.approx(erk[1], rel=1e-3)


def test_uniform_gives_every_layer_the_target():
    """`uniform`: every layer gets exactly `density`."""
    shapes = [(3, 3, 3, 16), (3, 3, 16, 160), (640, 10), (2, 2)]
    assert erk_densities(shapes, 0.37, "uniform") == [0.37] * 4


@pytest.mark.parametrize("distribution", ["erk", "er", "uniform"])
@pytest.mark.parametrize(
    "shapes",
    [
        [(3, 3, 16, 16), (3, 3, 16, 16)],
        [(3, 3, 16, 16), (3, 3, 16, 32), (5, 7)],
        [(784, 300), (300, 100), (100, 10)],
        [(10, 10)],
    ],
)
def test_density_one_gives_all_ones(shapes, distribution):
    """d = 1 makes every layer exactly dense."""
    assert erk_densities(shapes, 1.0, distribution) == [1.0] * len(shapes)


def test_default_distribution_is_erk():
    """Without `distribution`, the ERK densities come out."""
    shapes = [(3, 3, 3, 16), (3, 3, 16, 16), (16, 10)]
    assert erk_densities(shapes, 0.5) == erk_densities(shapes, 0.5, "erk")


# --------------------------------------------------------------------------
# Wide ResNet-28-10 at d = 0.2 (SPEC §2).
# --------------------------------------------------------------------------


def _wrn_28_10_kernel_shapes():
    """Kernel shapes of WRN-28-10, Keras layout, built by hand."""
    shapes = [(3, 3, 3, 16)]  # conv1
    c_in = 16
    for width in (160, 320, 640):
        for block in range(4):
            shapes.append((3, 3, c_in, width))
            shapes.append((3, 3, width, width))
            if block == 0:
                shapes.append((1, 1, c_in, width))  # shortcut
            c_in = width
    shapes.append((640, 10))  # classifier
    return shapes


def test_wrn_shape_list_matches_parameter_count():
    """Sanity check of the hand-built list: kernels + BN + bias = 36,479,194."""
    shapes = _wrn_28_10_kernel_shapes()
    assert len(shapes) == 1 + 3 * (4 * 2 + 1) + 1
    kernels = sum(math.prod(s) for s in shapes)
    # Pre-activation blocks: BN on the block input and on the mid activation.
    bn = 0
    c_in = 16
    for width in (160, 320, 640):
        for _ in range(4):
            bn += 2 * c_in + 2 * width
            c_in = width
    bn += 2 * 640  # final BN
    assert kernels + bn + 10 == 36_479_194


def test_wrn_28_10_at_density_0_2():
    """First conv dense, group-1 3x3 convs ~0.57, overall exactly 0.2."""
    shapes = _wrn_28_10_kernel_shapes()
    result = erk_densities(shapes, 0.2)
    assert result[0] == 1.0
    group1_3x3 = [d for s, d in zip(shapes, result) if s == (3, 3, 160, 160)]
    assert len(group1_3x3) == 7
    for d in group1_3x3:
        assert 0.55 <= d <= 0.60
    classifier = result[-1]
    assert 0.2 <= classifier <= 1.0
    assert _overall(shapes, result) == pytest.approx(0.2, rel=1e-12)
    # And the whole list agrees with the one-at-a-time reference.
    expected, _ = _reference(shapes, 0.2)
    assert result == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("density", [0, 0.0, 1.5, -1, "x", True, None, float("nan")])
def test_bad_density_raises(density):
    """Densities outside (0, 1], strings and booleans are refused."""
    with pytest.raises(ValueError, match="density"):
        erk_densities([(3, 3, 3, 16)], density)


@pytest.mark.parametrize("distribution", ["erdos", "ERK_", "", None])
def test_unknown_distribution_raises(distribution):
    """The error names `distribution` and lists the allowed values."""
    with pytest.raises(ValueError, match="distribution") as info:
        erk_densities([(3, 3, 3, 16)], 0.5, distribution)
    message = str(info.value)
    for allowed in ("erk", "er", "uniform"):
        assert repr(allowed) in message


@pytest.mark.parametrize(
    "shapes",
    [
        [],
        [(5,)],
        [(3, 3, 3, 16), (10,)],
        [()],
        [(3, 0)],
    ],
)
def test_bad_shapes_raise(shapes):
    """Empty lists, 1-D (or 0-D) shapes and zero dimensions are refused."""
    with pytest.raises(ValueError):
        erk_densities(shapes, 0.5)


def test_module_doctests():
    """The docstring examples run."""
    assert doctest.testmod(densities_module).failed == 0
