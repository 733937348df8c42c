r"""Trains a sparse network with dynamic sparse training (DST).

Runs on the bundled digits by default, so it needs no download:

    freetickets-train                       # or: python -m freetickets_tf.scripts.train
    freetickets-train --density 0.1 --growth random --epochs 50

It prints the sparsity summary, Keras' progress, and the final test accuracy
and density; `--output_dir` also saves the trained model as a `.keras` file.
"""

import os
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_enum("dataset", "digits", ["digits"], "Training data.")
flags.DEFINE_string("model", "lenet300-100", "Model name (see freetickets_tf.models).")
flags.DEFINE_float("density", 0.2, "Overall fraction of active weights, in (0, 1].")
flags.DEFINE_enum("distribution", "erk", ["erk", "er", "uniform"], "Layer densities.")
flags.DEFINE_integer("epochs", 30, "Training epochs.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("lr", 0.05, "Learning rate of SGD with momentum 0.9.")
flags.DEFINE_integer("update_frequency", 50, "Optimizer steps between topology updates.")
flags.DEFINE_float("death_rate", 0.5, "Fraction of active weights moved per update.")
flags.DEFINE_enum("death_rate_schedule", "constant", ["constant", "cosine"], "Death-rate schedule.")
flags.DEFINE_enum("death", "magnitude", ["magnitude", "set"], "Death criterion.")
flags.DEFINE_enum("growth", "gradient", ["gradient", "random", "momentum"], "Growth criterion.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("output_dir", None, "Where to save the trained model (optional).")
flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA.")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import freetickets_tf as ft

    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = ft.data.load_digits(seed=FLAGS.seed)
    dense = ft.models.get(FLAGS.model, num_classes=10, input_shape=x_train.shape[1:])
    model = ft.sparsify(dense, FLAGS.density, FLAGS.distribution, seed=FLAGS.seed)
    print(ft.sparsity_summary(model))
    model.compile(
        optimizer=keras.optimizers.SGD(FLAGS.lr, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=FLAGS.jit_compile,
    )
    dst = ft.callbacks.DynamicSparsityCallback(
        data=(x_train, y_train),
        update_frequency=FLAGS.update_frequency,
        death_rate=FLAGS.death_rate,
        death_rate_schedule=FLAGS.death_rate_schedule,
        death=FLAGS.death,
        growth=FLAGS.growth,
        seed=FLAGS.seed,
        batch_size=FLAGS.batch_size,
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        callbacks=[dst],
        verbose=2,
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"Test accuracy: {accuracy:.4f}  density: {ft.overall_density(model):.4f}  "
        f"ITOP rate: {history.history['itop_rate'][-1]:.4f}"
    )
    if FLAGS.output_dir:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        path = os.path.join(FLAGS.output_dir, "model.keras")
        ft.io.save_model_atomic(model, path)
        print(f"Saved {path}")


def run():
    """Console-script entry point (`freetickets-train`)."""
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
