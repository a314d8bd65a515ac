"""The webcam path (fer.serve.live): tracking, smoothing, FPS, and the hand-off between threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.serve.detection import VIDEO_CONFIG, Box, Face, make_detector
from fer.labels import CLASSES
from fer.serve.live import FaceTracks, FpsMeter, LiveConfig, LiveProcessor, search_near
from fer.serve.prediction import Classifier, FacePrediction


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# Fake detectors answer in frame coordinates whatever image they get, so tests that use them
# search the whole frame every time rather than regions around known faces.
EVERY_FRAME = LiveConfig(full_search_every=1)


class FakeDetector:
    """Returns the faces it is given; remembers the shape of every image it was asked about."""

    name = "fake"

    def __init__(self, faces=()):
        self.faces = list(faces)
        self.shapes = []

    def detect(self, image):
        self.shapes.append(image.shape)
        return list(self.faces)


def astronaut_frame(shift: int = 0) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64 + shift:576 + shift] = np.asarray(Image.fromarray(data.astronaut()).resize((512, 480)))
    return frame


def prediction(box: Box, **probabilities) -> FacePrediction:
    row = {name: probabilities.get(name, 0.0) for name in CLASSES}
    label = max(row, key=row.get)
    return FacePrediction(box, label, row[label], row, 1.0)


@pytest.fixture(scope="module")
def classifier(tiny_model_path) -> Classifier:
    return Classifier.from_path(tiny_model_path)


def test_fps_meter_counts_frames_per_second():
    clock = FakeClock()
    meter = FpsMeter(window=5, clock=clock)
    assert meter.fps == 0.0
    for _ in range(4):
        meter.tick()
        clock.now += 0.05
    assert meter.fps == pytest.approx(20.0)
    for _ in range(10):  # Slower frames push the fast ones out of the window.
        meter.tick()
        clock.now += 0.25
    assert meter.fps == pytest.approx(4.0)


def test_a_face_that_stays_keeps_its_track_and_its_label_is_smoothed():
    tracks = FaceTracks(LiveConfig(smoothing_frames=4))
    box = Box(100, 100, 80, 80)
    first = tracks.update([prediction(box, happy=0.9, sad=0.1)])
    assert first[0].prediction.label == "happy"
    # One frame of 'sad' (a blink, a bad crop) does not flip the label...
    second = tracks.update([prediction(box._replace(x=104), happy=0.2, sad=0.8)])
    assert second[0].track_id == first[0].track_id
    assert second[0].prediction.label == "happy"
    assert second[0].prediction.probabilities["happy"] == pytest.approx(0.55)
    # ...but a lasting change does, once it dominates the window.
    for _ in range(3):
        latest = tracks.update([prediction(box, happy=0.2, sad=0.8)])
    assert latest[0].prediction.label == "sad"
    assert latest[0].prediction.probabilities["sad"] == pytest.approx(0.8)


def test_separate_faces_get_separate_tracks_and_vanished_ones_expire():
    tracks = FaceTracks(LiveConfig(max_missed_frames=2))
    left, right = Box(0, 0, 50, 50), Box(300, 0, 50, 50)
    ids = [t.track_id for t in tracks.update([prediction(left, happy=1), prediction(right, sad=1)])]
    assert len(set(ids)) == 2
    for _ in range(2):  # The right face is missing for two frames: it is kept...
        tracks.update([prediction(left, happy=1)])
    both = tracks.update([prediction(left, happy=1), prediction(right, sad=1)])
    assert [t.track_id for t in both] == ids
    for _ in range(3):  # ...but after three it is gone, and its return is a new face.
        tracks.update([prediction(left, happy=1)])
    again = tracks.update([prediction(left, happy=1), prediction(right, angry=1)])
    assert again[0].track_id == ids[0] and again[1].track_id not in ids
    assert again[1].prediction.label == "angry"  # No history from the old track leaks in.


def test_processor_annotates_frames_and_hands_over_the_latest_result(classifier):
    clock = FakeClock()
    detector = FakeDetector([Face(Box(200, 100, 120, 120), 2.0)])
    processor = LiveProcessor(classifier, detector, EVERY_FRAME, clock=clock)
    assert processor.latest() is None
    frame = np.full((480, 640, 3), 90, np.uint8)
    for _ in range(5):
        out = processor.process(frame)
        clock.now += 0.04
    assert out.shape == frame.shape and (out != frame).any()
    latest = processor.latest()
    assert latest.frame_index == 5 and len(latest.faces) == 1
    assert latest.faces[0].prediction.box == Box(200, 100, 120, 120)
    assert latest.fps == pytest.approx(25.0)
    assert latest.age(now=clock.now) == pytest.approx(0.04)
    assert processor.error is None


def test_processor_follows_a_moving_real_face(classifier):
    detector = make_detector("haar", VIDEO_CONFIG)
    processor = LiveProcessor(classifier, detector, LiveConfig(full_search_every=5))
    boxes = []
    for shift in range(0, 40, 8):  # Frame 1 searches everything; frames 2-5 only near the face.
        processor.process(astronaut_frame(shift))
        [tracked] = processor.latest().faces
        assert tracked.track_id == 1 and tracked.prediction.label in CLASSES
        boxes.append(tracked.prediction.box)
    moved = [box.x - boxes[0].x for box in boxes]
    assert moved[-1] == pytest.approx(32, abs=6)  # The box followed the face.


def test_search_near_refinds_a_face_in_a_small_region():
    detector = make_detector("haar", VIDEO_CONFIG)
    frame = astronaut_frame()
    [face] = detector.detect(frame)
    moved = astronaut_frame(12)
    [found] = search_near(moved, [face.box], detector)
    assert found.box.iou(face.box._replace(x=face.box.x + 12)) > 0.6
    assert search_near(np.full_like(frame, 90), [face.box], detector) is None  # Gone: search everything.


def test_full_frame_searches_happen_every_nth_frame(classifier):
    detector = FakeDetector([Face(Box(200, 100, 120, 120), 2.0)])
    processor = LiveProcessor(classifier, detector, LiveConfig(full_search_every=3))
    for _ in range(6):
        processor.process(np.full((480, 640, 3), 90, np.uint8))
    full = [shape == (480, 640, 3) for shape in detector.shapes]
    # Frames 1 and 4 search the frame; the others a region around the face, scaled down.
    assert full == [True, False, False, True, False, False]
    assert all(max(shape[:2]) <= 130 for shape, whole in zip(detector.shapes, full) if not whole)


def test_a_failing_frame_keeps_the_video_going_and_says_why_in_words(classifier, caplog):
    class Broken:
        name = "broken"

        def detect(self, image):
            raise RuntimeError("camera glitch")

    processor = LiveProcessor(classifier, Broken())
    frame = np.zeros((48, 64, 3), np.uint8)
    assert processor.process(frame) is frame
    assert processor.error == "an unexpected problem stopped it from being read; the log has the details"
    [record] = [r for r in caplog.records if r.name == "fer.serve.live"]
    assert str(record.exc_info[1]) == "camera glitch"
    processor.configure(classifier, FakeDetector())
    processor.process(frame)
    assert processor.error is None


def test_a_pause_in_frames_starts_a_new_stream(classifier):
    clock = FakeClock()
    left, right = Face(Box(0, 0, 48, 48), 1.0), Face(Box(100, 0, 48, 48), 1.0)
    detector = FakeDetector([left, right])
    processor = LiveProcessor(classifier, detector, LiveConfig(restart_after=2.0, full_search_every=1), clock=clock)
    for _ in range(3):
        processor.process(np.zeros((96, 160, 3), np.uint8))
        clock.now += 0.1
    assert [t.track_id for t in processor.latest().faces] == [1, 2]
    clock.now += 10  # The user stopped the camera and started it again.
    detector.faces = [right]
    processor.process(np.zeros((96, 160, 3), np.uint8))
    latest = processor.latest()
    assert latest.fps == 0.0  # One frame into the new stream: no stale rate from before the pause.
    assert [t.track_id for t in latest.faces] == [1]  # Numbering restarts; the old track is gone.


def test_results_cross_threads_safely(classifier):
    detector = FakeDetector([Face(Box(10, 10, 60, 60), 1.0), Face(Box(100, 10, 60, 60), 1.0)])
    processor = LiveProcessor(classifier, detector, EVERY_FRAME)
    frame = np.full((120, 200, 3), 128, np.uint8)
    seen, errors = [], []

    def video_thread():
        try:
            for _ in range(30):
                processor.process(frame)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    worker = threading.Thread(target=video_thread)
    worker.start()
    while worker.is_alive():
        latest = processor.latest()
        if latest is not None:
            seen.append(latest.frame_index)
            assert len(latest.faces) == 2 and latest.frame.shape == frame.shape
    worker.join()
    assert not errors
    assert seen == sorted(seen)  # Never an older frame after a newer one.
    assert processor.latest().frame_index == 30


def test_live_config_is_validated():
    with pytest.raises(ValueError):
        LiveConfig(smoothing_frames=0)
    with pytest.raises(ValueError):
        LiveConfig(match_iou=0)
