"""The backend-specific pieces of freetickets_tf, kept in this one module.

Everything else is written with `keras.ops`. Two things depend on the
backend:

* the dense gradient needed by gradient growth, which uses the backend's
  autodiff (`tf.GradientTape` on TensorFlow, `jax.grad` on JAX);
* how a masked kernel stays masked during training. TensorFlow runs the
  optimizer on the live variables, so a kernel constraint that reads the mask
  variable zeroes the inactive weights after every step. JAX runs the whole
  train step statelessly on arrays taken from the variables at the start of
  an epoch: a constraint there would read a stale (or placeholder) mask, so
  masked layers mask their kernel in the forward pass instead
  (`masks_in_forward_pass`).
"""

import keras
import numpy as np

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def _check_backend():
    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise NotImplementedError(
            f"Gradient growth is not implemented for KERAS_BACKEND={name!r}. "
            f"Use KERAS_BACKEND in {SUPPORTED_BACKENDS}, or growth='random' / "
            "'momentum'."
        )


def masks_in_forward_pass():
    """Whether masked layers apply their mask in `call` (JAX) rather than
    through a kernel constraint after each optimizer step (TensorFlow)."""
    return keras.backend.backend() == "jax"


def make_loss_gradient_fn(model, variables):
    """Returns `fn(x, y) -> [dLoss/dv for v in variables]` on one batch.

    The loss is the model's compiled loss in training mode. The pass leaves no
    trace: BatchNorm moving statistics, dropout seeds and loss metrics are
    exactly as before. The gradient is dense, defined at the inactive
    positions too: on TensorFlow the masked weights are zeros in the kernel,
    on JAX the forward pass masks them with a straight-through gradient.
    """
    _check_backend()
    if keras.backend.backend() == "jax":
        return _jax_loss_gradient_fn(model, variables)
    return _tensorflow_loss_gradient_fn(model, variables)


def _tensorflow_loss_gradient_fn(model, variables):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def loss_gradients(x, y):
        with tf.GradientTape() as tape:
            with keras.StatelessScope():
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        return tape.gradient(loss, variables)

    return loss_gradients


def _jax_loss_gradient_fn(model, variables):
    import jax

    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    missing = [v.path for v in variables if id(v) not in position]
    if missing:
        raise ValueError(
            f"Cannot take the loss gradient of {missing}: not trainable "
            "variables of the model."
        )
    wanted = [position[id(v)] for v in variables]

    def unscaled_loss(trainable, non_trainable, metrics, optimizer, x, y):
        # Keras' own stateless loss (regularisers included); the unscaled
        # loss, so mixed-precision loss scaling cannot disturb the scores.
        _, (loss, *_) = model.compute_loss_and_updates(
            trainable, non_trainable, metrics, x, y, None,
            training=True, optimizer_variables=optimizer,
        )
        return loss

    gradient = jax.jit(jax.grad(unscaled_loss))

    def loss_gradients(x, y):
        # Batches from a tf.data pipeline arrive as TensorFlow tensors.
        x, y = keras.tree.map_structure(np.asarray, (x, y))
        # Read at call time: the callback has synced the trainer's live state
        # back into the variables by touching `callback.model`.
        grads = gradient(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables],
            [v.value for v in model.optimizer.variables],
            x,
            y,
        )
        return [grads[i] for i in wanted]

    return loss_gradients
