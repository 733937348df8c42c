"""evaluate_ensemble: scores of the ensemble and its members, and TensorBoard."""

import keras
import numpy as np
import pytest

import freetickets_tf as ft
from freetickets_tf.evaluation import ensemble_probabilities
from freetickets_tf.evaluation import evaluate_ensemble


def _member(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3)])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_report_matches_numpy(tmp_path, read_scalars):
    members = [_member(s) for s in (0, 1)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    member_probs = np.stack([_softmax(m.predict(x, verbose=0)) for m in members])
    mean = member_probs.mean(0)
    report = evaluate_ensemble(ft.EnsembleModel(members), x, y, log_dir=tmp_path, step=3)
    assert report["ensemble"]["accuracy"] == pytest.approx((mean.argmax(1) == y).mean())
    assert report["ensemble"]["nll"] == pytest.approx(
        -np.log(mean[np.arange(64), y]).mean(), rel=1e-5)
    for scores, probs in zip(report["members"], member_probs):
        assert scores["accuracy"] == pytest.approx((probs.argmax(1) == y).mean())
    top = member_probs.argmax(-1)
    assert report["diversity"]["disagreement"] == pytest.approx((top[0] != top[1]).mean())
    probs, stacked = ensemble_probabilities(ft.EnsembleModel(members), x)
    np.testing.assert_allclose(probs, mean, atol=1e-6)
    np.testing.assert_allclose(stacked, member_probs, atol=1e-6)
    scalars = read_scalars(tmp_path / "evaluation")
    assert scalars["ensemble/ece"][3] == pytest.approx(report["ensemble"]["ece"], rel=1e-6)
    assert scalars["member_1/nll"][3] == pytest.approx(report["members"][1]["nll"], rel=1e-6)
    assert "diversity/kl_divergence" in scalars


def test_single_member_has_no_diversity():
    x = np.zeros((4, 6), "float32")
    report = evaluate_ensemble(ft.EnsembleModel([_member(0)]), x, np.zeros(4, int))
    assert report["diversity"] == {} and len(report["members"]) == 1


def _ensemble_and_data(members=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = rng.integers(0, 3, 120)
    return ft.EnsembleModel([_member(s) for s in range(members)]), x, y


def test_evaluate_writes_every_mode_and_matches_metrics(tmp_path):
    from freetickets_tf.evaluation import evaluate

    ensemble, x, y = _ensemble_and_data()
    noise = np.random.default_rng(1).uniform(-4, 4, size=(50, 6)).astype("float32")
    out = tmp_path / "report"
    report = evaluate(ensemble, x, y, modes=["predict", "calibration", "disagreement",
                                             "kd", "ood"],
                      ood_data={"noise": noise}, output_dir=out, num_bins=10, verbose=0)
    probs, member_probs = ensemble_probabilities(ensemble, x)
    assert report["predict"]["ensemble"]["accuracy"] == ft.metrics.accuracy(y, probs)
    assert report["calibration"]["ensemble"]["ece"] == pytest.approx(
        ft.metrics.ece(y, probs, num_bins=10))
    assert [m["nll"] for m in report["predict"]["members"]] == pytest.approx(
        [ft.metrics.nll(y, p) for p in member_probs])
    pairs = np.array(report["disagreement"]["pairwise"])
    top = member_probs.argmax(-1)
    assert pairs[0, 2] == pytest.approx((top[0] != top[2]).mean())
    assert np.allclose(pairs, pairs.T) and np.all(np.diag(pairs) == 0)
    assert report["disagreement"]["mean"] == pytest.approx(pairs[np.triu_indices(3, 1)].mean())
    kd = np.array(report["kd"]["pairwise"])
    assert report["kd"]["mean"] == pytest.approx(kd[~np.eye(3, dtype=bool)].mean())
    out_probs, _ = ensemble_probabilities(ensemble, noise)
    ood = report["ood"]["noise"]["ensemble"]
    assert ood["max_probability"]["auroc"] == pytest.approx(ft.metrics.auroc(
        probs.max(1), out_probs.max(1)))
    assert ood["entropy"]["fpr_at_95_tpr"] == pytest.approx(ft.metrics.fpr_at_95_tpr(
        -ft.metrics.entropy(probs), -ft.metrics.entropy(out_probs)))
    assert len(report["ood"]["noise"]["members"]) == 3
    stored = (out / "report.json").read_text()
    assert '"kd"' in stored and (out / "reliability_diagram.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "report.md").read_text()
    for heading in ("## predict", "## calibration", "## disagreement", "## kd", "## ood"):
        assert heading in markdown
    assert f"| ensemble | {report['predict']['ensemble']['accuracy']:.4f} |" in markdown


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="scikit-learn's t-SNE, the same on every backend; slow")
def test_evaluate_tsne_of_run_snapshots(tmp_path):
    from freetickets_tf.evaluation import evaluate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.integers(0, 3, 96)
    config = ft.EnsembleConfig(num_members=2, epochs=3, density=0.5, update_frequency=2,
                               batch_size=32, learning_rate=0.05, snapshot_every=1,
                               verbose=0)

    def build():
        return _member(0)

    run = tmp_path / "run"
    ft.train_ensemble("dst", build, (x[:64], y[:64]), (x[64:], y[64:]), config, run)
    snapshots = ft.tickets.RunDirectory.open(run).snapshots()
    assert {m: [e for e, _ in v] for m, v in snapshots.items()} == {0: [1, 2, 3],
                                                                    1: [1, 2, 3]}
    report = evaluate(str(run), x, y, modes=["tsne"], output_dir=tmp_path / "r",
                      tsne_examples=20, verbose=0)
    tsne = report["tsne"]
    assert tsne["members"] == [0, 0, 0, 1, 1, 1] and tsne["epochs"] == [1, 2, 3] * 2
    assert np.array(tsne["points"]).shape == (6, 2)
    assert (tmp_path / "r" / "tsne.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"modes": ["predict", "guess"]}, "modes.*guess"),
        ({"modes": []}, "modes"),
        ({"modes": ["ood"]}, "ood_data"),
        ({"modes": ["corruption"]}, "corruption_source"),
        ({"modes": ["tsne"]}, "snapshots"),
        ({"modes": ["corruption"], "corruption_source": "cifar10",
          "corruptions": ["sunburn"]}, "sunburn"),
    ],
)
def test_evaluate_rejects_bad_requests_before_work(kwargs, match, tmp_path):
    from freetickets_tf.evaluation import evaluate

    ensemble, x, y = _ensemble_and_data(2)
    with pytest.raises(ValueError, match=match):
        evaluate(ensemble, x, y, output_dir=tmp_path / "r", verbose=0, **kwargs)
    assert not (tmp_path / "r" / "report.json").exists()


def test_single_member_diversity_is_a_clear_error(tmp_path):
    from freetickets_tf.evaluation import evaluate

    ensemble, x, y = _ensemble_and_data(1)
    with pytest.raises(ValueError, match="at least 2 members"):
        evaluate(ensemble, x, y, modes=["kd"], output_dir=tmp_path, verbose=0)


def test_evaluate_corruption_from_a_cifar_c_directory(tmp_path):
    from freetickets_tf.evaluation import evaluate

    rng = np.random.default_rng(0)
    for name in ("fog", "contrast"):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 256, (5 * 8, 32, 32, 3), np.uint8))
    np.save(tmp_path / "labels.npy", rng.integers(0, 3, 5 * 8))

    def conv(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])

    ensemble = ft.EnsembleModel([conv(0), conv(1)])
    x, y = rng.random((10, 32, 32, 3)).astype("float32"), rng.integers(0, 3, 10)
    report = evaluate(ensemble, x, y, modes=["corruption"], output_dir=tmp_path / "r",
                      corruption_source=str(tmp_path), corruptions=["fog", "contrast"],
                      severities=[1, 4], preprocess=lambda images: images * 2 - 1,
                      verbose=0)["corruption"]
    assert [(r["corruption"], r["severity"]) for r in report["results"]] == [
        ("fog", 1), ("fog", 4), ("contrast", 1), ("contrast", 4)]
    images = np.load(tmp_path / "fog.npy")[24:32].astype("float32") / 255 * 2 - 1
    labels = np.load(tmp_path / "labels.npy")[24:32]
    probs, _ = ensemble_probabilities(ensemble, images)
    fog4 = report["results"][1]["ensemble"]
    assert fog4["accuracy"] == pytest.approx(ft.metrics.accuracy(labels, probs))
    assert fog4["nll"] == pytest.approx(ft.metrics.nll(labels, probs), rel=1e-5)
    accuracy = {(r["corruption"], r["severity"]): r["ensemble"]["accuracy"]
                for r in report["results"]}
    assert report["per_corruption"]["fog"]["accuracy"] == pytest.approx(
        (accuracy["fog", 1] + accuracy["fog", 4]) / 2)
    assert report["per_severity"]["4"]["accuracy"] == pytest.approx(
        (accuracy["fog", 4] + accuracy["contrast", 4]) / 2)
    assert report["mean"]["accuracy"] == pytest.approx(np.mean(list(accuracy.values())))
    assert len(report["members_mean_accuracy"]) == 2
    assert "## corruption" in (tmp_path / "r" / "report.md").read_text()


