"""Faces drawn on a photo (fer/serve/drawing.py): numbered tags and a highlighted box."""

from __future__ import annotations

import numpy as np

from fer.labels import CLASSES
from fer.serve.detection import Box
from fer.serve.drawing import HIGHLIGHT_INK, annotate, tag_text
from fer.serve.prediction import FacePrediction


def _face(x: int, label: str = "happy", *, whole_image: bool = False) -> FacePrediction:
    probabilities = {name: (0.81 if name == label else 0.19 / 6) for name in CLASSES}
    return FacePrediction(Box(x, 60, 60, 60), label, 0.81, probabilities, whole_image=whole_image)


def test_tags_carry_the_number_beside_each_faces_chart():
    assert tag_text(_face(0), 2) == "2 · happy 81%"
    assert tag_text(_face(0)) == "happy 81%"
    photo = np.full((200, 300, 3), 90, np.uint8)
    faces = [_face(20), _face(150, "sad")]
    plain, numbered = annotate(photo, faces), annotate(photo, faces, numbered=True)
    assert not np.array_equal(plain, numbered)  # The numbers are drawn, not only counted.


def test_a_whole_image_read_is_not_passed_off_as_a_face():
    assert tag_text(_face(0, whole_image=True)) == "no face · read as happy 81%"


def test_the_highlighted_face_is_ringed_in_white():
    photo = np.full((200, 300, 3), 90, np.uint8)
    faces = [_face(20), _face(150, "sad")]
    white = np.array([int(HIGHLIGHT_INK[i:i + 2], 16) for i in (1, 3, 5)])

    def ringed(image: np.ndarray, box: Box) -> bool:  # White just outside the box's left edge.
        return bool(np.all(image[box.y + box.height // 2, box.x - 3] == white))

    chosen = annotate(photo, faces, highlight=1)
    assert ringed(chosen, faces[1].box) and not ringed(chosen, faces[0].box)
    assert not ringed(annotate(photo, faces), faces[1].box)
