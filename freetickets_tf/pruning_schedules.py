"""Sparsity schedules of gradual magnitude pruning (Zhu & Gupta, 2017), with
the names, arguments and semantics of tfmot's `tfmot.sparsity.keras`
schedules, for Keras 3 (tfmot's pruning API does not import there).

A schedule maps an optimizer step to `(should_prune, sparsity)`: whether the
masks are recomputed before that step, and the fraction of each pruned
layer's weights that is zero from then on. `callbacks.GradualPruning`
applies it inside `model.fit`.

* `PolynomialDecay`: sparsity rises from `initial_sparsity` at `begin_step`
  to `final_sparsity` at `end_step` as
  `final + (initial - final) * (1 - p) ** power`, `p` the fraction of
  `[begin_step, end_step]` gone by; pruned every `frequency` steps from
  `begin_step` up to and including `end_step`.
* `ConstantSparsity`: `target_sparsity` at every pruning step from
  `begin_step`, every `frequency` steps, up to `end_step` (-1: no end).

Example:

>>> schedule = PolynomialDecay(initial_sparsity=0.0, final_sparsity=0.8,
...                            begin_step=0, end_step=1000, frequency=100)
>>> should_prune, sparsity = schedule(500)
>>> should_prune, round(sparsity, 4)
(True, 0.7)
>>> schedule(550)[0]  # pruned every 100 steps only
False
"""

import keras

from freetickets_tf._validation import check_int
from freetickets_tf._validation import check_real


def _check_sparsity(name, value):
    return check_real(name, value, lambda s: 0.0 <= s < 1.0,
                      "a number in [0, 1) (the fraction of a layer's weights "
                      "pruned; 1 would prune everything)")


def _check_steps(begin_step, end_step, frequency, open_end):
    begin_step = check_int("begin_step", begin_step, 0)
    frequency = check_int("frequency", frequency, 1)
    if open_end and end_step == -1:
        return begin_step, -1, frequency
    end_step = check_int("end_step", end_step, 0)
    if end_step <= begin_step:
        raise ValueError(
            f"Invalid `end_step`: {end_step!r}. Expected an integer > `begin_step` "
            f"({begin_step})" + (", or -1 (prune to the end)." if open_end else "."))
    return begin_step, end_step, frequency


class PruningSchedule:
    """Base class: `schedule(step) -> (should_prune, sparsity)`.

    Subclasses set `begin_step`, `end_step` (-1: no end) and `frequency`
    and define `sparsity(step)`. The pruning steps are tfmot's: `step >=
    begin_step`, `step <= end_step` unless `end_step == -1`, and `(step -
    begin_step) % frequency == 0`.
    """

    def should_prune(self, step):
        """Whether the masks are recomputed before optimizer step `step`."""
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    def sparsity(self, step):
        raise NotImplementedError

    def __call__(self, step):
        step = int(step)
        return self.should_prune(step), self.sparsity(step)

    @property
    def final_sparsity_value(self):
        """The sparsity the schedule ends at (what a run's tickets have)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()


@keras.saving.register_keras_serializable(package="freetickets_tf")
class PolynomialDecay(PruningSchedule):
    """Sparsity rising polynomially from `initial_sparsity` to
    `final_sparsity` (Zhu & Gupta's gradual pruning; tfmot's
    `PolynomialDecay`).

    Args:
        initial_sparsity: Sparsity at `begin_step`, in [0, 1).
        final_sparsity: Sparsity from `end_step` on, in [0, 1).
        begin_step: First pruning step (optimizer steps, from 0).
        end_step: Last pruning step, `> begin_step`.
        power: Exponent of the decay (3 in Zhu & Gupta and tfmot).
        frequency: Optimizer steps between pruning steps, `>= 1`.

    Example:

    >>> schedule = PolynomialDecay(0.5, 0.9, begin_step=100, end_step=200, frequency=50)
    >>> round(schedule(150)[1], 4)
    0.85
    """

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step,
                 power=3, frequency=100):
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, open_end=False)
        self.power = check_real("power", power, lambda p: p > 0.0, "a finite number > 0")

    def sparsity(self, step):
        progress = min(1.0, max(0.0, (step - self.begin_step) /
                                (self.end_step - self.begin_step)))
        return (self.final_sparsity + (self.initial_sparsity - self.final_sparsity)
                * (1.0 - progress) ** self.power)

    @property
    def final_sparsity_value(self):
        return self.final_sparsity

    def get_config(self):
        return {"initial_sparsity": self.initial_sparsity,
                "final_sparsity": self.final_sparsity, "begin_step": self.begin_step,
                "end_step": self.end_step, "power": self.power,
                "frequency": self.frequency}


@keras.saving.register_keras_serializable(package="freetickets_tf")
class ConstantSparsity(PruningSchedule):
    """One sparsity, applied every `frequency` steps from `begin_step`
    (tfmot's `ConstantSparsity`).

    Args:
        target_sparsity: The sparsity, in [0, 1).
        begin_step: First pruning step.
        end_step: Last pruning step, `> begin_step`, or -1 (no end).
        frequency: Optimizer steps between pruning steps, `>= 1`.

    Example:

    >>> ConstantSparsity(0.8, begin_step=0, frequency=100)(200)
    (True, 0.8)
    """

    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(
            begin_step, end_step, frequency, open_end=True)

    def sparsity(self, step):
        return self.target_sparsity

    @property
    def final_sparsity_value(self):
        return self.target_sparsity

    def get_config(self):
        return {"target_sparsity": self.target_sparsity, "begin_step": self.begin_step,
                "end_step": self.end_step, "frequency": self.frequency}
