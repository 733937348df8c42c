"""Making a Keras model sparse and reading its sparsity back (docs/algorithms.md §2)."""

import math
import warnings

import keras
import numpy as np
from keras import ops

from freetickets_tf import _keras_internals as internals
from freetickets_tf import backend
from freetickets_tf import layers as masked_layers
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_density
from freetickets_tf.densities import DISTRIBUTIONS
from freetickets_tf.densities import erk_densities
from freetickets_tf.topology import count_active
from freetickets_tf.topology import global_magnitude_masks


def leaf_layers(model):
    """The layers of `model` that hold no layers, depth first."""
    # Containers own no kernels here.
    return [layer for layer in internals.flatten_layers(model)
            if not internals.is_container(layer)]


def masked_kernels(model):
    """All `MaskedKernel`s of a model, nested models included, in layer order.

    Example:

    >>> sparse = freetickets_tf.sparsify(model, density=0.2)
    >>> [mk.kernel.path for mk in freetickets_tf.masked_kernels(sparse)]
    ['dense/kernel', 'dense_1/kernel']
    """
    return [
        mk
        for layer in leaf_layers(model)
        if isinstance(layer, masked_layers.MaskedLayerMixin)
        for mk in layer.masked_kernels
    ]


def _unmasked_kernel_layers(model):
    """Leaf layers that own a kernel-like weight but no mask."""
    return [
        layer
        for layer in leaf_layers(model)
        if not isinstance(layer, masked_layers.MaskedLayerMixin)
        and any(v.name.endswith("kernel") for v in layer.trainable_weights)
    ]


def sample_mask(shape, density, rng):
    """A boolean mask with exactly `round(density * size)` active positions.

    The positions are drawn uniformly at random without replacement, so the
    count is exact (the original's Bernoulli draw lets it wander). At least one
    weight stays active so that no layer is cut off entirely.

    Args:
        shape: Kernel shape.
        density: Fraction of active positions, in (0, 1].
        rng: A `numpy.random.Generator`.

    Returns:
        A numpy bool array of `shape`.
    """
    size = math.prod(shape)
    active = min(size, max(1, round(density * size)))
    mask = np.zeros(size, dtype=bool)
    mask[rng.choice(size, active, replace=False)] = True
    return mask.reshape(shape)


def init_masks(model, density, distribution="erk", seed=None, rescale=False):
    """Samples new masks for every masked kernel of `model`, in place.

    Per-layer densities come from `erk_densities`; each layer gets exactly
    `round(d_l * N_l)` active weights, the inactive weights are zeroed and the
    In-Time Over-Parameterisation record restarts from the new masks. Use it on
    models built from `freetickets_tf.layers` directly (e.g. subclassed ones);
    `sparsify` calls it for you.

    Args:
        model: A built Keras model (or layer) with masked layers.
        density: Overall fraction of active weights, in (0, 1].
        distribution: `"erk"` (default), `"er"` or `"uniform"`.
        seed: Integer seed for the mask draw; `None` draws a fresh one.
        rescale: Also multiply each kernel's active weights by
            `sparse_init_scale(d_l)`. For freshly initialised networks without
            normalisation layers (LeNet, MLPs): a unit then sees inputs of the
            dense network's variance instead of `d_l` times it, and trains
            much faster. The original code does not rescale.

    Returns:
        The list of per-kernel densities used.

    Example:

    >>> model = keras.Sequential([keras.Input((784,)),
    ...                           freetickets_tf.layers.MaskedDense(300),
    ...                           freetickets_tf.layers.MaskedDense(10)])
    >>> densities = freetickets_tf.init_masks(model, density=0.1, seed=0)
    """
    density = check_density(density)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    kernels = masked_kernels(model)
    if not kernels:
        raise ValueError(
            "The model has no masked kernels: build it from "
            "`freetickets_tf.layers` or call `freetickets_tf.sparsify(model, "
            "density)` on a model with Dense/Conv layers."
        )
    densities = erk_densities(
        [tuple(mk.kernel.shape) for mk in kernels], density, distribution
    )
    rng = np.random.default_rng(seed)
    for mk, layer_density in zip(kernels, densities):
        mask = sample_mask(tuple(mk.kernel.shape), layer_density, rng)
        mk.mask.assign(mask)
        mk.explored.assign(mask)
        kernel = _zero_where_inactive(mk.kernel.value, mask)
        if rescale:
            kernel = kernel * sparse_init_scale(layer_density)
        mk.kernel.assign(kernel)
    return densities


