"""Datasets: the bundled default (scikit-learn's handwritten digits), `.npz`
image sets for benchmarks, prepared tensorflow-datasets image sets (e.g.
out-of-distribution test sets) and a seeded validation split.

scikit-learn ships the 1,797 8x8 digit images inside the package, so the
quickstart and the tests run without any download.
"""

import difflib
import numbers
import re

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
    image_shape = _check_image_shape(image_shape)
    with np.load(path) as archive:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
        if missing:
            raise ValueError(f"{path!r} lacks the arrays {sorted(missing)}.")
        arrays = {name: archive[name] for name in archive.files}
    return tuple(
        (_to_images(arrays[f"x_{part}"], image_shape),
         arrays[f"y_{part}"].astype("int32"))
        for part in ("train", "test")
    )


def _check_image_shape(image_shape):
    """`None`, or `image_shape` as a tuple of 3 positive ints; else `ValueError`."""
    if image_shape is None:
        return None
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
        for d in shape
    ):
        raise ValueError(
            f"Invalid `image_shape`: {image_shape!r}. Expected None or "
            "(height, width, channels) of positive integers."
        )
    return tuple(int(d) for d in shape)


def _to_images(x, image_shape=None, resize=False):
    """Images as float32 `(n, h, w, c)` in [0, 1] (uint8 is divided by 255; a
    missing channel axis is added), fitted to `image_shape` (checked by
    `_check_image_shape`) if given: smaller images are zero-padded around the
    centre, and greyscale is repeated over the channels. Larger images are an
    error unless `resize`, which shrinks them with `tf.image.resize` (bilinear,
    antialiased, aspect ratio kept) to fit, then pads the rest."""
    x = x.astype("float32") / (255.0 if x.dtype == np.uint8 else 1.0)
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


def _read_tfds(name, split="test", data_dir=None, max_examples=None):
    """Reads the already prepared tensorflow-datasets dataset `name` (e.g.
    `"svhn_cropped"`, `"cifar10_corrupted/fog_3"`) without ever downloading:
    shared by `load_tfds_images` and `corruptions.load_cifar10_corrupted`.

    Returns:
        An iterator of numpy `(images, labels)` batches (`as_supervised=True`)
        of up to 1,000 examples, or of one example where image sizes vary.

    Raises:
        ValueError: If `name` is not a tensorflow-datasets builder nor prepared
            in `data_dir`, or is namespaced (`huggingface:...`, community
            datasets), which tfds may fetch from the network.
        FileNotFoundError: If the dataset is not prepared in `data_dir`; the
            message says how to prepare it on a machine with network access.
    """
    import tensorflow_datasets as tfds

    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Invalid `name`: {name!r}. Expected a tensorflow-datasets name."
        )
    if re.match(r"[\w-]+:(?!\d)", name):  # `namespace:dataset`, not `dataset:1.0.0`
        raise ValueError(
            f"Invalid `name`: {name!r}. Namespaced (community, Hugging Face) "
            "datasets are not supported: tfds may fetch them from the network."
        )
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        base = re.split(r"[/:]", name)[0]
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(base, known, n=3, cutoff=0.5)
        close += sorted(b for b in known if b.startswith(base) and b not in close)
        hint = f" Did you mean {', '.join(map(repr, close[:3]))}?" if close else ""
        raise ValueError(
            f"Invalid `name`: {name!r} is not a tensorflow-datasets dataset "
            f"(nor prepared in data_dir {data_dir!r}).{hint}"
        ) from None  # tfds' own message lists every dataset
    try:
        # `as_dataset` only reads prepared files; it never downloads.
        ds = builder.as_dataset(split=split, as_supervised=True)
    except AssertionError as e:  # tfds' "could not find data in ..." error
        searched = data_dir if data_dir is not None else "the tfds default data_dir"
        dataset, _, config = name.partition("/")
        command = f"{dataset} --config {config}" if config else dataset
        raise FileNotFoundError(
            f"Dataset `{name}` is not prepared in {searched} (looked for "
            f"{builder.data_dir}) and this function never downloads. On a "
            f"machine with network access run `tfds build {command} --data_dir "
            f"DIR` (or `tfds.builder('{name}', data_dir=DIR)"
            ".download_and_prepare()`), copy DIR here and pass `data_dir=DIR`."
        ) from e
    if max_examples is not None:
        ds = ds.take(max_examples)
    # Batched iteration rather than `batch_size=-1`: the latter sizes its single
    # batch from the split metadata, which `tfds.testing.mock_data` lacks.
    fixed_size = ds.element_spec[0].shape.is_fully_defined()
    return iter(tfds.as_numpy(ds.batch(1000 if fixed_size else 1)))


def load_tfds_images(name, split="test", data_dir=None, image_shape=None,
                     max_examples=None):
    """An image classification split of an already prepared tensorflow-datasets
    dataset, e.g. an out-of-distribution test set for
    `evaluation.evaluate(..., modes=["ood"], ood_data={name: x})`. Never
    downloads: prepare the dataset elsewhere with `tfds build NAME --data_dir
    DIR` and pass `data_dir=DIR`.

    Args:
        name: The tensorflow-datasets name, e.g. `"svhn_cropped"`, `"cifar100"`
            or `"dataset/config"`.
        split: The split, e.g. `"test"` or a slice such as `"test[:50%]"`.
        data_dir: The tensorflow-datasets data directory of the prepared data;
            `None` for tfds' default (`$TFDS_DATA_DIR`, `~/tensorflow_datasets`).
        image_shape: Optional `(height, width, channels)` the model takes (e.g.
            `(32, 32, 3)`): smaller images are zero-padded around the centre
            (like `load_npz`), larger ones are shrunk with `tf.image.resize`
            (bilinear, antialiased, aspect ratio kept, then padded), and
            greyscale is repeated over the channels when `channels` is a
            multiple. Needed for datasets whose images vary in size.
        max_examples: Optional cap on the number of (first) examples.

    Returns:
        `(x, y)`: images as float32 `(n, height, width, channels)` in [0, 1]
        and labels as int32 `(n,)`.

    Raises:
        FileNotFoundError: If the dataset is not prepared in `data_dir`.
        ValueError: For an unknown `name`, a bad `image_shape` (or one that
            cannot hold the images' channels) or `max_examples`, images of
            varying size without `image_shape`, or an empty split.

    Example:

    >>> x_ood, _ = load_tfds_images("mnist", data_dir="/data/tfds",
    ...                             image_shape=(32, 32, 3), max_examples=1000)
    >>> x_ood.shape, x_ood.dtype
    ((1000, 32, 32, 3), dtype('float32'))
    """
    image_shape = _check_image_shape(image_shape)
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    batches = [
        (_to_images(x, image_shape, resize=True), y)
        for x, y in _read_tfds(name, split, data_dir, max_examples)
    ]
    if not batches:
        raise ValueError(f"Split {split!r} of {name!r} has no examples.")
    sizes = sorted({x.shape[1:] for x, _ in batches})
    if len(sizes) > 1:
        raise ValueError(
            f"The images of {name!r} vary in size (e.g. {sizes[0]} and "
            f"{sizes[-1]}); pass `image_shape` to fit them to one shape."
        )
    x, y = (np.concatenate(parts) for parts in zip(*batches))
    return x, y.astype("int32")
