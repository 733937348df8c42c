"""What the command-line scripts share besides flags."""

import os


def quiet_tensorflow():
    """Keeps TensorFlow's start-up and retracing chatter out of the report."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
