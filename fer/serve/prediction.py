"""Read the expression on every face in an image: detect, crop, classify in one batch, draw.

`Classifier` wraps a loaded model and classifies batches of 48×48 crops through Keras's compiled
`predict_on_batch` (about 20× faster per call than `model.predict`, which sets up a whole
prediction loop each time). `predict_file` turns one uploaded file into an `ImageResult`
and never raises: a broken file becomes a result with an `error`, so a batch always finishes.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fer.errors import FerError
from fer.serve.detection import Box, Face, FaceDetector, crop_face
from fer.data.images import open_image, to_rgb
from fer.labels import CLASSES, EMOJI, IMAGE_SIZE

# One colour per class for boxes, label tags and charts.
CLASS_COLORS: dict[str, str] = {
    "angry": "#E53935",
    "disgust": "#7CB342",
    "fear": "#8E24AA",
    "happy": "#FBC02D",
    "neutral": "#78909C",
    "sad": "#1E88E5",
    "surprise": "#FB8C00",
}
FALLBACK_COLOR = "#6C5CE7"  # For class names a custom model brings that are not ours.


@dataclass(frozen=True)
class FacePrediction:
    """The expression read from one face (or from the whole image when `whole_image`)."""

    box: Box
    label: str
    confidence: float  # The top class's probability.
    probabilities: dict[str, float]  # Every class's probability, in the model's class order.
    score: float | None = None  # The detector's confidence in the face; None for a whole image.
    whole_image: bool = False

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
        """Load a FER Studio .keras model (and its card's class names); FerError if it cannot be loaded."""
        from fer.model.files import load_model

        model, card = load_model(path)
        return cls(model, card.classes)

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
        for box, score, row in zip(boxes, scores, probabilities):
            best = int(np.argmax(row))
            predictions.append(FacePrediction(
                box=box, label=self.classes[best], confidence=float(row[best]),
                probabilities={name: float(p) for name, p in zip(self.classes, row)},
                score=score, whole_image=whole_image,
            ))
        return predictions

    def warm_up(self) -> None:
        """Trace the compiled predict function now, so the first real face is not slow."""
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
    except Exception as error:  # One odd file must not stop the batch; the message names the cause.
        return ImageResult(name, error=f"could not analyse this image ({type(error).__name__}: {error})")
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


# --- Pictures -----------------------------------------------------------------------------------


def probability_figure(face: FacePrediction):
    """A plotly horizontal bar chart of one face's class probabilities, the top class highlighted."""
    import plotly.graph_objects as go

    names = list(face.probabilities)[::-1]  # First class on top.
    values = [face.probabilities[name] for name in names]
    figure = go.Figure(go.Bar(
        x=values, y=[f"{EMOJI.get(name, '')} {name}" for name in names], orientation="h",
        marker_color=[CLASS_COLORS.get(name, FALLBACK_COLOR) for name in names],
        marker_opacity=[1.0 if name == face.label else 0.45 for name in names],
        text=[f"{value:.0%}" for value in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    figure.update_layout(
        height=40 + 28 * len(names), margin=dict(l=10, r=40, t=10, b=10), showlegend=False,
        xaxis=dict(range=[0, 1], tickformat=".0%", showgrid=True), yaxis=dict(automargin=True),
    )
    return figure


def annotate(image: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of an (H, W, 3) RGB image with each face's box, label, confidence and emoji drawn on it."""
    canvas = Image.fromarray(np.array(image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1)))
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(canvas.size) / 250))
    for face in faces:
        color = CLASS_COLORS.get(face.label, FALLBACK_COLOR)
        x, y, width, height = face.box
        draw.rectangle([x, y, x + width - 1, y + height - 1], outline=color, width=line)
        _draw_tag(draw, face, color, canvas.size)
    return np.asarray(canvas)


def _draw_tag(draw: ImageDraw.ImageDraw, face: FacePrediction, color: str, image_size: tuple[int, int]) -> None:
    """The label tag: [emoji icon][label NN%] on the class colour, above the box (inside it at the top edge)."""
    font_size = int(np.clip(face.box.width / 6, 12, 40))
    font = _font(font_size)
    text = f"{face.label} {face.confidence:.0%}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, font_size // 6)
    icon = font_size + pad
    tag_width, tag_height = icon + (right - left) + 3 * pad, max(bottom - top, icon) + 2 * pad
    x = int(np.clip(face.box.x, 0, max(image_size[0] - tag_width, 0)))
    y = face.box.y - tag_height if face.box.y >= tag_height else face.box.y
    draw.rectangle([x, y, x + tag_width, y + tag_height], fill=color)
    draw_emoji(draw, face.label, x + pad, y + (tag_height - icon) // 2, icon)
    text_y = y + (tag_height - (bottom - top)) / 2 - top
    draw.text((x + icon + 2 * pad - left, text_y), text, fill=_ink_on(color), font=font)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed.


def _ink_on(color: str) -> str:
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#111111" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#FFFFFF"


# Face colours of the drawn emoji: most are yellow, a few expressions change colour like their emoji do.
_EMOJI_FACE = {"angry": "#FF7043", "disgust": "#AED581", "fear": "#B3E5FC"}


def draw_emoji(draw: ImageDraw.ImageDraw, label: str, x: int, y: int, size: int) -> None:
    """Draw a small emoji-style face for `label` with `size`×`size` pixels at (x, y).

    Drawn from shapes because colour-emoji fonts are rarely installed on servers.
    """
    unit = size / 20  # Shapes below are laid out on a 20×20 grid.

    def at(*points: float) -> list[float]:
        return [x + p * unit if i % 2 == 0 else y + p * unit for i, p in enumerate(points)]

    ink = "#3E2723"
    stroke = max(1, round(1.4 * unit))
    draw.ellipse(at(0.5, 0.5, 19.5, 19.5), fill=_EMOJI_FACE.get(label, "#FFD54F"), outline=ink,
                 width=max(1, stroke // 2))
    big_eyes = label in ("surprise", "fear")
    for eye_x in (6.5, 13.5):
        if label == "disgust":
            draw.line(at(eye_x - 2, 8, eye_x + 2, 8), fill=ink, width=stroke)
        elif big_eyes:
            draw.ellipse(at(eye_x - 1.8, 6, eye_x + 1.8, 10), fill="#FFFFFF", outline=ink, width=stroke // 2 or 1)
            draw.ellipse(at(eye_x - 0.8, 7.2, eye_x + 0.8, 8.8), fill=ink)
        else:
            draw.ellipse(at(eye_x - 1.2, 6.8, eye_x + 1.2, 9.6), fill=ink)
    brows = {"angry": (3.5, 5.8), "fear": (5.0, 3.2), "sad": (5.2, 3.8), "surprise": (4.0, 4.0)}  # (outer, inner) y
    if label in brows:
        outer, inner = brows[label]
        draw.line(at(4, outer, 8.5, inner), fill=ink, width=stroke)
        draw.line(at(16, outer, 11.5, inner), fill=ink, width=stroke)
    if label == "happy":
        draw.chord(at(5, 8, 15, 16), 0, 180, fill=ink)
    elif label in ("sad", "angry"):
        draw.arc(at(6, 13, 14, 19), 200, 340, fill=ink, width=stroke)
    elif label == "surprise":
        draw.ellipse(at(8, 12, 12, 17), fill=ink)
    elif label == "fear":
        draw.rectangle(at(6.5, 13, 13.5, 16), fill=ink)
    elif label == "disgust":
        draw.line(at(6, 15, 8, 13.5, 10, 15, 12, 13.5, 14, 15), fill=ink, width=stroke)
    else:
        draw.line(at(6.5, 14.5, 13.5, 14.5), fill=ink, width=stroke)


def encode_image(image: np.ndarray, format: str = "PNG") -> bytes:
    """An RGB array encoded as PNG or JPEG bytes, for downloads."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format, **({"quality": 92} if format.upper() == "JPEG" else {}))
    return buffer.getvalue()
