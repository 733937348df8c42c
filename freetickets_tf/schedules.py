"""Schedules: the death rate of DST updates (SPEC §3) and the learning rates
and phases of the ensemble runs (SPEC §4)."""

import math

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int

DEATH_RATE_SCHEDULES = ("constant", "cosine")

# The original's cosine schedule decays towards this floor, not to zero.
COSINE_FLOOR = 0.005


def death_rate_at(schedule, initial_rate, step, start_step, end_step):
    """The death rate to use at optimizer step `step`.

    Args:
        schedule: `"constant"` or `"cosine"` (from `initial_rate` at
            `start_step` down to `COSINE_FLOOR` at `end_step`).
        initial_rate: The death rate `p`.
        step: Current optimizer step.
        start_step, end_step: The span of the schedule (cosine only).

    Returns:
        A float.

    Example:

    >>> death_rate_at("cosine", 0.5, step=500, start_step=0, end_step=1000)
    0.2525
    """
    check_choice("death_rate_schedule", schedule, DEATH_RATE_SCHEDULES)
    if schedule == "constant":
        return initial_rate
    floor = min(COSINE_FLOOR, initial_rate)
    progress = min(max((step - start_step) / max(end_step - start_step, 1), 0.0), 1.0)
    return floor + (initial_rate - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_decay_learning_rate(epoch, initial_lr, epochs, milestones=(0.5, 0.75), factor=0.1):
    """Learning rate of a DST or dense run: `initial_lr`, times `factor` at
    each milestone (SPEC §4: × 0.1 at 50% and 75% of the epochs).

    A milestone `f` falls at epoch `int(f * epochs)`, as the original's
    `MultiStepLR([int(epochs / 2), int(epochs * 3 / 4)])`.

    Example:

    >>> [round(step_decay_learning_rate(e, 0.1, 250), 6) for e in (0, 124, 125, 187)]
    [0.1, 0.1, 0.01, 0.001]
    """
    passed = sum(epoch >= int(f * epochs) for f in milestones)
    return initial_lr * factor**passed


class EDSTSchedule:
    """Phases, learning rates and global explorations of an EDST run (SPEC §4).

    One run of `epochs` epochs: an exploration phase of `exploration_epochs`
    at `learning_rates[0]`, then `num_members` refinement phases splitting the
    remaining epochs (the first phases get the shorter share when they do not
    divide evenly). Each refinement phase runs at `learning_rates[1]` and
    drops to `learning_rates[2]` at mid-phase (rounded up); phases 2..M start
    with a global exploration. The best checkpoint of phase m is ticket m.

    Args:
        epochs: Total epochs `E` of the run.
        exploration_epochs: Epochs `E_explo` of the exploration phase, < `E`.
        num_members: Number of tickets `M`; each phase needs >= 1 epoch.
        learning_rates: `(exploration, refinement, mid-phase)` rates.

    Example:

    >>> schedule = EDSTSchedule(450, 150, 3)
    >>> schedule.phases
    [(150, 250), (250, 350), (350, 450)]
    >>> schedule.exploration_epochs
    [250, 350]
    >>> [schedule.learning_rate(e) for e in (149, 150, 200, 250, 300)]
    [0.1, 0.01, 0.001, 0.01, 0.001]
    """

    def __init__(self, epochs, exploration_epochs, num_members,
                 learning_rates=(0.1, 0.01, 0.001)):
        self.num_members = check_int("num_members", num_members, 1)
        self.epochs = check_int("epochs", epochs, 1)
        self.exploration_epochs_count = check_int(
            "exploration_epochs", exploration_epochs, 0
        )
        if exploration_epochs >= epochs:
            raise ValueError(
                f"Invalid `exploration_epochs`: {exploration_epochs} must be "
                f"smaller than `epochs` ({epochs}); the refinement phases need "
                "the rest."
            )
        refinement = epochs - exploration_epochs
        if refinement < num_members:
            raise ValueError(
                f"Refinement phases shorter than one epoch: {refinement} epochs "
                f"after exploration cannot hold {num_members} phases. Raise "
                "`epochs`, lower `exploration_epochs` or `num_members`."
            )
        if len(learning_rates) != 3:
            raise ValueError(
                "Invalid `learning_rates`: expected three rates (exploration, "
                f"refinement, mid-phase), got {learning_rates!r}."
            )
        self.learning_rates = tuple(float(lr) for lr in learning_rates)
        bounds = [
            exploration_epochs + m * refinement // num_members
            for m in range(num_members + 1)
        ]
        self.phases = list(zip(bounds[:-1], bounds[1:]))

    @property
    def exploration_epochs(self):
        """Epochs that start with a global exploration (phases 2..M)."""
        return [start for start, _ in self.phases[1:]]

    def phase_of(self, epoch):
        """Index m of the refinement phase holding `epoch`, or None while exploring."""
        for m, (start, end) in enumerate(self.phases):
            if start <= epoch < end:
                return m
        return None

    def learning_rate(self, epoch):
        """The learning rate of `epoch` (0-based)."""
        m = self.phase_of(epoch)
        if m is None:
            return self.learning_rates[0]
        start, end = self.phases[m]
        mid = start + math.ceil((end - start) / 2)
        return self.learning_rates[1] if epoch < mid else self.learning_rates[2]

    def get_config(self):
        return {
            "epochs": self.epochs,
            "exploration_epochs": self.exploration_epochs_count,
            "num_members": self.num_members,
            "learning_rates": list(self.learning_rates),
        }
