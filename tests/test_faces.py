"""Face detection and cropping (fer.serve.detection) on a real photo, blank images and drawn test patterns."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from fer.errors import FerError
from fer.serve.detection import (PHOTO_CONFIG, VIDEO_CONFIG, Box, DetectorConfig, Face, HaarDetector, crop_face,
                                 eye_angle, make_detector)

# Where the astronaut's face is in skimage's 512×512 photo (measured once, by eye and by both detectors).
ASTRONAUT_FACE = Box(177, 66, 95, 95)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    return make_detector("haar")


def test_haar_finds_the_astronauts_face(haar, astronaut):
    faces = haar.detect(astronaut)
    assert len(faces) == 1
    assert faces[0].box.iou(ASTRONAUT_FACE) > 0.6
    assert faces[0].score > 0 and faces[0].landmarks is None


def test_haar_finds_nothing_in_blank_images(haar):
    assert haar.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert haar.detect(np.zeros((30, 30), np.uint8)) == []  # Smaller than the smallest face searched for.


def test_haar_accepts_grayscale(haar, astronaut):
    faces = haar.detect(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    assert len(faces) == 1 and faces[0].box.iou(ASTRONAUT_FACE) > 0.6


def test_large_images_are_searched_downscaled_and_boxes_mapped_back(haar, astronaut):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_LINEAR)  # 4× the photo.
    faces = haar.detect(big)
    assert len(faces) == 1
    assert faces[0].box.iou(ASTRONAUT_FACE.scaled(4)) > 0.6


def test_video_config_finds_a_face_in_a_webcam_sized_frame(astronaut):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(astronaut, (512, 480))
    faces = make_detector("haar", VIDEO_CONFIG).detect(frame)
    assert len(faces) == 1
    assert faces[0].box.iou(Box(64 + 177, round(66 * 480 / 512), 95, round(95 * 480 / 512))) > 0.5


def test_faces_come_left_to_right(haar, astronaut):
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # The photo and its mirror image.
    faces = haar.detect(pair)
    assert len(faces) == 2
    assert faces[0].box.x < faces[1].box.x


def test_mtcnn_finds_the_face_with_eye_landmarks(astronaut):
    detector = make_detector("mtcnn")
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.box.iou(ASTRONAUT_FACE) > 0.4  # MTCNN's box is taller and narrower than Haar's.
    assert 0.9 <= face.score <= 1
    left_eye, right_eye = face.landmarks["left_eye"], face.landmarks["right_eye"]
    assert left_eye[0] < right_eye[0]  # "left" as seen in the image.
    assert all(ASTRONAUT_FACE.y < eye[1] < ASTRONAUT_FACE.y + ASTRONAUT_FACE.height for eye in (left_eye, right_eye))
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []
    assert detector.detect(np.zeros((20, 20, 3), np.uint8)) == []  # mtcnn itself fails on tiny inputs.


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(FerError, match="unknown face detector 'yolo'.*haar, mtcnn"):
        make_detector("yolo")


def test_detector_rejects_non_images(haar):
    with pytest.raises(ValueError, match="uint8"):
        haar.detect(np.zeros((100, 100), np.float32))


@pytest.mark.parametrize("bad", [dict(max_side=10), dict(min_face_fraction=1.5), dict(scale_factor=1.0)])
def test_detector_config_is_validated(bad):
    with pytest.raises(ValueError):
        DetectorConfig(**bad)


def test_configs_differ_where_video_needs_speed():
    assert VIDEO_CONFIG.max_side < PHOTO_CONFIG.max_side
    assert VIDEO_CONFIG.min_face_fraction > PHOTO_CONFIG.min_face_fraction


def test_box_geometry():
    box = Box(10, 20, 30, 40)
    assert box.area == 1200
    assert box.scaled(2) == Box(20, 40, 60, 80)
    assert box.iou(box) == 1.0
    assert box.iou(Box(100, 100, 5, 5)) == 0.0
    assert box.iou(Box(25, 20, 30, 40)) == pytest.approx(600 / 1800)


def test_crop_face_is_a_48x48_square_of_the_box():
    gray = np.zeros((200, 300), np.uint8)
    gray[50:150, 100:200] = 255  # A white square exactly where the face box is.
    crop = crop_face(gray, Face(Box(100, 50, 100, 100), 1.0))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.min() > 200


def test_crop_face_pads_by_repeating_the_border():
    gray = np.tile(np.arange(100, dtype=np.uint8), (100, 1))  # Brightness grows to the right.
    crop = crop_face(gray, Face(Box(-20, 10, 40, 40), 1.0))  # Half outside the left edge.
    assert crop.shape == (48, 48)
    assert (crop[:, :20] <= 2).all()  # The outside half repeats column 0.


def test_crop_face_levels_tilted_eyes():
    gray = np.full((200, 200), 128, np.uint8)
    left, right = (70, 90), (130, 110)  # Right eye 20 px lower: the head is tilted.
    for x, y in (left, right):
        cv2.circle(gray, (x, y), 6, 0, -1)
    face = Face(Box(50, 50, 100, 100), 1.0, {"left_eye": left, "right_eye": right})
    assert eye_angle(face) == pytest.approx(np.degrees(np.arctan2(20, 60)))
    crop = crop_face(face=face, gray=gray)
    dark_rows = [np.argmin(crop[:, columns].min(axis=1)) for columns in (slice(0, 24), slice(24, 48))]
    assert abs(int(dark_rows[0]) - int(dark_rows[1])) <= 1  # Both eyes on one row after alignment.
    untilted = crop_face(gray, face._replace(landmarks=None))
    rows = [np.argmin(untilted[:, columns].min(axis=1)) for columns in (slice(0, 24), slice(24, 48))]
    assert rows[1] - rows[0] >= 5  # Without landmarks the tilt stays.


def test_eye_angle_without_landmarks_is_zero():
    assert eye_angle(Face(Box(0, 0, 10, 10), 1.0)) == 0.0
    assert eye_angle(Face(Box(0, 0, 10, 10), 1.0, {"nose": (5, 5)})) == 0.0
