"""FLOPs of a Keras model, of sparse training and of ensembles (docs/algorithms.md §6).

The paper states its claims in FLOPs, so the counts follow its conventions:

* A multiply-accumulate is 2 FLOPs. Everything is per example.
* **Counted:** the kernels of `Dense`, `Conv1D/2D/3D` (grouped too),
  `DepthwiseConv1D/2D`, `SeparableConv1D/2D` and `EinsumDense`, and their
  masked versions in `freetickets_tf.layers`:

  * conv: `2 * kh * kw * (c_in / groups) * c_out * h_out * w_out` (the 1D and
    3D analogues likewise), that is twice the kernel size times the number of
    output positions;
  * dense: `2 * n_in * n_out` per position (a `Dense` on a rank-3 input counts
    once per position of the middle axis);
  * depthwise: `2 * kh * kw * c_in * depth_multiplier * h_out * w_out`;
  * separable: the depthwise part plus the pointwise part
    `2 * (c_in * depth_multiplier) * c_out * h_out * w_out`;
  * `EinsumDense`: twice the product of the sizes of all einsum indices,
    the batch index left out.

* **Ignored:** biases, normalisation, activations, pooling, additions and
  other element-wise ops (they are linear in the activations, small next to
  the kernels, and the paper ignores them too), and layers of other kinds even
  if they own a kernel (`Conv2DTranspose`, `Embedding`, recurrent layers...;
  a warning names them).

Output sizes come from the layers' symbolic output shapes, so the model must
be built with known input sizes. A layer called several times in the graph
(shared) counts once per call; nested models are walked. With `sparse=True`
each masked kernel's count is scaled by its current density (`f_S`); without,
the count is dense (`f_D`).

Training FLOPs per example are `3 * f_S` per optimizer step (the backward pass
costs about twice the forward), plus the growth pass of every topology update
(`growth_pass_flops`). `callbacks.TrainingFlopsCallback` accumulates them
during `fit`; `ensemble_flops` reports an ensemble against one dense model.

Example:

>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
>>> forward_flops(model)
24.0
"""

import math
import warnings

import keras

from freetickets_tf import _keras_internals as internals
from freetickets_tf import layers as masked_layers
from freetickets_tf._validation import check_int
from freetickets_tf._validation import check_real
from freetickets_tf.masking import leaf_layers
from freetickets_tf.topology import count_active

# A kernel applied once per output position (channels excluded).
_CONV_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
_SEPARABLE_LAYERS = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_COUNTED_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    *_CONV_LAYERS,
    *_SEPARABLE_LAYERS,
)


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Invalid `model`: expected a keras.Model, got {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"Invalid `model`: {model.name!r} is not built. Give it a "
            "`keras.Input` or call `model.build(input_shape)` first."
        )
    return model


def _check_count(name, value):
    """A non-negative real number of FLOPs."""
    return check_real(name, value, lambda v: v >= 0.0, "a non-negative number of FLOPs")


def _graph(model):
    """The functional graph behind a model, or None (subclassed models)."""
    return internals.functional_graph(model)


def _calls(container, prefix):
    """Yields `(key, layer, input_shape, output_shape)` per call of a leaf layer.

    Functional and Sequential models are walked node by node, so a shared
    layer yields once per call and only calls inside this graph count.
    Containers without a graph (subclassed models and layers) have no record
    of their calls: each of their layers yields once, with the shape it was
    built with.
    """
    graph = _graph(container)
    if graph is None:
        for layer in internals.flatten_layers(container, recursive=False):
            yield from _layer_calls(layer, prefix, None)
        return
    # `operations` is in layer order; `_nodes_by_depth` holds the nodes of this
    # graph only (a layer may also have been called in another model).
    in_graph = {id(node) for node in internals.graph_nodes(graph)}
    for operation in graph.operations:
        if not isinstance(operation, keras.layers.Layer):
            continue  # a `keras.ops` function in the graph: no kernel
        for node in internals.inbound_nodes(operation):
            if id(node) in in_graph and not node.is_input:
                yield from _layer_calls(operation, prefix, node)


def _layer_calls(layer, prefix, node):
    key = prefix + layer.name
    if internals.is_container(layer):
        # A nested model: its own graph, once per call of the model.
        yield from _calls(layer, key + "/")
        return
    if not isinstance(layer, _COUNTED_LAYERS):
        return
    if node is not None and node.input_tensors and node.output_tensors:
        yield key, layer, node.input_tensors[0].shape, node.output_tensors[0].shape
        return
    build_config = layer.get_build_config() or {}
    input_shape = build_config.get("input_shape")
    if input_shape is None:
        raise ValueError(
            f"Cannot count the FLOPs of layer {key!r}: its input shape is "
            "unknown. Build the model (e.g. give it a `keras.Input`) first."
        )
    yield key, layer, input_shape, layer.compute_output_shape(input_shape)


