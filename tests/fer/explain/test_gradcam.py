"""Grad-CAM: maps for every preset and the shipped ensemble, and the occlusion property on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer.explain.gradcam import GradCam, hottest_square, networks, overlay
from fer.labels import CLASSES
from fer.model.files import load_model
from fer.model.presets import build_model, ensemble
from fer.paths import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "models" / "fer2013.keras"
OCCLUDER = 16  # A black 16×16 square: about a mouth or an eye at 48×48; decided before measuring FER2013.
SEEN = np.zeros((48, 48), bool)
SEEN[4:44, 4:44] = True  # The shipped networks see the centre 40×40.


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED)[0]


def _astronaut_face() -> np.ndarray:
    """scikit-image's astronaut photo, her face (found once by OpenCV's Haar detector) with a 15% margin."""
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    x, y, side = 177, 66, 95
    margin = int(side * 0.15)
    return cv2.resize(gray[y - margin:y + side + margin, x - margin:x + side + margin], (48, 48),
                      interpolation=cv2.INTER_AREA)


def _occlusion_drops(model, faces, heatmaps) -> tuple[np.ndarray, np.ndarray]:
    """The fall in each face's explained-class probability when its hottest / coldest seen square goes black."""
    occluded = []
    for face, heat in zip(faces, heatmaps.maps):
        for coldest in (False, True):
            top, left = hottest_square(heat, OCCLUDER, coldest=coldest, within=SEEN)
            copy = face.copy()
            copy[top:top + OCCLUDER, left:left + OCCLUDER] = 0
            occluded.append(copy)
    after = np.asarray(model.predict_on_batch(np.stack(occluded)[..., None].astype(np.float32)))
    rows = np.arange(len(faces))
    before = heatmaps.probabilities[rows, heatmaps.classes]
    return before - after[2 * rows, heatmaps.classes], before - after[2 * rows + 1, heatmaps.classes]


@pytest.mark.parametrize("preset", ["seed", "tiny", "vgg40"])
def test_every_preset_gets_a_map_in_0_1(preset):
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    maps = GradCam(build_model(preset))(faces)
    assert maps.maps.shape == (3, 48, 48) and maps.maps.dtype == np.float32
    assert maps.maps.min() >= 0 and maps.maps.max() <= 1
    assert maps.probabilities.shape == (3, len(CLASSES))


def test_a_cropping_network_has_no_heat_outside_its_crop():
    model = build_model("vgg40")
    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    maps = GradCam(model)(faces, classes=[0, 1, 2, 3]).maps
    assert np.all(maps[:, ~SEEN] == 0)
    assert maps[:, SEEN].max() > 0


def test_an_ensemble_map_is_the_mean_of_its_networks_maps():
    members = [build_model("tiny") for _ in range(2)]
    faces = np.random.default_rng(2).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    model = ensemble(members)
    assert len(networks(model)) == 2
    own = [GradCam(member)(faces, classes=[4, 4]).maps for member in members]
    mean = np.mean(own, axis=0)
    mean /= mean.reshape(2, -1).max(axis=1).reshape(2, 1, 1)
    np.testing.assert_allclose(GradCam(model)(faces, classes=[4, 4]).maps, mean, atol=1e-5)


def test_the_shipped_ensemble_is_explained_through_its_three_networks(shipped):
    assert [network.name for network in networks(shipped)] == ["member_1", "member_2", "member_3"]


def test_occluding_the_astronauts_hot_region_costs_more_than_a_cold_one(shipped):
    face = _astronaut_face()
    heatmaps = GradCam(shipped)(face[None])
    assert CLASSES[heatmaps.classes[0]] == "happy"
    hot, cold = _occlusion_drops(shipped, face[None], heatmaps)
    assert hot[0] > cold[0] + 0.1


def test_on_fer2013_faces_the_hot_region_holds_the_evidence(shipped, shared_zip):
    from fer.data.datasets import open_dataset

    faces = open_dataset(shared_zip).split("validation").images[:64]
    heatmaps = GradCam(shipped)(faces)
    hot, cold = _occlusion_drops(shipped, faces, heatmaps)
    assert np.mean(hot > cold) >= 0.7
    assert hot.mean() > 3 * max(cold.mean(), 0.01)


def test_overlay_is_an_rgb_face():
    face = np.full((48, 48), 128, np.uint8)
    heat = np.zeros((48, 48), np.float32)
    heat[10:20, 10:20] = 1
    picture = overlay(face, heat)
    assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8
    assert not np.array_equal(picture[15, 15], picture[40, 40])


def test_a_wrong_sized_face_is_refused_in_words():
    from fer.errors import FerError

    with pytest.raises(FerError, match="48×48 grayscale"):
        GradCam(build_model("tiny"))(np.zeros((2, 32, 32), np.uint8))
