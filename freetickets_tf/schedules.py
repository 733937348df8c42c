"""Schedules: the death rate of DST updates (docs/algorithms.md §3) and the learning rates
and phases of the ensemble runs (docs/algorithms.md §4)."""

import math

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_death_rate
from freetickets_tf._validation import check_int
from freetickets_tf._validation import check_positive

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


class DSTSchedule:
    """When DST updates the topology, and with which death rate (docs/algorithms.md §3).

    An update is due at every multiple of `update_frequency` optimizer steps
    in `[max(start_step, 1), end_step]`; its death rate is `death_rate`, or
    the cosine decay from it to `COSINE_FLOOR` at `end_step` (or at the end
    of training).

    Args:
        update_frequency: Optimizer steps between updates (ΔT).
        death_rate: The death rate `p`, in [0, 1).
        death_rate_schedule: `"constant"` or `"cosine"`.
        start_step: No update before this optimizer step.
        end_step: No update after this optimizer step (None: never stop).

    Example:

    >>> schedule = DSTSchedule(update_frequency=100, end_step=300)
    >>> [schedule.is_due(s - 1, s) for s in (100, 150, 300, 400)]
    [True, False, True, False]
    """

    def __init__(self, update_frequency=1000, death_rate=0.5,
                 death_rate_schedule="constant", start_step=0, end_step=None):
        self.update_frequency = check_int("update_frequency", update_frequency, 1)
        self.death_rate = check_death_rate(death_rate)
        self.death_rate_schedule = check_choice(
            "death_rate_schedule", death_rate_schedule, DEATH_RATE_SCHEDULES)
        self.start_step = check_int("start_step", start_step, 0)
        self.end_step = check_int("end_step", end_step, 0, allow_none=True)
        if self.end_step is not None and self.end_step < self.start_step:
            raise ValueError(
                f"Invalid `end_step`: {end_step} is before `start_step` ({start_step}).")

    def is_due(self, previous_step, step):
        """Whether an update falls in `(previous_step, step]` (several steps
        may run per batch call, `steps_per_execution`: one update then)."""
        last = step if self.end_step is None else min(step, self.end_step)
        boundary = last - last % self.update_frequency
        return boundary > previous_step and boundary >= max(self.start_step, 1)

    def death_rate_at(self, step, total_steps=None):
        """The death rate at optimizer step `step`; a cosine schedule without
        `end_step` ends at `total_steps` (the whole training's)."""
        end = None
        if self.death_rate_schedule == "cosine":
            end = self.end_step if self.end_step is not None else total_steps
            if not end:
                raise ValueError(
                    "death_rate_schedule='cosine' needs `end_step` when the number "
                    "of steps per epoch is unknown.")
        return death_rate_at(self.death_rate_schedule, self.death_rate, step,
                             self.start_step, end)

    def get_config(self):
        return {"update_frequency": self.update_frequency, "death_rate": self.death_rate,
                "death_rate_schedule": self.death_rate_schedule,
                "start_step": self.start_step, "end_step": self.end_step}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def warmup_factor(epoch, warmup_epochs):
    """Linear warm-up: epoch `e < warmup_epochs` trains at `(e + 1) /
    warmup_epochs` of the rate (docs/algorithms.md §4, ImageNet: 5 epochs), per epoch.

    Example:

    >>> [warmup_factor(e, 4) for e in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    if epoch >= warmup_epochs:
        return 1.0
    return (epoch + 1) / warmup_epochs


def step_decay_learning_rate(epoch, initial_lr, epochs, milestones=(0.5, 0.75),
                             factor=0.1, warmup_epochs=0):
    """Learning rate of a DST or dense run: `initial_lr`, times `factor` at
    each milestone (docs/algorithms.md §4: × 0.1 at 50% and 75% of the epochs), after an
    optional linear warm-up.

    A milestone `f` falls at epoch `int(f * epochs)`, as the original's
    `MultiStepLR([int(epochs / 2), int(epochs * 3 / 4)])`.

    Example:

    >>> [round(step_decay_learning_rate(e, 0.1, 250), 6) for e in (0, 124, 125, 187)]
    [0.1, 0.1, 0.01, 0.001]
    """
    passed = sum(epoch >= int(f * epochs) for f in milestones)
    return initial_lr * factor**passed * warmup_factor(epoch, warmup_epochs)


class EDSTSchedule:
    """Phases, learning rates and global explorations of an EDST run (docs/algorithms.md §4).

    One run of `epochs` epochs: an exploration phase of `exploration_epochs`
    at `learning_rates[0]` (times 0.1 at each of `exploration_milestones`,
    after `warmup_epochs` of linear warm-up), then `num_members` refinement
    phases splitting the remaining epochs (the first phases get the shorter
    share when they do not divide evenly). Each refinement phase starts at
    `learning_rates[1]` and moves to `learning_rates[k + 1]` at its k-th
    `phase_milestones` offset (default: `learning_rates[2]` at mid-phase,
    rounded up); phases 2..M start with a global exploration. The best
    checkpoint of phase m is ticket m.

    Args:
        epochs: Total epochs `E` of the run.
        exploration_epochs: Epochs `E_explo` of the exploration phase, < `E`.
        num_members: Number of tickets `M`; each phase needs >= 1 epoch.
        learning_rates: `(exploration, refinement rates...)`: for CIFAR
            `(0.1, 0.01, 0.001)`, for ImageNet `(0.1, 0.01, 0.001, 1e-4)`.
        phase_milestones: Epochs into each phase where the next refinement
            rate starts, one per rate after the first; None: mid-phase.
        exploration_milestones: Epochs of the exploration phase where its
            rate drops × 0.1 (ImageNet: 30, 60, 90).
        warmup_epochs: Linear warm-up epochs at the start of the run.

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
                 learning_rates=(0.1, 0.01, 0.001), phase_milestones=None,
                 exploration_milestones=(), warmup_epochs=0):
        self.num_members = check_int("num_members", num_members, 1)
        self.epochs = check_int("epochs", epochs, 1)
        self.exploration_epochs_count = check_int(
            "exploration_epochs", exploration_epochs, 0
        )
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
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
        self.learning_rates = tuple(
            check_positive(f"learning_rates[{i}]", lr) for i, lr in enumerate(learning_rates))
        if phase_milestones is None:
            if len(self.learning_rates) != 3:
                raise ValueError(
                    "Invalid `learning_rates`: expected three rates (exploration, "
                    f"refinement, mid-phase), got {learning_rates!r}; or pass "
                    "`phase_milestones` for more refinement rates."
                )
        elif len(phase_milestones) != len(self.learning_rates) - 2 or any(
            not isinstance(m, int) or m < 1 for m in phase_milestones
        ):
            raise ValueError(
                f"Invalid `phase_milestones`: {phase_milestones!r}. Expected "
                f"{len(self.learning_rates) - 2} positive epoch offsets, one per "
                "refinement rate after the first."
            )
        self.phase_milestones = (
            None if phase_milestones is None else tuple(phase_milestones)
        )
        if any(not 0 < m < exploration_epochs for m in exploration_milestones):
            raise ValueError(
                f"Invalid `exploration_milestones`: {exploration_milestones!r}. "
                f"Expected epochs inside the exploration phase (1..{exploration_epochs - 1})."
            )
        self.exploration_milestones = tuple(exploration_milestones)
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
            decays = sum(epoch >= e for e in self.exploration_milestones)
            return (self.learning_rates[0] * 0.1**decays
                    * warmup_factor(epoch, self.warmup_epochs))
        start, end = self.phases[m]
        milestones = self.phase_milestones or (math.ceil((end - start) / 2),)
        passed = sum(epoch >= start + offset for offset in milestones)
        return self.learning_rates[1 + passed]

    def get_config(self):
        return {
            "epochs": self.epochs,
            "exploration_epochs": self.exploration_epochs_count,
            "num_members": self.num_members,
            "learning_rates": list(self.learning_rates),
            "phase_milestones": (
                None if self.phase_milestones is None else list(self.phase_milestones)
            ),
            "exploration_milestones": list(self.exploration_milestones),
            "warmup_epochs": self.warmup_epochs,
        }
