"""`benchmarks/real_data.py --quick` on a tiny data set the test writes itself."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).parents[2] / "benchmarks" / "real_data.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("real_data_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_npz(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 900).astype("uint8")
    # Class-dependent brightness, so that something can be learned.
    images = (rng.random((900, 28, 28)) * 100 + labels[:, None, None] * 15).astype("uint8")
    data = tmp_path / "tiny.npz"
    test = 800 + np.argsort(labels[800:], kind="stable")  # sorted by class
    np.savez(data, x_train=images[:800], y_train=labels[:800],
             x_test=images[test], y_test=labels[test])
    return data


def test_quick_run_reports_every_method(tmp_path, capsys):
    data = _tiny_npz(tmp_path)
    out = tmp_path / "out"
    _load_benchmark().main(["--data", str(data), "--quick", "--verbose", "0",
                            "--output_dir", str(out)])
    printed = capsys.readouterr().out
    document = json.loads((tmp_path / "out_quick" / "results.json").read_text())
    results = document["results"]
    assert list(results) == ["dense", "deep_ensemble", "static", "dst", "edst"]
    assert document["train_images"] == 300 and document["test_images"] == 100
    for name, row in results.items():
        assert 0 <= row["accuracy"] <= 1 and row["nll"] > 0 and 0 <= row["ece"] <= 1
        assert len(row["member_accuracy"]) == (1 if name == "dense" else 3)
    assert results["dense"]["relative_training_flops"] == 1.0
    assert results["deep_ensemble"]["relative_test_flops"] == 3.0
    assert results["static"]["relative_test_flops"] < 3.0
    table = (tmp_path / "out_quick" / "results.md").read_text()
    assert table.count("\n| ") == 6 and "| edst |" in table  # header + 5 rows
    assert table.strip() in printed


def test_methods_subset_trains_dense_alone(tmp_path, capsys):
    data = _tiny_npz(tmp_path)
    _load_benchmark().main(["--data", str(data), "--quick", "--verbose", "0",
                            "--methods", "edst,dense", "--test_subset", "40",
                            "--update_end_fraction", "0.75",
                            "--output_dir", str(tmp_path / "out")])
    document = json.loads((tmp_path / "out_quick" / "results.json").read_text())
    assert list(document["results"]) == ["dense", "edst"]
    assert document["test_images"] == 40
    assert document["results"]["dense"]["relative_training_flops"] == 1.0
    assert sorted(p.name for p in (tmp_path / "out_quick").iterdir() if p.is_dir()) == [
        "dense", "edst"]


def test_unknown_method_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _load_benchmark().main(["--data", "x.npz", "--methods", "dense,magic"])
    assert "--methods: unknown ['magic']" in capsys.readouterr().err


def test_test_subset_is_a_random_sample_of_a_sorted_test_set(tmp_path):
    benchmark = _load_benchmark()
    args = benchmark.parse_args(["--data", str(_tiny_npz(tmp_path)), "--quick",
                                 "--test_subset", "30"])
    _, _, (x_test, y_test) = benchmark.load(args)
    assert len(y_test) == 30
    # The first 30 of the sorted test set would be one or two classes.
    assert len(np.unique(y_test)) >= 6
