"""What a recipe checks and derives from its data before a run directory is
made: the training set, that data and model fit, the validation arrays, and
where growth batches come from."""

import numpy as np

from freetickets_tf import masking
from freetickets_tf._validation import check_choice
from freetickets_tf.data.training_set import TrainingSet
from freetickets_tf.data.training_set import array_digest
from freetickets_tf.data.training_set import from_arrays
from freetickets_tf.data.training_set import from_dataset
from freetickets_tf.recipes.config import MONITORS


def training_set(data, batch_size, seed):
    """`data` as a `data.TrainingSet`: each epoch's batches then depend
    only on the seed and the epoch, so a resumed run trains on exactly the
    batches an uninterrupted one would."""
    if isinstance(data, TrainingSet):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return from_arrays(data[0], data[1], batch_size, seed=seed)
    if hasattr(data, "element_spec"):
        return from_dataset(data)
    raise ValueError(
        "Invalid `train_data`: expected `(x, y)` arrays, a "
        "`freetickets_tf.data.TrainingSet` or a batched tf.data.Dataset, "
        f"got {type(data).__name__}."
    )


def check_fits_model(model, train, train_data, validation_data, config, sparse):
    """The data fits the model, the model can be made sparse and the monitor
    exists, checked before a run directory is made (a late error would leave
    one behind)."""
    check_choice("monitor", config.monitor, MONITORS)
    if sparse:
        masking.check_maskable(model)
    if (config.selection == "best" and config.monitor.startswith("val_")
            and validation_data is None):
        raise ValueError(
            f"Invalid `monitor`: {config.monitor!r} needs `validation_data`; "
            "use 'accuracy' or 'loss', or pass validation data.")
    if not isinstance(model.input_shape, list):  # one input
        expected = tuple(model.input_shape[1:])
        shapes = [("train_data", tuple(train.input_shape))]
        if isinstance(validation_data, (tuple, list)):
            shapes.append(("validation_data", np.shape(validation_data[0])[1:]))
        for name, got in shapes:
            if len(expected) != len(got) or any(
                    e is not None and e != g for e, g in zip(expected, got)):
                raise ValueError(
                    f"Invalid `{name}`: its examples have shape {got}; the model "
                    f"takes {expected}.")
    classes = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if not isinstance(data, (tuple, list)) or classes is None:
            continue
        labels = np.asarray(data[1])
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"Invalid `{name}`: labels run from {labels.min()} to {labels.max()}; "
                f"the model has {classes} outputs (classes 0..{classes - 1}).")


def data_identity(data):
    """What defines evaluation data, for a run's identity: the arrays' size
    and digest, or the kind of dataset."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)):
        x, y = (np.asarray(part) for part in data)
        return {"examples": len(x), "sha256": array_digest(x, y)}
    return {"kind": type(data).__name__,
            "element_spec": repr(getattr(data, "element_spec", None))}


def checked_validation_data(data):
    """Validation arrays must pair up and hold numbers: a NaN would make
    every epoch's score NaN, and best-validation selection meaningless."""
    if not isinstance(data, (tuple, list)):
        return data
    if len(data) != 2:
        raise ValueError(
            f"Invalid `validation_data`: expected (x_val, y_val), got {len(data)} parts.")
    x, y = (np.asarray(part) for part in data)
    if len(x) != len(y):
        raise ValueError(
            f"Invalid `validation_data`: x_val has {len(x)} examples, y_val {len(y)}.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(
            f"Invalid `validation_data`: x_val holds {int((~np.isfinite(x)).sum())} "
            "NaN or infinite values.")
    return data


def growth_data(data, train, growth_batch):
    """What the DST callback draws its growth batches from: the training set,
    so that they are preprocessed as the training batches (uint8 images
    scaled), or for fresh batches a user's dataset itself, cycled (skipping
    to batch `step` of it at every update would cost ever more)."""
    if hasattr(data, "element_spec") and growth_batch == "fresh":
        return data
    return train