"""One Keras model that averages the predictions of an ensemble (docs/algorithms.md §5).

`EnsembleModel` stacks M tickets into a single model whose one graph runs
every member and returns the mean of their softmax probabilities: the
ensemble prediction of docs/algorithms.md §5. It saves to and loads from one `.keras` file,
and exports to a TensorFlow SavedModel for serving (`freetickets_tf.serving`).
"""

import keras
from keras import ops

from freetickets_tf import _keras_internals as internals
from freetickets_tf import masking
from freetickets_tf import serving
from freetickets_tf._validation import check_choice
from freetickets_tf.tickets import RunDirectory

OUTPUT_KINDS = ("logits", "probabilities")
MEMBER_OUTPUTS = ("auto",) + OUTPUT_KINDS


def _final_layer(model):
    """The layer that produces `model`'s output, or None if it cannot be seen."""
    if isinstance(model, keras.Sequential):
        return model.layers[-1] if model.layers else None
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        # A subclassed model has no graph to inspect.
        return None
    # Functional models list their layers in topological order, but with
    # parallel branches the last one listed need not be the output's.
    return internals.producing_operation(outputs[0])


def _is_softmax(layer):
    if isinstance(layer, keras.layers.Softmax):
        return True
    # `Dense(..., activation="softmax")` and `Activation("softmax")` both
    # hold the function itself.
    return getattr(layer, "activation", None) is keras.activations.softmax


def output_kind(model):
    """Whether a classifier ends in a softmax: `"probabilities"` or `"logits"`.

    The final operation counts: the last layer's `activation` is
    `keras.activations.softmax`, or the last layer is a `keras.layers.Softmax`
    or an `Activation("softmax")`. A nested final sub-model is looked
    through. Anything else, including subclassed models, whose graph cannot be
    inspected, is taken as logits.

    Args:
        model: A built Keras model (or layer).

    Returns:
        `"probabilities"` or `"logits"`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> output_kind(model)
    'probabilities'
    """
    layer = model
    while isinstance(layer, keras.Model):
        layer = _final_layer(layer)
    return "probabilities" if _is_softmax(layer) else "logits"


def _member_shapes(member, index):
    """`(input_shape, output_shape)` of an ensemble member, checked."""
    if not isinstance(member, keras.Model):
        raise ValueError(
            f"Invalid `members[{index}]`: expected a keras.Model, got "
            f"{type(member).__name__}."
        )
    if not member.built:
        raise ValueError(
            f"Invalid `members[{index}]` ({member.name!r}): it is not built. "
            "Give it a `keras.Input` or call `model.build(input_shape)`."
        )
    inputs = getattr(member, "inputs", None)
    if inputs:
        input_shapes = [tuple(x.shape) for x in inputs]
        output_shapes = [tuple(y.shape) for y in member.outputs]
    else:
        # A subclassed model knows its input only from the shape it was
        # built with.
        build_config = member.get_build_config() or {}
        if "input_shape" not in build_config:
            raise ValueError(
                f"Invalid `members[{index}]` ({member.name!r}): its input shape "
                "is unknown. Build it with `model.build(input_shape)`."
            )
        input_shapes = [tuple(build_config["input_shape"])]
        spec = member.compute_output_spec(keras.KerasTensor(input_shapes[0]))
        output_shapes = [tuple(s.shape) for s in keras.tree.flatten(spec)]
    if len(input_shapes) != 1 or len(output_shapes) != 1 or len(output_shapes[0]) != 2:
        raise ValueError(
            f"Invalid `members[{index}]` ({member.name!r}): it has inputs "
            f"{input_shapes} and outputs {output_shapes}. An ensemble member "
            "takes one input and returns one output of shape (batch, classes)."
        )
    return input_shapes[0], output_shapes[0]


def _owned_copy(member, index):
    """A copy of `member` whose variables live under `member_<index>/`.

    Members loaded from files usually share layer names, and variable paths
    are fixed when a layer is built, so M tickets of one architecture would
    all own a `conv2d/kernel`. Building the copy inside a name scope gives
    every variable a distinct path. The copy goes through the member's config,
    as loading a saved ensemble does, so that both yield the same model.
    """
    try:
        config = keras.saving.serialize_keras_object(member)
        with keras.name_scope(f"member_{index}"):
            copy = keras.saving.deserialize_keras_object(config)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise ValueError(
            f"Invalid `members[{index}]` ({member.name!r}): it cannot be "
            f"re-created from its config, which an ensemble needs to save it: "
            f"{error}"
        ) from error
    copy.set_weights(member.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="freetickets_tf")
