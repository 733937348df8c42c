"""How raw images become a model's inputs, defined once: uint8 pixels
scaled to [0, 1] by the float32 reciprocal of 255 (`PIXEL_SCALE`), then
per-channel `(x - mean) / std`; fitting images to a model's input shape;
and the per-channel constants of the original FreeTickets code. The
training pipelines (`normalizer`, in tf.data), the evaluation of arrays
(`apply_preprocessing`, in numpy), the loaders (`to_unit_range`) and the
SavedModel export all call these, so they give the same floats.
"""

import numbers

import numpy as np

from freetickets_tf._validation import check_choice
from freetickets_tf.data import _ops as ops

# x * PIXEL_SCALE rather than x / 255: one multiplication by the same float32
# constant in numpy and TensorFlow, so both give bit-identical inputs.
PIXEL_SCALE = np.float32(1.0 / 255.0)

# Per-channel (mean, std) of images scaled to [0, 1].
NORMALIZATION = {
    # The original FreeTickets code (VITA-Group/FreeTickets,
    # sparselearning/utils.py, get_cifar10_dataloaders, inherited from Tim
    # Dettmers' sparse_learning) normalises CIFAR-10 with these (the std is
    # the commonly copied 0.2023/0.1994/0.2010, not the exact pixel std).
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    # Same file, get_cifar100_dataloaders.
    "cifar100": (
        (0.5070751592371323, 0.48654887331495095, 0.4409178433670343),
        (0.2673342858792401, 0.2564384629170883, 0.27615047132568404),
    ),
    # FreeTickets never trains on SVHN (it is an out-of-distribution test set,
    # normalised there with the in-distribution constants: pass
    # `normalization="cifar10"`); for training on it, the SVHN train-split
    # statistics used e.g. by PatrickZH/DeepCore, deepcore/datasets/svhn.py.
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    # The ImageNet constants of the original's ImageNet/main.py
    # (prefetched_loader) and sparselearning/utils.py (tiny ImageNet).
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


NORMALIZATION["cifar10_corrupted"] = NORMALIZATION["cifar10"]  # CIFAR-10 models


def to_unit_range(x, name="x"):
    """Images as float32 in [0, 1]: uint8 pixels times `PIXEL_SCALE`, float
    images as they are.

    Raises:
        ValueError: For images of another dtype (e.g. int64 pixels, which
            would otherwise pass unscaled).

    Example:

    >>> to_unit_range(np.array([0, 255], np.uint8))
    array([0., 1.], dtype=float32)
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype("float32") * PIXEL_SCALE
    if x.dtype.kind == "f":
        return x.astype("float32", copy=False)
    raise ValueError(
        f"Invalid `{name}` dtype {x.dtype}: expected uint8 pixels or float images "
        "in [0, 1].")


def normalizer(dtype, mean, std):
    """A tf function mapping images of `dtype` to float32 model inputs:
    uint8 pixels (or float pixel values in [0, 255], with `dtype` uint8)
    times `PIXEL_SCALE`, then `(x - mean) / std` per channel when `mean` is
    given; the tf.data twin of `apply_preprocessing`.

    Example:

    >>> normalize = normalizer("uint8", *NORMALIZATION["cifar10"])
    >>> inputs = normalize(tf.constant(images_uint8))
    """
    tf = ops.tf()
    scale = PIXEL_SCALE if np.dtype(dtype) == np.uint8 else None
    if mean is None:
        def normalize(x):
            x = tf.cast(x, tf.float32)
            return x * scale if scale is not None else x
        return normalize
    mean = np.asarray(mean, "float32")
    inv_std = 1.0 / np.asarray(std, "float32")

    def normalize(x):
        x = tf.cast(x, tf.float32)
        return ((x * scale if scale is not None else x) - mean) * inv_std

    return normalize


def check_mean_std(mean, std, channels=None):
    if (mean is None) != (std is None):
        raise ValueError("Pass both `mean` and `std`, or neither.")
    if mean is None:
        return None, None
    arrays = []
    for name, value in (("mean", mean), ("std", std)):
        try:
            array = np.asarray(value, "float64").reshape(-1)
        except (TypeError, ValueError):
            array = np.array([np.nan])
        if not array.size or not np.isfinite(array).all() or (
                name == "std" and (array <= 0).any()):
            raise ValueError(
                f"Invalid `{name}`: {value!r}. Expected finite per-channel "
                "numbers" + (" > 0." if name == "std" else "."))
        if channels is not None and array.size not in (1, channels):
            raise ValueError(
                f"Invalid `{name}`: {value!r} has {array.size} values for "
                f"images with {channels} channels.")
        arrays.append(tuple(float(v) for v in array))
    return tuple(arrays)


def check_normalization(normalization, default):
    """`(mean, std)` from None (the dataset's own), a name in
    `NORMALIZATION`, or a `(mean, std)` pair."""
    if normalization is None:
        return NORMALIZATION[default]
    if isinstance(normalization, str):
        return NORMALIZATION[check_choice(
            "normalization", normalization, tuple(NORMALIZATION))]
    try:
        mean, std = normalization
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid `normalization`: {normalization!r}. Expected None, one of "
            f"{', '.join(map(repr, NORMALIZATION))} or a (mean, std) pair."
        ) from None
    return check_mean_std(mean, std, 3)


def apply_preprocessing(x, preprocessing, name="x"):
    """Raw images as the model was trained on them: `preprocessing` is a
    training set's `preprocessing()` (uint8 times `PIXEL_SCALE`, then the
    per-channel mean and std if any). The same rule as `from_arrays`: uint8
    images are scaled, float images are taken as already in [0, 1].

    Raises:
        ValueError: uint8 images for a model trained on float images, or
            float images with values above 1 for one trained on uint8 images
            (they were converted to float without the division by 255).

    Example:

    >>> x_val = apply_preprocessing(x_val_uint8, train.preprocessing())
    """
    x = np.asarray(x)
    if preprocessing is None:
        return x
    trained_on = preprocessing.get("input_dtype")
    if x.dtype == np.uint8:
        if trained_on != "uint8":
            raise ValueError(
                f"Invalid `{name}`: uint8 images, but the model was trained on "
                f"{trained_on} images; convert them as the training images were.")
        x = to_unit_range(x, name)
    elif x.dtype.kind == "f":
        if trained_on == "uint8" and x.size and float(np.nanmax(x)) > 1.0 + 1e-6:
            raise ValueError(
                f"Invalid `{name}`: float images with values up to "
                f"{float(np.nanmax(x)):g}, but the model was trained on uint8 images "
                "scaled to [0, 1]. Pass them as uint8, or divide them by 255.")
        x = x.astype("float32")
    if preprocessing.get("mean") is not None:
        # As `normalizer` does: multiply by the float32 reciprocal.
        x = (x - np.asarray(preprocessing["mean"], "float32")) * (
            1.0 / np.asarray(preprocessing["std"], "float32"))
    return x


def _positive_ints(value, length):
    """`value` as a tuple of `length` positive ints, or None."""
    try:
        shape = tuple(value)
    except TypeError:
        return None
    if len(shape) != length or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in shape):
        return None
    return tuple(int(d) for d in shape)


def check_image_shape(image_shape):
    """`None`, or `image_shape` as a tuple of 3 positive ints; else `ValueError`."""
    if image_shape is None:
        return None
    shape = _positive_ints(image_shape, 3)
    if shape is None:
        raise ValueError(
            f"Invalid `image_shape`: {image_shape!r}. Expected None or "
            "(height, width, channels) of positive integers.")
    return shape


def check_image_size(image_size):
    """`image_size` (an int for square images, or `(height, width)`) as a
    tuple of 2 positive ints; else `ValueError`."""
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    size = _positive_ints(image_size, 2)
    if size is None:
        raise ValueError(
            f"Invalid `image_size`: {image_size!r}. Expected a positive integer "
            "or (height, width).")
    return size


def fit_images(x, image_shape=None, resize=False):
    """Images as float32 `(n, h, w, c)` in [0, 1] (`to_unit_range`; a
    missing channel axis is added), fitted to `image_shape` (checked by
    `check_image_shape`) if given: smaller images are zero-padded around the
    centre, and greyscale is repeated over the channels. Larger images are an
    error unless `resize`, which shrinks them with `tf.image.resize` (bilinear,
    antialiased, aspect ratio kept) to fit, then pads the rest."""
    x = to_unit_range(x)
    if x.ndim == 3:
        x = x[..., None]
    if image_shape is None:
        return x
    height, width, channels = image_shape
    h, w, c = x.shape[1:]
    if channels % c or not resize and (h > height or w > width):
        raise ValueError(
            f"Invalid `image_shape`: {image_shape} cannot hold images of "
            f"shape {x.shape[1:]}."
        )
    if h > height or w > width:
        import tensorflow as tf

        scale = min(height / h, width / w)
        size = (min(height, max(1, round(h * scale))),
                min(width, max(1, round(w * scale))))
        x = tf.image.resize(x, size, method="bilinear", antialias=True).numpy()
        x = np.clip(x, 0.0, 1.0)
    pad_h, pad_w = height - x.shape[1], width - x.shape[2]
    x = np.pad(x, [(0, 0), (pad_h // 2, pad_h - pad_h // 2),
                   (pad_w // 2, pad_w - pad_w // 2), (0, 0)])
    return np.tile(x, (1, 1, 1, channels // c))


def channel_stats(batches):
    """Per-channel mean and (population) std of uint8 image batches in [0, 1]
    (in float64: statistics, not model inputs)."""
    total = squares = count = 0
    for x in batches:
        x = x.astype("float64") / 255.0
        total = total + x.sum(axis=(0, 1, 2))
        squares = squares + (x ** 2).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return tuple(mean.tolist()), tuple(np.maximum(std, 1e-3).tolist())
