"""PNG figures of an evaluation: reliability diagrams and t-SNE trajectories.

Drawn with matplotlib's non-interactive Agg canvas (no display needed) and
written atomically, like every other file the library writes.
"""

import os

import numpy as np

from freetickets_tf import io


def _figure():
    # The object API with an Agg canvas: no global pyplot state, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    with io.atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    return os.fspath(path)


def reliability_diagram(data, path, title="Reliability diagram"):
    """Draws per-bin accuracy against confidence, with the diagonal of
    perfect calibration, and saves it as a PNG.

    Args:
        data: The dict of `freetickets_tf.metrics.reliability_diagram_data`.
        path: The PNG file to write.
        title: Figure title (e.g. with the ECE).

    Returns:
        `path`.

    Example:

    >>> data = freetickets_tf.metrics.reliability_diagram_data(y, probs)
    >>> reliability_diagram(data, "reliability.png")
    """
    edges = np.asarray(data["bin_edges"])
    accuracy = np.nan_to_num(np.asarray(data["accuracy"], dtype=float))
    confidence = np.asarray(data["confidence"], dtype=float)
    figure = _figure()
    axes = figure.add_subplot()
    width = np.diff(edges)
    axes.bar(edges[:-1], accuracy, width=width, align="edge", edgecolor="black",
             color="tab:blue", label="accuracy")
    # The gap spans accuracy to mean confidence, whichever is higher; empty
    # bins (NaN confidence) have none.
    filled = ~np.isnan(confidence)
    low = np.where(filled, np.minimum(accuracy, np.nan_to_num(confidence)), 0.0)
    gap = np.where(filled, np.abs(np.nan_to_num(confidence) - accuracy), 0.0)
    axes.bar(edges[:-1], gap, bottom=low, width=width, align="edge",
             facecolor="none", edgecolor="tab:red", hatch="//",
             label="gap to confidence")
    axes.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
             title=title)
    axes.legend(loc="upper left")
    return _save(figure, path)


def trajectories(points, members, path, title="t-SNE of predictions"):
    """Draws 2-D points, one colour per member, each member's points joined
    in order (its trajectory), the last one marked; saves a PNG.

    Args:
        points: `(N, 2)` coordinates.
        members: `(N,)` member index of each point; points of a member are in
            trajectory order.
        path: The PNG file to write.
        title: Figure title.

    Returns:
        `path`.
    """
    points, members = np.asarray(points), np.asarray(members)
    figure = _figure()
    axes = figure.add_subplot()
    for member in np.unique(members):
        track = points[members == member]
        line, = axes.plot(track[:, 0], track[:, 1], "-o", markersize=3,
                          label=f"member {member}")
        axes.plot(track[-1:, 0], track[-1:, 1], "*", markersize=14,
                  color=line.get_color())
    axes.set(title=title, xticks=[], yticks=[])
    axes.legend()
    return _save(figure, path)
