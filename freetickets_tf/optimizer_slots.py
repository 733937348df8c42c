"""Finding an optimizer's per-variable state (momentum, Adam moments, ...).

Keras optimizers keep each kind of slot in a list ordered like the
optimizer's variables (`SGD.momentums`, `Adam._momentums`,
`Adam._velocities`, ...). Rather than naming every optimizer, look for such
lists: it also covers optimizers users write themselves.
"""

from collections.abc import Sequence

import keras

from freetickets_tf import _keras_internals as internals

# Where Keras' built-in optimizers keep their first moment / momentum.
_MOMENTUM_LISTS = ("momentums", "_momentums")


def _base(optimizer):
    # LossScaleOptimizer keeps the slots in the optimizer it wraps.
    return getattr(optimizer, "inner_optimizer", optimizer)


def _slot_lists(optimizer):
    optimizer = _base(optimizer)
    trainable = {id(v) for v in internals.optimizer_variables_trained(optimizer)}
    return {
        name: value
        for name, value in vars(optimizer).items()
        # Keras keeps slots in TrackedLists, which are sequences but not lists.
        if isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == len(trainable) > 0
        and all(isinstance(v, keras.Variable) and id(v) not in trainable for v in value)
    }


def _index(optimizer, variable):
    return _base(optimizer)._get_variable_index(variable)


def slot_variables(optimizer, variable):
    """All optimizer slots that belong to `variable` (same shape), possibly [].

    The optimizer must be built (`model.fit` builds it before `on_train_begin`).
    """
    return slot_variables_each(optimizer, [variable])[0]


def slot_variables_each(optimizer, variables):
    """`slot_variables` of each of `variables`, in order; the optimizer's
    slot lists are found once for all of them (a model's kernels)."""
    lists = _slot_lists(optimizer).values()
    return [[slots[index] for slots in lists
             if tuple(slots[index].shape) == tuple(variable.shape)]
            for variable, index in ((v, _index(optimizer, v)) for v in variables)]


def has_momentum(optimizer):
    """Whether the optimizer keeps a momentum (first-moment) slot."""
    return any(name in _slot_lists(optimizer) for name in _MOMENTUM_LISTS)


def momentum_variable(optimizer, variable):
    """The momentum / first-moment slot of `variable`."""
    lists = _slot_lists(optimizer)
    for name in _MOMENTUM_LISTS:
        if name in lists:
            return lists[name][_index(optimizer, variable)]
    raise ValueError(
        f"The optimizer {type(_base(optimizer)).__name__} keeps no momentum; "
        "growth='momentum' needs e.g. SGD(momentum=0.9) or Adam."
    )
