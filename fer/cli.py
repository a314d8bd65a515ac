"""`python -m fer`: inspect datasets, train models and read expressions in photos from the command line.

Errors the user can fix print one line (`error: ...`) and exit with status 2; `predict` reports a
file it cannot read on that file's line (or in its JSON entry), finishes the batch, and exits 1.
What fer/ logs (an unexpected failure's traceback) goes to $FER_STUDIO_HOME/cli.log, not the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from fer.errors import FerError
from fer.formatting import duration


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # train's options and export's model load Keras: load it first, without TensorFlow's start-up lines.
    if argv and argv[0] in ("train", "export"):
        from fer.quiet import load_keras_quietly

        load_keras_quietly()
    parser = _parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        with _logging_to_file():
            return args.command(args)
    except FerError as error:
        print(f"error: {error}", file=sys.stderr)
        if type(error).__name__ == "PeerLost":
            # JAX's distributed runtime would end this process at exit with a native crash report, waiting
            # for the lost process first: the sentence above is the whole story, so leave now.
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _logging_to_file():
    """Send the fer package's log records to $FER_STUDIO_HOME/cli.log while a command runs: Python would
    otherwise print them, tracebacks and all, on the terminal, where each problem already has its one line."""
    import logging

    from fer.paths import home_dir

    logger = logging.getLogger("fer")
    home_dir().mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(home_dir() / "cli.log", delay=True)  # The file appears once something is logged.
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        if handler.stream is not None:  # Something was logged: say where, after the lines that point to it.
            print(f"the log with the details: {handler.baseFilename}", file=sys.stderr)
        handler.close()


def _parser(command: str | None = "train") -> argparse.ArgumentParser:
    """The command line; `train`'s TrainConfig options only when `command` is train, since their choices come
    from fer.train.config, which imports Keras (seconds that `info` and `--help` need not spend)."""
    parser = argparse.ArgumentParser(prog="python -m fer", description="FER Studio command line.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="classes and per-split, per-class image counts of a dataset")
    info.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(command=_info)

    train = commands.add_parser("train", help="train a model on a dataset")
    train.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    train.add_argument("--from", dest="parent", metavar="MODEL",
                       help="fine-tune a trained model instead of starting from random weights: a registered "
                            "model's name (e.g. fer2013, the shipped model), a finished run or a .keras file. "
                            "Other classes than the model's get a new head, trained alone first (--head-epochs); "
                            "options left out take small-data defaults (20 epochs, batch 32, Adam 0.001, early "
                            "stopping after 5)")
    if command == "train":
        _add_train_options(train)
    train.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    train.add_argument("--random-erasing", type=float, metavar="P",
                       help="add random erasing to the preset's own augmentation: the chance (0-1) that a random "
                            "rectangle of each training face is filled with noise")
    train.add_argument("--out", metavar="RUN_DIR",
                       help="run directory (default: a new <time>-<preset> folder under $FER_STUDIO_HOME/runs, "
                            "~/.cache/fer-studio/runs unless set, where the Train page lists it); resumes if it "
                            "holds a checkpoint")
    train.add_argument("--register", metavar="NAME", help="also register the best model as NAME "
                       "(in FER_STUDIO_HOME/models; a taken name is refused)")
    train.add_argument("--devices", type=int, metavar="N",
                       help="train on the first N of this machine's devices (default: all). Under KERAS_BACKEND=jax "
                            "the batch is split across them (--batch-size is the global batch; raising it with the "
                            "devices calls for the learning rate raised as much); several hosts join from the "
                            "KERAS_DISTRIBUTION_* variables (docs/scaling.md)")
    train.add_argument("--mlflow", action="store_true",
                       help="also log the run to MLflow: to MLFLOW_TRACKING_URI (which does this on its own when "
                            "set), else to $FER_STUDIO_HOME/mlruns (pip install -r requirements-tracking.txt)")
    train.set_defaults(command=_train)

    predict = commands.add_parser("predict", help="find the faces in images and read their expressions")
    predict.add_argument("images", nargs="+", metavar="FILE",
                         help="image files (jpg, png, webp, bmp, gif, ...) or video files (mp4, webm, mov, "
                              "animated gif: 10 frames a second are read, up to the first 2 minutes)")
    predict.add_argument("--model", help="a .keras model or a registered model's name (default: the shipped model, "
                         "else the newest in models/); it runs on onnxruntime when its ONNX export is there")
    predict.add_argument("--detector", default="yunet", choices=["yunet", "haar", "mtcnn"],
                         help="face detector (default %(default)s: finds turned, small and many faces)")
    predict.add_argument("--whole-image", action="store_true",
                         help="read the whole image as one face when none is found")
    predict.add_argument("--json", action="store_true",
                         help="print JSON: per image, faces with box and probabilities; per video, the same per frame")
    predict.set_defaults(command=_predict)

    evaluate = commands.add_parser("evaluate", help="score a model on a dataset split (metrics, confusion matrix)")
    evaluate.add_argument("--model", help="a .keras model or a registered model's name (default: the shipped model, "
                          "else the newest in models/); it runs on onnxruntime when its ONNX export is there")
    evaluate.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    evaluate.add_argument("--split", default="validation", help="split to score (default: validation)")
    evaluate.add_argument("--tta", action="store_true",
                          help="average each image's and its mirror image's probabilities")
    evaluate.add_argument("--batch-size", type=int, default=512)
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(command=_evaluate)
    _add_audit(commands)
    export = commands.add_parser("export", help="export a model to ONNX or TFLite beside its .keras file")
    export.add_argument("model", metavar="MODEL", help="a .keras model, or a registered model's name")
    export.add_argument("--format", required=True, choices=["onnx", "tflite"])
    export.add_argument("--quantise", action="store_true",
                        help="onnx: also try float16 and int8 variants, score and time them, and serve the "
                             "fastest within 0.3 points of float32's validation accuracy")
    export.set_defaults(command=_export)
    return parser


def _info(args) -> int:
    from fer.data.datasets import open_dataset

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


# TrainConfig field → its `python -m fer train` option, the option's type and help. The defaults and
# the allowed values live in fer.train.config alone: TrainConfig checks them, the help lists them.
_TRAIN_OPTIONS = {  # field: (option, type, help)
    "preset": ("--preset", str, None),
    "epochs": ("--epochs", int, None),
    "batch_size": ("--batch-size", int, None),
    "learning_rate": ("--learning-rate", float, None),
    "optimizer": ("--optimizer", str, None),
    "schedule": ("--schedule", str, None),
    "warmup_epochs": ("--warmup-epochs", int, "epochs of linear warm-up before the cosine decay"),
    "weight_decay": ("--weight-decay", float, "decoupled weight decay (adamw, sgd)"),
    "label_smoothing": ("--label-smoothing", float, None),
    "early_stopping_patience": ("--early-stopping", int, "stop after this many epochs without a validation gain"),
    "seed": ("--seed", int, None),
    "dtype_policy": ("--dtype-policy", str, None),
    "teacher": ("--teacher", str, "a .keras model or ensemble file: train on its soft targets (distillation)"),
    "distill_temperature": ("--distill-temperature", float, "the temperature T that softens the teacher's and "
                                                            "the student's probabilities"),
    "distill_alpha": ("--distill-alpha", float, "the teacher's share α of the loss; the labels' is 1 − α"),
    "head_epochs": ("--head-epochs", int, "with --from and new classes: epochs that train the new head alone, "
                                          "the rest of the network frozen"),
    "backbone_rate": ("--backbone-rate", float, "with --from: the backbone's learning rate as a share of "
                                                "--learning-rate (the same classes train at this rate throughout)"),
    "parent_members": ("--members", int, "with --from and an ensemble: fine-tune its first N networks "
                                         "(default: all)"),
    "new_head": ("--new-head", str, None),
}
_FINETUNE_FIELDS = ("head_epochs", "backbone_rate", "parent_members", "new_head")


def _add_train_options(train: argparse.ArgumentParser) -> None:
    from fer.train.config import FIELD_CHOICES, TrainConfig

    defaults = TrainConfig()
    for field, (option, kind, help_text) in _TRAIN_OPTIONS.items():
        choices = FIELD_CHOICES.get(field)
        if choices:  # Listed, not enforced by argparse: TrainConfig's one-line error says what is allowed.
            default = getattr(defaults, field)
            help_text = "; ".join(f"{name}{' (the default)' if name == default else ''}: {description}"
                                  for name, description in choices.items())
        # No default here: an option not given stays None and TrainConfig's default (the seed recipe) applies.
        train.add_argument(option, type=kind, help=help_text.replace("%", "%%") if help_text else None,
                           metavar="{" + ",".join(choices) + "}" if choices else None)


def train_command(config, dataset: str, out: str | None = None) -> str:
    """The `python -m fer train` command line that trains `config` (a TrainConfig) on `dataset`."""
    parts = ["python -m fer train", f"--dataset {dataset}"]
    parts += [f"--from {config.parent}"] if config.parent else []
    parts += [f"{option} {getattr(config, field)}" for field, (option, *_) in _TRAIN_OPTIONS.items()
              if getattr(config, field) is not None and (config.teacher or not field.startswith("distill_"))
              and (config.parent or field not in _FINETUNE_FIELDS)]
    parts += ["--class-weights"] * config.class_weights
    parts += [f"--random-erasing {config.augmentation.erasing}"] if config.augmentation and \
        config.augmentation.erasing else []
    return " ".join(parts + ([f"--out {out}"] if out else []))


def _train_config(args):
    from fer.train.config import TrainConfig

    given = {field: getattr(args, option[2:].replace("-", "_")) for field, (option, *_) in _TRAIN_OPTIONS.items()}
    if args.parent:
        from fer.train.finetune import finetune_config, resolve_parent

        config = finetune_config(resolve_parent(args.parent), **given, class_weights=args.class_weights)
    else:
        config = TrainConfig(**{field: value for field, value in given.items() if value is not None},
                             class_weights=args.class_weights)
    if args.random_erasing:
        import dataclasses

        from fer.train.config import applied_augmentation

        if not 0 < args.random_erasing <= 1:
            raise FerError("--random-erasing is a chance: give a number above 0 and at most 1")
        erasing = dataclasses.replace(applied_augmentation(config.preset, None), erasing=args.random_erasing)
        config = dataclasses.replace(config, augmentation=erasing)
    return config


def _train(args) -> int:
    from fer.data.datasets import open_dataset
    from fer.train.distribution import prepare
    from fer.train.loop import ConsoleProgress, train
    from fer.train.reports import describe_best_epoch

    if args.register:
        from fer.model.registry import check_model_name

        check_model_name(args.register)  # Refused before training, not after it.
    from fer.train.run_dir import RunDir

    config = _train_config(args)
    started = time.perf_counter()
    dataset = open_dataset(args.dataset)
    print(f"dataset: {dataset.source} ({sum(len(s) for s in dataset.splits.values()):,} images, "
          f"opened in {time.perf_counter() - started:.1f}s)")
    plan = prepare(args.devices)
    if plan.placement.processes > 1 and not args.out:
        raise FerError("a several-host run needs --out RUN_DIR, the same folder on every host (shared storage), "
                       "so that every process finds the run when it resumes")
    run = RunDir(args.out) if args.out else RunDir.create(config.preset)
    print(f"run directory: {run.path}" + ("" if plan.placement.is_chief else " (process 0 writes it)"))
    print(f"training on: {plan.placement.describe()}")
    if config.parent:
        print(f"starting from: {config.parent}")
    result = train(dataset, config, run.path, callbacks=[ConsoleProgress()], distributed=plan, mlflow=args.mlflow)
    if not plan.placement.is_chief:
        print(f"process {plan.placement.process_id} of {plan.placement.processes}: done")
        return 0
    print(f"best model ({describe_best_epoch(result.card.epoch)}): {result.model_path}")
    for split, metrics in result.card.metrics.items():
        print(f"  {split}: accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}")
    if args.register:
        from fer.model.registry import register_model

        print(f"registered: {register_model(result.model_path, args.register)}")
    return 0


def _predict(args) -> int:
    """Predict every image or video; a file that fails is reported and the rest still run (exit 1 if any failed)."""
    from fer.serve.detection import VIDEO_FILE_CONFIG, make_detector
    from fer.serve.prediction import Classifier, ImageResult, predict_file, prediction_json
    from fer.serve.video import is_video

    served = _serving_model(args.model)
    classifier = Classifier(served.model, served.card.classes)
    detector = make_detector(args.detector)
    clip_detector = make_detector(args.detector, VIDEO_FILE_CONFIG) if any(map(is_video, args.images)) else None
    entries, failed = [], False
    for name in args.images:
        if is_video(name):
            entry, ok = _predict_video(name, classifier, clip_detector, args.json)
            entries.append(entry)
            failed |= not ok
            continue
        try:
            data = Path(name).read_bytes()
        except OSError as error:
            result = ImageResult(name, error=f"cannot read the file ({error.strerror or error})")
        else:
            result = predict_file(name, data, classifier, detector, whole_image=args.whole_image)
        entries.append(prediction_json(result))
        failed |= bool(result.error)
        if not args.json:
            _print_image_result(result)
    if args.json:
        print(json.dumps(entries, indent=2))
    return 1 if failed else 0


def _print_image_result(result) -> None:
    if result.error:
        print(f"{result.name}: error: {result.error}", file=sys.stderr)
    elif not result.faces:
        print(f"{result.name}: no face found (try --whole-image)")
    for number, face in enumerate(result.faces, start=1):
        where = "whole image" if face.whole_image else f"face {number}"
        x, y, width, height = face.box
        print(f"{result.name}: {where} at x={x} y={y} {width}×{height}: {face.label} {face.confidence:.0%}")


def _predict_video(name: str, classifier, detector, as_json: bool) -> tuple[dict, bool]:
    """One video's JSON entry (or an entry with its error) and whether it was read; prints its summary unless JSON."""
    from fer.serve.video import VideoConfig, predict_video, summary_lines, video_json

    def progress(done: float, total: float) -> None:
        print(f"\r{name}: {done:.1f} of {total:.1f} s", end="", file=sys.stderr, flush=True)

    try:
        # No annotated clip: the command line has nowhere to put it.
        result = predict_video(name, classifier, detector, config=VideoConfig(clip=False),
                               progress=progress if sys.stderr.isatty() else None)
    except FerError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return {"file": name, "error": str(error), "frames": []}, False
    finally:
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr)
    if not as_json:
        print("\n".join(summary_lines(result)))
    return video_json(result), True


