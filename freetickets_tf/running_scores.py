"""Evaluation scores summed batch by batch (docs/algorithms.md §5's metrics).

A test set of any size is scored in the memory of one batch: each class
keeps running sums from which `metrics`' numbers follow exactly (the same
formulas, `metrics.nll_per_example`, `metrics.calibration_sums`, ...; only
the order of the float64 additions differs).

* `RunningScores`: accuracy, NLL, Brier score and the calibration bins
  (ECE, the reliability diagram) of one predictor.
* `RunningDiversity`: the members' pairwise disagreement and KL divergence.

Example:

>>> scores = RunningScores(num_bins=15)
>>> for labels, probs in batches:
...     scores.update(labels, probs)
>>> scores.result()["ece"] == metrics.ece(all_labels, all_probs)  # to rounding
"""

import numpy as np

from freetickets_tf import metrics
from freetickets_tf._validation import check_int


class RunningScores:
    """Accuracy, NLL, Brier score and calibration bins, summed over batches.

    Args:
        num_bins: ECE bins (15 in docs/algorithms.md §5).

    Example:

    >>> scores = RunningScores()
    >>> scores.update([0, 1], [[0.9, 0.1], [0.4, 0.6]])
    >>> scores.update([1], [[0.3, 0.7]])
    >>> scores.result()["accuracy"]
    1.0
    """

    def __init__(self, num_bins=15):
        self.num_bins = check_int("num_bins", num_bins, minimum=1)
        self.examples = 0
        self.correct = 0
        self.nll_sum = 0.0
        self.brier_sum = 0.0
        self.bins = (np.zeros(self.num_bins, np.int64), np.zeros(self.num_bins),
                     np.zeros(self.num_bins))

    def update(self, labels, probs):
        """Adds a batch: integer `labels` `(B,)` and probabilities `(B, K)`."""
        probs = metrics._check_probs(probs)
        labels = metrics._check_labels(labels, probs)
        self.examples += len(labels)
        self.correct += int(np.count_nonzero(np.argmax(probs, axis=1) == labels))
        self.nll_sum += float(np.sum(metrics.nll_per_example(labels, probs)))
        self.brier_sum += float(np.sum(metrics.brier_per_example(labels, probs)))
        self.bins = tuple(total + part for total, part in zip(
            self.bins, metrics.calibration_sums(labels, probs, self.num_bins)))

    def reliability_diagram_data(self):
        """`metrics.reliability_diagram_data` of every batch so far."""
        return metrics.reliability_from_sums(*self.bins)

    def result(self):
        """`{"accuracy", "nll", "ece", "brier"}` of every batch so far."""
        if not self.examples:
            raise ValueError("No examples were scored: the test data is empty.")
        return {
            "accuracy": self.correct / self.examples,
            "nll": self.nll_sum / self.examples,
            "ece": metrics.ece_of(self.reliability_diagram_data()),
            "brier": self.brier_sum / self.examples,
        }


class RunningDiversity:
    """The members' pairwise top-1 disagreement and KL divergence, summed
    over batches of member probabilities `(M, B, K)`, M >= 2.

    Example:

    >>> diversity = RunningDiversity()
    >>> diversity.update([[[0.9, 0.1]], [[0.6, 0.4]]])  # agree
    >>> diversity.update([[[0.8, 0.2]], [[0.3, 0.7]]])  # differ
    >>> diversity.result()["disagreement"]
    0.5
    """

    def __init__(self):
        self.examples = 0
        self.differ = None  # (M, M) examples on which members i, j differ
        self.kl_sums = None  # (M, M) sum over examples of KL(p_i || p_j)

    def update(self, member_probs):
        """Adds a batch of member probabilities `(M, B, K)`."""
        member_probs = metrics._check_member_probs(member_probs)
        differ = metrics.pairwise_disagreement_counts(member_probs)
        kl_sums = metrics.pairwise_kl_sums(member_probs)
        if self.differ is None:
            self.differ, self.kl_sums = differ, kl_sums
        elif differ.shape != self.differ.shape:
            raise ValueError(
                f"Invalid `member_probs`: {len(differ)} members in this batch, "
                f"{len(self.differ)} before.")
        else:
            self.differ, self.kl_sums = self.differ + differ, self.kl_sums + kl_sums
        self.examples += member_probs.shape[1]

    def _check(self):
        if not self.examples:
            raise ValueError("No examples were scored: the test data is empty.")

    def disagreement_table(self):
        """`(M, M)` disagreement rate of each pair (symmetric, zero diagonal)."""
        self._check()
        return self.differ / self.examples

    def kl_table(self):
        """`(M, M)`: each pair's `metrics.kl_divergence`, i.e. the mean of
        `KL(p_i || p_j)` and `KL(p_j || p_i)` (symmetric, zero diagonal)."""
        self._check()
        return (self.kl_sums + self.kl_sums.T) / (2 * self.examples)

    def result(self):
        """`{"disagreement", "kl_divergence"}`: the means over pairs, as
        `metrics.disagreement` and `metrics.kl_divergence` of all batches."""
        pairs = ~np.eye(len(self.disagreement_table()), dtype=bool)
        return {
            "disagreement": float(np.mean(self.disagreement_table()[pairs])),
            "kl_divergence": float(np.mean(self.kl_sums[pairs]) / self.examples),
        }
