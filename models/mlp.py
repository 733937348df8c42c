"""A fully connected baseline for CIFAR-10, as used by FreeTickets.

Built from plain, explicitly named Keras layers so that it can be cloned and
sparsified layer by layer.
"""

import keras
from keras import layers


def mlp_cifar10(num_classes=10, input_shape=(32, 32, 3), name=None):
    """Builds the CIFAR-10 MLP that outputs logits.

    The network flattens its input and applies dense(1024)-ReLU,
    dense(512)-ReLU and a dense classifier.

    Args:
        num_classes: Number of output logits.
        input_shape: Shape of one input image, `(height, width, channels)`.
        name: Model name; defaults to `"mlp_cifar10"`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `num_classes` is not positive.

    Example:

    >>> model = mlp_cifar10(num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    return mlp((1024, 512), num_classes, input_shape, name=name or "mlp_cifar10")


def mlp(hidden_units, num_classes=10, input_shape=(32, 32, 3), name="mlp"):
    """Builds Flatten, then Dense-ReLU per entry of `hidden_units`, then logits.

    Hidden layers are named `fc1`, `fc2`, ...; the classifier `logits`.

    Example:

    >>> mlp((300, 100), input_shape=(28, 28, 1)).count_params()
    266610
    """
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer; "
            f"received num_classes={num_classes}."
        )
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
