"""The VGG16 variants of SNIP (Lee et al., 2019) as used by FreeTickets.

The network mirrors the PyTorch `VGG16` of the original FreeTickets (and
`sparse_learning`) code layer for layer, so parameter counts match exactly.
With 10 classes and 32x32x3 inputs the variants have these trainable
parameters (batch-normalization scales and offsets included, moving
statistics not):

* `"C"`: 11,323,466 (conv 10,004,544; classifier 1,318,922 on 2048 inputs).
* `"D"`: 15,255,626 (conv 14,723,136; classifier 532,490).
* `"like"`: 14,991,946 (conv 14,723,136; classifier 268,810).

It is built only from plain Keras layers with explicit names so that it can
be cloned and sparsified layer by layer.
"""

import keras
from keras import layers

from . import initializers
from .wide_resnet import BN_EPSILON
from .wide_resnet import BN_MOMENTUM

# M for max-pooling, an integer for a conv3x3 with that many filters, and a
# tuple `(kernel_size, filters)` for another kernel size. All convs pad by 1.
_CONV_3X3_BLOCKS = [
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
]
_CONFIGS = {
    "D": _CONV_3X3_BLOCKS,
    # Same convolutions as "D"; only the classifier is smaller.
    "like": _CONV_3X3_BLOCKS,
    "C": [
        64, 64, "M",
        128, 128, "M",
        256, 256, (1, 256), "M",
        512, 512, (1, 512), "M",
        512, 512, (1, 512), "M",
    ],
}
VARIANTS = tuple(_CONFIGS)

# Hidden dense layers of the classifier (each dense-ReLU-BN), per variant.
_CLASSIFIER_UNITS = {"C": (512, 512), "D": (512, 512), "like": (512,)}


def _batch_norm(name):
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


def _conv_bn_relu(x, filters, kernel_size, name, initializer):
    """conv(kernel_size, padding 1, bias)-BN-ReLU, as PyTorch's VGG16 does."""
    if kernel_size == 3:
        # A 3x3 conv with padding 1 at stride 1 is Keras' "same" padding.
        padding = "same"
    else:
        # The original pads *every* conv by 1, also its 1x1 convs, which
        # therefore grow the feature map by 2 ("same" would not). Pad
        # explicitly to keep that quirk and the classifier's 2048 inputs.
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding=padding,
        use_bias=True,
        **initializers.pytorch_default(
            initializer, initializers.fan_in(x, (kernel_size, kernel_size))),
        name=name,
    )(x)
    x = _batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _check_input_shape(variant, input_shape):
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be `(height, width, channels)`; "
            f"received input_shape={input_shape}."
        )
    for size in input_shape[:2]:
        if size is None:
            continue
        for entry in _CONFIGS[variant]:
            if entry == "M":
                if size < 2:
                    break
                size //= 2
            elif isinstance(entry, tuple):
                size += 2  # A 1x1 conv padded by 1.
        else:
            continue
        raise ValueError(
            f"`input_shape` {tuple(input_shape)} is too small for VGG16 "
            f"variant {variant!r}: its five 2x2 max-poolings need at least "
            "32x32 inputs for 'D' and 'like'."
        )


def vgg16(variant="D", num_classes=10, input_shape=(32, 32, 3), name=None,
          initializer="original"):
    """Builds one of SNIP's VGG16 variants (`"C"`, `"D"`, `"like"`).

    The features are five groups of conv-BN-ReLU units (64, 64 | 128, 128 |
    256 x 3 | 512 x 3 | 512 x 3 filters), each group followed by 2x2
    max-pooling. All convs are 3x3 with padding 1 and biases, except that in
    variant `"C"` the third conv of the last three groups is a 1x1 conv,
    still with padding 1, so it grows the feature map by 2 (a quirk of the
    original: for 32x32 inputs the classifier then gets 2x2x512 = 2048
    inputs instead of 512). The flattened features go through the
    classifier: dense(512)-ReLU-BN, dense(512)-ReLU-BN and a dense layer of
    `num_classes` logits for `"C"` and `"D"`; `"like"` has only the first
    dense(512)-ReLU-BN before the logits. Kernels and biases use PyTorch's
    default init (the original leaves them alone); batch normalization uses
    PyTorch's momentum and epsilon. Inputs are channels-last.

    With 10 classes and 32x32x3 inputs, `"C"` has 11,323,466, `"D"`
    15,255,626 and `"like"` 14,991,946 trainable parameters.

    Args:
        variant: `"C"`, `"D"` or `"like"`.
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`;
            at least 32x32 for `"D"` and `"like"` (five 2x2 poolings).
        name: Model name; defaults to `"vgg16_c"`, `"vgg16_d"` or
            `"vgg16_like"`.
        initializer: `"original"` (PyTorch's defaults: kernels and biases
            uniform in +-1/sqrt(fan_in)) or `"glorot"` (Keras' defaults); see
            `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `variant`, `num_classes` or `input_shape` is
            invalid.

    Example:

    >>> model = vgg16("C", num_classes=10)
    >>> model.get_layer("flatten").output.shape
    (None, 2048)
    >>> model.output_shape
    (None, 10)
    """
    if variant not in _CONFIGS:
        raise ValueError(
            f"`variant` must be one of {list(VARIANTS)}; "
            f"received variant={variant!r}."
        )
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )

    _check_input_shape(variant, input_shape)
    initializers.check_initializer(initializer)

    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    group, unit = 1, 1
    for entry in _CONFIGS[variant]:
        if entry == "M":
            x = layers.MaxPooling2D(2, name=f"block{group}_pool")(x)
            group, unit = group + 1, 1
            continue
        kernel_size, filters = entry if isinstance(entry, tuple) else (3, entry)
        x = _conv_bn_relu(
            x, filters, kernel_size, f"block{group}_conv{unit}", initializer
        )
        unit += 1

    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(_CLASSIFIER_UNITS[variant], start=1):
        # Dense-ReLU-BN: the original puts BN after the ReLU here, in place
        # of the dropout of the ImageNet VGG.
        x = layers.Dense(
            units,
            **initializers.pytorch_default(initializer, initializers.fan_in(x)),
            name=f"fc{i}",
        )(x)
        x = layers.ReLU(name=f"fc{i}_relu")(x)
        x = _batch_norm(f"fc{i}_bn")(x)
    outputs = layers.Dense(
        num_classes,
        **initializers.pytorch_default(initializer, initializers.fan_in(x)),
        name="logits",
    )(x)
    return keras.Model(
        inputs, outputs, name=name or f"vgg16_{variant.lower()}"
    )
