"""Read the expression on every face in an image: detect, crop, classify in one batch (drawn by fer.serve.drawing).

`Classifier` wraps a loaded model (an ONNX model on onnxruntime, or a Keras model) and classifies
batches of 48×48 crops through its `predict_on_batch` (for Keras, about 20× faster per call than
`model.predict`, which sets up a whole prediction loop each time). `predict_file` turns one uploaded
file into an `ImageResult` and never raises: a broken file becomes a result with an `error`, so a batch always finishes.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image

from fer.errors import FerError, in_words
from fer.serve.detection import Box, Face, FaceDetector, crop_face
from fer.data.images import open_image, to_rgb
from fer.labels import CLASSES, EMOJI, IMAGE_SIZE

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FacePrediction:
    """The expression read from one face (or from the whole image when `whole_image`)."""

    box: Box
    label: str
    confidence: float  # The top class's probability.
    probabilities: dict[str, float]  # Every class's probability, in the model's class order.
    score: float | None = None  # The detector's confidence in the face; None for a whole image.
    whole_image: bool = False
    # The (48, 48) uint8 crop the model read, so Grad-CAM explains the very same face without detecting again.
    crop: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def emoji(self) -> str:
        return EMOJI.get(self.label, "")

    def caption(self) -> str:
        """e.g. 'happy 😄 87%'."""
        return " ".join(part for part in (self.label, self.emoji, f"{self.confidence:.0%}") if part)


class Classifier:
    """A loaded model that turns batches of 48×48 uint8 crops into class probabilities.

    Thread-safe: the webcam worker and the page's own thread may share one instance.
    """

    def __init__(self, model, classes: Sequence[str] = CLASSES, *, batch_size: int = 64):
        self.model = model
        self.classes = tuple(classes)
        self.batch_size = batch_size  # Bounds memory when an image holds hundreds of faces.
        expected_input = (None, IMAGE_SIZE, IMAGE_SIZE, 1)
        if tuple(model.input_shape) != expected_input:
            raise FerError(f"the model takes inputs of shape {model.input_shape}; expected {expected_input}")
        if model.output_shape[-1] != len(self.classes):
            raise FerError(f"the model has {model.output_shape[-1]} outputs but its card names "
                           f"{len(self.classes)} classes")
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path) -> Classifier:
        """Load a FER Studio model for serving (its ONNX file when there is one, see fer.serve.runtime)
        with its card's class names; FerError if it cannot be loaded."""
        from fer.serve.runtime import load_for_serving

        served = load_for_serving(path)
        return cls(served.model, served.card.classes)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """(N, C) float32 probabilities for (N, 48, 48) uint8 crops (rows in the input order)."""
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        pixels = crops.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1).astype(np.float32)  # (N, 48, 48, 1), 0..255
        if len(pixels) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        with self._lock:
            batches = [np.asarray(self.model.predict_on_batch(pixels[start:start + self.batch_size]))
                       for start in range(0, len(pixels), self.batch_size)]
        return np.concatenate(batches).astype(np.float32)

    def classify(self, crops: np.ndarray, boxes: Sequence[Box], scores: Sequence[float | None] = (),
                 *, whole_image: bool = False) -> list[FacePrediction]:
        """One FacePrediction per crop, each tied to the box it came from."""
        probabilities = self.probabilities(crops)
        scores = list(scores) or [None] * len(boxes)
        predictions = []
        crops = np.asarray(crops).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        for box, score, row, crop in zip(boxes, scores, probabilities, crops):
            best = int(np.argmax(row))
            predictions.append(FacePrediction(
                box=box, label=self.classes[best], confidence=float(row[best]),
                probabilities={name: float(p) for name, p in zip(self.classes, row)},
                score=score, whole_image=whole_image, crop=crop,
            ))
        return predictions

    def warm_up(self) -> None:
        """Run one face now (Keras traces its predict function), so the first real face is not slow."""
        self.probabilities(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8))


