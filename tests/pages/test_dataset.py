"""The Dataset page (pages/dataset.py) under AppTest, reached through app.py like a user would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from helpers.app_pages import app_on_page
from fer.data import eda
from fer.data.datasets import open_dataset
from fer.model.cards import ModelCard
from fer.model.files import save_model
from fer.model.presets import build_model
from fer.labels import CLASSES
from fer.data.synthetic import make_faces
from fer.paths import user_datasets_dir

PAGE = "pages/dataset.py"


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """A Kaggle-layout folder with known problems: one blank image, one copy across splits,
    one unreadable file and one RGB image of the wrong size; happy outnumbers sad 3 to 1."""
    root = tmp_path / "messy" / "images"
    per_class = {"train": dict.fromkeys(CLASSES, 4) | {"happy": 6, "sad": 2}, "validation": dict.fromkeys(CLASSES, 2)}
    for split, counts in per_class.items():
        images, labels = make_faces(max(counts.values()), seed=len(split))
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            faces = images[labels == CLASSES.index(name)][:counts[name]]
            for i, face in enumerate(faces):
                Image.fromarray(face).save(folder / f"{split}_{name}_{i}.png")
    train = root / "train"
    Image.fromarray(np.full((48, 48), 3, np.uint8)).save(train / "neutral" / "blank.png")
    (root / "validation" / "happy" / "copy.png").write_bytes((train / "happy" / "train_happy_0.png").read_bytes())
    (train / "angry" / "broken.png").write_bytes(b"\x89PNG truncated")
    Image.fromarray(make_faces(1, seed=9)[0][0]).convert("RGB").resize((96, 96)).save(train / "fear" / "rgb.png")
    return root.parent


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def chart_specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def reroll(app: AppTest) -> None:
    next(button for button in app.button if "Re-roll" in button.label).click().run()


def sample_hover(app: AppTest) -> list[str]:
    """The hover texts of the sample grid: the mosaic whose rows are labelled with the classes."""
    for spec in chart_specs(app):
        ticks = spec["layout"].get("yaxis", {}).get("ticktext") or []
        if len(spec["data"]) == 2 and any("happy" in tick for tick in ticks):
            return spec["data"][1]["hovertext"]
    raise AssertionError("no sample grid on the page")


def test_every_section_renders_with_the_numbers_of_the_dataset(messy_folder):
    app = app_on_page(PAGE, dataset=messy_folder)
    headers = [header.value for header in app.header]
    assert headers == ["Class distribution", "Samples", "Mean face and pixel histogram per class", "Image quality"]
    assert metric(app, "Imbalance ratio (train)") == "3.0×"  # happy 6 / sad 2
    assert "'happy' has" in app.info[0].value and "weight the loss" in app.info[0].value
    assert metric(app, "Skipped") == "1" and metric(app, "Conversions") == "2"  # rgb.png: mode and size
    assert metric(app, "Near-blank") == "1"
    assert metric(app, "Duplicate groups") == "1" and metric(app, "Across splits") == "1"
    distribution = next(spec for spec in chart_specs(app) if spec["layout"].get("barmode") == "group")
    assert [trace["name"] for trace in distribution["data"]] == ["train", "validation"]
    assert "messy" in app.caption[0].value and "fingerprint" in app.caption[0].value
    table = app.dataframe[0].value
    assert table.loc["sad", "train images"] == 2 and table.loc["happy", "validation %"] == 20.0  # 3 of 15


def test_reroll_draws_a_new_sample_grid(messy_folder):
    app = app_on_page(PAGE, dataset=messy_folder)
    first = sample_hover(app)
    assert len(first) == 4 + 4 + 5 + 6 + 5 + 2 + 4  # 8 per class at most: here every train image
    app.slider(key="sample_per_class").set_value(4).run()
    four = sample_hover(app)
    assert len(four) == 4 * 6 + 2
    reroll(app)
    assert not app.exception
    assert app.session_state["dataset_sample_seed"] == 1
    assert sample_hover(app) != four and len(sample_hover(app)) == len(four)


def test_quality_and_profiles_are_computed_once_then_cached(messy_folder, monkeypatch):
    calls = {"quality": 0, "profiles": 0}
    real_quality, real_profiles = eda.quality_report, eda.class_profiles

    def counting_quality(*args, **kwargs):
        calls["quality"] += 1
        return real_quality(*args, **kwargs)

    def counting_profiles(*args, **kwargs):
        calls["profiles"] += 1
        return real_profiles(*args, **kwargs)

    monkeypatch.setattr(eda, "quality_report", counting_quality)
    monkeypatch.setattr(eda, "class_profiles", counting_profiles)
    app = app_on_page(PAGE, dataset=messy_folder)
    reroll(app)
    app.run()
    assert calls == {"quality": 1, "profiles": 1}
    app.selectbox(key="profile_split").set_value("validation").run()
    assert calls == {"quality": 1, "profiles": 2}
    assert not app.exception


def test_a_dataset_that_cannot_be_opened_gives_a_message_not_a_traceback(tmp_path):
    app = app_on_page(PAGE, dataset=tmp_path / "gone.zip")
    assert any("does not exist" in error.value for error in app.error)
    assert not app.header  # the page stops after the message


def test_switching_to_a_dataset_without_the_chosen_split_keeps_the_page_working(fer_csv, messy_folder):
    app = app_on_page(PAGE, dataset=fer_csv)  # train, validation and test splits
    app.selectbox(key="sample_split").set_value("test").run()
    app.selectbox(key="profile_split").set_value("test").run()
    assert all("· test #" in hover for hover in sample_hover(app))
    app.session_state["dataset_source"] = str(messy_folder)  # no test split here
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox(key="sample_split").value in ("train", "validation")
    assert app.selectbox(key="profile_split").value in ("all splits", "train", "validation")


def test_the_dataset_page_audits_marks_and_writes_a_corrected_copy(kaggle_folder, tmp_path):

    model = save_model(build_model("tiny"), tmp_path / "tiny.keras", ModelCard(name="tiny", preset="tiny",
                                                                                classes=CLASSES))
    app = app_on_page("pages/dataset.py", dataset=kaggle_folder, model=model, timeout=180)
    next(button for button in app.button if button.label == "Audit").click().run()
    assert not app.exception, app.exception
    marks = [control for control in app.get("button_group") if control.key.startswith("audit_mark_")]
    assert len(marks) == 14  # Every validation image of the fixture, on one page.
    first = marks[0].key.removeprefix("audit_mark_")
    marks[0].set_value("wrong").run()
    assert app.session_state["dataset_audit_decisions"] == {first: "wrong"}
    app.text_input(key="dataset_audit_target").set_value("corrected").run()
    next(button for button in app.button if button.label == "Write corrected copy").click().run()
    assert not app.exception, app.exception
    assert any(": 1 label changed" in success.value for success in app.success)
    target = user_datasets_dir() / "corrected"  # A name typed into the user's datasets folder.
    reopened = open_dataset(target, use_cache=False)
    assert first not in reopened.split("validation").files  # It moved to its suggested class's folder.
    before = sorted(path.relative_to(target) for path in target.rglob("*"))
    outside = tmp_path / "elsewhere"
    for typed, why in [("corrected", "'corrected' already exists; choose a new name"),
                       (str(outside), "is not a plain name"), ("../corrected-2", "is not a plain name")]:
        app.text_input(key="dataset_audit_target").set_value(typed).run()
        next(button for button in app.button if button.label == "Write corrected copy").click().run()
        assert not app.exception, app.exception
        assert any(why in error.value for error in app.error), [error.value for error in app.error]
    assert sorted(path.relative_to(target) for path in target.rglob("*")) == before
    assert not outside.exists() and not (user_datasets_dir().parent / "corrected-2").exists()
