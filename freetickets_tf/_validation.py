"""Argument checks shared by the public API, so every error reads the same way."""

import math
import numbers


def check_choice(name, value, allowed):
    """Raises `ValueError` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(
            f"Invalid `{name}`: {value!r}. Allowed values: "
            + ", ".join(repr(a) for a in allowed)
            + "."
        )
    return value


def check_real(name, value, in_range, expected):
    """Raises `ValueError` unless `value` is a finite real number (not a
    bool) with `in_range(value)`; `expected` completes "Expected ..."."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not in_range(float(value))
    ):
        raise ValueError(f"Invalid `{name}`: {value!r}. Expected {expected}.")
    return float(value)


def check_density(density, name="density"):
    """Densities are fractions of active weights: `0 < density <= 1`."""
    return check_real(name, density, lambda d: 0.0 < d <= 1.0,
                      "a number in (0, 1] (the fraction of weights kept; "
                      "sparsity = 1 - density)")


def check_death_rate(death_rate, name="death_rate"):
    """A death rate is the fraction of active weights dropped: `0 <= p < 1`."""
    return check_real(name, death_rate, lambda p: 0.0 <= p < 1.0,
                      "a number in [0, 1) (the fraction of each layer's active "
                      "weights moved per update)")


def check_momentum(momentum, name="momentum"):
    """SGD momentum: `0 <= momentum < 1`."""
    return check_real(name, momentum, lambda m: 0.0 <= m < 1.0,
                      "a number in [0, 1) (0: plain SGD; the original uses 0.9)")


def check_weight_decay(weight_decay, name="weight_decay"):
    """Weight decay: `>= 0`."""
    return check_real(name, weight_decay, lambda wd: wd >= 0.0,
                      "a finite number >= 0 (0 turns weight decay off; the "
                      "original uses 5e-4 on CIFAR)")


def check_positive(name, value):
    """A finite number `> 0`, e.g. a learning rate."""
    return check_real(name, value, lambda v: v > 0.0, "a finite number > 0")


def check_int(name, value, minimum, allow_none=False):
    """Raises `ValueError` unless `value` is an integer `>= minimum`."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"Invalid `{name}`: {value!r}. Expected an integer >= {minimum}"
            + (" or None." if allow_none else ".")
        )
    return int(value)
