"""Tests for `freetickets_tf.metrics` (SPEC §5, evaluation)."""

import doctest
import math

import keras
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from freetickets_tf import metrics
from freetickets_tf.metrics import (
    BrierScore,
    ExpectedCalibrationError,
    NegativeLogLikelihood,
    accuracy,
    aupr,
    auroc,
    brier,
    disagreement,
    ece,
    entropy,
    fpr_at_95_tpr,
    kl_divergence,
    max_probability,
    nll,
    reliability_diagram_data,
)

# --------------------------------------------------------------------------
# Data and independent references.
# --------------------------------------------------------------------------


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _random_probs(rng, shape, scale=2.0):
    return _softmax(scale * rng.normal(size=shape))


def _random_data(n=60, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, size=n), _random_probs(rng, (n, k))


def _naive_ece(labels, probs, num_bins):
    """ECE with a loop over bins `(b / B, (b + 1) / B]`, in plain python."""
    total = 0.0
    n = len(labels)
    for b in range(num_bins):
        lower, upper = b / num_bins, (b + 1) / num_bins
        in_bin = []
        for y, p in zip(labels, probs):
            c = max(p)
            if lower < c <= upper or (b == 0 and c == 0.0):
                in_bin.append((list(p).index(c) == y, c))
        if in_bin:
            acc = sum(correct for correct, _ in in_bin) / len(in_bin)
            conf = sum(c for _, c in in_bin) / len(in_bin)
            total += len(in_bin) / n * abs(acc - conf)
    return total


def _naive_disagreement(member_probs):
    rates = []
    m = len(member_probs)
    for i in range(m):
        for j in range(i + 1, m):
            differ = [
                int(np.argmax(p) != np.argmax(q))
                for p, q in zip(member_probs[i], member_probs[j])
            ]
            rates.append(sum(differ) / len(differ))
    return sum(rates) / len(rates)


def _naive_kl(member_probs, eps=1e-12):
    """Mean KL(p_i || p_j) over ordered pairs and examples; 0 log 0 = 0."""
    values = []
    m = len(member_probs)
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            for p, q in zip(member_probs[i], member_probs[j]):
                values.append(
                    sum(
                        pk * (math.log(max(pk, eps)) - math.log(max(qk, eps)))
                        for pk, qk in zip(p, q)
                        if pk > 0
                    )
                )
    return sum(values) / len(values)


def _sk_labels(in_scores, out_scores):
    """In-distribution is the positive class (label 1)."""
    y = np.r_[np.ones(len(in_scores)), np.zeros(len(out_scores))]
    return y, np.r_[in_scores, out_scores]


# --------------------------------------------------------------------------
# Accuracy, NLL, Brier.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 10])
def test_accuracy_nll_brier_match_sklearn(k):
    labels, probs = _random_data(n=80, k=k)
    assert accuracy(labels, probs) == pytest.approx(
        sklearn.metrics.accuracy_score(labels, probs.argmax(axis=1))
    )
    assert nll(labels, probs) == pytest.approx(
        sklearn.metrics.log_loss(labels, probs, labels=range(k)), rel=1e-12
    )
    assert brier(labels, probs) == pytest.approx(
        sklearn.metrics.brier_score_loss(
            labels, probs, labels=range(k), scale_by_half=False
        ),
        rel=1e-12,
    )


