"""Evaluation metrics for ensembles (docs/algorithms.md §5).

Plain numpy functions, on class probabilities (an ensemble's probabilities are
the mean of its members' softmax outputs):

* predict: `accuracy`.
* calibration: `nll`, `ece`, `reliability_diagram_data`, `brier`.
* diversity, on member probabilities `(M, N, K)`: `disagreement`,
  `kl_divergence`.
* out-of-distribution (OoD) scores per example: `max_probability`, `entropy`;
  detection metrics on the scores: `auroc`, `aupr`, `fpr_at_95_tpr`.

Their pieces that add up over batches (`nll_per_example`,
`brier_per_example`, `calibration_sums`, `pairwise_disagreement_counts`,
`pairwise_kl_sums`) are what `running_scores` sums, so a streamed
evaluation gives these numbers exactly (to float64 rounding).

Streaming Keras metrics, which keep running sums in variables so that a large
test set never has to be held in memory at once: `NegativeLogLikelihood`,
`BrierScore`, `ExpectedCalibrationError`. They give the same numbers as
`nll`, `brier` and `ece` on the same data.

Conventions:

* Inputs are arrays, lists or tensors. Probabilities are `(N, K)`, rows
  non-negative and summing to one (within 1e-3): logits must go through a
  softmax first. Labels are integer class ids `(N,)` in `[0, K)`.
* Everything is computed in float64; scalar metrics return python floats.
* Top-1 prediction is `argmax`, so a tie goes to the lowest class id.
* `EPSILON` (1e-12): probabilities are clipped to `[EPSILON, 1]` inside every
  logarithm (NLL, KL divergence, entropy), so a zero probability costs
  `-log(1e-12) ~= 27.6` nats instead of infinity.
* Calibration bins: `num_bins` equal-width bins on `[0, 1]` with edges
  `e_b = b / num_bins`; confidence (the max probability) `c` falls in bin `b`
  when `e_b < c <= e_{b+1}`, as in the original code. `c == 0` (impossible
  for probabilities) goes to the first bin.
* OoD: in-distribution examples are the positive class, and a higher score
  means "more in-distribution". `max_probability` is such a score; for
  entropy pass `-entropy(probs)`.
"""

import keras
import numpy as np

from freetickets_tf._validation import check_int

EPSILON = 1e-12

# Tolerance on row sums: float32 softmax outputs, and means of them, are a few
# ulps off one; anything further off is not a probability vector.
_SUM_ATOL = 1e-3


# --------------------------------------------------------------------------
# Argument checks.
# --------------------------------------------------------------------------


