"""Evaluating an ensemble and its members (SPEC §5).

`evaluate_ensemble` scores one labelled set. `evaluate` runs the original
code's evaluation modes on an ensemble or a run directory and writes
`report.json`, a readable `report.md` and the figures:

* `predict`: accuracy, NLL and Brier score of the ensemble and each member;
* `calibration`: ECE (and NLL, Brier) plus `reliability_diagram.png`;
* `disagreement`: the members' pairwise top-1 disagreement, and its mean;
* `kd`: the members' pairwise KL divergence (the original's name), and mean;
* `ood`: out-of-distribution detection by max probability and by entropy
  (AUROC, AUPR, FPR at 95% TPR) against each given OoD set;
* `corruption`: accuracy, NLL and ECE on every corruption and severity of
  CIFAR-10-C (tensorflow-datasets) or a CIFAR-C directory, per corruption,
  per severity and on average;
* `tsne`: a 2-D t-SNE of the test-set predictions of the snapshots kept
  along each member's training (`snapshot_every`), one colour per member,
  in `tsne.png`.
"""

import os
import time

import keras
import numpy as np

from freetickets_tf import io
from freetickets_tf import metrics
from freetickets_tf._validation import check_choice
from freetickets_tf._validation import check_int
from freetickets_tf.data.preprocessing import apply_preprocessing
from freetickets_tf.ensemble_model import EnsembleModel

MODES = ("predict", "calibration", "disagreement", "kd", "ood", "corruption", "tsne")
OOD_SCORES = ("max_probability", "entropy")


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
                              return_member_probabilities=True,
                              preprocessing=ensemble.preprocessing)
    x = _prepared_inputs(x, ensemble.preprocessing)
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    members = np.moveaxis(outputs["member_probabilities"], 1, 0)
    return outputs["probabilities"], members


def _prepared_inputs(x, preprocessing):
    """Image arrays as the members were trained on them (datasets are taken
    as they come: the pipelines' evaluation sets are already prepared)."""
    if hasattr(x, "element_spec"):
        return x
    x = np.asarray(x)
    if preprocessing is None and x.dtype == np.uint8:
        raise ValueError(
            "Invalid `x`: uint8 images would reach the model unscaled (0-255). "
            "Scale them as the training images were (x / 255), or build the "
            "ensemble with EnsembleModel.from_run(run_dir), which knows the "
            "run's preprocessing.")
    return apply_preprocessing(x, preprocessing)


def _inputs_and_labels(dataset):
    """`(inputs dataset, labels array)` of a batched `(x, y)` dataset."""
    if not hasattr(dataset, "element_spec"):
        raise ValueError(
            "`y` is None, so `x` must be a batched tf.data.Dataset of (inputs, "
            f"labels); got {type(dataset).__name__}."
        )
    labels = np.concatenate([np.asarray(y) for _, y in dataset.as_numpy_iterator()])
    return dataset.map(lambda x, y: x), labels


def evaluate_ensemble(ensemble, x, y, batch_size=256, num_bins=15, log_dir=None,
                      step=0):
    """Accuracy, NLL, ECE and Brier score of an ensemble and of each member,
    plus the members' disagreement and KL divergence.

    Args:
        ensemble: An `EnsembleModel`.
        x, y: Inputs and integer labels; or a batched `tf.data.Dataset` of
            `(inputs, labels)` (in a fixed order) as `x` and None as `y`.
        batch_size: Prediction batch size (arrays).
        num_bins: ECE bins.
        log_dir: If given, the report is also written as TensorBoard scalars
            to `log_dir/evaluation` (`ensemble/accuracy`, `member_0/nll`,
            `diversity/disagreement`, ...), e.g. the log directory of the run.
        step: The TensorBoard step of those scalars.

    Returns:
        `{"ensemble": {...}, "members": [{...}, ...], "diversity": {...}}`;
        diversity is empty for a single member.

    Example:

    >>> ensemble = EnsembleModel.from_run("runs/edst",
    ...                                   return_member_probabilities=True)
    >>> report = evaluate_ensemble(ensemble, x, y)
    >>> report["ensemble"]["ece"]
    """
    if y is None:
        x, y = _inputs_and_labels(x)
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
    if log_dir is not None:
        _write_report(report, os.path.join(os.fspath(log_dir), "evaluation"), step)
    return report