class EnsembleModel(keras.Model):
    """Averages the softmax probabilities of M classifiers in one model.

    Calling the model runs every member on the same batch, inside one graph
    when compiled, applies a softmax to members that output logits, and
    returns the mean of the members' probabilities (docs/algorithms.md §5).

    The ensemble holds its own copies of the members (same architecture,
    weights and masks), built under the name scopes `member_0`, `member_1`,
    ..., so their variables have distinct paths even when the members share
    layer and model names, as tickets loaded from one run do. `save` writes
    the members' configs and weights into one `.keras` file; masked layers
    keep their masks.

    Args:
        members: Built Keras models with one input of the same shape and one
            output of shape `(batch, classes)`, the same for all.
        member_outputs: `"auto"` (default) decides per member with
            `output_kind`; `"logits"` or `"probabilities"` declares it for
            every member.
        return_member_probabilities: If True, the model returns a dict:
            `"probabilities"` `(batch, classes)` and `"member_probabilities"`
            `(batch, members, classes)`.
        preprocessing: How the members' training images were preprocessed
            (a `TrainingSet.preprocessing()` dict; `from_run` reads it from
            the run), so that `freetickets_tf.evaluation` and the exported
            SavedModel prepare raw images the same way; None: arrays are taken
            as they are, and uint8 arrays are refused. Calling the model
            itself takes prepared float inputs and refuses integer ones.
        name: Name of the model.
        **kwargs: Other `keras.Model` arguments, e.g. `trainable`.

    Attributes:
        member_input_shape: The members' input shape, without the batch axis.
        num_classes: The number of classes `K`.
        member_output_kinds: `"logits"` or `"probabilities"`, per member.

    Example:

    >>> ensemble = EnsembleModel([ticket_0, ticket_1, ticket_2])
    >>> probabilities = ensemble.predict(x)            # (batch, classes)
    >>> ensemble.save("ensemble.keras")
    >>> ensemble = EnsembleModel.from_run("runs/edst")  # the run's tickets
    """

    def __init__(
        self,
        members,
        member_outputs="auto",
        return_member_probabilities=False,
        preprocessing=None,
        name=None,
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.preprocessing = preprocessing
        check_choice("member_outputs", member_outputs, MEMBER_OUTPUTS)
        if not isinstance(members, (list, tuple)):
            raise ValueError(
                f"Invalid `members`: expected a list of keras.Model, got "
                f"{type(members).__name__}."
            )
        if not members:
            raise ValueError("Invalid `members`: the list is empty.")
        input_shape, output_shape = _member_shapes(members[0], 0)
        for i, member in enumerate(members[1:], start=1):
            other_input, other_output = _member_shapes(member, i)
            # The batch axis may differ (None, or fixed by a `batch_size`).
            same_input = other_input[1:] == input_shape[1:]
            if not same_input or other_output[1:] != output_shape[1:]:
                raise ValueError(
                    f"Invalid `members[{i}]` ({member.name!r}): input shape "
                    f"{other_input} and output shape {other_output}, but "
                    f"`members[0]` has input shape {input_shape} and output "
                    f"shape {output_shape}. All members must take the same "
                    "input and predict the same classes."
                )
        self.member_outputs = member_outputs
        self.return_member_probabilities = return_member_probabilities
        self.member_input_shape = input_shape[1:]
        self.num_classes = output_shape[-1]
        self._members = [_owned_copy(member, i) for i, member in enumerate(members)]
        self.member_output_kinds = [
            output_kind(member) if member_outputs == "auto" else member_outputs
            for member in self._members
        ]
        # The members are built, and the ensemble owns no variables of its own.
        self.built = True

    @property
    def members(self):
        """The member models, in order."""
        return list(self._members)

    @property
    def num_members(self):
        """How many members the ensemble averages."""
        return len(self._members)

    def stripped(self, return_member_probabilities=None):
        """This ensemble with every member's masks folded into its kernels
        (`masking.strip_sparsity`): plain Keras members, the same predictions.

        Args:
            return_member_probabilities: None keeps this ensemble's setting.

        Example:

        >>> plain = ensemble.stripped()
        >>> plain.members[0].layers[1].__class__.__name__
        'Dense'
        """
        if return_member_probabilities is None:
            return_member_probabilities = self.return_member_probabilities
        return EnsembleModel(
            [masking.strip_sparsity(member) for member in self._members],
            member_outputs=self.member_outputs,
            return_member_probabilities=return_member_probabilities,
            preprocessing=self.preprocessing, name=self.name)

    def call(self, inputs, training=False):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if "int" in dtype:
            # Integer images would reach the members unscaled (0-255).
            raise ValueError(
                f"Invalid inputs: {dtype} images reach the members as they are, "
                "unscaled. Prepare them as the training images were "
                "(`freetickets_tf.data.apply_preprocessing(x, "
                "ensemble.preprocessing)`), or pass them to "
                "`freetickets_tf.evaluation`, which does, or serve the exported "
                "SavedModel, which takes them raw.")
        member_probabilities = []
        for member, kind in zip(self._members, self.member_output_kinds):
            outputs = member(inputs, training=training)
            # Average in float32 at least: half-precision probabilities of
            # many classes lose the small ones.
            outputs = ops.cast(
                outputs, keras.backend.result_type(outputs.dtype, "float32")
            )
            if kind == "logits":
                outputs = ops.softmax(outputs, axis=-1)
            member_probabilities.append(outputs)
        member_probabilities = ops.stack(member_probabilities, axis=1)
        probabilities = ops.mean(member_probabilities, axis=1)
        if self.return_member_probabilities:
            return {
                "probabilities": probabilities,
                "member_probabilities": member_probabilities,
            }
        return probabilities

    def export(
        self,
        filepath,
        format="tf_saved_model",
        verbose=True,
        input_signature=None,
        **kwargs,
    ):
        """Writes a TensorFlow SavedModel for serving.

        See `freetickets_tf.serving.export_saved_model`: the masks are folded
        into plain Keras layers, and the `serving_default` signature returns
        `"probabilities"` and `"member_probabilities"`.

        Args:
            filepath: Directory of the SavedModel.
            format: Only `"tf_saved_model"`.
            verbose: Whether to print what was written.
            input_signature: Optional `tf.TensorSpec` (or a list of one) of
                the input; by default `(None, *input_shape)` float32.
            **kwargs: Not supported; present for `keras.Model.export`.

        Example:

        >>> ensemble.export("exported/edst")
        """
        check_choice("format", format, ("tf_saved_model",))
        if kwargs:
            raise ValueError(
                f"Unsupported arguments for `EnsembleModel.export`: {sorted(kwargs)}."
            )
        return serving.export_saved_model(
            self, filepath, input_signature=input_signature, verbose=verbose
        )

    @classmethod
    def from_run(cls, path, allow_partial=False, **kwargs):
        """Builds the ensemble of the tickets in a run directory.

        Args:
            path: A run directory (`freetickets_tf.tickets.RunDirectory`).
            allow_partial: Accept a run with fewer tickets than planned.
            **kwargs: Other `EnsembleModel` arguments.

        Raises:
            ValueError: the directory is missing, empty, partial (unless
                `allow_partial`) or corrupt.

        Example:

        >>> ensemble = EnsembleModel.from_run("runs/dst")
        """
        run = RunDirectory.open(path)
        members = run.load_tickets(allow_partial=allow_partial)
        kwargs.setdefault("preprocessing", (run.manifest.get("config") or {}).get(
            "preprocessing"))
        return cls(members, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "members": [
                keras.saving.serialize_keras_object(member) for member in self._members
            ],
            "member_outputs": self.member_outputs,
            "return_member_probabilities": self.return_member_probabilities,
            "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        members = [
            keras.saving.deserialize_keras_object(member, custom_objects=custom_objects)
            for member in config.pop("members")
        ]
        return cls(members, **config)
