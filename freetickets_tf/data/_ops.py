"""tf.data plumbing shared by the input modules: TensorFlow imported
lazily (so `freetickets_tf.data` imports without it), AutoGraph-free maps,
and the stateless key streams every training set derives its randomness
from."""


def tf():
    import tensorflow

    return tensorflow


def autotune():
    return tf().data.AUTOTUNE


def plain(function):
    """`function` for tf.data without AutoGraph conversion (no tensor-dependent
    Python control flow here): faster to trace."""
    return tf().autograph.experimental.do_not_convert(function)


# Streams of a training set's key: its epochs and its growth batches.
TRAIN_STREAM, GROWTH_STREAM = 0, 1
# Sub-streams of one epoch's key.
ORDER, OFFSETS, FLIPS, SHUFFLE, EXAMPLE = range(5)


def fold(key, data):
    return tf().random.experimental.stateless_fold_in(key, data, alg="philox")