def _check_probs(probs, name="probs"):
    """Returns `probs` as a float64 `(N, K)` array of probability rows."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(
            f"Invalid `{name}`: expected a 2-D array (examples, classes), got "
            f"shape {probs.shape}."
        )
    _check_rows(probs, name)
    return probs


def _check_member_probs(member_probs, name="member_probs"):
    """Returns a float64 `(M, N, K)` array with M >= 2 members."""
    if isinstance(member_probs, (list, tuple)):
        # Members given one by one: name the first that does not match.
        shapes = [np.shape(p) for p in member_probs]
        for m, shape in enumerate(shapes[1:], 1):
            if shape != shapes[0]:
                raise ValueError(
                    f"Invalid `{name}`: member {m} has shape {shape} (examples, "
                    f"classes) but member 0 has {shapes[0]}; every member must "
                    "score the same examples over the same classes."
                )
    member_probs = np.asarray(member_probs, dtype=np.float64)
    if member_probs.ndim != 3:
        raise ValueError(
            f"Invalid `{name}`: expected a 3-D array (members, examples, "
            f"classes), got shape {member_probs.shape}."
        )
    if member_probs.shape[0] < 2:
        raise ValueError(
            f"Invalid `{name}`: got {member_probs.shape[0]} member(s); "
            "a pairwise metric needs at least 2."
        )
    _check_rows(member_probs, name)
    return member_probs


def _check_rows(probs, name):
    """Checks that the last axis of `probs` holds probability vectors."""
    if probs.shape[-2] == 0 or probs.shape[-1] == 0:
        raise ValueError(
            f"Invalid `{name}`: shape {probs.shape} has no examples or no classes."
        )
    if not np.all(np.isfinite(probs)):
        raise ValueError(f"Invalid `{name}`: contains NaN or infinite values.")
    if np.any(probs < 0.0):
        raise ValueError(
            f"Invalid `{name}`: contains negative values. Expected "
            "probabilities; apply a softmax to logits first."
        )
    sums = probs.sum(axis=-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=_SUM_ATOL):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(
            f"Invalid `{name}`: rows must sum to one (within {_SUM_ATOL}), "
            f"found a row summing to {worst:.6g}. Expected probabilities; "
            "apply a softmax to logits first."
        )


def _check_labels(labels, probs, name="labels"):
    """Returns `labels` as an int64 `(N,)` array of class ids in `[0, K)`."""
    labels = np.asarray(labels)
    num_examples, num_classes = probs.shape
    if labels.ndim != 1:
        raise ValueError(
            f"Invalid `{name}`: expected a 1-D array of integer class ids, got "
            f"shape {labels.shape}."
        )
    # Integer-valued floats (as some pipelines produce) are accepted; one-hot
    # rows and fractional values are not.
    is_int = np.issubdtype(labels.dtype, np.integer)
    is_integral_float = np.issubdtype(labels.dtype, np.floating) and np.all(
        np.isfinite(labels) & (labels == np.round(labels))
    )
    if labels.dtype == bool or not (is_int or is_integral_float):
        raise ValueError(
            f"Invalid `{name}`: expected integer class ids, got dtype "
            f"{labels.dtype}."
        )
    if labels.shape[0] != num_examples:
        raise ValueError(
            f"Invalid `{name}`: {labels.shape[0]} labels for {num_examples} "
            "rows of probabilities; the lengths must match."
        )
    labels = labels.astype(np.int64)
    if np.any((labels < 0) | (labels >= num_classes)):
        raise ValueError(
            f"Invalid `{name}`: class ids must be in [0, {num_classes}), got "
            f"values in [{labels.min()}, {labels.max()}]."
        )
    return labels


def _check_scores(scores, name):
    """Returns `scores` as a non-empty float64 `(N,)` array without NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(
            f"Invalid `{name}`: expected a non-empty 1-D array of scores, got "
            f"shape {scores.shape}."
        )
    if np.any(np.isnan(scores)):
        raise ValueError(f"Invalid `{name}`: contains NaN.")
    return scores


def _log(probs):
    return np.log(np.clip(probs, EPSILON, 1.0))


# --------------------------------------------------------------------------
# Predictive performance and calibration.
# --------------------------------------------------------------------------


def accuracy(labels, probs):
    """Fraction of examples whose top-1 prediction is the label.

    Args:
        labels: Integer class ids, shape `(N,)`.
        probs: Class probabilities, shape `(N, K)`.

    Returns:
        A float in [0, 1].

    Example:

    >>> accuracy([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    0.6666666666666666
    """
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs)
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def nll(labels, probs):
    """Mean negative log-likelihood of the true class, in nats.

    The probability of the true class is clipped at `EPSILON` (1e-12), so a
    confidently wrong example costs about 27.6 nats instead of infinity.

    Args:
        labels: Integer class ids, shape `(N,)`.
        probs: Class probabilities, shape `(N, K)`.

    Returns:
        A float >= 0.

    Example:

    >>> round(nll([0, 1], [[0.5, 0.5], [0.25, 0.75]]), 6)  # (log 2 + log 4/3) / 2
    0.490415
    """
    probs = _check_probs(probs)
    return float(np.mean(nll_per_example(_check_labels(labels, probs), probs)))


def nll_per_example(labels, probs):
    """`-log p_y` of each example (checked arrays; see `nll`)."""
    return -_log(probs[np.arange(len(labels)), labels])


