"""`tf.data` input pipelines for training at scale: CIFAR-10/100, SVHN,
CIFAR-10-C and ImageNet from prepared tensorflow-datasets data, in-memory
arrays, and local image folders.

The training split is a `TrainingSet`: a function of the epoch. The order of
an epoch and every example's augmentation depend only on `(seed, epoch)`
(stateless random ops: nothing depends on how many batches were drawn
before), so a run resumed at epoch `e` sees exactly the batches an
uninterrupted one would, and `epochs(first, last)` feeds
`model.fit(ds, steps_per_epoch=train.steps_per_epoch, epochs=last,
initial_epoch=first)`.

Augmentation and normalisation follow the original FreeTickets code (SPEC
§4): CIFAR-10 pads 4 pixels by reflection, CIFAR-100 pads 4 zeros, then a
random 32x32 crop and a horizontal flip; images are scaled to [0, 1] and
normalised per channel. ImageNet trains on random-resized crops of 224 with
flips and evaluates on the centre 224 crop of images resized to 256.

Nothing here downloads: tensorflow-datasets data must be prepared beforehand
(`tfds build NAME --data_dir DIR`, or for ImageNet from the manually
downloaded archives, `tfds build imagenet2012 --manual_dir MANUAL --data_dir
DIR` or `prepare_imagenet(MANUAL, DIR)`), and `data_dir=DIR` points at it.

Example:

>>> from freetickets_tf import pipelines
>>> cifar = pipelines.load("cifar10", data_dir="/data/tfds")
>>> cifar.train.examples, cifar.train.steps_per_epoch
(45000, 352)
>>> model.fit(cifar.train.epochs(0, 250), epochs=250,
...           steps_per_epoch=cifar.train.steps_per_epoch,
...           validation_data=cifar.validation)
"""

import copy
import dataclasses
import hashlib
import math
import numbers
import os

import numpy as np

from freetickets_tf import corruptions
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int

DATASETS = ("cifar10", "cifar100", "svhn_cropped", "cifar10_corrupted", "imagenet2012")

# Augmentations of `from_arrays` / `load(augment=...)`: a random crop of the
# image padded by `padding` pixels (zeros, or a reflection of the border
# excluding the edge like `np.pad(mode="reflect")`), and/or a horizontal flip.
AUGMENTATIONS = ("crop_flip", "reflect_crop_flip", "crop", "reflect_crop", "flip")

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

# name -> (num_classes, input_shape, default augmentation, tfds train split)
_SETTINGS = {
    "cifar10": (10, (32, 32, 3), "reflect_crop_flip"),
    "cifar100": (100, (32, 32, 3), "crop_flip"),
    # Digits are not mirror-symmetric: crop only.
    "svhn_cropped": (10, (32, 32, 3), "crop"),
    "cifar10_corrupted": (10, (32, 32, 3), None),
    "imagenet2012": (1000, (224, 224, 3), "random_resized_crop_flip"),
}
_CIFAR_PADDING = 4
_IMAGENET_SIZE, _IMAGENET_RESIZE = 224, 256
_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

# Decoded tfds splits kept for later `load(..., cache=True)` calls.
_ARRAY_CACHE = {}


def _tf():
    import tensorflow as tf

    return tf


def _autotune():
    return _tf().data.AUTOTUNE


def _plain(function):
    """`function` for tf.data without AutoGraph conversion (no tensor-dependent
    Python control flow here): faster to trace."""
    return _tf().autograph.experimental.do_not_convert(function)


# --- seeds -------------------------------------------------------------------

_TRAIN_STREAM, _GROWTH_STREAM = 0, 1
# Sub-streams of one epoch's key.
_ORDER, _OFFSETS, _FLIPS, _SHUFFLE, _EXAMPLE = range(5)


def _fold(key, data):
    tf = _tf()
    return tf.random.experimental.stateless_fold_in(key, data, alg="philox")


# --- augmentation and normalisation (batched, vectorised) --------------------

def _reflect(index, size):
    """Maps indices in `[-(size - 1), 2 (size - 1)]` into `[0, size)` the way
    `np.pad(mode="reflect")` pads (the edge pixel is not repeated)."""
    tf = _tf()
    last = size - 1
    return last - tf.abs(last - tf.abs(index))


