"""Train a preset on a dataset into a run directory (fer.train.run_dir), resumable, inside a tf.distribute strategy.

train() writes the run's config, per-epoch metrics, live progress, state and checkpoints through
RunDir, and the best model with its card through fer.model.files; a STOP file ends it gracefully.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from fer.data.datasets import Dataset
from fer.errors import FerError
from fer.model.cards import ModelCard, card_path, read_card, write_card
from fer.model.files import load_model, save_model
from fer.model.presets import build_model
from fer.train import distill, distribution, finetune, tracking
from fer.train.config import TrainConfig
from fer.train.hardware import training_device
from fer.train.run_dir import DatasetFacts, ProgressRecord, RunConfig, RunDir, RunState


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    model_path: Path  # The best model (by validation accuracy), with its card beside it.
    card: ModelCard
    history: list[dict] = field(default_factory=list)
    stopped: bool = False


def train(
    dataset: Dataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    strategy=None,
    resume: bool = True,
    evaluate_splits: bool = True,
    devices: int | None = None,
    distributed: distribution.Distribution | None = None,
    mlflow: bool = False,
) -> TrainResult:
    """Train `config` on `dataset`, checkpointing each epoch into `run_dir`.

    If `run_dir` already holds a checkpoint of the same preset and `resume` is true, training
    continues from it. `callbacks` are added to the Keras callbacks (e.g. to stream metrics).
    The run trains on `devices` of this process's devices (None: all) as fer.train.distribution.prepare
    places it, or as `distributed` (already prepared) or inside `strategy` says; in a several-host run
    only process 0 writes `run_dir`.
    `mlflow` logs the run to MLflow's local store when MLFLOW_TRACKING_URI is not set (fer.train.tracking).
    """
    plan = distributed or (placed(strategy) if strategy is not None else distribution.prepare(devices))
    if not plan.placement.is_chief:
        with tempfile.TemporaryDirectory(prefix="fer-worker-") as scratch:
            distribution.worker_copy(run_dir, scratch)
            return _train(dataset, config, scratch, plan, list(callbacks), resume, evaluate_splits=False,
                          mlflow=False)
    return _train(dataset, config, run_dir, plan, list(callbacks), resume, evaluate_splits, mlflow)


def placed(strategy) -> distribution.Distribution:
    """A Distribution for a tf.distribute `strategy` chosen by the caller."""
    replicas = strategy.num_replicas_in_sync
    return distribution.Distribution(distribution.Placement(
        "tensorflow", type(strategy).__name__ if replicas > 1 else "one device", replicas), strategy)


def _train(dataset: Dataset, config: TrainConfig, run_dir, plan: distribution.Distribution, callbacks: list,
           resume: bool, evaluate_splits: bool, mlflow: bool) -> TrainResult:
    run = RunDir(run_dir)
    if config.parent:
        dataset = finetune.prepared_dataset(dataset, config)  # Enough faces, and a validation split.
    train_images = len(_train_split(dataset, config))
    keras.utils.set_random_seed(config.seed)
    state = prepare_run(run, dataset, config, resume)
    steps_per_epoch = -(-train_images // config.batch_size)
    with plan.scope():
        model = (restore_model(run, config, steps_per_epoch) if state.epochs_done else
                 new_model(dataset, config, steps_per_epoch))
    train_data, validation_data = training_batches(dataset, config)
    train_data = plan.batches(train_data)
    validation_data = plan.batches(validation_data) if validation_data is not None else None
    monitor = "val_accuracy" if validation_data is not None else "accuracy"
    recorder = RunRecorder(run, state, dataset, config, monitor, train_images, plan.placement)
    if config.parent and validation_data is not None and not state.epochs_done:
        with plan.scope():
            recorder.keep_start(model, finetune.validation_hits(model, dataset, config))
    fit_callbacks = [recorder, StopFlag(run), *schedule_callbacks(config, monitor), *callbacks]
    mlflow_logger = None
    if plan.placement.is_chief:
        split = dataset.split(config.train_split)
        fit_callbacks += tracking.tensorboard_callbacks(run.path, split.images, split.labels, tuple(dataset.classes))
        mlflow_logger = _mlflow_logger(run, config, plan.placement, mlflow)
        fit_callbacks += [mlflow_logger] if mlflow_logger else []
    try:
        with plan.scope():  # Keras's JAX distribution places each batch while fit runs.
            fit(model, recorder, train_data, validation_data, fit_callbacks)
    except BaseException as error:
        lost = distribution.peer_lost(plan.placement, error, recorder.state.epochs_done)
        if lost:
            recorder.update_state(error=str(lost))
        if mlflow_logger:
            mlflow_logger.finish(None, None, "FAILED")
        if lost:
            raise lost from error
        raise
    result = finish(run, model, recorder, dataset, evaluate_splits)
    if mlflow_logger:
        mlflow_logger.finish(result.model_path, card_path(result.model_path),
                             "KILLED" if result.stopped else "FINISHED")
    return result


def _train_split(dataset: Dataset, config: TrainConfig):
    train_split = dataset.split(config.train_split)
    if len(train_split) == 0:
        raise FerError(f"the '{config.train_split}' split has no images to train on")
    return train_split


def prepare_run(run: RunDir, dataset: Dataset, config: TrainConfig, resume: bool) -> RunState:
    """Make `run` ready to train `config`: the state to go on from (epochs_done 0 for a fresh start), with
    config.json written and metrics the checkpoint does not hold dropped."""
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    run.clear_stop()
    state = run.read_state()
    if resume and run.checkpoint.exists() and state.epochs_done > 0:
        previous = run.read_config()
        preset = previous.config.get("preset") if previous else None
        if preset != config.preset:
            raise FerError(f"{run.path} holds a '{preset}' run; cannot resume it as '{config.preset}'")
        run.drop_epochs_after(state.epochs_done)
    else:
        state = RunState()
        run.clear_metrics()
    run.write_config(RunConfig(config.to_dict(), DatasetFacts(
        source=dataset.source, fingerprint=dataset.fingerprint, format=dataset.format,
        classes=tuple(dataset.classes), counts=dataset.counts())))
    return state


def new_model(dataset: Dataset, config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """The preset (or a distillation wrapper around it), compiled with `config`'s optimizer and loss; or the
    parent model to fine-tune (fer.train.finetune), which each of its phases compiles."""
    if config.parent:
        return finetune.starting_model(config, dataset.classes, dataset)
    model = (distill.distillation_model(config, dataset.classes) if config.teacher else
             build_model(config.preset, num_classes=len(dataset.classes), augmentation=config.augmentation,
                         dtype_policy=config.dtype_policy))
    _compile(model, config, steps_per_epoch)
    return model


def restore_model(run: RunDir, config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """The run's checkpoint, with its optimizer state."""
    model = keras.models.load_model(run.checkpoint)
    if config.schedule == "cosine":
        # The checkpoint's schedule was sized for the old epoch count; a resumed run with
        # more or fewer epochs anneals over the new one (the step counter carries on).
        model.optimizer.learning_rate = _learning_rate(config, steps_per_epoch)
    return model


