"""Bytes on disk of tickets, snapshots and checkpoints against the same dense
model saved by Keras, side by side in one run.

A run of ``--method`` (EDST by default: M=3 tickets of one run) trains the
README's demo (the bundled digits, MLP-CIFAR10 at density 0.2) for a couple
of epochs with a snapshot every epoch, then the script compares:

* each ticket's `.keras` file with the dense model's (`ticket_over_dense`;
  goal at most 0.35),
* the run's tickets together with one dense model (`tickets_over_dense`;
  goal at most 1.0: the ensemble stores fewer bytes than one dense network),
* each snapshot's file (`snapshot_over_dense`, as compact as a ticket),
* the training checkpoint's model file (optimizer slots included) with the
  dense model's own checkpoint file (`checkpoint_over_dense`),

and, for a convolutional network, WRN-16-4 at density 0.2 saved untrained
(`wrn-16-4`). Every ticket saved again and loaded back, and the WRN
ticket loaded back, hold the same bytes in every variable
(`bit_identical`).

ONE JSON object goes to stdout; progress to stderr. From the repository root:

    python benchmarks/ticket_size.py
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import environment  # noqa: E402
from _common import json_main  # noqa: E402

TICKET_GOAL = 0.35
RUN_GOAL = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="edst")
    parser.add_argument("--model", default="mlp-cifar10")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--conv_model", default="wrn-16-4",
                        help="a convolutional model saved untrained ('' for none)")
    return parser.parse_args(argv)


def _bytes(path):
    return os.path.getsize(path)


def _same_weights(a, b):
    import keras

    pairs = list(zip(a.weights, b.weights))
    return len(a.weights) == len(b.weights) and all(
        x.dtype == y.dtype and keras.ops.convert_to_numpy(x).tobytes()
        == keras.ops.convert_to_numpy(y).tobytes() for x, y in pairs)


def _dense_bytes(model, folder, name, compiled=False):
    """Bytes of `model` saved by plain Keras (compiled: with SGD's slots, as a
    dense run's checkpoint)."""
    import keras

    if compiled:
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)
    path = os.path.join(folder, name)
    model.save(path)
    return _bytes(path)


def run_demo(args, folder):
    import keras

    import freetickets_tf as ft

    (x, y), _ = ft.data.load_digits()
    train, val = ft.data.split(x, y, 0.2, seed=0)

    def build():
        return ft.models.get(args.model, num_classes=10, input_shape=x.shape[1:])

    dense = _dense_bytes(build(), folder, "dense.keras")
    dense_checkpoint = _dense_bytes(build(), folder, "dense_checkpoint.keras", compiled=True)
    config = ft.EnsembleConfig(num_members=args.members, epochs=args.epochs * (
        3 if args.method == "edst" else 1), exploration_epochs=args.epochs,
        density=args.density, batch_size=64, update_frequency=10, snapshot_every=1,
        verbose=0)
    run_dir = os.path.join(folder, "run")
    run = ft.train_ensemble(args.method, build, train, val, config, run_dir)
    directory = ft.tickets.RunDirectory.open(run_dir)
    tickets = [os.path.join(run_dir, t["file"]) for t in run.tickets]
    snapshots = [path for found in directory.snapshots().values() for _, path in found]
    # The training checkpoint of a sparse model: one more epoch of the last
    # ticket, saved as the run saves its checkpoints.
    model = directory.load_ticket(0, compile=False)
    model.compile(optimizer=ft.optimizers.TorchSGD(0.1, momentum=0.9, weight_decay=5e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    model.fit(*train, epochs=1, batch_size=64, verbose=0)
    ft.io.save_model_atomic(model, os.path.join(folder, "checkpoint.keras"))
    checkpoint = _bytes(os.path.join(folder, "checkpoint.keras"))
    # Saved again from the loaded ticket, as the run saves tickets, and
    # loaded once more: the same bytes in every variable.
    saved = []
    for member in range(len(tickets)):
        ticket = directory.load_ticket(member)
        again = os.path.join(folder, f"again_{member}.keras")
        ft.io.save_model_atomic(ticket, again, include_optimizer=False)
        saved.append(_same_weights(keras.saving.load_model(again), ticket))
    return {
        "model": args.model, "method": args.method, "density": args.density,
        "dense_bytes": dense,
        "ticket_bytes": [_bytes(p) for p in tickets],
        "ticket_over_dense": max(_bytes(p) for p in tickets) / dense,
        "tickets_over_dense": sum(_bytes(p) for p in tickets) / dense,
        "snapshots": len(snapshots),
        "snapshot_over_dense": max(_bytes(p) for p in snapshots) / dense,
        "checkpoint_bytes": checkpoint, "dense_checkpoint_bytes": dense_checkpoint,
        "checkpoint_over_dense": checkpoint / dense_checkpoint,
        "bit_identical": all(saved),
    }


def run_conv(args, folder):
    import keras

    import freetickets_tf as ft

    shape = (32, 32, 3) if args.conv_model.startswith(("wrn", "vgg", "resnet")) else (28, 28, 1)
    model = ft.models.get(args.conv_model, num_classes=10, input_shape=shape)
    dense = _dense_bytes(model, folder, "conv_dense.keras")
    sparse = ft.sparsify(model, args.density, seed=0)
    path = os.path.join(folder, "conv_sparse.keras")
    sparse.save(path)
    return {"model": args.conv_model, "density": args.density, "dense_bytes": dense,
            "ticket_bytes": _bytes(path), "ticket_over_dense": _bytes(path) / dense,
            "bit_identical": _same_weights(keras.saving.load_model(path), sparse)}


def run(args):
    with tempfile.TemporaryDirectory() as folder:
        print(f"[ticket_size] {args.method} run of {args.model}", file=sys.stderr)
        demo = run_demo(args, folder)
        conv = run_conv(args, folder) if args.conv_model else None
    goals = {
        f"ticket_over_dense <= {TICKET_GOAL}": demo["ticket_over_dense"] <= TICKET_GOAL
        and (conv is None or conv["ticket_over_dense"] <= TICKET_GOAL),
        f"tickets_over_dense <= {RUN_GOAL}": demo["tickets_over_dense"] <= RUN_GOAL,
        "snapshots as compact as tickets": demo["snapshot_over_dense"]
        <= demo["ticket_over_dense"] * 1.01,
        "bit_identical": demo["bit_identical"] and (conv is None or conv["bit_identical"]),
    }
    return {"benchmark": "ticket_size", "environment": environment(), "demo": demo,
            "conv": conv, "goals": goals}


if __name__ == "__main__":
    json_main(parse_args, run)
