"""Death-rate schedules of the DST topology update (SPEC §3)."""

import math

from freetickets_tf._validation import check_choice

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
