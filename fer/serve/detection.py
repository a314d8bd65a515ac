"""Find faces in an image and cut them out as the 48×48 crops the models read.

Three detectors, none downloaded at run time:
- "yunet" (the default): OpenCV's YuNet CNN (`cv2.FaceDetectorYN`) from the ONNX file vendored in
  models/detectors/. About 6-13 ms for a 512² photo on 2 cores; finds turned, small and many faces,
  and returns five landmarks (eyes, nose, mouth corners), which `crop_face` uses to level the eyes.
- "haar": OpenCV's frontal-face Haar cascade (`cv2.data.haarcascades`). Misses turned faces and
  takes 45-115 ms for a 512² photo; kept as an option.
- "mtcnn": the `mtcnn` package's three-stage CNN (runs on TensorFlow). Slow (about 300 ms a frame),
  with the same five landmarks.

Every detector searches a copy downscaled to `DetectorConfig.max_side`, so a 54 MP photo costs
about what a 1 MP one does. When YuNet finds no face in a photo it searches again with the photo
turned ±30° (`DetectorConfig.retry_turns`), which finds heads tilted too far for one pass.

Any object with `name` and `detect(rgb) -> list[Face]` is a detector (`FaceDetector`), so tests
and callers can pass their own.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.paths import MODELS_DIR

DETECTORS: tuple[str, ...] = ("yunet", "haar", "mtcnn")
DEFAULT_DETECTOR = "yunet"
YUNET_MODEL = MODELS_DIR / "detectors" / "face_detection_yunet_2023mar.onnx"  # Vendored; see its README.md.


class Box(NamedTuple):
    """A face's bounding box in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    def scaled(self, factor: float) -> Box:
        """This box in an image `factor` times the size."""
        return Box(*(int(round(value * factor)) for value in self))

    def iou(self, other: Box) -> float:
        """Intersection over union with another box (0 when they do not overlap)."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        overlap = Box(left, top, right - left, bottom - top).area if right > left and bottom > top else 0
        union = self.area + other.area - overlap
        return overlap / union if union else 0.0


class Face(NamedTuple):
    """One detected face.

    `score` is the detector's confidence: YuNet's or MTCNN's score in 0..1, or the Haar cascade's
    final-stage weight (unbounded; larger is surer). `landmarks` maps "left_eye", "right_eye",
    "nose", "mouth_left", "mouth_right" (left as seen in the image) to (x, y) pixels, or is None.
    """

    box: Box
    score: float
    landmarks: dict[str, tuple[float, float]] | None = None


class FaceDetector(Protocol):
    """What prediction needs from a detector."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an (H, W, 3) RGB or (H, W) grayscale uint8 image, left to right."""
        ...


@dataclass(frozen=True)
class DetectorConfig:
    """How hard to look for faces: `PHOTO_CONFIG` for photos, `VIDEO_FILE_CONFIG` for video files,
    `VIDEO_CONFIG` for the webcam."""

    max_side: int = 1024  # Search a copy at most this big: group-photo faces survive, 12 MP stays fast.
    min_face_fraction: float = 0.04  # Smallest face searched for, as a fraction of the shorter side.
    min_face_pixels: int = 24  # Haar's native window; smaller faces hold too little for a 48×48 model.
    scale_factor: float = 1.1  # Haar pyramid step: 1.1 finds more faces than 1.2 at about twice the cost.
    min_neighbors: int = 5  # Haar hits that must overlap to count as a face; fewer means more false faces.
    # Haar candidates whose final-stage weight is below this are dropped: the false faces we saw
    # (reflections on a space helmet at various scales) weighed 0.7-1.8, while 98% of the FER2013
    # faces the cascade found weighed over 2.0 (1st percentile 1.9, median 6.3; 287 faces).
    haar_min_weight: float = 2.0
    mtcnn_min_score: float = 0.9  # MTCNN faces less certain than this are dropped.
    # YuNet faces scoring below this are dropped. Chosen on FER2013 validation faces pasted into
    # scenes (bench_detection.py accuracy): the lowest threshold at which under 1% of ordinary photo
    # and gradient scenes show a false face (0.8% at 0.6, 1.7% at 0.5), still finding 95.9% of faces.
    yunet_min_score: float = 0.6
    # When YuNet finds no face at all, it searches again in the image turned by each of these angles
    # (degrees): it misses many faces turned by 20-40°. On pasted FER2013 faces (bench_detection.py
    # accuracy) this found 98.3% instead of 95.9%, and false faces stayed rare (3 of 869 face-free
    # photo and gradient scenes). It costs only where no face is found: about 4× the one search there.
    retry_turns: tuple[float, ...] = (30.0, -30.0)

    def __post_init__(self):
        if self.max_side < 48:
            raise ValueError(f"max_side must be at least 48, got {self.max_side}")
        if not 0 <= self.min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {self.min_face_fraction}")
        if self.scale_factor <= 1:
            raise ValueError(f"scale_factor must be above 1, got {self.scale_factor}")
        if not 0 <= self.yunet_min_score <= 1:
            raise ValueError(f"yunet_min_score must be in [0, 1], got {self.yunet_min_score}")


