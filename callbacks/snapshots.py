"""`PeriodicSnapshots`: models kept along a run, for function-space plots."""

import keras

from freetickets_tf._validation import check_int
from freetickets_tf.tickets import RunDirectory


class PeriodicSnapshots(keras.callbacks.Callback):
    """Saves the model every `every` epochs into a run directory's
    `snapshots/` folder, so that `evaluate(..., modes=["tsne"])` can draw
    each member's trajectory through function space.

    Args:
        run: A `freetickets_tf.tickets.RunDirectory` (or the path of an
            existing one).
        every: Epochs between snapshots; the last epoch of `fit` is always
            kept.
        member: The member whose trajectory this is: an int, or a function
            `epoch -> member` (EDST: the phase; exploration belongs to member 0).

    Example:

    >>> run = freetickets_tf.tickets.RunDirectory.create("runs/dst", "dst", 3)
    >>> model.fit(x, y, epochs=100, callbacks=[
    ...     freetickets_tf.callbacks.PeriodicSnapshots(run, every=10, member=0)])
    """

    def __init__(self, run, every, member=0):
        super().__init__()
        self.run = run if isinstance(run, RunDirectory) else RunDirectory.open(run)
        self.every = check_int("every", every, 1)
        if not callable(member):
            check_int("member", member, 0)
        self.member = member

    def _member(self, epoch):
        return self.member(epoch) if callable(self.member) else self.member

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every == 0 or last:
            self.run.save_snapshot(self.model, self._member(epoch), epoch + 1)

    def get_config(self):
        return {"run": self.run.path, "every": self.every,
                "member": None if callable(self.member) else self.member}
