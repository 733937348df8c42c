"""The backend-specific pieces of freetickets_tf, kept in this one module.

Everything else is written with `keras.ops`. Two things depend on the
backend (TensorFlow, JAX or PyTorch):

* the dense gradient needed by gradient growth, which uses the backend's
  autodiff (`tf.GradientTape` on TensorFlow, `jax.grad` on JAX,
  `torch.autograd.grad` on PyTorch);
* how a masked kernel stays masked during training. TensorFlow runs the
  optimizer on the live variables, so a kernel constraint that reads the mask
  variable zeroes the inactive weights after every step. PyTorch's trainer is
  stateful in the same way: every step reads the variables' own parameters
  (updated in place, also under `jit_compile=True`'s `torch.compile`), and the
  optimizer applies the constraint after each update, so a mask a callback
  changes between two steps is what the next step's constraint reads. PyTorch
  therefore takes the constraint path too, which keeps the stored masked
  weights exactly zero and checkpoints sparse, with no extra work in the
  forward pass. JAX runs the whole train step statelessly on arrays taken
  from the variables at the start of an epoch: a constraint there would read
  a stale (or placeholder) mask, so masked layers mask their kernel in the
  forward pass instead (`masks_in_forward_pass`).

Helpers smooth over the rest:

* `compile_array_function` compiles a pure `keras.ops` function the way
  the backend does best (the topology update), and
  `compile_variable_update` one whose results overwrite Keras variables,
  in their memory where the backend allows;
* `top_n_cut` selects the update's threshold the way each backend does
  it fastest, and on PyTorch on a CPU
  `drop_and_grow_in_place` (where `drops_and_grows_in_place`) does a
  layer's whole update in NumPy on the variables' memory;
* `count_true_each`, `host_copies` and `count_newly_true` count masks
  with NumPy where they live on the CPU (XLA's reductions are scalar
  loops there);
* `cond` branches alike inside and outside compiled programs;
* `distribute_batch` shards a growth batch over the devices of a JAX
  `keras.distribution` (tf.distribute's replicas shard theirs in
  `_sharded_gradient_fn`);
* features of one backend only (SavedModel export) call
  `require_backend`, whose error names the backend in use and the
  alternative.
"""

import collections

import keras
import numpy as np

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


def _check_backend():
    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise NotImplementedError(
            f"Gradient growth is not implemented for KERAS_BACKEND={name!r}. "
            f"Use KERAS_BACKEND in {SUPPORTED_BACKENDS}, or growth='random' / "
            "'momentum'."
        )


def require_backend(feature, needed, alternative):
    """Raises `NotImplementedError` unless the Keras backend is `needed`.

    For features of one backend only. The message names the feature, the
    backend it needs, the backend in use and `alternative`, e.g.
    `require_backend("SavedModel export", "tensorflow", "save a .keras file")`.
    """
    name = keras.backend.backend()
    if name != needed:
        raise NotImplementedError(
            f"{feature} needs KERAS_BACKEND={needed}; the Keras backend is "
            f"{name!r}. {alternative}"
        )


