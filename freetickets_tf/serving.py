"""Serving an ensemble: plain-Keras members and a TensorFlow SavedModel.

A trained ticket carries what only training needs: the boolean mask and
exploration record of every kernel, and layers of `freetickets_tf`.
`fold_masks` turns a ticket into a plain Keras model with the same
predictions; `export_saved_model` writes an `EnsembleModel` of folded members
as a SavedModel that TensorFlow Serving, or `tf.saved_model.load` in a
process without `freetickets_tf`, can run.
"""

import os

import keras

from freetickets_tf import backend
from freetickets_tf import io
from freetickets_tf import layers as masked_layers
from freetickets_tf import masking
from freetickets_tf.ensemble_model import EnsembleModel

ENDPOINT = "serve"
SIGNATURE = "serving_default"

_BASE_CLASSES = {masked: base for base, masked in masked_layers.MASKED_VERSIONS.items()}


def fold_masks(model):
    """Returns a plain Keras copy of a sparse model, masks applied.

    Every masked layer becomes its Keras base class (`MaskedConv2D` ->
    `Conv2D`, ...) with the same config and the kernel `kernel * mask`; all
    other layers and weights are copied. The copy has no `freetickets_tf`
    layer and no mask variables, and predicts exactly as `model` does.

    Args:
        model: A built Sequential or functional model; nested models work.

    Returns:
        A new, uncompiled `keras.Model`.

    Example:

    >>> sparse = freetickets_tf.sparsify(model, density=0.2, seed=0)
    >>> plain = fold_masks(sparse)
    >>> freetickets_tf.masked_kernels(plain)
    []
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Invalid `model`: expected a keras.Model, got {type(model).__name__}."
        )

    def clone_layer(layer):
        cls = _BASE_CLASSES.get(type(layer), type(layer))
        return cls.from_config(layer.get_config())

    folded = masking.clone_layer_by_layer(model, clone_layer, "fold the masks of")
    masking.copy_weights(model, folded, fold_masks=True)
    return folded


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
    `serving_default` signature, takes a float32 batch of shape
    `(None, *input_shape)` and returns a dict: `"probabilities"`
    `(batch, classes)`, the ensemble prediction, and `"member_probabilities"`
    `(batch, members, classes)`.

    The export is atomic: it is written to a temporary directory beside
    `path` and renamed into place when complete, so an existing SavedModel at
    `path` stays intact if the export fails.

    Args:
        ensemble: An `EnsembleModel`.
        path: Directory of the SavedModel. If it exists it must be an earlier
            SavedModel (or empty); it is replaced.
        input_signature: Optional `tf.TensorSpec`, or a list of one, for the
            input; by default `(None, *input_shape)` float32.
        verbose: Whether to print what was written.

    Raises:
        NotImplementedError: the Keras backend is not TensorFlow.
        ValueError: `ensemble` is not an `EnsembleModel`, or `path` exists and
            is not a SavedModel.

    Example:

    >>> export_saved_model(EnsembleModel.from_run("runs/edst"), "exported/edst")
    >>> serving = tf.saved_model.load("exported/edst")
    >>> serving.signatures["serving_default"](inputs=x)["probabilities"]
    """
    _check_backend()
    import tensorflow as tf

    if not isinstance(ensemble, EnsembleModel):
        raise ValueError(
            f"Invalid `ensemble`: expected an EnsembleModel, got "
            f"{type(ensemble).__name__}. Wrap a single model as "
            "`EnsembleModel([model])`."
        )
    path = os.path.abspath(os.fspath(path))
    _check_replaceable(path)
    if input_signature is None:
        input_signature = tf.TensorSpec(
            (None, *ensemble.member_input_shape), tf.float32, name="inputs"
        )
    if not isinstance(input_signature, (list, tuple)):
        input_signature = [input_signature]
    serving_model = EnsembleModel(
        [fold_masks(member) for member in ensemble.members],
        member_outputs=ensemble.member_outputs,
        return_member_probabilities=True,
        name=ensemble.name,
    )

    def serve(inputs):
        return serving_model(inputs, training=False)

    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    archive.add_endpoint(ENDPOINT, serve, input_signature=input_signature)
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
            f"{ensemble.num_classes})."
        )
