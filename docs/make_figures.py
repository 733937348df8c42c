"""Regenerates the README's figures (docs/reliability_diagram.png,
docs/tsne.png) from a short EDST run on the bundled digits (no download).

    python docs/make_figures.py            # about a minute on two CPU cores

The run (MLP-CIFAR10, density 0.2, M=3, 12 epochs: 6 exploring, 2 per
phase, a snapshot after every epoch) goes to a temporary directory; only the
two PNGs are kept.
"""

import os
import shutil
import sys
import tempfile

import freetickets_tf as ft

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    (x, y), (x_test, y_test) = ft.data.load_digits()
    train, val = ft.data.split(x, y, 0.2, seed=0)

    def build():
        return ft.models.get("mlp-cifar10", num_classes=10, input_shape=x.shape[1:])

    config = ft.EnsembleConfig(num_members=3, epochs=12, exploration_epochs=6,
                               density=0.2, batch_size=64, learning_rate=0.05,
                               update_frequency=20, snapshot_every=1, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = os.path.join(folder, "edst")
        ft.train_ensemble("edst", build, train, val, config, run_dir)
        report_dir = os.path.join(folder, "report")
        ft.evaluation.evaluate(run_dir, x_test, y_test, modes=["calibration", "tsne"],
                               output_dir=report_dir, tsne_examples=300)
        for name in ("reliability_diagram.png", "tsne.png"):
            shutil.copyfile(os.path.join(report_dir, name), os.path.join(HERE, name))
            print(os.path.join(HERE, name), file=sys.stderr)


if __name__ == "__main__":
    main()