def compile_array_function(fn, large=True):
    """`fn`, a pure function of arrays written with `keras.ops`, compiled by
    the backend for arrays that are `large` or not: `tf.function` on
    TensorFlow, with XLA for large arrays (about 2x faster there, but about
    2 s to compile each shape against 0.4 s); `jax.jit` on JAX (running op
    by op would compile every op for every shape instead); on PyTorch eager
    ops (already vectorised: `torch.compile` takes longer to compile than
    an update takes to run). Compiled once per input shape and dtype; pass
    counts as tensors, not Python ints, so that they do not compile a
    program each.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=bool(large))
    if name == "jax":
        import jax

        return jax.jit(fn)
    return fn


def compile_variable_update(fn):
    """`fn(values, *args) -> (new_values, result)`, a pure `keras.ops`
    function whose `new_values` have the nesting, shapes and dtypes of
    `values`, compiled as a program that writes `new_values` into Keras
    variables: `program(variables, *args)` assigns them to `variables` (the
    nesting of `values`) and returns `result`.

    The variables' memory is reused where the backend allows: the update
    then holds no second copy of every variable, and skips writing fresh
    buffers (on one 3.7 M-weight layer with warm caches a third of the
    program's time on JAX, much less with cold ones; benchmarks/RESULTS.md).
    On TensorFlow the program assigns inside one XLA program (outside a
    `tf.distribute` strategy, whose mirrored variables are assigned after
    it); on JAX the variables'
    arrays are donated (an array passed twice, e.g. momentum as both a
    growth score and a slot, is not), so that an old `variable.value` held
    elsewhere is deleted: read the variable again. PyTorch runs `fn`
    eagerly and assigns.

    Example:

    >>> variable = keras.Variable([1.0, 2.0])
    >>> scale = compile_variable_update(lambda values, k: ([v * k for v in values], k))
    >>> scale([variable], 2.0)  # variable now holds [2.0, 4.0]
    """
    name = keras.backend.backend()
    fn = _checked_variable_update(fn)
    if name == "tensorflow":
        return _tensorflow_variable_update(fn)
    if name == "jax":
        return _jax_variable_update(fn)

    def program(variables, *args):
        new_values, result = fn(_values_of(variables), *args)
        _assign_all(variables, new_values)
        return result

    return program


def _values_of(variables):
    return keras.tree.map_structure(lambda v: v.value, variables)


def _assign_all(variables, new_values):
    keras.tree.map_structure(lambda v, x: v.assign(x), variables, new_values)


def _checked_variable_update(fn):
    """`fn`, raising a clear error when its new values are not nested as the
    values it was given (checked when traced, on compiling backends)."""
    def checked(values, *args):
        new_values, result = fn(values, *args)
        try:
            keras.tree.assert_same_structure(values, new_values)
        except (ValueError, TypeError) as error:
            raise ValueError(
                "compile_variable_update: `fn(values, *args)` must return "
                "`(new_values, result)` with `new_values` nested as `values` "
                f"(one new value per variable). {error}") from None
        return new_values, result

    return checked


def _tensorflow_variable_update(fn):
    import tensorflow as tf

    new_values_of = compile_array_function(fn)

    @tf.function(jit_compile=True)
    def in_place(handles, *args):
        new_values, result = fn(handles, *args)
        _assign_all(handles, new_values)
        return result

    concrete = {}  # `in_place`'s concrete functions, by `_call_signature`

    def program(variables, *args):
        handles = _values_of(variables)
        if any(isinstance(h, tf.distribute.DistributedValues)
               for h in tf.nest.flatten(handles)):
            new_values, result = new_values_of(handles, *args)
            _assign_all(variables, new_values)
            return result
        # A `tf.function` call works out a trace type for every argument
        # (1.3 ms of a WRN-16-4's 18 ms update, for its 100 variables and
        # tensors); its concrete function binds them without. A concrete
        # function does not check its variables' shapes: the signature
        # holds them.
        signature = _call_signature((handles, args))
        if signature is None:
            return in_place(handles, *args)
        if signature not in concrete:
            concrete[signature] = in_place.get_concrete_function(handles, *args)
        return concrete[signature](handles, *args)

    return program


def _call_signature(arguments):
    """What a TensorFlow program traced for `arguments` (lists and tuples
    of variables and tensors) depends on: their nesting, kinds, dtypes and
    shapes; None for any other argument (a Python number is traced as a
    constant)."""
    import tensorflow as tf

    if isinstance(arguments, (list, tuple)):
        signature = tuple(map(_call_signature, arguments))
        return None if None in signature else (type(arguments), signature)
    if isinstance(arguments, (tf.Variable, tf.Tensor)):
        kind = "variable" if isinstance(arguments, tf.Variable) else "tensor"
        return kind, arguments.dtype, tuple(arguments.shape)
    return None


def _jax_variable_update(fn):
    import jax

    programs = {}  # by the variables' nesting and which of them are donated

    def program(variables, *args):
        values = _values_of(variables)
        flat, structure = jax.tree_util.tree_flatten(values)
        # An array passed more than once cannot be donated (JAX refuses).
        uses = collections.Counter(id(x) for x in flat + jax.tree_util.tree_leaves(args))
        donated = tuple(uses[id(x)] == 1 for x in flat)
        key = (structure, donated)
        if key not in programs:
            def flat_fn(given, kept, args):
                given, kept = iter(given), iter(kept)
                flat_values = [next(given) if d else next(kept) for d in donated]
                return fn(jax.tree_util.tree_unflatten(structure, flat_values), *args)

            programs[key] = jax.jit(flat_fn, donate_argnums=0)
        new_values, result = programs[key](
            [x for x, d in zip(flat, donated) if d], [x for x, d in zip(flat, donated) if not d],
            args)
        _assign_all(variables, new_values)
        return result

    return program


def count_true(mask):
    """The number of True entries of a boolean array, an int32 scalar on the
    device. On PyTorch `count_nonzero` (6x faster than summing an int32 copy,
    and no copy); elsewhere the sum, which XLA fuses with the comparison
    before it."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.count_nonzero(mask).to(torch.int32)
    return keras.ops.sum(keras.ops.cast(mask, "int32"))


_COUNT_PROGRAMS = {}


def count_true_each(masks):
    """The number of True entries of each boolean array in `masks`, as a
    NumPy int64 array. On a CPU NumPy counts them on the arrays' own memory
    (`_cpu_view`): 4 to 6x faster than a compiled sum there. On an
    accelerator one compiled program and one host read for all of them
    (op-by-op counts cost a dispatch each, 4 ms per update for the 17
    kernels of a WRN-16-4 on JAX)."""
    name = keras.backend.backend()
    masks = list(masks)
    if all(map(_on_cpu, masks)):
        return np.array([np.count_nonzero(_cpu_view(mask)) for mask in masks],
                        dtype=np.int64)
    if name not in _COUNT_PROGRAMS:
        def counts(masks):
            return keras.ops.stack([count_true(mask) for mask in masks])

        _COUNT_PROGRAMS[name] = compile_array_function(counts, large=False)
    counted = _COUNT_PROGRAMS[name](masks)
    return np.asarray(keras.ops.convert_to_numpy(counted), dtype=np.int64)


def host_copies(arrays):
    """NumPy copies of backend arrays (TensorFlow variables too) when every
    one of them lives on the CPU, else None (then counting on the host would
    cost a transfer each): what `count_newly_true` compares against after
    the arrays' variables are overwritten, in their memory."""
    arrays = list(arrays)
    if not all(map(_on_cpu, arrays)):
        return None
    return [np.array(_cpu_view(array)) for array in arrays]


def count_newly_true(before, masks):
    """The number of positions True in `masks` (backend arrays on the CPU)
    and False in `before` (their `host_copies` from before, which it
    overwrites), summed, counted by NumPy on the arrays' own memory: 5 to
    10x faster than XLA's scalar reduction loop on a CPU (a WRN-16-4's
    moved count cost its compiled update 4 of 29 ms)."""
    # In place: a new array per mask would cost its allocation's page faults.
    return sum(int(np.count_nonzero(np.greater(_cpu_view(mask), old, out=old)))
               for old, mask in zip(before, masks))


def _cpu_view(array):
    """A read-only NumPy view of a backend array (or TensorFlow variable) on
    the CPU, without a copy: on TensorFlow through the buffer of a read of
    it (`.numpy()` copies: counting a WRN-16-4's 17 masks took 2.1 ms that
    way, 0.9 ms this way, twice per update)."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        if isinstance(array, tf.Variable) and not isinstance(
                array, tf.distribute.DistributedValues):
            # The read op itself: `convert_to_tensor` adds a device scope,
            # twice the cost (17 reads per count of a WRN-16-4's masks).
            array = tf.raw_ops.ReadVariableOp(resource=array.handle, dtype=array.dtype)
        return np.asarray(memoryview(tf.convert_to_tensor(array)))
    if name == "torch":
        return array.detach().numpy()
    return np.asarray(array)


def _on_cpu(array):
    """Whether a backend array (or TensorFlow variable) lives on the CPU."""
    name = keras.backend.backend()
    if name == "torch":
        return array.device.type == "cpu"
    if name == "jax":
        return all(device.platform == "cpu" for device in array.devices())
    return "CPU" in array.device


# A histogram of 16-bit digits, and the spare buckets of the positions it
# does not count (`_digit_and_rank`).
_BUCKETS = 1 << 16
_SPARE_BUCKETS = 1 << 10
# Fewer than 1 in `_FEW` positions counted: the others are left out of the
# histogram rather than sent to spare buckets (`_digit_and_rank`).
_FEW = 16


def top_n_cut(key, eligible, n, nonnegative=False):
    """The `n` largest `key`s at the `eligible` positions, ties to the lower
    index (as `top_k`), as a threshold and a cut.

    Args:
        key: 1-D int32 keys (`topology.order_key`, `topology.magnitude_key`;
            on PyTorch any real dtype).
        eligible: 1-D boolean mask of the positions to select among.
        n: How many to take, `0 <= n <=` the number eligible (an int or an
            int32 scalar tensor).
        nonnegative: Whether every key is `>= 0` (`magnitude_key`'s are):
            the radix select's first histogram then needs half the
            buckets. A negative key would be selected wrongly.

    Returns:
        `(threshold, last)`: the `n` taken are the eligible keys
        `> threshold` and those `== threshold` at indices `<= last`.

    The threshold is the `n`-th largest eligible key. Under XLA
    (TensorFlow, JAX) a radix select finds it, compiled with the rest of
    the update (`_radix_select`); on PyTorch a partition
    (`_torch_nth_largest_key`). The cut costs a prefix count of the tied
    positions (`nth_true_index`), needed only where more keys tie at the
    threshold than are missing (e.g. many zero gradients); else `last` is
    the size. Under XLA that count branches on the ties (a `cond`) over the
    low digits' bucket indices the radix select has already written, so
    that no new array is written for it: a `cond` writes out every array
    it takes, and one over the tied mask cost TensorFlow 10% of a
    WRN-16-4's update.
    """
    ops = keras.ops
    size = ops.shape(key)[0]
    if keras.backend.backend() == "torch":
        threshold, above, tied = _torch_nth_largest_key(key, eligible, n)
        missing = int(n) - above
        if tied <= missing:
            return threshold, size
        return threshold, nth_true_index(ops.logical_and(eligible, key == threshold), missing)
    threshold, above, tied, tied_at = _radix_select(key, eligible, n, nonnegative)
    missing = ops.convert_to_tensor(n, "int32") - above
    last = cond(tied > missing, lambda: nth_true_index(tied_at(), missing),
                lambda: ops.convert_to_tensor(size, "int32"))
    return threshold, last


def _radix_select(key, eligible, n, nonnegative=False):
    """The `n`-th largest of the int32 `key`s at the `eligible` positions
    under XLA (`n == 0` taken as 1): `(threshold, above, tied, tied_at)`,
    the key, the numbers of eligible keys `> threshold` (fewer than `n`)
    and `== threshold` (at least `n - above`), as device scalars, and a
    function of no arguments returning the mask of the eligible positions
    tied with it, from the low digits' bucket indices.

    A radix select of two 16-bit digits: a histogram of the keys' high
    halves (a scatter-add) finds the bucket holding the `n`-th largest, a
    histogram of the low halves within that bucket the key; both counts
    come from the histograms, without another pass. Keys known to be
    `nonnegative` have a 15-bit high half: 32,768 buckets, whose zeroing
    and search cost half as much (on JAX it also kept a WRN-16-4 update's
    temporaries under 32 MiB, above which glibc maps fresh pages for them
    on every call).
    """
    ops = keras.ops
    rank = ops.maximum(ops.convert_to_tensor(n, "int32"), 1)
    # Digits in key order: the high half, sign included, shifted to
    # [0, 65535] (nonnegative: [0, 32767] as it is); the low half as an
    # unsigned number.
    offset, buckets = (0, 1 << 15) if nonnegative else (32768, 1 << 16)
    high = ops.right_shift(key, 16) + offset
    d_high, in_bucket, bucket_count, _ = _digit_and_rank(high, eligible, rank,
                                                         leave_out=False, buckets=buckets)
    # The keys sharing the bucket are usually few, but not always (ties:
    # the weights grown at zero, when no training step has moved them).
    d_low, from_tied, tied, low_bucket = _digit_and_rank(
        ops.bitwise_and(key, 0xFFFF), ops.logical_and(eligible, high == d_high), in_bucket,
        leave_out=bucket_count < ops.shape(key)[0] // _FEW)
    threshold = ops.left_shift(d_high - offset, 16) + d_low
    return threshold, rank - from_tied, tied, lambda: low_bucket == d_low


def _digit_and_rank(digit, counted, rank, leave_out, buckets=_BUCKETS):
    """For `digit`s below `buckets` (a multiple of 4,096 up to 65,536), of
    which those where `counted`: the largest
    digit value `d` with at least `rank` counted digits `>= d`, the rank that
    is left within bucket `d`, the bucket's count, and each position's
    bucket index (`d` exactly where a counted digit equals `d`).

    The histogram is searched in rows of 256 buckets: the rows' sums (one
    pass over it) find the row, then that row alone the bucket
    (`_last_reaching`). A prefix count over all 65,536 buckets would cost
    half a millisecond per call on a CPU (XLA's cumsum), as much as the
    histogram of a 300,000-weight kernel.

    The positions not counted go to 1,024 spare buckets in turn, or with
    `leave_out` (a boolean, a tensor too: for few counted among many, as
    the keys of one bucket) nowhere, by a negative index, which every
    backend's scatter skips. XLA's scatter branches on each index's range:
    a mix of in and out of range (a drop's 20% of active weights)
    mispredicts that branch (2x slower on a CPU), mostly out of range it
    predicts well and skips the add (the second digit's histogram: 9% of
    the update on TensorFlow at one core); one spare bucket would make
    every add wait for the one before.
    """
    ops = keras.ops
    size = ops.shape(digit)[0]
    # `min(rank, 0)` is 0 (`rank >= 1`) but not a constant: TensorFlow
    # would fold constant spare indices into an array of the keys' length,
    # which every call then reads from memory (two of 4 bytes per weight
    # for each kernel); XLA computes them in the pass that uses them. The
    # histogram starts from it too (`_histogram`).
    zero = ops.minimum(rank, 0)
    spare = buckets + ops.bitwise_and(ops.arange(size, dtype="int32"),
                                      zero + (_SPARE_BUCKETS - 1))
    bucket = ops.where(counted, digit, ops.where(leave_out, -1, spare))
    counts = _histogram(bucket, buckets + _SPARE_BUCKETS, zero)
    # Rows of the whole histogram, spare rows included (never searched):
    # slicing the real buckets out first would copy them.
    rows = ops.reshape(counts, ((buckets + _SPARE_BUCKETS) // 256, 256))
    row, above_row = _last_reaching(_row_sums(rows[:buckets // 256], size), rank)
    row_counts = ops.take(rows, row, axis=0)
    digit, above_digit = _last_reaching(row_counts, rank - above_row)
    return (row * 256 + digit, rank - above_row - above_digit,
            ops.take(row_counts, digit), bucket)


def _histogram(bucket, length, zero):
    """How many of the int32 `bucket` indices fall on each of `length`
    buckets (negative indices nowhere), counted under XLA by a scatter-add
    of ones into an array of `zero`: 0, but computed in the program (from
    the selection's rank), not a constant.

    From a constant, XLA would copy one shared array of zeros into each
    histogram, and those copies, ready from the program's start, are what
    its CPU runtime hands to another thread by the dozen: the kernels'
    passes then interleave on two threads, out of the caches. Computed, the
    zeros are written where the histogram is made, in its kernel's turn
    (`updaters._magnitude_rewire_all`), and the whole program runs on the
    calling thread: a WRN-16-4 update 28.5 -> 24.9 ms on TensorFlow at one
    core (benchmarks/RESULTS.md).
    """
    name = keras.backend.backend()
    if name == "tensorflow" and _in_tensorflow_xla_program():
        import tensorflow as tf

        # XLA skips out-of-range indices; TensorFlow's own kernel would raise.
        return tf.tensor_scatter_nd_add(tf.fill([length], zero), bucket[:, None],
                                        tf.ones_like(bucket))
    if name == "jax":
        from jax import lax

        numbers = lax.ScatterDimensionNumbers(update_window_dims=(),
                                              inserted_window_dims=(0,),
                                              scatter_dims_to_operand_dims=(0,))
        # FILL_OR_DROP: out-of-range indices, negative ones too, add nothing.
        return lax.scatter_add(lax.full((length,), zero), bucket[:, None],
                               lax.full_like(bucket, 1), numbers,
                               mode=lax.GatherScatterMode.FILL_OR_DROP)
    return keras.ops.segment_sum(keras.ops.ones_like(bucket), bucket,
                                 num_segments=length) + zero


def _in_tensorflow_xla_program():
    """Whether TensorFlow is tracing a function that XLA compiles
    (`jit_compile=True`), as its own `cond` asks: TensorFlow has no public
    call for it (`tests/test_backend.py` checks this one)."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _row_sums(rows, total):
    """The sums of the rows of int32 `rows` of counts that add up to at
    most `total`: a float32 matrix-vector product where that is exact
    (`total < 2**24`). XLA's reductions on a CPU are scalar loops, 25 us
    for a histogram's 256 x 256 counts, its dot Eigen's vector code, 6 us
    on TensorFlow: about 1 ms of a WRN-16-4's 28 ms update program there
    (on JAX, whose conversion to float costs what its dot saves, even)."""
    ops = keras.ops
    if total is None or total >= 2**24:
        return ops.sum(rows, axis=1)
    ones = ops.ones((ops.shape(rows)[1],), "float32")
    return ops.cast(ops.matmul(ops.cast(rows, "float32"), ones), "int32")


# Block length of `nth_true_index`'s two-level prefix count.
_BLOCK = 1024


def nth_true_index(mask, n):
    """The index of the `n`-th True entry of a 1-D boolean `mask` (from 1;
    -1 for `n <= 0`); `n` at most the number of True entries.

    A prefix count of the mask, in two levels: the True entries per block
    of 1,024, a prefix count of those (short) to find the block holding the
    `n`-th, and one within that block. A prefix count over the whole mask
    would cost 5 ns per entry under XLA on a CPU (its cumsum), where these
    are two plain passes.

    Example:

    >>> mask = keras.ops.convert_to_tensor([False, True, True, False, True])
    >>> int(nth_true_index(mask, 2))
    2
    """
    ops = keras.ops
    size = ops.shape(mask)[0]
    blocks = -(-size // _BLOCK)
    counts = ops.cast(mask, "int32")
    if blocks * _BLOCK > size:
        counts = ops.concatenate([counts, ops.zeros((blocks * _BLOCK - size,), "int32")])
    counts = ops.reshape(counts, (blocks, _BLOCK))
    per_block = ops.sum(counts, axis=1)
    through = ops.cumsum(per_block)  # True entries up to each block's end
    block = ops.minimum(count_true(through < n), blocks - 1)
    before = ops.take(through, block) - ops.take(per_block, block)
    within = ops.cumsum(ops.take(counts, block, axis=0)) + before
    last = block * _BLOCK + count_true(within < n)
    return ops.where(ops.convert_to_tensor(n) > 0, last, -1)


def _last_reaching(counts, rank):
    """The last index `i` of the `counts` (16 to 256 of them, a multiple of
    16) whose suffix sum (`counts[i:]`) reaches `rank`, and the sum of
    `counts[i + 1:]`: in two levels (the group of 16, then the count within
    it), each a small broadcast sum; one 256 x 256 one made up a third of a
    histogram's fixed cost under XLA on a CPU (34 selections on 1,024 keys:
    6.8 ms against 4.2 on TensorFlow, 11 against 7.8 on JAX)."""
    ops = keras.ops
    groups = ops.reshape(counts, (-1, 16))
    group, above_group = _last_reaching_few(ops.sum(groups, axis=1), rank)
    within = ops.take(groups, group, axis=0)
    index, above_index = _last_reaching_few(within, rank - above_group)
    return group * 16 + index, above_group + above_index


def _last_reaching_few(counts, rank):
    """`_last_reaching` of a few (up to 16) counts, by one broadcast sum of
    the suffixes."""
    ops = keras.ops
    i = ops.arange(ops.shape(counts)[0])
    at_or_above = ops.sum(ops.where(i[None, :] >= i[:, None], counts[None, :], 0), axis=1)
    # At least 0: with nothing to select (`n == 0`) any index will do.
    last = ops.maximum(ops.sum(ops.cast(at_or_above >= rank, "int32")) - 1, 0)
    return last, ops.take(at_or_above, last) - ops.take(counts, last)


def _torch_nth_largest_key(key, eligible, n, on_host=None):
    """`_radix_select`'s threshold and counts on PyTorch, as host values
    (keys of any real dtype), by `_torch_order_statistic` (`on_host` as
    there). The selection runs over the eligible keys alone where they
    are fewer than half (a drop's: a layer's active weights), else over all
    keys with the others put below every key. Reads `n` and the counts on
    the host."""
    import torch

    size = key.numel()
    rank = max(int(n), 1)
    count = int(torch.count_nonzero(eligible))
    if count == 0:  # nothing to select (then n == 0)
        return torch.zeros((), dtype=key.dtype, device=key.device), 0, 0
    gathered = 2 * count < size
    lowest = -float("inf") if key.dtype.is_floating_point else torch.iinfo(key.dtype).min
    # Either way a copy, which the selection may reorder.
    values = key[eligible] if gathered else torch.where(
        eligible, key, torch.full((), lowest, dtype=key.dtype, device=key.device))
    threshold, below, tied = _torch_order_statistic(values, values.numel() - rank, on_host)
    above = values.numel() - below - tied
    if not gathered and threshold == lowest:  # the fill ties with it too
        tied -= size - count
    return threshold, above, tied


def _torch_order_statistic(values, k, on_host=None):
    """The `k`-th smallest (from 0) of the 1-D tensor `values`, and how many
    values lie below it and equal it (host ints). `on_host` (by default: on
    a CPU) by NumPy's introselect on a view of the tensor (`torch.kthvalue`
    is 4 to 10x slower there), which reorders `values`: pass a copy.
    Elsewhere by `torch.kthvalue`."""
    import torch

    if values.device.type == "cpu" if on_host is None else on_host:
        threshold, below, tied = _order_statistic(values.detach().numpy(), k)
        return torch.as_tensor(threshold), below, tied
    threshold = torch.kthvalue(values, k + 1).values
    return (threshold, int(torch.count_nonzero(values < threshold)),
            int(torch.count_nonzero(values == threshold)))


def _order_statistic(array, k):
    """`_torch_order_statistic` of a 1-D NumPy array, which it reorders."""
    array.partition(k)
    threshold = array[k]
    below = int(np.count_nonzero(array[:k] < threshold))
    return threshold, below, k - below + int(np.count_nonzero(array[k:] == threshold))


def drops_and_grows_in_place(kernel):
    """Whether `drop_and_grow_in_place` can update `kernel`'s layer: a
    float32 kernel on PyTorch, on the CPU."""
    value = kernel.value
    return (keras.backend.backend() == "torch" and _on_cpu(value)
            and keras.backend.standardize_dtype(value.dtype) == "float32")


def drop_and_grow_in_place(kernel, mask, explored, scores, n, slots=()):
    """`updaters._magnitude_rewire` of one layer on PyTorch on the CPU, in
    NumPy on the variables' own memory: the `n` active weights of smallest
    `|kernel|` dropped, the `n` positions of largest `|scores|` outside the
    survivors grown (ties: the lower flat index, as `topology.drop_and_grow`),
    the kernel zeroed outside the survivors, the explored record extended
    and each of `slots` zeroed at the grown positions. For a kernel that
    `drops_and_grows_in_place`; `1 <= n <=` its active weights.

    It is the `keras.ops` update in about half the passes over the kernel,
    each of them branch-free (a masked write or `where` on a random mask
    costs 5 to 10x a plain pass on a CPU, in NumPy and PyTorch alike): the
    drop selects among the gathered active weights, the growth among all
    positions with the survivors' keys put below every other; magnitudes
    are compared as the bits of `|x|`, as `topology.magnitude_key` compares
    them (NaN above infinity); and the masks, the kernel and the slots are
    written where they are, at the selected indices or through bitwise
    masks.

    Args:
        kernel, mask, explored: The `MaskedKernel`'s variables.
        scores: Growth scores of the kernel's shape (a tensor, any strides).
        n: Number of weights to move (an int).
        slots: Optimizer slot variables of the kernel.

    Returns:
        The number of positions active now that were not before (an int).
    """
    def flat(variable):
        # A view (`view` refuses strides a flat view cannot have).
        return variable.value.detach().view(-1).numpy()

    weights, active_mask, record = flat(kernel).view(np.int32), flat(mask), flat(explored)
    size = active_mask.size
    # Drop: the n smallest magnitudes among the active weights.
    active = np.flatnonzero(active_mask)
    if not 1 <= n <= active.size:
        raise ValueError(f"Invalid `n`: {n}; drop_and_grow_in_place moves 1 to "
                         f"{active.size} weights of {kernel.path} (its active ones).")
    magnitude = np.bitwise_and(weights[active], 0x7FFFFFFF)
    threshold, below, tied = _order_statistic(magnitude.copy(), n - 1)
    if tied > n - below:  # more tie at the threshold than are missing: the first ones
        dropped = np.concatenate([active[magnitude < threshold],
                                  active[magnitude == threshold][:n - below]])
    else:
        dropped = active[magnitude <= threshold]
    active_mask[dropped] = False  # the survivors, from here on
    # -1 (all bits set) at the survivors, 0 elsewhere.
    survivor_bits = np.negative(active_mask.view(np.int8), dtype=np.int32)
    np.bitwise_and(weights, survivor_bits, out=weights)  # where(survivors, w, 0.0)
    # Grow: the n largest |scores| outside the survivors, whose keys are -1.
    scores = scores.detach().float().numpy()
    key = np.empty(scores.shape, np.int32)  # C order, whatever the scores' strides
    np.bitwise_and(scores.view(np.int32), 0x7FFFFFFF, out=key)
    key = np.bitwise_or(key.reshape(-1), survivor_bits, out=key.reshape(-1))
    threshold, below, tied = _order_statistic(key.copy(), size - n)
    missing = n - (size - below - tied)
    if tied > missing:
        grown = key > threshold
        grown[np.flatnonzero(key == threshold)[:missing]] = True
    else:
        grown = key >= threshold
    regrown = int(np.count_nonzero(grown[dropped]))
    grown = np.flatnonzero(grown)
    active_mask[grown] = True
    np.logical_or(record, active_mask, out=record)
    for slot in slots:
        flat(slot)[grown] = 0
    _bump_versions(kernel, mask, explored, *slots)
    return n - regrown


def _bump_versions(*variables):
    """Bumps the PyTorch version counters of `variables` written through
    NumPy, which PyTorch does not see: a graph that saved one of them before
    (a loss computed, not yet backpropagated) then refuses to backpropagate,
    as after any in-place op, instead of using the new values silently."""
    import torch

    for variable in variables:
        torch.autograd.graph.increment_version(variable.value)


def cond(pred, true_fn, false_fn):
    """`keras.ops.cond`, except on values outside a compiled program: there
    a Python branch on the host value, because JAX's `cond` would trace and
    compile both branches on every eager call."""
    if keras.backend.backend() == "jax":
        import jax

        if not isinstance(pred, jax.core.Tracer):
            return true_fn() if bool(pred) else false_fn()
    return keras.ops.cond(pred, true_fn, false_fn)


def masks_in_forward_pass():
    """Whether masked layers apply their mask in `call` (JAX) rather than
    through a kernel constraint after each optimizer step (TensorFlow,
    PyTorch)."""
    return keras.backend.backend() == "jax"


def make_loss_gradient_fn(model, variables):
    """Returns `fn(x, y) -> [dLoss/dv for v in variables]` on one batch.

    The loss is the model's compiled loss in training mode. The pass leaves
    no trace: BatchNorm moving statistics, dropout seeds and loss metrics
    are exactly as before. Under a `tf.distribute` strategy (the model's)
    each replica takes the gradient of its shard of the batch and the
    replicas' gradients are all-reduced into the whole batch's. The gradient
    is dense, defined at the inactive positions too: on TensorFlow and
    PyTorch the masked weights are zeros in the kernel, on JAX the forward
    pass masks them with a straight-through gradient.
    """
    _check_backend()
    if keras.backend.backend() == "jax":
        return _jax_loss_gradient_fn(model, variables)
    if keras.backend.backend() == "torch":
        return _torch_loss_gradient_fn(model, variables)
    return _tensorflow_loss_gradient_fn(model, variables)


def _no_trace_scope(model):
    """A `StatelessScope` for one training-mode loss pass (TensorFlow,
    PyTorch): every assignment in it (BatchNorm moving statistics, dropout
    seed states, metrics) is discarded.

    The trainable variables are mapped to their current values: weight
    regularizers read their variable through the scope (Keras'
    `Layer._get_regularization_losses`) and would get `None` from an empty
    one. On both backends the mapped value stays differentiable with respect
    to the variable (a read on TensorFlow's tape, the parameter itself on
    PyTorch).
    """
    return keras.StatelessScope(
        state_mapping=[(v, v.value) for v in model.trainable_variables]
    )


def _tensorflow_loss_gradient_fn(model, variables):
    import tensorflow as tf

    # The tape would give a frozen kernel no gradient, and growth would fall
    # back to chance without a word; refuse as the other backends must.
    _trainable_positions(model, variables)

    def loss_gradients(x, y):
        with tf.GradientTape() as tape:
            with _no_trace_scope(model):
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        return tape.gradient(loss, variables)

    strategy = model.distribute_strategy
    if strategy.num_replicas_in_sync == 1:
        return tf.function(loss_gradients, reduce_retracing=True)
    return _sharded_gradient_fn(strategy, loss_gradients)


def _sharded_gradient_fn(strategy, loss_gradients):
    """`loss_gradients` of a global batch under a `tf.distribute` strategy:
    every replica (of every worker) takes the gradient on its own shard of
    the batch, and the replicas' gradients are all-reduced, as in a train
    step. The all-reduced sum is the same on every replica, so every worker
    goes on to the same masks.

    Inside a replica Keras scales the loss (the mean over the shard, plus
    regularisers) by 1/replicas, so for equal shards the sum is the global
    batch's gradient. A batch that does not split evenly (a short last batch)
    weighs each shard's gradient by `replicas * shard / batch`, which keeps
    the sum the global batch's mean loss and counts regularisers once.
    """
    import tensorflow as tf

    from freetickets_tf import distribute

    replicas = strategy.num_replicas_in_sync

    @tf.function(reduce_retracing=True)
    def all_reduced(x, y, batch):
        def on_replica(x, y):
            shard = tf.cast(tf.shape(keras.tree.flatten(x)[0])[0] * replicas, "float32")
            weight = shard / tf.cast(batch, "float32")
            gradients = [g * tf.cast(weight, g.dtype) for g in loss_gradients(x, y)]
            return tf.distribute.get_replica_context().all_reduce("SUM", gradients)

        reduced = strategy.run(on_replica, args=(x, y))
        return [strategy.experimental_local_results(g)[0] for g in reduced]

    def sharded_loss_gradients(x, y):
        (x, y), batch = distribute.split_over_replicas(strategy, (x, y))
        return all_reduced(x, y, batch)

    return sharded_loss_gradients


def _trainable_positions(model, variables):
    """The index of each of `variables` in `model.trainable_variables`, or a
    ValueError naming those that are not there (a frozen layer's kernel, or
    a variable of another model)."""
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    missing = [v.path for v in variables if id(v) not in position]
    if missing:
        raise ValueError(
            f"Cannot take the loss gradient of {missing}: not trainable "
            "variables of the model. Gradient growth needs every masked layer "
            "trainable: unfreeze it, or use growth='random'."
        )
    return [position[id(v)] for v in variables]


def _jax_loss_gradient_fn(model, variables):
    import jax

    wanted = _trainable_positions(model, variables)

    def unscaled_loss(trainable, non_trainable, metrics, optimizer, x, y):
        # Keras' own stateless loss (regularisers included); the unscaled
        # loss, so mixed-precision loss scaling cannot disturb the scores.
        _, (loss, *_) = model.compute_loss_and_updates(
            trainable, non_trainable, metrics, x, y, None,
            training=True, optimizer_variables=optimizer,
        )
        return loss

    gradient = jax.jit(jax.grad(unscaled_loss))

    def loss_gradients(x, y):
        # Batches from a tf.data pipeline arrive as TensorFlow tensors.
        x, y = distribute_batch(keras.tree.map_structure(np.asarray, (x, y)))
        # Read at call time: the callback has synced the trainer's live state
        # back into the variables by touching `callback.model`.
        grads = gradient(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables],
            [v.value for v in model.optimizer.variables],
            x,
            y,
        )
        return [grads[i] for i in wanted]

    return loss_gradients


def distribute_batch(batch):
    """JAX: `batch` (a structure of numpy arrays, the same global batch on
    every process) laid out over the devices as the `keras.distribution` in
    force lays out training data.

    Under `keras.distribution.DataParallel` each device then holds its shard
    of the batch, and a jitted gradient of it is each device's gradient on
    its shard, summed by XLA's all-reduce: the global batch's gradient,
    replicated like the variables, so every device grows the same masks.
    Without a distribution, or for a batch that does not split evenly over
    the devices of the batch axis (a short last batch), the arrays stay as
    they are, and every device takes the whole batch's gradient.

    Example:

    >>> keras.distribution.set_distribution(keras.distribution.DataParallel())
    >>> x, y = distribute_batch((x, y))  # x.sharding: one shard per device
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return batch
    import jax

    mesh = distribution.device_mesh
    shards = mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)]

    def place(array):
        if not array.ndim or array.shape[0] % (shards * jax.process_count()):
            return array
        layout = distribution.get_data_layout(array.shape).backend_layout
        # Each process contributes its part of the global batch.
        local = np.split(array, jax.process_count())[jax.process_index()]
        return jax.make_array_from_process_local_data(layout, local)

    return keras.tree.map_structure(place, batch)


def _torch_loss_gradient_fn(model, variables):
    import torch

    _trainable_positions(model, variables)  # only they require a gradient
    variables = list(variables)

    def loss_gradients(x, y):
        # Batches from a tf.data pipeline arrive as TensorFlow tensors, from
        # a DataLoader as torch tensors (kept where they are).
        x, y = keras.tree.map_structure(
            lambda t: keras.ops.convert_to_tensor(
                t if torch.is_tensor(t) else np.asarray(t)
            ),
            (x, y),
        )
        # `enable_grad`: callbacks may run under `torch.no_grad()`. The
        # scope discards every assignment of the pass (BatchNorm moving
        # statistics, dropout seed states); the trainable variables read as
        # their own parameters, so autograd reaches them. `autograd.grad`
        # returns the gradients without accumulating them into `.grad`, so
        # the next train step starts from what it would have had.
        with torch.enable_grad(), _no_trace_scope(model):
            y_pred = model(x, training=True)
            # The unscaled loss, as on TensorFlow and JAX.
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        grads = torch.autograd.grad(
            loss, [v.value for v in variables], allow_unused=True
        )
        # A variable the loss does not use has gradient zero (as on JAX).
        return [
            torch.zeros_like(v.value) if g is None else g
            for v, g in zip(variables, grads)
        ]

    return loss_gradients
