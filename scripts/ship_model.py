"""Export a training run's best model as the model the project ships (models/fer2013.keras).

    python scripts/ship_model.py RUN_DIR [--name fer2013] [--dataset PATH] [--tta auto|none|flip|shifts] [--out PATH]

Rebuilds the run's preset with the current code and moves the learned weights in, so the shipped
file always matches today's layers. Test-time augmentation is baked into the shipped model as a
wrapper: with `--tta auto` (the default) the three choices are scored on the validation split and
a choice with more views is kept only if it beats every choice with fewer views by at least
`--min-gain` (default 0.005, i.e. half a point: on 3,589 faces smaller gains are noise, and each
view costs a forward pass on every face, webcam frames included). Then every split is evaluated and the model
card gets the numbers, the per-class metrics and confusion matrix, the recipe and the training time.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer.cli import train_command  # noqa: E402
from fer.datasets import open_dataset  # noqa: E402
from fer.evaluation import evaluate_split  # noqa: E402
from fer.models import (build_model, load_model, save_model, transfer_weights, tta_views,  # noqa: E402
                        with_test_time_augmentation)
from fer.paths import MODELS_DIR  # noqa: E402
from fer.training import TrainConfig, finalize_card, read_metrics, read_state  # noqa: E402

TTA_CHOICES = {
    "none": (),
    "flip": tta_views(),  # The image and its mirror image.
    "shifts": tta_views(shift=2),  # Both, each also moved 2 pixels left, right, up and down: 10 views.
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default="fer2013")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the run's own)")
    parser.add_argument("--tta", default="auto", choices=["auto", *TTA_CHOICES])
    parser.add_argument("--min-gain", type=float, default=0.005, help="accuracy a choice with more views must add")
    parser.add_argument("--out", type=Path, help="where to write the model (default: models/NAME.keras)")
    parser.add_argument("--training-backend", help="Keras backend the run trained under, if its card lacks it")
    args = parser.parse_args()

    run_config = json.loads((args.run_dir / "config.json").read_text())
    config = TrainConfig.from_dict(run_config["config"])
    trained, card = load_model(args.run_dir / "best.keras")
    network = transfer_weights(trained, build_model(config.preset, num_classes=len(card["classes"]),
                                                    augmentation=config.augmentation))
    dataset_source = args.dataset or run_config["dataset"]["source"]
    dataset = open_dataset(dataset_source)

    choices = list(TTA_CHOICES) if args.tta == "auto" else [args.tta]
    scored = {}
    for choice in choices:
        candidate = with_test_time_augmentation(network, TTA_CHOICES[choice]) if TTA_CHOICES[choice] else network
        result = evaluate_split(candidate, card["classes"], dataset, config.validation_split)
        scored[choice] = (candidate, result)
        print(f"  tta {choice:<6} validation accuracy {result.evaluation.accuracy:.4f} "
              f"({result.seconds:.1f}s for {result.evaluation.images:,} images)")
    best = choices[0]  # Ordered by number of views.
    for choice in choices[1:]:
        if scored[choice][1].evaluation.accuracy >= scored[best][1].evaluation.accuracy + args.min_gain:
            best = choice
    model, validation = scored[best]

    state = read_state(args.run_dir)
    backend = card.get("training_backend") or args.training_backend or "tensorflow"
    card.update({
        "name": args.name,
        "network": config.preset,
        "epochs_trained": state.get("epochs_done"),
        "epochs_planned": config.epochs,
        "best_epoch": state.get("best_epoch"),
        "training_seconds": round(state.get("training_seconds", 0.0), 1),
        "training_backend": backend,
        "recipe": f"KERAS_BACKEND={backend} " + train_command(config, dataset_source),
        "test_time_augmentation": {
            "choice": best, "views": [list(view) for view in TTA_CHOICES[best]],
            "validation_accuracy": {choice: round(scored[choice][1].evaluation.accuracy, 4) for choice in choices},
            "selected_on": config.validation_split, "min_gain": args.min_gain,
        },
        "validation_report": validation.report(dataset_source),
        "history": read_metrics(args.run_dir),
        "exported": time.strftime("%Y-%m-%d"),
    })
    path = save_model(model, args.out or MODELS_DIR / f"{args.name}.keras", card)
    card = finalize_card(path, dataset)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB), test-time augmentation: {best}")
    for split, metrics in card["metrics"].items():
        print(f"  {split}: accuracy {metrics['accuracy']:.4f} on {metrics['images']:,} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
