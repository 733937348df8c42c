"""freetickets_tf.pruning_schedules against tfmot's formulas, written out here."""

import doctest

import keras
import numpy as np
import pytest

from freetickets_tf import pruning_schedules
from freetickets_tf.pruning_schedules import ConstantSparsity
from freetickets_tf.pruning_schedules import PolynomialDecay


def _tfmot_should_prune(step, begin_step, end_step, frequency):
    # tfmot's `PruningSchedule._should_prune_in_step`, in numpy.
    is_in_pruning_range = np.logical_and(
        step >= begin_step, np.logical_or(step <= end_step, end_step < 0))
    is_pruning_turn = np.equal(np.mod(step - begin_step, frequency), 0)
    return bool(np.logical_and(is_in_pruning_range, is_pruning_turn))


def _tfmot_polynomial_sparsity(step, initial, final, begin_step, end_step, power):
    # tfmot's `PolynomialDecay.__call__`: p clipped to [0, 1], then the decay.
    p = np.minimum(1.0, np.maximum(0.0, (step - begin_step) / (end_step - begin_step)))
    return (initial - final) * (1 - p) ** power + final


@pytest.mark.parametrize("initial, final, begin, end, power, frequency", [
    (0.0, 0.8, 0, 1000, 3, 100),
    (0.5, 0.9, 100, 350, 3, 7),
    (0.2, 0.95, 10, 11, 2, 1),
    (0.0, 0.5, 0, 90, 1.5, 40),  # end is not a pruning turn
])
def test_polynomial_decay_is_tfmots_formula(initial, final, begin, end, power, frequency):
    schedule = PolynomialDecay(initial, final, begin, end, power=power, frequency=frequency)
    for step in range(0, end + 3 * frequency + 2):
        should_prune, sparsity = schedule(step)
        assert should_prune == _tfmot_should_prune(step, begin, end, frequency), step
        assert sparsity == pytest.approx(
            _tfmot_polynomial_sparsity(step, initial, final, begin, end, power), abs=1e-12)
    assert schedule(end)[1] == pytest.approx(final)
    assert schedule(begin)[1] == pytest.approx(initial)


@pytest.mark.parametrize("begin, end, frequency", [(0, -1, 100), (5, 50, 9), (3, -1, 1)])
def test_constant_sparsity_prunes_at_tfmots_steps(begin, end, frequency):
    schedule = ConstantSparsity(0.75, begin, end, frequency)
    for step in range(0, 400):
        assert schedule(step) == (_tfmot_should_prune(step, begin, end, frequency), 0.75)


@pytest.mark.parametrize("make, argument", [
    (lambda: PolynomialDecay(0.0, 0.8, 100, 100), "end_step"),   # begin >= end
    (lambda: PolynomialDecay(0.0, 0.8, 100, 50), "end_step"),
    (lambda: PolynomialDecay(0.0, 1.0, 0, 10), "final_sparsity"),
    (lambda: PolynomialDecay(-0.1, 0.5, 0, 10), "initial_sparsity"),
    (lambda: PolynomialDecay(0.0, float("nan"), 0, 10), "final_sparsity"),
    (lambda: PolynomialDecay(0.0, 0.5, 0, 10, frequency=0), "frequency"),
    (lambda: PolynomialDecay(0.0, 0.5, -1, 10), "begin_step"),
    (lambda: PolynomialDecay(0.0, 0.5, 0, 10, power=0), "power"),
    (lambda: ConstantSparsity(1.0, 0), "target_sparsity"),
    (lambda: ConstantSparsity(0.5, 10, end_step=10), "end_step"),
    (lambda: ConstantSparsity(0.5, 0, frequency=0.5), "frequency"),
])
def test_bad_schedules_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"Invalid `{argument}`"):
        make()


def test_schedules_serialise():
    for schedule in (PolynomialDecay(0.1, 0.9, 5, 500, power=2, frequency=10),
                     ConstantSparsity(0.5, 3, end_step=-1, frequency=4)):
        config = keras.saving.serialize_keras_object(schedule)
        assert keras.saving.deserialize_keras_object(config) == schedule


def test_module_doctests():
    assert doctest.testmod(pruning_schedules).failed == 0
