"""`benchmarks/real_data.py --quick` on a tiny data set the test writes itself."""

import json

import numpy as np
import pytest


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


def test_quick_run_reports_every_method(tmp_path, capsys, load_benchmark):
    data = _tiny_npz(tmp_path)
    out = tmp_path / "out"
    load_benchmark("real_data").main(["--data", str(data), "--quick", "--verbose", "0",
                            "--members", "2", "--output_dir", str(out)])
    printed = capsys.readouterr().out
    document = json.loads((tmp_path / "out_quick" / "results.json").read_text())
    results = document["results"]
    assert list(results) == ["dense", "deep_ensemble", "static", "dst", "edst"]
    assert document["train_images"] == 300 and document["test_images"] == 100
    assert document["ood_images"] == 1797 and document["changed_from_original"] == {}
    for name, row in results.items():
        assert 0 <= row["accuracy"] <= 1 and row["nll"] > 0 and 0 <= row["ece"] <= 1
        assert 0 <= row["ood_auroc"] <= 1 and row["train_seconds"] > 0
        assert len(row["member_accuracy"]) == (1 if name == "dense" else 2)
        assert ("disagreement" in row) == (name != "dense")
    assert results["dense"]["relative_training_flops"] == 1.0
    assert results["deep_ensemble"]["relative_test_flops"] == 2.0
    assert results["static"]["relative_test_flops"] < 2.0
    table = (tmp_path / "out_quick" / "results.md").read_text()
    assert table.count("\n| ") == 6 and "| edst |" in table  # header + 5 rows
    assert table.strip() in printed


def test_methods_subset_trains_dense_alone(tmp_path, capsys, load_benchmark):
    data = _tiny_npz(tmp_path)
    load_benchmark("real_data").main(["--data", str(data), "--quick", "--verbose", "0",
                            "--methods", "edst,gmp,dense", "--members", "2",
                            "--test_subset", "40", "--update_end_fraction", "0.75",
                            "--pruning_frequency", "2",
                            "--output_dir", str(tmp_path / "out")])
    document = json.loads((tmp_path / "out_quick" / "results.json").read_text())
    assert list(document["results"]) == ["dense", "gmp", "edst"]
    assert document["test_images"] == 40
    assert document["results"]["dense"]["relative_training_flops"] == 1.0
    assert sorted(p.name for p in (tmp_path / "out_quick").iterdir() if p.is_dir()) == [
        "dense", "edst", "gmp"]
    # gmp, on request only: two members pruned from dense to density 0.2.
    gmp = document["results"]["gmp"]
    assert 0.2 * 2 < gmp["relative_training_flops"] < 2.0
    assert gmp["relative_test_flops"] < 2 * 0.3


def test_presets_and_flags_say_what_changed_from_the_original(load_benchmark):
    benchmark = load_benchmark("real_data")
    args = benchmark.parse_args(["--data", "x.npz"])
    assert (args.preset, args.model, args.epochs, args.lr) == ("long", "mlp-cifar10", 150, 0.1)
    assert args.output_dir == "benchmarks/runs/real_data_long_seed0"
    assert benchmark.changed_semantics(args) == {}
    args = benchmark.parse_args(["--data", "x.npz", "--preset", "short", "--epochs", "4",
                                 "--rescale_init", "--weight_decay_mode", "decoupled"])
    assert (args.model, args.epochs, args.lr) == ("lenet5-x4", 4, 0.05)
    assert benchmark.changed_semantics(args) == {"weight_decay_mode": "decoupled",
                                                 "rescale_init": True}
    config = benchmark.config_for("dst", args)
    assert (config.optimizer.weight_decay_mode, config.sparsity.rescale_init) == ("decoupled", True)


def test_digits_out_of_distribution_set_is_laid_out_as_mnist(load_benchmark):
    digits = load_benchmark("real_data").digits_as_mnist()
    assert digits.shape == (1797, 28, 28, 1) and digits.dtype == np.float32
    assert 0 <= digits.min() and digits.max() <= 1
    assert not digits[:, :4].any() and not digits[:, -4:].any()  # a 20x20 centre
    padded = load_benchmark("real_data").digits_as_mnist((32, 32, 3))
    np.testing.assert_array_equal(padded[:, 2:30, 2:30, 1], digits[..., 0])


def test_unknown_method_is_a_usage_error(tmp_path, capsys, load_benchmark):
    with pytest.raises(SystemExit):
        load_benchmark("real_data").main(["--data", "x.npz", "--methods", "dense,magic"])
    assert "--methods: unknown ['magic']" in capsys.readouterr().err


def test_test_subset_is_a_random_sample_of_a_sorted_test_set(tmp_path, load_benchmark):
    benchmark = load_benchmark("real_data")
    args = benchmark.parse_args(["--data", str(_tiny_npz(tmp_path)), "--quick",
                                 "--test_subset", "30"])
    _, _, (x_test, y_test) = benchmark.load(args)
    assert len(y_test) == 30
    # The first 30 of the sorted test set would be one or two classes.
    assert len(np.unique(y_test)) >= 6

