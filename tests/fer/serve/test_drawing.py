"""Drawing results on photos (fer.serve.drawing): labelled boxes on a copy, and encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from fer.serve.detection import Box
from fer.serve.drawing import annotate, encode_image
from helpers.stand_ins import make_face
from fer.labels import CLASSES
from fer.serve.drawing import HIGHLIGHT_INK, tag_text
from fer.serve.prediction import FacePrediction


def test_annotate_draws_on_a_copy():
    image = np.full((200, 200, 3), 255, np.uint8)
    drawn = annotate(image, [make_face("sad", Box(50, 80, 100, 100))])
    assert (image == 255).all()  # The input is untouched.
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (drawn[130, 50] != 255).any()  # The box's left edge.
    assert (drawn[60:80, 50:150] != 255).any()  # The label tag above the box.
    assert (drawn[120:170, 70:130] == 255).all()  # The face itself is not painted over.


def test_annotate_handles_faces_at_the_top_edge_and_grayscale():
    drawn = annotate(np.zeros((100, 100), np.uint8), [make_face("surprise", Box(0, 0, 100, 100))])
    assert drawn.shape == (100, 100, 3)
    assert (drawn[2:10, 2:30] != 0).any()  # The tag moved inside the box.


def test_encode_image_round_trips():
    image = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert (np.asarray(Image.open(io.BytesIO(encode_image(image)))) == image).all()
    assert Image.open(io.BytesIO(encode_image(image, "JPEG"))).format == "JPEG"


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
