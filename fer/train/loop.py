"""Train a preset on a dataset into a run directory (fer.train.run_dir), resumable, inside a tf.distribute strategy.

train() writes the run's config, per-epoch metrics, live progress, state and checkpoints through
RunDir, and the best model with its card through fer.model.files; a STOP file ends it gracefully.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from fer.data.datasets import Dataset
from fer.errors import FerError
from fer.model.cards import ModelCard, read_card, write_card
from fer.model.files import load_model, save_model
from fer.model.presets import build_model
from fer.train import distill, finetune
from fer.train.config import TrainConfig
from fer.train.hardware import training_device
from fer.train.run_dir import RunDir


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
    run = RunDir(run_dir)
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    run.clear_stop()
    if config.parent:
        dataset = finetune.prepared_dataset(dataset, config)
    train_split = dataset.split(config.train_split)
    validation = dataset.splits.get(config.validation_split)
    if len(train_split) == 0:
        raise FerError(f"the '{config.train_split}' split has no images to train on")
    keras.utils.set_random_seed(config.seed)

    state = run.read_state()
    resuming = resume and run.checkpoint.exists() and state.get("epochs_done", 0) > 0
    if resuming:
        previous = TrainConfig.from_dict(run.read_config().get("config", {}))
        if previous.preset != config.preset:
            raise FerError(f"{run.path} holds a '{previous.preset}' run; cannot resume it as '{config.preset}'")
        run.drop_epochs_after(state["epochs_done"])
    else:
        state = {"epochs_done": 0, "best_val_accuracy": None, "training_seconds": 0.0}
        run.clear_metrics()
    run.write_config(config.to_dict(), {
        "source": dataset.source, "fingerprint": dataset.fingerprint, "format": dataset.format,
        "classes": list(dataset.classes), "counts": dataset.counts()})

    if strategy is None and keras.backend.backend() == "tensorflow":
        strategy = default_strategy()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    steps_per_epoch = -(-len(train_split) // config.batch_size)
    with scope:
        if resuming:
            model = keras.models.load_model(run.checkpoint)
            if config.schedule == "cosine":
                # The checkpoint's schedule was sized for the old epoch count; a resumed run with
                # more or fewer epochs anneals over the new one (the step counter carries on).
                model.optimizer.learning_rate = _learning_rate(config, steps_per_epoch)
        elif config.parent:
            model = finetune.starting_model(config, dataset.classes, dataset)
        else:
            model = (distill.distillation_model(config, dataset.classes) if config.teacher else
                     build_model(config.preset, num_classes=len(dataset.classes),
                                 augmentation=config.augmentation, dtype_policy=config.dtype_policy))
            _compile(model, config, steps_per_epoch)

    train_data = dataset.batches(config.train_split, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation_data = (
        dataset.batches(config.validation_split, batch_size=256) if validation is not None and len(validation) else None
    )
    monitor = "val_accuracy" if validation_data is not None else "accuracy"
    recorder = RunRecorder(run, state, dataset, config, monitor, len(train_split))
    all_callbacks = [recorder, StopFlag(run)]
    if config.schedule == "plateau":
        all_callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss" if validation_data else "loss",
                                                               factor=0.5, patience=3, min_lr=1e-6))
    if config.early_stopping_patience:
        all_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                                           mode="max"))
    all_callbacks += list(callbacks)

    _update_state(run, state, status="running", pid=os.getpid())
    # A run from scratch is one phase; fine-tuning may train the new head alone first (fer.train.finetune).
    phases = finetune.phases(config, dataset.classes) if config.parent else [None]
    try:
        for phase in phases:
            if phase is not None:
                if state["epochs_done"] >= phase.last_epoch:
                    continue
                # Trainable layers change what compile builds, so each phase compiles anew.
                with strategy.scope() if strategy is not None else contextlib.nullcontext():
                    finetune.set_backbone_trainable(model, phase.backbone_trainable)
                    _compile(model, dataclasses.replace(config, learning_rate=phase.learning_rate), steps_per_epoch)
            model.fit(
                train_data,
                validation_data=validation_data,
                epochs=phase.last_epoch if phase is not None else config.epochs,
                initial_epoch=state["epochs_done"],
                class_weight=class_weights(train_split.labels, len(dataset.classes)) if config.class_weights else None,
                callbacks=all_callbacks,
                shuffle=False,  # The batches already shuffle, each epoch.
                verbose=0,
            )
            if run.stop_requested:
                break
    except BaseException as error:
        _update_state(run, state, status="failed", error=f"{type(error).__name__}: {error}")
        raise
    stopped = run.stop_requested
    best_path = run.best_model
    if not best_path.exists():  # Stopped before the first epoch ended: keep what there is.
        recorder.save_best(model, {})
    card = read_card(best_path)
    if evaluate_splits and not stopped:
        card = finalize_card(best_path, dataset)
    _update_state(run, state, status="stopped" if stopped else "finished")
    return TrainResult(run.path, best_path, card, run.read_metrics(), stopped)


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
        loss=distill.label_term(config) if config.teacher else
        keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
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
    """Stops training after the current batch once the run's STOP file exists (a graceful stop)."""

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch, logs=None):
        if self.run.stop_requested:
            self.model.stop_training = True


