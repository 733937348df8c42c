"""Datasets: the bundled default (scikit-learn's handwritten digits), `.npz`
image sets for benchmarks, and a seeded validation split.

scikit-learn ships the 1,797 8x8 digit images inside the package, so the
quickstart and the tests run without any download.
"""

import numpy as np

from freetickets_tf._validation import check_int


def load_digits(test_fraction=0.25, seed=0):
    """The bundled 8x8 digits, split into train and test sets.

    Args:
        test_fraction: Fraction of the 1,797 images held out for testing.
        seed: Seed of the (stratified-free, uniform) shuffle before the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: images as float32 arrays of
        shape `(n, 8, 8, 1)` scaled to [0, 1], labels as int32 in 0..9.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape
    (1348, 8, 8, 1)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"Invalid `test_fraction`: {test_fraction!r}. Expected a number in (0, 1)."
        )
    check_int("seed", seed, 0)
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def split(x, y, validation_fraction=0.1, seed=0):
    """Holds out a seeded random `validation_fraction` of `(x, y)` (SPEC §4
    keeps 10% of the training set for selecting checkpoints).

    Returns:
        `((x_train, y_train), (x_val, y_val))`.

    Example:

    >>> (x_fit, y_fit), (x_val, y_val) = split(x_train, y_train, 0.1, seed=0)
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            f"Invalid `validation_fraction`: {validation_fraction!r}. Expected a "
            "number in (0, 1)."
        )
    if len(x) != len(y):
        raise ValueError(f"`x` has {len(x)} examples but `y` has {len(y)}.")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(validation_fraction * len(x))))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def load_npz(path, image_shape=None):
    """An image classification set from an `.npz` file with `x_train`,
    `y_train`, `x_test`, `y_test` (e.g. the benchmark copy of Fashion-MNIST).

    Args:
        path: The `.npz` file.
        image_shape: Optional `(height, width, channels)` to pad and tile the
            images to (e.g. `(32, 32, 3)` for CIFAR-sized models): images are
            zero-padded around the centre and greyscale is repeated over the
            channels.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, images as float32 in [0, 1]
        with a channel axis, labels as int32.

    Example:

    >>> (x, y), (x_test, y_test) = load_npz("../shared/data/fashion_mnist.npz")
    """
    with np.load(path) as archive:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
        if missing:
            raise ValueError(f"{path!r} lacks the arrays {sorted(missing)}.")
        arrays = {name: archive[name] for name in archive.files}

    def images(x):
        x = x.astype("float32") / (255.0 if x.dtype == np.uint8 else 1.0)
        if x.ndim == 3:
            x = x[..., None]
        if image_shape is not None:
            height, width, channels = image_shape
            pad_h, pad_w = height - x.shape[1], width - x.shape[2]
            if pad_h < 0 or pad_w < 0 or channels % x.shape[3]:
                raise ValueError(
                    f"Invalid `image_shape`: {image_shape} cannot hold images of "
                    f"shape {x.shape[1:]}."
                )
            x = np.pad(x, [(0, 0), (pad_h // 2, pad_h - pad_h // 2),
                           (pad_w // 2, pad_w - pad_w // 2), (0, 0)])
            x = np.tile(x, (1, 1, 1, channels // x.shape[3]))
        return x

    return (
        (images(arrays["x_train"]), arrays["y_train"].astype("int32")),
        (images(arrays["x_test"]), arrays["y_test"].astype("int32")),
    )
