"""Exports (fer.model.export): ONNX agrees with Keras, quantised variants and the serving choice, TFLite, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from fer.data.synthetic import make_faces
from fer.errors import FerError
from fer.labels import CLASSES
from fer.model import export
from fer.model.cards import read_card
from fer.model.files import load_model
from fer.serve.runtime import OnnxModel
from fer.serve.tflite_runtime import TfliteModel
from fer.model.downloads import downloads, missing_tflite


@pytest.fixture
def synthetic_faces() -> export.Faces:
    images, labels = make_faces(10, seed=3)
    return export.Faces(images[..., None], labels, CLASSES, "synthetic demo faces (70)")


def test_onnx_export_matches_keras_and_the_card_records_the_check(model_copy, synthetic_faces):
    record = export.export_onnx(model_copy)

    onnx_path = model_copy.with_suffix(".onnx")
    assert record.file == onnx_path.name and onnx_path.stat().st_size == record.bytes
    assert record.max_abs_difference <= export.PARITY_TOLERANCE
    assert record.parity_faces == export.PARITY_FACES or record.parity_source == "synthetic demo faces"
    assert read_card(model_copy).export("onnx") == record
    # Checked again here on other faces, independently of the exporter's own check.
    pixels = synthetic_faces.images.astype(np.float32)
    keras_probabilities = np.asarray(load_model(model_copy)[0].predict_on_batch(pixels))
    onnx_probabilities = OnnxModel(onnx_path).predict_on_batch(pixels)
    assert onnx_probabilities.shape == (len(pixels), len(CLASSES))
    assert np.abs(onnx_probabilities - keras_probabilities).max() <= export.PARITY_TOLERANCE


def test_parity_faces_fall_back_to_the_synthetic_demo_faces(monkeypatch, tmp_path):
    monkeypatch.setattr(export, "FER2013", tmp_path / "absent.zip")
    faces, source = export.parity_faces(20)
    assert faces.shape == (20, 48, 48, 1) and faces.dtype == np.uint8 and source == "synthetic demo faces"


class Shifted:
    """A Keras model whose own predictions are off by 1e-3 (its export is not): an export that disagrees."""

    def __init__(self, model):
        self.model = model

    def predict_on_batch(self, images):
        return np.asarray(self.model.predict_on_batch(images)) + 1e-3

    def export(self, *args, **kwargs):
        return self.model.export(*args, **kwargs)


def test_an_export_that_disagrees_with_keras_is_not_kept(model_copy):
    with pytest.raises(FerError, match="differs from the Keras model by up to 0.001"):
        export.export_onnx(model_copy, keras_model=Shifted(load_model(model_copy)[0]))
    assert not list(model_copy.parent.glob("*.onnx")) and read_card(model_copy).exports == ()


def test_serving_choice_is_the_fastest_within_the_margin():
    measured = {
        "float32": export.Measured(0.700, 7.0, 10.0),
        "float16": export.Measured(0.701, 9.0, 8.0),
        "int8-dynamic": export.Measured(0.6969, 2.0, 2.0),  # Fastest, but 0.31 points below float32.
        "int8-static": export.Measured(0.6975, 3.0, 3.0),
    }
    assert export.choose_served(measured) == "int8-static"
    assert export.choose_served({"float32": measured["float32"], "float16": measured["float16"]}) == "float32"


def test_quantised_variants_are_scored_timed_and_the_served_one_recorded(model_copy, synthetic_faces, monkeypatch):
    monkeypatch.setattr(export, "validation_faces", lambda card, split="validation": synthetic_faces)

    measured = export.export_onnx_variants(model_copy, ("float32", "float16", "int8-static"), runtime=OnnxModel,
                                           rounds=1, progress=lambda message: None)

    card = read_card(model_copy)
    served = export.choose_served(measured)
    assert set(measured) == {"float32", "float16", "int8-static"}
    assert card.serving == export.export_file(model_copy, "onnx", served).name
    for variant, result in measured.items():
        record = card.export("onnx", variant)
        assert record.validation_accuracy == pytest.approx(result.accuracy, abs=1e-6)
        assert record.validation_faces == len(synthetic_faces.labels) and record.ms_per_face_batch > 0
        kept = variant in ("float32", served)
        assert (model_copy.parent / record.file).exists() == kept
    assert abs(measured["float16"].accuracy - measured["float32"].accuracy) <= 0.03


def test_tflite_exports_load_and_predict(model_copy, synthetic_faces):
    pixels = synthetic_faces.images.astype(np.float32)
    expected = np.asarray(load_model(model_copy)[0].predict_on_batch(pixels))
    for variant in export.TFLITE_VARIANTS:
        record = export.export_tflite(model_copy, variant, runtime=TfliteModel, faces=synthetic_faces)

        path = model_copy.parent / record.file
        assert path.name == f"tiny.{variant}.tflite" and path.stat().st_size == record.bytes
        probabilities = TfliteModel(path).predict_on_batch(pixels)
        assert probabilities.shape == expected.shape
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-3)
        assert np.abs(probabilities - expected).max() < 0.05  # Quantised weights: close, not equal.
        assert read_card(model_copy).export("tflite", variant).validation_accuracy == record.validation_accuracy
    offered = {item.label: item for item in downloads(model_copy)}
    assert list(offered) == ["Keras (.keras)", "TFLite float16", "TFLite int8", "Model card (.json)"]
    assert offered["TFLite int8"].accuracy == read_card(model_copy).export("tflite", "int8").validation_accuracy
    assert missing_tflite(model_copy) == []


def test_downloads_offer_the_files_that_exist_with_their_accuracy(model_copy):
    assert [item.label for item in downloads(model_copy)] == ["Keras (.keras)", "Model card (.json)"]
    assert missing_tflite(model_copy) == ["float16", "int8"]
    record = export.export_onnx(model_copy)

    offered = {item.label: item for item in downloads(model_copy)}
    assert list(offered) == ["Keras (.keras)", "ONNX float32", "Model card (.json)"]
    assert offered["ONNX float32"].path == model_copy.with_suffix(".onnx")
    assert f"matches Keras within {record.max_abs_difference:.0e}" in offered["ONNX float32"].note


def test_registering_a_model_exports_it(tiny_model_path, tmp_path):
    from fer.model.registry import register_model
    from fer.paths import user_models_dir

    path = register_model(tiny_model_path, "registered")
    assert path == user_models_dir() / "registered.keras"

    card = read_card(path)
    assert path.with_suffix(".onnx").exists() and card.name == "registered"
    assert card.export("onnx").file == "registered.onnx" and card.export("onnx").max_abs_difference <= 1e-4
