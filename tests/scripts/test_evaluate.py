"""`freetickets-evaluate`: a run directory in, report.json / report.md out."""

import json
import os

import pytest
from absl import app

import freetickets_tf as ft
from freetickets_tf.scripts import evaluate
from freetickets_tf.tickets import RunDirectory


@pytest.fixture
def run_evaluate(run_main):
    return lambda *args: run_main(evaluate, *args)


def test_evaluate_run_on_bundled_digits(tmp_path, run_evaluate, capsys, digits_model):
    run = RunDirectory.create(str(tmp_path / "run"), "dst", 2)
    for member in range(2):
        run.save_ticket(ft.sparsify(digits_model(member), 0.5, seed=member), member=member)
    run_evaluate(f"--run_dir={run.path}", "--modes=predict,calibration,kd,ood",
                 "--ood=noise", "--verbose=0")
    printed = capsys.readouterr().out
    report_dir = tmp_path / "run" / "report"
    report = json.loads((report_dir / "report.json").read_text())
    assert report["modes"] == ["predict", "calibration", "kd", "ood"]
    # The test split of freetickets-train with the same seed.
    x_test, y_test = ft.data.load_digits(seed=0)[1]
    assert report["test_examples"] == len(y_test)
    ensemble = ft.EnsembleModel.from_run(run.path)
    probs = ensemble.predict(x_test, verbose=0)
    assert report["predict"]["ensemble"]["accuracy"] == pytest.approx(
        ft.metrics.accuracy(y_test, probs))
    assert "noise" in report["ood"] and (report_dir / "reliability_diagram.png").exists()
    assert (report_dir / "report.md").read_text().strip() in printed


def test_evaluate_ood_reads_tfds_sets_fitted_to_the_model(tmp_path, run_evaluate,
                                                          monkeypatch, digits_model):
    import tensorflow_datasets as tfds

    run = RunDirectory.create(str(tmp_path / "run"), "dst", 1)
    run.save_ticket(digits_model(0), member=0)
    calls = []
    real_load = ft.data.load_tfds_images
    spy = lambda *args, **kwargs: calls.append((args, kwargs)) or real_load(*args, **kwargs)
    monkeypatch.setattr(ft.data, "load_tfds_images", spy)
    with tfds.testing.mock_data(num_examples=20):
        run_evaluate(f"--run_dir={run.path}", "--modes=ood", "--ood=mnist,noise",
                     f"--data_dir={tmp_path}", "--verbose=0")
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert set(report["ood"]) >= {"mnist", "noise"}
    n_test = len(ft.data.load_digits(seed=0)[1][1])
    assert calls == [(("mnist", "test"), {"data_dir": str(tmp_path),
                                         "image_shape": (8, 8, 1),
                                         "max_examples": n_test})]


def test_evaluate_errors_are_usage_errors(tmp_path, run_evaluate, digits_model):
    with pytest.raises(app.UsageError, match="--run_dir: .*does not exist"):
        run_evaluate(f"--run_dir={tmp_path / 'missing'}")
    run = RunDirectory.create(str(tmp_path / "run"), "dst", 1)
    run.save_ticket(digits_model(0), member=0)
    with pytest.raises(app.UsageError, match="modes.*magic"):
        run_evaluate(f"--run_dir={run.path}", "--modes=predict,magic", "--verbose=0")
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    with pytest.raises(app.UsageError) as info:
        run_evaluate(f"--run_dir={run.path}", "--modes=ood", "--ood=noise,svhn_cropped",
                     f"--data_dir={data_dir}", "--verbose=0")
    message = str(info.value)
    assert message.startswith("--ood: Dataset `svhn_cropped` is not prepared in")
    assert str(data_dir) in message and "tfds build svhn_cropped" in message
    with pytest.raises(app.UsageError, match="--ood: .*'svhn'.*'svhn_cropped'"):
        run_evaluate(f"--run_dir={run.path}", "--modes=ood", "--ood=svhn",
                     f"--data_dir={data_dir}", "--verbose=0")
    assert list(data_dir.iterdir()) == []  # nothing downloaded
    assert not os.path.exists(tmp_path / "run" / "report" / "report.json")


def test_evaluate_streams_a_tfds_test_split_with_the_runs_normalisation(
        tmp_path, run_evaluate, monkeypatch, no_network):
    import keras
    import numpy as np
    import tensorflow_datasets as tfds

    keras.utils.set_random_seed(0)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    run = RunDirectory.create(str(tmp_path / "run"), "dst", 1, config={
        "preprocessing": {"input_dtype": "uint8", "mean": list(mean), "std": list(std)}})
    member = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(10)])
    run.save_ticket(member, member=0)
    loads = []
    real_load = ft.data.load
    monkeypatch.setattr(ft.data, "load", lambda *a, **k: loads.append(k) or real_load(*a, **k))
    with tfds.testing.mock_data(num_examples=20):
        run_evaluate(f"--run_dir={run.path}", "--data=cifar10", "--modes=predict",
                     f"--data_dir={tmp_path}", "--verbose=0")
        test = real_load("cifar10", data_dir=str(tmp_path), validation_fraction=0,
                         normalization=(mean, std)).test
        expected = ft.evaluation.evaluate_ensemble(ft.EnsembleModel([member]), test, None)
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert loads[0]["normalization"] == (list(mean), list(std)) and loads[0]["validation_fraction"] == 0
    assert report["test_examples"] == 20
    assert report["predict"]["ensemble"]["nll"] == pytest.approx(expected["ensemble"]["nll"])
    assert np.isfinite(report["predict"]["ensemble"]["nll"])
