"""Folding masks into plain Keras layers, and the SavedModel of an ensemble."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import freetickets_tf as ft
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.serving import export_saved_model
from freetickets_tf.serving import fold_masks


def conv_model(activation=None):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(3, activation=activation, name="classifier"),
        ],
        name="ticket",
    )


def mlp_model():
    """Functional, with the classifier in a nested model."""
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    head = keras.Sequential([keras.Input((32,)), keras.layers.Dense(4, name="logits")],
                            name="head")
    return keras.Model(inputs, head(hidden), name="mlp")


def predict(model, x):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x))


def numpy_weights(model):
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}


# SavedModel export is TensorFlow's; other backends get a clear error (tested last).
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="SavedModel export needs TensorFlow"
)


@pytest.fixture
def conv_ensemble():
    members = [ft.sparsify(conv_model(a), 0.3, seed=i)
               for i, a in enumerate([None, "softmax", None])]
    return EnsembleModel(members, return_member_probabilities=True)


@pytest.fixture
def mlp_ensemble():
    return EnsembleModel([ft.sparsify(mlp_model(), 0.2, seed=i) for i in range(3)])


def image_batch():
    return np.random.default_rng(1).normal(size=(5, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize(
    "builder,shape", [(conv_model, (5, 8, 8, 1)), (mlp_model, (5, 16))]
)
def test_fold_masks(builder, shape):
    sparse = ft.sparsify(builder(), 0.3, seed=0)
    folded = fold_masks(sparse)
    leaves = [l for l in folded._flatten_layers(include_self=False) if not l._layers]
    assert not [l for l in leaves if type(l).__module__.startswith("freetickets_tf")]
    assert ft.masked_kernels(folded) == []
    assert not [v for v in folded.weights if v.dtype == "bool"]
    folded_weights = numpy_weights(folded)
    for mk in ft.masked_kernels(sparse):
        mask = keras.ops.cast(mk.mask, "float32")
        expected = keras.ops.convert_to_numpy(mk.kernel * mask)
        np.testing.assert_array_equal(folded_weights[mk.kernel.path], expected)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    np.testing.assert_allclose(predict(folded, x), predict(sparse, x), atol=1e-6)


def test_fold_masks_applies_the_mask_to_stray_weights():
    sparse = ft.sparsify(conv_model(), 0.3, seed=0)
    kernel, mask = ft.masked_kernels(sparse)[0][:2]
    kernel.assign(keras.ops.ones_like(kernel.value))  # an assign skips the constraint
    folded = fold_masks(sparse)
    folded_kernel = numpy_weights(folded)[kernel.path]
    np.testing.assert_array_equal(folded_kernel, keras.ops.convert_to_numpy(mask))


def test_fold_masks_rejects_subclassed_and_non_models():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = ft.layers.MaskedDense(2)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="only Sequential and functional"):
        fold_masks(model)
    with pytest.raises(ValueError, match="expected a keras.Model"):
        fold_masks(keras.layers.Dense(2))


@tensorflow_only
@pytest.mark.parametrize("name", ["conv_ensemble", "mlp_ensemble"])
def test_saved_model_round_trip(name, request, tmp_path):
    ensemble = request.getfixturevalue(name)
    shape = (5, *ensemble.member_input_shape)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    path = str(tmp_path / "exported")
    export_saved_model(ensemble, path, verbose=False)
    with_members = EnsembleModel(ensemble.members, return_member_probabilities=True)
    expected = predict(with_members, x)

    served = tf.saved_model.load(path)
    signature = served.signatures["serving_default"]
    for outputs in (signature(inputs=tf.constant(x)), served.serve(x)):
        assert set(outputs) == {"probabilities", "member_probabilities"}
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[key].numpy(), value, atol=1e-5)
    assert signature.structured_input_signature[1]["inputs"].shape.as_list() == [
        None, *x.shape[1:]]
    # Masks were folded: only float weights were written.
    assert served.variables and all(v.dtype == tf.float32 for v in served.variables)


@tensorflow_only
@pytest.mark.parametrize("mean,std", [(None, None), ([0.4], [0.3])])
def test_raw_uint8_and_scaled_images_give_the_same_probabilities(tmp_path, mean, std):
    """Training's normalizer, evaluation, and both SavedModel endpoints."""
    preprocessing = {"input_dtype": "uint8", "mean": mean, "std": std}
    members = [ft.sparsify(conv_model(), 0.3, seed=i) for i in range(2)]
    ensemble = EnsembleModel(members, preprocessing=preprocessing)
    raw = np.random.default_rng(2).integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    scaled = raw.astype("float32") * np.float32(1 / 255)

    # What the training pipeline feeds the members (the same function).
    trained = keras.ops.convert_to_numpy(ft.data.normalizer("uint8", mean, std)(raw))
    prepared = ft.data.apply_preprocessing(raw, preprocessing)
    np.testing.assert_array_equal(prepared, trained)
    expected = keras.ops.convert_to_numpy(ensemble(trained))
    for x in (raw, scaled):
        probabilities, _ = ft.evaluation.ensemble_probabilities(ensemble, x)
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)

    path = str(tmp_path / "exported")
    export_saved_model(ensemble, path, verbose=False)
    served = tf.saved_model.load(path)
    signature = served.signatures["serving_default"]
    assert signature.structured_input_signature[1]["inputs"].dtype == tf.uint8
    np.testing.assert_allclose(
        signature(inputs=tf.constant(raw))["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(
        served.serve_scaled(scaled)["probabilities"].numpy(), expected, atol=1e-6)
    # Silently wrong inputs are refused, in the SavedModel and in the model.
    with pytest.raises(tf.errors.InvalidArgumentError, match="divide by 255"):
        served.serve_scaled(raw.astype("float32"))
    with pytest.raises(ValueError, match="uint8 images reach the members as they are"):
        ensemble(raw)


@tensorflow_only
def test_export_refuses_a_uint8_signature_for_float_training(conv_ensemble, tmp_path):
    ensemble = EnsembleModel(conv_ensemble.members, preprocessing={
        "input_dtype": "float32", "mean": None, "std": None})
    with pytest.raises(ValueError, match="input_signature.*trained on float32"):
        export_saved_model(ensemble, tmp_path / "exported", verbose=False,
                           input_signature=tf.TensorSpec((None, 8, 8, 1), tf.uint8))
    assert not os.path.exists(tmp_path / "exported")
    export_saved_model(ensemble, tmp_path / "exported", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "exported"))
    assert not hasattr(served, "serve_scaled")
    x = image_batch().clip(0, 1)
    np.testing.assert_allclose(served.serve(x)["probabilities"].numpy(),
                               keras.ops.convert_to_numpy(ensemble(x)), atol=1e-6)


