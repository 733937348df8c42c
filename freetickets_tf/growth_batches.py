"""Where the growth gradient's batches come from: a `step -> (x, y)` source.

Gradient growth (RigL) takes the dense gradient of the loss on one batch per
update. `growth_source` turns what a user has (training arrays, a
`data.TrainingSet`, a dataset or list of batches, or their own
function) into one function of the optimizer step, so that the callback only
asks "the batch for step s", and a resumed run draws what an uninterrupted
one would wherever the source allows it (arrays and training sets: a pure
function of the seed and the step).
"""

import numpy as np

from freetickets_tf.data.training_set import TrainingSet


def is_array_pair(data):
    """Whether `data` is an `(x, y)` (or `(x, y, sample_weight)`) tuple of arrays."""
    return (isinstance(data, tuple) and len(data) in (2, 3)
            and all(hasattr(part, "shape") for part in data))


def check_growth_data(data):
    """`data` as a growth source can use it, or a `ValueError` saying what it
    is not: arrays that pair up, a TrainingSet, a `step -> batch` function,
    or a re-iterable of batches (a dataset, a list; not a string, not a
    one-shot iterator)."""
    if (data is None or isinstance(data, TrainingSet)
            or hasattr(data, "element_spec") or callable(data)):
        return data
    if isinstance(data, tuple) and all(hasattr(part, "shape") for part in data):
        if len(data) not in (2, 3):
            raise ValueError(
                f"Invalid `data`: expected (x, y) arrays, got {len(data)} arrays.")
        lengths = {len(part) for part in data}
        if len(lengths) != 1:
            raise ValueError(
                "Invalid `data`: its arrays have different numbers of examples "
                f"({', '.join(str(len(part)) for part in data)}).")
        if not lengths.pop():
            raise ValueError("Invalid `data`: the arrays have no examples.")
        return data
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__") or (
            iter(data) is data):
        raise ValueError(
            f"Invalid `data`: {type(data).__name__} is not training data. Pass an "
            "(x, y) tuple of arrays, a freetickets_tf.data.TrainingSet, a "
            "tf.data.Dataset of (x, y) batches or a list of them (re-iterable, "
            "not a one-shot iterator), or a function step -> (x, y).")
    return data


def step_rng(seed, step, *salt):
    """A numpy generator fixed by (seed, step): a resumed run draws what the
    uninterrupted run would have drawn at the same step (None: unseeded)."""
    return np.random.default_rng(None if seed is None else [seed, step, *salt])


def _endless(batches):
    """Cycles through a re-iterable of `(x, y, ...)` batches forever."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch[0], batch[1]
        if empty:
            raise ValueError(
                "`data` yielded no batch. Pass a re-iterable source (a "
                "tf.data.Dataset, a list of batches) or an (x, y) tuple.")


def growth_source(data, batch_size=128, seed=None):
    """The growth batch of each optimizer step, as a function `step -> (x, y)`.

    Args:
        data: `(x, y)` arrays (`batch_size` examples drawn without
            replacement by `(seed, step)`), a `data.TrainingSet` (batch
            number `step` of its growth stream), a function `step -> (x, y)`
            (used as it is), or a re-iterable of `(x, y)` batches (cycled in
            order, whatever the step).
        batch_size: Examples per batch drawn from arrays.
        seed: Seed of the draws from arrays and of a training set's stream.

    Returns:
        A function of the optimizer step returning an `(x, y)` batch.

    Example:

    >>> batch_for = growth_source((x_train, y_train), batch_size=128, seed=0)
    >>> x, y = batch_for(1000)   # the same batch at step 1000, every run
    """
    data = check_growth_data(data)
    if data is None:
        raise ValueError("Invalid `data`: None; gradient growth needs training data.")
    if isinstance(data, TrainingSet):
        # The same batch for the same step, also after a resumed run restarts.
        return lambda step: next(iter(data.growth_batches(seed or 0, start=step)))
    if callable(data) and not hasattr(data, "element_spec"):
        return data
    if not is_array_pair(data):
        batches = _endless(data)
        return lambda step: next(batches)
    x, y = np.asarray(data[0]), np.asarray(data[1])
    size = min(batch_size, len(x))

    def draw(step):
        index = np.sort(step_rng(seed, step).choice(len(x), size, replace=False))
        return x[index], y[index]

    return draw
