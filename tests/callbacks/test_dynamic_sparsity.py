"""DynamicSparsityCallback inside model.fit (SPEC §3)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import freetickets_tf as ft
from freetickets_tf import optimizer_slots
from freetickets_tf.callbacks import DynamicSparsityCallback
from freetickets_tf.schedules import death_rate_at


def _np(x):
    return ops.convert_to_numpy(x)


def _masks(model):
    return [_np(mk.mask) for mk in ft.masked_kernels(model)]


class RecordingCallback(DynamicSparsityCallback):
    """Remembers the optimizer step of every topology update."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.update_steps = []

    def update_topology(self, death_rate=None):
        self.update_steps.append(int(self.model.optimizer.iterations))
        return super().update_topology(death_rate)


def test_dst_during_fit_keeps_counts_and_moves_masks(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    before = _masks(sparse)
    dst = DynamicSparsityCallback(data=(x, y), update_frequency=5, batch_size=32, seed=0)
    history = sparse.fit(x, y, batch_size=32, epochs=4, callbacks=[dst], verbose=0)
    after = _masks(sparse)
    for mk, old, new in zip(ft.masked_kernels(sparse), before, after):
        assert new.sum() == old.sum()  # every layer keeps its active count
        assert np.all(_np(mk.kernel)[~new] == 0)  # masked weights are zero
    sparse_layers = [i for i, m in enumerate(before) if not m.all()]
    assert sparse_layers and all(not np.array_equal(before[i], after[i]) for i in sparse_layers)
    np.testing.assert_array_equal(after[2], before[2])  # ERK made it dense: skipped
    logs = history.history
    assert sum(logs["weights_moved"]) > 0
    assert logs["itop_rate"][-1] > ft.masking.overall_density(sparse)
    assert logs["itop_rate"] == sorted(logs["itop_rate"])
    assert logs["death_rate"] == [0.5] * 4


def test_gradient_growth_picks_top_gradient_positions():
    """Hand-computed gradient of a linear layer under MSE, drop then grow."""
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="lin")])
    sparse = ft.sparsify(model, 0.5, distribution="uniform", seed=3)
    sparse.compile(keras.optimizers.SGD(0.1), "mse")
    sparse.fit(rng.normal(size=(32, 6)), rng.normal(size=(32, 5)), epochs=1, verbose=0)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = rng.normal(size=(8, 5)).astype("float32")
    (mk,) = ft.masked_kernels(sparse)
    w, b, mask = _np(mk.kernel), _np(sparse.layers[0].bias), _np(mk.mask)
    # Reference: loss = mean over batch and outputs of (xW + b - y)^2.
    grad = 2.0 / y.size * x.T @ (x @ w + b - y)
    n = math.ceil(0.5 * mask.sum())
    drop = np.argsort(np.where(mask, np.abs(w), np.inf).ravel(), kind="stable")[:n]
    survivors = mask.ravel().copy()
    survivors[drop] = False
    candidates = np.where(survivors, -np.inf, np.abs(grad).ravel())
    grow = np.argsort(-candidates, kind="stable")[:n]
    expected = survivors.copy()
    expected[grow] = True

    dst = DynamicSparsityCallback(data=(x, y), batch_size=8, death_rate=0.5)
    dst.set_model(sparse)
    dst.update_topology()
    np.testing.assert_array_equal(_np(mk.mask).ravel(), expected)
    kernel = _np(mk.kernel).ravel()
    np.testing.assert_array_equal(kernel[survivors], w.ravel()[survivors])
    grown = expected & ~survivors
    assert grown.sum() == n and np.all(kernel[grown] == 0)


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
@pytest.mark.parametrize("reset", [True, False])
def test_grown_weights_start_at_zero_and_slots_are_zeroed(mlp, toy_data, optimizer_name, reset, compile_model):
    x, y = toy_data
    optimizer = (
        keras.optimizers.SGD(0.05, momentum=0.9)
        if optimizer_name == "sgd"
        else keras.optimizers.Adam(1e-3)
    )
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0), optimizer)
    sparse.fit(x, y, batch_size=32, epochs=1, verbose=0)  # slots non-zero everywhere
    kernels = ft.masked_kernels(sparse)
    slots_before = [[_np(s) for s in optimizer_slots.slot_variables(optimizer, mk.kernel)] for mk in kernels]
    assert all(len(s) == (1 if optimizer_name == "sgd" else 2) for s in slots_before)
    before = _masks(sparse)
    dst = DynamicSparsityCallback(data=(x, y), reset_optimizer_state=reset, seed=0)
    dst.set_model(sparse)
    dst.update_topology()
    for mk, old, slots in zip(kernels, before, slots_before):
        new = _np(mk.mask)
        fresh = new & ~old
        if old.all():
            continue
        assert fresh.any()
        assert np.all(_np(mk.kernel)[fresh] == 0)
        for slot_before, slot in zip(slots, optimizer_slots.slot_variables(optimizer, mk.kernel)):
            slot = _np(slot)
            if reset:
                assert np.all(slot[fresh] == 0)
            else:
                np.testing.assert_array_equal(slot[fresh], slot_before[fresh])
            # Survivors keep their slots. Positions dropped and regrown in the
            # same update restart from zero like any grown weight, so only
            # active positions that kept a non-zero weight are survivors.
            kept = new & old & (_np(mk.kernel) != 0)
            assert kept.any()
            np.testing.assert_array_equal(slot[kept], slot_before[kept])


