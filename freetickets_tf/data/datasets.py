"""The tensorflow-datasets image sets of the paper (CIFAR-10/100, SVHN,
CIFAR-10-C, ImageNet) as `ImageDataset`s with the original FreeTickets
augmentation and normalisation (docs/algorithms.md §4): CIFAR-10 pads 4 pixels by
reflection, CIFAR-100 pads 4 zeros, then a random 32x32 crop and a
horizontal flip; images are scaled to [0, 1] and normalised per channel.

Nothing here downloads: the data must be prepared beforehand (`tfds build
NAME --data_dir DIR`; ImageNet: `prepare_imagenet`), and `data_dir=DIR`
points at it.
"""

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int
from freetickets_tf.data import augment as augmentation
from freetickets_tf.data import corruptions
from freetickets_tf.data import imagenet
from freetickets_tf.data import preprocessing
from freetickets_tf.data import sources
from freetickets_tf.data import splits
from freetickets_tf.data import training_set
from freetickets_tf.data.training_set import ImageDataset

DATASETS = ("cifar10", "cifar100", "svhn_cropped", "cifar10_corrupted", "imagenet2012")


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
            validation (docs/algorithms.md §4: 0.1, i.e. 45k / 5k for CIFAR); 0 for none.
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
    batch_size, eval_batch_size, validation_fraction, seed, split_seed = (
        splits.check_split_settings(batch_size, eval_batch_size, validation_fraction,
                                    seed, split_seed))
    max_examples = check_int("max_examples", max_examples, 1, allow_none=True)
    num_classes, input_shape, default_augment = _SETTINGS[name]
    mean, std = preprocessing.check_normalization(normalization, name)
    if name == "cifar10_corrupted":
        if corruption is None or severity is None:
            raise ValueError(
                "`cifar10_corrupted` needs `corruption` (one of "
                f"{', '.join(corruptions.CORRUPTIONS)}) and `severity` (1..5).")
        config = corruptions.tfds_config_name(corruption, severity)
        x, y = sources.decoded_split(f"{name}/{config}", "test", data_dir, max_examples, cache)
        return ImageDataset(f"{name}/{config}", None, None,
                            training_set.evaluation_batches(x, y, eval_batch_size, mean, std),
                            num_classes, input_shape)
    if corruption is not None or severity is not None:
        raise ValueError(
            f"`corruption` and `severity` are for 'cifar10_corrupted', not {name!r}.")
    if name == "imagenet2012":
        if augment not in (True, False, None):
            raise ValueError(
                f"Invalid `augment`: {augment!r}. ImageNet takes True "
                "(random-resized crop and flip) or False.")
        return imagenet.load_imagenet(data_dir, batch_size, eval_batch_size,
                              validation_fraction, seed, split_seed, bool(augment),
                              max_examples, mean, std,
                              check_int("shuffle_buffer", shuffle_buffer, 1))
    augment = augmentation.check_augment(augment, default_augment)
    x, y = sources.decoded_split(name, "train", data_dir, max_examples, cache)
    x_test, y_test = sources.decoded_split(name, "test", data_dir, max_examples, cache)
    train_index, val_index = splits.split_indices(len(x), validation_fraction, split_seed)
    train = training_set.IndexedTrainingSet(
        len(train_index), batch_size, seed, x.shape[1:], x.dtype,
        images=x[train_index], labels=y[train_index], augment=augment,
        padding=_CIFAR_PADDING, mean=mean, std=std)
    train.source = {"kind": "tfds", "name": name, "validation_fraction": validation_fraction,
                    "split_seed": split_seed, "max_examples": max_examples}
    validation = None if val_index is None else training_set.evaluation_batches(
        x[val_index], y[val_index], eval_batch_size, mean, std)
    return ImageDataset(name, train, validation,
                        training_set.evaluation_batches(x_test, y_test, eval_batch_size, mean, std),
                        num_classes, input_shape)