def training_batches(dataset: Dataset, config: TrainConfig) -> tuple:
    """(train batches, validation batches or None when there is no validation split)."""
    train_data = dataset.batches(config.train_split, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation = dataset.splits.get(config.validation_split)
    if validation is None or not len(validation):
        return train_data, None
    return train_data, dataset.batches(config.validation_split, batch_size=256)


def schedule_callbacks(config: TrainConfig, monitor: str) -> list[keras.callbacks.Callback]:
    """The learning-rate and early-stopping callbacks `config` asks for."""
    chosen = []
    if config.schedule == "plateau":
        chosen.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor.replace("accuracy", "loss"),
                                                        factor=0.5, patience=3, min_lr=1e-6))
    if config.early_stopping_patience:
        chosen.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                                    mode="max"))
    return chosen


def fit(model: keras.Model, recorder: RunRecorder, train_data, validation_data, callbacks: list) -> None:
    """model.fit from the recorder's state on; a failure is recorded in state.json before it is raised.

    A run from scratch is one phase; fine-tuning may train a new head alone first (fer.train.finetune.phases),
    and each phase compiles anew: which layers train changes what compile builds."""
    config = recorder.config
    split = recorder.dataset.split(config.train_split)
    recorder.update_state(status="running", pid=os.getpid(), placement=recorder.placement.to_dict())
    phases = finetune.phases(config, recorder.dataset.classes) if config.parent else [None]
    try:
        for phase in phases:
            if phase is not None:
                if recorder.state.epochs_done >= phase.last_epoch:
                    continue
                finetune.set_backbone_trainable(model, phase.backbone_trainable)
                steps = -(-len(split) // config.batch_size)
                _compile(model, dataclasses.replace(config, learning_rate=phase.learning_rate), steps)
            model.fit(
                train_data,
                validation_data=validation_data,
                epochs=phase.last_epoch if phase is not None else config.epochs,
                initial_epoch=recorder.state.epochs_done,
                class_weight=class_weights(split.labels, len(recorder.dataset.classes)) if config.class_weights
                else None,
                callbacks=callbacks,
                shuffle=False,  # The batches already shuffle, each epoch.
                verbose=0,
            )
            if recorder.run.stop_requested:
                break
    except BaseException as error:
        recorder.update_state(status="failed", error=f"{type(error).__name__}: {error}")
        raise


def finish(run: RunDir, model: keras.Model, recorder: RunRecorder, dataset: Dataset,
           evaluate_splits: bool) -> TrainResult:
    """After fit: the best model's card (scored on every split unless stopped) and the final state."""
    stopped = run.stop_requested
    if not run.best_model.exists():  # Stopped before the first epoch ended: keep what there is.
        recorder.save_best(model, {})
    card = read_card(run.best_model)
    if evaluate_splits and not stopped:
        card = finalize_card(run.best_model, dataset)
    recorder.update_state(status="stopped" if stopped else "finished")
    return TrainResult(run.path, run.best_model, card, run.read_metrics(), stopped)


def _mlflow_logger(run: RunDir, config: TrainConfig, placement, switch: bool):
    """An MlflowLogger when MLflow is asked for (tracking.mlflow_uri) and installed; a note and None otherwise."""
    uri = tracking.mlflow_uri(switch)
    if uri is None:
        return None
    if not tracking.mlflow_installed():
        print("note: MLflow is not installed (pip install -r requirements-tracking.txt), so this run is not "
              "logged there", file=sys.stderr)
        return None
    return tracking.MlflowLogger(uri, run.name, {**config.to_dict(), "placement": placement.to_dict()})


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

    def __init__(self, run: RunDir, state: RunState, dataset: Dataset, config: TrainConfig,
                 monitor: str, train_images: int, placement: distribution.Placement | None = None):
        super().__init__()
        self.placement = placement or distribution.Placement(keras.backend.backend(), "one device", 1)
        self.run, self.state, self.dataset, self.config = run, state, dataset, config
        self.monitor, self.train_images = monitor, train_images
        self.last_progress = 0.0
        self.device = training_device(keras.backend.backend())
        self.lineage = finetune.card_lineage(config, dataset.classes) if config.parent else None
        # A fine-tuning run's start, face by face (keep_start sets it; a resumed run reads it back once).
        self.start_hits = run.read_start_hits() if config.parent else None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.train_end = time.perf_counter()
        self.batches_done = 0
        self.first_batch_end = None

    def on_train_batch_end(self, batch, logs=None):
        self.train_end = time.perf_counter()
        self.batches_done = batch + 1
        if self.first_batch_end is None:
            self.first_batch_end = self.train_end
        if self.train_end - self.last_progress > 1.0:
            self.last_progress = self.train_end
            self.run.write_progress(ProgressRecord(
                epoch=self.state.next_epoch, epochs=self.config.epochs,
                batch=self.batches_done, batches=self.batches_per_epoch,
                images_per_second=self.live_speed(),
                loss=_float(logs.get("loss")), accuracy=_float(logs.get("accuracy")), time=time.time(),
            ))

    def live_speed(self) -> float | None:
        """Images a second since the epoch's first batch ended; None until a second batch is done.

        The first batch carries start-up (tracing, compiling, the input pipeline filling): counted in,
        it made a first ETA forty times too long.
        """
        seconds = self.train_end - self.first_batch_end if self.first_batch_end is not None else 0.0
        images = min(self.batches_done * self.config.batch_size, self.train_images) - self.config.batch_size
        return images / seconds if seconds > 0 and images > 0 else None

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
        self.state = self.state.replace(training_seconds=self.state.training_seconds + (now - self.epoch_start),
                                        epochs_done=self.state.epochs_done if partial else epoch + 1)
        score, best = record.get(self.monitor), self.state.best_val_accuracy
        if score is not None and (best is None or score > best) and self.beats_start():
            self.state = self.state.replace(best_val_accuracy=score, best_epoch=epoch + 1)
            self.save_best(self.model, record)
        self.run.save_checkpoint(self.model)
        self.update_state()

    def keep_start(self, model: keras.Model, hits: np.ndarray) -> None:
        """Save the starting model as the best so far (epoch 0), with which validation faces it reads right:
        an epoch replaces it only when it reads them better by more than chance (beats_start)."""
        self.run.write_start_hits(hits)
        self.start_hits = [bool(hit) for hit in hits]
        val_accuracy = _float(np.mean(hits))  # Rounded as each epoch's score is, so a tie stays a tie.
        self.save_best(model, {"epoch": 0, "val_accuracy": val_accuracy})
        self.update_state(best_val_accuracy=val_accuracy, best_epoch=0)

    def beats_start(self) -> bool:
        """Whether the model as it stands may replace a fine-tuning run's starting model: always for a run
        without one on record, else when finetune.reads_better says so on the validation faces."""
        if self.start_hits is None:
            return True
        hits = finetune.validation_hits(self.model, self.dataset, self.config)
        # A resumed run whose validation faces are not the ones its start read cannot be compared face by face.
        return len(hits) != len(self.start_hits) or finetune.reads_better(self.start_hits, hits)

    def update_state(self, **changes) -> None:
        """Change the training process's own copy of the state and write it whole."""
        self.state = self.state.replace(**changes)
        self.run.write_state(self.state)

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
            training_seconds=round(self.state.training_seconds, 1),
            training_backend=keras.backend.backend(),
            training_device=self.device,
            placement=self.placement.to_dict(),
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


def _float(value):
    try:
        return round(float(value), 5)
    except (TypeError, ValueError):
        return value
