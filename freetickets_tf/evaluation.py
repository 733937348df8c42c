"""Evaluating an ensemble and its members (docs/algorithms.md §5).

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
from freetickets_tf.running_scores import RunningDiversity
from freetickets_tf.running_scores import RunningScores

MODES = ("predict", "calibration", "disagreement", "kd", "ood", "corruption", "tsne")
OOD_SCORES = ("max_probability", "entropy")
CORRUPTED_SHAPE = (32, 32, 3)  # CIFAR-10-C and CIFAR-100-C images


def _with_member_probabilities(ensemble):
    """`ensemble`, or a copy of it (sharing the members) that also returns
    `member_probabilities`."""
    if ensemble.return_member_probabilities:
        return ensemble
    return EnsembleModel(ensemble.members, ensemble.member_outputs,
                         return_member_probabilities=True,
                         preprocessing=ensemble.preprocessing)


def ensemble_probabilities(ensemble, x, batch_size=256):
    """`(ensemble_probs, member_probs)` as numpy arrays, from one pass of the
    one-graph model: shapes `(N, K)` and `(M, N, K)`.

    All of them are held in memory; `evaluate_ensemble` and `evaluate`
    score batch by batch instead. An ensemble built with
    `return_member_probabilities=True` is used as it is; otherwise a copy
    that returns them is made (sharing the members).
    """
    model = _with_member_probabilities(ensemble)
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


def _batches(x, y, batch_size, preprocessing, labelled=True):
    """`(inputs, labels)` batches of a test set, read once, in order.

    `x` is an array (with labels `y`, or None for an unlabelled OoD set),
    cut into batches of `batch_size` and prepared one batch at a time as
    the members were trained; or a batched `tf.data.Dataset` (with `y`
    None) of `(inputs, labels)`, or of inputs alone when unlabelled, taken
    as it comes. Inputs and their labels come from the same element, so a
    dataset that reshuffles on every pass still pairs them right.
    """
    if hasattr(x, "element_spec"):
        if y is not None:
            raise ValueError(
                "Invalid `y`: pass None when `x` is a tf.data.Dataset; its "
                "elements are (inputs, labels) batches.")
        spec = x.element_spec
        pairs = isinstance(spec, tuple) and len(spec) == 2
        if labelled and not pairs:
            raise ValueError(
                "Invalid `x`: expected a batched tf.data.Dataset of (inputs, "
                f"labels); its elements are {spec}.")
        for element in x.as_numpy_iterator():
            yield element if pairs else (element, None)
        return
    if labelled and y is None:
        raise ValueError(
            "`y` is None, so `x` must be a batched tf.data.Dataset of (inputs, "
            f"labels); got {type(x).__name__}.")
    count = len(x)
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != count:
            raise ValueError(f"Invalid `y`: {len(y)} labels for {count} inputs; "
                             "the lengths must match.")
    for start in range(0, count, batch_size):
        stop = start + batch_size
        yield (_prepared_inputs(x[start:stop], preprocessing),
               None if y is None else y[start:stop])


def _batch_count(x, batch_size):
    """Batches `_batches` will yield, or None if unknown (for progress)."""
    if hasattr(x, "element_spec"):
        count = int(x.cardinality())
        return count if count >= 0 else None
    return -(-len(x) // batch_size)


def _ood_score_of(probs):
    """The per-example OoD scores (higher = more in-distribution)."""
    return {"max_probability": metrics.max_probability(probs),
            "entropy": -metrics.entropy(probs)}


class _Scored:
    """What one pass over a test set keeps: running scores of the ensemble
    and of each member and the members' diversity (for labelled data), and
    only when asked the per-example OoD scores and the first inputs."""

    def __init__(self, members, num_bins, labelled, ood_scores, keep_inputs):
        self.examples = 0
        self.ensemble = RunningScores(num_bins) if labelled else None
        self.members = [RunningScores(num_bins) for _ in range(members)] if labelled else []
        self.diversity = RunningDiversity() if labelled and members > 1 else None
        self.ood = ({"ensemble": [], "members": [[] for _ in range(members)]}
                    if ood_scores else None)
        self.keep_inputs, self.inputs = keep_inputs, []

    def update(self, inputs, labels, probs, member_probs):
        if labels is None and self.ensemble is not None:
            raise ValueError("Invalid `x`: a batch has no labels.")
        self.examples += len(probs)
        if self.ensemble is not None:
            self.ensemble.update(labels, probs)
            for scores, p in zip(self.members, member_probs):
                scores.update(labels, p)
        if self.diversity is not None:
            self.diversity.update(member_probs)
        if self.ood is not None:
            self.ood["ensemble"].append(_ood_score_of(probs))
            for kept, p in zip(self.ood["members"], member_probs):
                kept.append(_ood_score_of(p))
        kept = sum(len(batch) for batch in self.inputs)
        if kept < self.keep_inputs:
            self.inputs.append(np.asarray(inputs)[:self.keep_inputs - kept])

    def ood_scores(self):
        """`{"ensemble": {score: (N,)}, "members": [...]}`."""
        join = lambda parts: {name: np.concatenate([p[name] for p in parts])  # noqa: E731
                              for name in OOD_SCORES}
        return {"ensemble": join(self.ood["ensemble"]),
                "members": [join(parts) for parts in self.ood["members"]]}

    def summary(self):
        """`evaluate_ensemble`'s report."""
        return {
            "ensemble": self.ensemble.result(),
            "members": [scores.result() for scores in self.members],
            "diversity": {} if self.diversity is None else self.diversity.result(),
        }


