r"""FreeTickets against its baselines on real images (Fashion-MNIST).

Trains, on the same data and with the same settings, a dense single model, a
dense deep ensemble, a static sparse ensemble, a DST ensemble and an EDST
ensemble (M members, density d; with `--methods ...,gmp` also an ensemble
pruned gradually from dense, Zhu & Gupta's GMP), and reports for each ensemble accuracy,
NLL, ECE and Brier score on the test set, the members' accuracies and
disagreement, out-of-distribution detection (AUROC of the max probability,
Fashion-MNIST test images against scikit-learn's handwritten digits scaled to
MNIST's 20x20-in-28x28 layout: the classic Fashion-MNIST vs MNIST pair, built
from data at hand), training and test FLOPs relative to one dense model, and
the wall time of each method.

Dense, static and DST members train `--epochs` epochs each; the EDST run
spends 1.8 x `--epochs` in total, 0.6 x in exploration and the rest in M
refinement phases, as the paper's 450 / 150 against 250 epochs. The dense
single model is the deep ensemble's member 0 (same seed, same settings), so it
is not trained twice. `--methods` picks a subset (then `dense` is trained on
its own).

Every run trains with the original code's semantics unless a flag says
otherwise: coupled weight decay (torch.optim.SGD's L2) on every parameter,
PyTorch's default initialisation, each member its own data order, sparse
initial weights not rescaled, DST updates until the end of each run. The
library's improvements are flags (`--rescale_init`, `--update_end_fraction`,
`--weight_decay_mode decoupled`, `--initializer glorot`) and are printed in
the settings when used.

`--preset` sets the data size, model and schedule (see `PRESETS`; any flag
overrides it):

* `long` (default): the over-parameterised, trained-to-over-fitting regime
  where the paper's claim can be checked on two CPU cores (30-40 minutes).
* `short`: LeNet-5 x4, 5,000 images, 8 epochs (the earlier default, ~35 min):
  too short for sparse ensembles to pay off.

    python benchmarks/real_data.py --data ../shared/data/fashion_mnist.npz
    python benchmarks/real_data.py --data ... --preset short --seed 1
    python benchmarks/real_data.py --data ... --quick          # smoke run
    python benchmarks/real_data.py --data ... --model wrn-16-4 --epochs 15 \
        --train_subset 0      # full size, for an accelerator
    KERAS_BACKEND=jax python benchmarks/real_data.py ...   # GPU machines (no TF)

Prints a JSON document and a markdown table (also written to `--output_dir`).
Run directories are kept there too, so an interrupted benchmark resumes.
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import freetickets_tf as ft  # noqa: E402

# `gmp` (gradual magnitude pruning, dense to sparse) only when asked for.
ROWS = ("dense", "deep_ensemble", "static", "dst", "gmp", "edst")
DEFAULT_ROWS = tuple(row for row in ROWS if row != "gmp")
METHODS = ROWS[1:]  # trained in this order; `dense` is deep_ensemble's member 0

PRESETS = {
    "long": {
        "model": "mlp-cifar10", "epochs": 150, "train_subset": 5000,
        "validation": 5000, "lr": 0.1, "update_frequency": 100,
    },
    "short": {
        "model": "lenet5-x4", "epochs": 8, "train_subset": 5000,
        "validation": 5000, "lr": 0.05, "update_frequency": 50,
    },
}
# The original's semantics; a run that changes one says so in its settings.
ORIGINAL = {
    "weight_decay_mode": "coupled", "initializer": "original", "rescale_init": False,
    "update_end_fraction": None, "prune_dense_layers": False, "growth_batch": "fresh",
    "reset_optimizer_state": True,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="fashion_mnist.npz")
    parser.add_argument("--preset", default="long", choices=sorted(PRESETS))
    parser.add_argument("--model", help="freetickets_tf.models name (wrn-* pads "
                        "to 32x32x3; mlp-cifar10 takes 28x28x1 here)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train_subset", type=int,
                        help="training images used (0: all but the validation split)")
    parser.add_argument("--validation", type=int)
    parser.add_argument("--test_subset", type=int, default=0,
                        help="test images used (0: all 10,000)")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--weight_decay_mode", default="coupled",
                        choices=ft.optimizers.WEIGHT_DECAY_MODES,
                        help="coupled: torch.optim.SGD's L2, as the original")
    parser.add_argument("--initializer", default="original",
                        choices=ft.models.INITIALIZERS,
                        help="original: the original model's PyTorch initialisation")
    parser.add_argument("--update_frequency", type=int)
    parser.add_argument("--death_rate", type=float, default=0.5)
    parser.add_argument("--update_end_fraction", type=float, default=None,
                        help="DST ensemble: stop topology updates after this "
                        "fraction of each run (RigL's 0.75; default: never, as "
                        "the original)")
    parser.add_argument("--rescale_init", action=argparse.BooleanOptionalAction,
                        default=False,
                        help="scale sparse layers' initial weights by "
                        "1/sqrt(density) (off in the original)")
    parser.add_argument("--prune_dense_layers", action="store_true",
                        help="the original's quirk: rewire density-1 layers too")
    parser.add_argument("--growth_batch", default="fresh",
                        choices=ft.callbacks.GROWTH_BATCHES,
                        help="last: the original's gradient of the last training batch")
    parser.add_argument("--reset_optimizer_state",
                        action=argparse.BooleanOptionalAction, default=True,
                        help="zero the momentum of regrown weights (RigL; "
                        "--no-reset_optimizer_state: the original)")
    parser.add_argument("--methods", default=",".join(DEFAULT_ROWS),
                        help="comma-separated subset of " + ", ".join(ROWS) +
                        " (dense comes free with deep_ensemble: its member 0; "
                        "gmp, gradual magnitude pruning, is not in the default)")
    parser.add_argument("--pruning_frequency", type=int, default=None,
                        help="gmp: optimizer steps between pruning steps "
                        "(default: --update_frequency)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default=None,
                        help="default benchmarks/runs/real_data_<preset>_seed<seed>")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny subset, 2 epochs, small model")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(args.methods) - set(ROWS))
    if unknown or not args.methods:
        parser.error(f"--methods: unknown {unknown or 'empty'}; choose from {', '.join(ROWS)}")
    if args.output_dir is None:
        args.output_dir = f"benchmarks/runs/real_data_{args.preset}_seed{args.seed}"
    if args.quick:
        args.model, args.epochs, args.train_subset = "lenet5", 2, 1000
        args.validation = 500
        args.update_frequency = 4
        args.output_dir = args.output_dir.rstrip("/") + "_quick"
    return args


def image_shape_of(model):
    """The input shape the model takes the 28x28 images in (None: as they are)."""
    return (32, 32, 3) if model.startswith("wrn-") else None


def load(args):
    (x, y), (x_test, y_test) = ft.data.load_npz(args.data, image_shape_of(args.model))
    order = np.random.default_rng(args.seed).permutation(len(x))
    val, rest = order[: args.validation], order[args.validation :]
    if args.train_subset:
        rest = rest[: args.train_subset]
    if args.test_subset:
        # A seeded random subset: test sets are often stored sorted by class.
        pick = np.random.default_rng(args.seed).permutation(len(x_test))
        pick = np.sort(pick[: args.test_subset])
        x_test, y_test = x_test[pick], y_test[pick]
    return (x[rest], y[rest]), (x[val], y[val]), (x_test, y_test)


def digits_as_mnist(image_shape=None):
    """scikit-learn's 1,797 handwritten 8x8 digits laid out as MNIST is: each
    image resized to 20x20 and centred in 28x28 (then fitted to
    `image_shape`, as `load_npz` fits Fashion-MNIST). An out-of-distribution
    set for Fashion-MNIST models, built without a download."""
    import tensorflow as tf

    (x_a, _), (x_b, _) = ft.data.load_digits()
    digits = np.concatenate([x_a, x_b])
    digits = tf.image.resize(digits, (20, 20), method="bilinear").numpy()
    digits = np.pad(np.clip(digits, 0.0, 1.0), [(0, 0), (4, 4), (4, 4), (0, 0)])
    if image_shape is not None:
        height, width, channels = image_shape
        pad_h, pad_w = height - 28, width - 28
        digits = np.pad(digits, [(0, 0), (pad_h // 2, pad_h - pad_h // 2),
                                 (pad_w // 2, pad_w - pad_w // 2), (0, 0)])
        digits = np.tile(digits, (1, 1, 1, channels))
    return digits.astype("float32")


def config_for(method, args):
    epochs = args.epochs
    return ft.EnsembleConfig(
        num_members=args.members,
        epochs=round(1.8 * epochs) if method == "edst" else epochs,
        exploration_epochs=round(0.6 * epochs),
        reference_epochs=epochs,
        density=args.density,
        update_frequency=args.update_frequency,
        update_end_fraction=args.update_end_fraction if method == "dst" else None,
        rescale_init=args.rescale_init,
        death_rate=args.death_rate,
        prune_dense_layers=args.prune_dense_layers,
        growth_batch=args.growth_batch,
        reset_optimizer_state=args.reset_optimizer_state,
        pruning_frequency=args.pruning_frequency or args.update_frequency,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        weight_decay_mode=args.weight_decay_mode,
        seed=args.seed,
        verbose=args.verbose,
    )


def measure(ensemble, x_test, y_test, x_ood, reference):
    report = ft.evaluation.evaluate_ensemble(ensemble, x_test, y_test)
    probs, _ = ft.evaluation.ensemble_probabilities(ensemble, x_test)
    ood_probs, _ = ft.evaluation.ensemble_probabilities(ensemble, x_ood)
    test_flops = sum(ft.flops.forward_flops(m) for m in ensemble.members)
    return {
        **report["ensemble"],
        "member_accuracy": [m["accuracy"] for m in report["members"]],
        **report["diversity"],
        "ood_auroc": ft.metrics.auroc(ft.metrics.max_probability(probs),
                                      ft.metrics.max_probability(ood_probs)),
        "relative_test_flops": test_flops / ft.flops.forward_flops(reference, False),
    }


def changed_semantics(args):
    """The settings of this run that differ from the original's."""
    return {name: getattr(args, name) for name, value in ORIGINAL.items()
            if getattr(args, name) != value}


