"""What the network sees: augmented previews through the training layers, penultimate features, 2-D maps."""

from __future__ import annotations

import numpy as np
import pytest

from fer.errors import FerError
from fer.explain.features import augmented_examples, capped_sample, feature_map, penultimate_features
from fer.model.augmentation import CROP_AUGMENTATION, NO_AUGMENTATION, SEED_AUGMENTATION
from fer.labels import CLASSES
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


def test_the_train_page_previews_the_presets_augmented_faces(kaggle_folder):
    from app_pages import app_on_page

    app = app_on_page("pages/train.py", dataset=kaggle_folder, timeout=180)
    app.toggle(key="train_augmentation_preview").set_value(True).run()
    assert not app.exception, app.exception
    rows = list(app.get("image"))
    assert len(rows) == 6 and all(len(row.proto.imgs) == 7 for row in rows)  # Each face, then 6 draws.


def test_a_clicked_confusion_cell_is_read_back_from_the_selection_event():
    from fer.charts.explain import clickable_confusion, selected_cell
    from fer.evaluate.scoring import score

    labels = np.array([0, 1, 2, 3, 4, 5, 6, 3])
    probabilities = np.eye(7)[[0, 1, 2, 3, 4, 5, 6, 5]]
    figure = clickable_confusion(score(labels, probabilities, CLASSES))
    cells = figure.data[-1]
    assert len(cells.x) == 49 and cells.customdata[3 * 7 + 5][:3] == [3, 5, 1]  # true happy, predicted sad: 1.
    as_list = {"selection": {"points": [{"curve_number": 1, "point_index": 26, "customdata": [3, 5, 1, 50.0]}]}}
    as_typed_array = {"selection": {"points": [{"customdata": {"0": 3, "1": 5, "2": 1, "3": 50.0}}]}}
    assert selected_cell(as_list) == selected_cell(as_typed_array) == (3, 5)
    assert selected_cell({"selection": {"points": []}}) is None and selected_cell(None) is None