def _counting_stream(x, y, batch_size, passes, shuffle_seed=None):
    """A dataset of (x, y) batches that counts how often it is read; with
    `shuffle_seed`, in a new order on every read."""
    import tensorflow as tf

    def batches():
        passes.append(1)
        order = np.arange(len(x)) if shuffle_seed is None else np.random.default_rng(
            [shuffle_seed, len(passes)]).permutation(len(x))
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            yield x[index], y[index].astype("int32")

    return tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((None, *x.shape[1:]), "float32"), tf.TensorSpec((None,), "int32")))


def test_a_stream_is_read_once_and_scores_like_the_arrays(tmp_path, read_scalars):
    from freetickets_tf.evaluation import evaluate

    ensemble, x, y = _ensemble_and_data()
    from_arrays = evaluate_ensemble(ensemble, x, y, num_bins=10)
    passes = []
    # Reordered on every read: inputs and labels must come from one read.
    stream = _counting_stream(x, y, 32, passes, shuffle_seed=0)
    report = evaluate_ensemble(ensemble, stream, None, num_bins=10)
    assert passes == [1]
    for key, value in from_arrays["ensemble"].items():
        assert report["ensemble"][key] == pytest.approx(value, rel=1e-6)
    for ours, theirs in zip(report["members"], from_arrays["members"]):
        assert ours == pytest.approx(theirs, rel=1e-6)
    assert report["diversity"] == pytest.approx(from_arrays["diversity"], rel=1e-6)

    del passes[:]
    noise = np.random.default_rng(1).uniform(-4, 4, size=(50, 6)).astype("float32")
    noise_stream = _counting_stream(noise, np.zeros(50, int), 16, [])
    streamed = evaluate(ensemble, _counting_stream(x, y, 32, passes), None,
                        modes=["predict", "calibration", "disagreement", "kd", "ood"],
                        ood_data={"noise": noise_stream}, output_dir=tmp_path / "s",
                        num_bins=10, log_dir=tmp_path / "tb", verbose=0)
    assert passes == [1]  # every mode and the TensorBoard scalars from one pass
    arrays = evaluate(ensemble, x, y, modes=streamed["modes"], ood_data={"noise": noise},
                      output_dir=tmp_path / "a", num_bins=10, verbose=0)
    assert streamed["test_examples"] == arrays["test_examples"] == 120
    for mode in streamed["modes"]:
        assert json_numbers(streamed[mode]) == pytest.approx(json_numbers(arrays[mode]),
                                                             rel=1e-6, abs=1e-9, nan_ok=True)
    assert read_scalars(tmp_path / "tb" / "evaluation")["ensemble/nll"][0] == (
        pytest.approx(arrays["predict"]["ensemble"]["nll"], rel=1e-6))


