"""Export a training run's best model, alone or averaged with other models, as the model the project ships.

    python scripts/ship_model.py RUN_DIR [--ensemble-with MODEL.keras ...] [--separate-runs] [--name fer2013]
                                 [--dataset PATH] [--tta auto|none|flip|shifts] [--min-gain 0.005] [--max-passes N]
                                 [--note TEXT] [--out PATH]

Rebuilds the run's preset with the current code and moves the learned weights in, so the shipped
file always matches today's layers. The choices are the run's best model alone or, with
`--ensemble-with`, averaged with the first 1, 2, … of the other models (same preset, classes and
training data, checked against the run's; the card's training time is RUN_DIR's, plus the
members' own with `--separate-runs`), each with the test-time views of `--tta` (auto: all three).
fer.evaluate.ship_choice chooses: every member's probabilities for every view of the validation split
are computed once and each choice is scored from them. The cheapest choice (fewest forward passes per
face) within `--min-gain` of the most accurate one is kept (default 0.005, half a point: on 3,589 faces
smaller gains are noise, and each pass is paid on every face, webcam frames included). `--max-passes`
is a latency budget: costlier choices are scored and listed in the card but cannot be chosen. Then
every split is evaluated with the saved model and the card gets the numbers, the per-class metrics and
confusion matrix, the recipe and the training time. Last, the model is exported as
`python -m fer export MODEL --format onnx --quantise` does (fer.model.export.export_served_onnx), so
the ONNX files the app serves sit beside it.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

from fer.cli import train_command
from fer.data.datasets import Dataset, open_dataset
from fer.errors import FerError
from fer.evaluate.scoring import check_classes, report
from fer.evaluate.ship_choice import TTA_CHOICES, Shortlist, choose, chosen_model, member_accuracies, selection_record
from fer.model.cards import ModelCard, read_card
from fer.model.export import export_served_onnx, variants_table
from fer.model.files import load_model, save_model
from fer.model.presets import build_model, transfer_weights
from fer.paths import MODELS_DIR
from fer.serve.runtime import OnnxModel
from fer.train.config import TrainConfig
from fer.train.loop import finalize_card
from fer.train.run_dir import RunDir


class Members(NamedTuple):
    """The models to choose from: the run's best first, then the --ensemble-with models, with their cards."""

    sources: list[Path]
    models: list
    cards: list[ModelCard]


def rebuilt(path: Path, config: TrainConfig) -> tuple:
    """The model at `path` moved into today's build of the run's preset, and its card."""
    trained, card = load_model(path)
    if card.preset not in (None, config.preset):
        raise FerError(f"{path} is a '{card.preset}' model; the run trained '{config.preset}'")
    return transfer_weights(trained, build_model(config.preset, num_classes=len(card.classes),
                                                 augmentation=config.augmentation)), card


def member_mismatch(sources: list[Path], cards: list[ModelCard], fingerprint: str | None) -> str | None:
    """Why an ensemble member cannot be averaged with the run's best model, or None.

    Averaging needs the same class order in every member's output, and members trained on other
    data would make the card's dataset and recipe wrong.
    """
    for source, member_card in zip(sources[1:], cards[1:]):
        if member_card.classes != cards[0].classes:
            return (f"{source} predicts {', '.join(member_card.classes)}; the run's model predicts "
                    f"{', '.join(cards[0].classes)}: an ensemble needs the same classes in the same order")
        member_fingerprint = member_card.dataset.get("fingerprint")
        if fingerprint and member_fingerprint and member_fingerprint != fingerprint:
            return (f"{source} was trained on {member_card.dataset.get('source')} (fingerprint "
                    f"{member_fingerprint}), not on the run's dataset (fingerprint {fingerprint})")
    return None


