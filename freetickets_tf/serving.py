"""Serving an ensemble: plain-Keras members and a TensorFlow SavedModel.

A trained ticket carries what only training needs: the boolean mask and
exploration record of every kernel, and layers of `freetickets_tf`.
`masking.strip_sparsity` (here also `fold_masks`) turns a ticket into a
plain Keras model with the same predictions; `export_saved_model` writes an `EnsembleModel` of folded members
as a SavedModel that TensorFlow Serving, or `tf.saved_model.load` in a
process without `freetickets_tf`, can run.
"""

import os

import keras

from freetickets_tf import backend
from freetickets_tf import io
from freetickets_tf import masking
from freetickets_tf.data.preprocessing import normalizer

ENDPOINT = "serve"
SCALED_ENDPOINT = "serve_scaled"
SIGNATURE = "serving_default"

# The name this module gave it first; `strip_sparsity` lives beside `sparsify`.
fold_masks = masking.strip_sparsity


def _serving_function(model, preprocessing, dtype):
    """`inputs -> outputs` of the SavedModel for inputs of `dtype`, prepared
    by the same function as the training pipeline (`data.normalizer`),
    so a served uint8 image gives the probabilities evaluation gives."""
    import tensorflow as tf

    dtype = tf.as_dtype(dtype)
    if preprocessing is None:
        return lambda inputs: model(inputs, training=False)
    trained_on = preprocessing.get("input_dtype") or "float32"
    if dtype == tf.uint8 and trained_on != "uint8":
        raise ValueError(
            f"Invalid `input_signature`: uint8 inputs, but the members were trained "
            f"on {trained_on} images. Use a float32 signature.")
    if not (dtype == tf.uint8 or dtype.is_floating):
        raise ValueError(
            f"Invalid `input_signature`: dtype {dtype.name}; expected uint8 or a "
            "float dtype.")
    # A float image is taken as already in [0, 1], as `apply_preprocessing` does.
    normalize = normalizer(
        "uint8" if dtype == tf.uint8 else "float32", preprocessing.get("mean"),
        preprocessing.get("std"))
    if dtype == tf.uint8 or trained_on != "uint8":
        return lambda inputs: model(normalize(inputs), training=False)

    def serve_scaled(inputs):
        # Images converted to float without the division by 255 would be
        # served silently wrong: refuse them, as `apply_preprocessing` does.
        check = tf.debugging.assert_less_equal(
            tf.reduce_max(inputs), tf.cast(1.0 + 1e-6, inputs.dtype),
            message="float images above 1: the members were trained on uint8 "
                    "images scaled to [0, 1]; send uint8 to 'serving_default', "
                    "or divide by 255")
        with tf.control_dependencies([check]):
            return model(normalize(inputs), training=False)

    return serve_scaled


def _check_backend():
    backend.require_backend(
        "SavedModel export",
        "tensorflow",
        "Tickets and run directories are .keras files that load on every "
        "backend: export from a process with KERAS_BACKEND=tensorflow (e.g. "
        "`KERAS_BACKEND=tensorflow freetickets-export --run_dir ... --output "
        "...`).",
    )


def _check_replaceable(path):
    """Only an empty directory or an earlier SavedModel may be replaced, so a
    mistyped `path` cannot delete unrelated files."""
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or (
        os.listdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb"))
    ):
        raise ValueError(
            f"Invalid `path`: {path!r} exists and is not a SavedModel directory. "
            "Choose a new path, or remove it first."
        )


def export_saved_model(ensemble, path, input_signature=None, verbose=True):
    """Writes an ensemble as a TensorFlow SavedModel for serving.

    The masks of every member are folded (`fold_masks`), so the SavedModel
    holds plain kernels and no mask variables. Its endpoint `serve`, also the
    `serving_default` signature, takes a batch of shape `(None, *input_shape)`
    and returns a dict: `"probabilities"` `(batch, classes)`, the ensemble
    prediction, and `"member_probabilities"` `(batch, members, classes)`.

    The signature takes the raw images the members were trained on: with the
    ensemble's `preprocessing` (from `EnsembleModel.from_run`), uint8 images
    for a run trained on uint8 images, which the SavedModel scales by 1/255
    and normalises exactly as training did; a second endpoint
    `serve_scaled` then takes float32 images already in [0, 1]. Without
    `preprocessing` it takes float32 inputs as the members see them.

    The export is atomic: it is written to a temporary directory beside
    `path` and renamed into place when complete, so an existing SavedModel at
    `path` stays intact if the export fails.

    Args:
        ensemble: An `EnsembleModel`.
        path: Directory of the SavedModel. If it exists it must be an earlier
            SavedModel (or empty); it is replaced.
        input_signature: Optional `tf.TensorSpec`, or a list of one, for the
            input; by default `(None, *input_shape)` of the training images'
            dtype (float32 without `preprocessing`).
        verbose: Whether to print what was written.

    Raises:
        NotImplementedError: the Keras backend is not TensorFlow.
        ValueError: `ensemble` is not an `EnsembleModel`, `path` exists and
            is not a SavedModel, or `input_signature`'s dtype is not one the
            ensemble's preprocessing accepts.

    Example:

    >>> export_saved_model(EnsembleModel.from_run("runs/edst"), "exported/edst")
    >>> serving = tf.saved_model.load("exported/edst")
    >>> serving.signatures["serving_default"](inputs=x_uint8)["probabilities"]
    """
    _check_backend()
    import tensorflow as tf

    # Not `isinstance(ensemble, EnsembleModel)`: `ensemble_model` imports this
    # module (for `EnsembleModel.export`), never the other way round.
    if not isinstance(ensemble, keras.Model) or not callable(getattr(ensemble, "stripped", None)):
        raise ValueError(
            f"Invalid `ensemble`: expected an EnsembleModel, got "
            f"{type(ensemble).__name__}. Wrap a single model as "
            "`EnsembleModel([model])`."
        )
    path = os.path.abspath(os.fspath(path))
    _check_replaceable(path)
    preprocessing = ensemble.preprocessing
    trained_on = (preprocessing or {}).get("input_dtype") or "float32"
    if input_signature is None:
        input_signature = tf.TensorSpec(
            (None, *ensemble.member_input_shape), trained_on, name="inputs"
        )
    if not isinstance(input_signature, (list, tuple)):
        input_signature = [input_signature]
    serving_model = ensemble.stripped(return_member_probabilities=True)
    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    archive.add_endpoint(
        ENDPOINT, _serving_function(serving_model, preprocessing,
                                    input_signature[0].dtype),
        input_signature=input_signature)
    with_scaled = preprocessing is not None and trained_on == "uint8"
    if with_scaled:
        scaled = [tf.TensorSpec(input_signature[0].shape, tf.float32, name="inputs")]
        archive.add_endpoint(
            SCALED_ENDPOINT, _serving_function(serving_model, preprocessing,
                                               tf.float32),
            input_signature=scaled)
    with io.atomic_directory(path) as tmp:
        archive.write_out(tmp, verbose=False)
    if verbose:
        spec = input_signature[0]
        print(
            f"Saved SavedModel at {path!r}: {ensemble.num_members} members, "
            f"input {tuple(spec.shape)} {tf.as_dtype(spec.dtype).name}; "
            f"signature {SIGNATURE!r} (endpoint {ENDPOINT!r}) returns "
            f"'probabilities' (batch, {ensemble.num_classes}) and "
            f"'member_probabilities' (batch, {ensemble.num_members}, "
            f"{ensemble.num_classes})"
            + (f"; endpoint {SCALED_ENDPOINT!r} takes float32 images in [0, 1]."
               if with_scaled else ".")
        )
