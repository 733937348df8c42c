"""The Keras internals freetickets_tf relies on still work as it expects:
a Keras release that moves one fails here first (see _keras_internals)."""

import keras

from freetickets_tf import _keras_internals as internals


def _nested():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="inner_dense")],
                             name="inner")
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    return keras.Model(inputs, inner(hidden), name="outer"), inner


def test_layer_walks_and_containers():
    model, inner = _nested()
    names = [layer.name for layer in internals.flatten_layers(model)]
    assert names.index("hidden") < names.index("inner") < names.index("inner_dense")
    assert "inner_dense" not in [layer.name for layer in
                                 internals.flatten_layers(model, recursive=False)]
    assert internals.is_container(inner)
    assert not internals.is_container(model.get_layer("hidden"))


def test_own_variables_are_a_layers_own_in_creation_order():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    assert [v.name for v in internals.own_variables(layer)] == [
        "gamma", "beta", "moving_mean", "moving_variance"]


def test_optimizer_variables_and_graph_nodes():
    model, inner = _nested()
    optimizer = keras.optimizers.SGD(momentum=0.9)
    optimizer.build(model.trainable_variables)
    assert [id(v) for v in internals.optimizer_variables_trained(optimizer)] == [
        id(v) for v in model.trainable_variables]
    graph = internals.functional_graph(model)
    assert graph is model
    sequential_graph = internals.functional_graph(inner)
    assert sequential_graph is not None and sequential_graph is not inner
    nodes = {id(n) for n in internals.graph_nodes(graph)}
    hidden_nodes = internals.inbound_nodes(model.get_layer("hidden"))
    assert hidden_nodes and all(id(n) in nodes for n in hidden_nodes)
    assert internals.producing_operation(model.outputs[0]) is inner

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert internals.functional_graph(Subclassed()) is None


def test_parameter_counts_leave_out_what_the_predicate_marks():
    from keras.src.utils import summary_utils

    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    layer.kernel.left_out_for_test = True
    internals.leave_out_of_parameter_counts(lambda v: getattr(v, "left_out_for_test", False))
    try:
        assert layer.count_params() == 3  # the bias only
        assert summary_utils.weight_memory_size(layer.weights) == 12  # 3 float32
    finally:
        for name in ("count_params", "weight_memory_size"):  # back to the library's
            setattr(summary_utils, name, getattr(summary_utils, name).__wrapped__)
    assert layer.count_params() == 15
