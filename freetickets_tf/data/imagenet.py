"""ImageNet from tensorflow-datasets' prepared `imagenet2012`, streamed from
its TFRecord files: random-resized crops of 224 with flips for training,
the centre 224 crop of images resized to 256 for evaluation. Prepared
offline from the manually downloaded archives (`prepare_imagenet`).
"""

import os

import numpy as np

from freetickets_tf.data import _ops as ops
from freetickets_tf.data import preprocessing
from freetickets_tf.data import splits
from freetickets_tf.data.training_set import ImageDataset
from freetickets_tf.data.training_set import TrainingSet

SIZE, RESIZE = 224, 256


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
            "DIR` (or `freetickets_tf.data.prepare_imagenet(MANUAL, DIR)`), "
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


def eval_image(jpeg, size=SIZE, resize=RESIZE):
    """Resize the shorter side to `resize`, centre crop `size`: done as one
    crop of the centre `size / resize` of the shorter side, decoded from
    the JPEG and resized to `size`."""
    tf = ops.tf()
    shape = tf.image.extract_jpeg_shape(jpeg)
    height, width = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(height, width), tf.float32)
                            * (size / resize)), tf.int32)
    side = tf.maximum(side, 1)
    window = tf.stack([(height - side) // 2, (width - side) // 2, side, side])
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    return tf.image.resize(image, [size, size], "bilinear", antialias=True)


def train_image(jpeg, key, flip, size=SIZE):
    """A random-resized crop (area 8%-100%, aspect ratio 3/4-4/3, as
    torchvision's RandomResizedCrop) resized to `size`, flipped at random:
    stateless, from `key`."""
    tf = ops.tf()
    shape = tf.image.extract_jpeg_shape(jpeg)
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=ops.fold(key, 0), min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], crop[0], crop[1]])
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    image = tf.image.resize(image, [size, size], "bilinear")
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, ops.fold(key, 1))
    return image


class StreamTrainingSet(TrainingSet):
    """A tfds split streamed from its TFRecord files (ImageNet): per epoch a
    stateless shuffle of the split's file pieces, a deterministic interleave
    of them, a stateless shuffle within blocks of records, then per-example random-resized crops
    with keys folded from the epoch key and the position in the epoch."""

    def __init__(self, builder, split, examples, batch_size, seed, augment, mean,
                 std, shuffle_buffer, cycle_length=16):
        super().__init__(examples, batch_size, seed, (SIZE, SIZE, 3))
        instructions = builder.info.splits[split].file_instructions
        self._files = [os.fspath(i.filename) for i in instructions]
        self._skips = [int(i.skip) for i in instructions]
        self._takes = [int(i.take) for i in instructions]
        self._features = builder.info.features
        self.augment = augment
        self.shuffle_buffer = shuffle_buffer
        self.mean, self.std = mean, std
        self._cycle = max(1, min(cycle_length, len(self._files)))
        self._normalize = preprocessing.normalizer(np.uint8, mean, std)

    def _epoch(self, key, drop_remainder=False, skip_batches=0):
        import tensorflow_datasets as tfds

        tf = ops.tf()
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(self._files)), ops.fold(key, ops.ORDER), alg="philox")
        pieces = tf.data.Dataset.from_tensor_slices(tuple(
            tf.gather(tf.constant(v), order)
            for v in (self._files, self._skips, self._takes)))
        records = pieces.interleave(
            ops.plain(lambda f, s, t: tf.data.TFRecordDataset(f)
                   .skip(tf.cast(s, tf.int64)).take(tf.cast(t, tf.int64))),
            cycle_length=self._cycle, num_parallel_calls=ops.autotune(),
            deterministic=True)
        # A stateless block shuffle (`Dataset.shuffle` would mix in the global
        # seed): blocks of `shuffle_buffer` records, each permuted by a key
        # folded from the epoch key and the block's index.
        shuffle_key = ops.fold(key, ops.SHUFFLE)

        def permute(block_index, block):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(block)[0]), ops.fold(shuffle_key, block_index),
                alg="philox")
            return tf.gather(block, order)

        records = records.batch(self.shuffle_buffer).enumerate().map(
            ops.plain(permute), num_parallel_calls=ops.autotune(), deterministic=True).unbatch()
        records = records.skip(skip_batches * self.batch_size).enumerate(
            skip_batches * self.batch_size)
        example_key = ops.fold(key, ops.EXAMPLE)
        decoders = {"image": tfds.decode.SkipDecoding()}

        def decode(position, record):
            example = self._features.deserialize_example(record, decoders=decoders)
            jpeg = example["image"]
            if self.augment:
                image = train_image(jpeg, ops.fold(example_key, position), True)
            else:
                image = eval_image(jpeg)
            return self._normalize(image), tf.cast(example["label"], tf.int32)

        ds = records.map(ops.plain(decode), num_parallel_calls=ops.autotune(), deterministic=True)
        return ds.batch(self.batch_size, drop_remainder=drop_remainder)


def load_imagenet(data_dir, batch_size, eval_batch_size, validation_fraction,
                   seed, split_seed, augment, max_examples, mean, std, shuffle_buffer):
    import tensorflow_datasets as tfds

    tf = ops.tf()
    builder = _imagenet_builder(data_dir)
    if builder.info.file_format.name != "TFRECORD":
        raise ValueError(
            f"imagenet2012 in {builder.data_dir} is stored as "
            f"{builder.info.file_format.name}; this pipeline reads TFRecord files "
            "(the tfds default).")
    tfds_splits = builder.info.splits
    n = tfds_splits["train"].num_examples
    if max_examples is not None:
        n = min(n, max_examples)
    # A seeded contiguous slice of the (shuffled at preparation) train split.
    if validation_fraction:
        n_val = splits.validation_count(n, validation_fraction)
        start = int(np.random.default_rng(split_seed).integers(0, n - n_val + 1))
        parts = [f"train[{a}:{b}]" for a, b in ((0, start), (start + n_val, n)) if b > a]
        train_split, val_split = "+".join(parts), f"train[{start}:{start + n_val}]"
    else:
        train_split, val_split = f"train[:{n}]", None
    train = StreamTrainingSet(builder, train_split, tfds_splits[train_split].num_examples,
                                   batch_size, seed, augment, mean, std, shuffle_buffer)
    train.source = {"kind": "tfds", "name": "imagenet2012", "split": train_split,
                    "split_seed": split_seed}
    normalize = preprocessing.normalizer(np.uint8, mean, std)
    decoders = {"image": tfds.decode.SkipDecoding()}

    def evaluation(split):
        ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
        ds = ds.map(ops.plain(lambda e: (normalize(eval_image(e["image"])),
                                      tf.cast(e["label"], tf.int32))),
                    num_parallel_calls=ops.autotune(), deterministic=True)
        return ds.batch(eval_batch_size).prefetch(ops.autotune())

    test_split = "validation" if max_examples is None else f"validation[:{max_examples}]"
    test = evaluation(test_split) if "validation" in tfds_splits else None
    return ImageDataset("imagenet2012", train,
                        evaluation(val_split) if val_split else None, test,
                        1000, (SIZE, SIZE, 3))