def _known(key, sizes):
    if any(size is None for size in sizes):
        raise ValueError(
            f"Cannot count the FLOPs of layer {key!r}: its shapes are not fully "
            "known. Build the model with a fixed input size, e.g. "
            "`keras.Input((32, 32, 3))` instead of `(None, None, 3)`."
        )
    return math.prod(sizes)


def _spatial(layer, shape):
    """The spatial (non-batch, non-channel) sizes of a conv layer's output."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[2:])
    return tuple(shape[1:-1])


def _einsum_positions(key, equation, input_shape):
    """Product of the sizes of the einsum indices that are not the kernel's.

    The FLOPs of `EinsumDense` are twice the product of the sizes of all
    indices; the kernel's indices multiply up to its size, and the batch index
    (the input's first) drops out of a per-example count.
    """
    operands, _ = equation.split("->")
    input_spec, kernel_spec = operands.split(",")
    if "..." in input_spec:
        before, after = input_spec.split("...")
        ellipsis = len(input_shape) - len(before) - len(after)
        labels = [*before, *(f"...{i}" for i in range(ellipsis)), *after]
    else:
        labels = list(input_spec)
    sizes = dict(zip(labels[1:], tuple(input_shape)[1:]))
    for label in kernel_spec:
        sizes.pop(label, None)
    return _known(key, sizes.values())


def _kernel_terms(key, layer, input_shape, output_shape):
    """`(kernel variable name, dense FLOPs)` of one call of a counted layer."""
    if isinstance(layer, keras.layers.EinsumDense):
        positions = _einsum_positions(key, layer.equation, input_shape)
        names = ("kernel",)
    elif isinstance(layer, keras.layers.Dense):
        positions = _known(key, tuple(output_shape)[1:-1])
        names = ("kernel",)
    else:
        positions = _known(key, _spatial(layer, output_shape))
        separable = isinstance(layer, _SEPARABLE_LAYERS)
        names = ("depthwise_kernel", "pointwise_kernel") if separable else ("kernel",)
    variables = {v.name: v for v in layer.weights}
    return [
        (name, 2.0 * math.prod(variables[name].shape) * positions) for name in names
    ]


def _densities(layer):
    """Density of each masked kernel of a layer, by variable name."""
    if not isinstance(layer, masked_layers.MaskedLayerMixin):
        return {}
    return {
        mk.kernel.name: count_active(mk.mask) / math.prod(mk.kernel.shape)
        for mk in layer.masked_kernels
    }


def _warn_uncounted(model):
    uncounted = [
        layer
        for layer in leaf_layers(model)
        if not isinstance(layer, _COUNTED_LAYERS)
        and any(v.name.endswith("kernel") for v in layer.trainable_weights)
    ]
    if uncounted:
        warnings.warn(
            "The FLOPs of these layers are not counted: "
            + ", ".join(f"{l.name} ({type(l).__name__})" for l in uncounted),
            stacklevel=3,
        )


def layer_flops(model, sparse=True):
    """Forward FLOPs of one example through each layer with a kernel.

    Args:
        model: A built `keras.Model` (Sequential, functional or subclassed;
            nested models are walked). Subclassed models keep no record of
            their calls, so each of their layers counts once.
        sparse: Scale every masked kernel by its current density (`f_S`).
            False counts every kernel dense (`f_D`).

    Returns:
        A dict `{layer path: FLOPs}` in layer order; a nested model's layers
        are keyed `"inner_model/layer"`. A shared layer sums its calls.

    Raises:
        ValueError: If `model` is not a built Keras model or a counted layer's
            shapes are unknown.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 2)),
    ...     keras.layers.Conv2D(5, 3, padding="same", name="conv"),
    ...     keras.layers.Flatten(),
    ...     keras.layers.Dense(10, name="logits")])
    >>> layer_flops(model)
    {'conv': 11520.0, 'logits': 6400.0}
    """
    _check_model(model)
    _warn_uncounted(model)
    counts = {}
    for key, layer, input_shape, output_shape in _calls(model, ""):
        densities = _densities(layer) if sparse else {}
        flops = sum(
            dense * densities.get(name, 1.0)
            for name, dense in _kernel_terms(key, layer, input_shape, output_shape)
        )
        counts[key] = counts.get(key, 0.0) + flops
    return counts


def forward_flops(model, sparse=True):
    """Forward FLOPs of one example: `f_S` (sparse, default) or `f_D`.

    Args:
        model: A built `keras.Model`.
        sparse: Scale masked kernels by their current density.

    Returns:
        The sum of `layer_flops(model, sparse)`, a float.

    Example:

    >>> import freetickets_tf
    >>> model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(100)])
    >>> sparse = freetickets_tf.sparsify(model, density=0.2, seed=0)
    >>> forward_flops(sparse) / forward_flops(sparse, sparse=False)
    0.2
    """
    return float(sum(layer_flops(model, sparse).values()))


def dense_training_flops(model, num_examples, epochs=1):
    """Training FLOPs of the model trained dense: `3 * f_D * examples * epochs`.

    The reference the paper compares against: one dense model trained for as
    many epochs.

    Args:
        model: A built `keras.Model`; its masks, if any, are ignored.
        num_examples: Training examples per epoch.
        epochs: Number of epochs.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    >>> dense_training_flops(model, num_examples=1000, epochs=2)  # 3 * 24 * 2000
    144000.0
    """
    num_examples = check_int("num_examples", num_examples, 1)
    epochs = check_int("epochs", epochs, 1)
    return 3.0 * forward_flops(model, sparse=False) * num_examples * epochs


def training_step_flops(model, batch_size):
    """FLOPs of one sparse training step: `3 * f_S * batch_size`.

    Forward plus backward, the backward counted as twice the forward.

    Args:
        model: A built `keras.Model`, at its current masks.
        batch_size: Examples in the step.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    >>> training_step_flops(model, batch_size=128)  # 3 * 24 * 128
    9216.0
    """
    batch_size = check_int("batch_size", batch_size, 1)
    return 3.0 * forward_flops(model, sparse=True) * batch_size


def growth_pass_flops(model, batch_size):
    """Extra FLOPs of one topology update: `(f_S + 2 * f_D) * batch_size`.

    Gradient growth needs the dense gradient of the loss on one batch, so
    docs/algorithms.md §6 counts one dense backward (`2 * f_D`). Our update computes that
    gradient with its own forward pass on the growth batch (at the current,
    sparse masks) rather than reusing the training step's, so that forward
    (`f_S`) is counted too. Updates with random or momentum growth compute no
    gradient and cost no extra pass.

    Args:
        model: A built `keras.Model`, at the masks before the update.
        batch_size: Examples in the growth batch.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    >>> growth_pass_flops(model, batch_size=128)  # (24 + 2 * 24) * 128
    9216.0
    """
    batch_size = check_int("batch_size", batch_size, 1)
    return (
        forward_flops(model, sparse=True) + 2.0 * forward_flops(model, sparse=False)
    ) * batch_size


def ensemble_flops(members, training_flops, dense_model, num_examples, epochs=1):
    """An ensemble's training and test FLOPs, absolute and against one dense model.

    Args:
        members: The ensemble's models (the tickets), a non-empty list of
            built `keras.Model`s at their final masks.
        training_flops: Training FLOPs of the ensemble: one number, or one per
            run (summed), e.g. `TrainingFlopsCallback.total_flops` of each DST
            run, or of the single EDST run.
        dense_model: The dense reference architecture (its masks, if any, are
            ignored).
        num_examples: Training examples per epoch of the reference.
        epochs: Epochs the reference is trained for (the ensemble's per-run
            epochs, as in the paper's tables).

    Returns:
        A dict with `training_flops`, `test_flops` (sum of the members'
        `f_S`, per example), `relative_training_flops` (over
        `dense_training_flops(dense_model, num_examples, epochs)`) and
        `relative_test_flops` (over the dense model's `f_D`).

    Example:

    >>> import freetickets_tf
    >>> dense = keras.Sequential([keras.Input((100,)), keras.layers.Dense(100)])
    >>> tickets = [freetickets_tf.sparsify(dense, 0.2, seed=s) for s in range(3)]
    >>> result = ensemble_flops(tickets, [1e8, 1e8, 1e8], dense,
    ...                         num_examples=1000, epochs=10)
    >>> round(result["relative_test_flops"], 6)  # 3 tickets at density 0.2
    0.6
    >>> round(result["relative_training_flops"], 6)  # 3e8 / (3 * 2e4 * 1e4)
    0.5
    """
    if isinstance(members, keras.Model) or not isinstance(members, (list, tuple)):
        raise ValueError(
            "Invalid `members`: expected a non-empty list of keras.Model, got "
            f"{type(members).__name__}."
        )
    if not members:
        raise ValueError("Invalid `members`: the list is empty.")
    for member in members:
        if not isinstance(member, keras.Model):
            raise ValueError(
                "Invalid `members`: expected keras.Model entries, got "
                f"{type(member).__name__}."
            )
    runs = training_flops if isinstance(training_flops, (list, tuple)) else [training_flops]
    training = sum(_check_count("training_flops", run) for run in runs)
    _check_model(dense_model)
    reference_training = dense_training_flops(dense_model, num_examples, epochs)
    reference_test = forward_flops(dense_model, sparse=False)
    if not reference_test:
        raise ValueError(
            f"Invalid `dense_model`: {dense_model.name!r} has no layer whose "
            "FLOPs are counted (Dense, Conv, EinsumDense...)."
        )
    test = sum(forward_flops(member, sparse=True) for member in members)
    return {
        "training_flops": training,
        "test_flops": test,
        "relative_training_flops": training / reference_training,
        "relative_test_flops": test / reference_test,
    }
