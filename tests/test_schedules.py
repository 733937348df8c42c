"""Tests for `freetickets_tf.schedules` (SPEC §3, death-rate schedules)."""

import doctest
import math

import pytest

from freetickets_tf import schedules as schedules_module
from freetickets_tf.schedules import COSINE_FLOOR
from freetickets_tf.schedules import death_rate_at


def _cosine_reference(p, step, start, end):
    """0.005 + (p - 0.005) * 0.5 * (1 + cos(pi * t / T)), t clamped to [0, T]."""
    t = step - start
    total = end - start
    if t < 0:
        t = 0
    if t > total:
        t = total
    half_cosine = 0.5 * (1.0 + math.cos(math.pi * t / total))
    return 0.005 + (p - 0.005) * half_cosine


@pytest.mark.parametrize("p", [0.5, 0.3, 0.8])
@pytest.mark.parametrize("step", [-100, 0, 1, 999, 5000, 10**6])
def test_constant_returns_p(p, step):
    """`constant` ignores the step."""
    assert death_rate_at("constant", p, step, 0, 1000) == p


def test_cosine_floor_is_the_originals():
    """The floor the original decays towards is 0.005."""
    assert COSINE_FLOOR == 0.005


@pytest.mark.parametrize("p", [0.5, 0.3, 0.8])
@pytest.mark.parametrize("start, end", [(0, 1000), (200, 1200), (5, 17)])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0])
def test_cosine_matches_formula(p, start, end, fraction):
    """Cosine from p at start to 0.005 at end, against the formula."""
    step = start + round(fraction * (end - start))
    expected = _cosine_reference(p, step, start, end)
    assert death_rate_at("cosine", p, step, start, end) == pytest.approx(
        expected, rel=1e-12, abs=1e-15
    )


def test_cosine_hand_worked_points():
    """p = 0.5 over 1000 steps, worked by hand."""
    # t = 500: 0.005 + 0.495 * 0.5 * (1 + cos(pi / 2)) = 0.005 + 0.2475 = 0.2525
    assert death_rate_at("cosine", 0.5, 500, 0, 1000) == pytest.approx(0.2525)
    # t = 250: cos(pi / 4) = 0.70711 -> 0.005 + 0.495 * 0.85355 = 0.42751
    assert death_rate_at("cosine", 0.5, 250, 0, 1000) == pytest.approx(
        0.005 + 0.495 * 0.5 * (1 + 2**-0.5)
    )
    # t = 750: cos(3 pi / 4) = -0.70711 -> 0.005 + 0.495 * 0.14645 = 0.07749
    assert death_rate_at("cosine", 0.5, 750, 0, 1000) == pytest.approx(
        0.005 + 0.495 * 0.5 * (1 - 2**-0.5)
    )


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_cosine_endpoints_and_clamping(p):
    """p at start (and before it), 0.005 at end (and after it)."""
    assert death_rate_at("cosine", p, 100, 100, 1100) == pytest.approx(p)
    assert death_rate_at("cosine", p, 0, 100, 1100) == pytest.approx(p)
    assert death_rate_at("cosine", p, -50, 100, 1100) == pytest.approx(p)
    assert death_rate_at("cosine", p, 1100, 100, 1100) == pytest.approx(0.005)
    assert death_rate_at("cosine", p, 1101, 100, 1100) == pytest.approx(0.005)
    assert death_rate_at("cosine", p, 10**7, 100, 1100) == pytest.approx(0.005)


def test_cosine_is_non_increasing():
    """The rate never goes up along the run."""
    rates = [death_rate_at("cosine", 0.5, s, 0, 300) for s in range(-10, 320)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("schedule", ["linear", "Cosine", "", None])
def test_unknown_schedule_raises(schedule):
    """The error names `death_rate_schedule` and the allowed values."""
    with pytest.raises(ValueError, match="death_rate_schedule") as info:
        death_rate_at(schedule, 0.5, 0, 0, 1000)
    assert "'constant'" in str(info.value)
    assert "'cosine'" in str(info.value)


def test_module_doctests():
    """The docstring examples run."""
    assert doctest.testmod(schedules_module).failed == 0
