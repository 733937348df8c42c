"""A fully connected baseline for CIFAR-10, as used by FreeTickets.

Built from plain, explicitly named Keras layers so that it can be cloned and
sparsified layer by layer.
"""

import keras
from keras import layers

from . import initializers


def mlp_cifar10(num_classes=10, input_shape=(32, 32, 3), name=None,
                initializer="original"):
    """Builds the CIFAR-10 MLP that outputs logits.

    The network flattens its input and applies dense(1024)-ReLU,
    dense(512)-ReLU and a dense classifier.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"mlp_cifar10"`.
        initializer: `"original"` (PyTorch's defaults, as the original's
            `MLP_CIFAR10`: kernels and biases uniform in +-1/sqrt(fan_in)) or
            `"glorot"` (Keras' defaults); see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = mlp_cifar10(num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    return mlp((1024, 512), num_classes, input_shape, name=name or "mlp_cifar10",
               initializer=initializer)


def mlp(hidden_units, num_classes=10, input_shape=(32, 32, 3), name="mlp",
        initializer="original"):
    """Builds Flatten, then Dense-ReLU per entry of `hidden_units`, then logits.

    Hidden layers are named `fc1`, `fc2`, ...; the classifier `logits`.
    `initializer` is `"original"` (PyTorch's `nn.Linear` defaults) or
    `"glorot"` (Keras' defaults).

    Example:

    >>> mlp((300, 100), input_shape=(28, 28, 1)).count_params()
    266610
    """
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )
    initializers.check_initializer(initializer)

    def dense(x, units, **kwargs):
        init = initializers.pytorch_default(initializer, initializers.fan_in(x))
        return layers.Dense(units, **init, **kwargs)(x)

    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units, start=1):
        x = dense(x, units, activation="relu", name=f"fc{i}")
    outputs = dense(x, num_classes, name="logits")
    return keras.Model(inputs, outputs, name=name)