def sparse_init_scale(layer_density):
    """The factor `1 / sqrt(d_l)` that gives a layer at density `d_l` the
    pre-activation variance of its dense initialisation.

    A unit of a dense layer sums `fan_in` weighted inputs; at density `d_l` it
    sums `d_l * fan_in` on average, so its variance shrinks by `d_l` and, in a
    network without normalisation, the signal fades layer after layer (Evci
    et al., 2020, "Gradient Flow in Sparse Neural Networks").

    Example:

    >>> sparse_init_scale(0.25)
    2.0
    """
    return 1.0 / math.sqrt(check_density(layer_density, "layer_density"))


def _zero_where_inactive(weights, mask):
    return ops.where(mask, weights, ops.zeros_like(weights))


def zero_inactive_weights(model):
    """Sets every inactive weight of every masked kernel to zero, in place.

    On TensorFlow they are zero already (a kernel constraint zeroes them after
    every optimizer step). On JAX the forward pass applies the mask instead,
    so the stored inactive weights drift during training without changing any
    output; call this before reading raw kernels. Saving a ticket calls it.

    Example:

    >>> freetickets_tf.zero_inactive_weights(sparse)
    """
    for mk in masked_kernels(model):
        mk.kernel.assign(_zero_where_inactive(mk.kernel.value, mk.mask.value))


def _excluded(layer, exclude):
    if exclude is None:
        return False
    if callable(exclude):
        return bool(exclude(layer))
    return layer.name in exclude


def _check_exclude(model, exclude):
    if exclude is None or callable(exclude):
        return exclude
    if isinstance(exclude, str):
        exclude = [exclude]
    exclude = set(exclude)
    names = {layer.name for layer in leaf_layers(model)}
    unknown = sorted(exclude - names)
    if unknown:
        raise ValueError(
            f"Invalid `exclude`: no layer named {unknown} in the model. "
            "Pass layer names of the model or a predicate `layer -> bool`."
        )
    return exclude


def check_maskable(model, exclude=None):
    """Raises `ValueError` unless `sparsify` finds a layer of `model` to mask
    (checked before a recipe writes anything)."""
    maskable = (*masked_layers.MASKED_VERSIONS, *masked_layers.MASKED_VERSIONS.values())
    if not any(type(layer) in maskable and not _excluded(layer, exclude)
               for layer in leaf_layers(model)):
        raise ValueError(
            f"Invalid `model`: {model.name!r} has no layer that can be masked"
            + (" (after `exclude`)" if exclude else "") + ". Maskable: "
            + ", ".join(cls.__name__ for cls in masked_layers.MASKED_VERSIONS)
            + "."
        )


def clone_layer_by_layer(model, clone_layer, action, hint=""):
    """`keras.models.clone_model` with `clone_layer` on every layer (nested
    models too), and a clear error for models Keras cannot copy that way.

    Args:
        model: A Sequential or functional model.
        clone_layer: `layer -> new layer`.
        action: What the caller does, for the error (e.g. `"sparsify"`).
        hint: Appended to the error message.
    """
    try:
        return keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    except ValueError as error:
        raise ValueError(
            f"Cannot {action} {type(model).__name__}: only Sequential and "
            f"functional models can be copied layer by layer.{hint}"
        ) from error


def copy_weights(source, target, fold_masks=False):
    """Copies every variable of `source` into the matching one of `target`.

    The two models have the same layers in the same order, one of them
    possibly with masked layers where the other has their Keras base class. A
    masked layer owns its base layer's variables first and its masks last, so
    the variables both layers own are the common prefix; masks are copied
    only when both sides have them.

    Args:
        source: A built Keras model.
        target: Its clone (e.g. from `keras.models.clone_model`).
        fold_masks: Write each masked kernel of `source` as `kernel * mask`.
    """
    source_layers = internals.flatten_layers(source)
    target_layers = internals.flatten_layers(target)
    for src, dst in zip(source_layers, target_layers, strict=True):
        masks = {}
        if fold_masks and isinstance(src, masked_layers.MaskedLayerMixin):
            masks = {id(mk.kernel): mk.mask for mk in src.masked_kernels}
        src_vars = internals.own_variables(src)
        dst_vars = internals.own_variables(dst)
        common = min(len(src_vars), len(dst_vars))
        for s, d in zip(src_vars[:common], dst_vars[:common]):
            value = s.value
            if id(s) in masks:
                value = _zero_where_inactive(value, masks[id(s)].value)
            # A copy: on JAX both variables would otherwise share one buffer,
            # which training `source` donates and deletes.
            d.assign(ops.copy(value))