def test_global_exploration_moves_q_of_every_sparse_layer(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    sparse.fit(x, y, batch_size=32, epochs=1, verbose=0)
    kernels = ft.masked_kernels(sparse)
    actives = [int(_np(mk.mask).sum()) for mk in kernels]
    nonzero = [np.count_nonzero(_np(mk.kernel)[_np(mk.mask)]) for mk in kernels]
    assert nonzero == actives  # trained active weights are non-zero
    dst = DynamicSparsityCallback(growth="random", death_rate=0.5, seed=1)
    dst.set_model(sparse)
    assert dst.update_topology(death_rate=0.8)["death_rate"] == 0.8
    for mk, active in zip(kernels, actives):
        mask, kernel = _np(mk.mask), _np(mk.kernel)
        assert mask.sum() == active
        dropped = 0 if active == mask.size else math.ceil(0.8 * active)
        # Survivors keep their (non-zero) value; the grown ones start at zero.
        assert np.count_nonzero(kernel[mask]) == active - dropped


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras' PyTorch trainer needs steps_per_execution=1",
)
def test_updates_follow_optimizer_iterations_with_steps_per_execution(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0), steps_per_execution=3)
    dst = RecordingCallback(data=(x, y), update_frequency=4, seed=0)
    sparse.fit(x, y, batch_size=32, epochs=3, callbacks=[dst], verbose=0)
    # 8 batches per epoch run as executions of 3, 3, 2 steps, so the callback
    # sees iterations 3, 6, 8, 11, 14, 16, 19, 22, 24; an update runs at the
    # first of those at or past each multiple of 4.
    assert dst.update_steps == [6, 8, 14, 16, 22, 24]

    windowed = RecordingCallback(data=(x, y), update_frequency=4, start_step=10, end_step=20)
    fresh = compile_model(ft.sparsify(mlp, 0.2, seed=0), steps_per_execution=3)
    fresh.fit(x, y, batch_size=32, epochs=3, callbacks=[windowed], verbose=0)
    assert windowed.update_steps == [14, 16, 22]  # multiples 12, 16, 20


@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="torch.compile of Keras' train step takes a minute on CI")
def test_xla_compiled_training(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0), jit_compile=True)
    before = _masks(sparse)
    dst = DynamicSparsityCallback(data=(x, y), update_frequency=3, seed=0)
    sparse.fit(x, y, batch_size=32, epochs=2, callbacks=[dst], verbose=0)
    for mk, old in zip(ft.masked_kernels(sparse), before):
        new = _np(mk.mask)
        assert new.sum() == old.sum() and np.all(_np(mk.kernel)[~new] == 0)
    assert any(not np.array_equal(o, _np(mk.mask)) for o, mk in zip(before, ft.masked_kernels(sparse)))


