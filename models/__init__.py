"""Model builders for FreeTickets, made of plain, explicitly named Keras layers.

Every builder returns a functional `keras.Model` that outputs logits, so that
`sparsify(model)` can clone it and swap its Dense and Conv2D layers for masked
ones. `get` builds a model from the names used by the original FreeTickets
code, e.g. `"wrn-28-10"`, `"vgg-d"`, `"resnet50"` or `"lenet5"`.

Example:

>>> from freetickets_tf import models
>>> model = models.get("lenet300-100", num_classes=10)
>>> model.output_shape
(None, 10)
"""

import functools
import re

from .initializers import INITIALIZERS
from .initializers import check_initializer
from .lenet import lenet5
from .lenet import lenet300_100
from .mlp import mlp
from .mlp import mlp_cifar10
from .resnet import resnet18
from .resnet import resnet34
from .resnet import resnet50
from .vgg import vgg16
from .wide_resnet import wide_resnet

_CIFAR_SHAPE = (32, 32, 3)
_MNIST_SHAPE = (28, 28, 1)
_IMAGENET_SHAPE = (224, 224, 3)

# Any `wrn-<depth>-<width>` is accepted; these are the ones the original uses.
_WRN_NAMES = ("wrn-28-10", "wrn-28-2", "wrn-22-8", "wrn-16-8", "wrn-16-10")
_WRN_PATTERN = re.compile(r"wrn-(\d+)-(\d+)")
# `lenet5-x<k>`: LeNet-5 with every hidden size times k (sparse tickets need
# room: the plain LeNet-5 is too small for them to pay off).
_WIDE_LENET_PATTERN = re.compile(r"lenet5-x([1-9]\d*)")
# `mlp-<units>-<units>...`: an MLP with those hidden layers ("mlp-1024-512" is
# MLP-CIFAR10's shape), for width studies.
_MLP_PATTERN = re.compile(r"mlp((?:-[1-9]\d*)+)")

# Maps a name to its builder and the default input shape of its data set.
_BUILDERS = {
    "lenet5": (lenet5, _MNIST_SHAPE),
    "lenet300-100": (lenet300_100, _MNIST_SHAPE),
    "mlp-cifar10": (mlp_cifar10, _CIFAR_SHAPE),
    "vgg-c": (functools.partial(vgg16, "C"), _CIFAR_SHAPE),
    "vgg-d": (functools.partial(vgg16, "D"), _CIFAR_SHAPE),
    "vgg-like": (functools.partial(vgg16, "like"), _CIFAR_SHAPE),
    "resnet18": (resnet18, _CIFAR_SHAPE),
    "resnet34": (resnet34, _CIFAR_SHAPE),
    "resnet50": (resnet50, _IMAGENET_SHAPE),
}


def available_models():
    """Returns the fixed model names that `get` accepts.

    Besides these, `get` accepts any `"wrn-<depth>-<width>"`,
    `"lenet5-x<k>"` and `"mlp-<units>-<units>..."`.

    Returns:
        A list of model names.

    Example:

    >>> "wrn-28-10" in available_models()
    True
    """
    return list(_WRN_NAMES) + list(_BUILDERS)


def get(name, num_classes=10, input_shape=None, initializer="original"):
    """Builds a model by its FreeTickets name.

    Args:
        name: One of `available_models()`, `"wrn-<depth>-<width>"` for any
            valid Wide ResNet depth and width, e.g. `"wrn-16-4"`, or
            `"lenet5-x<k>"` for LeNet-5 `k` times wider, or
            `"mlp-<units>-..."` for an MLP with those hidden layers (e.g.
            `"mlp-2048-1024"`; default input 28x28x1).
        num_classes: Number of output logits.
        input_shape: Shape of one input image. Defaults to `(32, 32, 3)` for
            Wide ResNets, VGGs, `"resnet18"`, `"resnet34"` and
            `"mlp-cifar10"`, `(224, 224, 3)` for `"resnet50"`, and
            `(28, 28, 1)` for LeNets.
        initializer: `"original"`, the initial weights of the original
            code's PyTorch model (PyTorch's defaults for the LeNets, the MLP
            and VGG; He-normal fan-out convs for the ResNets), or
            `"glorot"`, Keras' layer defaults; see `models.initializers`.

    Returns:
        A `keras.Model` mapping images to unnormalized logits.

    Raises:
        ValueError: If `name` or `initializer` is unknown.

    Example:

    >>> model = get("wrn-16-4", num_classes=100)
    >>> model.output_shape
    (None, 100)
    """
    check_initializer(initializer)
    match = _WRN_PATTERN.fullmatch(name)
    if match:
        depth, width = (int(group) for group in match.groups())
        return wide_resnet(
            depth=depth,
            width=width,
            num_classes=num_classes,
            input_shape=input_shape or _CIFAR_SHAPE,
            initializer=initializer,
        )
    match = _WIDE_LENET_PATTERN.fullmatch(name)
    if match:
        return lenet5(
            num_classes=num_classes,
            input_shape=input_shape or _MNIST_SHAPE,
            width=int(match.group(1)),
            initializer=initializer,
        )
    match = _MLP_PATTERN.fullmatch(name)
    if match:
        units = tuple(int(u) for u in match.group(1)[1:].split("-"))
        return mlp(units, num_classes, input_shape or _MNIST_SHAPE, name=name.replace("-", "_"),
                   initializer=initializer)
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model name {name!r}. Valid names are "
            f"{available_models()}, any 'wrn-<depth>-<width>', "
            "'lenet5-x<width multiplier>' or 'mlp-<units>-<units>...'."
        )
    builder, default_shape = _BUILDERS[name]
    return builder(
        num_classes=num_classes, input_shape=input_shape or default_shape,
        initializer=initializer,
    )


__all__ = [
    "INITIALIZERS",
    "available_models",
    "get",
    "lenet300_100",
    "lenet5",
    "mlp",
    "mlp_cifar10",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg16",
    "wide_resnet",
]