def _crop_flip(images, offsets, flips, padding, mode):
    """Random crops of the padded images, flipped where `flips` is 1.

    Equivalent to `np.pad(image, padding, mode)[dy:dy + h, dx:dx + w]`, then
    `[:, ::-1]` where flipped, for each image, with `(dy, dx) = offsets[i]`
    in `[0, 2 padding]`, but without materialising the padded images: two
    gathers of precomputed source rows and columns.

    Args:
        images: `(batch, h, w, c)` tensor with static `h`, `w`.
        offsets: `(batch, 2)` int32 crop offsets, or None for no crop.
        flips: `(batch,)` int32 in {0, 1}, or None for no flip.
        padding: Pixels of padding on each side.
        mode: `"constant"` (zeros) or `"reflect"`.
    """
    tf = _tf()
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    rows = tf.broadcast_to(tf.range(height)[None], [batch, height])
    cols = tf.broadcast_to(tf.range(width)[None], [batch, width])
    if offsets is not None:
        rows = rows + offsets[:, :1] - padding
        cols = cols + offsets[:, 1:] - padding
    if flips is not None:
        cols = tf.where(flips[:, None] > 0, tf.reverse(cols, [1]), cols)
    if offsets is None or mode == "reflect":
        if offsets is not None:
            rows, cols = _reflect(rows, height), _reflect(cols, width)
        out = tf.gather(images, rows, axis=1, batch_dims=1)
        return tf.gather(out, cols, axis=2, batch_dims=1)
    inside = ((rows >= 0) & (rows < height))[:, :, None, None] & (
        (cols >= 0) & (cols < width))[:, None, :, None]
    out = tf.gather(images, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
    out = tf.gather(out, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
    return tf.where(inside, out, tf.zeros_like(out))


def normalizer(dtype, mean, std):
    """A function mapping images of `dtype` to float32: uint8 is divided by
    255, then `(x - mean) / std` per channel when `mean` is given."""
    tf = _tf()
    scale = 1.0 / 255.0 if np.dtype(dtype) == np.uint8 else 1.0
    if mean is None:
        def normalize(x):
            x = tf.cast(x, tf.float32)
            return x * scale if scale != 1.0 else x
        return normalize
    mean = np.asarray(mean, "float32")
    inv_std = 1.0 / np.asarray(std, "float32")

    def normalize(x):
        return (tf.cast(x, tf.float32) * scale - mean) * inv_std

    return normalize


def _check_mean_std(mean, std, channels=None):
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


def _check_normalization(normalization, default):
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
    return _check_mean_std(mean, std, 3)


def _check_fraction(validation_fraction):
    if isinstance(validation_fraction, bool) or not isinstance(
            validation_fraction, numbers.Real) or not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"Invalid `validation_fraction`: {validation_fraction!r}. Expected "
            "a number in [0, 1) (0: no validation set).")
    return float(validation_fraction)


def _split_indices(n, validation_fraction, split_seed):
    """`(train, validation)` index arrays: a seeded random
    `validation_fraction` held out, as `data.split` does."""
    if not validation_fraction:
        return np.arange(n), None
    if n < 2:
        raise ValueError(f"Cannot hold out a validation set from {n} example(s).")
    order = np.random.default_rng(split_seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(validation_fraction * n))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_augment(augment, default):
    """The augmentation name for `augment` (True: `default`, False/None: none)."""
    if augment is True:
        return default
    if augment is False or augment is None:
        return None
    return check_choice("augment", augment, AUGMENTATIONS)


# --- training sets -------------------------------------------------------------

class TrainingSet:
    """The training split as a function of the epoch, so that a resumed run
    sees exactly the batches an uninterrupted one would.

    An epoch's order and every example's augmentation depend only on
    `(seed, epoch)`: they are drawn with stateless random ops (philox) from a
    key folded from the seed and the epoch. Make one with `from_arrays`,
    `load` or `image_folder`.

    Attributes:
        batch_size: Global batch size.
        examples: Examples per epoch.
        steps_per_epoch: `ceil(examples / batch_size)`; the last batch of an
            epoch is smaller when `batch_size` does not divide `examples`.
        seed: The seed of the order and the augmentation.
        input_shape: Shape of one (augmented) image.
        mean, std: The per-channel normalisation constants (of images in
            [0, 1]), or None.

    Example:

    >>> train = from_arrays(x_train, y_train, batch_size=128, seed=1,
    ...                     augment="reflect_crop_flip")
    >>> model.fit(train.epochs(0, 10), epochs=10,
    ...           steps_per_epoch=train.steps_per_epoch)
    >>> # ... interrupted after epoch 6; resume with the same batches:
    >>> model.fit(train.epochs(6, 10), epochs=10, initial_epoch=6,
    ...           steps_per_epoch=train.steps_per_epoch)
    """

    def __init__(self, examples, batch_size, seed, input_shape):
        self.examples = check_int("examples", examples, 1)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed = check_int("seed", seed, 0)
        self.input_shape = tuple(input_shape)
        self.steps_per_epoch = math.ceil(self.examples / self.batch_size)
        # Where the examples come from (set by the constructors): part of
        # the identity of a run trained on them.
        self.source = {"kind": type(self).__name__}

    def identity(self):
        """What defines this training set's batches, JSON-serialisable: the
        source (a digest of in-memory arrays, a dataset's name and split, a
        folder), size, shape, batch size, seed and preprocessing. A run
        resumed on a set of another identity would silently train on other
        data; the recipes record it and refuse.

        Example:

        >>> from_arrays(x, y, 128).identity()["source"]["kind"]
        'arrays'
        """
        return {"source": self.source, "examples": self.examples,
                "input_shape": list(self.input_shape), "batch_size": self.batch_size,
                "seed": self.seed, **self._preprocessing()}

    def _preprocessing(self):
        return {}

    def preprocessing(self):
        """How raw examples become the model's inputs, as a JSON dict for
        `apply_preprocessing` (None: a dataset's own, unknown here)."""
        return None

    def __repr__(self):
        return (f"TrainingSet(examples={self.examples}, batch_size="
                f"{self.batch_size}, steps_per_epoch={self.steps_per_epoch}, "
                f"seed={self.seed}, input_shape={self.input_shape})")

    def _key(self, stream, epoch, sub=0):
        tf = _tf()
        base = tf.constant([self.seed, stream], tf.int64)
        return _fold(_fold(base, tf.cast(sub, tf.int64)), tf.cast(epoch, tf.int64))

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        """The batches of one epoch, for the epoch's `key` (a tensor)."""
        raise NotImplementedError

    def epoch(self, epoch):
        """The batched `(x, y)` of one epoch (prefetched).

        Args:
            epoch: The epoch number (0-based), an int >= 0.

        Returns:
            A `tf.data.Dataset` of `steps_per_epoch` batches: float32 images,
            int32 labels.

        Example:

        >>> x, y = next(iter(train.epoch(3)))  # always the same batch
        """
        epoch = check_int("epoch", epoch, 0)
        return self._epoch(self._key(_TRAIN_STREAM, epoch)).prefetch(_autotune())

    def epochs(self, first_epoch, last_epoch):
        """Epochs `first_epoch .. last_epoch - 1` back to back (prefetched),
        for `model.fit(ds, steps_per_epoch=steps_per_epoch, epochs=last_epoch,
        initial_epoch=first_epoch)`. Equal to the concatenation of
        `epoch(first_epoch)`, ..., `epoch(last_epoch - 1)`.

        Args:
            first_epoch: First epoch (0-based), an int >= 0.
            last_epoch: One past the last epoch, > `first_epoch`.

        Returns:
            A `tf.data.Dataset` of `(last_epoch - first_epoch) *
            steps_per_epoch` batches.

        Example:

        >>> model.fit(train.epochs(5, 250), epochs=250, initial_epoch=5,
        ...           steps_per_epoch=train.steps_per_epoch)
        """
        tf = _tf()
        first = check_int("first_epoch", first_epoch, 0)
        last = check_int("last_epoch", last_epoch, first + 1)
        ds = tf.data.Dataset.range(first, last).flat_map(
            _plain(lambda e: self._epoch(self._key(_TRAIN_STREAM, e))))
        return ds.prefetch(_autotune())

    def with_seed(self, seed):
        """The same examples with another order and augmentation: a copy
        whose epochs and growth stream follow `seed` (the ensemble recipes
        give member m the seed `seed + m`, as the original's runs).

        Example:

        >>> member_1 = train.with_seed(train.seed + 1)
        """
        other = copy.copy(self)
        other.seed = check_int("seed", seed, 0)
        return other

    def training_batch(self, step):
        """The batch that `epochs(0, ...)` yields at 0-based position `step`
        (epoch `step // steps_per_epoch`): the batch that optimizer step
        `step + 1` of a run from epoch 0 trains on.

        Example:

        >>> x, y = train.training_batch(train.steps_per_epoch)  # epoch 1's first
        """
        step = check_int("step", step, 0)
        epoch, index = divmod(step, self.steps_per_epoch)
        batches = self._epoch(self._key(_TRAIN_STREAM, epoch), skip_batches=index)
        return next(iter(batches.take(1)))

    def growth_batches(self, seed=0, start=0):
        """An endless stream of augmented training batches for the growth
        gradient of dynamic sparse training, independent of the training
        order. Batch `k` depends only on `(self.seed, seed, k)`; `start`
        skips the first `start` batches cheaply, so a resumed run can go on
        where it stopped. Batches are full (`batch_size` examples) unless the
        set holds fewer examples.

        Args:
            seed: Seed of this stream (e.g. the run's seed).
            start: Index of the first batch.

        Returns:
            An endless, prefetched `tf.data.Dataset` of `(x, y)` batches.

        Example:

        >>> dst = DynamicSparsityCallback(data=train.growth_batches(seed=1))
        """
        tf = _tf()
        seed = check_int("seed", seed, 0)
        start = check_int("start", start, 0)
        drop = self.examples >= self.batch_size
        per_epoch = self.examples // self.batch_size if drop else 1
        first, skip = divmod(start, per_epoch)

        def epoch(e):
            skip_batches = tf.where(e == first, tf.constant(skip, tf.int64), 0)
            return self._epoch(self._key(_GROWTH_STREAM, e, seed), drop, skip_batches)

        ds = tf.data.Dataset.counter(first).flat_map(_plain(epoch))
        return ds.prefetch(_autotune())


class _IndexedTrainingSet(TrainingSet):
    """Examples with random access by index: in-memory arrays (`images`) or
    files decoded one by one (`load_example(index) -> (image, label)`).
    Order: a stateless shuffle of the indices; augmentation: crop offsets and
    flips drawn per epoch for every example index, applied batch-wise."""

    def __init__(self, examples, batch_size, seed, input_shape, dtype, *, images=None,
                 labels=None, load_example=None, augment=None, padding=0,
                 mean=None, std=None):
        super().__init__(examples, batch_size, seed, input_shape)
        tf = _tf()
        self.dtype = np.dtype(dtype).name
        self.augment = augment
        self.padding = int(padding)
        self.mean, self.std = mean, std
        self._normalize = normalizer(dtype, mean, std)
        self._load_example = load_example
        if images is not None:
            # On the host: tf.data runs there, also when a GPU is present.
            with tf.device("/CPU:0"):
                self._images = tf.constant(images)
                self._labels = tf.constant(labels)

    def _preprocessing(self):
        return {"augment": self.augment, "padding": self.padding, **self.preprocessing()}

    def preprocessing(self):
        as_list = (lambda v: None if v is None else [float(c) for c in np.ravel(v)])
        return {"input_dtype": self.dtype, "mean": as_list(self.mean),
                "std": as_list(self.std)}

    def _augment_batch(self, images, offsets, flips):
        if self.augment is None:
            return images
        mode = "reflect" if self.augment.startswith("reflect") else "constant"
        return _crop_flip(images, offsets if self.padding else None, flips,
                          self.padding, mode)

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        tf = _tf()
        n, batch = self.examples, self.batch_size
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int32), _fold(key, _ORDER), alg="philox")
        crop = self.augment is not None and "crop" in self.augment and self.padding
        flip = self.augment is not None and "flip" in self.augment
        # One draw per example index for the whole epoch, then looked up in
        # the epoch's order: example i's augmentation depends on (seed,
        # epoch, i) only.
        offsets = (tf.random.stateless_uniform(
            [n, 2], _fold(key, _OFFSETS), 0, 2 * self.padding + 1, tf.int32,
            alg="philox") if crop else tf.zeros([n, 2], tf.int32))
        flips = (tf.random.stateless_uniform(
            [n], _fold(key, _FLIPS), 0, 2, tf.int32, alg="philox")
            if flip else tf.zeros([n], tf.int32))
        ds = tf.data.Dataset.from_tensor_slices(
            (order, tf.gather(offsets, order), tf.gather(flips, order)))

        def finish(images, labels, offsets, flips):
            images = self._augment_batch(images, offsets if crop else None,
                                         flips if flip else None)
            return self._normalize(images), labels

        if self._load_example is None:
            ds = ds.batch(batch, drop_remainder=drop_remainder).skip(skip_batches)

            def make_batch(index, offsets, flips):
                return finish(tf.gather(self._images, index),
                              tf.gather(self._labels, index), offsets, flips)

            return ds.map(_plain(make_batch), num_parallel_calls=_autotune(),
                          deterministic=True)

        def load(index, offsets, flips):
            image, label = self._load_example(index)
            return image, label, offsets, flips

        ds = ds.skip(skip_batches * batch).map(
            _plain(load), num_parallel_calls=_autotune(), deterministic=True)
        return ds.batch(batch, drop_remainder=drop_remainder).map(
            _plain(finish), num_parallel_calls=_autotune(), deterministic=True)


