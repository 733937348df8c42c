"""Masked layers: masks are owned variables, masked weights stay exactly zero
after optimizer steps, the kernel gradient stays dense, and state round-trips."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import freetickets_tf as ft
from freetickets_tf import layers as fl
from freetickets_tf.backend import make_loss_gradient_fn
from freetickets_tf.backend import masks_in_forward_pass

# (masked class, its Keras base, constructor kwargs, input shape without batch)
LAYER_CASES = [
    (fl.MaskedDense, keras.layers.Dense, {"units": 6}, (5,)),
    (fl.MaskedConv1D, keras.layers.Conv1D, {"filters": 4, "kernel_size": 3}, (9, 3)),
    (fl.MaskedConv2D, keras.layers.Conv2D, {"filters": 4, "kernel_size": 3}, (7, 7, 3)),
    (fl.MaskedConv3D, keras.layers.Conv3D, {"filters": 2, "kernel_size": 2}, (4, 4, 4, 2)),
    (fl.MaskedDepthwiseConv2D, keras.layers.DepthwiseConv2D, {"kernel_size": 3}, (7, 7, 3)),
    (
        fl.MaskedSeparableConv2D,
        keras.layers.SeparableConv2D,
        {"filters": 4, "kernel_size": 3},
        (7, 7, 3),
    ),
]


def _random_masks(layer, rng, density=0.4):
    masks = []
    for mk in layer.masked_kernels:
        mask = rng.random(tuple(mk.kernel.shape)) < density
        mk.mask.assign(mask)
        mk.kernel.assign(np.where(mask, ops.convert_to_numpy(mk.kernel), 0.0))
        masks.append(mask)
    return masks


def _model_around(layer, input_shape):
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(layer(inputs)))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_masks_are_non_trainable_layer_variables(cls, base, kwargs, input_shape):
    layer = cls(**kwargs)
    model = _model_around(layer, input_shape)
    assert isinstance(layer, base)
    names = [v.name for v in layer.non_trainable_weights]
    expected = [f"{n}{suffix}" for n in cls.kernel_names for suffix in ("_mask", "_explored")]
    assert sorted(names) == sorted(expected)
    mask_ids = {id(v) for v in model.non_trainable_weights}
    assert all(id(mk.mask) in mask_ids for mk in layer.masked_kernels)
    assert all(mk.mask.dtype == "bool" for mk in layer.masked_kernels)


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_get_config_round_trips(cls, base, kwargs, input_shape):
    layer = cls(**kwargs, name="masked")
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    # The config is the Keras base layer's: nothing mask-specific leaks in.
    assert config == base.from_config(config).get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is cls


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_masked_weights_zero_after_steps_and_gradient_dense(cls, base, kwargs, input_shape):
    rng = np.random.default_rng(1)
    layer = cls(**kwargs)
    model = _model_around(layer, input_shape)
    masks = _random_masks(layer, rng)
    x = rng.normal(size=(16, *input_shape)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.compile(
        keras.optimizers.SGD(0.5, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    # The outputs are those of the masked kernels, on every backend.
    plain = keras.models.clone_model(model, clone_function=_unmasked)
    ft.masking.copy_weights(model, plain, fold_masks=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(model(x)), ops.convert_to_numpy(plain(x)), atol=1e-5
    )
    if not masks_in_forward_pass():
        # TensorFlow: the kernel constraint keeps stored masked weights at zero.
        for mk, mask in zip(layer.masked_kernels, masks):
            assert np.all(ops.convert_to_numpy(mk.kernel)[~mask] == 0.0)
    ft.masking.zero_inactive_weights(model)
    for mk, mask in zip(layer.masked_kernels, masks):
        kernel = ops.convert_to_numpy(mk.kernel)
        assert np.all(kernel[~mask] == 0.0)
        assert np.count_nonzero(kernel[mask]) == mask.sum()  # the rest trained
    # The gradient with respect to the kernel is dense: defined (and non-zero
    # in general) at the inactive positions too, as gradient growth needs.
    kernels = [mk.kernel for mk in layer.masked_kernels]
    grads = make_loss_gradient_fn(model, kernels)(x, y)
    for grad, mask in zip(grads, masks):
        assert np.count_nonzero(ops.convert_to_numpy(grad)[~mask]) > 0


def _unmasked(layer):
    base = {masked: base for base, masked in fl.MASKED_VERSIONS.items()}.get(type(layer))
    return (base or type(layer)).from_config(layer.get_config())


def test_user_kernel_constraint_still_applies():
    layer = fl.MaskedDense(4, kernel_constraint=keras.constraints.NonNeg())
    model = _model_around(layer, (3,))
    mask = np.array([[True, False, True, True]] * 3)
    layer.kernel_mask.assign(mask)
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 3)), np.full((8, 3), -5.0), verbose=0, epochs=3)
    ft.masking.zero_inactive_weights(model)  # a no-op on TensorFlow
    kernel = ops.convert_to_numpy(layer.kernel)
    assert np.all(kernel >= 0) and np.all(kernel[~mask] == 0)
    assert isinstance(layer.get_config()["kernel_constraint"], dict)


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_keras_file_round_trip_keeps_masks(tmp_path, cls, base, kwargs, input_shape):
    rng = np.random.default_rng(2)
    layer = cls(**kwargs, name="masked")
    model = _model_around(layer, input_shape)
    masks = _random_masks(layer, rng)
    layer.masked_kernels[0].explored.assign(masks[0] | (rng.random(masks[0].shape) < 0.2))
    explored = ops.convert_to_numpy(layer.masked_kernels[0].explored)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_layer = loaded.get_layer("masked")
    assert type(loaded_layer) is cls
    for mk, mask in zip(loaded_layer.masked_kernels, masks):
        np.testing.assert_array_equal(ops.convert_to_numpy(mk.mask), mask)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded_layer.masked_kernels[0].explored), explored
    )
    x = rng.normal(size=(2, *input_shape)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.train.Checkpoint is TensorFlow's"
)
def test_masks_survive_tf_train_checkpoint(tmp_path):
    layer = fl.MaskedConv2D(4, 3, name="masked")
    model = _model_around(layer, (6, 6, 2))
    (mask,) = _random_masks(layer, np.random.default_rng(3))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    layer.kernel_mask.assign(np.ones(mask.shape, bool))
    tf.train.Checkpoint(model=model).restore(path).assert_consumed()
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.kernel_mask), mask)


def test_masked_version_only_for_exact_supported_classes():
    class MyDense(keras.layers.Dense):
        pass

    assert type(fl.masked_version(keras.layers.Dense(3))) is fl.MaskedDense
    assert fl.masked_version(MyDense(3)) is None
    assert fl.masked_version(keras.layers.Conv2DTranspose(3, 3)) is None
    assert ft.layers.MaskedDense is fl.MaskedDense


# --- compact storage: active values and bit-packed masks -------------------


def _variables(model):
    return [(v.path, v.dtype, ops.convert_to_numpy(v).copy()) for v in model.weights]


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_compact_file_loads_bit_identical(tmp_path, cls, base, kwargs, input_shape):
    rng = np.random.default_rng(5)
    layer = cls(**kwargs, name="masked")
    model = _model_around(layer, input_shape)
    masks = _random_masks(layer, rng, density=0.3)
    for mk, mask in zip(layer.masked_kernels, masks):
        mk.explored.assign(mask | (rng.random(mask.shape) < 0.3))
    before = _variables(model)
    path = str(tmp_path / "m.keras")
    model.save(path)
    after = _variables(keras.saving.load_model(path))
    assert [(p, d) for p, d, _ in after] == [(p, d) for p, d, _ in before]
    for (_, _, a), (_, _, b) in zip(after, before):
        assert a.tobytes() == b.tobytes()


def _stored(path):
    """`{layer path: {key: array}}` of a `.keras` file's weights."""
    import zipfile

    import h5py

    found = {}
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f:
        with h5py.File(f, "r") as h5:
            def visit(name, item):
                if isinstance(item, h5py.Dataset):
                    layer, key = name.rsplit("/", 1)
                    found.setdefault(layer, {})[key] = item[()]
            h5.visititems(visit)
    return found