def _write_report(report, log_dir, step):
    from freetickets_tf.callbacks.sparsity_monitor import write_scalars

    scalars = {f"ensemble/{k}": v for k, v in report["ensemble"].items()}
    for m, scores in enumerate(report["members"]):
        scalars.update({f"member_{m}/{k}": v for k, v in scores.items()})
    scalars.update({f"diversity/{k}": v for k, v in report["diversity"].items()})
    write_scalars(log_dir, scalars, step)


# --------------------------------------------------------------------------
# Evaluation modes.
# --------------------------------------------------------------------------


def _pairwise(member_probs, fn):
    """`fn` on every pair of members: an `(M, M)` list, zeros on the diagonal."""
    count = len(member_probs)
    table = np.zeros((count, count))
    for i in range(count):
        for j in range(count):
            if i != j:
                table[i, j] = fn(member_probs[[i, j]])
    return table.tolist()


def _ood_scores(in_probs, out_probs):
    """Detection metrics for both OoD scores (higher = more in-distribution)."""
    found = {}
    for name in OOD_SCORES:
        score = metrics.max_probability if name == "max_probability" else (
            lambda p: -metrics.entropy(p))
        inside, outside = score(in_probs), score(out_probs)
        found[name] = {
            "auroc": metrics.auroc(inside, outside),
            "aupr": metrics.aupr(inside, outside),
            "fpr_at_95_tpr": metrics.fpr_at_95_tpr(inside, outside),
        }
    return found


def _mean_scores(rows, keys=("accuracy", "nll", "ece")):
    return {k: float(np.mean([row[k] for row in rows])) for k in keys}


