"""Evaluating an ensemble and its members on labelled data (SPEC §5)."""

import numpy as np

from freetickets_tf import metrics
from freetickets_tf.ensemble_model import EnsembleModel


def _scores(labels, probs, num_bins):
    return {
        "accuracy": metrics.accuracy(labels, probs),
        "nll": metrics.nll(labels, probs),
        "ece": metrics.ece(labels, probs, num_bins),
        "brier": metrics.brier(labels, probs),
    }


def ensemble_probabilities(ensemble, x, batch_size=256):
    """`(ensemble_probs, member_probs)` as numpy arrays, from one pass of the
    one-graph model: shapes `(N, K)` and `(M, N, K)`.

    An ensemble built with `return_member_probabilities=True` is used as it
    is; otherwise a copy that returns them is made (copying the members).
    """
    model = ensemble
    if not ensemble.return_member_probabilities:
        model = EnsembleModel(ensemble.members, ensemble.member_outputs,
                              return_member_probabilities=True)
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    members = np.moveaxis(outputs["member_probabilities"], 1, 0)
    return outputs["probabilities"], members


def evaluate_ensemble(ensemble, x, y, batch_size=256, num_bins=15):
    """Accuracy, NLL, ECE and Brier score of an ensemble and of each member,
    plus the members' disagreement and KL divergence.

    Args:
        ensemble: An `EnsembleModel`.
        x, y: Inputs and integer labels.
        batch_size: Prediction batch size.
        num_bins: ECE bins.

    Returns:
        `{"ensemble": {...}, "members": [{...}, ...], "diversity": {...}}`;
        diversity is empty for a single member.

    Example:

    >>> ensemble = EnsembleModel.from_run("runs/edst",
    ...                                   return_member_probabilities=True)
    >>> report = evaluate_ensemble(ensemble, x, y)
    >>> report["ensemble"]["ece"]
    """
    probs, member_probs = ensemble_probabilities(ensemble, x, batch_size)
    y = np.asarray(y).reshape(-1)
    report = {
        "ensemble": _scores(y, probs, num_bins),
        "members": [_scores(y, p, num_bins) for p in member_probs],
        "diversity": {},
    }
    if len(member_probs) > 1:
        report["diversity"] = {
            "disagreement": metrics.disagreement(member_probs),
            "kl_divergence": metrics.kl_divergence(member_probs),
        }
    return report
