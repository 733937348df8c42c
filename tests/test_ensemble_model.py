"""EnsembleModel: the mean of the members' softmax probabilities in one model."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.ensemble_model import EnsembleModel
from freetickets_tf.ensemble_model import output_kind
from freetickets_tf.tickets import RunDirectory


def conv_model(activation=None, classes=3, input_shape=(8, 8, 1), name="ticket"):
    """Tickets of one run share the architecture, layer names and model name."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(classes, activation=activation, name="classifier"),
        ],
        name=name,
    )


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predict(model, x):
    """Eager forward pass: quicker than `predict` for a few tiny batches."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x))


def member_probabilities(members, x):
    """Each member's probabilities, computed outside the ensemble."""
    outputs = [predict(m, x) for m in members]
    return [out if output_kind(m) == "probabilities" else softmax(out)
            for m, out in zip(members, outputs)]


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(6, 8, 8, 1)).astype("float32")


@pytest.fixture
def sparse_members():
    return [ft.sparsify(conv_model(), 0.3, seed=i) for i in range(3)]


def masks(model):
    return [keras.ops.convert_to_numpy(mk.mask) for mk in ft.masked_kernels(model)]


def test_output_kind():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="logits")(inputs)
    functional_logits = keras.Model(inputs, hidden)
    functional_softmax = keras.Model(inputs, keras.layers.Softmax()(hidden))
    nested = keras.Sequential([keras.Input((4,)), keras.Sequential(
        [keras.layers.Dense(3), keras.layers.Activation("softmax")])])
    dense_softmax = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    assert output_kind(functional_logits) == "logits"
    assert output_kind(functional_softmax) == "probabilities"
    assert output_kind(nested) == "probabilities"
    assert output_kind(dense_softmax) == "probabilities"
    log_softmax = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="log_softmax")])
    assert output_kind(log_softmax) == "logits"


@pytest.mark.parametrize(
    "activations",
    [(None, None, None), ("softmax", "softmax", "softmax"), (None, "softmax", None)],
    ids=["logits", "probabilities", "mixed"],
)
def test_output_is_mean_of_member_softmax(activations, x):
    members = [conv_model(activation) for activation in activations]
    ensemble = EnsembleModel(members)
    expected = np.mean(member_probabilities(members, x), axis=0)
    probabilities = ensemble.predict(x, verbose=0)  # one compiled graph
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_member_outputs_declared(x):
    members = [conv_model() for _ in range(2)]
    raw = [predict(m, x) for m in members]
    declared = EnsembleModel(members, member_outputs="probabilities")
    assert declared.member_output_kinds == ["probabilities", "probabilities"]
    np.testing.assert_allclose(predict(declared, x), np.mean(raw, 0), atol=1e-6)
    with pytest.raises(ValueError, match="member_outputs"):
        EnsembleModel(members, member_outputs="log_probabilities")


def test_member_probabilities_output(x):
    members = [conv_model(), conv_model("softmax"), conv_model()]
    ensemble = EnsembleModel(members, return_member_probabilities=True)
    outputs = predict(ensemble, x)
    assert set(outputs) == {"probabilities", "member_probabilities"}
    assert outputs["member_probabilities"].shape == (6, 3, 3)
    np.testing.assert_allclose(
        outputs["member_probabilities"],
        np.stack(member_probabilities(members, x), axis=1),
        atol=1e-6,
    )
    mean = outputs["member_probabilities"].mean(axis=1)
    np.testing.assert_allclose(outputs["probabilities"], mean, atol=1e-6)


def test_properties():
    members = [conv_model(classes=5) for _ in range(3)]
    ensemble = EnsembleModel(members)
    assert ensemble.num_members == 3
    assert len(ensemble.members) == 3
    assert ensemble.member_input_shape == (8, 8, 1)
    assert ensemble.num_classes == 5


