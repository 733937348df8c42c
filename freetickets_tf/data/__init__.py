"""Inputs: where images come from, the one validation split, the one
preprocessing definition, augmentation, training sets, ImageNet and
corrupted test sets.

| module | what it holds |
| --- | --- |
| `sources` | the bundled digits, `.npz` files, prepared tensorflow-datasets splits |
| `splits` | the seeded validation split (`split`, `split_indices`) |
| `preprocessing` | uint8 scaling, per-channel normalisation, fitting images to a shape |
| `augment` | the original's pad-crop-flip augmentation, batched |
| `training_set` | `TrainingSet` (a function of the epoch), `from_arrays`, `from_dataset` |
| `datasets` | CIFAR-10/100, SVHN, CIFAR-10-C, ImageNet as `ImageDataset`s (`load`) |
| `imagenet` | ImageNet streamed from tfds' files, `prepare_imagenet` |
| `folders` | `image_folder`: one sub-folder of images per class |
| `corruptions` | CIFAR-10-C / CIFAR-100-C test sets |

The training split is a `TrainingSet`: the order of an epoch and every
example's augmentation depend only on `(seed, epoch)`, so a run resumed at
epoch `e` sees exactly the batches an uninterrupted one would. Nothing here
downloads: tensorflow-datasets data must be prepared beforehand (`tfds build
NAME --data_dir DIR`; ImageNet: `prepare_imagenet(MANUAL, DIR)`).

Example:

>>> from freetickets_tf import data
>>> (x, y), (x_test, y_test) = data.load_digits()
>>> (x_fit, y_fit), (x_val, y_val) = data.split(x, y, 0.1, seed=0)
>>> train = data.from_arrays(x_fit, y_fit, batch_size=64, seed=1)
>>> model.fit(train.epochs(0, 10), epochs=10,
...           steps_per_epoch=train.steps_per_epoch)
>>> cifar = data.load("cifar10", data_dir="/data/tfds")
"""

from freetickets_tf.data import corruptions
from freetickets_tf.data.augment import AUGMENTATIONS
from freetickets_tf.data.datasets import DATASETS
from freetickets_tf.data.datasets import load
from freetickets_tf.data.folders import image_folder
from freetickets_tf.data.imagenet import prepare_imagenet
from freetickets_tf.data.preprocessing import NORMALIZATION
from freetickets_tf.data.preprocessing import apply_preprocessing
from freetickets_tf.data.preprocessing import normalizer
from freetickets_tf.data.preprocessing import to_unit_range
from freetickets_tf.data.sources import clear_cache
from freetickets_tf.data.sources import load_digits
from freetickets_tf.data.sources import load_npz
from freetickets_tf.data.sources import load_tfds_images
from freetickets_tf.data.splits import split
from freetickets_tf.data.training_set import ImageDataset
from freetickets_tf.data.training_set import TrainingSet
from freetickets_tf.data.training_set import array_digest
from freetickets_tf.data.training_set import from_arrays
from freetickets_tf.data.training_set import from_dataset

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "ImageDataset",
    "NORMALIZATION",
    "TrainingSet",
    "apply_preprocessing",
    "array_digest",
    "clear_cache",
    "corruptions",
    "from_arrays",
    "from_dataset",
    "image_folder",
    "load",
    "load_digits",
    "load_npz",
    "load_tfds_images",
    "normalizer",
    "prepare_imagenet",
    "split",
    "to_unit_range",
]