def brier(labels, probs):
    """Brier score: mean over examples of `sum_k (p_k - [y == k])^2`.

    Summed over classes (not averaged), so it lies in [0, 2].

    Args:
        labels: Integer class ids, shape `(N,)`.
        probs: Class probabilities, shape `(N, K)`.

    Returns:
        A float in [0, 2].

    Example:

    >>> brier([0, 1], [[1.0, 0.0], [0.5, 0.5]])  # (0 + 0.25 + 0.25) / 2
    0.25
    """
    probs = _check_probs(probs)
    return float(np.mean(brier_per_example(_check_labels(labels, probs), probs)))


def brier_per_example(labels, probs):
    """`sum_k (p_k - [y == k])^2` of each example (checked arrays; see `brier`)."""
    one_hot = np.eye(probs.shape[1])[labels]
    return np.sum((probs - one_hot) ** 2, axis=1)


def _bin_index(confidence, num_bins):
    """Bin of each confidence: `b` such that `e_b < c <= e_{b+1}`.

    Counting the interior edges strictly below `c` gives exactly that, and
    puts `c <= 0` in the first bin and `c >= 1` in the last without clipping.
    """
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    return np.searchsorted(edges[1:-1], confidence, side="left")


def reliability_diagram_data(labels, probs, num_bins=15):
    """Per-bin accuracy and confidence, for a reliability diagram.

    Confidence is the max probability. Bins are `num_bins` equal-width
    intervals `(e_b, e_{b+1}]` on [0, 1] (see the module docstring).

    Args:
        labels: Integer class ids, shape `(N,)`.
        probs: Class probabilities, shape `(N, K)`.
        num_bins: Number of equal-width confidence bins, an integer >= 1.

    Returns:
        A dict of numpy arrays:
            `bin_edges`: `(num_bins + 1,)` edges, from 0 to 1.
            `accuracy`: `(num_bins,)` accuracy of the examples in each bin,
                NaN for an empty bin.
            `confidence`: `(num_bins,)` mean confidence in each bin, NaN for
                an empty bin.
            `count`: `(num_bins,)` int64 number of examples in each bin.

    Example:

    >>> data = reliability_diagram_data(
    ...     [0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], num_bins=2)
    >>> data["count"].tolist(), data["accuracy"].tolist()
    ([0, 3], [nan, 0.6666666666666666])
    """
    num_bins = check_int("num_bins", num_bins, minimum=1)
    probs = _check_probs(probs)
    labels = _check_labels(labels, probs)
    return reliability_from_sums(*calibration_sums(labels, probs, num_bins))


def calibration_sums(labels, probs, num_bins):
    """Per bin (checked arrays): `(count, sum of correct, sum of
    confidence)`, which add up over batches (`reliability_from_sums`)."""
    confidence = probs.max(axis=1)
    correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
    bins = _bin_index(confidence, num_bins)
    return (np.bincount(bins, minlength=num_bins).astype(np.int64),
            np.bincount(bins, weights=correct, minlength=num_bins),
            np.bincount(bins, weights=confidence, minlength=num_bins))


def reliability_from_sums(count, correct_sum, confidence_sum):
    """`reliability_diagram_data`'s dict from `calibration_sums`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        # 0 / 0 -> NaN marks the empty bins, which a plot should leave out.
        return {
            "bin_edges": np.linspace(0.0, 1.0, len(count) + 1),
            "accuracy": correct_sum / count,
            "confidence": confidence_sum / count,
            "count": np.asarray(count, dtype=np.int64),
        }


def ece(labels, probs, num_bins=15):
    """Expected calibration error: `sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`.

    Computed from `reliability_diagram_data`, so the two always agree; empty
    bins contribute nothing.

    Args:
        labels: Integer class ids, shape `(N,)`.
        probs: Class probabilities, shape `(N, K)`.
        num_bins: Number of equal-width confidence bins (15 in docs/algorithms.md §5).

    Returns:
        A float in [0, 1].

    Example:

    >>> # One bin (0.5, 1]: accuracy 2/3, mean confidence 0.8.
    >>> round(ece([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]],
    ...           num_bins=2), 6)
    0.133333
    """
    return ece_of(reliability_diagram_data(labels, probs, num_bins))


def ece_of(data):
    """The ECE of `reliability_diagram_data`'s dict."""
    count = data["count"]
    full = count > 0
    gap = np.abs(data["accuracy"][full] - data["confidence"][full])
    return float(np.sum(count[full] / count.sum() * gap))