@pytest.mark.parametrize("death", ["magnitude", "set"])
@pytest.mark.parametrize("growth", ["gradient", "random", "momentum"])
def test_every_death_and_growth_mode_trains(mlp, toy_data, death, growth, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.3, seed=0))
    before = _masks(sparse)
    dst = DynamicSparsityCallback(
        data=(x, y), update_frequency=4, death=death, growth=growth, seed=0
    )
    history = sparse.fit(x, y, batch_size=32, epochs=1, callbacks=[dst], verbose=0)
    assert history.history["weights_moved"][0] > 0
    for old, new in zip(before, _masks(sparse)):
        assert old.sum() == new.sum()


def test_cosine_schedule_is_logged(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    dst = DynamicSparsityCallback(
        data=(x, y), update_frequency=4, death_rate_schedule="cosine", seed=0
    )
    history = sparse.fit(x, y, batch_size=32, epochs=3, callbacks=[dst], verbose=0)
    # end_step defaults to epochs * steps = 24 optimizer steps.
    expected = [death_rate_at("cosine", 0.5, 8 * (e + 1), 0, 24) for e in range(3)]
    np.testing.assert_allclose(history.history["death_rate"], expected)
    assert history.history["death_rate"][-1] == pytest.approx(0.005)


def test_gradient_pass_leaves_batchnorm_statistics_alone(toy_data, compile_model):
    x, y = toy_data
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(32), keras.layers.BatchNormalization(),
         keras.layers.Dense(4)]
    )
    sparse = compile_model(ft.sparsify(model, 0.3, seed=0))
    bn = sparse.layers[1]
    before = [_np(v) for v in bn.non_trainable_weights]
    dst = DynamicSparsityCallback(data=(x, y), seed=0)
    dst.set_model(sparse)
    dst.update_topology()
    for old, v in zip(before, bn.non_trainable_weights):
        np.testing.assert_array_equal(old, _np(v))


@pytest.mark.parametrize(
    "make_data",
    [
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)).batch(32),
        lambda x, y: [(x[i : i + 32], y[i : i + 32]) for i in range(0, len(x), 32)],
        lambda x, y: (x, y),
    ],
    ids=["tf.data", "list-of-batches", "arrays"],
)
def test_growth_data_sources(mlp, toy_data, make_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    dst = DynamicSparsityCallback(data=make_data(x, y), update_frequency=4, seed=0)
    history = sparse.fit(x, y, batch_size=32, epochs=2, callbacks=[dst], verbose=0)
    assert sum(history.history["weights_moved"]) > 0


def _train(compile_model, model_factory, toy_data, epochs, initial_epoch=0, model=None):
    x, y = toy_data
    model = model or compile_model(model_factory())
    dst = RecordingCallback(data=(x, y), update_frequency=5, seed=0)
    model.fit(
        x, y, batch_size=32, epochs=epochs, initial_epoch=initial_epoch,
        callbacks=[dst], shuffle=False, verbose=0,
    )
    return model, dst.update_steps


@pytest.mark.parametrize(
    "via",
    [
        "keras_file",
        pytest.param(
            "tf_checkpoint",
            marks=pytest.mark.skipif(
                keras.backend.backend() != "tensorflow",
                reason="tf.train.Checkpoint is TensorFlow's",
            ),
        ),
    ],
)
def test_resume_continues_with_same_masks_and_steps(mlp, toy_data, tmp_path, via, compile_model):
    factory = lambda: ft.sparsify(mlp, 0.2, seed=0)
    full, full_steps = _train(compile_model, factory, toy_data, epochs=4)

    first, first_steps = _train(compile_model, factory, toy_data, epochs=2)
    if via == "keras_file":
        path = str(tmp_path / "run.keras")
        ft.io.save_model_atomic(first, path)
        resumed = keras.saving.load_model(path)
    else:
        checkpoint = tf.train.Checkpoint(model=first, optimizer=first.optimizer)
        path = checkpoint.save(str(tmp_path / "ckpt"))
        resumed = compile_model(factory())
        resumed.optimizer.build(resumed.trainable_variables)
        tf.train.Checkpoint(model=resumed, optimizer=resumed.optimizer).restore(path)
    assert int(resumed.optimizer.iterations) == 16
    np.testing.assert_array_equal(_masks(resumed)[0], _masks(first)[0])
    resumed, second_steps = _train(compile_model, factory, toy_data, epochs=4, initial_epoch=2, model=resumed)

    assert first_steps + second_steps == full_steps == [5, 10, 15, 20, 25, 30]
    for a, b in zip(_masks(resumed), _masks(full)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        _np(ft.masked_kernels(resumed)[0].kernel), _np(ft.masked_kernels(full)[0].kernel), atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"update_frequency": 0}, "update_frequency"),
        ({"update_frequency": 2.5}, "update_frequency"),
        ({"death_rate": 1.0}, "death_rate"),
        ({"death_rate": -0.1}, "death_rate"),
        ({"death_rate_schedule": "linear"}, "death_rate_schedule"),
        ({"death": "random"}, "death"),
        ({"growth": "magnitude"}, "growth"),
        ({"start_step": -1}, "start_step"),
        ({"start_step": 10, "end_step": 5}, "end_step"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        DynamicSparsityCallback(data=(np.zeros((2, 2)), np.zeros(2)), **kwargs)


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ValueError, match="'gradient', 'random', 'momentum'"):
        DynamicSparsityCallback(growth="rigl")


