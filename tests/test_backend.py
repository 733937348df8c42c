"""freetickets_tf.backend: the dense loss gradient of gradient growth and the
backend checks, on whichever backend the suite runs (TensorFlow, JAX, PyTorch)."""

import contextlib
import math
import re

import keras
import numpy as np
import pytest
from keras import ops

from freetickets_tf import backend
from freetickets_tf import layers as fl


def _np(x):
    return ops.convert_to_numpy(x)


def _no_grad():
    """Callbacks may run where autodiff is off (PyTorch's `no_grad`)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _state(model):
    """Every variable that training may change, by path and role."""
    groups = {
        "model": model.variables,  # weights, BatchNorm statistics, seed states
        "metrics": model.metrics_variables,
        "optimizer": model.optimizer.variables,
    }
    return {
        (group, i, v.path): _np(v).copy()
        for group, variables in groups.items()
        for i, v in enumerate(variables)
    }


def test_gradient_of_masked_linear_layer_matches_hand_computed_one():
    """MSE plus an L2 penalty on a masked linear layer: the gradient is the
    compiled training loss's, dense at the inactive positions too."""
    rng = np.random.default_rng(0)
    layer = fl.MaskedDense(
        5, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.01)
    )
    model = keras.Sequential([keras.Input((6,)), layer])
    mask = rng.random((6, 5)) < 0.5
    w = np.where(mask, rng.normal(size=(6, 5)), 0.0).astype("float32")
    layer.kernel_mask.assign(mask)
    layer.kernel.assign(w)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = rng.normal(size=(8, 6)).astype("float32")
    y = rng.normal(size=(8, 5)).astype("float32")

    with _no_grad():
        (grad,) = backend.make_loss_gradient_fn(model, [layer.kernel])(x, y)

    expected = 2 * x.T @ (x @ w - y) / y.size + 2 * 0.01 * w
    np.testing.assert_allclose(_np(grad), expected, rtol=1e-5, atol=1e-6)
    assert np.count_nonzero(_np(grad)[~mask]) == (~mask).sum()


def test_gradient_is_the_train_steps_and_leaves_no_trace():
    """With BatchNorm, dropout and a metric: the gradient equals the one an
    SGD(1) step applies next, and taking it changes no variable (weights,
    moving statistics, dropout seeds, metrics, optimizer), so two calls agree.
    On PyTorch nothing is accumulated into the parameters' `.grad` either."""
    rng = np.random.default_rng(1)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dropout(0.3, seed=1),
            keras.layers.Dense(4, name="logits"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = rng.normal(size=(32, 16)).astype("float32")
    y = rng.integers(0, 4, 32).astype("int32")
    model.train_on_batch(x, y)  # builds the optimizer, moves the statistics
    variables = model.trainable_variables
    gradient_fn = backend.make_loss_gradient_fn(model, variables)
    before = _state(model)
    if keras.backend.backend() == "torch":
        grads_before = [v.value.grad for v in variables]
        grads_before = [None if g is None else _np(g).copy() for g in grads_before]

    with _no_grad():
        first = [_np(g) for g in gradient_fn(x, y)]
        second = [_np(g) for g in gradient_fn(x, y)]

    after = _state(model)
    assert after.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=str(key))
    if keras.backend.backend() == "torch":
        for v, g in zip(variables, grads_before):
            if g is None:
                assert v.value.grad is None
            else:
                np.testing.assert_array_equal(_np(v.value.grad), g)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert all(np.count_nonzero(g) for g in first)

    weights = [_np(v).copy() for v in variables]
    model.train_on_batch(x, y)
    for w, v, g in zip(weights, variables, first):
        np.testing.assert_allclose(w - _np(v), g, rtol=1e-4, atol=1e-6, err_msg=v.path)


def test_gradient_of_frozen_or_outside_variables_is_refused():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.Dense(2)])
    model.layers[0].trainable = False
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    outside = keras.Variable(np.ones((3, 2), "float32"))
    for variables in ([outside], [model.layers[0].kernel, model.layers[1].kernel]):
        with pytest.raises(ValueError, match="not trainable variables of the model.*"
                                             "unfreeze it, or use growth='random'"):
            backend.make_loss_gradient_fn(model, variables)
    backend.make_loss_gradient_fn(model, [model.layers[1].kernel])  # trainable: fine