class _DatasetTrainingSet(TrainingSet):
    """A user's batched dataset as a `TrainingSet` (see `from_dataset`)."""

    def __init__(self, dataset, steps, batch_size):
        spec = dataset.element_spec[0]
        super().__init__(steps * batch_size, batch_size, 0, tuple(spec.shape[1:]))
        self.steps_per_epoch = steps
        self.dataset = dataset

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        return self.dataset.skip(skip_batches)

    def with_seed(self, seed):
        """Itself: a user's dataset brings its own order, which no seed
        changes."""
        return self


def from_dataset(dataset):
    """A batched `tf.data.Dataset` of `(x, y)` as a `TrainingSet`: each epoch
    is one pass over it. Its order is the dataset's own, so unlike
    `from_arrays` a resumed run does not see the same batches as an
    uninterrupted one.

    Args:
        dataset: A finite, batched `tf.data.Dataset` of `(x, y)`.

    Returns:
        A `TrainingSet`.

    Example:

    >>> train = from_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    """
    tf = _tf()
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"Invalid `dataset`: expected a tf.data.Dataset, got {type(dataset).__name__}."
        )
    steps = int(dataset.cardinality())
    if steps < 0:  # unknown
        steps = sum(1 for _ in dataset)
    if steps == 0:
        raise ValueError("Invalid `dataset`: it is empty or infinite; expected a "
                         "finite, batched dataset of (x, y).")
    batch_size = int(next(iter(dataset))[0].shape[0])
    train = _DatasetTrainingSet(dataset, steps, batch_size)
    train.source = {"kind": "dataset", "element_spec": repr(dataset.element_spec)}
    return train


