r"""FreeTickets against its baselines on real images (Fashion-MNIST).

Trains, on the same data and with the same settings, a dense single model, a
dense deep ensemble, a static sparse ensemble, a DST ensemble and an EDST
ensemble (M members, density d), and reports for each ensemble accuracy,
NLL, ECE and Brier score on the test set, the members' accuracies and
disagreement, and training and test FLOPs relative to one dense model.

Dense, static and DST members train `--epochs` epochs each; the EDST run
spends 1.8 x `--epochs` in total, 0.6 x in exploration and the rest in M
refinement phases, as the paper's 450 / 150 against 250 epochs. The dense
single model is the deep ensemble's member 0 (same seed, same settings), so it
is not trained twice. `--methods` picks a subset (then `dense` is trained on
its own).

Defaults that differ from the library's (see benchmarks/README.md for why):
LeNet-5 x4 wide, sparse initial weights scaled by 1/sqrt(layer density)
(LeNet has no normalisation layers), DST-ensemble updates stop at 75%.

    python benchmarks/real_data.py --data ../shared/data/fashion_mnist.npz
    python benchmarks/real_data.py --data ../shared/data/fashion_mnist.npz --quick
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

ROWS = ("dense", "deep_ensemble", "static", "dst", "edst")
METHODS = ROWS[1:]  # trained in this order; `dense` is deep_ensemble's member 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="fashion_mnist.npz")
    parser.add_argument("--model", default="lenet5-x4",
                        help="freetickets_tf.models name (wrn-* pads to 32x32x3)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train_subset", type=int, default=5000,
                        help="training images used (0: all but the validation split)")
    parser.add_argument("--validation", type=int, default=5000)
    parser.add_argument("--test_subset", type=int, default=0,
                        help="test images used (0: all 10,000)")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--update_frequency", type=int, default=50)
    parser.add_argument("--death_rate", type=float, default=0.5)
    parser.add_argument("--update_end_fraction", type=float, default=0.75,
                        help="DST ensemble: stop topology updates after this "
                        "fraction of each run (RigL's 0.75; 1: never stop)")
    parser.add_argument("--rescale_init", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="scale sparse layers' initial weights by "
                        "1/sqrt(density) (LeNet has no normalisation layers)")
    parser.add_argument("--methods", default=",".join(ROWS),
                        help="comma-separated subset of " + ", ".join(ROWS) +
                        " (dense comes free with deep_ensemble: its member 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="benchmarks/runs/real_data")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny subset, 2 epochs, small model")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(args.methods) - set(ROWS))
    if unknown or not args.methods:
        parser.error(f"--methods: unknown {unknown or 'empty'}; choose from {', '.join(ROWS)}")
    if args.quick:
        args.model, args.epochs, args.train_subset = "lenet5", 2, 1000
        args.validation = 500
        args.update_frequency = 4
        args.output_dir = args.output_dir.rstrip("/") + "_quick"
    return args


def load(args):
    image_shape = (32, 32, 3) if args.model.startswith("wrn-") else None
    (x, y), (x_test, y_test) = ft.data.load_npz(args.data, image_shape)
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


def config_for(method, args):
    epochs = args.epochs
    return ft.EnsembleConfig(
        num_members=args.members,
        epochs=round(1.8 * epochs) if method == "edst" else epochs,
        exploration_epochs=round(0.6 * epochs),
        reference_epochs=epochs,
        density=args.density,
        update_frequency=args.update_frequency,
        update_end_fraction=args.update_end_fraction,
        rescale_init=args.rescale_init,
        death_rate=args.death_rate,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        verbose=args.verbose,
    )


def measure(ensemble, x_test, y_test, reference):
    report = ft.evaluation.evaluate_ensemble(ensemble, x_test, y_test)
    test_flops = sum(ft.flops.forward_flops(m) for m in ensemble.members)
    return {
        **report["ensemble"],
        "member_accuracy": [m["accuracy"] for m in report["members"]],
        **report["diversity"],
        "relative_test_flops": test_flops / ft.flops.forward_flops(reference, False),
    }


def markdown(results, args):
    lines = [
        f"Fashion-MNIST, {args.model}, {args.train_subset or 'all'} training images, "
        f"{args.epochs} epochs per member (EDST {round(1.8 * args.epochs)} in one "
        f"run), M={args.members}, density {args.density}",
        "",
        "| Method | Accuracy | NLL | ECE | Brier | Members' accuracy | "
        "Train FLOPs (x dense) | Test FLOPs (x dense) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        members = ", ".join(f"{a:.4f}" for a in r["member_accuracy"])
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {r['nll']:.4f} | {r['ece']:.4f} | "
            f"{r['brier']:.4f} | {members} | {r['relative_training_flops']:.2f} | "
            f"{r['relative_test_flops']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    train, val, (x_test, y_test) = load(args)
    input_shape = train[0].shape[1:]

    def build():
        return ft.models.get(args.model, num_classes=10, input_shape=input_shape)

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
            **measure(ensemble, x_test, y_test, reference),
            "relative_training_flops": run.relative_training_flops,
            "training_flops": run.training_flops,
            "train_seconds": train_seconds,
        }
        if method == "deep_ensemble" and "dense" in args.methods:
            first = run.tickets[0]
            single = ft.EnsembleModel(ensemble.members[:1],
                                      return_member_probabilities=True)
            results["dense"] = {
                **measure(single, x_test, y_test, reference),
                "relative_training_flops": first["training_flops"]
                / run.dense_training_flops,
                "training_flops": first["training_flops"],
            }
    results = {name: results[name] for name in ROWS if name in results}
    document = {
        "benchmark": "real_data",
        "data": os.path.basename(args.data),
        "settings": {k: v for k, v in vars(args).items() if k != "verbose"},
        "train_images": len(train[0]),
        "validation_images": len(val[0]),
        "test_images": len(x_test),
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