def sparsify(model, density, distribution="erk", exclude=None, seed=None,
             rescale=False):
    """Returns a sparse copy of a Keras model, ready for sparse training.

    The copy has the same architecture and weights, with every `Dense`,
    `Conv1D/2D/3D`, `DepthwiseConv2D` and `SeparableConv2D` swapped for its
    masked version (`freetickets_tf.layers`), masks sampled with exact
    per-layer counts (`init_masks`) and the masked weights zeroed. Biases and
    normalisation layers are never masked. Layers of other kinds that own a
    kernel stay dense; a warning names them, and so does `sparsity_summary`.
    The copy is not compiled.

    Args:
        model: A built Sequential or functional model; nested models and
            `keras.applications` networks work.
        density: Overall fraction of active weights, in (0, 1].
        distribution: `"erk"` (default), `"er"` or `"uniform"`.
        exclude: Layer names, or a predicate `layer -> bool`, of layers to
            keep dense.
        seed: Integer seed for the mask draw.
        rescale: Scale each kernel's active weights by `1 / sqrt(d_l)`
            (`sparse_init_scale`); see `init_masks`. Only for freshly
            initialised models without normalisation layers.

    Returns:
        A new `keras.Model`.

    Example:

    >>> model = keras.Sequential([keras.Input((28, 28, 1)),
    ...                           keras.layers.Flatten(),
    ...                           keras.layers.Dense(300, activation="relu"),
    ...                           keras.layers.Dense(10)])
    >>> sparse = freetickets_tf.sparsify(model, density=0.2, seed=0)
    >>> print(freetickets_tf.sparsity_summary(sparse))
    """
    density = check_density(density)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Invalid `model`: expected a keras.Model, got {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            "Invalid `model`: it is not built. Give it a `keras.Input` or call "
            "`model.build(input_shape)` before `sparsify`."
        )
    if not model.weights:
        raise ValueError(
            f"Invalid `model`: {model.name!r} has no weights, so nothing to make "
            "sparse (sparsify masks the kernels of Dense and Conv layers)."
        )
    exclude = _check_exclude(model, exclude)
    check_maskable(model, exclude)

    def clone_layer(layer):
        masked = None if _excluded(layer, exclude) else masked_layers.masked_version(layer)
        return masked or layer.__class__.from_config(layer.get_config())

    sparse = clone_layer_by_layer(
        model, clone_layer, "sparsify",
        " In a subclassed model, use `freetickets_tf.layers.MaskedDense`, "
        "`MaskedConv2D`, ... and call `freetickets_tf.init_masks(model, density)`.",
    )
    copy_weights(model, sparse)
    init_masks(sparse, density, distribution, seed, rescale)
    unsupported = [
        layer
        for layer in _unmasked_kernel_layers(sparse)
        if not _excluded(layer, exclude)
    ]
    if unsupported:
        warnings.warn(
            "These layers cannot be masked and stay dense: "
            + ", ".join(f"{l.name} ({type(l).__name__})" for l in unsupported),
            stacklevel=2,
        )
    return sparse


_BASE_CLASSES = {masked: base for base, masked in masked_layers.MASKED_VERSIONS.items()}


def base_class(layer):
    """The Keras class of a masked layer (`MaskedDense` -> `Dense`), or the
    layer's own class."""
    return _BASE_CLASSES.get(type(layer), type(layer))