PHOTO_CONFIG = DetectorConfig()
# A webcam face fills a good part of the frame, so a 320 px copy and a 15% minimum face size suffice:
# YuNet then takes about 2 ms a 640×480 frame (6-10 ms at 640 px), and for Haar the size and a
# coarser pyramid step keep the cascade to about a dozen levels (~20 CPU ms a frame).
# The webcam does not search again when a frame has no face: the next frame comes within 70 ms.
VIDEO_CONFIG = DetectorConfig(max_side=320, min_face_fraction=0.15, scale_factor=1.2, retry_turns=())
# Video files: faces can be small, as in photos, but a frame without a face is not searched again (that
# made a faceless 720p clip take 4.2× as long; the next sampled frame comes 0.1 s later).
VIDEO_FILE_CONFIG = replace(PHOTO_CONFIG, retry_turns=())


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk so its longer side is at most `max_side`, and the factor used."""
    factor = min(1.0, max_side / max(image.shape[:2]))
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] < 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) uint8 image, got {image.dtype} {image.shape}")


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, run on a downscaled, histogram-equalised copy."""

    name = "haar"
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, config: DetectorConfig = PHOTO_CONFIG):
        self.config = config
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + self.CASCADE)
        if self._cascade.empty():
            raise FerError(f"OpenCV's {self.CASCADE} is missing; reinstall opencv-python-headless (<5)")
        # One cascade object is not safe to share across threads (uploads and the webcam worker).
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        _check_image(image)
        small, factor = _downscaled(_gray(image), self.config.max_side)
        smallest = max(self.config.min_face_pixels, int(min(small.shape) * self.config.min_face_fraction))
        if min(small.shape) < smallest:
            return []
        with self._lock:
            boxes, _, weights = self._cascade.detectMultiScale3(
                cv2.equalizeHist(small), scaleFactor=self.config.scale_factor,
                minNeighbors=self.config.min_neighbors, minSize=(smallest, smallest), outputRejectLevels=True,
            )
        faces = [Face(Box(*map(int, box)).scaled(1 / factor), float(weight))
                 for box, weight in zip(boxes, np.ravel(weights)) if weight >= self.config.haar_min_weight]
        return sorted(faces, key=lambda face: face.box.x)