def from_arrays(x, y, batch_size, seed=0, augment=None, mean=None, std=None,
                padding=None):
    """A `TrainingSet` of in-memory arrays.

    Args:
        x: Images, uint8 (scaled to [0, 1] by dividing by 255) or float
            (taken as they are), `(n, h, w, c)`; any shape `(n, ...)` without
            augmentation.
        y: Integer labels, `(n,)`.
        batch_size: Global batch size.
        seed: Seed of the order and the augmentation.
        augment: None, or one of `AUGMENTATIONS`: `"crop_flip"` (pad with
            zeros, random crop, horizontal flip: CIFAR-100),
            `"reflect_crop_flip"` (reflection padding: CIFAR-10), `"crop"`,
            `"reflect_crop"` (no flip: digits), `"flip"`.
        mean: Optional per-channel means (of images in [0, 1]) to subtract.
        std: Optional per-channel standard deviations to divide by.
        padding: Pixels of padding for the crops; default `min(h, w) // 8`
            (4 for 32x32 images), at least 1.

    Returns:
        A `TrainingSet` of float32 images and int32 labels.

    Raises:
        ValueError: For mismatched or empty arrays, non-integer labels, an
            unknown `augment`, augmentation of arrays that are not
            `(n, h, w, c)`, or bad `mean` / `std` / `padding`.

    Example:

    >>> (x, y), _ = freetickets_tf.data.load_digits()
    >>> train = from_arrays(x, y, batch_size=32, augment="crop", padding=1)
    >>> x0, y0 = next(iter(train.epoch(0)))
    >>> x0.shape
    TensorShape([32, 8, 8, 1])
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or y.ndim != 1:
        raise ValueError(
            f"`x` has {len(x)} examples but `y` has shape {y.shape}; expected "
            f"labels of shape ({len(x)},).")
    if not len(x):
        raise ValueError("`x` has no examples.")
    if y.dtype.kind not in "iu":
        raise ValueError(f"Invalid `y` dtype {y.dtype}: expected integer labels.")
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise ValueError(f"Invalid `x` dtype {x.dtype}: expected uint8 or float images.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise ValueError(
            f"Invalid `x`: {len(bad)} examples hold NaN or infinite values (the "
            f"first is example {bad[0]}). Clean or drop them before training.")
    augment = _check_augment(augment, None)
    if augment is not None and x.ndim != 4:
        raise ValueError(
            f"Augmentation {augment!r} needs images of shape (n, h, w, c); "
            f"`x` has shape {x.shape}.")
    padding = _check_padding(padding, x.shape[1:3] if x.ndim == 4 else None)
    mean, std = _check_mean_std(mean, std, x.shape[-1] if x.ndim == 4 else None)
    if augment is not None and "reflect" in augment and padding >= min(x.shape[1:3]):
        raise ValueError(
            f"Invalid `padding`: {padding} is too large to reflect images of "
            f"shape {x.shape[1:3]}.")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype("float32")
    train = _IndexedTrainingSet(
        len(x), batch_size, seed, x.shape[1:], x.dtype, images=x,
        labels=y.astype("int32"), augment=augment, padding=padding, mean=mean, std=std)
    train.source = {"kind": "arrays", "dtype": str(x.dtype),
                    "sha256": array_digest(x, y.astype("int32"))}
    return train


def array_digest(*arrays):
    """A SHA-256 digest of arrays' shapes, dtypes and bytes, to tell data
    sets apart.

    Example:

    >>> array_digest(x, y)[:8]
    '3f1c0a9e'
    """
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def apply_preprocessing(x, preprocessing, name="x"):
    """Raw images as the model was trained on them: `preprocessing` is a
    training set's `preprocessing()` (uint8 divided by 255, then the
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
        # As `normalizer` does, so that both give the same floats.
        x = x.astype("float32") * np.float32(1.0 / 255.0)
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


