"""Residual networks (He et al., 2016) in their PyTorch layouts.

* `resnet50`: the ImageNet ResNet-50 of torchvision (bottleneck blocks with
  the stride on the 3x3 conv, convs without bias, BN after every conv, dense
  classifier with bias): 25,557,032 trainable parameters for 1000 classes.
* `resnet18`, `resnet34`: the usual CIFAR ResNets (a 3x3 stem without
  max-pooling, basic blocks): 11,173,962 and 21,282,122 trainable parameters
  for 10 classes.

Trainable parameters include batch-normalization scales and offsets but not
its moving statistics, as PyTorch's `parameters()` does. The networks are
built only from plain Keras layers with explicit names so that they can be
cloned and sparsified layer by layer.
"""

import functools

import keras
from keras import layers

from . import initializers
from .wide_resnet import BN_EPSILON
from .wide_resnet import BN_MOMENTUM

# Widths of the four stages; bottleneck stages output 4 times as many.
_STAGE_WIDTHS = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)
_BOTTLENECK_EXPANSION = 4


def _conv(x, filters, kernel_size, strides, name, conv_init):
    """A bias-free conv with PyTorch's padding `kernel_size // 2`.

    At stride 1 that symmetric padding is Keras' "same". At stride 2 it is
    not: Keras' "same" pads only as much as the output size needs and puts
    the extra pixel at the bottom/right (for a 3x3 conv on an even-sized
    input it pads 0 at the top/left and 1 at the bottom/right), so its
    windows are centred one pixel off from PyTorch's, which pads
    `kernel_size // 2` on every side. Strided convs therefore pad
    explicitly with `ZeroPadding2D` and then convolve with "valid" padding.
    `conv_init()` makes the kernel's initializer (a new one per layer: an
    unseeded Keras initializer shared by layers repeats its values).
    """
    padding = "same"
    if strides != 1:
        if kernel_size > 1:
            x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=conv_init(),
        name=name,
    )(x)


def _batch_norm(x, name):
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="ones",
        beta_initializer="zeros",
        name=name,
    )(x)


def _shortcut(x, filters, strides, name, conv_init):
    # Identity, or a 1x1 conv (stride) + BN projection when the shape changes.
    if strides == 1 and x.shape[-1] == filters:
        return x
    shortcut = _conv(x, filters, 1, strides, f"{name}_shortcut_conv", conv_init)
    return _batch_norm(shortcut, name=f"{name}_shortcut_bn")


def _basic_block(x, filters, strides, name, conv_init):
    """Post-activation basic block: conv3x3-BN-ReLU, conv3x3-BN, add, ReLU."""
    shortcut = _shortcut(x, filters, strides, name, conv_init)
    out = _conv(x, filters, 3, strides, f"{name}_conv1", conv_init)
    out = _batch_norm(out, name=f"{name}_bn1")
    out = layers.ReLU(name=f"{name}_relu1")(out)
    out = _conv(out, filters, 3, 1, f"{name}_conv2", conv_init)
    out = _batch_norm(out, name=f"{name}_bn2")
    out = layers.Add(name=f"{name}_add")([shortcut, out])
    return layers.ReLU(name=f"{name}_out_relu")(out)


def _bottleneck_block(x, width, strides, name, conv_init):
    """torchvision's bottleneck: 1x1, 3x3 (stride), 1x1 (4x width), add, ReLU.

    The stride sits on the 3x3 conv ("ResNet v1.5"), not on the first 1x1.
    """
    filters = width * _BOTTLENECK_EXPANSION
    shortcut = _shortcut(x, filters, strides, name, conv_init)
    out = _conv(x, width, 1, 1, f"{name}_conv1", conv_init)
    out = _batch_norm(out, name=f"{name}_bn1")
    out = layers.ReLU(name=f"{name}_relu1")(out)
    out = _conv(out, width, 3, strides, f"{name}_conv2", conv_init)
    out = _batch_norm(out, name=f"{name}_bn2")
    out = layers.ReLU(name=f"{name}_relu2")(out)
    out = _conv(out, filters, 1, 1, f"{name}_conv3", conv_init)
    out = _batch_norm(out, name=f"{name}_bn3")
    out = layers.Add(name=f"{name}_add")([shortcut, out])
    return layers.ReLU(name=f"{name}_out_relu")(out)


def _check_num_classes(num_classes):
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )


def _stages_and_head(x, block, blocks_per_stage, num_classes, initializer, conv_init):
    # Only the first block of a stage changes resolution and width.
    for stage, (num_blocks, width, strides) in enumerate(
        zip(blocks_per_stage, _STAGE_WIDTHS, _STAGE_STRIDES), start=1
    ):
        for i in range(num_blocks):
            x = block(
                x,
                width,
                strides if i == 0 else 1,
                f"stage{stage}_block{i + 1}",
                conv_init,
            )
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    # The classifier is a plain `nn.Linear` in the original (PyTorch's
    # default kernel and bias).
    return layers.Dense(
        num_classes,
        **initializers.pytorch_default(initializer, initializers.fan_in(x)),
        name="logits",
    )(x)


