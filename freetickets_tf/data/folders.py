"""Image classification sets from local folders with one sub-folder of
images per class, like `keras.utils.image_dataset_from_directory`.
"""

import os

import numpy as np

from freetickets_tf.data import _ops as ops
from freetickets_tf.data import augment as augmentation
from freetickets_tf.data import preprocessing
from freetickets_tf.data import splits
from freetickets_tf.data import training_set
from freetickets_tf.data.training_set import ImageDataset

_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


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
            f"({', '.join(_IMAGE_EXTENSIONS)}) in its class ")
    return tuple(found), np.array(files), np.array(labels, "int32")


def _image_loader(size):
    tf = ops.tf()

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        image = tf.image.resize(image, size, "bilinear")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        image.set_shape((*size, 3))
        return image

    return load


def _decode_files(files, size, batch=256):
    tf = ops.tf()
    ds = tf.data.Dataset.from_tensor_slices(files).map(
        ops.plain(_image_loader(size)), num_parallel_calls=ops.autotune(), deterministic=True)
    return np.concatenate(list(ds.batch(batch).as_numpy_iterator()))


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
        test_path: Optional test folder with the same class sub-
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
    size = preprocessing.check_image_size(image_size)
    batch_size, eval_batch_size, validation_fraction, seed, split_seed = (
        splits.check_split_settings(batch_size, eval_batch_size, validation_fraction,
                                    seed, split_seed))
    augment = augmentation.check_augment(augment, "crop_flip")
    mean, std = preprocessing.check_mean_std(mean, std, 3)
    class_names, files, labels = _list_folder(path, "path")
    train_index, val_index = splits.split_indices(len(files), validation_fraction, split_seed)
    padding = max(1, min(size) // 8)
    load_image = _image_loader(size)
    tf = ops.tf()

    def eval_set(eval_files, eval_labels):
        if cache:
            return training_set.evaluation_batches(_decode_files(eval_files, size), eval_labels,
                                     eval_batch_size, mean, std)
        normalize = preprocessing.normalizer(np.uint8, mean, std)
        ds = tf.data.Dataset.from_tensor_slices((eval_files, eval_labels)).map(
            ops.plain(lambda f, y: (load_image(f), y)), num_parallel_calls=ops.autotune(),
            deterministic=True)
        return ds.batch(eval_batch_size).map(
            ops.plain(lambda x, y: (normalize(x), y)), num_parallel_calls=ops.autotune(),
            deterministic=True).prefetch(ops.autotune())

    train_files, train_labels = files[train_index], labels[train_index]
    common = dict(augment=augment, padding=padding)
    if cache:
        images = _decode_files(train_files, size)
        if mean is None:
            mean, std = preprocessing.channel_stats(np.array_split(images, max(1, len(images) // 512)))
        train = training_set.IndexedTrainingSet(len(images), batch_size, seed, images.shape[1:],
                                    np.uint8, images=images, labels=train_labels,
                                    mean=mean, std=std, **common)
    else:
        if mean is None:
            stream = tf.data.Dataset.from_tensor_slices(train_files).map(
                ops.plain(load_image), num_parallel_calls=ops.autotune()).batch(256)
            mean, std = preprocessing.channel_stats(stream.as_numpy_iterator())
        with tf.device("/CPU:0"):
            file_table = tf.constant(train_files)
            label_table = tf.constant(train_labels)

        def load_example(index):
            return load_image(tf.gather(file_table, index)), tf.gather(label_table, index)

        train = training_set.IndexedTrainingSet(len(train_files), batch_size, seed, (*size, 3),
                                    np.uint8, load_example=load_example,
                                    mean=mean, std=std, **common)
    train.source = {"kind": "folder", "path": os.path.abspath(os.fspath(path)),
                    "image_size": list(size), "validation_fraction": validation_fraction,
                    "split_seed": split_seed, "files": training_set.array_digest(
                        np.array([str(f) for f in train_files]), train_labels)}
    validation = None if val_index is None else eval_set(files[val_index], labels[val_index])
    test = None
    if test_path is not None:
        _, test_files, test_labels = _list_folder(test_path, "test_path", class_names)
        test = eval_set(test_files, test_labels)
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    return ImageDataset(name, train, validation, test, len(class_names), (*size, 3),
                        class_names)