class RunRecorder(keras.callbacks.Callback):
    """Writes a run's metrics, progress, state, checkpoint and best model as epochs go by."""

    def __init__(self, run: RunDir, state: dict, dataset: Dataset, config: TrainConfig,
                 monitor: str, train_images: int):
        super().__init__()
        self.run, self.state, self.dataset, self.config = run, state, dataset, config
        self.monitor, self.train_images = monitor, train_images
        self.last_progress = 0.0
        self.device = training_device(keras.backend.backend())
        self.lineage = finetune.card_lineage(config, dataset.classes) if config.parent else None

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
            self.run.write_progress({
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
        self.run.append_metrics(record)
        self.state["training_seconds"] = self.state.get("training_seconds", 0.0) + (now - self.epoch_start)
        if not partial:
            self.state["epochs_done"] = epoch + 1
        score = record.get(self.monitor)
        best = self.state.get("best_val_accuracy")
        if score is not None and (best is None or score > best):
            self.state["best_val_accuracy"] = score
            self.state["best_epoch"] = epoch + 1
            self.save_best(self.model, record)
        self.run.save_checkpoint(self.model)
        _update_state(self.run, self.state)

    def save_best(self, model: keras.Model, record: dict) -> None:
        """Save `model` (without optimizer state) as best.keras with its model card."""
        metrics = {"train": {"accuracy": record.get("accuracy"), "loss": record.get("loss")}}
        if "val_accuracy" in record:
            metrics[self.config.validation_split] = {"accuracy": record["val_accuracy"],
                                                     "loss": record.get("val_loss")}
        student = distill.student_of(model, self.config) if self.config.teacher else export_copy(model)
        save_model(student, self.run.best_model, ModelCard(
            name=self.run.name,
            preset=self.config.preset,
            classes=tuple(self.dataset.classes),
            hyperparameters=self.config.to_dict(),
            dataset={"source": self.dataset.source, "fingerprint": self.dataset.fingerprint},
            epoch=record.get("epoch"),
            metrics=metrics,
            training_seconds=round(self.state.get("training_seconds", 0.0), 1),
            training_backend=keras.backend.backend(),
            training_device=self.device,
            distillation=distill.card_distillation(self.config),
            lineage=self.lineage,
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


def _update_state(run: RunDir, state: dict, **changes) -> None:
    """Change the training process's own copy of the state and write it whole."""
    state.update(changes)
    run.write_state(state)


def _float(value):
    try:
        return round(float(value), 5)
    except (TypeError, ValueError):
        return value
