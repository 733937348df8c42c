"""Training augmentation of the original FreeTickets code (docs/algorithms.md §4), batched
and vectorised: random crops of images padded with zeros or by reflection,
and horizontal flips.
"""

from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int
from freetickets_tf.data import _ops as ops

# Augmentations of `from_arrays` / `load(augment=...)`: a random crop of the
# image padded by `padding` pixels (zeros, or a reflection of the border
# excluding the edge like `np.pad(mode="reflect")`), and/or a horizontal flip.
AUGMENTATIONS = ("crop_flip", "reflect_crop_flip", "crop", "reflect_crop", "flip")


def reflect(index, size):
    """Maps indices in `[-(size - 1), 2 (size - 1)]` into `[0, size)` the way
    `np.pad(mode="reflect")` pads (the edge pixel is not repeated)."""
    tf = ops.tf()
    last = size - 1
    return last - tf.abs(last - tf.abs(index))


def crop_flip(images, offsets, flips, padding, mode):
    """Random crops of the padded images, flipped where `flips` is 1.

    Equivalent to `np.pad(image, padding, mode)[dy:dy + h, dx:dx + w]`, then
    `[:, ::-1]` where flipped, for each image, with `(dy, dx) = offsets[i]`
    in `[0, 2 padding]`, but without materialising the padded images: two
    gathers of precomputed source rows and columns.

    Args:
        images: `(batch, h, w, c)` tensor with static `h`, `w`.
        offsets: `(batch, 2)` int32 crop offsets, or None for no crop.
        flips: `(batch,)` int32 in {0, 1}, or None for no flip.
        padding: Pixels of padding on each side.
        mode: `"constant"` (zeros) or `"reflect"`.
    """
    tf = ops.tf()
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    rows = tf.broadcast_to(tf.range(height)[None], [batch, height])
    cols = tf.broadcast_to(tf.range(width)[None], [batch, width])
    if offsets is not None:
        rows = rows + offsets[:, :1] - padding
        cols = cols + offsets[:, 1:] - padding
    if flips is not None:
        cols = tf.where(flips[:, None] > 0, tf.reverse(cols, [1]), cols)
    if offsets is None or mode == "reflect":
        if offsets is not None:
            rows, cols = reflect(rows, height), reflect(cols, width)
        out = tf.gather(images, rows, axis=1, batch_dims=1)
        return tf.gather(out, cols, axis=2, batch_dims=1)
    inside = ((rows >= 0) & (rows < height))[:, :, None, None] & (
        (cols >= 0) & (cols < width))[:, None, :, None]
    out = tf.gather(images, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
    out = tf.gather(out, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
    return tf.where(inside, out, tf.zeros_like(out))


def check_augment(augment, default):
    """The augmentation name for `augment` (True: `default`, False/None: none)."""
    if augment is True:
        return default
    if augment is False or augment is None:
        return None
    return check_choice("augment", augment, AUGMENTATIONS)


def check_padding(padding, image_hw):
    if padding is None:
        return max(1, min(image_hw) // 8) if image_hw is not None else 0
    return check_int("padding", padding, 0)