def _check_padding(padding, image_hw):
    if padding is None:
        return max(1, min(image_hw) // 8) if image_hw is not None else 0
    return check_int("padding", padding, 0)


# --- evaluation sets -----------------------------------------------------------

def _eval_from_arrays(x, y, batch_size, mean, std):
    """Batched, normalised, un-augmented `(x, y)` in their order."""
    tf = _tf()
    with tf.device("/CPU:0"):
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    normalize = normalizer(x.dtype, mean, std)
    return ds.batch(batch_size).map(
        _plain(lambda images, labels: (normalize(images), labels)),
        num_parallel_calls=_autotune(), deterministic=True).prefetch(_autotune())


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """An image classification set ready for training: what `load` and
    `image_folder` return.

    Attributes:
        name: The dataset's name.
        train: The training split as a `TrainingSet` (without the held-out
            validation examples), or None for test-only sets (CIFAR-10-C).
        validation: Batched, normalised, un-augmented held-out examples of the
            training split, or None.
        test: Batched, normalised, un-augmented test split (None for an
            `image_folder` without `test_path`).
        num_classes: Number of classes.
        input_shape: `(h, w, c)` of the model's input.
        class_names: The class folders of an `image_folder`, else `()`.

    Example:

    >>> data = load("cifar100", data_dir="/data/tfds")
    >>> model = models.get("wrn-28-10", data.num_classes, data.input_shape)
    >>> model.evaluate(data.test)
    """

    name: str
    train: "TrainingSet | None"
    validation: object
    test: object
    num_classes: int
    input_shape: tuple
    class_names: tuple = ()


# --- tensorflow-datasets -------------------------------------------------------

def _decoded_split(name, split, data_dir, max_examples, cache):
    """`(x uint8, y int32)` of a prepared tfds split, decoded into memory
    (through `data._read_tfds`, which never downloads)."""
    from freetickets_tf.data import _read_tfds

    key = (name, split, None if data_dir is None else os.fspath(data_dir), max_examples)
    if cache and key in _ARRAY_CACHE:
        return _ARRAY_CACHE[key]
    try:
        batches = list(_read_tfds(name, split, key[2], max_examples))
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


def load(name, data_dir=None, batch_size=128, validation_fraction=0.1, seed=0,
         augment=True, corruption=None, severity=None, max_examples=None,
         cache=True, *, split_seed=0, normalization=None, eval_batch_size=None,
         shuffle_buffer=10_000):
    """A prepared tensorflow-datasets image set as an `ImageDataset` with
    the original FreeTickets augmentation and normalisation. Never
    downloads.

    | name | classes | train augmentation | validation | test |
    | --- | --- | --- | --- | --- |
    | `cifar10` | 10 | pad 4 (reflect), crop 32, flip | seeded fraction of train | test |
    | `cifar100` | 100 | pad 4 (zeros), crop 32, flip | seeded fraction of train | test |
    | `svhn_cropped` | 10 | pad 4 (zeros), crop 32 (no flip) | seeded fraction of train | test |
    | `cifar10_corrupted` | 10 | (test only) | None | `corruption` at `severity` |
    | `imagenet2012` | 1000 | random-resized crop 224, flip | seeded slice of train | validation |

    CIFAR-size splits are decoded once into memory as uint8 (50,000 CIFAR
    images take 150 MB; kept for later calls with `cache=True`); ImageNet is
    streamed from its prepared files: per epoch a stateless shuffle of the
    file pieces, an interleave of them and a shuffle of blocks of
    `shuffle_buffer` records, all seeded by `(seed, epoch)`; JPEGs are
    decoded straight into the random crop. Evaluation of ImageNet resizes
    the shorter side to 256 and takes the centre 224 crop (as one crop of
    the centre 224/256 of the shorter side, resized to 224 with
    antialiasing).

    Args:
        name: One of `DATASETS`.
        data_dir: The tensorflow-datasets data directory holding the prepared
            data (`tfds build NAME --data_dir DIR`); None for tfds' default
            (`$TFDS_DATA_DIR`, `~/tensorflow_datasets`).
        batch_size: Global batch size of every split.
        validation_fraction: Fraction of the training split held out for
            validation (SPEC §4: 0.1, i.e. 45k / 5k for CIFAR); 0 for none.
        seed: Seed of the training order and augmentation.
        augment: True for the dataset's augmentation (table above), False for
            none, or one of `AUGMENTATIONS` (not for ImageNet).
        corruption: For `cifar10_corrupted` only: one of
            `corruptions.CORRUPTIONS`.
        severity: For `cifar10_corrupted` only: 1..5.
        max_examples: Optional cap on the (first) examples read from each
            tfds split, e.g. for smoke runs.
        cache: Keep the decoded CIFAR-size splits in memory for later `load`
            calls in this process (`clear_cache()` frees them).
        split_seed: Seed of the held-out validation examples, apart from
            `seed` so that every member of an ensemble (each with its own
            `seed`) holds out the same examples.
        normalization: None for the dataset's own constants
            (`NORMALIZATION[name]`), another name in `NORMALIZATION` (e.g.
            `"cifar10"` to feed SVHN to a CIFAR-10 model as an
            out-of-distribution set), or a `(mean, std)` pair.
        eval_batch_size: Batch size of validation and test (default
            `batch_size`).
        shuffle_buffer: ImageNet only: records per shuffled block (10,000
            ImageNet JPEGs take about 1.1 GB).

    Returns:
        An `ImageDataset`.

    Raises:
        ValueError: For a name not in `DATASETS` (the message lists them),
            a missing or misplaced `corruption` / `severity`, or bad
            arguments.
        FileNotFoundError: If the dataset is not prepared in `data_dir`; the
            message says how to prepare it (`tfds build`, for ImageNet from
            the manually downloaded archives) and to pass `data_dir`.

    Example:

    >>> data = load("cifar10", data_dir="/data/tfds", seed=1)
    >>> data.train.examples, data.num_classes, data.input_shape
    (45000, 10, (32, 32, 3))
    >>> ood = load("svhn_cropped", data_dir="/data/tfds",
    ...            normalization="cifar10").test
    >>> fog = load("cifar10_corrupted", data_dir="/data/tfds",
    ...            corruption="fog", severity=3).test
    """
    check_choice("name", name, DATASETS)
    batch_size = check_int("batch_size", batch_size, 1)
    eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    eval_batch_size = eval_batch_size or batch_size
    validation_fraction = _check_fraction(validation_fraction)
    seed = check_int("seed", seed, 0)
    split_seed = check_int("split_seed", split_seed, 0)
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    num_classes, input_shape, default_augment = _SETTINGS[name]
    mean, std = _check_normalization(normalization, name)
    if name == "cifar10_corrupted":
        if corruption is None or severity is None:
            raise ValueError(
                "`cifar10_corrupted` needs `corruption` (one of "
                f"{', '.join(corruptions.CORRUPTIONS)}) and `severity` (1..5).")
        config = corruptions.tfds_config_name(corruption, severity)
        x, y = _decoded_split(f"{name}/{config}", "test", data_dir, max_examples, cache)
        return ImageDataset(f"{name}/{config}", None, None,
                            _eval_from_arrays(x, y, eval_batch_size, mean, std),
                            num_classes, input_shape)
    if corruption is not None or severity is not None:
        raise ValueError(
            f"`corruption` and `severity` are for 'cifar10_corrupted', not {name!r}.")
    if name == "imagenet2012":
        if augment not in (True, False, None):
            raise ValueError(
                f"Invalid `augment`: {augment!r}. ImageNet takes True "
                "(random-resized crop and flip) or False.")
        return _load_imagenet(data_dir, batch_size, eval_batch_size,
                              validation_fraction, seed, split_seed, bool(augment),
                              max_examples, mean, std,
                              check_int("shuffle_buffer", shuffle_buffer, 1))
    augment = _check_augment(augment, default_augment)
    x, y = _decoded_split(name, "train", data_dir, max_examples, cache)
    x_test, y_test = _decoded_split(name, "test", data_dir, max_examples, cache)
    train_index, val_index = _split_indices(len(x), validation_fraction, split_seed)
    train = _IndexedTrainingSet(
        len(train_index), batch_size, seed, x.shape[1:], x.dtype,
        images=x[train_index], labels=y[train_index], augment=augment,
        padding=_CIFAR_PADDING, mean=mean, std=std)
    train.source = {"kind": "tfds", "name": name, "validation_fraction": validation_fraction,
                    "split_seed": split_seed, "max_examples": max_examples}
    validation = None if val_index is None else _eval_from_arrays(
        x[val_index], y[val_index], eval_batch_size, mean, std)
    return ImageDataset(name, train, validation,
                        _eval_from_arrays(x_test, y_test, eval_batch_size, mean, std),
                        num_classes, input_shape)


# --- ImageNet ---------------------------------------------------------------

def _imagenet_builder(data_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if not builder.is_prepared():
        searched = data_dir if data_dir is not None else "the tfds default data_dir"
        raise FileNotFoundError(
            f"Dataset `imagenet2012` is not prepared in {searched} (looked for "
            f"{builder.data_dir}) and this function never downloads. tfds cannot "
            "download ImageNet: get ILSVRC2012_img_train.tar and "
            "ILSVRC2012_img_val.tar from https://image-net.org into a folder "
            "MANUAL, run `tfds build imagenet2012 --manual_dir MANUAL --data_dir "
            "DIR` (or `freetickets_tf.pipelines.prepare_imagenet(MANUAL, DIR)`), "
            "then pass `data_dir=DIR` (on the command line: `--data_dir DIR`).")
    return builder


def prepare_imagenet(manual_dir, data_dir=None):
    """Prepares tensorflow-datasets' `imagenet2012` from the manually
    downloaded archives, without any network access: the same as
    `tfds build imagenet2012 --manual_dir MANUAL --data_dir DIR`. Takes hours
    and about 150 GB for the full set.

    Args:
        manual_dir: Folder with `ILSVRC2012_img_train.tar` and/or
            `ILSVRC2012_img_val.tar` (from https://image-net.org, after
            registering).
        data_dir: The tensorflow-datasets data directory to write to (None:
            tfds' default); pass the same to `load("imagenet2012",
            data_dir=...)`.

    Returns:
        The folder of the prepared dataset.

    Raises:
        FileNotFoundError: If `manual_dir` holds neither archive.

    Example:

    >>> prepare_imagenet("/downloads/imagenet", "/data/tfds")
    '/data/tfds/imagenet2012/5.1.0'
    >>> imagenet = load("imagenet2012", data_dir="/data/tfds", batch_size=256)
    """
    archives = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
    manual_dir = os.fspath(manual_dir)
    if not any(os.path.isfile(os.path.join(manual_dir, a)) for a in archives):
        raise FileNotFoundError(
            f"Invalid `manual_dir`: {manual_dir!r} holds neither "
            f"{' nor '.join(archives)} (download them from https://image-net.org).")
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    try:
        builder.download_and_prepare(download_config=config)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"tensorflow-datasets needs `{e.name}` to prepare datasets: "
            f"`pip install {e.name}`.", name=e.name) from e
    return os.fspath(builder.data_dir)


def _imagenet_eval_image(jpeg, size=_IMAGENET_SIZE, resize=_IMAGENET_RESIZE):
    """Resize the shorter side to `resize`, centre crop `size`: done as one
    crop of the centre `size / resize` of the shorter side, decoded from
    the JPEG and resized to `size`."""
    tf = _tf()
    shape = tf.image.extract_jpeg_shape(jpeg)
    height, width = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(height, width), tf.float32)
                            * (size / resize)), tf.int32)
    side = tf.maximum(side, 1)
    window = tf.stack([(height - side) // 2, (width - side) // 2, side, side])
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    return tf.image.resize(image, [size, size], "bilinear", antialias=True)


def _imagenet_train_image(jpeg, key, flip, size=_IMAGENET_SIZE):
    """A random-resized crop (area 8%-100%, aspect ratio 3/4-4/3, as
    torchvision's RandomResizedCrop) resized to `size`, flipped at random:
    stateless, from `key`."""
    tf = _tf()
    shape = tf.image.extract_jpeg_shape(jpeg)
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=_fold(key, 0), min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], crop[0], crop[1]])
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    image = tf.image.resize(image, [size, size], "bilinear")
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, _fold(key, 1))
    return image


