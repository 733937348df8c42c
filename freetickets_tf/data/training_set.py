"""The training split as a function of the epoch (`TrainingSet`), made from
arrays or a dataset, and the batched evaluation splits beside it
(`ImageDataset`).

The order of an epoch and every example's augmentation depend only on
`(seed, epoch)` (stateless random ops: nothing depends on how many batches
were drawn before), so a run resumed at epoch `e` sees exactly the batches
an uninterrupted one would, and `epochs(first, last)` feeds
`model.fit(ds, steps_per_epoch=train.steps_per_epoch, epochs=last,
initial_epoch=first)`.
"""

import copy
import dataclasses
import hashlib
import math

import numpy as np

from freetickets_tf._validation import check_int
from freetickets_tf.data import _ops as ops
from freetickets_tf.data import augment as augmentation
from freetickets_tf.data import preprocessing


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
        tf = ops.tf()
        base = tf.constant([self.seed, stream], tf.int64)
        return ops.fold(ops.fold(base, tf.cast(sub, tf.int64)), tf.cast(epoch, tf.int64))

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
        return self._epoch(self._key(ops.TRAIN_STREAM, epoch)).prefetch(ops.autotune())

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
        tf = ops.tf()
        first = check_int("first_epoch", first_epoch, 0)
        last = check_int("last_epoch", last_epoch, first + 1)
        ds = tf.data.Dataset.range(first, last).flat_map(
            ops.plain(lambda e: self._epoch(self._key(ops.TRAIN_STREAM, e))))
        return ds.prefetch(ops.autotune())

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
        batches = self._epoch(self._key(ops.TRAIN_STREAM, epoch), skip_batches=index)
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
        tf = ops.tf()
        seed = check_int("seed", seed, 0)
        start = check_int("start", start, 0)
        drop = self.examples >= self.batch_size
        per_epoch = self.examples // self.batch_size if drop else 1
        first, skip = divmod(start, per_epoch)

        def epoch(e):
            skip_batches = tf.where(e == first, tf.constant(skip, tf.int64), 0)
            return self._epoch(self._key(ops.GROWTH_STREAM, e, seed), drop, skip_batches)

        ds = tf.data.Dataset.counter(first).flat_map(ops.plain(epoch))
        return ds.prefetch(ops.autotune())


class IndexedTrainingSet(TrainingSet):
    """Examples with random access by index: in-memory arrays (`images`) or
    files decoded one by one (`load_example(index) -> (image, label)`).
    Order: a stateless shuffle of the indices; augmentation: crop offsets and
    flips drawn per epoch for every example index, applied batch-wise."""

    def __init__(self, examples, batch_size, seed, input_shape, dtype, *, images=None,
                 labels=None, load_example=None, augment=None, padding=0,
                 mean=None, std=None):
        super().__init__(examples, batch_size, seed, input_shape)
        tf = ops.tf()
        self.dtype = np.dtype(dtype).name
        self.augment = augment
        self.padding = int(padding)
        self.mean, self.std = mean, std
        self._normalize = preprocessing.normalizer(dtype, mean, std)
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
        return augmentation.crop_flip(images, offsets if self.padding else None, flips,
                          self.padding, mode)

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        tf = ops.tf()
        n, batch = self.examples, self.batch_size
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int32), ops.fold(key, ops.ORDER), alg="philox")
        crop = self.augment is not None and "crop" in self.augment and self.padding
        flip = self.augment is not None and "flip" in self.augment
        # One draw per example index for the whole epoch, then looked up in
        # the epoch's order: example i's augmentation depends on (seed,
        # epoch, i) only.
        offsets = (tf.random.stateless_uniform(
            [n, 2], ops.fold(key, ops.OFFSETS), 0, 2 * self.padding + 1, tf.int32,
            alg="philox") if crop else tf.zeros([n, 2], tf.int32))
        flips = (tf.random.stateless_uniform(
            [n], ops.fold(key, ops.FLIPS), 0, 2, tf.int32, alg="philox")
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

            return ds.map(ops.plain(make_batch), num_parallel_calls=ops.autotune(),
                          deterministic=True)

        def load(index, offsets, flips):
            image, label = self._load_example(index)
            return image, label, offsets, flips

        ds = ds.skip(skip_batches * batch).map(
            ops.plain(load), num_parallel_calls=ops.autotune(), deterministic=True)
        return ds.batch(batch, drop_remainder=drop_remainder).map(
            ops.plain(finish), num_parallel_calls=ops.autotune(), deterministic=True)


class DatasetTrainingSet(TrainingSet):
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
    tf = ops.tf()
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
    train = DatasetTrainingSet(dataset, steps, batch_size)
    train.source = {"kind": "dataset", "element_spec": repr(dataset.element_spec)}
    return train


def from_arrays(x, y, batch_size, seed=0, augment=None, mean=None, std=None,
                padding=None):
    """A `TrainingSet` of in-memory arrays.

    Args:
        x: Images, uint8 (scaled to [0, 1] by `preprocessing.PIXEL_SCALE`) or float
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
    augment = augmentation.check_augment(augment, None)
    if augment is not None and x.ndim != 4:
        raise ValueError(
            f"Augmentation {augment!r} needs images of shape (n, h, w, c); "
            f"`x` has shape {x.shape}.")
    padding = augmentation.check_padding(padding, x.shape[1:3] if x.ndim == 4 else None)
    mean, std = preprocessing.check_mean_std(mean, std, x.shape[-1] if x.ndim == 4 else None)
    if augment is not None and "reflect" in augment and padding >= min(x.shape[1:3]):
        raise ValueError(
            f"Invalid `padding`: {padding} is too large to reflect images of "
            f"shape {x.shape[1:3]}.")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype("float32")
    train = IndexedTrainingSet(
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


def evaluation_batches(x, y, batch_size, mean, std):
    """Batched, normalised, un-augmented `(x, y)` in their order."""
    tf = ops.tf()
    with tf.device("/CPU:0"):
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    normalize = preprocessing.normalizer(x.dtype, mean, std)
    return ds.batch(batch_size).map(
        ops.plain(lambda images, labels: (normalize(images), labels)),
        num_parallel_calls=ops.autotune(), deterministic=True).prefetch(ops.autotune())


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
