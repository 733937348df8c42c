"""Command-line scripts (installed as `freetickets_tf.scripts`)."""
