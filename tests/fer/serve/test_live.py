"""The webcam at 30 fps (fer/serve/live.py): frames that queue up while one is analysed are dropped,
and the camera's rate is counted beside the processed one."""

from __future__ import annotations

import numpy as np
import pytest

from fer.labels import CLASSES
from fer.serve.detection import Box, Face
from fer.serve.live import LiveConfig, LiveProcessor
from fer.serve.prediction import Classifier


class Clock:
    def __init__(self):
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Detector:
    name = "fixed"

    def __init__(self, faces):
        self.faces = faces

    def detect(self, image):
        return list(self.faces)


class Model:
    """Stands in for a network: every crop reads as happy."""

    input_shape, output_shape = (None, 48, 48, 1), (None, len(CLASSES))

    def predict_on_batch(self, batch):
        return np.tile(np.eye(len(CLASSES))[CLASSES.index("happy")], (len(batch), 1)).astype(np.float32)


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(Model(), CLASSES)


@pytest.mark.parametrize("faces", [1, 4])
def test_a_slow_machine_drops_frames_and_shows_both_rates(classifier, faces):
    clock = Clock()
    detector = Detector([Face(Box(10 + 70 * i, 10, 60, 60), 1.0) for i in range(faces)])
    processor = LiveProcessor(classifier, detector, LiveConfig(full_search_every=1), clock=clock)
    frame = np.full((120, 320, 3), 90, np.uint8)
    # A 30 fps camera, a machine that analyses one frame in 1/10 s: three frames wait each time.
    for step in range(31):
        waiting = [frame] * (1 if step == 0 else 3)
        out = processor.process_newest(waiting)
        clock.now += 0.1
    latest = processor.latest()
    assert out.shape == frame.shape
    assert latest.fps == pytest.approx(10.0)
    assert latest.camera_fps == pytest.approx(30.0, rel=0.1)
    assert latest.dropped == 60 and latest.frame_index == 31
    assert len(latest.faces) == faces


def test_a_machine_that_keeps_up_drops_nothing(classifier):
    clock = Clock()
    processor = LiveProcessor(classifier, Detector([Face(Box(10, 10, 60, 60), 1.0)]), clock=clock)
    for _ in range(30):
        processor.process_newest([np.zeros((80, 80, 3), np.uint8)])
        clock.now += 1 / 30
    latest = processor.latest()
    assert latest.dropped == 0
    assert latest.fps == pytest.approx(30.0) and latest.camera_fps == pytest.approx(30.0)


def test_process_newest_needs_a_frame(classifier):
    with pytest.raises(ValueError, match="at least one frame"):
        LiveProcessor(classifier, Detector([])).process_newest([])