def test_masks_are_bit_packed_and_only_active_weights_stored(tmp_path):
    layer = fl.MaskedDense(37, name="masked")  # 11 x 37 = 407 weights: not bytes
    model = _model_around(layer, (11,))
    (mask,) = _random_masks(layer, np.random.default_rng(0), density=0.2)
    model.save(tmp_path / "m.keras")
    (entries,) = [v for k, v in _stored(tmp_path / "m.keras").items() if "masked" in k]
    kernel = ops.convert_to_numpy(layer.kernel)
    # kernel (0) active values, bias (1) whole, mask (2) and explored (3) packed.
    assert sorted(entries) == ["0_active", "1", "2_bits", "3_bits"]
    np.testing.assert_array_equal(entries["0_active"], kernel[mask])
    np.testing.assert_array_equal(entries["2_bits"], np.packbits(mask.reshape(-1)))
    assert entries["2_bits"].size == 51  # ceil(407 / 8)


def test_kernel_with_nonzero_inactive_weights_is_stored_whole(tmp_path):
    layer = fl.MaskedDense(5, name="masked")
    model = _model_around(layer, (4,))
    mask = np.random.default_rng(1).random((4, 5)) < 0.5
    layer.kernel_mask.assign(mask)  # the kernel keeps its inactive values
    kernel = ops.convert_to_numpy(layer.kernel).copy()
    model.save(tmp_path / "m.keras")
    (entries,) = [v for k, v in _stored(tmp_path / "m.keras").items() if "masked" in k]
    assert "0" in entries and "0_active" not in entries
    loaded = keras.saving.load_model(tmp_path / "m.keras").get_layer("masked")
    assert ops.convert_to_numpy(loaded.kernel).tobytes() == kernel.tobytes()