# --------------------------------------------------------------------------
# Diversity between ensemble members.
# --------------------------------------------------------------------------


def disagreement(member_probs):
    """Fraction of examples on which two members' top-1 predictions differ.

    Averaged over all `M * (M - 1) / 2` unordered pairs of members.

    Args:
        member_probs: Probabilities of each member, shape `(M, N, K)`, M >= 2.

    Returns:
        A float in [0, 1].

    Example:

    >>> disagreement([[[0.9, 0.1], [0.8, 0.2]],
    ...               [[0.6, 0.4], [0.3, 0.7]]])  # agree, differ
    0.5
    """
    member_probs = _check_member_probs(member_probs)
    counts = pairwise_disagreement_counts(member_probs)
    upper = np.triu_indices(len(counts), 1)
    return float(np.mean(counts[upper] / member_probs.shape[1]))


def pairwise_disagreement_counts(member_probs):
    """`(M, M)` int64: examples on which members i and j differ (checked
    `(M, N, K)` array), which add up over batches."""
    predictions = np.argmax(member_probs, axis=2)  # (M, N)
    # One (M, M, N) comparison would be M times the predictions' memory.
    return np.array([[np.count_nonzero(a != b) for b in predictions]
                     for a in predictions], dtype=np.int64)


def pairwise_kl_sums(member_probs):
    """`(M, M)`: `sum_n KL(p_i || p_j)` over the examples of a checked
    `(M, N, K)` array (zeros on the diagonal), which add up over batches."""
    log_probs = _log(member_probs)
    # sum_n sum_k p_ik (log p_ik - log p_jk), each pair one (N, K) pass.
    own = np.sum(member_probs * log_probs, axis=(1, 2))
    cross = np.einsum("ink,jnk->ij", member_probs, log_probs)
    table = own[:, None] - cross
    np.fill_diagonal(table, 0.0)
    return table


def kl_divergence(member_probs):
    """Mean pairwise `KL(p_i || p_j)`, in nats.

    Averaged over examples and over all `M * (M - 1)` ordered pairs `i != j`
    (so the asymmetry of KL averages out). Probabilities are clipped at
    `EPSILON` inside the logarithms, with `0 * log 0 = 0`.

    Args:
        member_probs: Probabilities of each member, shape `(M, N, K)`, M >= 2.

    Returns:
        A float >= 0.

    Example:

    >>> p, q = [[0.5, 0.5]], [[0.25, 0.75]]
    >>> # (KL(p||q) + KL(q||p)) / 2 = (0.1438 + 0.1308) / 2
    >>> round(kl_divergence([p, q]), 4)
    0.1373
    """
    member_probs = _check_member_probs(member_probs)
    num_members = member_probs.shape[0]
    log_probs = _log(member_probs)
    # sum_{i,j} sum_k p_ik (log p_ik - log p_jk)
    #   = M * sum_i sum_k p_ik log p_ik - sum_k (sum_i p_ik) (sum_j log p_jk):
    # O(M) passes instead of one per pair. The i == j terms are zero, so the
    # double sum over all pairs is the sum over ordered pairs i != j.
    self_term = num_members * np.sum(member_probs * log_probs, axis=(0, 2))
    cross_term = np.sum(member_probs.sum(axis=0) * log_probs.sum(axis=0), axis=1)
    per_example = (self_term - cross_term) / (num_members * (num_members - 1))
    return float(np.mean(per_example))


# --------------------------------------------------------------------------
# Out-of-distribution detection.
# --------------------------------------------------------------------------


def max_probability(probs):
    """Max probability of each example: an in-distribution score (higher = more).

    Args:
        probs: Class probabilities, shape `(N, K)`.

    Returns:
        A float64 array of shape `(N,)`.

    Example:

    >>> max_probability([[0.9, 0.1], [0.3, 0.7]]).tolist()
    [0.9, 0.7]
    """
    return _check_probs(probs).max(axis=1)


