"""Argument checks shared by the public API, so every error reads the same way."""

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


def check_density(density, name="density"):
    """Densities are fractions of active weights: `0 < density <= 1`."""
    if (
        isinstance(density, bool)
        or not isinstance(density, numbers.Real)
        or not 0.0 < float(density) <= 1.0
    ):
        raise ValueError(
            f"Invalid `{name}`: {density!r}. Expected a number in (0, 1] "
            "(the fraction of weights kept; sparsity = 1 - density)."
        )
    return float(density)


def check_death_rate(death_rate, name="death_rate"):
    """A death rate is the fraction of active weights dropped: `0 <= p < 1`."""
    if (
        isinstance(death_rate, bool)
        or not isinstance(death_rate, numbers.Real)
        or not 0.0 <= float(death_rate) < 1.0
    ):
        raise ValueError(
            f"Invalid `{name}`: {death_rate!r}. Expected a number in [0, 1) "
            "(the fraction of each layer's active weights moved per update)."
        )
    return float(death_rate)


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