class _TfdsStreamTrainingSet(TrainingSet):
    """A tfds split streamed from its TFRecord files (ImageNet): per epoch a
    stateless shuffle of the split's file pieces, a deterministic interleave
    of them, a stateless shuffle within blocks of records, then per-example random-resized crops
    with keys folded from the epoch key and the position in the epoch."""

    def __init__(self, builder, split, examples, batch_size, seed, augment, mean,
                 std, shuffle_buffer, cycle_length=16):
        super().__init__(examples, batch_size, seed, (_IMAGENET_SIZE, _IMAGENET_SIZE, 3))
        instructions = builder.info.splits[split].file_instructions
        self._files = [os.fspath(i.filename) for i in instructions]
        self._skips = [int(i.skip) for i in instructions]
        self._takes = [int(i.take) for i in instructions]
        self._features = builder.info.features
        self.augment = augment
        self.shuffle_buffer = shuffle_buffer
        self.mean, self.std = mean, std
        self._cycle = max(1, min(cycle_length, len(self._files)))
        self._normalize = normalizer(np.float32, mean, std)

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        import tensorflow_datasets as tfds

        tf = _tf()
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(self._files)), _fold(key, _ORDER), alg="philox")
        pieces = tf.data.Dataset.from_tensor_slices(tuple(
            tf.gather(tf.constant(v), order)
            for v in (self._files, self._skips, self._takes)))
        records = pieces.interleave(
            _plain(lambda f, s, t: tf.data.TFRecordDataset(f)
                   .skip(tf.cast(s, tf.int64)).take(tf.cast(t, tf.int64))),
            cycle_length=self._cycle, num_parallel_calls=_autotune(),
            deterministic=True)
        # A stateless block shuffle (`Dataset.shuffle` would mix in the global
        # seed): blocks of `shuffle_buffer` records, each permuted by a key
        # folded from the epoch key and the block's index.
        shuffle_key = _fold(key, _SHUFFLE)

        def permute(block_index, block):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(block)[0]), _fold(shuffle_key, block_index),
                alg="philox")
            return tf.gather(block, order)

        records = records.batch(self.shuffle_buffer).enumerate().map(
            _plain(permute), num_parallel_calls=_autotune(), deterministic=True).unbatch()
        records = records.skip(skip_batches * self.batch_size).enumerate(
            skip_batches * self.batch_size)
        example_key = _fold(key, _EXAMPLE)
        decoders = {"image": tfds.decode.SkipDecoding()}

        def decode(position, record):
            example = self._features.deserialize_example(record, decoders=decoders)
            jpeg = example["image"]
            if self.augment:
                image = _imagenet_train_image(jpeg, _fold(example_key, position), True)
            else:
                image = _imagenet_eval_image(jpeg)
            return self._normalize(image / 255.0), tf.cast(example["label"], tf.int32)

        ds = records.map(_plain(decode), num_parallel_calls=_autotune(), deterministic=True)
        return ds.batch(self.batch_size, drop_remainder=drop_remainder)


