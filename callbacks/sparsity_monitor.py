"""`SparsityMonitor`: the sparse model's state in TensorBoard, under `sparsity/`."""

import os

import keras

from freetickets_tf import masking


def _summary_writer(log_dir):
    # TensorBoard's event files are written by `tf.summary`, on every Keras
    # backend, as Keras' own TensorBoard callback does.
    import tensorflow as tf

    return tf.summary.create_file_writer(log_dir)


def write_scalars(log_dir, scalars, step, prefix=""):
    """Writes `{name: value}` as TensorBoard scalars at `step`.

    Args:
        log_dir: Directory of the event file (e.g. `logs/train`).
        scalars: Mapping of tag to number; the tag is `prefix + name`.
        step: Integer step (epoch or optimizer step).
        prefix: Prepended to every tag, e.g. `"evaluation/"`.

    Example:

    >>> write_scalars("logs/evaluation", {"ece": 0.012}, step=0,
    ...               prefix="ensemble/")
    """
    import tensorflow as tf

    writer = _summary_writer(log_dir)
    with writer.as_default():
        for name, value in scalars.items():
            tf.summary.scalar(prefix + name, float(value), step=int(step))
    writer.close()


class SparsityMonitor(keras.callbacks.Callback):
    """Writes the sparse model's state to TensorBoard during `fit`.

    Put it next to Keras' `TensorBoard(log_dir)` with the same `log_dir`: the
    scalars go to `log_dir/train`, beside Keras' own, under `sparsity/`:

    * each epoch (step = epoch, like Keras' `epoch_*` scalars):
      `sparsity/density` (all masked kernels together),
      `sparsity/layer_density/<kernel path>`, `sparsity/itop_rate`, and, with
      the callbacks given, `sparsity/death_rate` (the scheduled one) and
      `sparsity/training_flops` (cumulative);
    * each topology update of `sparsity_callback` (step = optimizer step):
      `sparsity/update/weights_moved`, `sparsity/update/death_rate` and
      `sparsity/update/itop_rate`.

    Args:
        log_dir: The TensorBoard log directory.
        sparsity_callback: The run's `DynamicSparsityCallback`, if any.
        flops_callback: The run's `TrainingFlopsCallback`, if any; put this
            monitor after it in the callbacks list.

    Example:

    >>> dst = freetickets_tf.callbacks.DynamicSparsityCallback(data=(x, y))
    >>> flops = freetickets_tf.callbacks.TrainingFlopsCallback(128, dst)
    >>> sparse.fit(x, y, epochs=5, callbacks=[
    ...     dst, flops, keras.callbacks.TensorBoard("logs"),
    ...     freetickets_tf.callbacks.SparsityMonitor("logs", dst, flops)])
    """

    def __init__(self, log_dir, sparsity_callback=None, flops_callback=None):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(
                f"Invalid `log_dir`: {log_dir!r}. Expected a directory path."
            )
        for name, value, attribute in (
            ("sparsity_callback", sparsity_callback, "updates_done"),
            ("flops_callback", flops_callback, "total_flops"),
        ):
            if value is not None and not hasattr(value, attribute):
                raise ValueError(
                    f"Invalid `{name}`: {type(value).__name__} has no "
                    f"`{attribute}`; pass the run's "
                    + ("DynamicSparsityCallback." if attribute == "updates_done"
                       else "TrainingFlopsCallback.")
                )
        self.log_dir = os.fspath(log_dir)
        self.sparsity_callback = sparsity_callback
        self.flops_callback = flops_callback
        self._writer = None
        self._updates_seen = 0

    def _scalars(self, values, step):
        import tensorflow as tf

        with self._writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(f"sparsity/{name}", float(value), step=int(step))

    def on_train_begin(self, logs=None):
        self._writer = _summary_writer(os.path.join(self.log_dir, "train"))
        if self.sparsity_callback is not None:
            self._updates_seen = self.sparsity_callback.updates_done

    def on_train_batch_end(self, batch, logs=None):
        # A Python counter: looking costs no device read.
        dst = self.sparsity_callback
        if dst is None or dst.updates_done == self._updates_seen:
            return
        self._updates_seen = dst.updates_done
        update = dict(dst.last_update)
        step = update.pop("step")
        self._scalars({f"update/{k}": v for k, v in update.items()}, step)

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        values = {
            "density": masking.overall_density(model),
            "itop_rate": masking.itop_rate(model),
        }
        values.update(
            {f"layer_density/{path}": d for path, d in masking.layer_densities(model).items()}
        )
        if self.sparsity_callback is not None:
            values["death_rate"] = self.sparsity_callback.scheduled_death_rate()
        if self.flops_callback is not None:
            values["training_flops"] = self.flops_callback.total_flops
        self._scalars(values, epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        """The constructor arguments, less the callbacks (not serialisable)."""
        return {"log_dir": self.log_dir}
