"""Face detection and cropping (fer.serve.detection): YuNet, the default, on turned, grouped, large and absent
faces in scikit-image's real photos; Haar and MTCNN; boxes, configs and 48×48 crops."""

from __future__ import annotations

import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data

from fer.errors import FerError
from fer.paths import MODELS_DIR
from fer.serve.detection import (DEFAULT_DETECTOR, DETECTORS, PHOTO_CONFIG, VIDEO_CONFIG, VIDEO_FILE_CONFIG, Box,
                                 DetectorConfig, Face, HaarDetector, YuNetDetector, crop_face, eye_angle,
                                 make_detector)
from fer.serve.prediction import Classifier, predict_image

# Where the astronaut's face is in skimage's 512×512 photo (measured once, by eye and by both detectors).
ASTRONAUT_FACE = Box(177, 66, 95, 95)


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return make_detector("yunet")


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_path(MODELS_DIR / "fer2013.keras")


def portraits() -> list[np.ndarray]:
    """Head-and-shoulders crops of the two photos of people scikit-image ships (RGB)."""
    astronaut = data.astronaut()[10:330, 60:380]
    cameraman = np.stack([data.camera()[30:300, 90:360]] * 3, axis=-1)
    return [astronaut, cameraman]


def centre_in(box: Box, left: int, top: int, side: int) -> bool:
    x, y = box.x + box.width / 2, box.y + box.height / 2
    return left <= x < left + side and top <= y < top + side


def test_yunet_is_the_default_and_listed_first():
    assert DEFAULT_DETECTOR == DETECTORS[0] == "yunet"
    assert isinstance(make_detector(), YuNetDetector)
    assert {"haar", "mtcnn"} <= set(DETECTORS)


def test_yunet_finds_the_astronaut_with_five_landmarks_named_as_seen(yunet):
    [face] = yunet.detect(data.astronaut())
    assert face.box.iou(ASTRONAUT_FACE) > 0.5
    assert PHOTO_CONFIG.yunet_min_score <= face.score <= 1
    marks = face.landmarks
    assert set(marks) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert marks["left_eye"][0] < marks["nose"][0] < marks["right_eye"][0]  # Left as seen in the image.
    assert marks["mouth_left"][0] < marks["mouth_right"][0]
    assert max(marks["left_eye"][1], marks["right_eye"][1]) < marks["nose"][1] < marks["mouth_left"][1]
    assert abs(eye_angle(face)) < 5  # She holds her head upright.


@pytest.mark.parametrize("turn", [30, -30])
def test_a_turned_face_is_found_and_read_right(yunet, shipped, turn):
    canvas = np.full((900, 900, 3), 200, np.uint8)
    canvas[194:706, 194:706] = data.astronaut()
    rotation = cv2.getRotationMatrix2D((450, 450), turn, 1.0)
    turned = cv2.warpAffine(canvas, rotation, (900, 900), borderValue=(200, 200, 200))
    [prediction] = predict_image(turned, shipped, yunet)
    centre = rotation @ (194 + ASTRONAUT_FACE.x + 47, 194 + ASTRONAUT_FACE.y + 47, 1)  # Her face's centre, turned.
    box = prediction.box
    assert np.hypot(box.x + box.width / 2 - centre[0], box.y + box.height / 2 - centre[1]) < 30
    assert prediction.label == "happy"  # As the model reads the upright photo.


def turned_cameraman(turn: float) -> tuple[np.ndarray, np.ndarray]:
    """The cameraman's face (260 px) on a 700² canvas turned by `turn` degrees, and the turn's (2, 3) matrix."""
    canvas = np.full((700, 700, 3), 128, np.uint8)
    canvas[220:480, 220:480] = np.stack([cv2.resize(data.camera()[40:250, 170:380], (260, 260))] * 3, axis=-1)
    rotation = cv2.getRotationMatrix2D((350, 350), turn, 1.0)
    return cv2.warpAffine(canvas, rotation, (700, 700), borderValue=(128, 128, 128)), rotation


def test_a_head_turned_too_far_for_one_search_is_found_by_searching_again_turned(yunet):
    [upright] = yunet.detect(turned_cameraman(0)[0])
    photo, rotation = turned_cameraman(-40)
    assert make_detector("yunet", DetectorConfig(retry_turns=())).detect(photo) == []  # One search misses him.
    [face] = yunet.detect(photo)
    centre = rotation @ (upright.box.x + upright.box.width / 2, upright.box.y + upright.box.height / 2, 1)
    assert np.hypot(face.box.x + face.box.width / 2 - centre[0], face.box.y + face.box.height / 2 - centre[1]) < 30
    # His landmarks come back from the turned search onto the photo, so the crop levels most of the turn.
    assert 20 < eye_angle(face) < 45


def test_the_search_again_runs_only_when_nothing_is_found(yunet, turned_searches):
    assert len(yunet.detect(data.astronaut())) == 1
    assert turned_searches == []
    assert yunet.detect(data.coffee()) == []
    assert turned_searches == list(PHOTO_CONFIG.retry_turns)
    assert yunet.detect(np.zeros((20, 20, 3), np.uint8)) == []  # Smaller than the smallest face: no search at all.
    assert turned_searches == list(PHOTO_CONFIG.retry_turns)
    # A video's next frame comes soon enough: the webcam and video files search once.
    assert VIDEO_CONFIG.retry_turns == VIDEO_FILE_CONFIG.retry_turns == ()
    assert replace(VIDEO_FILE_CONFIG, retry_turns=PHOTO_CONFIG.retry_turns) == PHOTO_CONFIG