def _load_imagenet(data_dir, batch_size, eval_batch_size, validation_fraction,
                   seed, split_seed, augment, max_examples, mean, std, shuffle_buffer):
    import tensorflow_datasets as tfds

    tf = _tf()
    builder = _imagenet_builder(data_dir)
    if builder.info.file_format.name != "TFRECORD":
        raise ValueError(
            f"imagenet2012 in {builder.data_dir} is stored as "
            f"{builder.info.file_format.name}; this pipeline reads TFRecord files "
            "(the tfds default).")
    splits = builder.info.splits
    n = splits["train"].num_examples
    if max_examples is not None:
        n = min(n, max_examples)
    # A seeded contiguous slice of the (shuffled at preparation) train split.
    if validation_fraction:
        n_val = min(n - 1, max(1, int(round(validation_fraction * n))))
        start = int(np.random.default_rng(split_seed).integers(0, n - n_val + 1))
        parts = [f"train[{a}:{b}]" for a, b in ((0, start), (start + n_val, n)) if b > a]
        train_split, val_split = "+".join(parts), f"train[{start}:{start + n_val}]"
    else:
        train_split, val_split = f"train[:{n}]", None
    train = _TfdsStreamTrainingSet(builder, train_split, splits[train_split].num_examples,
                                   batch_size, seed, augment, mean, std, shuffle_buffer)
    train.source = {"kind": "tfds", "name": "imagenet2012", "split": train_split,
                    "split_seed": split_seed}
    normalize = normalizer(np.float32, mean, std)
    decoders = {"image": tfds.decode.SkipDecoding()}

    def evaluation(split):
        ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
        ds = ds.map(_plain(lambda e: (normalize(_imagenet_eval_image(e["image"]) / 255.0),
                                      tf.cast(e["label"], tf.int32))),
                    num_parallel_calls=_autotune(), deterministic=True)
        return ds.batch(eval_batch_size).prefetch(_autotune())

    test_split = "validation" if max_examples is None else f"validation[:{max_examples}]"
    test = evaluation(test_split) if "validation" in splits else None
    return ImageDataset("imagenet2012", train,
                        evaluation(val_split) if val_split else None, test,
                        1000, (_IMAGENET_SIZE, _IMAGENET_SIZE, 3))


# --- image folders ----------------------------------------------------------

def _check_image_size(image_size):
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        size = tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in size):
        raise ValueError(
            f"Invalid `image_size`: {image_size!r}. Expected a positive integer "
            "or (height, width).")
    return tuple(int(d) for d in size)


def _list_folder(path, argument, class_names=None):
    """`(class_names, files, labels)` of a folder with one sub-folder per
    class (sorted by name; images found recursively, sorted by path)."""
    if not os.path.isdir(path):
        raise ValueError(f"Invalid `{argument}`: {os.fspath(path)!r} is not a folder.")
    found = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if not found:
        raise ValueError(
            f"Invalid `{argument}`: {os.fspath(path)!r} has no class sub-folders "
            "(expected one folder of images per class).")
    if class_names is not None and found != list(class_names):
        raise ValueError(
            f"Invalid `{argument}`: its class folders {found} differ from the "
            f"training classes {list(class_names)}.")
    files, labels = [], []
    for label, name in enumerate(found):
        for root, dirs, names in os.walk(os.path.join(path, name), followlinks=True):
            dirs.sort()
            for file in sorted(names):
                if file.lower().endswith(_IMAGE_EXTENSIONS):
                    files.append(os.path.join(root, file))
                    labels.append(label)
    if not files:
        raise ValueError(
            f"Invalid `{argument}`: {os.fspath(path)!r} has no images "
            f"({', '.join(_IMAGE_EXTENSIONS)}) in its class folders.")
    return tuple(found), np.array(files), np.array(labels, "int32")