def read_run_config(run_dir: Path) -> tuple[TrainConfig, dict]:
    """A run directory's TrainConfig and the dataset it trained on ({"source", "fingerprint"}), from config.json."""
    run_config = RunDir(run_dir).read_config()
    if run_config is None or not run_config.dataset.source:
        raise FerError(f"{run_dir} has no readable config.json: it is not a training run directory")
    trained_on = {"source": run_config.dataset.source, "fingerprint": run_config.dataset.fingerprint}
    return TrainConfig.from_dict(run_config.config), trained_on


def run_facts(run_dir: Path, backend: str | None = None) -> dict:
    """Card fields a run directory records about its training: epochs, time, backend, command."""
    (config, trained_on), state = read_run_config(run_dir), RunDir(run_dir).read_state()
    backend = backend or "tensorflow"
    return {
        "epochs_trained": state.epochs_done,
        "epochs_planned": config.epochs,
        "best_epoch": state.best_epoch,
        "training_seconds": round(state.training_seconds, 1),
        "training_backend": backend,
        "recipe": f"KERAS_BACKEND={backend} " + train_command(config, trained_on["source"]),
    }


def with_run_facts(source: Path, member_card: ModelCard) -> ModelCard:
    """A member's card, completed from its run directory when it is a run's best.keras.

    A run's best.keras card is a snapshot from its best epoch: without this, the ensemble's card
    would count that member's training up to the best epoch only, and have no recipe for it.
    """
    if member_card.recipe or not RunDir(source.parent).state_file.exists():
        return member_card
    return member_card.replace(**run_facts(source.parent, member_card.training_backend))


def separate_runs_training(card: ModelCard, member_cards: list[ModelCard]) -> dict:
    """Card fields for an ensemble whose other members were trained in runs of their own.

    Training time and epochs add up over the runs; the backends and the devices (where the cards
    name them) are listed in order, each once, joined by '+'.
    """
    cards = [card, *member_cards]
    backends = [c.training_backend or "tensorflow" for c in cards]
    devices = [c.training_device for c in cards if c.training_device]
    return {
        "training_seconds": round(sum(c.training_seconds or 0.0 for c in cards), 1),
        "epochs_trained": sum(c.epochs_trained or c.epoch or 0 for c in cards),
        "training_backend": "+".join(dict.fromkeys(backends)),
        **({"training_device": "+".join(dict.fromkeys(devices))} if devices else {}),
    }


def load_members(args: argparse.Namespace, config: TrainConfig) -> Members:
    """The run's best model and the --ensemble-with models, each rebuilt in the run's preset."""
    sources = [RunDir(args.run_dir).best_model, *args.ensemble_with]
    loaded = [rebuilt(path, config) for path in sources]
    return Members(sources, [model for model, _ in loaded], [card for _, card in loaded])


def check_members(members: Members, dataset: Dataset, fingerprint: str | None) -> None:
    """FerError unless the run's model predicts the dataset's classes and every member can join it."""
    check_classes(members.models[0], members.cards[0].classes, dataset.classes)
    mismatch = member_mismatch(members.sources, members.cards, fingerprint)
    if mismatch:
        raise FerError(mismatch)


def shipped_card(args: argparse.Namespace, config: TrainConfig, members: Members, shortlist: Shortlist,
                 accuracies: list[float], split: str, dataset_source: str) -> ModelCard:
    """The shipped model's card: the run's facts, the selection and its validation report, the ensemble."""
    chosen = shortlist.chosen.choice
    card = members.cards[0].replace(
        name=args.name,
        network=config.preset,
        **run_facts(args.run_dir, members.cards[0].training_backend or args.training_backend),
        selection=selection_record(shortlist.chosen, shortlist.options, split=split, min_gain=args.min_gain,
                                   max_passes=args.max_passes),
        validation_report=report(shortlist.chosen.evaluation, model=args.name, split=split,
                                 tta=chosen.forward_passes > 1, dataset=dataset_source),
        history=RunDir(args.run_dir).read_metrics(),
        exported=time.strftime("%Y-%m-%d"),
    )
    member_cards = [with_run_facts(source, member_card) for source, member_card
                    in zip(members.sources[1:chosen.members], members.cards[1:chosen.members])]
    if chosen.members > 1:
        card = card.replace(ensemble=[
            {"source": f"{source.parent.name}/{source.name}", "epoch": member_card.epoch,
             "validation_accuracy": round(accuracies[index], 4),
             # A member from another run (a shipped model, say) brings its own training time and recipe.
             **{key: getattr(member_card, key) for key in ("training_seconds", "recipe")
                if getattr(member_card, key) is not None}}
            for index, (source, member_card) in enumerate(zip(members.sources, [card, *member_cards]))])
    if member_cards and args.separate_runs:
        card = card.replace(**separate_runs_training(card, member_cards))
    return card.replace(notes=args.note) if args.note else card