def _model_path(given: str | None) -> Path:
    """A model given as a path or a registered model's name; the default model when none is given."""
    from fer.model.registry import default_model_path, resolve_model

    if not given:
        return default_model_path()
    path = Path(given)
    if not path.exists() and path.suffix == "":
        try:
            return resolve_model(given).path  # A registered model's name, or run:<folder>.
        except FerError:
            pass
    return path


def _serving_model(given: str | None):
    """The model to predict with, on onnxruntime when it has an ONNX file (Keras otherwise, said once)."""
    from fer.serve.runtime import load_for_serving

    served = load_for_serving(_model_path(given))
    if served.note:
        print(f"note: {served.note}", file=sys.stderr)
    return served


def _export(args) -> int:
    from fer.model import export
    from fer.paths import SHIPPED_MODELS_DIR

    path = _model_path(args.model)
    if path.suffix != ".keras" or not path.exists():
        raise FerError(f"{path} is not a .keras model file; export takes a .keras file or a registered model's name")
    if path.resolve().parent == SHIPPED_MODELS_DIR.resolve():  # Exports are written beside the model.
        raise FerError(f"{path.stem} is a shipped model, and shipped models are read-only: its served export is "
                       f"already beside it in {SHIPPED_MODELS_DIR}. To export it anyway, copy {path.name} and its "
                       f"{path.stem}.json card to a folder of your own and export the copy")
    if args.format == "tflite":
        from fer.serve.tflite_runtime import TfliteModel

        for variant in export.TFLITE_VARIANTS:
            record = export.export_tflite(path, variant, runtime=TfliteModel)
            print(f"{record.file}: {record.bytes / 1e6:.1f} MB, validation accuracy {record.validation_accuracy:.4f} "
                  f"on {record.validation_faces:,} faces of {record.validation_source}")
        return 0
    if args.quantise:
        from fer.serve.runtime import OnnxModel

        record, measured = export.export_served_onnx(path, runtime=OnnxModel,
                                                     progress=lambda message: print(message, file=sys.stderr))
    else:
        record, measured = export.export_onnx(path), {}
    print(f"{record.file}: {record.bytes / 1e6:.1f} MB; matches Keras within {record.max_abs_difference:.1e} "
          f"(at most {export.PARITY_TOLERANCE:g}) on {record.parity_faces} faces of {record.parity_source}")
    if measured:
        print(export.variants_table(measured))
    return 0