def test_unsupported_backend_names_itself_and_the_supported_ones(monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(
        NotImplementedError,
        match=r"KERAS_BACKEND='numpy'.*'tensorflow', 'jax', 'torch'",
    ):
        backend.make_loss_gradient_fn(model, model.trainable_variables)


@pytest.mark.parametrize("name", ["tensorflow", "jax", "torch"])
def test_require_backend_names_the_backend_and_the_alternative(monkeypatch, name):
    monkeypatch.setattr(keras.backend, "backend", lambda: name)
    if name == "tensorflow":
        backend.require_backend("SavedModel export", "tensorflow", "Use X.")
        return
    with pytest.raises(
        NotImplementedError,
        match=f"SavedModel export needs KERAS_BACKEND=tensorflow; the Keras "
        f"backend is '{name}'. Use X.",
    ):
        backend.require_backend("SavedModel export", "tensorflow", "Use X.")


def test_masks_in_forward_pass_only_on_jax():
    assert backend.masks_in_forward_pass() == (keras.backend.backend() == "jax")
    layer = fl.MaskedDense(2)
    layer.build((None, 3))
    has_constraint = isinstance(layer.kernel.constraint, fl._ZeroInactive)
    assert has_constraint == (keras.backend.backend() != "jax")


def test_compiled_array_functions_equal_the_plain_ones():
    def fn(x, n):
        return ops.where(ops.arange(4) < n, x * 2.0, ops.zeros_like(x))

    x = ops.convert_to_tensor(np.array([1.0, -2.0, 3.0, 4.0], "float32"))
    for large in (True, False):
        compiled = backend.compile_array_function(fn, large=large)
        for n in (1, 3):  # one program for both counts, passed as tensors
            expected = _np(fn(x, ops.convert_to_tensor(n, "int32")))
            np.testing.assert_array_equal(
                _np(compiled(x, ops.convert_to_tensor(n, "int32"))), expected)


@pytest.mark.parametrize("shared", [False, True], ids=["distinct", "passed_twice"])
def test_compiled_variable_update_writes_its_variables(shared):
    # Nested variables of two dtypes; with `shared` one variable's own array
    # is an argument too (momentum growth's scores are its slots): JAX
    # cannot donate that one, and must still read it right.
    x = keras.Variable(np.array([1.0, -2.0, 3.0, 4.0], "float32"))
    flag = keras.Variable(np.array([True, False, True, False]), trainable=False)
    y = keras.Variable(np.ones((2, 3), "float32"))

    def fn(values, scale, extra):
        (x, flag), y = values
        return [[x * scale + extra, ops.logical_not(flag)], y - 1.0], ops.sum(x)

    program = backend.compile_variable_update(fn)
    want_x, want_flag, want_y = _np(x), _np(flag), _np(y)
    for step in range(3):  # the second and third calls reuse the program
        extra = x.value if shared else ops.convert_to_tensor(np.full(4, 0.5, "float32"))
        extra_np = _np(extra)
        result = program([[x, flag], y], ops.convert_to_tensor(2.0), extra)
        assert float(_np(result)) == want_x.sum()
        want_x, want_flag, want_y = want_x * 2.0 + extra_np, ~want_flag, want_y - 1.0
        np.testing.assert_array_equal(_np(x), want_x)
        np.testing.assert_array_equal(_np(flag), want_flag)
        np.testing.assert_array_equal(_np(y), want_y)


def test_compiled_variable_update_serves_variables_of_other_shapes_and_python_numbers():
    # TensorFlow reuses a concrete function by the arguments' signature; a
    # concrete function would run a program compiled for one shape on a
    # variable of another without a word, so the signature must hold the
    # variables' shapes. A Python number is traced as a constant: each
    # value must count.
    program = backend.compile_variable_update(
        lambda values, k: ([v * k for v in values], ops.sum(values[0])))
    for shape in ((4,), (6,), (4,), (2, 3)):
        variables = [keras.Variable(np.arange(math.prod(shape), dtype="float32").reshape(shape)),
                     keras.Variable(np.ones(3, "float32"))]
        for k in (2.0, 3.0, ops.convert_to_tensor(5.0)):
            before = [_np(v) for v in variables]
            result = program(variables, k)
            assert float(_np(result)) == before[0].sum()
            for variable, value in zip(variables, before):
                np.testing.assert_array_equal(_np(variable), value * float(_np(k)))


def test_compiled_variable_update_names_new_values_nested_unlike_the_variables():
    variables = [keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(3, "float32"))]
    before = [_np(v) for v in variables]
    program = backend.compile_variable_update(lambda values, k: ([values[0] * k], k))
    with pytest.raises(ValueError, match="new_values` nested as `values"):
        program(variables, ops.convert_to_tensor(2.0))
    for variable, value in zip(variables, before):  # nothing written
        np.testing.assert_array_equal(_np(variable), value)


