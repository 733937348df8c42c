"""`benchmarks/input_pipeline.py` in-process on tiny settings."""

import json

import numpy as np
import pytest

TINY = ["--examples", "96", "--batch_size", "16", "--model", "wrn-10-1",
        "--steps", "1", "--repeats", "1"]


def _check(result, printed, examples, source):
    assert json.loads(printed) == result  # one JSON object on stdout
    assert result["source"] == source and result["examples"] == examples
    assert result["batch_size"] == 16 and result["model"] == "wrn-10-1"
    for key in ("pipeline_images_per_s", "training_images_per_s",
                "compute_images_per_s", "pipeline_over_training"):
        assert result[key] > 0, key
    assert result["pipeline_over_training"] == pytest.approx(
        result["pipeline_images_per_s"] / result["training_images_per_s"], rel=0.02)
    assert result["feeding_overhead"] < 1
    assert len(result["training_block_images_per_s"]) == 1
    assert result["environment"]["backend"] == "tensorflow"


def test_synthetic_run(capsys, load_benchmark):
    result = load_benchmark("input_pipeline").main(["--synthetic", *TINY])
    _check(result, capsys.readouterr().out, 96, "synthetic")
    assert result["pipeline_batches"] == 6  # the whole epoch


def test_npz_run(tmp_path, capsys, load_benchmark):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (80, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 80).astype("uint8"),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    result = load_benchmark("input_pipeline").main(["--data", str(path), *TINY,
                                     "--pipeline_batches", "2"])
    _check(result, capsys.readouterr().out, 80, "tiny.npz")
    assert result["pipeline_batches"] == 2


def test_bad_flags(load_benchmark):
    module = load_benchmark("input_pipeline")
    with pytest.raises(SystemExit):
        module.parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        module.parse_args(["--data_dir", "/tmp"])
    with pytest.raises(SystemExit):
        module.parse_args(["--synthetic", "--data", "x.npz"])