def markdown(results, args):
    changed = changed_semantics(args)
    lines = [
        f"Fashion-MNIST, {args.model}, {args.train_subset or 'all'} training images, "
        f"{args.epochs} epochs per member (EDST {round(1.8 * args.epochs)} in one "
        f"run), M={args.members}, density {args.density}, seed {args.seed}; "
        + (f"changed from the original's semantics: {changed}" if changed
           else "the original's training semantics"),
        "",
        "| Method | Accuracy | NLL | ECE | Brier | Disagreement | OoD AUROC | "
        "Members' accuracy | Train FLOPs (x dense) | Test FLOPs (x dense) | "
        "Wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        members = ", ".join(f"{a:.4f}" for a in r["member_accuracy"])
        disagreement = f"{r['disagreement']:.4f}" if "disagreement" in r else "-"
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {r['nll']:.4f} | {r['ece']:.4f} | "
            f"{r['brier']:.4f} | {disagreement} | {r['ood_auroc']:.4f} | {members} | "
            f"{r['relative_training_flops']:.2f} | {r['relative_test_flops']:.2f} | "
            f"{r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    train, val, (x_test, y_test) = load(args)
    x_ood = digits_as_mnist(image_shape_of(args.model))
    input_shape = train[0].shape[1:]

    def build():
        return ft.models.get(args.model, num_classes=10, input_shape=input_shape,
                             initializer=args.initializer)

    reference = build()
    results = {}
    methods = [m for m in METHODS if m in args.methods]
    if "dense" in args.methods and "deep_ensemble" not in args.methods:
        methods.insert(0, "dense")
    for method in methods:
        start = time.perf_counter()
        run = ft.train_ensemble(
            method, build, train, val, config_for(method, args),
            os.path.join(args.output_dir, method),
        )
        train_seconds = time.perf_counter() - start
        ensemble = run.ensemble_model(return_member_probabilities=True)
        results[method] = {
            **measure(ensemble, x_test, y_test, x_ood, reference),
            "relative_training_flops": run.relative_training_flops,
            "training_flops": run.training_flops,
            "train_seconds": train_seconds,
        }
        if method == "deep_ensemble" and "dense" in args.methods:
            first = run.tickets[0]
            single = ft.EnsembleModel(ensemble.members[:1],
                                      return_member_probabilities=True)
            results["dense"] = {
                **measure(single, x_test, y_test, x_ood, reference),
                "relative_training_flops": first["training_flops"]
                / run.dense_training_flops,
                "training_flops": first["training_flops"],
                "train_seconds": train_seconds / args.members,
            }
    results = {name: results[name] for name in ROWS if name in results}
    document = {
        "benchmark": "real_data",
        "data": os.path.basename(args.data),
        "settings": {k: v for k, v in vars(args).items() if k != "verbose"},
        "changed_from_original": changed_semantics(args),
        "train_images": len(train[0]),
        "validation_images": len(val[0]),
        "test_images": len(x_test),
        "ood_images": len(x_ood),
        "results": results,
        "platform": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        },
    }
    table = markdown(results, args)
    os.makedirs(args.output_dir, exist_ok=True)
    ft.io.write_json_atomic(document, os.path.join(args.output_dir, "results.json"))
    ft.io.write_text_atomic(table + "\n", os.path.join(args.output_dir, "results.md"))
    print(json.dumps(document, indent=2))
    print()
    print(table)


if __name__ == "__main__":
    main()
