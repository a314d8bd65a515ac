"""What the network sees: augmented previews through the training layers, penultimate features, 2-D maps."""

from __future__ import annotations

import numpy as np
import pytest

from fer.errors import FerError
from fer.explain.features import augmented_examples, capped_sample, feature_map, penultimate_features
from fer.model.augmentation import CROP_AUGMENTATION, NO_AUGMENTATION, SEED_AUGMENTATION
from fer.model.presets import build_model, ensemble

FACES = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)


def test_a_preview_is_the_faces_as_training_sees_them():
    grid = augmented_examples(FACES, SEED_AUGMENTATION, copies=4, seed=1)
    assert grid.shape == (3, 4, 48, 48) and grid.dtype == np.uint8
    assert not np.array_equal(grid[0, 0], grid[0, 1])  # Each copy is its own random draw.
    np.testing.assert_array_equal(grid, augmented_examples(FACES, SEED_AUGMENTATION, copies=4, seed=1))


def test_a_cropping_preset_previews_its_crop():
    assert augmented_examples(FACES, CROP_AUGMENTATION, copies=2).shape == (3, 2, 40, 40)


def test_without_augmentation_the_preview_is_the_face():
    grid = augmented_examples(FACES, NO_AUGMENTATION, copies=2)
    np.testing.assert_array_equal(grid[:, 1], FACES)


def test_an_ensembles_features_are_its_networks_side_by_side():
    single = penultimate_features(build_model("tiny"), FACES)
    assert single.shape == (3, 64)
    both = penultimate_features(ensemble([build_model("tiny"), build_model("tiny")]), FACES)
    assert both.shape == (3, 128)


def test_the_sample_is_capped_and_keeps_every_class():
    labels = np.array([0] * 5000 + [1] * 40 + [2] * 3)
    chosen = capped_sample(labels, 500)
    assert len(chosen) <= 500 and set(labels[chosen]) == {0, 1, 2}
    assert np.all(np.diff(chosen) > 0)
    np.testing.assert_array_equal(capped_sample(labels[:100], 500), np.arange(100))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_a_map_has_a_point_per_image(method):
    features = np.random.default_rng(1).normal(size=(40, 16)).astype(np.float32)
    mapped = feature_map(features, np.arange(40) * 2, method=method)
    assert mapped.points.shape == (40, 2) and mapped.method == method
    assert (mapped.explained is not None) == (method == "pca")


def test_an_unknown_map_method_is_refused_in_words():
    with pytest.raises(FerError, match="choose pca or tsne"):
        feature_map(np.zeros((5, 3)), np.arange(5), method="umap")