def strip_sparsity(model):
    """Returns a plain Keras copy of a sparse model, masks applied (tfmot's
    `strip_pruning`; `serving.fold_masks` is the same function).

    Every masked layer becomes its Keras base class (`MaskedConv2D` ->
    `Conv2D`, ...) with the same config and the kernel `kernel * mask`; all
    other layers and weights are copied. The copy has no `freetickets_tf`
    layer and no mask variables, and predicts exactly as `model` does.

    Args:
        model: A built Sequential or functional model; nested models work.

    Returns:
        A new, uncompiled `keras.Model`.

    Example:

    >>> sparse = freetickets_tf.sparsify(model, density=0.2, seed=0)
    >>> plain = freetickets_tf.strip_sparsity(sparse)
    >>> freetickets_tf.masked_kernels(plain)
    []
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Invalid `model`: expected a keras.Model, got {type(model).__name__}."
        )

    def clone_layer(layer):
        return base_class(layer).from_config(layer.get_config())

    folded = clone_layer_by_layer(model, clone_layer, "fold the masks of")
    copy_weights(model, folded, fold_masks=True)
    return folded


def prune_global_magnitude(model, density, exclude=None):
    """Returns a sparse copy of a trained model, pruned by global magnitude.

    The weights kept are the `round(density * N)` largest `|w|` over all
    maskable kernels together (docs/algorithms.md §4's PF ensemble); the copy is ready for
    fine-tuning with fixed masks (train it without `DynamicSparsityCallback`).

    Args:
        model: A built, trained dense Keras model.
        density: Overall fraction of weights kept, in (0, 1].
        exclude: Layer names, or a predicate `layer -> bool`, to keep dense.

    Returns:
        A new, uncompiled `keras.Model` with masked layers.

    Example:

    >>> pruned = freetickets_tf.prune_global_magnitude(trained, density=0.2)
    """
    density = check_density(density)
    sparse = sparsify(model, 1.0, exclude=exclude)
    kernels = masked_kernels(sparse)
    masks = global_magnitude_masks([mk.kernel.value for mk in kernels], density)
    for mk, mask in zip(kernels, masks):
        mk.mask.assign(mask)
        # A copy: on JAX two variables must not share a buffer (training
        # donates each one).
        mk.explored.assign(ops.copy(mask))
        mk.kernel.assign(_zero_where_inactive(mk.kernel.value, mask))
    return sparse


def layer_densities(model):
    """Fraction of active weights of each masked kernel, keyed by variable path.

    Example:

    >>> freetickets_tf.layer_densities(sparse)
    {'dense/kernel': 0.1813..., 'dense_1/kernel': 0.9...}
    """
    return {
        mk.kernel.path: count_active(mk.mask) / math.prod(mk.kernel.shape)
        for mk in masked_kernels(model)
    }


def _active_fraction(kernels, field):
    total = sum(math.prod(mk.kernel.shape) for mk in kernels)
    if not total:
        return 1.0
    counts = backend.count_true_each(getattr(mk, field).value for mk in kernels)
    return int(np.sum(counts)) / total


def overall_density(model):
    """Active weights over all masked kernels together (docs/algorithms.md §2's density)."""
    return _active_fraction(masked_kernels(model), "mask")


def itop_rate(model):
    """In-Time Over-Parameterisation rate: the fraction of all masked-kernel
    positions that have been active at least once (docs/algorithms.md §3)."""
    return explored_fraction(masked_kernels(model))


def explored_fraction(kernels):
    """`itop_rate` of the `MaskedKernel`s `kernels` (a model's, when a
    caller already holds them: finding them walks every layer).

    Example:

    >>> kernels = freetickets_tf.masked_kernels(sparse)
    >>> freetickets_tf.masking.explored_fraction(kernels) == freetickets_tf.itop_rate(sparse)
    True
    """
    if isinstance(kernels, keras.Model):
        raise TypeError("Invalid `kernels`: a model. explored_fraction takes its "
                        "MaskedKernels (`masked_kernels(model)`); for a model, call "
                        "`itop_rate(model)`.")
    kernels = list(kernels)
    for kernel in kernels:
        if not isinstance(kernel, masked_layers.MaskedKernel):
            raise TypeError(f"Invalid `kernels`: holds a {type(kernel).__name__}, not a "
                            "MaskedKernel (see `masked_kernels(model)`).")
    return _active_fraction(kernels, "explored")


def sparsity_summary(model):
    """A readable table of the model's masked kernels and its overall density.

    Returns:
        A string: one row per masked kernel (layer, shape, density,
        active/total), the overall density, and the layers with a kernel that
        are not masked.

    Example:

    >>> print(freetickets_tf.sparsity_summary(sparse))
    """
    rows = [("Kernel", "Shape", "Density", "Active / total")]
    active_sum = total_sum = 0
    for mk in masked_kernels(model):
        total = math.prod(mk.kernel.shape)
        active = count_active(mk.mask)
        active_sum += active
        total_sum += total
        rows.append(
            (
                mk.kernel.path,
                str(tuple(mk.kernel.shape)),
                f"{active / total:.4f}",
                f"{active:,} / {total:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows
    ]
    rule = "-" * len(lines[0])
    lines.insert(1, rule)
    lines.append(rule)
    if total_sum:
        lines.append(
            f"Overall density: {active_sum / total_sum:.4f} "
            f"({active_sum:,} of {total_sum:,} masked weights active)"
        )
    else:
        lines.append("No masked kernels.")
    unmasked = _unmasked_kernel_layers(model)
    if unmasked:
        lines.append(
            "Not masked (dense): "
            + ", ".join(f"{l.name} ({type(l).__name__})" for l in unmasked)
        )
    return "\n".join(lines)
