"""SGD with the update rule of `torch.optim.SGD`, the original code's optimizer.

Keras' `SGD` and PyTorch's differ in two ways that change what a run trains:

* **Weight decay.** `torch.optim.SGD(weight_decay=wd)` is coupled L2: `wd * w`
  is added to the gradient *before* the momentum, so it is accumulated by the
  momentum like any gradient. Keras' `weight_decay` is decoupled
  (`w <- w - lr * wd * w`, outside the momentum): at momentum 0.9 it is about
  10x weaker over a run.
* **Where the learning rate sits.** PyTorch keeps a momentum buffer of
  gradients, `v <- mu * v + g`, and steps `w <- w - lr * v`; Keras keeps a
  velocity that already holds the learning rate, `v <- mu * v - lr * g`,
  `w <- w + v`. With a constant learning rate both are the same; after a
  learning-rate drop PyTorch's next step is at once 10x smaller, Keras' keeps
  the old velocity.

`TorchSGD` computes exactly PyTorch's rule (dampening 0), on every Keras
backend, and keeps its buffer in `momentums` as Keras' SGD does, so momentum
growth and the slot reset of DST find it. `make_sgd` builds the recipes'
optimizer from a `weight_decay_mode`.
"""

import keras
from keras import ops

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_momentum
from freetickets_tf._validation import check_weight_decay

# "coupled": torch.optim.SGD's L2 (the original's); "decoupled": Keras' own.
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
# Which parameters weight decay reaches: "all" trainable parameters (the
# original: weights, biases and normalisation scales and offsets), or only
# "kernels", the parameters with two or more dimensions (not biases, not
# normalisation parameters).
WEIGHT_DECAY_SCOPES = ("all", "kernels")


def decays(variable, scope):
    """Whether weight decay of `scope` reaches `variable`."""
    return scope == "all" or len(variable.shape) >= 2


@keras.saving.register_keras_serializable(package="freetickets_tf")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD with `torch.optim.SGD`'s update rule (coupled weight decay).

    For each parameter `w` with gradient `g`, momentum `mu` and weight decay
    `wd`, as PyTorch computes it:

    ```python
    g = g + wd * w          # coupled L2, before the momentum
    v = mu * v + g          # momentum buffer (starts at zero)
    w = w - lr * v          # nesterov: w = w - lr * (g + mu * v)
    ```

    The decay reaches every trainable parameter (`weight_decay_scope="all"`,
    as `torch.optim.SGD(model.parameters(), ...)` in the original) or only
    kernels, the parameters with two or more dimensions (`"kernels"`: biases
    and normalisation scales and offsets are not decayed).

    Args:
        learning_rate: A float, a `keras.optimizers.schedules` schedule or a
            callable, as for every Keras optimizer.
        momentum: `mu`, in [0, 1).
        nesterov: Nesterov momentum, as PyTorch's `nesterov=True`.
        weight_decay: `wd`, a finite number >= 0 (coupled L2).
        weight_decay_scope: `"all"` or `"kernels"`.
        **kwargs: Other `keras.optimizers.Optimizer` arguments (`clipnorm`,
            `global_clipnorm`, `loss_scale_factor`, ...). Keras' own
            (decoupled) `weight_decay` is not one: use `keras.optimizers.SGD`
            for it.

    Example:

    >>> optimizer = TorchSGD(0.1, momentum=0.9, weight_decay=5e-4)
    >>> model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False,
                 weight_decay=0.0, weight_decay_scope="all", name="torch_sgd",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = check_momentum(momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("Invalid `nesterov`: Nesterov momentum needs "
                             "`momentum` > 0, as in torch.optim.SGD.")
        # Kept apart from Keras' `weight_decay` attribute, which the base
        # class would apply a second time, decoupled.
        self.l2 = check_weight_decay(weight_decay)
        self.weight_decay_scope = check_choice(
            "weight_decay_scope", weight_decay_scope, WEIGHT_DECAY_SCOPES)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2 and decays(variable, self.weight_decay_scope):
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype),
                                                      variable))
        if self.momentum != 0:
            m = self.momentums[self._get_variable_index(variable)]
            momentum = ops.cast(self.momentum, variable.dtype)
            buffer = ops.add(ops.multiply(m, momentum), gradient)
            self.assign(m, buffer)
            gradient = (ops.add(gradient, ops.multiply(buffer, momentum))
                        if self.nesterov else buffer)
        self.assign_sub(variable, ops.multiply(gradient, learning_rate))

    def get_config(self):
        config = super().get_config()
        config.update({
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.l2,
            "weight_decay_scope": self.weight_decay_scope,
        })
        return config


def make_sgd(learning_rate, momentum=0.9, weight_decay=5e-4,
             weight_decay_mode="coupled", weight_decay_scope="all"):
    """The SGD optimizer of a recipe.

    Args:
        learning_rate: Initial learning rate.
        momentum: In [0, 1).
        weight_decay: Finite, >= 0.
        weight_decay_mode: `"coupled"` (`TorchSGD`: the original's
            `torch.optim.SGD`, L2 in the gradient before the momentum) or
            `"decoupled"` (Keras' `SGD` with its decoupled `weight_decay`, and
            Keras' own momentum rule).
        weight_decay_scope: `"all"` trainable parameters (the original) or
            `"kernels"` only (see `TorchSGD`).

    Returns:
        A Keras optimizer.

    Example:

    >>> make_sgd(0.1, 0.9, 5e-4)                   # as the original
    >>> make_sgd(0.1, 0.9, 5e-4, "decoupled")      # Keras' SGD(weight_decay=...)
    """
    check_choice("weight_decay_mode", weight_decay_mode, WEIGHT_DECAY_MODES)
    momentum = check_momentum(momentum)
    weight_decay = check_weight_decay(weight_decay)
    check_choice("weight_decay_scope", weight_decay_scope, WEIGHT_DECAY_SCOPES)
    if weight_decay_mode == "coupled":
        return TorchSGD(learning_rate, momentum=momentum, weight_decay=weight_decay,
                        weight_decay_scope=weight_decay_scope)
    optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum,
                                     weight_decay=weight_decay or None)
    if weight_decay and weight_decay_scope == "kernels":
        # Keras' decoupled decay skips variables by name; a pattern that
        # matches every variable of fewer than two dimensions is not
        # possible, so name the usual ones (Dense/Conv biases, BatchNorm and
        # LayerNorm scales and offsets).
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