def json_numbers(tree):
    """The numbers of a report section, in order (strings left out)."""
    if isinstance(tree, dict):
        return [n for key in sorted(tree) for n in json_numbers(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [n for item in tree for n in json_numbers(item)]
    return [] if isinstance(tree, str) else [float(tree)]


def test_a_stream_must_hold_labelled_batches():
    import tensorflow as tf

    ensemble, x, y = _ensemble_and_data(2)
    with pytest.raises(ValueError, match=r"\(inputs, labels\)"):
        evaluate_ensemble(ensemble, tf.data.Dataset.from_tensor_slices(x).batch(8), None)
    with pytest.raises(ValueError, match="Invalid `y`: pass None"):
        evaluate_ensemble(ensemble, tf.data.Dataset.from_tensor_slices((x, y)).batch(8), y)
    with pytest.raises(ValueError, match="Invalid `y`: 3 labels for 120 inputs"):
        evaluate_ensemble(ensemble, x, y[:3])
    with pytest.raises(ValueError, match="empty"):
        evaluate_ensemble(ensemble, tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
                          .take(0), None)


def test_corruption_mode_refuses_members_that_do_not_take_cifar_images(tmp_path):
    from freetickets_tf.evaluation import evaluate

    ensemble, x, y = _ensemble_and_data(2)
    with pytest.raises(ValueError, match=r"CIFAR-C images \(32, 32, 3\).*take \(6,\)"):
        evaluate(ensemble, x, y, modes=["predict", "corruption"],
                 corruption_source="cifar10", output_dir=tmp_path / "r", verbose=0)
    assert not (tmp_path / "r").exists()
