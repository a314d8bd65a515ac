"""Drawing results on photos (fer.serve.drawing): labelled boxes on a copy, and encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from fer.serve.detection import Box
from fer.serve.drawing import annotate, encode_image
from helpers.stand_ins import make_face


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
