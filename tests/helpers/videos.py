"""Videos a test writes (the astronaut moving, then an empty wall) and stand-ins that read them predictably."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

from fer.labels import CLASSES
from fer.serve.detection import Box, Face
from fer.serve.prediction import FacePrediction


def face_frame(shift: int = 0) -> np.ndarray:
    """A 640×480 frame holding the astronaut's photo, nudged sideways by `shift` pixels."""
    frame = np.full((480, 640, 3), 70, np.uint8)
    frame[:, 80 + shift:560 + shift] = np.asarray(Image.fromarray(data.astronaut()).resize((480, 480)))
    return frame


EMPTY = np.full((480, 640, 3), 70, np.uint8)


def write_mp4(path: Path, frames, fps: int = 10, codec: str = "libx264") -> Path:
    """A video of these RGB frames; the container follows the file's suffix (.mp4, .mov, .webm...)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


class FakeDetector:
    """One face at a fixed box in any frame brighter than the empty background; keeps the frames it saw."""

    name = "fake"

    def __init__(self):
        self.images = []

    def detect(self, image):
        self.images.append(image)
        return [Face(Box(200, 100, 200, 200), 0.99)] if image.mean() > 80 else []


class FakeClassifier:
    """Reads every face as 'happy' with probability 0.9; counts the faces it was given."""

    classes = CLASSES

    def __init__(self):
        self.faces = 0

    def classify(self, crops, boxes, scores=()):
        self.faces += len(boxes)
        row = {name: 0.1 / (len(CLASSES) - 1) for name in CLASSES} | {"happy": 0.9}
        return [FacePrediction(box, "happy", 0.9, row, 0.99) for box in boxes]
