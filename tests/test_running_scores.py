"""running_scores: sums over batches give `metrics`' numbers on the whole set."""

import numpy as np
import pytest

from freetickets_tf import metrics
from freetickets_tf.running_scores import RunningDiversity
from freetickets_tf.running_scores import RunningScores


def _probs(rng, shape):
    z = rng.normal(scale=2.0, size=shape)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("batch", [1, 7, 50, 200])
def test_running_scores_equal_the_metrics_of_the_whole_set(batch):
    rng = np.random.default_rng(0)
    probs, labels = _probs(rng, (200, 5)), rng.integers(0, 5, 200)
    scores = RunningScores(num_bins=10)
    for start in range(0, 200, batch):
        scores.update(labels[start:start + batch], probs[start:start + batch])
    result = scores.result()
    assert scores.examples == 200
    assert result["accuracy"] == metrics.accuracy(labels, probs)
    assert result["nll"] == pytest.approx(metrics.nll(labels, probs), rel=1e-12)
    assert result["brier"] == pytest.approx(metrics.brier(labels, probs), rel=1e-12)
    assert result["ece"] == pytest.approx(metrics.ece(labels, probs, 10), rel=1e-12)
    whole = metrics.reliability_diagram_data(labels, probs, 10)
    for name, values in scores.reliability_diagram_data().items():
        np.testing.assert_allclose(values, whole[name], rtol=1e-12)


def test_running_scores_by_hand():
    # Brier: (0.01 + 0.01) + (0.16 + 0.16) + (0.09 + 0.09) = 0.52 over 3.
    scores = RunningScores(num_bins=2)
    scores.update([0, 1], [[0.9, 0.1], [0.4, 0.6]])
    scores.update([1], [[0.3, 0.7]])
    result = scores.result()
    assert result["accuracy"] == 1.0
    assert result["brier"] == pytest.approx(0.52 / 3)
    assert result["nll"] == pytest.approx(-np.log([0.9, 0.6, 0.7]).mean())
    # One bin (0.5, 1]: accuracy 1, confidence (0.9 + 0.6 + 0.7) / 3.
    assert result["ece"] == pytest.approx(1 - 2.2 / 3)


@pytest.mark.parametrize("batch", [3, 64])
def test_running_diversity_equals_the_metrics_of_the_whole_set(batch):
    rng = np.random.default_rng(1)
    member_probs = _probs(rng, (3, 64, 4))
    diversity = RunningDiversity()
    for start in range(0, 64, batch):
        diversity.update(member_probs[:, start:start + batch])
    result = diversity.result()
    assert result["disagreement"] == pytest.approx(metrics.disagreement(member_probs),
                                                   rel=1e-12)
    assert result["kl_divergence"] == pytest.approx(metrics.kl_divergence(member_probs),
                                                    rel=1e-12)
    kl, differ = diversity.kl_table(), diversity.disagreement_table()
    for i in range(3):
        assert kl[i, i] == differ[i, i] == 0
        for j in range(3):
            if i != j:
                pair = member_probs[[i, j]]
                assert kl[i, j] == pytest.approx(metrics.kl_divergence(pair), rel=1e-12)
                assert differ[i, j] == pytest.approx(metrics.disagreement(pair))


def test_nothing_scored_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        RunningScores().result()
    with pytest.raises(ValueError, match="empty"):
        RunningDiversity().result()


def test_bad_batches_are_refused():
    scores = RunningScores()
    with pytest.raises(ValueError, match="labels.*rows"):
        scores.update([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="sum to one"):
        scores.update([0], [[2.0, 3.0]])
    diversity = RunningDiversity()
    diversity.update(np.full((2, 1, 2), 0.5))
    with pytest.raises(ValueError, match="3 members in this batch, 2 before"):
        diversity.update(np.full((3, 1, 2), 0.5))
    with pytest.raises(ValueError, match="num_bins"):
        RunningScores(num_bins=0)
