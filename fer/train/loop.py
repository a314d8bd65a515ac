"""Train a preset on a dataset into a run directory, resumable, inside a tf.distribute strategy.

A run directory holds everything about one training run, so any process (the CLI, the Train
page, a later session) can follow or resume it:

    config.json         the TrainConfig and the dataset it ran on
    metrics.jsonl       one line per epoch (loss, accuracy, val_*, lr, seconds, images/s)
    progress.json       the current epoch and batch, rewritten every second or so
    state.json          status, epochs done, best validation accuracy, training seconds
    checkpoints/last.keras   model + optimizer after the latest epoch (resume starts here)
    best.keras / best.json   the best model by validation accuracy, with its model card
    STOP                created by whoever wants the run to stop after the current batch
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from fer.data.datasets import Dataset
from fer.errors import FerError
from fer.train.hardware import training_device
from fer.model.presets import PRESETS, build_model
from fer.model.augmentation import Augmentation
from fer.model.cards import ModelCard, read_card, write_card
from fer.model.files import load_model, save_model


DTYPE_POLICIES = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the seed recipe from DEVELOPERS.md."""

    preset: str = "seed"
    epochs: int = 30
    batch_size: int = 64  # Barely changes CPU speed; 64 is a common FER2013 choice.
    learning_rate: float = 1e-3  # Adam 1e-3: the seed recipe.
    optimizer: str = "adam"  # "adam", "adamw" or "sgd" (Nesterov momentum 0.9).
    schedule: str = "constant"  # "constant", "cosine" (per step, with warmup) or "plateau".
    warmup_epochs: int = 0
    weight_decay: float = 0.0  # Decoupled weight decay for adamw / sgd.
    label_smoothing: float = 0.0
    class_weights: bool = False  # Weight the loss by inverse class frequency.
    early_stopping_patience: int = 0  # Epochs without val_accuracy gain before stopping; 0 = off.
    seed: int = 0
    augmentation: Augmentation | None = None  # None: the preset's own augmentation.
    dtype_policy: str = "float32"  # "mixed_bfloat16" is faster only on CPUs with bf16 units.
    train_split: str = "train"
    validation_split: str = "validation"

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise FerError(f"unknown preset '{self.preset}'; choose one of: {', '.join(PRESETS)}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise FerError(f"unknown optimizer '{self.optimizer}'; choose adam, adamw or sgd")
        if self.schedule not in ("constant", "cosine", "plateau"):
            raise FerError(f"unknown schedule '{self.schedule}'; choose constant, cosine or plateau")
        if self.dtype_policy not in DTYPE_POLICIES:
            raise FerError(f"unknown dtype policy '{self.dtype_policy}'; choose {' or '.join(DTYPE_POLICIES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise FerError("epochs and batch size must be at least 1 and the learning rate above 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        if values.get("augmentation") is not None:
            values["augmentation"] = Augmentation(**values["augmentation"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    model_path: Path  # The best model (by validation accuracy), with its card beside it.
    card: ModelCard
    history: list[dict] = field(default_factory=list)
    stopped: bool = False


def default_strategy():
    """TensorFlow's engine for the machine at hand: MultiWorkerMirrored from TF_CONFIG,
    Mirrored across several GPUs, else the default single-device strategy."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def train(
    dataset: Dataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    strategy=None,
    resume: bool = True,
    evaluate_splits: bool = True,
) -> TrainResult:
    """Train `config` on `dataset`, checkpointing each epoch into `run_dir`.

    If `run_dir` already holds a checkpoint of the same preset and `resume` is true, training
    continues from it. `callbacks` are added to the Keras callbacks (e.g. to stream metrics).
    Under the TensorFlow backend the model is built inside `strategy` (default_strategy()).
    """
    run_dir = Path(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "STOP").unlink(missing_ok=True)
    train_split = dataset.split(config.train_split)
    validation = dataset.splits.get(config.validation_split)
    if len(train_split) == 0:
        raise FerError(f"the '{config.train_split}' split has no images to train on")
    keras.utils.set_random_seed(config.seed)

    state = _read_json(run_dir / "state.json")
    checkpoint = run_dir / "checkpoints" / "last.keras"
    resuming = resume and checkpoint.exists() and state.get("epochs_done", 0) > 0
    if resuming:
        previous = TrainConfig.from_dict(_read_json(run_dir / "config.json").get("config", {}))
        if previous.preset != config.preset:
            raise FerError(f"{run_dir} holds a '{previous.preset}' run; cannot resume it as '{config.preset}'")
        _drop_epochs_after(run_dir / "metrics.jsonl", state["epochs_done"])
    else:
        state = {"epochs_done": 0, "best_val_accuracy": None, "training_seconds": 0.0}
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    _write_json(run_dir / "config.json", {
        "config": config.to_dict(),
        "dataset": {"source": dataset.source, "fingerprint": dataset.fingerprint,
                    "format": dataset.format, "classes": list(dataset.classes), "counts": dataset.counts()},
    })

    if strategy is None and keras.backend.backend() == "tensorflow":
        strategy = default_strategy()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    steps_per_epoch = -(-len(train_split) // config.batch_size)
    with scope:
        if resuming:
            model = keras.models.load_model(checkpoint)
            if config.schedule == "cosine":
                # The checkpoint's schedule was sized for the old epoch count; a resumed run with
                # more or fewer epochs anneals over the new one (the step counter carries on).
                model.optimizer.learning_rate = _learning_rate(config, steps_per_epoch)
        else:
            model = build_model(config.preset, num_classes=len(dataset.classes),
                                augmentation=config.augmentation, dtype_policy=config.dtype_policy)
            _compile(model, config, steps_per_epoch)

    train_data = dataset.batches(config.train_split, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation_data = (
        dataset.batches(config.validation_split, batch_size=256) if validation is not None and len(validation) else None
    )
    monitor = "val_accuracy" if validation_data is not None else "accuracy"
    recorder = RunRecorder(run_dir, state, dataset, config, monitor, len(train_split))
    all_callbacks = [recorder, StopFlag(run_dir / "STOP")]
    if config.schedule == "plateau":
        all_callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss" if validation_data else "loss",
                                                               factor=0.5, patience=3, min_lr=1e-6))
    if config.early_stopping_patience:
        all_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                                           mode="max"))
    all_callbacks += list(callbacks)

    _update_state(run_dir, state, status="running", pid=os.getpid())
    try:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            initial_epoch=state["epochs_done"],
            class_weight=class_weights(train_split.labels, len(dataset.classes)) if config.class_weights else None,
            callbacks=all_callbacks,
            shuffle=False,  # The batches already shuffle, each epoch.
            verbose=0,
        )
    except BaseException as error:
        _update_state(run_dir, state, status="failed", error=f"{type(error).__name__}: {error}")
        raise
    stopped = (run_dir / "STOP").exists()
    best_path = run_dir / "best.keras"
    if not best_path.exists():  # Stopped before the first epoch ended: keep what there is.
        recorder.save_best(model, {})
    card = read_card(best_path)
    if evaluate_splits and not stopped:
        card = finalize_card(best_path, dataset)
    _update_state(run_dir, state, status="stopped" if stopped else "finished")
    return TrainResult(run_dir, best_path, card, read_metrics(run_dir), stopped)


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.schedule != "cosine":
        return config.learning_rate
    warmup = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup else config.learning_rate,
        decay_steps=max(config.epochs * steps_per_epoch - warmup, 1),
        alpha=0.01,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def _compile(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    learning_rate = _learning_rate(config, steps_per_epoch)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True,
                                         weight_decay=config.weight_decay or None)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay or 1e-4)
    else:
        optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency weights n / (k · count), as scikit-learn's 'balanced'; absent classes get 0."""
    counts = np.bincount(labels, minlength=num_classes)
    total = counts.sum()
    return {c: float(total / (num_classes * counts[c])) if counts[c] else 0.0 for c in range(num_classes)}


def finalize_card(model_path: Path, dataset: Dataset) -> ModelCard:
    """Evaluate the saved model on every split of `dataset` and write the metrics into its card."""
    model, card = load_model(model_path)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    metrics = {}
    for name in dataset.splits:
        if len(dataset.splits[name]) == 0:
            continue
        loss, accuracy = model.evaluate(dataset.batches(name, batch_size=256), verbose=0)
        metrics[name] = {"accuracy": round(float(accuracy), 4), "loss": round(float(loss), 4),
                         "images": len(dataset.splits[name])}
    card = card.replace(metrics=metrics)
    write_card(model_path, card)
    return card


# --- Callbacks ---------------------------------------------------------------------------------


class StopFlag(keras.callbacks.Callback):
    """Stops training after the current batch once `flag` exists (a graceful stop)."""

    def __init__(self, flag: Path):
        super().__init__()
        self.flag = flag

    def on_train_batch_end(self, batch, logs=None):
        if self.flag.exists():
            self.model.stop_training = True


class RunRecorder(keras.callbacks.Callback):
    """Writes metrics.jsonl, progress.json, state.json and the checkpoints of a run directory."""

    def __init__(self, run_dir: Path, state: dict, dataset: Dataset, config: TrainConfig,
                 monitor: str, train_images: int):
        super().__init__()
        self.run_dir, self.state, self.dataset, self.config = run_dir, state, dataset, config
        self.monitor, self.train_images = monitor, train_images
        self.last_progress = 0.0
        self.device = training_device(keras.backend.backend())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.train_end = time.perf_counter()
        self.batches_done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.train_end = time.perf_counter()
        self.batches_done = batch + 1
        if self.train_end - self.last_progress > 1.0:
            self.last_progress = self.train_end
            seconds = self.train_end - self.epoch_start
            images = min(self.batches_done * self.config.batch_size, self.train_images)
            _write_json(self.run_dir / "progress.json", {
                "epoch": epoch_number(self.state), "epochs": self.config.epochs,
                "batch": self.batches_done, "batches": self.batches_per_epoch,
                "images_per_second": images / seconds if seconds > 0 else None,
                "loss": _float(logs.get("loss")), "accuracy": _float(logs.get("accuracy")),
                "time": time.time(),
            })

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.train_images // self.config.batch_size)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        partial = self.batches_done < self.batches_per_epoch
        train_seconds = self.train_end - self.epoch_start
        images = min(self.batches_done * self.config.batch_size, self.train_images)
        record = {
            "epoch": epoch + 1,
            **{key: _float(value) for key, value in logs.items() if key != "learning_rate"},
            "lr": current_learning_rate(self.model),
            "seconds": round(now - self.epoch_start, 2),
            "images_per_second": round(images / train_seconds, 1) if train_seconds > 0 else None,
            "partial": partial,
            "time": time.time(),
        }
        with open(self.run_dir / "metrics.jsonl", "a") as metrics:
            metrics.write(json.dumps(record) + "\n")
        self.state["training_seconds"] = self.state.get("training_seconds", 0.0) + (now - self.epoch_start)
        if not partial:
            self.state["epochs_done"] = epoch + 1
        score = record.get(self.monitor)
        best = self.state.get("best_val_accuracy")
        if score is not None and (best is None or score > best):
            self.state["best_val_accuracy"] = score
            self.state["best_epoch"] = epoch + 1
            self.save_best(self.model, record)
        save_checkpoint(self.model, self.run_dir / "checkpoints" / "last.keras")
        _update_state(self.run_dir, self.state)

    def save_best(self, model: keras.Model, record: dict) -> None:
        """Save `model` (without optimizer state) as best.keras with its model card."""
        metrics = {"train": {"accuracy": record.get("accuracy"), "loss": record.get("loss")}}
        if "val_accuracy" in record:
            metrics[self.config.validation_split] = {"accuracy": record["val_accuracy"],
                                                     "loss": record.get("val_loss")}
        save_model(export_copy(model), self.run_dir / "best.keras", ModelCard(
            name=self.run_dir.name,
            preset=self.config.preset,
            classes=tuple(self.dataset.classes),
            hyperparameters=self.config.to_dict(),
            dataset={"source": self.dataset.source, "fingerprint": self.dataset.fingerprint},
            epoch=record.get("epoch"),
            metrics=metrics,
            training_seconds=round(self.state.get("training_seconds", 0.0), 1),
            training_backend=keras.backend.backend(),
            training_device=self.device,
        ))


class ConsoleProgress(keras.callbacks.Callback):
    """Prints a progress bar while an epoch runs (on a terminal) and one line per epoch."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.start = epoch, time.perf_counter()
        self.steps = self.params.get("steps") or 0

    def on_train_batch_end(self, batch, logs=None):
        if not self.stream.isatty() or not self.steps:
            return
        done = (batch + 1) / self.steps
        elapsed = time.perf_counter() - self.start
        bar = "█" * int(done * 30)
        self.stream.write(f"\repoch {self.epoch + 1}/{self.params['epochs']} |{bar:<30}| {batch + 1}/{self.steps}"
                          f"  loss {logs.get('loss', 0):.4f}  acc {logs.get('accuracy', 0):.4f}"
                          f"  eta {elapsed / done - elapsed:.0f}s ")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = [f"{key} {float(logs[key]):.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if key in logs]
        clear = "\r\033[K" if self.stream.isatty() else ""
        self.stream.write(f"{clear}epoch {epoch + 1}/{self.params['epochs']}  " + "  ".join(shown)
                          + f"  {time.perf_counter() - self.start:.0f}s\n")
        self.stream.flush()


def export_copy(model: keras.Model) -> keras.Model:
    """An uncompiled copy of `model` (same weights), so saving it stores no optimizer state."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def current_learning_rate(model: keras.Model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # An optimizer without a readable rate: not worth failing an epoch for.
        return None


def epoch_number(state: dict) -> int:
    return state.get("epochs_done", 0) + 1


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of a run; a re-run epoch (after a stop) replaces the earlier record."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    by_epoch: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # A line being written right now.
        by_epoch[record["epoch"]] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def save_checkpoint(model: keras.Model, path: Path) -> None:
    """Save `model` with its optimizer to `path` atomically: a crash mid-save leaves the previous checkpoint whole."""
    # One temporary name per checkpoint, so the next save overwrites what a killed one left behind.
    temporary = path.with_name(f".{path.stem}.tmp.keras")  # Keras insists on the .keras suffix.
    model.save(temporary)
    os.replace(temporary, path)


def _drop_epochs_after(path: Path, epochs_done: int) -> None:
    """Before resuming: drop complete records of epochs the checkpoint does not hold (a crash between writing
    an epoch's metrics and its checkpoint), and a line cut short by a crash, since those epochs run again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("partial") or record.get("epoch", 0) <= epochs_done:
            kept.append(line + "\n")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(kept))
    os.replace(temporary, path)


def read_state(run_dir: str | Path) -> dict:
    return _read_json(Path(run_dir) / "state.json")


def _update_state(run_dir: Path, state: dict, **changes) -> None:
    state.update(changes)
    _write_json(run_dir / "state.json", state)


def _float(value):
    try:
        return round(float(value), 5)
    except (TypeError, ValueError):
        return value


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    """Write atomically so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, default=str))
    os.replace(temporary, path)
