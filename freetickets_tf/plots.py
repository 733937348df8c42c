"""PNG figures of an evaluation: reliability diagrams and t-SNE trajectories.

Drawn with matplotlib's non-interactive Agg canvas (no display needed) and
written atomically, like every other file the library writes.
"""

import os

import numpy as np

from freetickets_tf import io


def _figure(figsize=(5, 5)):
    # The object API with an Agg canvas: no global pyplot state, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    with io.atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    return os.fspath(path)


def reliability_figure(data, title="Reliability diagram"):
    """The reliability diagram of `data` as a matplotlib `Figure` (Guo et
    al., 2017): above, per-bin accuracy against confidence with the diagonal
    of perfect calibration and each bin's gap between its accuracy and its
    mean confidence; below, how many examples each bin holds (a bin of one
    example says little, however far off the diagonal).

    Args:
        data: The dict of `freetickets_tf.metrics.reliability_diagram_data`.
        title: Figure title (e.g. with the ECE).

    Returns:
        The figure: `figure.axes[0]` the diagram, `figure.axes[1]` the counts.
    """
    edges = np.asarray(data["bin_edges"], dtype=float)
    accuracy = np.asarray(data["accuracy"], dtype=float)
    confidence = np.asarray(data["confidence"], dtype=float)
    count = np.asarray(data["count"])
    filled = count > 0
    width = np.diff(edges)
    figure = _figure(figsize=(5, 6.5))
    diagram, counts = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    diagram.bar(edges[:-1][filled], accuracy[filled], width=width[filled], align="edge",
                edgecolor="black", color="tab:blue", label="accuracy of the bin")
    # The gap runs from the bin's accuracy to its mean confidence, drawn
    # against the diagonal: hatched red above the bar where the bin is
    # over-confident, below it where under-confident.
    low = np.minimum(accuracy, confidence)[filled]
    gap = np.abs(confidence - accuracy)[filled]
    diagram.bar(edges[:-1][filled], gap, bottom=low, width=width[filled], align="edge",
                facecolor="none", edgecolor="tab:red", hatch="//",
                label="gap to its mean confidence")
    diagram.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    diagram.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=title)
    diagram.legend(loc="upper left")
    counts.bar(edges[:-1], count, width=width, align="edge", edgecolor="black",
               color="tab:gray")
    for left, w, n in zip(edges[:-1], width, count):
        if n:
            counts.annotate(f"{int(n):,}", (left + w / 2, n), ha="center", va="bottom",
                            fontsize=6)
    counts.set(xlim=(0, 1), xlabel="confidence (max probability)", ylabel="examples")
    counts.set_ylim(0, max(1, int(count.max())) * 1.25)
    return figure


def reliability_diagram(data, path, title="Reliability diagram"):
    """Saves `reliability_figure(data, title)` as a PNG.

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
    return _save(reliability_figure(data, title), path)


def trajectory_figure(points, members, epochs, tickets=None, one_run=False,
                      title="t-SNE of predictions"):
    """The t-SNE of snapshots' predictions as a matplotlib `Figure`: each
    run's trajectory joined in epoch order, with arrows, its start and its
    ticket(s) marked and labelled.

    Args:
        points: `(N, 2)` coordinates, one per snapshot.
        members: `(N,)` the member (ticket) each snapshot belongs to.
        epochs: `(N,)` the epoch after which each snapshot was taken,
            numbered from 1 as `fit`'s progress bar and the run's manifest
            number them.
        tickets: `{member: epoch}` of the tickets (as in the run's
            manifest); None marks each member's last snapshot, labelled so.
        one_run: The members are phases of one run (EDST): one trajectory
            in epoch order, each phase its own colour, rather than one
            trajectory per member.
        title: Figure title.

    Returns:
        The figure.
    """
    points = np.asarray(points, dtype=float)
    members, epochs = np.asarray(members), np.asarray(epochs)
    figure = _figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    colours = {m: f"C{i}" for i, m in enumerate(np.unique(members))}
    runs = [np.arange(len(points))] if one_run else [
        np.flatnonzero(members == m) for m in np.unique(members)]
    for number, run in enumerate(runs):
        run = run[np.argsort(epochs[run], kind="stable")]
        for a, b in zip(run, run[1:]):  # arrows in epoch order
            axes.annotate("", xy=points[b], xytext=points[a], arrowprops={
                "arrowstyle": "->", "color": colours[members[b]], "lw": 1.0})
        for m in np.unique(members[run]):
            own = run[members[run] == m]
            label = f"phase {m} (ticket {m})" if one_run else f"member {m}"
            axes.plot(points[own, 0], points[own, 1], "o", markersize=4,
                      color=colours[m], label=label)
        first = run[0]
        axes.plot(*points[first], "s", markersize=10, markerfacecolor="none",
                  markeredgecolor="black", label=None if number else "start")
        axes.annotate(f"start (epoch {epochs[first]})", points[first],
                      textcoords="offset points", xytext=(6, -10), fontsize=7)
    marked = False
    for m in np.unique(members):
        own = np.flatnonzero(members == m)
        if tickets is None or m not in tickets:
            index, text = own[np.argmax(epochs[own])], f"member {m}: last snapshot"
        else:
            # The snapshot nearest the ticket's epoch (snapshots may be sparser).
            index = own[np.argmin(np.abs(epochs[own] - tickets[m]))]
            text = f"ticket {m} (epoch {tickets[m]})"
        axes.plot(*points[index], "*", markersize=16, color=colours[m],
                  markeredgecolor="black",
                  label=None if marked else ("ticket" if tickets else "last snapshot"))
        axes.annotate(text, points[index], textcoords="offset points", xytext=(8, 6),
                      fontsize=8, fontweight="bold")
        marked = True
    axes.set(title=title, xticks=[], yticks=[], xlabel="t-SNE 1", ylabel="t-SNE 2")
    axes.legend(fontsize=7, loc="best")
    return figure


def trajectories(points, members, path, title="t-SNE of predictions", epochs=None,
                 tickets=None, one_run=False):
    """Saves `trajectory_figure(...)` as a PNG; without `epochs`, each
    member's points are taken to be in trajectory order.

    Returns:
        `path`.
    """
    members = np.asarray(members)
    if epochs is None:
        epochs = np.zeros(len(members), int)
        for m in np.unique(members):
            epochs[members == m] = np.arange(1, np.sum(members == m) + 1)
    return _save(trajectory_figure(points, members, epochs, tickets, one_run, title), path)
