"""`python -m fer`: inspect datasets and train models from the command line.

Errors the user can fix print one line (`error: ...`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fer.errors import FerError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except FerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer", description="FER Studio command line.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="classes and per-split, per-class image counts of a dataset")
    info.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(command=_info)

    train = commands.add_parser("train", help="train a model on a dataset")
    train.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    train.add_argument("--preset", default="seed", help="seed (the reference CNN), vgg40 or tiny")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    train.add_argument("--schedule", default="constant", choices=["constant", "cosine", "plateau"])
    train.add_argument("--warmup-epochs", type=int, default=0)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--label-smoothing", type=float, default=0.0)
    train.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    train.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype-policy", default="float32", choices=["float32", "mixed_bfloat16"])
    train.add_argument("--out", help="run directory (default: runs/<time>-<preset>); resumes if it holds a checkpoint")
    train.add_argument("--register", metavar="NAME", help="also copy the best model to models/NAME.keras")
    train.set_defaults(command=_train)
    return parser


def _info(args) -> int:
    from fer.datasets import open_dataset

    dataset = open_dataset(args.dataset)
    counts = dataset.counts()
    if args.json:
        print(json.dumps({
            "classes": list(dataset.classes),
            "splits": counts,
            "skipped": [{"file": s.file, "reason": s.reason} for s in dataset.skipped],
            "conversions": dataset.conversions,
            "format": dataset.format,
            "fingerprint": dataset.fingerprint,
        }, indent=2))
        return 0
    width = max(len(c) for c in dataset.classes) + 2
    print(f"{dataset.source}  ({dataset.format}, fingerprint {dataset.fingerprint})")
    print("class".ljust(width) + "".join(s.rjust(12) for s in counts))
    for name in dataset.classes:
        print(name.ljust(width) + "".join(f"{counts[s][name]:>12,}" for s in counts))
    print("total".ljust(width) + "".join(f"{sum(counts[s].values()):>12,}" for s in counts))
    for note, n in dataset.conversions.items():
        print(f"{n:,} images {note}")
    if dataset.skipped:
        print(f"{len(dataset.skipped):,} files skipped:")
        for skipped in dataset.skipped[:20]:
            print(f"  {skipped.file}: {skipped.reason}")
    return 0


def _train(args) -> int:
    from fer.datasets import open_dataset
    from fer.paths import PROJECT_ROOT
    from fer.training import ConsoleProgress, TrainConfig, train

    config = TrainConfig(
        preset=args.preset, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        optimizer=args.optimizer, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, class_weights=args.class_weights,
        early_stopping_patience=args.early_stopping, seed=args.seed, dtype_policy=args.dtype_policy,
    )
    started = time.perf_counter()
    dataset = open_dataset(args.dataset)
    print(f"dataset: {dataset.source} ({sum(len(s) for s in dataset.splits.values()):,} images, "
          f"opened in {time.perf_counter() - started:.1f}s)")
    run_dir = Path(args.out) if args.out else PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.preset}"
    print(f"run directory: {run_dir}")
    result = train(dataset, config, run_dir, callbacks=[ConsoleProgress()])
    print(f"best model: {result.model_path}")
    for split, metrics in result.card.get("metrics", {}).items():
        print(f"  {split}: accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}")
    if args.register:
        from fer.registry import register_model

        print(f"registered: {register_model(result.model_path, args.register)}")
    return 0
