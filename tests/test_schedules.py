"""Tests for `freetickets_tf.schedules` (SPEC §3, death-rate schedules)."""

import doctest
import math

import numpy as np
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


# --- learning-rate schedules of the ensembles (SPEC §4) -------------------

from freetickets_tf.schedules import EDSTSchedule  # noqa: E402
from freetickets_tf.schedules import step_decay_learning_rate  # noqa: E402


def test_edst_schedule_matches_spec_worked_example():
    """450 / 150 / M=3: lr 0.1 -> 150; 0.01 -> 200; 0.001 -> 250; explore,
    0.01 -> 300; 0.001 -> 350; explore, 0.01 -> 400; 0.001 -> 450."""
    schedule = EDSTSchedule(450, 150, 3)
    expected = (
        [0.1] * 150 + [0.01] * 50 + [0.001] * 50
        + [0.01] * 50 + [0.001] * 50 + [0.01] * 50 + [0.001] * 50
    )
    assert [schedule.learning_rate(e) for e in range(450)] == expected
    assert schedule.exploration_epochs == [250, 350]
    assert schedule.phases == [(150, 250), (250, 350), (350, 450)]
    assert [schedule.phase_of(e) for e in (0, 149, 150, 249, 250, 449)] == [
        None, None, 0, 0, 1, 2]


def test_edst_schedule_odd_phase_length_rounds_mid_phase_up():
    """Phases of 5 epochs drop the rate after ceil(5 / 2) = 3 epochs."""
    schedule = EDSTSchedule(25, 10, 3)
    assert schedule.phases == [(10, 15), (15, 20), (20, 25)]
    assert [schedule.learning_rate(e) for e in range(10, 15)] == [
        0.01, 0.01, 0.01, 0.001, 0.001]


def test_edst_schedule_uneven_split_gives_every_epoch_a_phase():
    schedule = EDSTSchedule(11, 4, 3)
    assert schedule.phases == [(4, 6), (6, 8), (8, 11)]
    assert schedule.exploration_epochs == [6, 8]
    assert schedule.learning_rate(10) == 0.001 and schedule.learning_rate(9) == 0.01


def test_edst_schedule_single_member_has_no_global_exploration():
    schedule = EDSTSchedule(6, 2, 1)
    assert schedule.phases == [(2, 6)] and schedule.exploration_epochs == []


def test_edst_schedule_custom_learning_rates():
    schedule = EDSTSchedule(6, 2, 2, learning_rates=(1.0, 0.5, 0.25))
    assert [schedule.learning_rate(e) for e in range(6)] == [
        1.0, 1.0, 0.5, 0.25, 0.5, 0.25]


def test_edst_schedule_imagenet_setting_matches_spec():
    """SPEC §4, ResNet-50: 5-epoch warm-up to 0.1, x0.1 at 30 / 60 / 90; then
    lr back to 0.01 at 100, 170, 240, 0.001 thirty epochs after each, 1e-4
    sixty after; 310 epochs."""
    schedule = EDSTSchedule(
        310, 100, 3, learning_rates=(0.1, 0.01, 0.001, 1e-4),
        phase_milestones=(30, 60), exploration_milestones=(30, 60, 90),
        warmup_epochs=5)
    rates = [schedule.learning_rate(e) for e in range(310)]
    np.testing.assert_allclose(rates[:5], [0.02, 0.04, 0.06, 0.08, 0.1])
    expected = {5: 0.1, 29: 0.1, 30: 0.01, 60: 0.001, 90: 1e-4, 99: 1e-4}
    for start in (100, 170, 240):
        expected.update({start: 0.01, start + 29: 0.01, start + 30: 0.001,
                         start + 59: 0.001, start + 60: 1e-4, start + 69: 1e-4})
    for epoch, rate in expected.items():
        assert rates[epoch] == pytest.approx(rate), epoch
    assert schedule.phases == [(100, 170), (170, 240), (240, 310)]
    assert schedule.exploration_epochs == [170, 240]


def test_step_decay_warm_up_then_milestones():
    rates = [step_decay_learning_rate(e, 0.1, 100, (0.3, 0.6, 0.9), warmup_epochs=5)
             for e in range(100)]
    np.testing.assert_allclose(rates[:6], [0.02, 0.04, 0.06, 0.08, 0.1, 0.1])
    np.testing.assert_allclose([rates[29], rates[30], rates[60], rates[90]],
                               [0.1, 0.01, 0.001, 1e-4])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rates": (0.1, 0.01, 0.001, 1e-4)}, "phase_milestones"),
        ({"learning_rates": (0.1, 0.01, 0.001), "phase_milestones": (3, 4)},
         "phase_milestones"),
        ({"exploration_milestones": (200,)}, "exploration_milestones"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
    ],
)
def test_edst_schedule_bad_milestones(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EDSTSchedule(450, 150, 3, **kwargs)


@pytest.mark.parametrize(
    "args, match",
    [
        ((450, 150, 0), "num_members"),
        ((450, 450, 3), "exploration_epochs"),
        ((450, 500, 3), "exploration_epochs"),
        ((10, 8, 3), "shorter than one epoch"),
        ((0, 0, 1), "epochs"),
    ],
)
def test_edst_schedule_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        EDSTSchedule(*args)


def test_step_decay_drops_at_half_and_three_quarters():
    """DST runs of 250 epochs: x0.1 at epoch 125 and again at 187."""
    rates = [step_decay_learning_rate(e, 0.1, 250) for e in range(250)]
    assert rates[:125] == [0.1] * 125
    assert all(math.isclose(r, 0.01) for r in rates[125:187])
    assert all(math.isclose(r, 0.001) for r in rates[187:])


from freetickets_tf.schedules import DSTSchedule  # noqa: E402


@pytest.mark.parametrize("frequency, start, end", [(7, 0, None), (5, 12, 40), (1, 3, 3)])
def test_dst_schedule_is_due_at_multiples_in_range(frequency, start, end):
    schedule = DSTSchedule(update_frequency=frequency, start_step=start, end_step=end)
    due = [s for s in range(1, 60) if schedule.is_due(s - 1, s)]
    expected = [s for s in range(1, 60) if s % frequency == 0 and s >= max(start, 1)
                and (end is None or s <= end)]
    assert due == expected
    # Several steps per batch call: one update for the boundary they cross.
    assert schedule.is_due(0, 59) == bool(expected)


def test_dst_schedule_death_rates_and_config():
    cosine = DSTSchedule(10, 0.5, "cosine", start_step=0, end_step=1000)
    assert cosine.death_rate_at(500) == death_rate_at("cosine", 0.5, 500, 0, 1000)
    open_ended = DSTSchedule(10, 0.5, "cosine")
    assert open_ended.death_rate_at(500, total_steps=1000) == cosine.death_rate_at(500)
    with pytest.raises(ValueError, match="needs `end_step`"):
        open_ended.death_rate_at(500)
    assert DSTSchedule(10, 0.3).death_rate_at(10**6) == 0.3
    assert DSTSchedule.from_config(cosine.get_config()).get_config() == cosine.get_config()


@pytest.mark.parametrize("kwargs, match", [
    (dict(update_frequency=0), "update_frequency"),
    (dict(death_rate=1.0), "death_rate"),
    (dict(death_rate_schedule="linear"), "death_rate_schedule"),
    (dict(start_step=-1), "start_step"),
    (dict(start_step=10, end_step=5), "end_step"),
])
def test_dst_schedule_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DSTSchedule(**kwargs)