def whole_image_box(width: int, height: int) -> Box:
    """The centred square a 'classify the whole image' prediction reads (aspect ratio kept)."""
    side = min(width, height)
    return Box((width - side) // 2, (height - side) // 2, side, side)


def predict_image(image: np.ndarray, classifier: Classifier, detector: FaceDetector, *,
                  whole_image: bool = False) -> list[FacePrediction]:
    """Every face in an (H, W, 3) RGB uint8 image, left to right, each classified.

    With `whole_image=True` an image where no face is found is read as one face (its
    centred square) and returns one prediction with `whole_image` set.
    """
    faces = detector.detect(image)
    if not faces and whole_image:
        box = whole_image_box(image.shape[1], image.shape[0])
        return [replace(prediction, whole_image=True, score=None)
                for prediction in classify_faces(image, [Face(box, 1.0)], classifier)]
    return classify_faces(image, faces, classifier)


def classify_faces(image: np.ndarray, faces: Sequence[Face], classifier: Classifier) -> list[FacePrediction]:
    """Crop each face from an (H, W, 3) RGB or (H, W) gray image and classify them in one batch."""
    if not faces:
        return []
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    crops = np.stack([crop_face(gray, face) for face in faces])  # (N, 48, 48)
    return classifier.classify(crops, [face.box for face in faces], [face.score for face in faces])


# --- Files in, results out ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageResult:
    """What one uploaded file gave: its decoded image and faces, or an error message."""

    name: str
    image: np.ndarray | None = None  # (H, W, 3) RGB as analysed (large images are downscaled).
    faces: tuple[FacePrediction, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())  # e.g. "GIF with 12 frames: the first frame was used".

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def no_face(self) -> bool:
        return self.ok and not self.faces


def predict_file(name: str, data: bytes, classifier: Classifier, detector: FaceDetector, *,
                 whole_image: bool = False) -> ImageResult:
    """Decode and predict one file; any problem becomes `ImageResult.error`, never an exception."""
    try:
        image = open_image(data)
        notes = _decode_notes(data, image)
        rgb = to_rgb(image)
        faces = predict_image(rgb, classifier, detector, whole_image=whole_image)
    except FerError as error:
        return ImageResult(name, error=str(error))
    except Exception as error:  # One odd file must not stop the batch: the user gets words, the log the exception.
        _LOG.exception("could not analyse %s", name)
        return ImageResult(name, error=in_words(error))
    return ImageResult(name, rgb, tuple(faces), notes=notes)


def predict_files(files: Iterable[tuple[str, bytes]], classifier: Classifier, detector: FaceDetector, *,
                  whole_image: bool = False) -> list[ImageResult]:
    """`predict_file` over (name, bytes) pairs, in order."""
    return [predict_file(name, data, classifier, detector, whole_image=whole_image) for name, data in files]


_MODE_NAMES = {"CMYK": "CMYK", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
               "I": "32-bit integer grayscale", "F": "32-bit float grayscale", "YCbCr": "YCbCr", "LAB": "Lab"}


def _decode_notes(data: bytes, decoded: Image.Image) -> tuple[str, ...]:
    """What the decoder had to do to this file, for the user to see."""
    notes = []
    try:
        original = Image.open(io.BytesIO(data))
    except Exception:
        return ()
    if getattr(original, "n_frames", 1) > 1:
        notes.append(f"{original.format} with {original.n_frames} frames: the first frame was used")
    if original.size != decoded.size and sorted(original.size) != sorted(decoded.size):
        notes.append(f"downscaled from {original.width}×{original.height} to {decoded.width}×{decoded.height}")
    if original.mode not in ("RGB", "L", "RGBA", "P", "LA", "PA"):
        notes.append(f"converted from {_MODE_NAMES.get(original.mode, original.mode)}")
    return tuple(notes)


# --- Tables and JSON ----------------------------------------------------------------------------


def prediction_json(result: ImageResult) -> dict:
    """A JSON-ready dict: the file, its faces (box, label, confidence, probabilities by class), any error."""
    return {
        "file": result.name,
        "error": result.error,
        "width": None if result.image is None else int(result.image.shape[1]),
        "height": None if result.image is None else int(result.image.shape[0]),
        "faces": [face_json(face) for face in result.faces],
    }


def face_json(face: FacePrediction) -> dict:
    """One face as JSON: box, label, confidence, probabilities by class, detector score, whole image?"""
    return {
        "box": face.box._asdict(),
        "label": face.label,
        "confidence": round(face.confidence, 6),
        "probabilities": {name: round(p, 6) for name, p in face.probabilities.items()},
        "detector_score": None if face.score is None else round(face.score, 4),
        "whole_image": face.whole_image,
    }


def results_table(results: Sequence[ImageResult], classes: Sequence[str] = CLASSES):
    """A pandas DataFrame, one row per face (and one per file without faces or with an error)."""
    import pandas as pd

    rows = []
    for result in results:
        base = {"file": result.name}
        if not result.ok or not result.faces:
            note = f"error: {result.error}" if result.error else "no face found"
            rows.append({**base, "face": "", "note": note})
            continue
        for number, face in enumerate(result.faces, start=1):
            rows.append({
                **base, "face": "whole image" if face.whole_image else str(number), **face.box._asdict(),
                "label": face.label, "confidence": face.confidence,
                **{name: face.probabilities.get(name) for name in classes}, "note": "",
            })
    columns = ["file", "face", "x", "y", "width", "height", "label", "confidence", *classes, "note"]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("x", "y", "width", "height"):
        table[column] = table[column].astype("Int64")  # Integers, with blanks for rows without a face.
    for column in ("confidence", *classes):
        table[column] = table[column].astype("float64")
    return table