def test_hand_worked_accuracy_nll_brier():
    labels = [0, 1, 2]
    probs = [[0.7, 0.2, 0.1], [0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]
    assert accuracy(labels, probs) == pytest.approx(2 / 3)
    # -(log 0.7 + log 0.25 + log 1) / 3
    assert nll(labels, probs) == pytest.approx(-(math.log(0.7) + math.log(0.25)) / 3)
    # (0.09 + 0.04 + 0.01) + (0.25 + 0.5625 + 0.0625) + 0, over 3
    assert brier(labels, probs) == pytest.approx((0.14 + 0.875) / 3)


def test_nll_clips_zero_probability():
    # The true class has probability 0: -log(1e-12), not infinity.
    assert nll([1], [[1.0, 0.0]]) == pytest.approx(-math.log(metrics.EPSILON))


def test_argmax_tie_goes_to_lowest_class():
    assert accuracy([0, 1], [[0.5, 0.5], [0.5, 0.5]]) == 0.5


def test_accepts_lists_tensors_float32_and_integral_float_labels():
    labels, probs = _random_data(n=20, k=3)
    expected = nll(labels, probs)
    probs32 = probs.astype("float32")
    assert nll(labels.tolist(), probs.tolist()) == pytest.approx(expected)
    assert nll(labels.astype("float32"), probs32) == pytest.approx(expected, rel=1e-6)
    tensors = keras.ops.convert_to_tensor(labels), keras.ops.convert_to_tensor(probs32)
    assert nll(*tensors) == pytest.approx(expected, rel=1e-6)
    assert isinstance(nll(labels, probs), float)


# --------------------------------------------------------------------------
# ECE and reliability diagram.
# --------------------------------------------------------------------------


def test_ece_hand_worked():
    # 4 bins with edges 0, .25, .5, .75, 1; a confidence on an edge belongs to
    # the bin below it, (lower, upper]:
    #   conf 0.5  correct -> bin 1
    #   conf 0.7  wrong   -> bin 2
    #   conf 0.75 correct -> bin 2
    #   conf 1.0  wrong   -> bin 3
    # bin 1: 1/4 * |1 - 0.5|      = 0.125
    # bin 2: 2/4 * |0.5 - 0.725|  = 0.1125
    # bin 3: 1/4 * |0 - 1|        = 0.25
    # ECE = 0.4875 ([lower, upper) bins would give 0.2375.)
    labels = [0, 0, 1, 1]
    probs = [[0.5, 0.5], [0.3, 0.7], [0.25, 0.75], [1.0, 0.0]]
    assert ece(labels, probs, num_bins=4) == pytest.approx(0.4875)
    data = reliability_diagram_data(labels, probs, num_bins=4)
    np.testing.assert_allclose(data["bin_edges"], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(data["count"], [0, 1, 2, 1])
    np.testing.assert_allclose(data["accuracy"], [np.nan, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(data["confidence"], [np.nan, 0.5, 0.725, 1.0])


def test_bin_index_edges():
    # Zero (impossible for probabilities) joins the first bin.
    confidence = np.array([0.0, 1e-9, 0.25, 0.25 + 1e-9, 0.999, 1.0])
    np.testing.assert_array_equal(
        metrics._bin_index(confidence, 4), [0, 0, 0, 1, 3, 3]
    )


@pytest.mark.parametrize("num_bins", [1, 10, 15])
@pytest.mark.parametrize("seed", [0, 1])
def test_ece_matches_naive_loop(num_bins, seed):
    labels, probs = _random_data(n=100, k=4, seed=seed)
    value = ece(labels, probs, num_bins=num_bins)
    assert value == pytest.approx(_naive_ece(labels, probs, num_bins), abs=1e-12)
    data = reliability_diagram_data(labels, probs, num_bins=num_bins)
    assert data["count"].sum() == len(labels)
    full = data["count"] > 0
    gaps = np.abs(data["accuracy"][full] - data["confidence"][full])
    assert value == pytest.approx(np.sum(data["count"][full] / len(labels) * gaps))


def test_ece_default_is_15_bins():
    labels, probs = _random_data()
    assert ece(labels, probs) == ece(labels, probs, num_bins=15)
    assert len(reliability_diagram_data(labels, probs)["count"]) == 15


def test_ece_of_a_perfectly_calibrated_bin_is_zero():
    # Confidence 0.75 in every example, 3 of 4 correct.
    probs = [[0.75, 0.25]] * 4
    assert ece([0, 0, 0, 1], probs) == pytest.approx(0.0)


# --------------------------------------------------------------------------
# Disagreement and KL divergence.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 5])
def test_disagreement_and_kl_match_naive_loops(m):
    rng = np.random.default_rng(m)
    member_probs = _random_probs(rng, (m, 40, 4))
    # Exact zeros exercise the clipping and 0 * log 0 = 0.
    member_probs[0, :5, 0] = 0.0
    member_probs /= member_probs.sum(axis=-1, keepdims=True)
    assert disagreement(member_probs) == pytest.approx(
        _naive_disagreement(member_probs), abs=1e-12
    )
    assert kl_divergence(member_probs) == pytest.approx(
        _naive_kl(member_probs), rel=1e-10
    )


def test_disagreement_and_kl_hand_worked():
    # Member predictions: [0, 0], [0, 1], [1, 1] -> pairs differ on 1, 2, 1 of
    # 2 examples: (0.5 + 1 + 0.5) / 3.
    member_probs = [
        [[0.9, 0.1], [0.6, 0.4]],
        [[0.9, 0.1], [0.4, 0.6]],
        [[0.2, 0.8], [0.1, 0.9]],
    ]
    assert disagreement(member_probs) == pytest.approx(2 / 3)
    # Two members, one example: (KL(p||q) + KL(q||p)) / 2.
    p, q = [0.5, 0.5], [0.25, 0.75]
    kl_pq = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    kl_qp = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence([[p], [q]]) == pytest.approx((kl_pq + kl_qp) / 2)
    assert kl_divergence([[p], [q]]) == pytest.approx(
        np.mean([scipy.stats.entropy(p, q), scipy.stats.entropy(q, p)])
    )


def test_identical_members_do_not_disagree():
    probs = _random_probs(np.random.default_rng(0), (30, 3))
    assert disagreement([probs, probs, probs]) == 0.0
    assert kl_divergence([probs, probs]) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------
# OoD scores and detection metrics.
# --------------------------------------------------------------------------


def test_max_probability_and_entropy():
    probs = _random_probs(np.random.default_rng(0), (25, 6))
    np.testing.assert_allclose(max_probability(probs), probs.max(axis=1))
    np.testing.assert_allclose(entropy(probs), scipy.stats.entropy(probs, axis=1))
    hand = entropy([[1.0, 0.0, 0.0], [1 / 3] * 3])
    np.testing.assert_allclose(hand, [0.0, math.log(3)])


def test_negative_entropy_ranks_confident_examples_as_in_distribution():
    rng = np.random.default_rng(0)
    confident = _random_probs(rng, (50, 10), scale=8.0)
    flat = _random_probs(rng, (50, 10), scale=0.5)
    assert auroc(-entropy(confident), -entropy(flat)) > 0.95
    assert auroc(max_probability(confident), max_probability(flat)) > 0.95


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("sizes", [(50, 30), (7, 90)])
def test_ood_metrics_match_sklearn(ties, sizes):
    rng = np.random.default_rng(sizes[0])
    if ties:  # a handful of distinct values: many ties within and across sets
        in_scores = rng.integers(0, 6, size=sizes[0]).astype(float)
        out_scores = rng.integers(-2, 4, size=sizes[1]).astype(float)
    else:
        in_scores = rng.normal(1.0, 1.0, size=sizes[0])
        out_scores = rng.normal(0.0, 1.0, size=sizes[1])
    y, scores = _sk_labels(in_scores, out_scores)
    assert auroc(in_scores, out_scores) == pytest.approx(
        sklearn.metrics.roc_auc_score(y, scores), abs=1e-12
    )
    assert aupr(in_scores, out_scores) == pytest.approx(
        sklearn.metrics.average_precision_score(y, scores), abs=1e-12
    )
    fpr, tpr, _ = sklearn.metrics.roc_curve(y, scores, drop_intermediate=False)
    assert fpr_at_95_tpr(in_scores, out_scores) == pytest.approx(
        fpr[np.searchsorted(tpr, 0.95, side="left")], abs=1e-12
    )


def test_ood_metrics_hand_worked():
    # Pairs (in > out) + 0.5 * ties: 0.9 beats 2, 0.8 beats 2, 0.4 ties 0.4.
    assert auroc([0.9, 0.8, 0.4], [0.7, 0.4]) == pytest.approx(4.5 / 6)
    assert auroc([1.0, 1.0], [1.0]) == 0.5
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert auroc([0.0], [1.0]) == 0.0
    # Ranked: in (P=1, R=.5), out, in (P=2/3, R=1), out.
    assert aupr([0.9, 0.5], [0.7, 0.1]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # 20 in-scores 1..20: accepting 19 of them (95%) needs threshold 2, which
    # accepts the out-scores 2.0 (tie) and 5.0 but not 1.5.
    assert fpr_at_95_tpr(np.arange(1.0, 21.0), [1.5, 2.0, 5.0]) == pytest.approx(2 / 3)
    assert fpr_at_95_tpr([1.0, 2.0], [0.0, 0.5]) == 0.0
    # Every threshold accepts one in and one out: a straight ROC line, whose
    # middle points sklearn's default drop_intermediate=True would drop (and
    # report 1.0). The point at TPR 0.95 has FPR 0.95.
    scores = np.arange(40.0)
    assert fpr_at_95_tpr(scores, scores) == pytest.approx(0.95)


# --------------------------------------------------------------------------
# Streaming Keras metrics.
# --------------------------------------------------------------------------

_STREAMING = [
    (NegativeLogLikelihood, {}, nll),
    (BrierScore, {}, brier),
    (ExpectedCalibrationError, {}, ece),
    (ExpectedCalibrationError, {"num_bins": 7}, lambda y, p: ece(y, p, num_bins=7)),
]
_CHUNKS = [(0, 7), (7, 37), (37, 50)]  # three uneven chunks


def _stream(metric, labels, y_pred, weights=None):
    for start, stop in _CHUNKS:
        metric.update_state(
            labels[start:stop],
            y_pred[start:stop],
            None if weights is None else weights[start:stop],
        )
    return float(metric.result())


@pytest.mark.parametrize("cls, kwargs, function", _STREAMING)
def test_streaming_equals_function(cls, kwargs, function):
    labels, probs = _random_data(n=50, k=4)
    metric = cls(**kwargs)
    assert float(metric.result()) == 0.0  # before any data
    expected = function(labels, probs)
    assert _stream(metric, labels, probs.astype("float32")) == pytest.approx(
        expected, rel=1e-5, abs=1e-6
    )
    # (N, 1) labels, as Keras often passes them.
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert _stream(metric, labels[:, None], probs) == pytest.approx(
        expected, rel=1e-5, abs=1e-6
    )


@pytest.mark.parametrize("cls, kwargs, function", _STREAMING)
def test_streaming_sample_weight_equals_repeating_examples(cls, kwargs, function):
    labels, probs = _random_data(n=50, k=4, seed=3)
    weights = np.random.default_rng(3).integers(0, 4, size=50)
    expected = function(np.repeat(labels, weights), np.repeat(probs, weights, axis=0))
    assert _stream(cls(**kwargs), labels, probs, weights) == pytest.approx(
        expected, rel=1e-5, abs=1e-6
    )


@pytest.mark.parametrize("cls, kwargs, function", _STREAMING)
def test_streaming_from_logits(cls, kwargs, function):
    rng = np.random.default_rng(5)
    labels, logits = rng.integers(0, 4, size=50), 3.0 * rng.normal(size=(50, 4))
    metric = cls(from_logits=True, **kwargs)
    assert _stream(metric, labels, logits) == pytest.approx(
        function(labels, _softmax(logits)), rel=1e-5, abs=1e-6
    )


@pytest.mark.parametrize("cls, kwargs, function", _STREAMING)
def test_streaming_config_round_trip(cls, kwargs, function):
    metric = cls(name="my_metric", from_logits=True, **kwargs)
    config = metric.get_config()
    assert config["name"] == "my_metric" and config["from_logits"] is True
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert type(restored) is cls and restored.get_config() == config
    labels = _random_data(n=50, k=4)[0]
    logits = np.random.default_rng(0).normal(size=(50, 4))
    assert _stream(restored, labels, logits) == pytest.approx(
        _stream(metric, labels, logits), rel=1e-6
    )


def test_streaming_metrics_in_model_evaluate():
    """Compiled into a model (graph mode), they still equal the functions."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            NegativeLogLikelihood(from_logits=True),
            BrierScore(from_logits=True),
            ExpectedCalibrationError(from_logits=True),
        ],
    )
    results = model.evaluate(x, y, batch_size=24, verbose=0, return_dict=True)
    probs = _softmax(model.predict(x, verbose=0).astype("float64"))
    assert results["nll"] == pytest.approx(nll(y, probs), rel=1e-5)
    assert results["brier"] == pytest.approx(brier(y, probs), rel=1e-5)
    assert results["ece"] == pytest.approx(ece(y, probs), rel=1e-4, abs=1e-6)


# --------------------------------------------------------------------------
# Bad inputs.
# --------------------------------------------------------------------------

_GOOD_LABELS = np.array([0, 1])
_GOOD_PROBS = np.array([[0.6, 0.4], [0.3, 0.7]])
_LABELED = [accuracy, nll, brier, ece, reliability_diagram_data]
_UNLABELED = [max_probability, entropy]


@pytest.mark.parametrize(
    "probs, match",
    [
        ([0.6, 0.4], r"`probs`.*2-D"),
        ([[[0.6, 0.4]], [[0.3, 0.7]]], r"`probs`.*2-D"),
        (np.zeros((0, 2)), r"`probs`.*no examples"),
        ([[0.6, 0.6], [0.3, 0.7]], r"`probs`.*sum to one.*softmax"),
        ([[1.5, -0.5], [0.3, 0.7]], r"`probs`.*negative.*softmax"),
        ([[np.nan, 0.4], [0.3, 0.7]], r"`probs`.*NaN"),
    ],
)
def test_bad_probs(probs, match):
    for function in _LABELED:
        with pytest.raises(ValueError, match=match):
            function(_GOOD_LABELS[: len(probs)] if len(probs) else [], probs)
    for function in _UNLABELED:
        with pytest.raises(ValueError, match=match):
            function(probs)


@pytest.mark.parametrize(
    "labels, match",
    [
        ([[0], [1]], r"`labels`.*1-D"),
        ([0.0, 0.5], r"`labels`.*integer"),
        ([True, False], r"`labels`.*integer"),
        ([0, 1, 1], r"`labels`.*3 labels for 2"),
        ([0, 2], r"`labels`.*\[0, 2\)"),
        ([-1, 0], r"`labels`.*\[0, 2\)"),
    ],
)
def test_bad_labels(labels, match):
    for function in _LABELED:
        with pytest.raises(ValueError, match=match):
            function(labels, _GOOD_PROBS)


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, True, "15"])
def test_bad_num_bins(num_bins):
    for function in (ece, reliability_diagram_data):
        with pytest.raises(ValueError, match="`num_bins`"):
            function(_GOOD_LABELS, _GOOD_PROBS, num_bins=num_bins)
    with pytest.raises(ValueError, match="`num_bins`"):
        ExpectedCalibrationError(num_bins=num_bins)


@pytest.mark.parametrize(
    "member_probs, match",
    [
        (_GOOD_PROBS, r"`member_probs`.*3-D"),
        ([_GOOD_PROBS], r"`member_probs`.*at least 2"),
        ([_GOOD_PROBS, [[0.5, 0.6], [0.5, 0.5]]], r"`member_probs`.*sum to one"),
        ([_GOOD_PROBS, [[1.2, -0.2], [0.5, 0.5]]], r"`member_probs`.*negative"),
        ([_GOOD_PROBS, [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]],
         r"`member_probs`: member 1 has shape \(2, 3\).*member 0 has \(2, 2\)"),
    ],
)
def test_bad_member_probs(member_probs, match):
    for function in (disagreement, kl_divergence):
        with pytest.raises(ValueError, match=match):
            function(member_probs)


@pytest.mark.parametrize(
    "bad, match",
    [([], "non-empty 1-D"), ([[0.1, 0.2]], "non-empty 1-D"), ([0.1, np.nan], "NaN")],
)
def test_bad_scores(bad, match):
    for function in (auroc, aupr, fpr_at_95_tpr):
        with pytest.raises(ValueError, match=f"`in_scores`.*{match}"):
            function(bad, [0.5])
        with pytest.raises(ValueError, match=f"`out_scores`.*{match}"):
            function([0.5], bad)


def test_streaming_bad_shapes():
    metric = ExpectedCalibrationError()
    with pytest.raises(ValueError, match="`y_pred`"):
        metric.update_state([0, 1], [0.6, 0.4])
    with pytest.raises(ValueError, match="`y_true`.*one-hot"):
        metric.update_state(np.eye(2), _GOOD_PROBS)


def test_module_doctests():
    """The docstring examples run."""
    assert doctest.testmod(metrics).failed == 0


@pytest.mark.parametrize("metric_class", [
    metrics.NegativeLogLikelihood, metrics.BrierScore, metrics.ExpectedCalibrationError])
@pytest.mark.parametrize("y_true, y_pred, match", [
    ([0], [[1.5, 0.5]], "sum to one.*found a row summing to 2"),
    ([0], [[-0.5, 1.5]], "negative"),
    ([0], [[np.nan, 1.0]], "NaN"),
    ([2], [[0.5, 0.5]], r"class ids must be in \[0, 2\)"),
    ([0.5], [[0.5, 0.5]], "integer class ids"),
])
def test_streaming_metrics_check_values_as_the_functions_do(metric_class, y_true, y_pred,
                                                            match):
    with pytest.raises(ValueError, match=match):
        metric_class().update_state(np.array(y_true), np.array(y_pred, "float32"))


def test_streaming_metrics_still_run_inside_fit():

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy",
                  metrics=[metrics.NegativeLogLikelihood(), metrics.ExpectedCalibrationError()])
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    history = model.fit(x, np.arange(16) % 2, epochs=1, verbose=0)
    assert history.history["nll"][0] > 0