def test_members_are_copies_with_distinct_variable_paths():
    # Tickets loaded from files: same model name, same layer names.
    members = [conv_model(name="ticket") for _ in range(3)]
    ensemble = EnsembleModel(members)
    paths = [v.path for v in ensemble.weights]
    assert len(set(paths)) == len(paths)
    for i, member in enumerate(ensemble.members):
        assert all(v.path.startswith(f"member_{i}/") for v in member.weights)
    for member, copy in zip(members, ensemble.members):
        assert copy is not member
        for a, b in zip(member.get_weights(), copy.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_shape_mismatch_names_member_and_shapes():
    with pytest.raises(ValueError, match=r"members\[2\].*\(None, 4\).*\(None, 3\)"):
        EnsembleModel([conv_model(), conv_model(), conv_model(classes=4)])
    shapes = r"\(None, 6, 6, 1\).*\(None, 8, 8, 1\)"
    with pytest.raises(ValueError, match=r"members\[1\].*" + shapes):
        EnsembleModel([conv_model(), conv_model(input_shape=(6, 6, 1))])


def test_integer_inputs_are_refused_not_scored_unscaled(x):
    ensemble = EnsembleModel([keras.Sequential([keras.Input((x.shape[1],)),
                                                keras.layers.Dense(3)])])
    with pytest.raises(ValueError, match="uint8 images reach the members as they are"):
        ensemble(np.zeros(x.shape, "uint8"))
    with pytest.raises(ValueError, match="int32 images"):
        ensemble.predict(np.zeros(x.shape, "int32"), verbose=0)


def test_invalid_members():
    with pytest.raises(ValueError, match="empty"):
        EnsembleModel([])
    with pytest.raises(ValueError, match=r"members\[1\].*keras.Model, got Dense"):
        EnsembleModel([conv_model(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="list of keras.Model, got Sequential"):
        EnsembleModel(conv_model())
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"members\[0\].*not built"):
        EnsembleModel([unbuilt])
    inputs = keras.Input((4,))
    two_outputs = keras.Model(inputs, [keras.layers.Dense(3)(inputs)] * 2)
    with pytest.raises(ValueError, match=r"one output of shape \(batch, classes\)"):
        EnsembleModel([two_outputs])


def test_member_without_config():
    class Wrapper(keras.Model):  # takes a layer: no automatic config
        def __init__(self, layer):
            super().__init__(name="wrapper")
            self.layer = layer

        def call(self, inputs):
            return self.layer(inputs)

    model = Wrapper(keras.layers.Dense(3))
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"members\[0\]` \('wrapper'\): .*config"):
        EnsembleModel([model])


def test_save_and_load_keeps_predictions_and_masks(tmp_path, sparse_members, x):
    ensemble = EnsembleModel(sparse_members, return_member_probabilities=True)
    path = str(tmp_path / "ensemble.keras")
    ensemble.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, EnsembleModel)
    assert loaded.num_members == 3 and loaded.return_member_probabilities
    assert [m.name for m in loaded.members] == ["ticket"] * 3
    expected, got = predict(ensemble, x), predict(loaded, x)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    for member, copy in zip(sparse_members, loaded.members):
        assert ft.masking.overall_density(copy) == ft.masking.overall_density(member) < 1
        for a, b in zip(masks(member), masks(copy), strict=True):
            np.testing.assert_array_equal(a, b)
    assert [v.path for v in loaded.weights] == [v.path for v in ensemble.weights]


def test_from_run(tmp_path, sparse_members, x):
    run = RunDirectory.create(str(tmp_path / "run"), "dst", 3)
    for i, member in enumerate(sparse_members):
        run.save_ticket(member, member=i, seed=i)
    ensemble = EnsembleModel.from_run(run.path, return_member_probabilities=True)
    assert ensemble.num_members == 3
    np.testing.assert_allclose(
        predict(ensemble, x)["probabilities"],
        np.mean(member_probabilities(sparse_members, x), axis=0),
        atol=1e-6,
    )


def test_from_run_errors(tmp_path, sparse_members):
    with pytest.raises(ValueError, match="does not exist"):
        EnsembleModel.from_run(str(tmp_path / "missing"))
    run = RunDirectory.create(str(tmp_path / "run"), "dst", 3)
    with pytest.raises(ValueError, match="no finished ticket"):
        EnsembleModel.from_run(run.path)
    for i in range(2):
        run.save_ticket(sparse_members[i], member=i, seed=i)
    with pytest.raises(ValueError, match="partial: 2 of 3"):
        EnsembleModel.from_run(run.path)
    assert EnsembleModel.from_run(run.path, allow_partial=True).num_members == 2
    with open(run.ticket_path(1), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="Corrupt ticket"):
        EnsembleModel.from_run(run.path, allow_partial=True)