class YuNetDetector:
    """OpenCV's YuNet CNN (`cv2.FaceDetectorYN`, vendored ONNX), with eye, nose and mouth landmarks."""

    name = "yunet"
    NMS_THRESHOLD = 0.3  # OpenCV's default: boxes overlapping more than this are one face.
    # YuNet names its landmarks from the subject's side: its "right eye" is the one on the image's
    # left in an upright face. Ours name the image's side (as MTCNN's do), so eye_angle reads both.
    LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    def __init__(self, config: DetectorConfig = PHOTO_CONFIG, model_path=YUNET_MODEL):
        self.config = config
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), config.yunet_min_score,
                                                  self.NMS_THRESHOLD)
        except cv2.error as error:
            raise FerError(f"the YuNet face detector could not be loaded from {model_path} "
                           f"({str(error).strip().splitlines()[-1]})") from error
        # setInputSize then detect must not interleave across threads (uploads and the webcam worker).
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        _check_image(image)
        small, factor = _downscaled(image, self.config.max_side)
        if min(small.shape[:2]) < self._smallest(small):
            return []  # Too small to hold the smallest face searched for, turned or not.
        bgr = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR) if small.ndim == 2 else cv2.cvtColor(
            np.ascontiguousarray(small[..., :3]), cv2.COLOR_RGB2BGR)
        faces = self._search(bgr)
        if not faces and self.config.retry_turns:
            turned = [face for angle in self.config.retry_turns for face in self._search_turned(bgr, angle)]
            # One face found in several turned copies is kept once: the surest of the overlapping boxes.
            kept = cv2.dnn.NMSBoxes([list(face.box) for face in turned], [face.score for face in turned], 0.0,
                                    self.NMS_THRESHOLD)
            faces = [turned[index] for index in np.ravel(kept)]
        return sorted((_scaled(face, 1 / factor) for face in faces), key=lambda face: face.box.x)

    def _smallest(self, image: np.ndarray) -> int:
        """The smallest face searched for in `image`, in pixels."""
        return max(self.config.min_face_pixels, int(min(image.shape[:2]) * self.config.min_face_fraction))

    def _search(self, bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR image no larger than `max_side`, in its own pixels."""
        smallest = self._smallest(bgr)
        if min(bgr.shape[:2]) < smallest:
            return []
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)  # (N, 15): x, y, w, h, 5 landmarks (x, y), score; None if none
        faces = []
        # On inputs not much larger than its smallest face YuNet can return rows of infinities: no face.
        for row in [] if rows is None else rows[np.isfinite(rows).all(axis=1)]:
            box = Box(*(int(round(value)) for value in row[:4]))
            if min(box.width, box.height) < smallest:
                continue
            landmarks = {name: (float(x), float(y)) for name, (x, y) in zip(self.LANDMARKS, row[4:14].reshape(5, 2))}
            faces.append(Face(box, float(row[14]), landmarks))
        return faces

    def _search_turned(self, bgr: np.ndarray, angle: float) -> list[Face]:
        """Faces found in the image turned by `angle` degrees (counter-clockwise), mapped back onto it.

        The turned image, larger than the image, is shrunk to `max_side` like any photo. Searched
        unshrunk, at the image's own scale, the turned copies found false faces (mostly coins) in
        28 of 836 face-free photo and gradient scenes (bench_detection.py accuracy --dev); shrunk, in 2.
        A face keeps its box's size, centred where its centre maps back; its landmarks map back
        exactly, so `crop_face` levels it by the whole turn.
        """
        height, width = bgr.shape[:2]
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
        turn[:, 2] += (size[0] / 2 - width / 2, size[1] / 2 - height / 2)  # Nothing of the image is cut off.
        turned = cv2.warpAffine(bgr, turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        turned, shrink = _downscaled(turned, self.config.max_side)
        back = cv2.invertAffineTransform(turn)  # (2, 3): turned image → image
        faces = []
        for face in (_scaled(face, 1 / shrink) for face in self._search(turned)):
            box = face.box
            centre_x, centre_y = back @ (box.x + box.width / 2, box.y + box.height / 2, 1)
            landmarks = {name: tuple(float(value) for value in back @ (x, y, 1))
                         for name, (x, y) in face.landmarks.items()}
            faces.append(Face(Box(int(round(centre_x - box.width / 2)), int(round(centre_y - box.height / 2)),
                                  box.width, box.height), face.score, landmarks))
        return faces


def _scaled(face: Face, factor: float) -> Face:
    """A face found in an image `1 / factor` times the size, in this image's pixels."""
    if factor == 1.0:
        return face
    landmarks = face.landmarks and {name: (x * factor, y * factor) for name, (x, y) in face.landmarks.items()}
    return Face(face.box.scaled(factor), face.score, landmarks)


class MtcnnDetector:
    """The `mtcnn` package's detector (weights ship with it), with eye, nose and mouth landmarks."""

    name = "mtcnn"

    def __init__(self, config: DetectorConfig = PHOTO_CONFIG):
        self.config = config
        self._mtcnn = _shared_mtcnn()
        self._lock = _MTCNN_LOCK

    def detect(self, image: np.ndarray) -> list[Face]:
        _check_image(image)
        small, factor = _downscaled(_rgb(image), self.config.max_side)
        smallest = max(self.config.min_face_pixels, int(min(small.shape[:2]) * self.config.min_face_fraction))
        if min(small.shape[:2]) < smallest:
            return []
        try:
            with self._lock:
                found = self._mtcnn.detect_faces(small)
        except ValueError:
            # mtcnn 1.0 fails inside its image pyramid on some small or oddly shaped inputs,
            # where there is no face to find anyway.
            return []
        faces = []
        for item in found:
            box = Box(*map(int, item["box"])).scaled(1 / factor)
            if item["confidence"] < self.config.mtcnn_min_score or min(box.width, box.height) < smallest / factor:
                continue
            landmarks = {name: (float(x) / factor, float(y) / factor) for name, (x, y) in item["keypoints"].items()}
            faces.append(Face(box, float(item["confidence"]), landmarks))
        return sorted(faces, key=lambda face: face.box.x)


_MTCNN_LOCK = threading.Lock()  # One network shared by every MtcnnDetector, used by one thread at a time.


@functools.lru_cache(maxsize=1)
def _shared_mtcnn():
    """The MTCNN networks, built once per process (about 5 s: three Keras models)."""
    try:
        from mtcnn import MTCNN

        return MTCNN()
    except Exception as error:  # ImportError, or TensorFlow failing to start
        raise FerError(f"the MTCNN detector is unavailable ({type(error).__name__}: {error}); "
                       "use the haar detector, or pip install mtcnn") from error


def make_detector(name: str = DEFAULT_DETECTOR, config: DetectorConfig = PHOTO_CONFIG) -> FaceDetector:
    """A detector by name ("yunet", "haar" or "mtcnn"); FerError for any other name."""
    if name == "yunet":
        return YuNetDetector(config)
    if name == "haar":
        return HaarDetector(config)
    if name == "mtcnn":
        return MtcnnDetector(config)
    raise FerError(f"unknown face detector '{name}'; choose one of: {', '.join(DETECTORS)}")


def eye_angle(face: Face) -> float:
    """Degrees the eye line is tilted: positive when the eye on the image's right sits lower; 0 without eyes."""
    if not face.landmarks or "left_eye" not in face.landmarks or "right_eye" not in face.landmarks:
        return 0.0
    (left_x, left_y), (right_x, right_y) = face.landmarks["left_eye"], face.landmarks["right_eye"]
    return math.degrees(math.atan2(right_y - left_y, right_x - left_x))


def crop_face(gray: np.ndarray, face: Face, *, margin: float = 0.0, size: int = IMAGE_SIZE) -> np.ndarray:
    """A (size, size) uint8 crop of `face` from an (H, W) grayscale image.

    The crop is the square around the box's centre (side = longer box side × (1 + margin)),
    rotated so the eyes are level when the face has eye landmarks. Parts outside the image
    repeat the edge pixels, as FER2013's own crops of faces near the border do.
    """
    if gray.ndim != 2:
        raise ValueError(f"crop_face expects an (H, W) grayscale image, got shape {gray.shape}")
    box = face.box
    side = max(box.width, box.height, 1) * (1 + margin)
    centre = (box.x + box.width / 2, box.y + box.height / 2)
    if face.landmarks and "left_eye" in face.landmarks and "right_eye" in face.landmarks:
        # A positive angle turns the image counter-clockwise on screen, which levels a right-low eye line.
        rotation = cv2.getRotationMatrix2D(centre, eye_angle(face), 1.0)
    else:
        rotation = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = max(int(round(side)), 1)
    rotation[:, 2] += (out / 2 - centre[0], out / 2 - centre[1])  # (2, 3): box centre → crop centre
    crop = cv2.warpAffine(gray, rotation, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if out > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)
