"""Where images come from: the bundled default (scikit-learn's handwritten
digits), `.npz` image sets for benchmarks, and prepared tensorflow-datasets
splits, read without ever downloading.

scikit-learn ships the 1,797 8x8 digit images inside the package, so the
quickstart and the tests run without any download.
"""

import difflib
import os
import re

import numpy as np

from freetickets_tf._validation import check_int
from freetickets_tf.data import preprocessing

# Decoded tfds splits kept for later `load(..., cache=True)` calls.
_ARRAY_CACHE = {}


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
    image_shape = preprocessing.check_image_shape(image_shape)
    with np.load(path) as archive:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
        if missing:
            raise ValueError(f"{path!r} lacks the arrays {sorted(missing)}.")
        arrays = {name: archive[name] for name in archive.files}
    return tuple(
        (preprocessing.fit_images(arrays[f"x_{part}"], image_shape),
         arrays[f"y_{part}"].astype("int32"))
        for part in ("train", "test")
    )


def read_tfds(name, split="test", data_dir=None, max_examples=None):
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
    image_shape = preprocessing.check_image_shape(image_shape)
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    batches = [
        (preprocessing.fit_images(x, image_shape, resize=True), y)
        for x, y in read_tfds(name, split, data_dir, max_examples)
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


def decoded_split(name, split, data_dir, max_examples, cache):
    """`(x uint8, y int32)` of a prepared tfds split, decoded into memory
    (through `data.sources.read_tfds`, which never downloads)."""
    key = (name, split, None if data_dir is None else os.fspath(data_dir), max_examples)
    if cache and key in _ARRAY_CACHE:
        return _ARRAY_CACHE[key]
    try:
        batches = list(read_tfds(name, split, key[2], max_examples))
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{e} (On the command line: `--data_dir DIR`.)") from e
    if not batches:
        raise ValueError(f"Split {split!r} of {name!r} has no examples.")
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches]).astype("int32")
    if x.dtype != np.uint8:
        x = np.clip(np.round(x), 0, 255).astype("uint8")
    if cache:
        _ARRAY_CACHE[key] = (x, y)
    return x, y


def clear_cache():
    """Forgets the tensorflow-datasets splits that `load(..., cache=True)`
    kept in memory.

    Example:

    >>> clear_cache()
    """
    _ARRAY_CACHE.clear()