@pytest.mark.parametrize(
    "data, match",
    [
        ((np.zeros((100, 2)), np.zeros(50)), "different numbers of examples"),
        ((np.zeros((0, 2)), np.zeros(0)), "no examples"),
        ("abc", "str is not training data"),
        ({"x": 1}, "dict is not training data"),
        (iter([(np.zeros((2, 2)), np.zeros(2))]), "one-shot iterator"),
        (3, "int is not training data"),
    ],
)
def test_bad_growth_data_is_refused_up_front(data, match):
    with pytest.raises(ValueError, match=match):
        DynamicSparsityCallback(data=data)


def test_gradient_growth_needs_data():
    with pytest.raises(ValueError, match="growth='gradient' needs `data`"):
        DynamicSparsityCallback()


def test_model_without_masks_fails_before_any_step(mlp, toy_data, compile_model):
    x, y = toy_data
    compile_model(mlp)
    with pytest.raises(ValueError, match="needs a model with masked layers"):
        mlp.fit(x, y, epochs=1, verbose=0, callbacks=[DynamicSparsityCallback(data=(x, y))])
    assert int(mlp.optimizer.iterations) == 0


def test_momentum_growth_needs_momentum(mlp, toy_data, compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="growth='momentum' needs an optimizer with momentum"):
        sparse.fit(x, y, epochs=1, verbose=0, callbacks=[DynamicSparsityCallback(growth="momentum")])
    assert int(sparse.optimizer.iterations) == 0


def test_update_topology_without_model():
    with pytest.raises(ValueError, match="no model"):
        DynamicSparsityCallback(growth="random").update_topology()


