"""The Evaluate page under AppTest, on a small Kaggle-layout folder and the session's tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import fer.model.registry
from helpers.app_pages import app_on_page, register_copy
from fer.data.datasets import open_dataset
from fer.evaluate.scoring import evaluate_split, misclassified
from fer.labels import CLASSES
from fer.model.files import load_model, save_model

PAGE = "pages/evaluate.py"


@pytest.fixture(autouse=True)
def no_model_override(monkeypatch):
    monkeypatch.delenv("FER_STUDIO_MODEL", raising=False)


@pytest.fixture
def registered(monkeypatch, tmp_path):
    """Make the given .keras files the user's registered models, and the only ones (no shipped model)."""
    empty = tmp_path / "no-shipped-models"
    empty.mkdir()
    monkeypatch.setattr(fer.model.registry, "SHIPPED_MODELS_DIR", empty)

    def register(*paths: Path) -> None:
        for path in paths:
            register_copy(path)

    return register


def metric(app: AppTest, label: str):
    return next(m for m in app.metric if m.label == label)


def expected(model_path: Path, dataset_path: Path, tta: bool = False):
    model, card = load_model(model_path)
    return evaluate_split(model, card.classes, open_dataset(dataset_path), "validation", tta=tta).evaluation


def test_page_scores_the_active_model_on_the_validation_split(kaggle_folder, tiny_model_path, registered):
    registered(tiny_model_path)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=tiny_model_path)
    truth = expected(tiny_model_path, kaggle_folder)
    assert app.selectbox(key="evaluate_split").value == "validation"
    assert metric(app, "Accuracy").value == f"{truth.accuracy:.1%}"
    assert metric(app, "Balanced acc.").value == f"{truth.balanced_accuracy:.1%}"
    assert metric(app, "Macro F1").value == f"{truth.macro_f1:.1%}"
    assert metric(app, "ECE").value == f"{truth.ece:.1%}"
    table = app.dataframe[0].value
    # Shares in percent, shown with one decimal.
    assert list(table["support"]) == [2] * 7
    assert table["F1"].tolist() == pytest.approx([100 * r.f1 for r in truth.per_class])
    assert json.loads(app.dataframe[0].proto.columns)["F1"]["type_config"]["format"] == "%.1f%%"
    assert [b.proto.label for b in app.get("download_button")] == [
        "Report (JSON)", "Per-class table (CSV)", "Every prediction (CSV)"]
    assert len(app.get("plotly_chart")) >= 4  # Heatmap, per-class bars, confidence, reliability.


def test_tta_toggle_shows_its_effect(kaggle_folder, tiny_model_path, registered):
    registered(tiny_model_path)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=tiny_model_path)
    app.toggle(key="evaluate_tta").set_value(True).run()
    assert not app.exception, app.exception
    truth, plain = expected(tiny_model_path, kaggle_folder, tta=True), expected(tiny_model_path, kaggle_folder)
    accuracy = metric(app, "Accuracy")
    assert accuracy.value == f"{truth.accuracy:.1%}"
    assert accuracy.delta == f"{(truth.accuracy - plain.accuracy) * 100:+.1f} pp vs. no TTA"
    assert any(c.value.startswith("Flip TTA changed") for c in app.caption)


def test_tta_toggle_is_off_for_a_model_that_already_averages_its_mirror_image(kaggle_folder, tiny_model_path,
                                                                             registered, tmp_path):
    flipped = tmp_path / "flipped.keras"
    shutil.copy(tiny_model_path, flipped)
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    card["selection"] = {"choice": "flip", "members": 1, "views": [[0, 0, False], [0, 0, True]],
                         "selected_on": "validation"}
    flipped.with_suffix(".json").write_text(json.dumps(card))
    registered(flipped)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=flipped)
    app.session_state["evaluate_tta"] = True  # Left on from another model.
    app.run()
    assert not app.exception, app.exception
    assert app.toggle(key="evaluate_tta").disabled and app.toggle(key="evaluate_tta").value is False
    assert not any(c.value.startswith("Flip TTA changed") for c in app.caption)
    assert "Averages 2 views of each face (test-time augmentation, chosen on the validation split)." in \
        [c.value for c in app.caption]


def test_confusion_view_toggle_and_mistake_filters(kaggle_folder, tiny_model_path, registered):
    registered(tiny_model_path)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=tiny_model_path)
    app.button_group(key="evaluate_view").set_value("row-normalised").run()
    assert not app.exception, app.exception
    truth = expected(tiny_model_path, kaggle_folder)
    mistakes = misclassified(truth)
    assert mistakes, "the tiny model is expected to make some mistakes on 14 faces"
    assert any(c.value.startswith(f"{len(mistakes):,} misclassified images") for c in app.caption)
    target = mistakes[0].true
    app.selectbox(key="evaluate_true").set_value(target).run()
    count = len(misclassified(truth, true_class=target))
    assert any(c.value.startswith(f"{count:,} misclassified images") for c in app.caption)


