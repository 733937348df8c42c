"""`benchmarks/ticket_size.py`: tickets, snapshots and checkpoints against the
dense model, on a short run of the demo."""


def test_tickets_are_smaller_than_the_dense_model(load_benchmark):
    bench = load_benchmark("ticket_size")
    result = bench.run(bench.parse_args(["--epochs", "1", "--members", "2",
                                         "--conv_model", "lenet5"]))
    demo, conv = result["demo"], result["conv"]
    assert result["goals"] == {key: True for key in result["goals"]}
    # EDST: one run of 3 epochs (1 exploring, 1 per phase), a snapshot each.
    assert len(demo["ticket_bytes"]) == 2 and demo["snapshots"] == 3
    assert demo["ticket_over_dense"] < 0.35 and conv["ticket_over_dense"] < 0.35
    # The checkpoint keeps its optimizer slots, so it is larger than a ticket.
    assert demo["checkpoint_bytes"] > max(demo["ticket_bytes"])