def _evaluate(args) -> int:
    from fer.data.datasets import open_dataset
    from fer.evaluate.scoring import evaluate_split

    if args.batch_size < 1:
        raise FerError(f"--batch-size must be at least 1, got {args.batch_size}")
    model_path = _model_path(args.model)
    dataset = open_dataset(args.dataset)
    dataset.split(args.split)  # A clear error for a missing split before the model loads.
    served = _serving_model(model_path)
    model, card = served.model, served.card
    result = evaluate_split(model, card.classes, dataset, args.split, tta=args.tta, model_name=str(model_path),
                            batch_size=args.batch_size)
    if args.json:
        print(json.dumps(result.report(dataset.source), indent=2))
        return 0
    evaluation = result.evaluation
    print(f"model: {model_path}  ({card.preset or 'unknown preset'}; runs {served.file.name} on {served.runtime})")
    print(f"dataset: {dataset.source}  split '{args.split}': {evaluation.images:,} images"
          f"{'  with flip TTA' if args.tta else ''}, predicted in {result.seconds:.1f}s "
          f"({evaluation.images / max(result.seconds, 1e-9):,.0f} images/s)")
    for name, value in (("accuracy", evaluation.accuracy), ("balanced accuracy", evaluation.balanced_accuracy),
                        ("macro F1", evaluation.macro_f1), ("calibration error (ECE)", evaluation.ece)):
        print(f"{name:<25}{value:.4f}")
    width = max(len(name) for name in evaluation.classes) + 2
    print("\n" + "class".ljust(width) + "".join(h.rjust(11) for h in ("precision", "recall", "f1", "support")))
    for row in evaluation.per_class:
        print(row.name.ljust(width) + f"{row.precision:>11.4f}{row.recall:>11.4f}{row.f1:>11.4f}{row.support:>11,}")
    print("\nconfusion matrix (rows true, columns predicted):")
    column = max(width, 9)
    print(" " * width + "".join(name[:column - 1].rjust(column) for name in evaluation.classes))
    for name, counts in zip(evaluation.classes, evaluation.confusion):
        print(name.ljust(width) + "".join(f"{count:>{column},}" for count in counts))
    confusions = result.report()["top_confusions"][:5]
    if confusions:
        print("\ntop confusions:")
        for cell in confusions:
            print(f"  {cell['true']} → {cell['predicted']}: {cell['count']:,} ({cell['share']:.1%} of {cell['true']})")
    return 0


