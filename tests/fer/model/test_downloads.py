"""fer.model.downloads: the files of a model a user can take away, in order, with what was measured on each."""

from __future__ import annotations

from pathlib import Path

from fer.model.cards import Export, ModelCard, write_card
from fer.model.downloads import downloads, missing_tflite


def model_files(folder: Path, *names: str) -> Path:
    """`faces.keras` and its card, recording every export, and the files `names` beside them (a few bytes each)."""
    model = folder / "faces.keras"
    model.write_bytes(b"keras")
    card = ModelCard(name="faces", metrics={"validation": {"accuracy": 0.61}}, serving="faces.int8-static.onnx",
                     exports=(Export("onnx", "float32", "faces.onnx", max_abs_difference=3e-6, parity_faces=256,
                                     validation_accuracy=0.62),
                              Export("onnx", "float16", "faces.float16.onnx", validation_accuracy=0.63),
                              Export("onnx", "int8-static", "faces.int8-static.onnx", validation_accuracy=0.60),
                              Export("tflite", "int8", "faces.int8.tflite", validation_accuracy=0.59)))
    write_card(model, card)
    for name in names:
        (folder / name).write_bytes(b"x")
    return model


def test_every_file_that_exists_is_offered_in_order_with_its_accuracy(tmp_path):
    model = model_files(tmp_path, "faces.onnx", "faces.float16.onnx", "faces.int8-static.onnx",
                        "faces.float16.tflite", "faces.int8.tflite")

    offered = downloads(model)

    assert [item.label for item in offered] == ["Keras (.keras)", "ONNX float32", "ONNX int8-static",
                                                "TFLite float16", "TFLite int8", "Model card (.json)"]
    assert [item.path.name for item in offered] == ["faces.keras", "faces.onnx", "faces.int8-static.onnx",
                                                    "faces.float16.tflite", "faces.int8.tflite", "faces.json"]
    # The card's own accuracy for Keras, each export's measured one, none where nothing was measured.
    assert [item.accuracy for item in offered] == [0.61, 0.62, 0.60, None, 0.59, None]
    assert "matches Keras within 3e-06 on 256 faces" in offered[1].note
    assert "what this app serves" in offered[2].note and offered[4].note.endswith("int8 weights")
    assert missing_tflite(model) == []


def test_files_not_written_are_left_out_and_missing_tflite_names_them(tmp_path):
    model = model_files(tmp_path, "faces.float16.onnx")  # Recorded but not served: never offered.

    assert [item.label for item in downloads(model)] == ["Keras (.keras)", "Model card (.json)"]
    assert missing_tflite(model) == ["float16", "int8"]