def export_served(path: Path) -> int:
    """Export the saved model as `fer export --quantise` does and print what was measured; the exit status."""
    try:
        _, measured = export_served_onnx(path, runtime=OnnxModel, progress=lambda message: print(f"  {message}"))
    except FerError as error:
        print(f"error: {path} is written, but its ONNX export failed: {error}", file=sys.stderr)
        return 1
    print(variants_table(measured))
    print(f"served: {path.with_name(read_card(path).serving)}")
    return 0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--ensemble-with", type=Path, action="append", default=[], metavar="MODEL.keras",
                        help="another model of the run's preset to average with the run's best (repeatable)")
    parser.add_argument("--name", default="fer2013")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the run's own)")
    parser.add_argument("--tta", default="auto", choices=["auto", *TTA_CHOICES])
    parser.add_argument("--min-gain", type=float, default=0.005, help="accuracy a costlier choice must add")
    parser.add_argument("--max-passes", type=int, help="most forward passes per face a choice may cost (latency)")
    parser.add_argument("--note", help="how the members were made, when the run's command alone does not say")
    parser.add_argument("--out", type=Path, help="where to write the model (default: models/NAME.keras)")
    parser.add_argument("--training-backend", help="Keras backend the run trained under, if its card lacks it")
    parser.add_argument("--separate-runs", action="store_true",
                        help="the --ensemble-with members come from runs of their own (a shipped model, say): "
                             "add their training time to the card's")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        config, trained_on = read_run_config(args.run_dir)
        members = load_members(args, config)
        dataset_source = args.dataset or trained_on["source"]
        dataset = open_dataset(dataset_source)
        check_members(members, dataset, trained_on.get("fingerprint"))
    except (OSError, KeyError, ValueError, FerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    split, classes = config.validation_split, members.cards[0].classes
    images, labels = dataset.arrays(split)
    started = time.perf_counter()
    shortlist = choose(members.models, images, labels, classes, dataset.classes,
                       tta_names=list(TTA_CHOICES) if args.tta == "auto" else [args.tta],
                       min_gain=args.min_gain, max_passes=args.max_passes)
    print(f"  {len(shortlist.probabilities)} member × view passes over {len(labels):,} {split} images "
          f"in {time.perf_counter() - started:.0f}s")
    for option in shortlist.options:
        print(f"  {option.choice.name:<22} {option.choice.forward_passes:>2} passes/face  {split} accuracy "
              f"{option.accuracy:.4f}")
    accuracies = member_accuracies(shortlist, labels, classes, dataset.classes)
    card = shipped_card(args, config, members, shortlist, accuracies, split, dataset_source)
    path = save_model(chosen_model(members.models, shortlist.chosen.choice),
                      args.out or MODELS_DIR / f"{args.name}.keras", card)
    card = finalize_card(path, dataset)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB): {shortlist.chosen.choice.name}")
    for name, metrics in card.metrics.items():
        print(f"  {name}: accuracy {metrics['accuracy']:.4f} on {metrics['images']:,} images")
    return export_served(path)


if __name__ == "__main__":
    sys.exit(main())
