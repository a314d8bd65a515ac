"""The Collect page under AppTest: a new set, typed classes, webcam captures, the grid and its delete buttons."""

from __future__ import annotations

from types import SimpleNamespace

import av
import numpy as np
import pytest
import streamlit_webrtc
from skimage import data
from streamlit.testing.v1 import AppTest

from fer.data import collect
from fer.paths import PROJECT_ROOT
from pages.common import DATASET_KEY

TIMEOUT = 120


class FakeStreamer:
    """Stands in for streamlit_webrtc.webrtc_streamer (it needs a real browser): keeps the frame callback."""

    def __init__(self):
        self.kwargs: dict = {}

    def __call__(self, key: str, **kwargs):
        self.kwargs = {"key": key, **kwargs}
        return SimpleNamespace(state=SimpleNamespace(playing=True))

    def show(self, picture: np.ndarray) -> None:
        """What the video thread does with a camera frame."""
        self.kwargs["video_frame_callback"](av.VideoFrame.from_ndarray(picture, format="rgb24"))


@pytest.fixture(autouse=True)
def streamer(monkeypatch) -> FakeStreamer:
    fake = FakeStreamer()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
    return fake


def collect_page() -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("pages/collect.py").run()
    assert not app.exception, app.exception
    return app


def button(app: AppTest, key: str):
    return next(item for item in app.button if item.key == key)


def test_a_new_set_takes_classes_and_webcam_captures_and_the_grid_deletes_one_face(fer_home, streamer):
    app = collect_page()
    app.text_input(key="collect_new_set_name").input("Class Moods")
    button(app, "collect-create").click().run()
    assert app.selectbox(key="collect_set_picker").value == "class-moods"
    app.text_input(key="collect_class_names").input("Bored, focused")
    button(app, "collect-add-classes").click().run()
    assert collect.open_set("class-moods").classes() == ("bored", "focused")

    streamer.show(data.astronaut())
    app.slider(key="collect_burst").set_value(1).run()
    button(app, "collect-capture-bored").click().run()
    assert not app.exception, app.exception
    assert [item.value for item in app.success] == ["Saved 1 face to 'bored'."]
    streamer.show(np.full((240, 320, 3), 90, np.uint8))  # Nobody in view.
    button(app, "collect-capture-focused").click().run()
    assert "no face in view" in app.warning[0].value and collect.open_set("class-moods").counts()["focused"] == 0

    face_set = collect.open_set("class-moods")
    face_set.add_faces("focused", list(np.random.default_rng(0).integers(0, 256, (3, 48, 48), np.uint8)), "photo")
    app.run()
    deletes = [item for item in app.button if item.key.startswith("collect-delete-focused-")]
    assert len(deletes) == 3 and len(app.get("image")) == 4
    doomed = deletes[1].key.removeprefix("collect-delete-focused-")
    deletes[1].click().run()
    assert doomed not in [sample.name for sample in face_set.samples("focused")]
    assert len(face_set.samples("focused")) == 2 and len(face_set.samples("bored")) == 1
    assert len([item for item in app.button if item.key.startswith("collect-delete-")]) == 3

    button(app, "collect-use").click().run()
    assert app.session_state[DATASET_KEY] == str(face_set.root)


def test_the_open_set_comes_back_after_a_reload_from_the_url(fer_home):
    face_set = collect.new_set("moods")
    face_set.add_classes("calm, upset")
    collect.new_set("another")
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT)
    app.query_params["set"] = "moods"
    app.run()
    app.switch_page("pages/collect.py").run()
    assert app.selectbox(key="collect_set_picker").value == "moods"
    assert [item.key for item in app.button if item.key.startswith("collect-capture-")] == \
        ["collect-capture-calm", "collect-capture-upset"]


def test_fine_tune_on_these_faces_opens_train_with_the_set_and_the_shipped_model(fer_home):
    from pages.common import START_FROM_KEY

    face_set = collect.new_set("moods")
    face_set.add_classes("calm, upset")
    for name in ("calm", "upset"):
        face_set.add_faces(name, list(np.random.default_rng(1).integers(0, 256, (10, 48, 48), np.uint8)), "photo")
    app = collect_page()
    button(app, "collect-fine-tune").click().run()
    assert not app.exception, app.exception
    assert app.session_state[DATASET_KEY] == str(face_set.root) and app.session_state[START_FROM_KEY] == "fer2013"
    assert any(item.label == "Start from" for item in app.selectbox)  # The Train page's form is drawn.