@pytest.mark.parametrize("growth", ["random", "momentum"])
@pytest.mark.parametrize("program", ["per_layer", "whole_model"])
def test_topology_update_reaches_the_next_training_step(mlp, toy_data, growth, program,
                                                        monkeypatch):
    """The step after an update runs on the new masks and weights.

    Runs on every backend: on JAX `fit` keeps the live state in the trainer
    during an epoch, on TensorFlow and PyTorch the step reads the variables
    (and the kernel constraint the mask variable); either way an edit a
    callback makes must reach the next step. With a learning rate of zero
    nothing else changes the weights, so the loss of the second batch is the
    edited model's loss on it, and the edit survives to the end of `fit`,
    with the stored kernels zero outside the edited masks. The whole-model
    program writes the variables in place (JAX: donates their arrays, the
    trainer's live state among them; momentum growth passes the momentum
    arrays twice, as scores and as slots to reset).
    """
    if program == "whole_model":
        monkeypatch.setattr(ft.updaters, "WHOLE_MODEL_WEIGHTS", 0)
    x, y = toy_data
    sparse = ft.sparsify(mlp, 0.3, seed=0)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    sparse.compile(keras.optimizers.SGD(0.0, momentum=0.9), loss=loss_fn)

    class Probe(DynamicSparsityCallback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.first_loss = float(logs["loss"])
                self.update_topology(death_rate=0.9)
                self.edited = _masks(self.model)
                xb, yb = x[32:64], y[32:64]
                self.expected_second = float(_np(loss_fn(yb, self.model(xb))))
            elif batch == 1:
                self.second_mean = float(logs["loss"])  # mean over two batches

    probe = Probe(growth=growth, seed=3)
    before = _masks(sparse)
    sparse.fit(x, y, batch_size=32, epochs=1, shuffle=False, callbacks=[probe], verbose=0)
    assert any(not np.array_equal(b, e) for b, e in zip(before, probe.edited))
    second = 2 * probe.second_mean - probe.first_loss
    assert second == pytest.approx(probe.expected_second, rel=1e-5)
    for edited, now, mk in zip(probe.edited, _masks(sparse), ft.masked_kernels(sparse)):
        np.testing.assert_array_equal(now, edited)
        assert np.all(_np(mk.kernel)[~edited] == 0)


@pytest.mark.parametrize("prune", [False, True])
def test_dense_layers_are_rewired_only_with_the_original_quirk(mlp, toy_data, prune,
                                                               compile_model):
    x, y = toy_data
    sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
    sparse.fit(x, y, batch_size=32, epochs=1, verbose=0)
    dense_layer = ft.masked_kernels(sparse)[2]  # ERK makes the classifier dense
    assert _np(dense_layer.mask).all()
    before = _np(dense_layer.kernel)
    momentum = optimizer_slots.momentum_variable(sparse.optimizer, dense_layer.kernel)
    dst = DynamicSparsityCallback(data=(x, y), batch_size=32, death_rate=0.5, seed=0,
                                  prune_dense_layers=prune)
    dst.set_model(sparse)
    dst.update_topology()
    after = _np(dense_layer.kernel)
    assert _np(dense_layer.mask).all()  # dense before and after
    if not prune:
        np.testing.assert_array_equal(after, before)
        return
    # The original's truncate_weights: the ceil(p N) smallest weights are
    # dropped; the only inactive positions, they regrow at zero.
    smallest = np.argsort(np.abs(before).ravel(), kind="stable")[:math.ceil(0.5 * before.size)]
    expected = before.ravel().copy()
    expected[smallest] = 0.0
    np.testing.assert_array_equal(after.ravel(), expected)
    assert np.all(_np(momentum).ravel()[smallest] == 0)  # slots reset as grown


def _small_sparse_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)),
                              keras.layers.Dense(12, activation="relu", name="hidden"),
                              keras.layers.Dense(4, name="logits")])
    sparse = ft.sparsify(model, 0.5, distribution="uniform", seed=0)
    sparse.compile(keras.optimizers.SGD(0.5),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return sparse


def _expected_masks(kernels, masks, gradients, death_rate):
    """numpy: drop the smallest active |w|, grow the largest inactive |g|."""
    found = []
    for w, mask, g in zip(kernels, masks, gradients):
        n = math.ceil(death_rate * mask.sum())
        drop = np.argsort(np.where(mask, np.abs(w), np.inf).ravel(), kind="stable")[:n]
        survivors = mask.ravel().copy()
        survivors[drop] = False
        scores = np.where(survivors, -np.inf, np.abs(g).ravel())
        grown = survivors.copy()
        grown[np.argsort(-scores, kind="stable")[:n]] = True
        found.append(grown.reshape(mask.shape))
    return found


def test_last_batch_growth_uses_the_gradient_before_the_update_step(toy_data):
    x, y = toy_data
    train = ft.data.from_arrays(x, y, batch_size=32, seed=0)
    k = 3  # the update runs after step 3, on the gradient of its batch

    reference = _small_sparse_model()
    kernels = [mk.kernel for mk in ft.masked_kernels(reference)]
    gradient_fn = ft.backend.make_loss_gradient_fn(reference, kernels)
    reference.fit(train.epochs(0, 1), steps_per_epoch=k - 1, epochs=1, verbose=0,
                  shuffle=False)
    before = [_np(g) for g in gradient_fn(*train.training_batch(k - 1))]
    reference.fit(train.epochs(0, 1).skip(k - 1), steps_per_epoch=1, epochs=1,
                  verbose=0, shuffle=False)
    after = [_np(g) for g in gradient_fn(*train.training_batch(k - 1))]
    weights = [_np(w) for w in kernels]
    masks = _masks(reference)
    expected = _expected_masks(weights, masks, before, 0.5)
    # The test tells the two apart: one step later the gradient grows others.
    assert any(not np.array_equal(a, b) for a, b in
               zip(expected, _expected_masks(weights, masks, after, 0.5)))

    sparse = _small_sparse_model()
    dst = DynamicSparsityCallback(data=train, update_frequency=k, end_step=k,
                                  growth_batch="last", seed=0)
    sparse.fit(train.epochs(0, 1), steps_per_epoch=k, epochs=1, verbose=0, shuffle=False,
               callbacks=[dst])
    assert dst.last_update["step"] == k
    for got, want in zip(_masks(sparse), expected):
        np.testing.assert_array_equal(got, want)


def test_last_batch_growth_needs_the_training_set(toy_data):
    x, y = toy_data
    with pytest.raises(ValueError, match="growth_batch='last'.*TrainingSet"):
        DynamicSparsityCallback(data=(x, y), growth_batch="last")
    with pytest.raises(ValueError, match="`growth_batch`.*'fresh', 'last'"):
        DynamicSparsityCallback(data=(x, y), growth_batch="previous")


@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="PyTorch's trainer runs one step per execution only")
def test_last_batch_growth_needs_single_steps(toy_data):
    x, y = toy_data
    train = ft.data.from_arrays(x, y, batch_size=32, seed=0)
    sparse = _small_sparse_model()
    sparse.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                   steps_per_execution=2)
    dst = DynamicSparsityCallback(data=train, growth_batch="last")
    with pytest.raises(ValueError, match="steps_per_execution=1"):
        sparse.fit(train.epochs(0, 1), steps_per_epoch=4, epochs=1, verbose=0, shuffle=False,
                   callbacks=[dst])