def _image_loader(size):
    tf = _tf()

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        image = tf.image.resize(image, size, "bilinear")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        image.set_shape((*size, 3))
        return image

    return load


def _decode_files(files, size, batch=256):
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices(files).map(
        _plain(_image_loader(size)), num_parallel_calls=_autotune(), deterministic=True)
    return np.concatenate(list(ds.batch(batch).as_numpy_iterator()))


def _channel_stats(batches):
    """Per-channel mean and (population) std of uint8 image batches in [0, 1]."""
    total = squares = count = 0
    for x in batches:
        x = x.astype("float64") / 255.0
        total = total + x.sum(axis=(0, 1, 2))
        squares = squares + (x ** 2).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return tuple(mean.tolist()), tuple(np.maximum(std, 1e-3).tolist())


def image_folder(path, image_size, batch_size=128, validation_fraction=0.1, seed=0,
                 augment=True, test_path=None, *, split_seed=0, cache=True,
                 mean=None, std=None, eval_batch_size=None):
    """An `ImageDataset` from a local folder with one sub-folder of images
    per class, like `keras.utils.image_dataset_from_directory`: classes
    sorted by folder name; `.bmp`, `.gif`, `.jpeg`, `.jpg` and `.png` files
    (searched recursively) decoded as RGB and resized (bilinear) to
    `image_size`. Training augmentation: a random crop of the image padded
    with `min(h, w) // 8` zeros and a horizontal flip. Images are normalised
    with the per-channel mean and std of the training images (computed once,
    unless given).

    Args:
        path: The training folder.
        image_size: `(height, width)` or one int for square images.
        batch_size: Global batch size.
        validation_fraction: Seeded fraction of the images held out for
            validation; 0 for none.
        seed: Seed of the training order and augmentation.
        augment: True (crop and flip), False, or one of `AUGMENTATIONS`.
        test_path: Optional test folder with the same class sub-folders.
        split_seed: Seed of the held-out validation images.
        cache: Decode every image once into memory (uint8; fast epochs).
            False decodes the files again every epoch (large folders).
        mean: Per-channel means of images in [0, 1] (with `std`): skips
            computing them.
        std: Per-channel standard deviations.
        eval_batch_size: Batch size of validation and test (default
            `batch_size`).

    Returns:
        An `ImageDataset` with `class_names`; `test` is None without
        `test_path`.

    Raises:
        ValueError: If a folder does not exist, has no class sub-folders or
            no images, the test classes differ, or for bad arguments.

    Example:

    >>> flowers = image_folder("/data/flowers/train", 64, batch_size=64,
    ...                        test_path="/data/flowers/test")
    >>> flowers.class_names, flowers.input_shape
    (('daisy', 'rose', 'tulip'), (64, 64, 3))
    """
    size = _check_image_size(image_size)
    batch_size = check_int("batch_size", batch_size, 1)
    eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    eval_batch_size = eval_batch_size or batch_size
    validation_fraction = _check_fraction(validation_fraction)
    seed = check_int("seed", seed, 0)
    split_seed = check_int("split_seed", split_seed, 0)
    augment = _check_augment(augment, "crop_flip")
    mean, std = _check_mean_std(mean, std, 3)
    class_names, files, labels = _list_folder(path, "path")
    train_index, val_index = _split_indices(len(files), validation_fraction, split_seed)
    padding = max(1, min(size) // 8)
    load_image = _image_loader(size)
    tf = _tf()

    def eval_set(eval_files, eval_labels):
        if cache:
            return _eval_from_arrays(_decode_files(eval_files, size), eval_labels,
                                     eval_batch_size, mean, std)
        normalize = normalizer(np.uint8, mean, std)
        ds = tf.data.Dataset.from_tensor_slices((eval_files, eval_labels)).map(
            _plain(lambda f, y: (load_image(f), y)), num_parallel_calls=_autotune(),
            deterministic=True)
        return ds.batch(eval_batch_size).map(
            _plain(lambda x, y: (normalize(x), y)), num_parallel_calls=_autotune(),
            deterministic=True).prefetch(_autotune())

    train_files, train_labels = files[train_index], labels[train_index]
    common = dict(augment=augment, padding=padding)
    if cache:
        images = _decode_files(train_files, size)
        if mean is None:
            mean, std = _channel_stats(np.array_split(images, max(1, len(images) // 512)))
        train = _IndexedTrainingSet(len(images), batch_size, seed, images.shape[1:],
                                    np.uint8, images=images, labels=train_labels,
                                    mean=mean, std=std, **common)
    else:
        if mean is None:
            stream = tf.data.Dataset.from_tensor_slices(train_files).map(
                _plain(load_image), num_parallel_calls=_autotune()).batch(256)
            mean, std = _channel_stats(stream.as_numpy_iterator())
        with tf.device("/CPU:0"):
            file_table = tf.constant(train_files)
            label_table = tf.constant(train_labels)

        def load_example(index):
            return load_image(tf.gather(file_table, index)), tf.gather(label_table, index)

        train = _IndexedTrainingSet(len(train_files), batch_size, seed, (*size, 3),
                                    np.uint8, load_example=load_example,
                                    mean=mean, std=std, **common)
    train.source = {"kind": "folder", "path": os.path.abspath(os.fspath(path)),
                    "image_size": list(size), "validation_fraction": validation_fraction,
                    "split_seed": split_seed, "files": array_digest(
                        np.array([str(f) for f in train_files]), train_labels)}
    validation = None if val_index is None else eval_set(files[val_index], labels[val_index])
    test = None
    if test_path is not None:
        _, test_files, test_labels = _list_folder(test_path, "test_path", class_names)
        test = eval_set(test_files, test_labels)
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    return ImageDataset(name, train, validation, test, len(class_names), (*size, 3),
                        class_names)