class _Evaluation:
    """The state of one `evaluate` call: the model, data and report."""

    def __init__(self, ensemble, x, y, output_dir, batch_size, num_bins, verbose):
        self.run_dir = None
        if isinstance(ensemble, (str, os.PathLike)):
            self.run_dir = os.fspath(ensemble)
            ensemble = EnsembleModel.from_run(self.run_dir, allow_partial=True)
        if not isinstance(ensemble, EnsembleModel):
            raise ValueError(
                "Invalid `ensemble`: expected an EnsembleModel or a run "
                f"directory path, got {type(ensemble).__name__}."
            )
        self.ensemble = ensemble
        self.x, self.y = x, np.asarray(y).reshape(-1)
        self.output_dir = os.fspath(output_dir)
        self.batch_size, self.num_bins, self.verbose = batch_size, num_bins, verbose
        self.probs, self.member_probs = ensemble_probabilities(ensemble, x, batch_size)

    def say(self, message):
        if self.verbose:
            print(message, flush=True)

    def scores(self, keys, labels=None, probs=None, member_probs=None):
        labels = self.y if labels is None else labels
        probs = self.probs if probs is None else probs
        member_probs = self.member_probs if member_probs is None else member_probs
        every = {
            "accuracy": lambda p: metrics.accuracy(labels, p),
            "nll": lambda p: metrics.nll(labels, p),
            "brier": lambda p: metrics.brier(labels, p),
            "ece": lambda p: metrics.ece(labels, p, self.num_bins),
        }
        one = lambda p: {k: every[k](p) for k in keys}  # noqa: E731
        return {"ensemble": one(probs), "members": [one(p) for p in member_probs]}

    def predict(self):
        return self.scores(("accuracy", "nll", "brier"))

    def calibration(self):
        from freetickets_tf import plots

        report = {"num_bins": self.num_bins, **self.scores(("ece", "nll", "brier"))}
        data = metrics.reliability_diagram_data(self.y, self.probs, self.num_bins)
        path = os.path.join(self.output_dir, "reliability_diagram.png")
        plots.reliability_diagram(
            data, path, f"Ensemble, ECE {report['ensemble']['ece']:.4f}")
        report["reliability_diagram"] = os.path.basename(path)
        report["bins"] = {k: np.asarray(v).tolist() for k, v in data.items()}
        return report

    def _diversity(self, fn):
        if len(self.member_probs) < 2:
            raise ValueError("Diversity modes need an ensemble of at least 2 members.")
        return {"mean": fn(self.member_probs),
                "pairwise": _pairwise(self.member_probs, fn)}

    def disagreement(self):
        return self._diversity(metrics.disagreement)

    def kd(self):
        return self._diversity(metrics.kl_divergence)

    def ood(self, ood_data):
        report = {}
        for name, x_out in ood_data.items():
            self.say(f"OoD: {self.y.size} in-distribution against {len(x_out)} {name} images")
            out_probs, out_members = ensemble_probabilities(self.ensemble, x_out,
                                                            self.batch_size)
            report[name] = {
                "ensemble": _ood_scores(self.probs, out_probs),
                "members": [_ood_scores(p, q)
                            for p, q in zip(self.member_probs, out_members)],
            }
        return report

    def corruption(self, sets, total):
        rows, start = [], time.perf_counter()
        for index, (corruption, severity, x, y) in enumerate(sets, 1):
            probs, member_probs = ensemble_probabilities(self.ensemble, x, self.batch_size)
            scores = self.scores(("accuracy", "nll", "ece"), y, probs, member_probs)
            rows.append({"corruption": corruption, "severity": severity, **scores})
            self.say(
                f"[{index}/{total}] {corruption} severity {severity}: accuracy "
                f"{scores['ensemble']['accuracy']:.4f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
        ensemble_rows = [row["ensemble"] for row in rows]
        by = lambda key, value: [r["ensemble"] for r in rows if r[key] == value]  # noqa: E731
        return {
            "results": rows,
            "per_corruption": {c: _mean_scores(by("corruption", c))
                               for c in dict.fromkeys(r["corruption"] for r in rows)},
            "per_severity": {str(s): _mean_scores(by("severity", s))
                             for s in sorted({r["severity"] for r in rows})},
            "mean": _mean_scores(ensemble_rows),
            "members_mean_accuracy": [
                float(np.mean([r["members"][m]["accuracy"] for r in rows]))
                for m in range(len(self.member_probs))
            ],
        }

    def tsne(self, snapshots, examples, seed):
        from sklearn.manifold import TSNE

        from freetickets_tf import plots

        x = _prepared_inputs(self.x[:examples], self.ensemble.preprocessing)
        vectors, owners, epochs = [], [], []
        total = sum(len(v) for v in snapshots.values())
        progress = keras.utils.Progbar(total, verbose=self.verbose)
        for member, entries in sorted(snapshots.items()):
            for epoch, path in entries:
                model = keras.saving.load_model(path, safe_mode=True)
                probs = EnsembleModel([model]).predict(x, batch_size=self.batch_size,
                                                       verbose=0)
                vectors.append(np.asarray(probs).reshape(-1))
                owners.append(member)
                epochs.append(epoch)
                progress.add(1)
        if len(vectors) < 3:
            raise ValueError(
                f"t-SNE needs at least 3 snapshots; found {len(vectors)}. Train "
                "with `EnsembleConfig(snapshot_every=...)` or "
                "`callbacks.PeriodicSnapshots`."
            )
        points = TSNE(2, perplexity=min(30.0, len(vectors) - 1.0), init="pca",
                      random_state=seed).fit_transform(np.stack(vectors))
        path = os.path.join(self.output_dir, "tsne.png")
        plots.trajectories(points, owners, path,
                           f"t-SNE of {len(x)} test predictions per snapshot")
        return {"png": os.path.basename(path), "points": points.tolist(),
                "members": owners, "epochs": epochs, "examples": len(x)}


def _snapshots_of(snapshots, run_dir):
    if snapshots is None and run_dir is not None:
        from freetickets_tf.tickets import RunDirectory

        snapshots = RunDirectory.open(run_dir)
    if hasattr(snapshots, "snapshots"):
        snapshots = snapshots.snapshots()
    if not snapshots:
        raise ValueError(
            "Mode 'tsne' needs snapshots: evaluate a run directory trained with "
            "`EnsembleConfig(snapshot_every=...)`, or pass `snapshots` "
            "({member: [(epoch, path), ...]} or a RunDirectory)."
        )
    return snapshots


def evaluate(ensemble, x, y, modes=("predict", "calibration"), output_dir="report",
             ood_data=None, corruption_source=None, corruptions=None,
             severities=None, data_dir=None, preprocess=None, snapshots=None,
             tsne_examples=500, num_bins=15, batch_size=256, log_dir=None,
             seed=0, verbose=1):
    """Runs evaluation modes on an ensemble; writes `report.json`/`report.md`.

    Args:
        ensemble: An `EnsembleModel`, or the path of a run directory.
        x, y: The in-distribution test set (inputs, integer labels).
        modes: Any of `MODES`: `"predict"`, `"calibration"`,
            `"disagreement"`, `"kd"`, `"ood"`, `"corruption"`, `"tsne"`.
        output_dir: Where the report and figures go (created).
        ood_data: `ood` mode: `{name: x_out}` out-of-distribution inputs,
            preprocessed like `x`.
        corruption_source: `corruption` mode: `"cifar10"` (CIFAR-10-C from
            tensorflow-datasets, prepared offline in `data_dir`) or a CIFAR-C
            directory (`<corruption>.npy` + `labels.npy`, e.g. CIFAR-100-C).
        corruptions, severities: Subsets of the 15 corruptions and 5
            severities (default: all).
        data_dir: tensorflow-datasets data directory.
        preprocess: Function applied to corrupted images (float32 in [0, 1])
            before prediction, e.g. the training normalisation.
        snapshots: `tsne` mode: `{member: [(epoch, path), ...]}` or a
            `RunDirectory`; default: the snapshots of the run directory.
        tsne_examples: Test examples whose predictions t-SNE embeds.
        num_bins: ECE bins.
        batch_size: Prediction batch size.
        log_dir: If given, the scalars of `predict` and `calibration` also go
            to TensorBoard under `log_dir/evaluation`.
        seed: t-SNE seed.
        verbose: 1 prints progress lines, 0 nothing.

    Returns:
        The report, as written to `report.json`.

    Example:

    >>> report = evaluate("runs/edst", x_test, y_test,
    ...                   modes=["predict", "calibration", "kd", "ood"],
    ...                   ood_data={"noise": noise}, output_dir="runs/edst/report")
    >>> print(open("runs/edst/report/report.md").read())
    """
    modes = [modes] if isinstance(modes, str) else list(modes)
    if not modes:
        raise ValueError(f"Invalid `modes`: empty. Choose from {MODES}.")
    for mode in modes:
        check_choice("modes", mode, MODES)
    for name, value in (("num_bins", num_bins), ("tsne_examples", tsne_examples),
                        ("batch_size", batch_size)):
        check_int(name, value, 1)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"Invalid `output_dir`: {output_dir!r} is a file, not a directory.")
    # Everything a mode needs is checked before any (possibly long) work.
    if "ood" in modes and not ood_data:
        raise ValueError("Mode 'ood' needs `ood_data`: {name: out-of-distribution inputs}.")
    sets, total = None, 0
    if "corruption" in modes:
        if corruption_source is None:
            raise ValueError(
                "Mode 'corruption' needs `corruption_source`: 'cifar10' "
                "(tensorflow-datasets' cifar10_corrupted) or a CIFAR-C directory."
            )
        from freetickets_tf.data import corruptions as corrupted

        names = [corrupted.check_corruption(c) for c in corruptions or corrupted.CORRUPTIONS]
        levels = [corrupted.check_severity(s) for s in severities or corrupted.SEVERITIES]
        total = len(names) * len(levels)
        sets = corrupted.corrupted_test_sets(corruption_source, names, levels, data_dir)
        if preprocess is not None:
            sets = ((c, s, preprocess(xc), yc) for c, s, xc, yc in sets)
    run = _Evaluation(ensemble, x, y, output_dir, batch_size, num_bins, verbose)
    if "tsne" in modes:
        snapshots = _snapshots_of(snapshots, run.run_dir)
    report = {
        "modes": modes,
        "num_members": len(run.member_probs),
        "test_examples": int(run.y.size),
    }
    for mode in modes:
        run.say(f"Evaluating: {mode}")
        if mode == "ood":
            report[mode] = run.ood(ood_data)
        elif mode == "corruption":
            report[mode] = run.corruption(sets, total)
        elif mode == "tsne":
            report[mode] = run.tsne(snapshots, tsne_examples, seed)
        else:
            report[mode] = getattr(run, mode)()
    io.write_json_atomic(report, os.path.join(run.output_dir, "report.json"))
    io.write_text_atomic(report_markdown(report),
                         os.path.join(run.output_dir, "report.md"))
    if log_dir is not None:
        _write_report(evaluate_ensemble(run.ensemble, x, y, batch_size, num_bins),
                      os.path.join(os.fspath(log_dir), "evaluation"), 0)
    return report


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _score_rows(section, keys):
    rows = [["ensemble", *(f"{section['ensemble'][k]:.4f}" for k in keys)]]
    rows += [[f"member {m}", *(f"{s[k]:.4f}" for k in keys)]
             for m, s in enumerate(section["members"])]
    return rows


