"""The backend-specific pieces of freetickets_tf, kept in this one module.

Everything else is written with `keras.ops`. Only the dense gradient needed by
gradient growth depends on the backend's autodiff.
"""

import keras

SUPPORTED_BACKENDS = ("tensorflow",)


def _check_backend():
    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise NotImplementedError(
            f"Gradient growth is not implemented for KERAS_BACKEND={name!r} yet. "
            "Use KERAS_BACKEND=tensorflow, or growth='random' / 'momentum'."
        )


def make_loss_gradient_fn(model, variables):
    """Returns `fn(x, y) -> [dLoss/dv for v in variables]` on one batch.

    The loss is the model's compiled loss in training mode. The pass runs in a
    `keras.StatelessScope`, so it leaves no trace: BatchNorm moving statistics,
    dropout seeds and loss metrics are exactly as before. Because masked
    weights are kept at zero rather than multiplied by the mask in the forward
    pass, the gradient is dense, defined at the inactive positions too.
    """
    _check_backend()
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def loss_gradients(x, y):
        with tf.GradientTape() as tape:
            with keras.StatelessScope():
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        return tape.gradient(loss, variables)

    return loss_gradients
