"""Every use of Keras internals in freetickets_tf, in one place.

Keras 3 has no public API for these; each function names what it stands in
for. Checked against Keras 3.3 to 3.15.1 (setup.cfg requires keras>=3.3);
`tests/test_keras_internals.py` exercises each one, so a Keras release that
moves them fails there first, and this module is the one to mend. (The
multi-worker `fit` repair, `_multi_worker_fit`, patches Keras' trainer
itself and says so on its own.)
"""

import keras


def flatten_layers(model, recursive=True):
    """The layers inside `model`, depth first (`recursive`) or its own:
    the walk `Model.summary` and the savers use."""
    return list(model._flatten_layers(include_self=False, recursive=recursive))


def is_container(layer):
    """Whether `layer` holds layers of its own (a nested model or layer)."""
    return bool(layer._layers)


def own_variables(layer):
    """The variables `layer` itself created, trainable first, in creation
    order (not those of sublayers): what `layer.weights` lists for a leaf."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def optimizer_variables_trained(optimizer):
    """The model variables a built optimizer updates, in its slot order."""
    return list(optimizer._trainable_variables)


def functional_graph(model):
    """The functional graph behind a model (a Sequential's inner Functional),
    or None for a subclassed model."""
    if isinstance(model, keras.Sequential):
        return model._functional
    return model if hasattr(model, "_nodes_by_depth") else None


def graph_nodes(graph):
    """The call nodes of one functional graph (a shared layer's calls in
    other models excluded)."""
    return [node for nodes in graph._nodes_by_depth.values() for node in nodes]


def inbound_nodes(layer):
    """Every call node of `layer`, in any graph."""
    return list(layer._inbound_nodes)


def producing_operation(tensor):
    """The layer or operation that computed a symbolic tensor."""
    return tensor._keras_history.operation


def leave_out_of_parameter_counts(is_bookkeeping):
    """Makes `Model.summary`'s totals and every `count_params()` skip the
    variables for which `is_bookkeeping(variable)` is true.

    Both read `keras.src.utils.summary_utils.count_params` and
    `weight_memory_size`, which sum every weight; Keras has no hook to
    leave some out, and taking the masks out of `weights` would break
    `get_weights` / `set_weights`. Wraps the two functions (once).
    """
    from keras.src.utils import summary_utils

    if getattr(summary_utils.count_params, "leaves_out", None) is is_bookkeeping:
        return

    def wrap(function):
        def counted(weights):
            return function([w for w in weights if not is_bookkeeping(w)])

        counted.leaves_out = is_bookkeeping
        counted.__wrapped__ = function
        return counted

    summary_utils.count_params = wrap(summary_utils.count_params)
    summary_utils.weight_memory_size = wrap(summary_utils.weight_memory_size)
