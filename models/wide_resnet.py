"""Wide Residual Networks (Zagoruyko & Komodakis, 2016) as used by FreeTickets.

The network mirrors the PyTorch `WideResNet` of the original FreeTickets code
layer for layer, so parameter counts match exactly (WRN-28-10 with 10 classes
has 36,479,194 trainable parameters). It is built only from plain Keras layers
with explicit names so that it can be cloned and sparsified layer by layer.
"""

import keras
from keras import layers

from . import initializers

# PyTorch BatchNorm2d defaults: its momentum 0.1 weights the *new* batch
# statistic, which is Keras momentum 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _conv(filters, kernel_size, strides, name, initializer):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=initializers.he_normal(initializer),
        name=name,
    )


def _bn_relu(x, name):
    x = layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="ones",
        beta_initializer="zeros",
        name=f"{name}_bn",
    )(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _basic_block(x, filters, strides, name, initializer):
    """Pre-activation basic block: BN-ReLU-conv3x3, BN-ReLU-conv3x3, add.

    Args:
        x: Input tensor.
        filters: Number of output channels.
        strides: Stride of the first 3x3 conv (and of the projection).
        name: Prefix for the names of the block's layers.
        initializer: See `models.initializers`.

    Returns:
        Output tensor of the block.
    """
    in_channels = x.shape[-1]
    preact = _bn_relu(x, name=f"{name}_preact")
    out = _conv(filters, 3, strides, f"{name}_conv1", initializer)(preact)
    out = _bn_relu(out, name=f"{name}_mid")
    out = _conv(filters, 3, 1, f"{name}_conv2", initializer)(out)

    if in_channels == filters and strides == 1:
        shortcut = x
    else:
        # The original projects the *pre-activated* input, not the raw one.
        shortcut = _conv(filters, 1, strides, f"{name}_shortcut_conv",
                         initializer)(preact)
    return layers.Add(name=f"{name}_add")([shortcut, out])


def _group(x, num_blocks, filters, strides, name, initializer):
    # Only the first block of a group changes resolution and width.
    for i in range(num_blocks):
        x = _basic_block(
            x,
            filters,
            strides if i == 0 else 1,
            f"{name}_block{i + 1}",
            initializer,
        )
    return x


def wide_resnet(
    depth=28, width=10, num_classes=10, input_shape=(32, 32, 3), name=None,
    initializer="original",
):
    """Builds a Wide ResNet WRN-`depth`-`width` that outputs logits.

    The stem is a 3x3 conv with 16 filters, followed by three groups of
    `(depth - 4) / 6` pre-activation basic blocks with `16 * width`,
    `32 * width` and `64 * width` filters and strides 1, 2 and 2, then
    BN-ReLU, global average pooling and a dense classifier. Convolutions have
    no bias and use He-normal (fan-out) init; batch normalization uses
    PyTorch's momentum and epsilon. Inputs are channels-last.

    Args:
        depth: Total depth; `depth - 4` must be a multiple of 6, at least 10.
        width: Widening factor, a positive integer.
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"wrn_{depth}_{width}"`.
        initializer: `"original"` (He-normal fan-out convs, PyTorch's
            default classifier kernel with a zero bias, as the original) or
            `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `depth`, `width` or `num_classes` is invalid.

    Example:

    >>> model = wide_resnet(depth=16, width=4, num_classes=10)
    >>> model.name
    'wrn_16_4'
    >>> model.output_shape
    (None, 10)
    """
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(
            "`depth` must be at least 10 and satisfy (depth - 4) % 6 == 0 "
            f"(e.g. 10, 16, 22, 28, 40); received depth={depth}."
        )
    if width < 1:
        raise ValueError(
            f"`width` must be a positive integer; received width={width}."
        )
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )
    initializers.check_initializer(initializer)
    num_blocks = (depth - 4) // 6

    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(16, 3, 1, "stem_conv", initializer)(inputs)
    x = _group(x, num_blocks, 16 * width, 1, "group1", initializer)
    x = _group(x, num_blocks, 32 * width, 2, "group2", initializer)
    x = _group(x, num_blocks, 64 * width, 2, "group3", initializer)
    x = _bn_relu(x, name="head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(
        num_classes,
        **initializers.zero_bias_classifier(initializer),
        name="logits",
    )(x)
    return keras.Model(
        inputs, outputs, name=name or f"wrn_{depth}_{width}"
    )