def test_a_face_found_in_both_turned_searches_is_kept_once_the_surer(yunet, monkeypatch):
    def found(self, bgr, angle):  # Both turns find one face; the +30° turn also finds another, elsewhere.
        same = Face(Box(100, 100, 80, 100), 0.7 if angle > 0 else 0.9, {})
        return [same, Face(Box(400, 300, 60, 75), 0.8, {})] if angle > 0 else [same]

    monkeypatch.setattr(YuNetDetector, "_search_turned", found)
    faces = yunet.detect(np.full((600, 800, 3), 128, np.uint8))  # Nothing for the first search to find.
    assert [(face.box, face.score) for face in faces] == [(Box(100, 100, 80, 100), 0.9), (Box(400, 300, 60, 75), 0.8)]


def test_every_face_of_a_group_canvas_is_found(yunet):
    astronaut, cameraman = portraits()
    canvas = np.full((800, 1400, 3), 235, np.uint8)
    places = []
    for number, (photo, side) in enumerate([(astronaut, 300), (cameraman, 280), (astronaut[:, ::-1], 240),
                                            (cameraman[:, ::-1], 170), (astronaut, 200), (cameraman, 260)]):
        left, top = 60 + (number % 3) * 460, 60 + (number // 3) * 380
        canvas[top:top + side, left:left + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        places.append((left, top, side))
    faces = yunet.detect(canvas)
    assert len(faces) == 6
    assert all(any(centre_in(face.box, *place) for face in faces) for place in places)  # One in each portrait.


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket", "brick", "grass", "gravel"])
def test_face_free_photos_give_no_face(yunet, name):
    assert yunet.detect(getattr(data, name)()) == []


def test_the_face_in_a_9000x6000_photo_is_found(yunet):
    photo = np.full((6000, 9000, 3), 90, np.uint8)
    photo[1500:3548, 3500:5548] = cv2.resize(data.astronaut(), (2048, 2048), interpolation=cv2.INTER_LINEAR)
    [face] = yunet.detect(photo)
    expected = Box(3500 + ASTRONAUT_FACE.x * 4, 1500 + ASTRONAUT_FACE.y * 4, ASTRONAUT_FACE.width * 4,
                   ASTRONAUT_FACE.height * 4)
    assert face.box.iou(expected) > 0.5
    assert 3500 < face.landmarks["left_eye"][0] < face.landmarks["right_eye"][0] < 5548  # Mapped back to full size.


def test_webcam_settings_find_a_face_in_a_frame():
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(data.astronaut(), (512, 480))
    [face] = make_detector("yunet", VIDEO_CONFIG).detect(frame)
    assert face.box.iou(Box(64 + 177, round(66 * 480 / 512), 95, round(95 * 480 / 512))) > 0.4


def test_threads_sharing_one_detector_get_their_own_answers(yunet):
    """setInputSize and detect are one step under the lock: images of other sizes must not interleave."""
    small, large = (cv2.resize(data.astronaut(), (side, side)) for side in (320, 480))
    expected = {id(image): yunet.detect(image)[0].box for image in (small, large)}
    wrong = []

    def work(image):
        for _ in range(10):
            got = yunet.detect(image)
            if len(got) != 1 or got[0].box.iou(expected[id(image)]) < 0.9:
                wrong.append(got)

    threads = [threading.Thread(target=work, args=(image,)) for image in (small, large)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_yunet_accepts_grayscale_and_rejects_non_images(yunet):
    [face] = yunet.detect(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY))
    assert face.box.iou(ASTRONAUT_FACE) > 0.5
    assert yunet.detect(np.zeros((20, 20, 3), np.uint8)) == []  # Smaller than the smallest face searched for.
    with pytest.raises(ValueError, match="uint8"):
        yunet.detect(np.zeros((100, 100, 3), np.float32))


def test_rows_of_infinities_from_yunet_are_no_face(yunet, monkeypatch):
    class Net:  # What YuNet has returned (rarely) for an input not much larger than its smallest face.
        def setInputSize(self, size):
            pass

        def detect(self, image):
            return 1, np.array([[np.inf] * 14 + [0.9], [10, 10, 30, 30] + [15.0] * 10 + [0.8]], np.float32)

    monkeypatch.setattr(yunet, "_net", Net())
    [face] = yunet.detect(np.zeros((64, 64, 3), np.uint8))
    assert face.box == Box(10, 10, 30, 30) and face.score == pytest.approx(0.8)


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(FerError, match="YuNet face detector could not be loaded"):
        YuNetDetector(PHOTO_CONFIG, tmp_path / "nothing.onnx")


@pytest.mark.parametrize("score", [-0.1, 1.5])
def test_the_score_threshold_is_validated(score):
    with pytest.raises(ValueError, match="yunet_min_score"):
        DetectorConfig(yunet_min_score=score)


# --- Haar, MTCNN, boxes and crops ------------------------------------------------------------------


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