def _cifar_resnet(blocks_per_stage, num_classes, input_shape, name, initializer):
    _check_num_classes(num_classes)
    initializers.check_initializer(initializer)
    # The original defines no CIFAR ResNet: torchvision's fan-out.
    conv_init = functools.partial(initializers.he_normal, initializer, "fan_out")
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(inputs, 64, 3, 1, "stem_conv", conv_init)
    x = _batch_norm(x, name="stem_bn")
    x = layers.ReLU(name="stem_relu")(x)
    outputs = _stages_and_head(x, _basic_block, blocks_per_stage, num_classes,
                               initializer, conv_init)
    return keras.Model(inputs, outputs, name=name)


def resnet18(num_classes=10, input_shape=(32, 32, 3), name=None,
             initializer="original"):
    """Builds the CIFAR ResNet-18 that outputs logits.

    The stem is conv3x3(64, stride 1)-BN-ReLU without max-pooling, followed
    by four stages of 2 post-activation basic blocks (conv3x3-BN-ReLU,
    conv3x3-BN, add, ReLU) with 64, 128, 256 and 512 filters and strides 1,
    2, 2 and 2; when the shape changes the shortcut is a 1x1 conv (stride)
    and BN. Then global average pooling and a dense classifier. Convs have
    no bias and use He-normal (fan-out) init; batch normalization uses
    PyTorch's momentum and epsilon. Inputs are channels-last. With 10
    classes it has 11,173,962 trainable parameters.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"resnet18"`.
        initializer: `"original"` (He-normal fan-out convs as torchvision,
            PyTorch's default classifier; the original defines no CIFAR
            ResNet) or
            `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = resnet18(num_classes=10)
    >>> model.get_layer("avg_pool").input.shape
    (None, 4, 4, 512)
    >>> model.output_shape
    (None, 10)
    """
    return _cifar_resnet(
        (2, 2, 2, 2), num_classes, input_shape, name or "resnet18", initializer
    )


def resnet34(num_classes=10, input_shape=(32, 32, 3), name=None,
             initializer="original"):
    """Builds the CIFAR ResNet-34 that outputs logits.

    As `resnet18`, with 3, 4, 6 and 3 basic blocks in the four stages. With
    10 classes it has 21,282,122 trainable parameters.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"resnet34"`.
        initializer: `"original"` (He-normal fan-out convs as torchvision,
            PyTorch's default classifier; the original defines no CIFAR
            ResNet) or
            `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = resnet34(num_classes=100)
    >>> model.output_shape
    (None, 100)
    """
    return _cifar_resnet(
        (3, 4, 6, 3), num_classes, input_shape, name or "resnet34", initializer
    )


def resnet50(num_classes=1000, input_shape=(224, 224, 3), name=None,
             initializer="original"):
    """Builds torchvision's ImageNet ResNet-50 that outputs logits.

    The stem is conv7x7(64, stride 2, padding 3)-BN-ReLU and 3x3 max-pooling
    (stride 2, padding 1), followed by four stages of 3, 4, 6 and 3
    bottleneck blocks (conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU,
    conv1x1(4x)-BN, add, ReLU) with widths 64, 128, 256 and 512 (outputs
    256, 512, 1024 and 2048) and strides 1, 2, 2 and 2 on the 3x3 conv; the
    first block of each stage has a 1x1 conv (stride) and BN shortcut. Then
    global average pooling and a dense classifier with bias. Convs have no
    bias and use He-normal (fan-in) init, as the original's ImageNet run; batch normalization uses
    PyTorch's momentum and epsilon. Inputs are channels-last. With 1000
    classes it has 25,557,032 trainable parameters, as torchvision's.

    Unlike `keras.applications.ResNet50` (conv biases, stride on the first
    1x1 conv), this matches the PyTorch model of the original code.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"resnet50"`.
        initializer: `"original"` (He-normal fan-in convs, PyTorch's
            default classifier, as the original's `ImageNet/resnet.py -c
            fanin`) or
            `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = resnet50(num_classes=10, input_shape=(64, 64, 3))
    >>> model.get_layer("avg_pool").input.shape
    (None, 2, 2, 2048)
    >>> model.output_shape
    (None, 10)
    """
    _check_num_classes(num_classes)
    initializers.check_initializer(initializer)
    # The original's ImageNet command builds with `-c fanin`.
    conv_init = functools.partial(initializers.he_normal, initializer, "fan_in")
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(inputs, 64, 7, 2, "stem_conv", conv_init)
    x = _batch_norm(x, name="stem_bn")
    x = layers.ReLU(name="stem_relu")(x)
    # PyTorch pads max-pooling with -inf; zeros are the same here because the
    # inputs follow a ReLU (>= 0) and every window holds a real pixel.
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    outputs = _stages_and_head(
        x, _bottleneck_block, (3, 4, 6, 3), num_classes, initializer, conv_init
    )
    return keras.Model(inputs, outputs, name=name or "resnet50")
