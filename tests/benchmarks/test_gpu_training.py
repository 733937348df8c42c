"""`benchmarks/gpu_training.py` on a tiny Wide ResNet, in this process."""

import json
import math

import keras
import pytest

# A tiny Wide ResNet on TensorFlow (~10 s on 2 idle CPU cores). JAX compiles
# the train step, the gradient pass and every eager op of the update for each
# shape: ~40 CPU seconds for wrn-10-1, ~21 for LeNet-5, ~17 for LeNet-300-100,
# the one used there (the script itself runs wrn-* on JAX just the same).
MODEL = "wrn-10-1" if keras.backend.backend() == "tensorflow" else "lenet300-100"
TINY = ["--model", MODEL, "--batch_size", "8", "--steps", "2",
        "--warmup", "1", "--repeats", "2", "--update_repeats", "1"]


def test_tiny_run_prints_one_json_object(capsys, load_benchmark):
    returned = load_benchmark("gpu_training").main(TINY + ["--precisions", "float32"])
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(json.dumps(returned))

    for key in ("device", "platform", "backend", "keras_version", "model",
                "batch_size", "density", "precisions", "goals", "environment",
                "reference_pytorch", "comparable_to_goals", "wall_s"):
        assert key in result, key
    assert result["model"] == MODEL and result["batch_size"] == 8
    assert list(result["precisions"]) == ["float32"]

    row = result["precisions"]["float32"]
    for key in ("dense_step_s", "masked_step_s", "dense_images_per_s",
                "masked_images_per_s", "topology_update_s",
                "topology_update_with_gradient_s", "gradient_pass_s",
                "masked_over_dense", "masked_over_dense_paired"):
        assert row[key] > 0, key
    assert math.isclose(row["masked_over_dense"],
                        row["masked_step_s"] / row["dense_step_s"])
    assert math.isclose(row["masked_images_per_s"], 8 / row["masked_step_s"])
    assert len(row["dense_step_samples_s"]) == len(row["masked_step_samples_s"]) == 2
    assert row["weights_moved_per_update"] > 0
    assert row["compute_dtype"] == "float32"
    assert 0.15 < row["overall_density"] < 0.25

    assert result["backend"] == keras.backend.backend()
    # Not an H100 run of WRN-28-10 at batch 128: nothing is comparable.
    assert result["comparable_to_goals"] is False and result["goals_met"] is None
    names = {(g["name"], g["precision"]) for g in result["goals"]}
    assert names == {("masked_over_dense", "float32"), ("topology_update_s", "float32")}
    for goal in result["goals"]:
        assert goal["comparable"] is False and goal["why_not_comparable"]
        assert isinstance(goal["met"], bool)


def test_goals_are_comparable_only_for_the_goal_setting(load_benchmark):
    benchmark = load_benchmark("gpu_training")
    args = benchmark.parse_args([])
    assert (args.model, args.batch_size, args.precisions) == (
        "wrn-28-10", 128, ["float32", "mixed_bfloat16"])
    rows = {"float32": {"masked_over_dense": 1.01, "topology_update_s": 0.06},
            "mixed_bfloat16": {"masked_over_dense": 1.03, "masked_step_s": 0.009,
                               "topology_update_s": 0.04}}
    gpu = {"device": "NVIDIA H100 80GB HBM3", "platform": "gpu", "precisions": rows}
    goals = {(g["name"], g["precision"]): g for g in benchmark.goals(args, gpu)}
    assert all(g["comparable"] for g in goals.values())
    assert goals["masked_over_dense", "float32"]["met"] is True
    assert goals["masked_over_dense", "mixed_bfloat16"]["met"] is False
    assert goals["topology_update_s", "float32"]["met"] is False
    assert goals["topology_update_s", "mixed_bfloat16"]["met"] is True
    assert goals["masked_step_s", "mixed_bfloat16"]["met"] is True

    cpu = dict(gpu, device="cpu", platform="cpu")
    assert not any(g["comparable"] for g in benchmark.goals(args, cpu))


def test_bad_flags_are_usage_errors(capsys, load_benchmark):
    benchmark = load_benchmark("gpu_training")
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--precisions", "float32,float16"])
    assert "--precisions" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--skip_training", "--skip_update"])
    assert benchmark.parse_args(["--jit_compile"]).jit_compile == "true"
