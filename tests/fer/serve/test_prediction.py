"""Prediction end to end (fer.serve.prediction): classifier fast path, faces, bad files, tables, drawings."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from helpers.stand_ins import CrashingDetector, make_face
from fer.errors import FerError
from fer.serve.detection import Box, Face, make_detector
from fer.labels import CLASSES
from fer.serve.prediction import (Classifier, ImageResult, predict_file, predict_files, predict_image,
                                  prediction_json, results_table, whole_image_box)


def image_bytes(array: np.ndarray, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


class FakeDetector:
    """Finds exactly the faces it is given, wherever they are: a seam for tests."""

    name = "fake"

    def __init__(self, faces):
        self.faces = faces

    def detect(self, image):
        return list(self.faces)


@pytest.fixture(scope="module")
def classifier(tiny_model_path) -> Classifier:
    return Classifier.from_path(tiny_model_path)


@pytest.fixture(scope="module")
def haar():
    return make_detector("haar")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def test_fast_path_matches_model_predict(classifier, tiny_model_path):
    from fer.model.files import load_model

    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    fast = classifier.probabilities(crops)  # The ONNX export on onnxruntime (exported on first use).
    slow = load_model(tiny_model_path)[0].predict(crops[..., None].astype("float32"), verbose=0)
    assert fast.shape == (5, len(CLASSES)) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-4)  # fer.model.export.PARITY_TOLERANCE
    np.testing.assert_allclose(fast.sum(axis=1), 1, atol=1e-5)


def test_batches_larger_than_batch_size_keep_their_order(tiny_model_path):
    small_batches = Classifier.from_path(tiny_model_path)
    small_batches.batch_size = 3
    crops = np.random.default_rng(1).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(small_batches.probabilities(crops), small_batches.probabilities(crops[::-1])[::-1],
                               atol=1e-5)
    assert small_batches.probabilities(np.zeros((0, 48, 48), np.uint8)).shape == (0, len(CLASSES))


def test_classifier_rejects_a_model_that_does_not_fit(classifier):
    with pytest.raises(FerError, match="7 outputs but its card names 3 classes"):
        Classifier(classifier.model, ["a", "b", "c"])


def test_the_astronaut_gets_one_labelled_face(classifier, haar, astronaut):
    faces = predict_image(astronaut, classifier, haar)
    assert len(faces) == 1
    face = faces[0]
    assert list(face.probabilities) == list(CLASSES)
    assert face.label == max(face.probabilities, key=face.probabilities.get)
    assert face.confidence == pytest.approx(face.probabilities[face.label])
    assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert face.score is not None and not face.whole_image
    assert face.caption().startswith(f"{face.label} {face.emoji} ")


def test_no_face_gives_nothing_unless_the_whole_image_is_asked_for(classifier, haar):
    blank = np.full((300, 400, 3), 180, np.uint8)
    assert predict_image(blank, classifier, haar) == []
    [whole] = predict_image(blank, classifier, haar, whole_image=True)
    assert whole.whole_image and whole.score is None
    assert whole.box == whole_image_box(400, 300) == Box(50, 0, 300, 300)


def test_an_injected_detector_decides_where_the_faces_are(classifier, astronaut):
    boxes = [Box(10, 10, 60, 60), Box(300, 200, 80, 100)]
    faces = predict_image(astronaut, classifier, FakeDetector([Face(box, 0.5) for box in boxes]))
    assert [face.box for face in faces] == boxes
    assert [face.score for face in faces] == [0.5, 0.5]


def test_a_face_crop_gets_the_same_probabilities_as_the_classifier_alone(classifier):
    crop = np.random.default_rng(2).integers(0, 256, (48, 48), dtype=np.uint8)
    [face] = predict_image(np.stack([crop] * 3, -1), classifier, FakeDetector([Face(Box(0, 0, 48, 48), 1.0)]))
    expected = classifier.probabilities(crop[None])[0]
    np.testing.assert_allclose(list(face.probabilities.values()), expected, atol=1e-5)


# --- Files a user might drop -------------------------------------------------------------------


def test_a_jpeg_with_a_face(classifier, haar, astronaut):
    result = predict_file("astronaut.jpg", image_bytes(astronaut, "JPEG"), classifier, haar)
    assert result.ok and len(result.faces) == 1 and result.image.shape == (512, 512, 3)


def test_not_an_image(classifier, haar):
    result = predict_file("notes.jpg", b"these are not pixels", classifier, haar)
    assert not result.ok and "not a readable image" in result.error
    assert result.faces == () and result.image is None


def test_a_truncated_image(classifier, haar, astronaut):
    whole = image_bytes(astronaut, "JPEG")
    result = predict_file("cut.jpg", whole[: len(whole) // 3], classifier, haar)
    assert not result.ok and "not a readable image" in result.error


def test_a_50_megapixel_image_is_downscaled_first(classifier, haar, astronaut):
    huge = np.asarray(Image.fromarray(astronaut).convert("L").resize((8192, 6144)))  # 50.3 MP (gray: faster to make)
    result = predict_file("huge.jpg", image_bytes(huge, "JPEG", quality=70), classifier, haar)
    assert result.ok and max(result.image.shape) <= 2048
    assert len(result.faces) == 1
    assert any("downscaled from 8192×6144" in note for note in result.notes)


def test_an_animated_gif_uses_its_first_frame(classifier, haar, astronaut):
    frames = [Image.fromarray(astronaut), Image.new("RGB", (512, 512), "gray")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = predict_file("anim.gif", buffer.getvalue(), classifier, haar)
    assert result.ok and len(result.faces) == 1
    assert any("2 frames: the first frame was used" in note for note in result.notes)


def test_a_cmyk_jpeg(classifier, haar, astronaut):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).convert("CMYK").save(buffer, "JPEG")
    result = predict_file("print.jpg", buffer.getvalue(), classifier, haar)
    assert result.ok and len(result.faces) == 1
    assert "converted from CMYK" in result.notes


def test_a_16_bit_png(classifier, haar, astronaut):
    gray16 = (np.asarray(Image.fromarray(astronaut).convert("L"), np.uint16) * 257)
    buffer = io.BytesIO()
    Image.fromarray(gray16).save(buffer, "PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I")
    result = predict_file("scan.png", buffer.getvalue(), classifier, haar)
    assert result.ok and len(result.faces) == 1
    assert "converted from 16-bit grayscale" in result.notes


def test_webp_and_bmp(classifier, haar, astronaut):
    for format in ("WEBP", "BMP"):
        result = predict_file(f"a.{format.lower()}", image_bytes(astronaut, format), classifier, haar)
        assert result.ok and len(result.faces) == 1, format


def test_one_bad_file_does_not_stop_the_batch(classifier, haar, astronaut):
    blank = image_bytes(np.full((100, 100, 3), 255, np.uint8))
    files = [("a.png", image_bytes(astronaut)), ("broken.png", b"\x89PNG junk"), ("blank.png", blank)]
    results = predict_files(files, classifier, haar)
    assert [r.name for r in results] == ["a.png", "broken.png", "blank.png"]
    assert [r.ok for r in results] == [True, False, True]
    assert len(results[0].faces) == 1 and results[2].no_face


def test_a_crashing_detector_is_reported_in_words_and_logged_in_full(classifier, astronaut, caplog):
    result = predict_file("a.png", image_bytes(astronaut), classifier, CrashingDetector())
    assert not result.ok and result.error == "an unexpected problem stopped it from being read; the log has the details"
    assert "RuntimeError" not in result.error and "fell over" not in result.error and "<" not in result.error
    [record] = [r for r in caplog.records if r.name == "fer.serve.prediction"]
    assert "a.png" in record.getMessage() and str(record.exc_info[1]) == "detector fell over"


# --- Tables, JSON and pictures -----------------------------------------------------------------


def test_results_table_has_a_row_per_face_and_per_problem_file():
    results = [
        ImageResult("two.png", np.zeros((50, 50, 3), np.uint8), (make_face("happy"), make_face("sad"))),
        ImageResult("none.png", np.zeros((50, 50, 3), np.uint8)),
        ImageResult("whole.png", np.zeros((50, 50, 3), np.uint8), (make_face("fear", whole=True),)),
        ImageResult("bad.png", error="not a readable image"),
    ]
    table = results_table(results)
    assert list(table.columns) == ["file", "face", "x", "y", "width", "height", "label", "confidence",
                                   *CLASSES, "note"]
    assert table["face"].tolist() == ["1", "2", "", "whole image", ""]
    assert table["label"].tolist()[:2] == ["happy", "sad"]
    assert table["note"].tolist() == ["", "", "no face found", "", "error: not a readable image"]
    assert table.loc[0, "happy"] == pytest.approx(0.4)
    csv = table.to_csv(index=False)
    assert csv.splitlines()[1].startswith("two.png,1,10,20,30,40,happy,0.4,")


def test_prediction_json_lists_faces_with_box_and_probabilities_by_class():
    result = ImageResult("a.png", np.zeros((60, 80, 3), np.uint8), (make_face(),))
    payload = json.loads(json.dumps(prediction_json(result)))
    assert payload["file"] == "a.png" and payload["error"] is None
    assert (payload["width"], payload["height"]) == (80, 60)
    [face] = payload["faces"]
    assert face["box"] == {"x": 10, "y": 20, "width": 30, "height": 40}
    assert list(face["probabilities"]) == list(CLASSES)
    assert face["label"] == "happy"
    assert prediction_json(ImageResult("b.png", error="boom"))["faces"] == []
