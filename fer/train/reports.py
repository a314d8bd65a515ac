"""Runs in words and tables: the history table, one-line epoch summaries, durations.

Pure functions of what fer.train.jobs reads from run directories (RunSummary, metrics records), so the
Train page and the tests use them without a job or Streamlit.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fer.train.parents import parent_name

if TYPE_CHECKING:
    from fer.model.augmentation import Augmentation
    from fer.train.jobs import RunSummary

PERCENT_COLUMNS = ("best val acc", "final train acc", "final val acc")  # In percent (0–100), to show in one format.


def runs_table(runs: list[RunSummary]):
    """A pandas DataFrame comparing runs: status, best and final metrics (accuracies in percent), time and config.

    An unknown value (a running run's final metrics, a run without a registered model) is None, never text.
    """
    import pandas as pd

    return pd.DataFrame([_row(run) for run in runs])


def _row(run: RunSummary) -> dict:
    config, final = run.config, run.final
    return {
        "run": run.name,
        "status": f"queued (#{run.queue_position})" if run.queue_position else run.status,
        "preset": config.preset if config else None,
        "started from": parent_name(config.parent) if config else None,
        "epochs": f"{run.epochs_done}/{run.epochs}" if run.epochs else str(run.epochs_done),
        "best val acc": _percent(run.best_accuracy),
        "best epoch": run.best_epoch,  # 0: a fine-tuning run kept its starting model.
        "final train acc": _percent(final.get("accuracy")),
        "final val acc": _percent(final.get("val_accuracy")),
        "final val loss": final.get("val_loss"),
        "images/s": final.get("images_per_second"),
        "train time": format_duration(run.training_seconds),
        "learning rate": config.learning_rate if config else None,
        "schedule": config.schedule if config else None,
        "optimizer": config.optimizer if config else None,
        "batch": config.batch_size if config else None,
        "augmentation": describe_augmentation(config.augmentation) if config else None,
        "class weights": config.class_weights if config else None,
        "seed": config.seed if config else None,
        "dataset": Path(run.dataset).name if run.dataset else None,
        "model": Path(run.registered_model).stem if run.registered_model else None,
        "started": datetime.datetime.fromtimestamp(run.started).replace(microsecond=0),
    }


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def describe_epoch(record: dict, epochs: int | None = None) -> str:
    """One line for a metrics record: 'Epoch 2/3: train loss 1.9691, accuracy 16.4% · validation …'."""
    head = f"Epoch {record.get('epoch')}" + (f"/{epochs}" if epochs else "")
    head += " (stopped part-way):" if record.get("partial") else ":"
    parts = []
    for prefix, name in (("", "train"), ("val_", "validation")):
        loss, accuracy = record.get(f"{prefix}loss"), record.get(f"{prefix}accuracy")
        shown = ([f"loss {loss:.4f}"] if loss is not None else []) + (
            [f"accuracy {accuracy:.1%}"] if accuracy is not None else [])
        if shown:
            parts.append(f"{name} " + ", ".join(shown))
    if record.get("images_per_second"):
        parts.append(f"{record['images_per_second']:,.0f} images/s")
    return f"{head} " + " · ".join(parts)


def describe_best_epoch(epoch: int | None) -> str:
    """Where a run's best model comes from: 'at epoch 4', or its starting model when no epoch beat the
    parent it was fine-tuned from (epoch 0)."""
    if epoch == 0:
        return "from its starting model: no epoch read the validation faces better by more than chance"
    return f"at epoch {epoch}" if epoch is not None else "at an unknown epoch"


def describe_augmentation(augmentation: Augmentation | None) -> str:
    """A short human summary of a run's augmentation; 'preset' when the preset's own is used."""
    if augmentation is None:
        return "preset"
    parts = [
        "flip" if augmentation.horizontal_flip else "",
        f"rot ±{augmentation.rotation_degrees:g}°" if augmentation.rotation_degrees else "",
        f"zoom {augmentation.zoom:g}" if augmentation.zoom else "",
        f"shift {augmentation.shift_pixels}px" if augmentation.shift_pixels else "",
        f"crop {augmentation.crop_size}" if augmentation.crop_size else "",
        f"contrast {augmentation.contrast:g}" if augmentation.contrast else "",
    ]
    return ", ".join(part for part in parts if part) or "off"


def format_duration(seconds: float | None) -> str:
    """'1h 02m', '3m 05s', '42s'; '–' when unknown."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"
