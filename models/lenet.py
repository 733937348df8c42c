"""LeNet models for MNIST-sized inputs, as used by FreeTickets.

`lenet5` is the Caffe variant of LeNet-5 (20 and 50 conv filters, a 500-unit
hidden layer) and `lenet300_100` the classic fully connected LeNet-300-100.
Both output logits and are built from plain, explicitly named Keras layers so
that they can be cloned and sparsified layer by layer.
"""

import keras
from keras import layers

from . import initializers
from .mlp import mlp


def _check_num_classes(num_classes):
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )


def lenet5(num_classes=10, input_shape=(28, 28, 1), width=1, name=None,
           initializer="original"):
    """Builds the Caffe LeNet-5 that outputs logits.

    The network is conv5x5(20)-ReLU-maxpool, conv5x5(50)-ReLU-maxpool,
    flatten, dense(500)-ReLU and a dense classifier. Convolutions use valid
    padding and biases. With `width=1`, 10 classes and 28x28x1 inputs it has
    431,080 parameters.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        width: Positive integer multiplier of every hidden size (conv filters
            and hidden units). Wider networks leave more room for sparsity.
        name: Model name; defaults to `"lenet5"`, or `"lenet5_x{width}"`
            when `width != 1`.
        initializer: `"original"` (PyTorch's defaults, as the original's
            `LeNet_5_Caffe`: kernels and biases uniform in +-1/sqrt(fan_in))
            or `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` or `width` is not positive.

    Example:

    >>> model = lenet5(num_classes=10)
    >>> model.count_params()
    431080
    """
    _check_num_classes(num_classes)
    if width < 1:
        raise ValueError(
            f"`width` must be a positive integer; received width={width}."
        )
    initializers.check_initializer(initializer)

    def init(x, kernel_size=None):
        return initializers.pytorch_default(
            initializer, initializers.fan_in(x, kernel_size))

    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Conv2D(20 * width, 5, activation="relu", name="conv1",
                      **init(inputs, (5, 5)))(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(50 * width, 5, activation="relu", name="conv2",
                      **init(x, (5, 5)))(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(500 * width, activation="relu", name="fc3", **init(x))(x)
    outputs = layers.Dense(num_classes, name="logits", **init(x))(x)
    default_name = "lenet5" if width == 1 else f"lenet5_x{width}"
    return keras.Model(inputs, outputs, name=name or default_name)


def lenet300_100(num_classes=10, input_shape=(28, 28, 1), name=None,
                 initializer="original"):
    """Builds the fully connected LeNet-300-100 that outputs logits.

    The network flattens its input and applies dense(300)-ReLU,
    dense(100)-ReLU and a dense classifier. With 10 classes and 28x28x1 inputs
    it has 266,610 parameters.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"lenet300_100"`.
        initializer: `"original"` (PyTorch's `nn.Linear` defaults, as the
            original's `LeNet_300_100`) or `"glorot"` (Keras' defaults).

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = lenet300_100(num_classes=10)
    >>> model.count_params()
    266610
    """
    return mlp((300, 100), num_classes, input_shape, name=name or "lenet300_100",
               initializer=initializer)