def test_files_in_the_former_format_still_load(tmp_path, monkeypatch):
    layer = fl.MaskedDense(6, name="masked")
    model = _model_around(layer, (5,))
    (mask,) = _random_masks(layer, np.random.default_rng(2))
    with monkeypatch.context() as patch:  # every variable whole, bool masks
        patch.setattr(fl.MaskedLayerMixin, "save_own_variables",
                      keras.layers.Layer.save_own_variables)
        model.save(tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras").get_layer("masked")
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded.kernel_mask), mask)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded.kernel),
                                  ops.convert_to_numpy(layer.kernel))


@pytest.mark.parametrize("corrupt, message", [
    (lambda e: e.update({"2_bits": e["2_bits"][:-1]}), "needs 4 packed bytes, the file holds 3"),
    (lambda e: e.update({"0_active": e["0_active"][:-1]}), "active values, but its mask has"),
    (lambda e: e.pop("1"), "holds 3 variables"),
])
def test_corrupted_compact_weights_name_the_layer(corrupt, message):
    layer = fl.MaskedDense(5, name="masked")
    _model_around(layer, (5,))  # 25 weights: 4 packed bytes
    _random_masks(layer, np.random.default_rng(3))
    entries = {}
    layer.save_own_variables(entries)
    corrupt(entries)
    with pytest.raises(ValueError, match="layer 'masked'|Layer 'masked'") as error:
        layer.load_own_variables(entries)
    assert message in str(error.value)


def test_corrupted_compact_file_is_a_clear_error(tmp_path):
    import io
    import zipfile

    import h5py

    inputs = keras.Input((5,))
    model = keras.Model(inputs, fl.MaskedDense(5, name="masked")(inputs))
    model.save(tmp_path / "m.keras")
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "model.weights.h5":  # one packed byte short
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "a") as h5:
                    names = []
                    h5.visititems(lambda name, _: names.append(name)
                                  if name.endswith("2_bits") else None)
                    for name in names:
                        value = h5[name][()]
                        del h5[name]
                        h5[name] = value[:-1]
                data = buffer.getvalue()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="Corrupted compact weights of layer 'masked': "
                       "'kernel_mask' \\(5, 5\\) needs 4 packed bytes, the file holds 3"):
        keras.saving.load_model(bad)


@pytest.mark.parametrize("cls,base,kwargs,input_shape", LAYER_CASES)
def test_count_params_counts_weights_not_masks(cls, base, kwargs, input_shape):
    layer = cls(**kwargs)
    _model_around(layer, input_shape)
    plain = base(**kwargs)
    _model_around(plain, input_shape)
    assert layer.count_params() == plain.count_params()


def test_summary_shows_the_real_weights_of_a_masked_layer():
    lines = []
    layer = fl.MaskedDense(300, name="masked")
    model = _model_around(layer, (784,))
    model.summary(print_fn=lines.append)
    (row,) = [line for line in lines if "masked" in line]
    assert "235,500" in row and "705,900" not in row  # 784 x 300 + 300
    text = "\n".join(lines)
    # + the 300 x 3 + 3 head, all float32: 4 bytes each, no mask bytes
    assert re.search(r"Total params: 236,403 \(923\.45 KB\)", text)
    assert re.search(r"Non-trainable params: 0 ", text)  # the masks are not parameters
    assert model.count_params() == 236_403
    assert len(model.weights) == 6  # the masks are still weights: get_weights keeps them
