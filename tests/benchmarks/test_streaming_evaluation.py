"""`benchmarks/streaming_evaluation.py`: its stream, its in-memory reference
against the streaming scores, and one way run in-process."""

import freetickets_tf as ft


def test_streaming_and_in_memory_score_the_same_stream(load_benchmark):
    bench = load_benchmark("streaming_evaluation")
    args = bench.parse_args(["--examples", "1200", "--classes", "7", "--members", "2",
                             "--batch_size", "256"])
    ensemble = bench._ensemble(args)
    stream = bench._stream(args.examples, args)
    sizes = [len(y) for _, y in stream.as_numpy_iterator()]
    assert sizes == [256] * 4 + [176]
    streamed = ft.evaluation.evaluate_ensemble(ensemble, stream, None)
    held = bench._in_memory_scores(ensemble, stream)
    assert bench._agree(streamed, held)
    held["ensemble"]["nll"] += 1e-3
    assert not bench._agree(streamed, held)


def test_one_way_in_process(load_benchmark):
    bench = load_benchmark("streaming_evaluation")
    result = bench.run(bench.parse_args(["--single", "streaming", "--examples", "1000",
                                         "--classes", "5", "--batch_size", "200"]))
    assert result["examples"] == 1000 and result["peak_growth_mb"] >= 0
    assert 0 <= result["ensemble"]["accuracy"] <= 1
    assert 0 <= result["diversity"]["disagreement"] <= 1