def test_public_seams_give_the_same_update_as_the_callback(mlp, toy_data, compile_model):
    """An update with scores computed beforehand equals the callback's own."""
    from freetickets_tf.schedules import DSTSchedule

    x, y = toy_data
    models, callbacks = [], []
    for use_schedule in (False, True):
        keras.utils.set_random_seed(0)
        sparse = compile_model(ft.sparsify(mlp, 0.2, seed=0))
        kwargs = (dict(schedule=DSTSchedule(update_frequency=4, death_rate=0.3))
                  if use_schedule else dict(update_frequency=4, death_rate=0.3))
        dst = DynamicSparsityCallback(data=(x, y), batch_size=32, seed=0, **kwargs)
        dst.set_model(sparse)
        dst.prepare()
        models.append(sparse)
        callbacks.append(dst)
    own, seamed = callbacks
    assert seamed.update_frequency == 4 and seamed.death_rate == 0.3
    batch = own._growth_batch(0)  # the batch the callback would draw at step 0
    own.update_topology()
    seamed.update_topology(scores=seamed.growth_gradients(*batch))
    for a, b in zip(_masks(models[0]), _masks(models[1])):
        np.testing.assert_array_equal(a, b)
    assert len(seamed.masked_kernels) == len(ft.masked_kernels(models[1]))
    with pytest.raises(ValueError, match="`scores`: 1 arrays"):
        seamed.update_topology(scores=[None])
    with pytest.raises(ValueError, match="Invalid `schedule`"):
        DynamicSparsityCallback(data=(x, y), schedule={"update_frequency": 4})
