"""Stand-ins for the parts a test wants to misbehave, and the noise a quiet process must not print."""

from __future__ import annotations

from fer.labels import CLASSES
from fer.serve.detection import Box
from fer.serve.prediction import FacePrediction

TENSORFLOW_START_UP = ("oneDNN", "cuda drivers", "absl::InitializeLog", "cpu_feature_guard")


class CrashingDetector:
    """A face detector whose every search fails with an error that is not ours."""

    name = "broken"

    def detect(self, image):
        raise RuntimeError("detector fell over")


def make_face(label="happy", box=Box(10, 20, 30, 40), whole=False) -> FacePrediction:
    """A face read as `label` (0.4, every other class 0.1) at `box`."""
    probabilities = {name: (0.4 if name == label else 0.1) for name in CLASSES}
    return FacePrediction(box, label, 0.4, probabilities, None if whole else 3.2, whole)