def test_two_models_side_by_side(kaggle_folder, tiny_model_path, registered, tmp_path):
    # A second model that really differs: the tiny model with its last layer made to say "happy" to every face.
    model, card = load_model(tiny_model_path)
    last = model.get_layer("probabilities")
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), 10.0 * np.eye(len(bias))[CLASSES.index("happy")]])
    happy = save_model(model, tmp_path / "happy.keras", card.replace(name="happy"))
    registered(tiny_model_path, happy)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=tiny_model_path)
    app.selectbox(key="evaluate_compare").set_value("happy").run()
    assert not app.exception, app.exception
    table = app.dataframe[1].value
    assert list(table.columns) == ["tiny", "happy"]
    for column, path in zip(table.columns, (tiny_model_path, happy)):
        truth = expected(path, kaggle_folder)
        assert table[column].tolist() == [f"{value:.1%}" for value in (truth.accuracy, truth.balanced_accuracy,
                                                                       truth.macro_f1, truth.ece)]
    assert table.loc["balanced accuracy", "happy"] == f"{1 / 7:.1%}"  # Right on one class of seven.
    assert table.loc["macro F1", "tiny"] != table.loc["macro F1", "happy"]
    side_by_side = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")
                    if "compare-" in chart.proto.id or json.loads(chart.proto.spec)["layout"].get("title")]
    heatmaps = [spec for spec in side_by_side if spec["data"][0]["type"] == "heatmap"]
    assert len(heatmaps) == 2 and all(spec["data"][0]["showscale"] is False for spec in heatmaps)


def test_a_model_with_other_classes_gets_a_clear_message(kaggle_folder, tiny_model_path, registered, tmp_path):
    other = tmp_path / "colours.keras"
    shutil.copy(tiny_model_path, other)
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps({**card, "classes": ["red", "orange", "yellow", "green",
                                                                          "blue", "indigo", "violet"]}))
    registered(other)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=other)
    assert "differ from the dataset's" in app.error[0].value
    assert not app.metric


def test_without_any_model_the_page_says_how_to_get_one(kaggle_folder, registered):
    registered()
    app = app_on_page(PAGE, dataset=kaggle_folder)
    assert "No model yet" in app.info[0].value


def test_switching_split_rescores_and_predictions_are_cached(kaggle_folder, tiny_model_path, registered,
                                                                   monkeypatch, tmp_path):
    import fer.evaluate.scoring

    # A model file of its own: predictions are cached per file (path and mtime) for the whole process, so the
    # session's tiny model may already have been scored by an earlier test.
    fresh = Path(shutil.copy(tiny_model_path, tmp_path / "fresh.keras"))
    shutil.copy(tiny_model_path.with_suffix(".json"), fresh.with_suffix(".json"))
    calls = []
    real = fer.evaluate.scoring.predict_probabilities
    monkeypatch.setattr(fer.evaluate.scoring, "predict_probabilities",
                        lambda *args, **kwargs: calls.append(len(args[1])) or real(*args, **kwargs))
    registered(fresh)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=fresh)
    assert calls == [14]  # The validation split.
    app.selectbox(key="evaluate_split").set_value("train").run()
    assert "on the **train** split: 28 images" in app.caption[0].value
    assert calls == [14, 28]
    app.selectbox(key="evaluate_split").set_value("validation").run()
    app.button_group(key="evaluate_view").set_value("row-normalised").run()
    assert not app.exception, app.exception
    assert "on the **validation** split: 14 images" in app.caption[0].value
    assert not app.get("progress")  # The progress bar is gone once predictions are done.
    assert calls == [14, 28]  # Back on a split already scored, and another view: no new predictions.


def test_the_evaluate_page_draws_grad_cam_over_mistakes_and_a_feature_map(kaggle_folder,
                                                                           tiny_model_path):

    app = app_on_page("pages/evaluate.py", dataset=kaggle_folder, model=tiny_model_path, timeout=240)

    def gallery() -> list:
        return [image for image in app.get("image") if any(
            "→" in str(caption) for caption in [item.caption for item in image.proto.imgs])]

    plain = [item.url for item in gallery()[0].proto.imgs]
    app.toggle(key="evaluate_mistakes_gradcam").set_value(True).run()
    assert not app.exception, app.exception
    heated = [item.url for item in gallery()[0].proto.imgs]
    assert len(heated) == len(plain) and heated != plain  # The same faces, now with their heat maps.

    next(button for button in app.button if button.label == "Draw the map").click().run()
    assert not app.exception, app.exception
    assert app.session_state["evaluate_feature_map"]["map"].points.shape == (14, 2)


def test_a_labelled_set_is_scored_without_becoming_the_active_dataset(kaggle_folder, class_folders, tiny_model_path,
                                                                      registered, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(class_folders.parent))
    registered(tiny_model_path)
    app = app_on_page(PAGE, dataset=kaggle_folder, model=tiny_model_path)
    app.text_input(key="evaluate_other_path").input(str(class_folders))
    next(button for button in app.button if button.label == "Score it").click().run()
    assert not app.exception, app.exception
    assert any("The active dataset is unchanged." in caption.value for caption in app.caption)
    assert app.session_state["dataset_source"] == str(kaggle_folder)
    assert "Every prediction (CSV)" in [button.proto.label for button in app.get("download_button")][-1:]
