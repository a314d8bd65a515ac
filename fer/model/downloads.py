"""What a user can take away of a model (Home's "Download this model"): its files that exist, each with
its measured validation accuracy when the card records one."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from fer.model.cards import card_path, read_card
from fer.model.export import TFLITE_VARIANTS, export_file


class Download(NamedTuple):
    """One file of a model a user can download, with its measured validation accuracy when known."""

    label: str
    path: Path
    accuracy: float | None
    note: str  # What it is for, or how it was checked.


def downloads(model_path: str | Path) -> list[Download]:
    """The model's files that exist: .keras, ONNX float32 and the served variant, TFLite float16 and int8,
    and the card, in that order."""
    model_path = Path(model_path)
    card = read_card(model_path)
    float32 = card.export("onnx")
    items = [Download("Keras (.keras)", model_path, card.accuracy(), "for Keras 3: training on, or Python serving")]
    parity = (f"matches Keras within {float32.max_abs_difference:.0e} on {float32.parity_faces} faces"
              if float32 and float32.max_abs_difference is not None else "")
    items.append(Download("ONNX float32", export_file(model_path, "onnx"),
                          float32.validation_accuracy if float32 and float32.validation_accuracy else card.accuracy(),
                          "for onnxruntime anywhere" + (f"; {parity}" if parity else "")))
    for record in card.exports:
        if record.format == "onnx" and record.variant != "float32" and record.file == card.serving:
            items.append(Download(f"ONNX {record.variant}", model_path.with_name(record.file),
                                  record.validation_accuracy, "what this app serves: smaller and faster on CPUs"))
    for variant in TFLITE_VARIANTS:
        record = card.export("tflite", variant)
        items.append(Download(f"TFLite {variant}", export_file(model_path, "tflite", variant),
                              record.validation_accuracy if record else None,
                              "for phones and small devices (LiteRT)"
                              + (", int8 weights" if variant == "int8" else "")))
    items.append(Download("Model card (.json)", card_path(model_path), None, "how the model was made and measured"))
    return [item for item in items if item.path.exists()]


def missing_tflite(model_path: str | Path) -> list[str]:
    """The TFLite variants not yet exported beside the model."""
    return [variant for variant in TFLITE_VARIANTS if not export_file(model_path, "tflite", variant).exists()]