def _score(model, x, y, batch_size, num_bins, labelled=True, ood_scores=False,
           keep_inputs=0, verbose=0):
    """One pass of `model` (returning member probabilities) over a test set,
    scored batch by batch: a `_Scored`, never the set's probabilities."""
    scored = _Scored(len(model.members), num_bins, labelled, ood_scores, keep_inputs)
    progress = keras.utils.Progbar(_batch_count(x, batch_size), verbose=verbose,
                                   unit_name="batch")
    for inputs, labels in _batches(x, y, batch_size, model.preprocessing, labelled):
        outputs = model.predict_on_batch(inputs)
        scored.update(inputs, labels, np.asarray(outputs["probabilities"]),
                      np.moveaxis(np.asarray(outputs["member_probabilities"]), 1, 0))
        progress.add(1)
    if not scored.examples:
        raise ValueError("Invalid `x`: the test data is empty.")
    return scored


def evaluate_ensemble(ensemble, x, y, batch_size=256, num_bins=15, log_dir=None,
                      step=0, verbose=0):
    """Accuracy, NLL, ECE and Brier score of an ensemble and of each member,
    plus the members' disagreement and KL divergence.

    The data is read once and scored batch by batch (`running_scores`), so
    memory does not grow with the test set: a `tf.data` stream of any
    length is scored in the memory of one batch.

    Args:
        ensemble: An `EnsembleModel`.
        x, y: Inputs and integer labels; or a batched `tf.data.Dataset` of
            `(inputs, labels)` as `x` and None as `y`.
        batch_size: Prediction batch size (arrays).
        num_bins: ECE bins.
        log_dir: If given, the report is also written as TensorBoard scalars
            to `log_dir/evaluation` (`ensemble/accuracy`, `member_0/nll`,
            `diversity/disagreement`, ...), e.g. the log directory of the run.
        step: The TensorBoard step of those scalars.
        verbose: 1 shows a progress bar over the batches, 0 nothing.

    Returns:
        `{"ensemble": {...}, "members": [{...}, ...], "diversity": {...}}`;
        diversity is empty for a single member.

    Example:

    >>> ensemble = EnsembleModel.from_run("runs/edst")
    >>> report = evaluate_ensemble(ensemble, x, y)
    >>> report["ensemble"]["ece"]
    >>> evaluate_ensemble(ensemble, data.test, None)  # a tf.data stream
    """
    for name, value in (("num_bins", num_bins), ("batch_size", batch_size)):
        check_int(name, value, 1)
    report = _score(_with_member_probabilities(ensemble), x, y, batch_size, num_bins,
                    verbose=verbose).summary()
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


def _ood_scores(inside, outside):
    """Detection metrics for both OoD scores (`_ood_score_of` of the
    in-distribution and the OoD set)."""
    return {
        name: {
            "auroc": metrics.auroc(inside[name], outside[name]),
            "aupr": metrics.aupr(inside[name], outside[name]),
            "fpr_at_95_tpr": metrics.fpr_at_95_tpr(inside[name], outside[name]),
        }
        for name in OOD_SCORES
    }