def _keys(kind, rng, size):
    """int32 keys that stress each digit of the radix select."""
    if kind == "full_range":
        return rng.integers(-(2**31), 2**31, size, dtype=np.int64).astype("int32")
    if kind == "one_high_bucket":  # every key shares its high 16 bits: the low digit decides
        return (rng.integers(0, 2**16, size) + (5 << 16)).astype("int32")
    if kind == "bucket_edges":  # keys on both sides of high-digit boundaries, signs too
        edges = np.array([-(2**31), -65537, -65536, -1, 0, 65535, 65536, 2**31 - 1])
        return (edges[rng.integers(0, edges.size, size)]).astype("int32")
    return rng.integers(-3, 3, size).astype("int32")  # many ties


@pytest.mark.parametrize("kind", ["full_range", "one_high_bucket", "bucket_edges", "ties"])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("eligible_fraction", [0.3, 0.7])  # PyTorch: gathered, or not
@pytest.mark.parametrize("nonnegative", [False, True], ids=["signed", "nonnegative"])
def test_the_nth_largest_key_and_its_counts_equal_numpy_sort(kind, compiled, eligible_fraction,
                                                             nonnegative):
    # The radix select under XLA (with its half-size first histogram for
    # keys without a sign, as `magnitude_key`'s), the partition on PyTorch.
    rng = np.random.default_rng(len(kind))
    size = 3000
    key = _keys(kind, rng, size)
    if nonnegative:  # the largest key, 2**31 - 1, in the last high bucket
        key = np.bitwise_and(key, 0x7FFFFFFF)
    eligible = rng.random(size) < eligible_fraction

    def select(key, eligible, n):
        if keras.backend.backend() == "torch":
            return backend._torch_nth_largest_key(key, eligible, n)
        return backend._radix_select(key, eligible, n, nonnegative)[:3]

    if compiled:
        select = backend.compile_array_function(select)
    chosen = key[eligible]
    ordered = np.sort(chosen)[::-1]
    for n in (0, 1, 2, 17, ordered.size // 2, ordered.size):
        threshold, above, tied = (int(_np(v)) for v in select(
            ops.convert_to_tensor(key), ops.convert_to_tensor(eligible),
            ops.convert_to_tensor(n, "int32")))
        assert threshold == int(ordered[max(n, 1) - 1]), (kind, n)  # n == 0: as 1
        assert above == int(np.sum(chosen > threshold)), (kind, n)
        assert tied == int(np.sum(chosen == threshold)), (kind, n)


@pytest.mark.parametrize("leave_out", [False, True], ids=["spared", "left_out"])
@pytest.mark.parametrize("counted_fraction", [0.01, 0.5])
@pytest.mark.parametrize("buckets", [2**16, 2**15])
def test_digit_and_rank_is_the_same_with_the_uncounted_spared_or_left_out(
        leave_out, counted_fraction, buckets):
    rng = np.random.default_rng(5)
    size = 20000
    digit = rng.integers(0, buckets, size).astype("int32")
    digit[:50] = buckets - 1  # the last bucket, next to the spare ones
    counted = rng.random(size) < counted_fraction
    chosen = digit[counted]
    program = backend.compile_array_function(
        lambda *args: backend._digit_and_rank(*args, buckets=buckets))
    for rank in (1, 2, chosen.size // 3, chosen.size):
        d, left, count, bucket = (_np(v) for v in program(
            ops.convert_to_tensor(digit), ops.convert_to_tensor(counted),
            ops.convert_to_tensor(rank, "int32"), ops.convert_to_tensor(leave_out)))
        want = int(np.sort(chosen)[::-1][rank - 1])  # the rank-th largest digit
        assert (int(d), int(left), int(count)) == (want, rank - int(np.sum(chosen > want)),
                                                   int(np.sum(chosen == want))), rank
        # The bucket index is the digit exactly at the counted positions.
        np.testing.assert_array_equal(bucket == want, counted & (digit == want))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow's graph optimiser folds constants before XLA")
def test_tensorflow_program_computes_spare_buckets_instead_of_reading_a_folded_array():
    # Constant spare indices would be folded into arrays of the keys'
    # length, stored in the program and read by every call.
    size = 8192
    folded = re.findall(r"\[(\d+)\]\{0\} constant\(\{", _tensorflow_top_n_cut_hlo(size))
    assert not [length for length in folded if int(length) >= size], folded


def _tensorflow_top_n_cut_hlo(size):
    """XLA's optimized HLO text of TensorFlow's `top_n_cut` of `size` keys."""
    import tensorflow as tf

    program = tf.function(lambda key, eligible, n: backend.top_n_cut(key, eligible, n, True),
                          jit_compile=True)
    args = (tf.zeros([size], "int32"), tf.ones([size], "bool"), tf.constant(5, "int32"))
    return program.experimental_get_compiler_ir(*args)(stage="optimized_hlo")


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_histogram_counts_the_indices_in_range(compiled):
    # Negative indices (the positions `_digit_and_rank` leaves out) count
    # nowhere; the zero it starts from is any int32 scalar equal to 0.
    rng = np.random.default_rng(5)
    bucket = rng.integers(-3, 40, 5000).astype("int32")
    histogram = lambda b, zero: backend._histogram(b, 48, zero)  # noqa: E731
    if compiled:
        histogram = backend.compile_array_function(histogram)
    got = _np(histogram(ops.convert_to_tensor(bucket), ops.convert_to_tensor(0, "int32")))
    want = np.bincount(bucket[bucket >= 0], minlength=48)
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA")
def test_tensorflow_knows_when_it_traces_for_xla():
    import tensorflow as tf

    seen = []

    def probe(x):
        seen.append(backend._in_tensorflow_xla_program())
        return x

    probe(tf.ones(1))
    tf.function(probe)(tf.ones(1))
    tf.function(probe, jit_compile=True)(tf.ones(1))
    assert seen == [False, False, True]


def _hlo_depends_on_a_parameter(hlo, name, seen=None):
    """Whether the value `name` of the optimized HLO text `hlo` is computed
    from one of the program's parameters (not from constants alone)."""
    seen = set() if seen is None else seen
    if name in seen:
        return False
    seen.add(name)
    line = re.search(rf"^\s*(?:ROOT )?%{re.escape(name)} = [^\n]*", hlo, re.M).group(0)
    if " parameter(" in line:
        return True
    operands = re.findall(r"%([\w.\-]+)", line.split("=", 1)[1].split("calls=")[0])
    return any(_hlo_depends_on_a_parameter(hlo, o, seen) for o in operands)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA")
def test_tensorflow_histograms_start_from_computed_zeros():
    # From a constant, XLA copies a shared array of zeros into each
    # histogram, copies its CPU runtime runs on another thread from the
    # program's start (benchmarks/RESULTS.md).
    hlo = _tensorflow_top_n_cut_hlo(8192)
    entry = hlo[hlo.index("\nENTRY"):]
    # The array each histogram's scatter adds into (its first operand).
    scatters = re.findall(r"^\s*%[\w.\-]*scatter[\w.\-]* = s32\[\d+\]\{0\} "
                          r"(?:scatter|fusion)\(%([\w.\-]+),", entry, re.M)
    assert len(scatters) >= 2, entry  # one histogram per digit
    for start in scatters:
        assert _hlo_depends_on_a_parameter(entry, start), start


def test_row_sums_are_exact_beyond_float32_integers():
    rows = np.random.default_rng(4).integers(0, 1000, (5, 256)).astype("int32")
    got = _np(backend._row_sums(ops.convert_to_tensor(rows), int(rows.sum())))
    np.testing.assert_array_equal(got, rows.sum(axis=1))
    # 2**24 + 1 has no float32: counts that large are summed as integers.
    rows[2, :2] = [2**24, 1]
    got = _np(backend._row_sums(ops.convert_to_tensor(rows), int(rows.sum())))
    np.testing.assert_array_equal(got, rows.sum(axis=1))


@pytest.mark.parametrize("length", [256, 128])  # a 16- and a 15-bit digit's row sums
def test_last_reaching_finds_the_bucket_a_suffix_sum_reaches(length):
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, length) * (rng.random(length) < 0.3)  # whole groups of zeros too
    counts[16:32] = 0
    suffix = np.cumsum(counts[::-1])[::-1]  # suffix[i] = counts[i:].sum()
    # Every rank a suffix sum reaches, on each boundary and between.
    for rank in sorted({1, 2, *suffix.tolist(), *(suffix + 1).tolist()} - {0}):
        if rank > suffix[0]:
            continue
        want = int(np.flatnonzero(suffix >= rank)[-1])
        index, above = (int(_np(v)) for v in backend._last_reaching(
            ops.convert_to_tensor(counts.astype("int32")), ops.convert_to_tensor(rank, "int32")))
        assert (index, above) == (want, int(counts[want + 1:].sum())), rank


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch's two selections")
@pytest.mark.parametrize("on_host", [True, False], ids=["numpy", "kthvalue"])
@pytest.mark.parametrize("eligible_fraction", [0.3, 0.7])
def test_torch_selections_agree_with_numpy_sort(on_host, eligible_fraction):
    # The device path (`torch.kthvalue`, taken for CUDA tensors) run on the
    # CPU here, beside the NumPy path the CPU takes; float keys with -inf
    # and ties.
    import torch

    rng = np.random.default_rng(7)
    key = rng.choice([-np.inf, -1.5, 0.0, 2.0, 3.25], 3000).astype("float32")
    eligible = rng.random(3000) < eligible_fraction
    chosen = key[eligible]
    ordered = np.sort(chosen)[::-1]
    for n in (1, 5, ordered.size // 2, ordered.size):
        threshold, above, tied = backend._torch_nth_largest_key(
            torch.from_numpy(key), torch.from_numpy(eligible), n, on_host=on_host)
        assert float(threshold) == ordered[n - 1], n
        assert (above, tied) == (np.sum(chosen > ordered[n - 1]),
                                 np.sum(chosen == ordered[n - 1])), n


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch on a CPU only")
def test_drop_and_grow_in_place_reads_scores_of_any_strides():
    # A convolution's gradient is a permuted view on PyTorch; its order is
    # the kernel's (C order), not its memory's.
    import torch

    from freetickets_tf import updaters

    rng = np.random.default_rng(3)
    shape = (3, 3, 4, 5)
    kernel = np.round(rng.normal(size=shape) * 2).astype("float32")
    mask = rng.random(shape) < 0.3
    scores = np.round(rng.normal(size=shape) * 2).astype("float32")  # ties
    strided = torch.from_numpy(np.ascontiguousarray(scores.transpose(3, 2, 0, 1)))
    strided = strided.permute(2, 3, 1, 0)
    assert not strided.is_contiguous() and np.array_equal(strided.numpy(), scores)
    variables = [keras.Variable(kernel * mask), keras.Variable(mask, trainable=False),
                 keras.Variable(mask, trainable=False),
                 keras.Variable(np.ones(shape, "float32"), trainable=False)]
    assert backend.drops_and_grows_in_place(variables[0])
    moved = backend.drop_and_grow_in_place(*variables[:3], strided, 20, [variables[3]])
    want = updaters._magnitude_rewire(kernel * mask, mask, mask, scores, 20)
    got = [keras.ops.convert_to_numpy(v.value) for v in variables]
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
    np.testing.assert_array_equal(got[3], np.where(keras.ops.convert_to_numpy(want[3]), 0, 1))
    assert moved == int(keras.ops.convert_to_numpy(want[4])) > 0


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch on a CPU only")
def test_drop_and_grow_in_place_tells_autograd_what_it_overwrote():
    # NumPy writes the variables' memory behind PyTorch's back: a loss
    # computed before the update must refuse to backpropagate, not give the
    # gradient of weights it never saw.
    rng = np.random.default_rng(4)
    mask = rng.random(40) < 0.5
    variables = [keras.Variable(rng.normal(size=40).astype("float32") * mask),
                 keras.Variable(mask, trainable=False), keras.Variable(mask, trainable=False),
                 keras.Variable(np.ones(40, "float32"), trainable=False)]
    kernel = variables[0].value
    loss = (kernel * kernel).sum()  # saves the kernel for its gradient
    versions = [v.value._version for v in variables]
    backend.drop_and_grow_in_place(*variables[:3], keras.ops.ones((40,)), 5, [variables[3]])
    assert all(v.value._version > old for v, old in zip(variables, versions))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("on_cpu", [True, False], ids=["numpy", "compiled"])
def test_count_true_each_counts_on_the_host_and_in_a_program_alike(on_cpu, monkeypatch):
    # On a CPU NumPy counts; on an accelerator one compiled program does.
    monkeypatch.setattr(backend, "_on_cpu", lambda array: on_cpu)
    rng = np.random.default_rng(2)
    masks = [rng.random(shape) < 0.3 for shape in [(7,), (40, 30), (3, 3, 8, 16), (1,)]]
    masks[3][:] = False
    counts = backend.count_true_each(keras.ops.convert_to_tensor(m) for m in masks)
    assert counts.dtype == np.int64
    assert counts.tolist() == [int(m.sum()) for m in masks]
    # Variables, as the updaters pass them (on TensorFlow read without a copy).
    variables = [keras.Variable(m, trainable=False) for m in masks]
    assert backend.count_true_each(v.value for v in variables).tolist() == counts.tolist()


def test_count_newly_true_counts_what_the_variables_gained_since_their_host_copies(
        monkeypatch):
    rng = np.random.default_rng(3)
    old = [rng.random(shape) < 0.3 for shape in [(7,), (40, 30), (3, 3, 8, 16)]]
    new = [rng.random(m.shape) < 0.3 for m in old]
    variables = [keras.Variable(m, trainable=False) for m in old]
    before = backend.host_copies(v.value for v in variables)
    for variable, mask in zip(variables, new):
        variable.assign(mask)  # the copies keep the old masks
    want = sum(int((n & ~o).sum()) for o, n in zip(old, new))
    assert backend.count_newly_true(before, (v.value for v in variables)) == want > 0
    # Off the CPU there are no host copies: the program counts instead.
    monkeypatch.setattr(backend, "_on_cpu", lambda array: False)
    assert backend.host_copies(v.value for v in variables) is None


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch on a CPU only")
@pytest.mark.parametrize("n", [0, 4])
def test_drop_and_grow_in_place_refuses_a_count_outside_the_active_weights(n):
    mask = np.array([True, False, True, False])
    variables = [keras.Variable(np.array([1.0, 0.0, 2.0, 0.0], "float32")),
                 keras.Variable(mask, trainable=False), keras.Variable(mask, trainable=False)]
    with pytest.raises(ValueError, match=r"Invalid `n`.*1 to 2 weights"):
        backend.drop_and_grow_in_place(*variables, keras.ops.ones((4,)), n)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variables[1].value), mask)