def report_markdown(report):
    """The readable `report.md` of an `evaluate` report."""
    lines = [f"# Evaluation of {report['num_members']} members on "
             f"{report['test_examples']} test examples", ""]
    for mode in report["modes"]:
        section = report[mode]
        lines += [f"## {mode}", ""]
        if mode in ("predict", "calibration"):
            keys = ["accuracy", "nll", "brier"] if mode == "predict" else ["ece", "nll", "brier"]
            lines += _table(["", *keys], _score_rows(section, keys))
            if mode == "calibration":
                lines += ["", f"{section['num_bins']} bins; "
                              f"![reliability diagram]({section['reliability_diagram']})"]
        elif mode in ("disagreement", "kd"):
            pairs = section["pairwise"]
            lines += [f"Mean over pairs: {section['mean']:.4f}", ""]
            lines += _table(["", *(f"member {j}" for j in range(len(pairs)))],
                            [[f"member {i}", *(f"{v:.4f}" for v in row)]
                             for i, row in enumerate(pairs)])
        elif mode == "ood":
            rows = []
            for name, result in section.items():
                for who, scores in [("ensemble", result["ensemble"]),
                                    *((f"member {m}", s) for m, s in
                                      enumerate(result["members"]))]:
                    for score in OOD_SCORES:
                        r = scores[score]
                        rows.append([name, who, score, f"{r['auroc']:.4f}",
                                     f"{r['aupr']:.4f}", f"{r['fpr_at_95_tpr']:.4f}"])
            lines += _table(["OoD set", "", "score", "AUROC", "AUPR", "FPR@95%TPR"], rows)
        elif mode == "corruption":
            keys = ("accuracy", "nll", "ece")
            lines += _table(["corruption", *keys],
                            [[c, *(f"{v[k]:.4f}" for k in keys)]
                             for c, v in section["per_corruption"].items()])
            lines += [""] + _table(["severity", *keys],
                                   [[s, *(f"{v[k]:.4f}" for k in keys)]
                                    for s, v in section["per_severity"].items()])
            mean = section["mean"]
            lines += ["", "Mean over all: " + ", ".join(
                f"{k} {mean[k]:.4f}" for k in keys) + "; members' mean accuracy: "
                + ", ".join(f"{a:.4f}" for a in section["members_mean_accuracy"])]
        elif mode == "tsne":
            lines += [f"{len(section['points'])} snapshots, "
                      f"{section['examples']} test examples each: "
                      f"![t-SNE]({section['png']})"]
        lines.append("")
    return "\n".join(lines)