def _mean_scores(rows, keys=("accuracy", "nll", "ece")):
    return {k: float(np.mean([row[k] for row in rows])) for k in keys}


def _ensemble_for(ensemble, modes):
    """The `EnsembleModel` (loaded from a run directory path), or a
    ValueError if it is none or cannot be evaluated in `modes`."""
    if isinstance(ensemble, (str, os.PathLike)):
        ensemble = EnsembleModel.from_run(os.fspath(ensemble), allow_partial=True)
    if not isinstance(ensemble, EnsembleModel):
        raise ValueError(
            "Invalid `ensemble`: expected an EnsembleModel or a run "
            f"directory path, got {type(ensemble).__name__}."
        )
    if len(ensemble.members) < 2 and {"disagreement", "kd"} & set(modes):
        raise ValueError("Diversity modes need an ensemble of at least 2 members.")
    shape = tuple(ensemble.member_input_shape)
    if "corruption" in modes and None not in shape and shape != CORRUPTED_SHAPE:
        raise ValueError(
            f"Mode 'corruption' scores CIFAR-C images {CORRUPTED_SHAPE}, but the "
            f"members take {shape}: evaluate a CIFAR run, or leave the mode out.")
    return ensemble


class _Evaluation:
    """The state of one `evaluate` call: the model, and what one pass over
    the test set kept for the modes."""

    def __init__(self, ensemble, x, y, modes, output_dir, batch_size, num_bins,
                 tsne_examples, verbose):
        self.ensemble = ensemble
        self.model = _with_member_probabilities(ensemble)
        self.output_dir = os.fspath(output_dir)
        self.batch_size, self.num_bins, self.verbose = batch_size, num_bins, verbose
        self.say("Scoring the test set")
        self.test = _score(self.model, x, y, batch_size, num_bins,
                           ood_scores="ood" in modes,
                           keep_inputs=tsne_examples if "tsne" in modes else 0,
                           verbose=verbose)

    def say(self, message):
        if self.verbose:
            print(message, flush=True)

    @staticmethod
    def scores(keys, scored):
        def one(scores):
            result = scores.result()
            return {k: result[k] for k in keys}

        return {"ensemble": one(scored.ensemble),
                "members": [one(scores) for scores in scored.members]}

    def predict(self):
        return self.scores(("accuracy", "nll", "brier"), self.test)

    def calibration(self):
        from freetickets_tf import plots

        report = {"num_bins": self.num_bins,
                  **self.scores(("ece", "nll", "brier"), self.test)}
        data = self.test.ensemble.reliability_diagram_data()
        path = os.path.join(self.output_dir, "reliability_diagram.png")
        plots.reliability_diagram(
            data, path, f"Ensemble, ECE {report['ensemble']['ece']:.4f}")
        report["reliability_diagram"] = os.path.basename(path)
        report["bins"] = {k: np.asarray(v).tolist() for k, v in data.items()}
        return report

    def disagreement(self):
        diversity = self.test.diversity
        return {"mean": diversity.result()["disagreement"],
                "pairwise": diversity.disagreement_table().tolist()}

    def kd(self):
        diversity = self.test.diversity
        return {"mean": diversity.result()["kl_divergence"],
                "pairwise": diversity.kl_table().tolist()}

    def ood(self, ood_data):
        inside, report = self.test.ood_scores(), {}
        for name, x_out in ood_data.items():
            self.say(f"OoD: {self.test.examples} in-distribution examples against "
                     f"{name}")
            outside = _score(self.model, x_out, None, self.batch_size, self.num_bins,
                             labelled=False, ood_scores=True,
                             verbose=self.verbose).ood_scores()
            report[name] = {
                "ensemble": _ood_scores(inside["ensemble"], outside["ensemble"]),
                "members": [_ood_scores(p, q) for p, q in
                            zip(inside["members"], outside["members"])],
            }
        return report

    def corruption(self, sets, total):
        rows, start = [], time.perf_counter()
        for index, (corruption, severity, x, y) in enumerate(sets, 1):
            scored = _score(self.model, x, y, self.batch_size, self.num_bins)
            scores = self.scores(("accuracy", "nll", "ece"), scored)
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
                for m in range(len(self.ensemble.members))
            ],
        }

    def tsne(self, snapshots, tickets, one_run, seed):
        from sklearn.manifold import TSNE

        from freetickets_tf import plots

        x = np.concatenate(self.test.inputs)  # the first test inputs, prepared
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
                           f"t-SNE of {len(x)} test predictions per snapshot",
                           epochs=epochs, tickets=tickets, one_run=one_run)
        return {"png": os.path.basename(path), "points": points.tolist(),
                "members": owners, "epochs": epochs, "examples": len(x),
                "tickets": tickets, "one_run": one_run}


