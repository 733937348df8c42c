"""freetickets_tf.plots: the figures' elements (not their pixels)."""

import numpy as np
import pytest

from freetickets_tf import metrics
from freetickets_tf import plots


def _texts(axes):
    return [t.get_text() for t in axes.texts]


def _arrows(axes):
    return [a for a in axes.texts if getattr(a, "arrow_patch", None) is not None]


def test_reliability_figure_has_the_diagram_and_the_bin_counts():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=500)
    labels = rng.integers(0, 4, 500)
    data = metrics.reliability_diagram_data(labels, probs, num_bins=10)
    figure = plots.reliability_figure(data, "ECE 0.1234")
    diagram, counts = figure.axes
    filled = data["count"] > 0
    # Accuracy bars, then gap bars, of the filled bins only.
    accuracy_bars, gap_bars = diagram.containers
    np.testing.assert_allclose([b.get_height() for b in accuracy_bars],
                               data["accuracy"][filled])
    np.testing.assert_allclose(
        [b.get_height() for b in gap_bars],
        np.abs(data["confidence"] - data["accuracy"])[filled])
    np.testing.assert_allclose([b.get_y() for b in gap_bars],
                               np.minimum(data["accuracy"], data["confidence"])[filled])
    (diagonal,) = diagram.lines
    assert list(diagonal.get_xdata()) == [0, 1] == list(diagonal.get_ydata())
    assert [t.get_text() for t in diagram.get_legend().get_texts()] == [
        "perfect calibration", "accuracy of the bin", "gap to its mean confidence"]
    assert diagram.get_title() == "ECE 0.1234" and diagram.get_ylabel() == "accuracy"
    # The histogram panel: every bin's count, written above the filled ones.
    (count_bars,) = counts.containers
    assert [b.get_height() for b in count_bars] == data["count"].tolist()
    assert _texts(counts) == [f"{n:,}" for n in data["count"][filled]]
    assert counts.get_xlabel().startswith("confidence") and counts.get_ylabel() == "examples"


def _points(n):
    return np.random.default_rng(n).normal(size=(n, 2))


def test_trajectories_of_independent_runs_are_joined_in_epoch_order():
    members = np.array([0, 0, 0, 1, 1, 1])
    epochs = np.array([3, 1, 5, 1, 3, 5])  # member 0's snapshots out of order
    figure = plots.trajectory_figure(_points(6), members, epochs, tickets={0: 3, 1: 5})
    (axes,) = figure.axes
    arrows = _arrows(axes)
    assert len(arrows) == 4  # two per run of three snapshots
    points = _points(6)
    # Member 0's first arrow goes from its epoch-1 snapshot to its epoch-3 one.
    np.testing.assert_allclose(arrows[0].xy, points[0])
    np.testing.assert_allclose(arrows[0].xyann, points[1])
    labels = [t for t in _texts(axes) if t]
    assert labels.count("start (epoch 1)") == 2
    assert "ticket 0 (epoch 3)" in labels and "ticket 1 (epoch 5)" in labels
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert {"member 0", "member 1", "start", "ticket"} <= set(legend)
    assert axes.get_xlabel() == "t-SNE 1" and axes.get_title()


def test_one_run_is_one_trajectory_with_its_phases_apart():
    members = np.array([0, 0, 0, 1, 1, 2, 2])
    epochs = np.arange(1, 8)
    figure = plots.trajectory_figure(_points(7), members, epochs,
                                     tickets={0: 3, 1: 5, 2: 7}, one_run=True)
    (axes,) = figure.axes
    assert len(_arrows(axes)) == 6  # one run: joined across the phases
    assert [t for t in _texts(axes) if t].count("start (epoch 1)") == 1
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert {"phase 0 (ticket 0)", "phase 1 (ticket 1)", "phase 2 (ticket 2)"} <= set(legend)


def test_without_tickets_the_last_snapshots_are_marked_as_such():
    figure = plots.trajectory_figure(_points(4), [0, 0, 1, 1], [0, 1, 0, 1])
    labels = [t for t in _texts(figure.axes[0]) if t]
    assert "member 0: last snapshot" in labels and "member 1: last snapshot" in labels
    assert "last snapshot" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


@pytest.mark.parametrize("draw", ["reliability", "trajectories"])
def test_saved_figures_are_pngs(tmp_path, draw):
    path = tmp_path / "figure.png"
    if draw == "reliability":
        data = metrics.reliability_diagram_data([0, 1, 1], [[0.9, 0.1], [0.2, 0.8],
                                                            [0.6, 0.4]], num_bins=5)
        plots.reliability_diagram(data, path)
    else:
        plots.trajectories(_points(4), [0, 0, 1, 1], path)
    assert path.read_bytes()[:4] == b"\x89PNG"
