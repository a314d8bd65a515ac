"""The model the project ships, as users get it: the registry's default model and the default face detector."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from PIL import Image
from skimage import data

from fer.labels import CLASSES
from fer.model.registry import DEFAULT_MODEL_NAME, default_model_path
from fer.paths import MODELS_DIR, PROJECT_ROOT
from fer.serve.detection import DEFAULT_DETECTOR, make_detector
from fer.serve.prediction import Classifier, predict_file

ROOT = PROJECT_ROOT


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_path(default_model_path())


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(default_model_path().with_suffix(".json").read_text())


def test_the_default_model_is_the_shipped_file():
    assert default_model_path() == MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"


def test_the_cards_classes_are_the_models_outputs(shipped, card):
    assert tuple(card["classes"]) == CLASSES == shipped.classes
    assert shipped.model.output_shape == (None, len(card["classes"]))


def test_the_astronaut_reads_happy(shipped):
    photo = io.BytesIO()
    Image.fromarray(data.astronaut()).save(photo, format="JPEG", quality=90)
    result = predict_file("astronaut.jpg", photo.getvalue(), shipped, make_detector(DEFAULT_DETECTOR))
    assert result.ok, result.error
    assert len(result.faces) == 1 and not result.faces[0].whole_image  # Found by the detector, not a fallback.
    face = result.faces[0]
    assert face.label == "happy", face.probabilities
    assert face.confidence > 0.5


@pytest.mark.shared_data
def test_validation_accuracy_on_fer2013_is_the_cards(card, shared_zip):
    # As users run it, in a fresh process (which also catches a custom layer that only loads when a test
    # happened to import its module first); no --model, so the CLI picks the default itself.
    finished = subprocess.run([sys.executable, "-m", "fer", "evaluate", "--dataset", str(shared_zip), "--json"],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr[-2000:]
    report = json.loads(finished.stdout)
    assert report["model"] == str(default_model_path())
    assert report["images"] == card["metrics"]["validation"]["images"] == 3589
    assert abs(report["accuracy"] - card["metrics"]["validation"]["accuracy"]) <= 0.002
