"""Updater objects: one drop-and-grow update, checked against numpy."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf import updaters
from freetickets_tf.callbacks import DynamicSparsityCallback


def _layer(density=0.5, seed=0):
    layer = ft.layers.MaskedDense(6)
    layer.build((None, 5))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(size=(5, 6)).astype("float32"))
    mask = np.zeros(30, bool)
    mask[rng.choice(30, int(30 * density), replace=False)] = True
    layer.masked_kernels[0].mask.assign(mask.reshape(5, 6))
    ft.masking.zero_inactive_weights(keras.Sequential([keras.Input((5,)), layer]))
    return layer.masked_kernels[0]


def _np(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable.value))


def test_rigl_drops_smallest_and_grows_largest_gradient_as_numpy():
    mk = _layer()
    kernel, mask = _np(mk.kernel), _np(mk.mask)
    scores = np.random.default_rng(1).normal(size=mask.shape).astype("float32")
    slot = keras.Variable(np.ones(mask.shape, "float32"))
    moved = updaters.RigL().rewire(mk, 0.5, scores, slots=[slot])

    n = int(np.ceil(0.5 * mask.sum()))
    active = np.flatnonzero(mask)
    dropped = active[np.argsort(np.abs(kernel.ravel()[active]), kind="stable")[:n]]
    survivors = mask.ravel().copy()
    survivors[dropped] = False
    inactive = np.flatnonzero(~survivors)
    grown = inactive[np.argsort(-np.abs(scores.ravel()[inactive]), kind="stable")[:n]]
    expected = survivors.copy()
    expected[grown] = True

    np.testing.assert_array_equal(_np(mk.mask).ravel(), expected)
    assert moved == int((expected & ~mask.ravel()).sum())
    np.testing.assert_array_equal(_np(mk.kernel).ravel()[~survivors], 0.0)  # zero on grow
    np.testing.assert_array_equal(_np(mk.kernel).ravel()[survivors],
                                  kernel.ravel()[survivors])
    np.testing.assert_array_equal(_np(slot).ravel(), np.where(
        expected & ~survivors, 0.0, 1.0))
    assert _np(mk.explored).ravel()[expected].all()


def test_set_grows_at_random_with_exact_counts_and_a_seed():
    a, b = _layer(seed=3), _layer(seed=3)
    before = _np(a.mask)
    updaters.SET().rewire(a, 0.4, None, seed=7)
    updaters.SET().rewire(b, 0.4, None, seed=7)
    np.testing.assert_array_equal(_np(a.mask), _np(b.mask))  # seeded
    assert _np(a.mask).sum() == before.sum()


def test_a_dense_kernel_is_left_alone_unless_asked():
    mk = _layer(density=1.0)
    assert updaters.SET().rewire(mk, 0.5, None, seed=0) == 0
    kernel = _np(mk.kernel)
    # The original's quirk: the 15 smallest weights die and, the only
    # inactive positions, regrow at zero (no position is new).
    assert updaters.SET().rewire(mk, 0.5, None, seed=0, skip_dense=False) == 0
    smallest = np.argsort(np.abs(kernel.ravel()), kind="stable")[:15]
    np.testing.assert_array_equal(np.flatnonzero(_np(mk.kernel).ravel() == 0),
                                  np.sort(smallest))
    assert _np(mk.mask).all() and np.count_nonzero(kernel) == 30


def test_update_flops_and_needs():
    assert updaters.SET().update_flops(10.0, 30.0, 8) == 0.0
    assert updaters.MomentumGrowth().update_flops(10.0, 30.0, 8) == 0.0
    assert updaters.RigL().update_flops(10.0, 30.0, 8) == (10 + 2 * 30) * 8
    assert updaters.RigL.needs_gradient and not updaters.SET.needs_gradient
    assert updaters.MomentumGrowth.needs_momentum


def test_registry_names_and_bad_input():
    assert [type(updaters.get(n)).__name__ for n in updaters.GROWTH_MODES] == [
        "RigL", "SET", "MomentumGrowth"]
    custom = updaters.SET("set")
    assert updaters.get(custom) is custom
    assert updaters.get("random", "set").death == "set"
    with pytest.raises(ValueError, match="Invalid `growth`: 'hebbian'"):
        updaters.get("hebbian")
    with pytest.raises(ValueError, match="Invalid `death`: 'oldest'"):
        updaters.SET("oldest")
    with pytest.raises(ValueError, match="drops by 'set'"):
        updaters.get(custom, death="magnitude-ish")


def test_momentum_growth_needs_momentum(mlp, compile_model):
    sparse = compile_model(ft.sparsify(mlp, 0.3, seed=0), keras.optimizers.SGD(0.1))
    dst = DynamicSparsityCallback(growth="momentum", update_frequency=1)
    dst.set_model(sparse)
    with pytest.raises(ValueError, match="needs an optimizer with momentum"):
        dst.update_topology()


def test_a_custom_growth_rule_in_a_few_lines(mlp, toy_data, compile_model):
    # Grows the inactive positions of the largest index first: no library
    # file changes, only `grow_scores` overridden.
    class GrowLast(updaters.SET):
        def grow_scores(self, model, masked_kernels, gradients=None):
            return [keras.ops.reshape(keras.ops.arange(1, keras.ops.size(mk.mask.value) + 1,
                                                       dtype="float32"), mk.mask.shape)
                    for mk in masked_kernels]

    sparse = compile_model(ft.sparsify(mlp, 0.3, seed=0))
    masks = lambda: [np.asarray(keras.ops.convert_to_numpy(mk.mask.value)).ravel()
                     for mk in ft.masked_kernels(sparse)]
    before = masks()
    dst = DynamicSparsityCallback(growth=GrowLast(), update_frequency=4, death_rate=0.3)
    x, y = toy_data
    sparse.fit(x, y, batch_size=64, epochs=1, callbacks=[dst], verbose=0)
    assert dst.updates_done == 1 and dst.updater.death == "magnitude"
    for old, new in zip(before, masks()):
        assert new.sum() == old.sum()
        if new.all():
            continue
        # Every newly active position lies beyond every position left inactive.
        assert np.flatnonzero(new & ~old).min() > np.flatnonzero(~new).max()


@pytest.mark.parametrize("units", [7, 300])  # 2,100 and 90,000 weights: padded or not, XLA or not
def test_the_compiled_update_equals_the_plain_drop_and_grow(units):
    from freetickets_tf import topology

    def host(x):
        return np.asarray(keras.ops.convert_to_numpy(x))

    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(units)])
    mk = ft.masked_kernels(ft.sparsify(model, 0.2, seed=0))[0]
    rng = np.random.default_rng(units)
    # Few distinct values: many ties, broken by the lower index.
    mk.kernel.assign(np.round(rng.normal(size=mk.kernel.shape) * 4).astype("float32"))
    scores = np.round(rng.normal(size=mk.kernel.shape) * 4).astype("float32")
    kernel, mask = _np(mk.kernel), _np(mk.mask)
    n = topology.drop_count(mask, 0.3)
    survivors = host(topology.magnitude_prune(kernel, mask, n))
    want = host(topology.grow(survivors, scores, n))
    moved = updaters.RigL().update([mk], 0.3, [scores], [0], [()])
    np.testing.assert_array_equal(_np(mk.mask), want)
    np.testing.assert_array_equal(_np(mk.kernel), np.where(survivors, kernel, 0.0))
    assert moved == int((want & ~mask).sum())


@pytest.mark.parametrize("count_on_host", [True, False], ids=["host_count", "program_count"])
@pytest.mark.parametrize("growth", ["gradient", "random", "momentum"])
def test_the_fast_update_writes_what_the_plain_layer_by_layer_update_writes(
        growth, count_on_host, monkeypatch):
    # Fast: one program for the whole model (TensorFlow, JAX), or NumPy in
    # the variables' memory (PyTorch on a CPU). Plain: layer by layer, with
    # `keras.ops`. The whole-model program's moved count: by NumPy on a
    # CPU, in the program on an accelerator.
    from freetickets_tf import backend

    in_place = backend.drops_and_grows_in_place
    if not count_on_host:
        monkeypatch.setattr(backend, "host_copies", lambda arrays: None)

    def run(fast):
        monkeypatch.setattr(updaters, "WHOLE_MODEL_WEIGHTS", 0 if fast else 1 << 40)
        monkeypatch.setattr(backend, "drops_and_grows_in_place",
                            in_place if fast else lambda kernel: False)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(30),
                                  keras.layers.Dense(20), keras.layers.Dense(5)])
        sparse = ft.sparsify(model, 0.3, distribution="uniform", seed=0)
        sparse.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
        sparse.optimizer.build(sparse.trainable_variables)
        kernels = ft.masked_kernels(sparse)
        rng = np.random.default_rng(1)
        for mk in kernels:  # ties among weights and scores, and live momentum
            mk.kernel.assign(np.round(rng.normal(size=mk.kernel.shape) * 3).astype("float32")
                             * _np(mk.mask))
        slots = [[v for v in sparse.optimizer.variables if v.shape == mk.kernel.shape
                  and "momentum" in v.path] for mk in kernels]
        for kernel_slots in slots:
            for slot in kernel_slots:
                slot.assign(rng.normal(size=slot.shape).astype("float32"))
        if growth == "gradient":
            scores = [np.round(rng.normal(size=mk.kernel.shape) * 3).astype("float32")
                      for mk in kernels]
        elif growth == "momentum":  # the slots' own arrays: passed twice
            scores = [kernel_slots[0].value for kernel_slots in slots]
        else:
            scores = [None] * len(kernels)
        seeds = [keras.random.SeedGenerator(7 + i) for i in range(len(kernels))]
        moved = updaters.get(growth).update(kernels, 0.5, scores, seeds, slots)
        return moved, [[_np(v) for v in (mk.kernel, mk.mask, mk.explored, *kernel_slots)]
                       for mk, kernel_slots in zip(kernels, slots)]

    plain = run(False)
    fast = run(True)
    assert fast[0] == plain[0] > 0
    assert all(len(arrays) == 4 for arrays in fast[1])  # a momentum slot each
    for ours, theirs in zip(fast[1], plain[1]):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("death_rate", [0.3, 0.9])
def test_non_finite_scores_rank_as_the_largest_magnitudes(death_rate):
    # As the order of the bits of |x| (`topology.magnitude_key`) on every
    # backend: NaN above infinity above every finite score, and still
    # exactly n grown.
    mk = _layer(density=0.5, seed=4)
    mask = _np(mk.mask).ravel()
    inactive = np.flatnonzero(~mask)
    scores = np.random.default_rng(5).normal(size=mask.size).astype("float32")
    scores[inactive[[1, 4]]] = np.nan
    scores[inactive[[0, 6]]] = [np.inf, -np.inf]
    moved = updaters.RigL().rewire(mk, death_rate, scores.reshape(mk.mask.shape))
    n = int(np.ceil(death_rate * mask.sum()))
    new = _np(mk.mask).ravel()
    assert new.sum() == mask.sum() and moved >= 1
    first = inactive[[1, 4, 0, 6]][:n]  # NaN, then infinity
    assert new[first].all()


@pytest.mark.parametrize("units", [7, 300])  # padded; below and above LARGE_KERNEL
def test_nan_weights_rank_as_the_largest_magnitudes_and_exactly_n_are_dropped(units):
    # NaN is the largest magnitude (`topology.magnitude_key`): the finite
    # active weights go first, then the NaN ones by index, never fewer than n.
    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(units)])
    mk = ft.masked_kernels(ft.sparsify(model, 0.2, seed=0))[0]
    mask = _np(mk.mask).ravel()
    active = np.flatnonzero(mask)
    kernel = np.zeros(mask.size, "float32")
    kernel[active] = np.nan
    finite = active[::10]
    kernel[finite] = np.arange(1, finite.size + 1, dtype="float32")
    mk.kernel.assign(kernel.reshape(mk.kernel.shape))
    n = int(np.ceil(0.5 * active.size))
    updaters.RigL().rewire(mk, 0.5, np.ones(mask.shape, "float32").reshape(mk.mask.shape))
    # Dropped weights are zeroed (even where regrown); survivors keep theirs.
    dropped = np.flatnonzero(mask & (_np(mk.kernel).ravel() == 0))
    want = np.concatenate([finite, np.setdiff1d(active, finite)[:n - finite.size]])
    np.testing.assert_array_equal(np.sort(dropped), np.sort(want))
    assert _np(mk.mask).sum() == mask.sum()


def test_scores_of_another_shape_are_refused_before_anything_is_written():
    # A transposed array of the same size would grow the wrong positions.
    mk = _layer()
    before = [_np(v) for v in (mk.kernel, mk.mask, mk.explored)]
    scores = np.ones((6, 5), "float32")
    with pytest.raises(ValueError, match=r"`scores`.*\(6, 5\).*\(5, 6\)"):
        updaters.RigL().rewire(mk, 0.5, scores)
    with pytest.raises(ValueError, match="2 arrays for 1 masked kernels"):
        updaters.RigL().update([mk], 0.5, [scores.T, scores.T], [0], [()])
    for a, v in zip(before, (mk.kernel, mk.mask, mk.explored)):
        np.testing.assert_array_equal(a, _np(v))
