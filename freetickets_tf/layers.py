"""Keras layers whose kernels carry a non-trainable mask (docs/algorithms.md §2).

A masked layer is the Keras layer it extends plus, for every kernel, two
non-trainable boolean variables owned by the layer:

* `<kernel>_mask`: which weights are active;
* `<kernel>_explored`: which weights have been active at least once, for the
  In-Time Over-Parameterisation rate.

On TensorFlow and PyTorch the forward pass uses the kernel as it is.
Instead of multiplying by the mask in `call` (which would also mask the
gradient), the kernel variable gets a constraint that zeroes the inactive
weights; Keras optimizers apply variable constraints right after every
update, inside the train step, reading the live mask variable (both trainers
update the variables in place, so a mask a callback changes reaches the next
step). So masked weights are exactly zero after every optimizer step,
checkpoints are already sparse, and the gradient with respect to the kernel
stays dense, as gradient growth needs.

On JAX the train step is stateless and cannot see a mask changed by a
callback through a constraint (`freetickets_tf.backend`), so the layer reads
the kernel through the mask, with a straight-through gradient: the outputs are
those of the masked kernel and the gradient is the same dense one as on
TensorFlow. The stored inactive weights then drift between topology updates
without affecting any output; `freetickets_tf.zero_inactive_weights` clears
them, and ticket saving does it for you.
"""

import math
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from freetickets_tf import _keras_internals
from freetickets_tf import backend


class MaskedKernel(NamedTuple):
    """One masked kernel of a layer and its bookkeeping variables.

    It holds no reference to the layer: Keras' saver walks layer attributes,
    and a layer reachable from its own attribute would loop forever.
    """

    kernel: keras.Variable
    mask: keras.Variable
    explored: keras.Variable


class _ZeroInactive:
    """Kernel constraint: applies the user's constraint, then the mask.

    It holds a variable, so it is attached to the kernel variable only and is
    never serialized; the layer's own `kernel_constraint` stays the user's.
    """

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return ops.where(self.mask, w, ops.zeros_like(w))


def is_sparsity_bookkeeping(variable):
    """Whether `variable` is a mask or an explored record: bookkeeping, not
    a parameter. `Model.summary` and `count_params()` leave these out
    (`freetickets_tf.sparsity_summary` gives the active counts)."""
    return getattr(variable, "sparsity_bookkeeping", False)


_keras_internals.leave_out_of_parameter_counts(is_sparsity_bookkeeping)


class MaskedLayerMixin:
    """Adds a boolean mask to each kernel named in `kernel_names`.

    Put it before a Keras layer class: `class MaskedDense(MaskedLayerMixin,
    keras.layers.Dense)`. Masks start all-ones (dense); `freetickets_tf.sparsify`
    or `freetickets_tf.init_masks` sample sparse ones.
    """

    kernel_names = ("kernel",)

    def build(self, input_shape):
        super().build(input_shape)
        variables = {v.name: v for v in self.weights}
        for name in self.kernel_names:
            kernel = variables[name]
            mask, explored = (
                self.add_weight(
                    name=f"{name}_{role}",
                    shape=kernel.shape,
                    dtype="bool",
                    initializer="ones",
                    trainable=False,
                )
                for role in ("mask", "explored")
            )
            mask.sparsity_bookkeeping = explored.sparsity_bookkeeping = True
            setattr(self, f"{name}_mask", mask)
            setattr(self, f"{name}_explored", explored)
            if not backend.masks_in_forward_pass():
                kernel.constraint = _ZeroInactive(mask, kernel.constraint)

    # `__call__` rather than `call`: Keras reads `call`'s signature to build
    # layers, and a built layer is all this needs.
    def __call__(self, *args, **kwargs):
        if not (self.built and backend.masks_in_forward_pass()):
            return super().__call__(*args, **kwargs)
        with self._masked_kernel_scope():
            return super().__call__(*args, **kwargs)

    def _masked_kernel_scope(self):
        """A scope in which the layer's kernels read as masked.

        Every variable of the layer is mapped to its current value (an inner
        `StatelessScope` hides the outer one), the kernels to
        `w + stop_gradient(where(mask, w, 0) - w)`: the masked value forward,
        the identity backward, so the gradient stays dense.
        """
        masks = {id(mk.kernel): mk.mask for mk in self.masked_kernels}
        mapping = []
        for variable in self.variables:
            value = variable.value
            if id(variable) in masks:
                masked = ops.where(masks[id(variable)].value, value, ops.zeros_like(value))
                value = value + ops.stop_gradient(masked - value)
            mapping.append((variable, value))
        return keras.StatelessScope(state_mapping=mapping)

    @property
    def masked_kernels(self):
        """The layer's `MaskedKernel`s, one per entry of `kernel_names`."""
        if not self.built:
            return []
        variables = {v.name: v for v in self.weights}
        return [
            MaskedKernel(
                variables[name],
                getattr(self, f"{name}_mask"),
                getattr(self, f"{name}_explored"),
            )
            for name in self.kernel_names
        ]

    # Dense and Conv save a fixed list of variables (for quantization) that
    # would leave the masks out. This saves every variable, in the generic
    # Layer format (`store["<i>"]`, the i-th variable) except that masks and
    # explored records are bit-packed (`"<i>_bits"`) and a kernel whose
    # inactive weights are all zero keeps only its active values, in mask
    # order (`"<i>_active"`): a density-0.2 float32 kernel takes about a
    # quarter of its dense bytes. A kernel with non-zero inactive weights
    # (JAX's drift between updates) is saved whole, so a load is always
    # bit-identical.
    def save_own_variables(self, store):
        variables = self._trainable_variables + self._non_trainable_variables
        kernels = self.masked_kernels
        masks = {id(mk.kernel): mk.mask for mk in kernels}
        packed = {id(v) for mk in kernels for v in (mk.mask, mk.explored)}
        for i, v in enumerate(variables):
            if id(v) in packed:
                store[f"{i}_bits"] = np.packbits(_numpy(v).reshape(-1))
            elif id(v) in masks:
                kernel, mask = _numpy(v), _numpy(masks[id(v)])
                if kernel[~mask].any():
                    store[f"{i}"] = kernel
                else:
                    store[f"{i}_active"] = kernel[mask]
            else:
                store[f"{i}"] = v

    def load_own_variables(self, store):
        variables = self._trainable_variables + self._non_trainable_variables
        keys = set(store.keys())
        if len(keys) != len(variables):
            raise ValueError(
                f"Layer {self.name!r}: the weights file holds {len(keys)} variables "
                f"({sorted(keys)}); the layer has {len(variables)} "
                f"({[v.name for v in variables]}).")
        bits = {id(v): self._unpacked(store[f"{i}_bits"], v)
                for i, v in enumerate(variables) if f"{i}_bits" in keys}
        mask_of = {id(mk.kernel): mk.mask for mk in self.masked_kernels}
        for i, v in enumerate(variables):
            if id(v) in bits:
                v.assign(bits[id(v)])
            elif f"{i}_active" in keys:
                v.assign(self._scattered(store[f"{i}_active"], v, bits.get(id(mask_of[id(v)]))))
            elif f"{i}" in keys:
                v.assign(store[f"{i}"])
            else:
                raise ValueError(
                    f"Layer {self.name!r}: the weights file has no entry for "
                    f"{v.name!r} (variable {i}); it holds {sorted(keys)}.")

    def _unpacked(self, packed, variable):
        packed = np.asarray(packed)
        size = math.prod(variable.shape)
        if packed.dtype != np.uint8 or packed.size != (size + 7) // 8:
            raise ValueError(
                f"Corrupted compact weights of layer {self.name!r}: "
                f"{variable.name!r} {tuple(variable.shape)} needs {(size + 7) // 8} "
                f"packed bytes, the file holds {packed.size} ({packed.dtype}).")
        return np.unpackbits(packed.reshape(-1), count=size).astype(bool).reshape(
            variable.shape)

    def _scattered(self, active, kernel, mask):
        active = np.asarray(active).reshape(-1)
        if mask is None or active.size != int(mask.sum()):
            raise ValueError(
                f"Corrupted compact weights of layer {self.name!r}: {kernel.name!r} "
                f"holds {active.size} active values, but its mask "
                + ("is missing." if mask is None else f"has {int(mask.sum())}."))
        dense = np.zeros(kernel.shape, active.dtype)
        dense[mask] = active
        return dense


