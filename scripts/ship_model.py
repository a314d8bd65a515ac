"""Export a training run's best model as the model the project ships (models/fer2013.keras).

    python scripts/ship_model.py RUN_DIR [--name fer2013] [--dataset PATH]

Rebuilds the run's preset with the current code, moves the learned weights in (so the shipped
file always matches today's layers), evaluates it on every split of the dataset and writes the
model card with those numbers, the recipe and the training time.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer.datasets import open_dataset  # noqa: E402
from fer.models import build_model, load_model, save_model, transfer_weights  # noqa: E402
from fer.paths import MODELS_DIR  # noqa: E402
from fer.training import TrainConfig, finalize_card, read_metrics, read_state  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default="fer2013")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the run's own)")
    args = parser.parse_args()

    run_config = json.loads((args.run_dir / "config.json").read_text())
    config = TrainConfig.from_dict(run_config["config"])
    trained, card = load_model(args.run_dir / "best.keras")
    model = transfer_weights(trained, build_model(config.preset, num_classes=len(card["classes"]),
                                                  augmentation=config.augmentation))
    state = read_state(args.run_dir)
    card.update({
        "name": args.name,
        "epochs_trained": state.get("epochs_done"),
        "epochs_planned": config.epochs,
        "best_epoch": state.get("best_epoch"),
        "training_seconds": round(state.get("training_seconds", 0.0), 1),
        "history": read_metrics(args.run_dir),
    })
    path = save_model(model, MODELS_DIR / f"{args.name}.keras", card)
    dataset = open_dataset(args.dataset or run_config["dataset"]["source"])
    card = finalize_card(path, dataset)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    for split, metrics in card["metrics"].items():
        print(f"  {split}: accuracy {metrics['accuracy']:.4f} on {metrics['images']:,} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
