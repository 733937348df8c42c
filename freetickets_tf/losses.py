"""The training loss of the recipes: cross-entropy on integer labels."""

import keras


def classification_loss(from_logits, label_smoothing=0.0):
    """Cross-entropy on integer labels; with label smoothing, on one-hot
    labels made inside the loss (Keras' sparse loss has no smoothing).

    Example:

    >>> model.compile(optimizer="sgd", loss=classification_loss(True, 0.1))
    """
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return SmoothedSparseCrossentropy(label_smoothing, from_logits=from_logits)


@keras.saving.register_keras_serializable(package="freetickets_tf")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing on integer labels.

    Example:

    >>> loss = SmoothedSparseCrossentropy(0.1, from_logits=True)
    >>> model.compile(optimizer="sgd", loss=loss)
    """

    def __init__(self, label_smoothing=0.1, from_logits=False,
                 name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1],
                                    dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "from_logits": self.from_logits}