def _add_audit(commands) -> None:
    audit = commands.add_parser("audit", help="rank a split's images by how much the model doubts their label")
    audit.add_argument("--dataset", required=True, help="dataset folder, .zip or .csv, or 'demo'")
    audit.add_argument("--split", default="validation", help="split to audit (default: validation)")
    audit.add_argument("--model", help="a .keras model or a registered model's name (default: the shipped model, "
                       "else the newest in models/); it runs on onnxruntime when its ONNX export is there")
    audit.add_argument("--limit", type=int, help="show only the N most suspicious (default: 30; JSON: all)")
    audit.add_argument("--out-of-fold", type=int, metavar="K",
                       help="instead of the model, use probabilities of K small models each trained without "
                            "one K-th of the split (for auditing the split the model was trained on)")
    audit.add_argument("--json", action="store_true",
                       help="print JSON: a list, most suspicious first, of {file, given, suggested, score}")
    audit.set_defaults(command=_audit)


def _audit(args) -> int:
    from fer.data.datasets import open_dataset
    from fer.explain.audit import (OutOfFold, audit_split, estimate_out_of_fold_seconds, fitted_split,
                                   out_of_fold_probabilities, suspects_json)
    if args.limit is not None and args.limit < 1:
        raise FerError(f"--limit must be at least 1, got {args.limit}")
    dataset = open_dataset(args.dataset)
    split = dataset.split(args.split)  # A clear error for a missing split before anything slow.
    if args.out_of_fold is not None:
        config = OutOfFold(folds=args.out_of_fold)
        print(f"out-of-fold: {config.folds} {config.preset} models, {config.epochs} epochs each, about "
              f"{estimate_out_of_fold_seconds(len(split), config) / 60:.0f} min", file=sys.stderr)
        started = time.perf_counter()
        probabilities = out_of_fold_probabilities(dataset, args.split, config)
        audit = audit_split(None, dataset.classes, dataset, args.split, probabilities=probabilities,
                            seconds_before=time.perf_counter() - started)
        model_name, card = f"{config.folds}-fold", None
    else:
        served = _serving_model(args.model)
        card = served.card
        audit, model_name = audit_split(served.model, card.classes, dataset, args.split), str(_model_path(args.model))
    if args.json:
        print(json.dumps(suspects_json(audit.suspects[:args.limit]), indent=2))
        return 0
    print(f"model: {model_name}  dataset: {dataset.source}  split '{args.split}': {len(split):,} images, "
          f"audited in {duration(audit.seconds)}")
    if card is not None and fitted_split(card, args.split):
        print(f"note: the model was trained on '{args.split}', so it has fitted these labels and doubts few of "
              "them; --out-of-fold K gives probabilities from models that never saw each image")
    suspects = audit.suspects[:args.limit or 30]
    width = max(len(s.file) for s in suspects) + 2
    print("file".ljust(width) + "given".ljust(10) + "suggested".ljust(11) + "score")
    for suspect in suspects:
        print(f"{suspect.file.ljust(width)}{suspect.given.ljust(10)}{suspect.suggested.ljust(11)}{suspect.score:.4f}")
    return 0