@tensorflow_only
def test_export_method_and_errors(mlp_ensemble, tmp_path, capsys):
    path = tmp_path / "exported"
    mlp_ensemble.export(path)
    assert os.path.exists(path / "saved_model.pb")
    assert "3 members" in capsys.readouterr().out
    mlp_ensemble.export(path, verbose=False)  # replaces the earlier export
    assert os.listdir(tmp_path) == ["exported"]
    with pytest.raises(ValueError, match="format"):
        mlp_ensemble.export(tmp_path / "other", format="onnx")
    with pytest.raises(ValueError, match="is_static"):
        mlp_ensemble.export(tmp_path / "other", is_static=True)
    with pytest.raises(ValueError, match="expected an EnsembleModel, got Functional"):
        export_saved_model(mlp_ensemble.members[0], tmp_path / "other")
    assert not os.path.exists(tmp_path / "other")


@tensorflow_only
def test_export_is_atomic(conv_ensemble, tmp_path, monkeypatch):
    path = tmp_path / "exported"
    export_saved_model(conv_ensemble, path, verbose=False)
    before = sorted(os.listdir(path))
    archive_class = type(keras.export.ExportArchive())

    def write_half_and_fail(self, filepath, **kwargs):
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(archive_class, "write_out", write_half_and_fail)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(conv_ensemble, path, verbose=False)
    assert sorted(os.listdir(path)) == before
    assert os.listdir(tmp_path) == ["exported"]  # no temporary directory left
    served = tf.saved_model.load(str(path))
    x = image_batch()
    np.testing.assert_allclose(
        served.serve(x)["probabilities"].numpy(),
        predict(conv_ensemble, x)["probabilities"],
        atol=1e-5,
    )


@tensorflow_only
def test_export_refuses_to_replace_other_directories(conv_ensemble, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        export_saved_model(conv_ensemble, tmp_path, verbose=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_export_needs_tensorflow_backend(conv_ensemble, tmp_path, monkeypatch, name):
    monkeypatch.setattr(keras.backend, "backend", lambda: name)
    with pytest.raises(
        NotImplementedError,
        match=f"KERAS_BACKEND=tensorflow; the Keras backend is '{name}'.*"
        "load on every backend.*KERAS_BACKEND=tensorflow freetickets-export",
    ):
        export_saved_model(conv_ensemble, tmp_path / "exported")
    assert not (tmp_path / "exported").exists()