def _numpy(variable):
    return np.asarray(ops.convert_to_numpy(variable.value))


def _register(cls):
    return keras.saving.register_keras_serializable(package="freetickets_tf")(cls)


@_register
class MaskedDense(MaskedLayerMixin, keras.layers.Dense):
    """`keras.layers.Dense` whose kernel carries a boolean mask.

    Takes the arguments of `Dense`. The mask starts dense; sample a sparse one
    with `freetickets_tf.init_masks(model, density)`.

    Example:

    >>> layer = MaskedDense(4)
    >>> layer.build((None, 3))
    >>> [v.name for v in layer.non_trainable_weights]
    ['kernel_mask', 'kernel_explored']
    """


@_register
class MaskedConv1D(MaskedLayerMixin, keras.layers.Conv1D):
    """`keras.layers.Conv1D` whose kernel carries a boolean mask."""


@_register
class MaskedConv2D(MaskedLayerMixin, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel carries a boolean mask.

    Example:

    >>> layer = MaskedConv2D(8, 3, use_bias=False)
    >>> layer.build((None, 32, 32, 3))
    >>> layer.kernel_mask.shape
    (3, 3, 3, 8)
    """


@_register
class MaskedConv3D(MaskedLayerMixin, keras.layers.Conv3D):
    """`keras.layers.Conv3D` whose kernel carries a boolean mask."""


@_register
class MaskedDepthwiseConv2D(MaskedLayerMixin, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` whose kernel carries a boolean mask."""


@_register
class MaskedSeparableConv2D(MaskedLayerMixin, keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` with a mask on both of its kernels."""

    kernel_names = ("depthwise_kernel", "pointwise_kernel")


# Exact classes only: a user's subclass of Dense may change `call`, and
# swapping it for MaskedDense would silently drop that behaviour.
MASKED_VERSIONS = {
    keras.layers.Dense: MaskedDense,
    keras.layers.Conv1D: MaskedConv1D,
    keras.layers.Conv2D: MaskedConv2D,
    keras.layers.Conv3D: MaskedConv3D,
    keras.layers.DepthwiseConv2D: MaskedDepthwiseConv2D,
    keras.layers.SeparableConv2D: MaskedSeparableConv2D,
}


def masked_version(layer):
    """Returns a new masked layer with `layer`'s config, or None if unsupported."""
    cls = MASKED_VERSIONS.get(type(layer))
    return None if cls is None else cls.from_config(layer.get_config())