def entropy(probs):
    """Predictive entropy `-sum_k p_k log p_k` of each example, in nats.

    An uncertainty score: HIGHER entropy means LESS in-distribution, so pass
    `-entropy(probs)` to `auroc`, `aupr` and `fpr_at_95_tpr`, which expect
    higher scores for in-distribution examples. `0 * log 0 = 0`.

    Args:
        probs: Class probabilities, shape `(N, K)`.

    Returns:
        A float64 array of shape `(N,)`, values in [0, log K].

    Example:

    >>> np.round(entropy([[1.0, 0.0], [0.5, 0.5]]), 4).tolist()
    [0.0, 0.6931]
    """
    probs = _check_probs(probs)
    # Every term p * (-log p) is >= 0, so no -0.0 or tiny negative entropies.
    return np.sum(probs * -_log(probs), axis=1)


def _average_ranks(values):
    """1-based ranks of `values`, ties sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    return (first_rank + (counts - 1) / 2.0)[inverse.reshape(-1)]


def auroc(in_scores, out_scores):
    """Area under the ROC curve, in-distribution examples as positives.

    Mann-Whitney form: the probability that a random in-distribution example
    scores higher than a random out-of-distribution one, ties counting one
    half. Equals `sklearn.metrics.roc_auc_score` with in-distribution as
    label 1.

    Args:
        in_scores: Scores of in-distribution examples, shape `(N_in,)`.
        out_scores: Scores of out-of-distribution examples, `(N_out,)`.
            Higher scores mean "more in-distribution".

    Returns:
        A float in [0, 1]; 0.5 is chance.

    Example:

    >>> auroc([0.9, 0.8, 0.4], [0.7, 0.4])  # (2 + 2 + 0.5) / 6
    0.75
    """
    in_scores = _check_scores(in_scores, "in_scores")
    out_scores = _check_scores(out_scores, "out_scores")
    n_in, n_out = len(in_scores), len(out_scores)
    ranks = _average_ranks(np.concatenate([in_scores, out_scores]))
    u_statistic = ranks[:n_in].sum() - n_in * (n_in + 1) / 2.0
    return float(u_statistic / (n_in * n_out))


def _roc_counts(in_scores, out_scores):
    """True and false positives at each distinct threshold, high to low.

    Accepting every example with score >= threshold, for each distinct score
    as the threshold (tied examples enter together).
    """
    in_scores = _check_scores(in_scores, "in_scores")
    out_scores = _check_scores(out_scores, "out_scores")
    scores = np.concatenate([in_scores, out_scores])
    is_in = np.concatenate([np.ones(len(in_scores)), np.zeros(len(out_scores))])
    order = np.argsort(-scores, kind="stable")
    scores, is_in = scores[order], is_in[order]
    # Last position of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(is_in)[last]
    false_pos = (last + 1) - true_pos
    return true_pos, false_pos


def aupr(in_scores, out_scores):
    """Area under the precision-recall curve, in-distribution as positives.

    Average precision, `sum_n (R_n - R_{n-1}) P_n` over thresholds from high
    to low (no interpolation), as `sklearn.metrics.average_precision_score`
    with in-distribution as label 1.

    Args:
        in_scores: Scores of in-distribution examples, shape `(N_in,)`.
        out_scores: Scores of out-of-distribution examples, `(N_out,)`.
            Higher scores mean "more in-distribution".

    Returns:
        A float in [0, 1].

    Example:

    >>> round(aupr([0.9, 0.5], [0.7, 0.1]), 6)  # 1/2 * 1 + 1/2 * 2/3
    0.833333
    """
    true_pos, false_pos = _roc_counts(in_scores, out_scores)
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def fpr_at_95_tpr(in_scores, out_scores):
    """False positive rate at 95% true positive rate.

    The smallest fraction of out-of-distribution examples accepted by a
    threshold `t` (accept when score >= t) that accepts at least 95% of the
    in-distribution examples; `t` runs over the observed scores. Equals
    `fpr[np.searchsorted(tpr, 0.95)]` with `fpr, tpr` from
    `sklearn.metrics.roc_curve(..., drop_intermediate=False)`. (sklearn's
    default `drop_intermediate=True` may skip that ROC point and report a
    larger rate.)

    Args:
        in_scores: Scores of in-distribution examples, shape `(N_in,)`.
        out_scores: Scores of out-of-distribution examples, `(N_out,)`.
            Higher scores mean "more in-distribution".

    Returns:
        A float in [0, 1]; lower is better.

    Example:

    >>> # Accepting 19 of the 20 in_scores needs t <= 0.1: 0.3 gets in too.
    >>> fpr_at_95_tpr(np.linspace(0.05, 1.0, 20), [0.01, 0.3])
    0.5
    """
    true_pos, false_pos = _roc_counts(in_scores, out_scores)
    tpr = true_pos / true_pos[-1]
    # The ROC curve rises in both rates, so the first point with TPR >= 0.95
    # has the smallest FPR among them.
    first = np.searchsorted(tpr, 0.95, side="left")
    return float(false_pos[first] / false_pos[-1])


# --------------------------------------------------------------------------
# Streaming Keras metrics.
# --------------------------------------------------------------------------


def _register(cls):
    return keras.saving.register_keras_serializable(package="freetickets_tf")(cls)


def _concrete(x):
    """`x` as a numpy array if it has values now (eager), else None (a
    symbolic tensor inside a compiled step, which cannot be inspected)."""
    try:
        return np.asarray(keras.ops.convert_to_numpy(x))
    except Exception:  # graph tensors and JAX tracers refuse, each its own way
        return None


def _prepare(metric, y_true, y_pred, sample_weight):
    """Flat int labels, `(N, K)` probabilities and `(N,)` weights (keras.ops).

    Shapes are always checked. Values are checked as the functional metrics
    check them (probability rows, labels in range) whenever they are
    concrete: eagerly, not inside a compiled step, where they are symbolic.
    """
    y_pred = keras.ops.convert_to_tensor(y_pred, dtype=metric.dtype)
    if len(y_pred.shape) != 2:
        raise ValueError(
            f"Invalid `y_pred`: expected shape (examples, classes), got "
            f"{tuple(y_pred.shape)}."
        )
    if metric.from_logits:
        y_pred = keras.ops.softmax(y_pred, axis=-1)
    y_true = keras.ops.convert_to_tensor(y_true)
    if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
        y_true = keras.ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != 1:
        raise ValueError(
            f"Invalid `y_true`: expected integer class ids of shape (N,) or "
            f"(N, 1), got {tuple(y_true.shape)} (one-hot labels are not "
            "supported)."
        )
    probs, labels = _concrete(y_pred), _concrete(y_true)
    if probs is not None and labels is not None and len(labels):
        _check_labels(labels, _check_probs(probs, "y_pred"), "y_true")
    y_true = keras.ops.cast(y_true, "int32")
    if sample_weight is None:
        sample_weight = keras.ops.ones_like(y_true, dtype=metric.dtype)
    else:
        sample_weight = keras.ops.reshape(
            keras.ops.cast(sample_weight, metric.dtype), (-1,)
        )
    return y_true, y_pred, sample_weight


def _true_class_prob(y_true, y_pred):
    index = keras.ops.expand_dims(y_true, axis=-1)
    return keras.ops.squeeze(keras.ops.take_along_axis(y_pred, index, axis=-1), -1)


class _WeightedMean(keras.metrics.Metric):
    """Weighted mean of a per-example value; subclasses define `_values`."""

    def __init__(self, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _prepare(self, y_true, y_pred, sample_weight)
        values = self._values(y_true, y_pred)
        self.total.assign_add(keras.ops.sum(values * sample_weight))
        self.count.assign_add(keras.ops.sum(sample_weight))

    def result(self):
        # 0 before any data, like the built-in Keras means.
        return keras.ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@_register
class NegativeLogLikelihood(_WeightedMean):
    """Streaming `nll`: mean negative log-likelihood of the true class.

    Args:
        from_logits: Whether `y_pred` holds logits (a softmax is applied) rather
            than probabilities.
        name: Metric name.
        dtype: Dtype of the running sums.

    Example:

    >>> metric = NegativeLogLikelihood()
    >>> metric.update_state([0], [[0.5, 0.5]])
    >>> metric.update_state([1], [[0.25, 0.75]])
    >>> round(float(metric.result()), 5)  # (log 2 + log 4/3) / 2
    0.49041
    """

    def __init__(self, from_logits=False, name="nll", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def _values(self, y_true, y_pred):
        true_class = keras.ops.clip(_true_class_prob(y_true, y_pred), EPSILON, 1.0)
        return -keras.ops.log(true_class)


@_register
class BrierScore(_WeightedMean):
    """Streaming `brier`: mean of `sum_k (p_k - [y == k])^2`.

    Args:
        from_logits: Whether `y_pred` holds logits (a softmax is applied) rather
            than probabilities.
        name: Metric name.
        dtype: Dtype of the running sums.

    Example:

    >>> metric = BrierScore()
    >>> metric.update_state([0, 1], [[1.0, 0.0], [0.5, 0.5]])
    >>> float(metric.result())
    0.25
    """

    def __init__(self, from_logits=False, name="brier", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def _values(self, y_true, y_pred):
        # sum_k (p_k - [y == k])^2 = sum_k p_k^2 - 2 p_y + 1: no one-hot needed.
        squares = keras.ops.sum(keras.ops.square(y_pred), axis=-1)
        return squares - 2.0 * _true_class_prob(y_true, y_pred) + 1.0


@_register
class ExpectedCalibrationError(keras.metrics.Metric):
    """Streaming `ece`, with the same bins.

    Keeps, per bin, the (weighted) number of examples, of correct ones and the
    sum of their confidences, so memory does not grow with the test set.
    `ECE = sum_b |correct_b - confidence_b| / N`, which equals
    `sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`.

    Args:
        num_bins: Number of equal-width confidence bins, an integer >= 1.
        from_logits: Whether `y_pred` holds logits (a softmax is applied) rather
            than probabilities.
        name: Metric name.
        dtype: Dtype of the running sums.

    Example:

    >>> metric = ExpectedCalibrationError(num_bins=2)
    >>> metric.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    >>> metric.update_state([1], [[0.3, 0.7]])
    >>> round(float(metric.result()), 5)  # |2 - 2.4| / 3
    0.13333
    """

    def __init__(self, num_bins=15, from_logits=False, name="ece", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = check_int("num_bins", num_bins, minimum=1)
        self.from_logits = bool(from_logits)
        shape = (self.num_bins,)
        self.bin_count = self.add_variable(
            shape=shape, initializer="zeros", name="bin_count"
        )
        self.bin_correct = self.add_variable(
            shape=shape, initializer="zeros", name="bin_correct"
        )
        self.bin_confidence = self.add_variable(
            shape=shape, initializer="zeros", name="bin_confidence"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _prepare(self, y_true, y_pred, sample_weight)
        confidence = keras.ops.max(y_pred, axis=-1)
        correct = keras.ops.cast(
            keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), y_true), self.dtype
        )
        # Same rule as `_bin_index`: count the interior edges strictly below c.
        interior = keras.ops.convert_to_tensor(
            np.linspace(0.0, 1.0, self.num_bins + 1)[1:-1], dtype=self.dtype
        )
        above = keras.ops.greater(
            keras.ops.expand_dims(confidence, -1), keras.ops.expand_dims(interior, 0)
        )
        bins = keras.ops.sum(keras.ops.cast(above, "int32"), axis=-1)
        # (N, num_bins) membership, weighted: one matmul per running sum.
        member = keras.ops.one_hot(bins, self.num_bins, dtype=self.dtype)
        weighted = member * keras.ops.expand_dims(sample_weight, -1)
        self.bin_count.assign_add(keras.ops.sum(weighted, axis=0))
        self.bin_correct.assign_add(keras.ops.matmul(correct, weighted))
        self.bin_confidence.assign_add(keras.ops.matmul(confidence, weighted))

    def result(self):
        gaps = keras.ops.sum(keras.ops.abs(self.bin_correct - self.bin_confidence))
        return keras.ops.divide_no_nan(gaps, keras.ops.sum(self.bin_count))

    def get_config(self):
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "from_logits": self.from_logits,
        }