def _snapshots_of(snapshots, run_dir):
    """`(snapshots, tickets, one_run)`: `{member: [(epoch, path), ...]}`, and
    from a run directory its tickets' `{member: epoch}` and whether its
    members are phases of one run (EDST); else None and False."""
    if snapshots is None and run_dir is not None:
        from freetickets_tf.tickets import RunDirectory

        snapshots = RunDirectory.open(run_dir)
    tickets, one_run = None, False
    if hasattr(snapshots, "snapshots"):
        from freetickets_tf.recipes.methods import REGISTRY

        tickets = {t["member"]: t["epoch"] for t in snapshots.tickets
                   if t.get("epoch") is not None} or None
        method = REGISTRY.get(snapshots.method)
        one_run = method is not None and method.one_run
        snapshots = snapshots.snapshots()
    if not snapshots:
        raise ValueError(
            "Mode 'tsne' needs snapshots: evaluate a run directory trained with "
            "`EnsembleConfig(snapshot_every=...)`, or pass `snapshots` "
            "({member: [(epoch, path), ...]} or a RunDirectory)."
        )
    return snapshots, tickets, one_run


def evaluate(ensemble, x, y, modes=("predict", "calibration"), output_dir="report",
             ood_data=None, corruption_source=None, corruptions=None,
             severities=None, data_dir=None, preprocess=None, snapshots=None,
             tsne_examples=500, num_bins=15, batch_size=256, log_dir=None,
             seed=0, verbose=1):
    """Runs evaluation modes on an ensemble; writes `report.json`/`report.md`.

    Args:
        ensemble: An `EnsembleModel`, or the path of a run directory.
        x, y: The in-distribution test set: inputs and integer labels, or a
            batched `tf.data.Dataset` of `(inputs, labels)` as `x` and None
            as `y`. It is read once and scored batch by batch; only what a
            mode needs is kept (per-example OoD scores for `ood`, the first
            `tsne_examples` inputs for `tsne`), so memory does not grow with
            the test set otherwise.
        modes: Any of `MODES`: `"predict"`, `"calibration"`,
            `"disagreement"`, `"kd"`, `"ood"`, `"corruption"`, `"tsne"`.
        output_dir: Where the report and figures go (created).
        ood_data: `ood` mode: `{name: x_out}` out-of-distribution inputs,
            preprocessed like `x`: arrays, or batched datasets of inputs (or
            of `(inputs, labels)`, whose labels are ignored).
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
    if "tsne" in modes:
        snapshots = _snapshots_of(snapshots, os.fspath(ensemble) if isinstance(
            ensemble, (str, os.PathLike)) else None)
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
    ensemble = _ensemble_for(ensemble, modes)
    if "corruption" in modes:
        sets = corrupted.corrupted_test_sets(corruption_source, names, levels, data_dir)
        if preprocess is not None:
            sets = ((c, s, preprocess(xc), yc) for c, s, xc, yc in sets)
    run = _Evaluation(ensemble, x, y, modes, output_dir, batch_size, num_bins,
                      tsne_examples, verbose)
    report = {
        "modes": modes,
        "num_members": len(run.ensemble.members),
        "test_examples": run.test.examples,
    }
    for mode in modes:
        run.say(f"Evaluating: {mode}")
        if mode == "ood":
            report[mode] = run.ood(ood_data)
        elif mode == "corruption":
            report[mode] = run.corruption(sets, total)
        elif mode == "tsne":
            report[mode] = run.tsne(*snapshots, seed)
        else:
            report[mode] = getattr(run, mode)()
    io.write_json_atomic(report, os.path.join(run.output_dir, "report.json"))
    io.write_text_atomic(report_markdown(report),
                         os.path.join(run.output_dir, "report.md"))
    if log_dir is not None:
        _write_report(run.test.summary(), os.path.join(os.fspath(log_dir), "evaluation"), 0)
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
