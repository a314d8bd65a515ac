"""The Predict page under AppTest: uploads (good, faceless, broken), whole-image fallback, webcam tab."""

from __future__ import annotations

import io
import shutil
from types import SimpleNamespace

import av
import numpy as np
import pytest
import streamlit_webrtc
from PIL import Image
from skimage import data
from streamlit.testing.v1 import AppTest

from helpers.app_pages import register_copy
from fer.labels import CLASSES
from fer.paths import PROJECT_ROOT
from fer.serve import runtime
from pages.common import MODEL_KEY

PAGE = str(PROJECT_ROOT / "pages" / "predict.py")
TIMEOUT = 120  # The first run loads TensorFlow, the model and the detector on a busy 2-core machine.


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


class FakeStreamer:
    """Stands in for streamlit_webrtc.webrtc_streamer, which needs a real server session.

    It records what the page passed (so a test can call the frame callback itself, as the
    video thread would) and reports the stream as playing or not.
    """

    def __init__(self):
        self.playing = False
        self.kwargs: dict = {}

    def __call__(self, key: str, **kwargs):
        self.kwargs = {"key": key, **kwargs}
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing))


@pytest.fixture(autouse=True)
def streamer(monkeypatch) -> FakeStreamer:
    fake = FakeStreamer()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
    return fake


@pytest.fixture
def page(tiny_model_path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[MODEL_KEY] = register_copy(tiny_model_path)
    return at.run()


def texts(at: AppTest) -> str:
    return "\n".join(element.value for element in [*at.markdown, *at.caption])


@pytest.mark.parametrize("name", ["gone", str(PROJECT_ROOT / "models" / "fer2013.keras")])
def test_without_a_usable_model_the_page_says_so(name):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[MODEL_KEY] = name  # A name nobody registered, or a path: never opened as a file.
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("Could not load the model: ")
    assert "fer2013.keras" not in at.error[0].value
    assert not at.file_uploader  # Nothing to predict with: the page stops there.


def test_before_any_upload_the_page_invites_one(page):
    assert not page.exception
    assert page.file_uploader[0].accept_multiple_files
    assert {"jpg", "png", "webp", "bmp", "gif"} <= {t.lstrip(".") for t in page.file_uploader[0].allowed_type}
    assert "Drop one or more photos" in page.info[0].value
    assert [str(option) for option in page.radio(key="predict_detector").options] == [
        "YuNet (finds turned and small faces)", "Haar cascade (older; misses turned faces)", "MTCNN (slow)"]
    assert page.radio(key="predict_detector").value == "yunet"  # The first option, the default detector.


def test_a_batch_with_a_face_a_blank_and_a_broken_file(page):
    page.file_uploader[0].set_value([
        ("astronaut.png", png(data.astronaut()), "image/png"),
        ("blank.png", png(np.full((100, 140, 3), 250, np.uint8)), "image/png"),
        ("broken.jpg", b"\xff\xd8\xff not really a jpeg", "image/jpeg"),
    ]).run()
    assert not page.exception
    shown = texts(page)
    assert "**3 images · 1 face found** · 1 could not be read" in shown
    [face_line] = [line for line in shown.splitlines() if line.startswith("**Face 1** · ")]
    assert face_line.split("**")[3] in CLASSES  # "**Face 1** · 😄 **happy** 87%"
    assert "No face found in this image." in page.warning[0].value
    assert "Could not analyse this file: not a readable image" in page.error[0].value
    table = page.dataframe[0].value
    assert table["file"].tolist() == ["astronaut.png", "blank.png", "broken.jpg"]
    assert table["label"].iloc[0] in CLASSES
    assert table["note"].iloc[1] == "no face found"
    assert table["note"].iloc[2].startswith("error: not a readable image")


def test_classify_the_whole_image_when_no_face_is_found(page):
    page.file_uploader[0].set_value(("blank.png", png(np.full((100, 140, 3), 250, np.uint8)), "image/png")).run()
    assert "No face found" in page.warning[0].value
    page.checkbox[0].check().run()
    assert not page.exception
    assert "**Whole image** · " in texts(page)
    assert page.dataframe[0].value["face"].tolist() == ["whole image"]


def test_results_are_reused_across_reruns_and_dropped_with_their_file(page, monkeypatch):
    import fer.serve.prediction

    calls = []
    original = fer.serve.prediction.predict_file
    monkeypatch.setattr(fer.serve.prediction, "predict_file", lambda *a, **k: calls.append(a[0]) or original(*a, **k))
    page.file_uploader[0].set_value(("astronaut.png", png(data.astronaut()), "image/png")).run()
    first = texts(page)
    page.run()
    assert texts(page) == first
    assert calls == ["astronaut.png"]  # Analysed once, not on every rerun.
    assert len(page.session_state["predict_results"]) == 1
    page.file_uploader[0].set_value(("blank.png", png(np.zeros((60, 60, 3), np.uint8)), "image/png")).run()
    assert [key[0] for key in page.session_state["predict_results"]] != [] and calls[-1] == "blank.png"
    assert len(page.session_state["predict_results"]) == 1  # The astronaut's result was let go.


def test_webcam_tab_waits_for_start(page, streamer):
    assert streamer.kwargs["rtc_configuration"] == {"iceServers": []}  # Works offline on localhost.
    # 640×480 at up to 15 fps: what the page keeps up with (bench/bench_webcam_browser.py), no microphone.
    assert streamer.kwargs["media_stream_constraints"] == {
        "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 15, "max": 15}},
        "audio": False,
    }
    assert "Press **START**" in texts(page)
    snapshot = [button for button in page.button if "Snapshot" in button.label][0]
    assert snapshot.disabled


def test_live_frames_show_labels_fps_and_can_be_snapshotted(page, streamer):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = np.asarray(Image.fromarray(data.astronaut()).resize((512, 480)))
    callback = streamer.kwargs["video_frame_callback"]
    for _ in range(3):  # What streamlit-webrtc's worker thread does with each camera frame.
        out = callback(av.VideoFrame.from_ndarray(frame, format="rgb24"))
    assert isinstance(out, av.VideoFrame) and (out.width, out.height) == (640, 480)
    assert (out.to_ndarray(format="rgb24") != frame).any()  # Boxes and labels were drawn.
    streamer.playing = True
    page.run()
    assert not page.exception
    assert any(line.startswith("Live: face 1 · ") for line in texts(page).splitlines())
    assert page.metric[0].label == "Processed frames per second" and float(page.metric[0].value) > 0
    snapshot = [button for button in page.button if "Snapshot" in button.label][0]
    snapshot.click().run()
    assert "**Snapshot** · frame 3 · " in texts(page)
    assert len(page.get("plotly_chart")) == 1  # The snapshot's face chart.


def test_the_predict_page_shows_each_faces_grad_cam_on_request(tiny_model_path, monkeypatch):
    import io
    from types import SimpleNamespace

    import streamlit_webrtc
    from PIL import Image
    from skimage import data
    from streamlit.testing.v1 import AppTest

    from pages.common import MODEL_KEY

    idle = SimpleNamespace(state=SimpleNamespace(playing=False))
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda *args, **kwargs: idle)  # No webcam here.
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / "predict.py"), default_timeout=240)
    app.session_state[MODEL_KEY] = register_copy(tiny_model_path)
    app.run()
    photo = io.BytesIO()
    Image.fromarray(data.astronaut()).save(photo, "PNG")
    app.file_uploader[0].set_value(("astronaut.png", photo.getvalue(), "image/png")).run()
    assert not app.exception, app.exception
    toggle = next(toggle for toggle in app.toggle if toggle.key.startswith("gradcam-"))
    toggle.set_value(True).run()
    assert not app.exception, app.exception
    pairs = [image for image in app.get("image")
             if [item.caption for item in image.proto.imgs][:2] == ["face 1", "Grad-CAM"]]
    assert len(pairs) == 1 and len(pairs[0].proto.imgs) == 2  # One face found: its crop and its heat map.


def test_a_page_says_once_per_session_that_a_model_runs_on_keras(model_copy, monkeypatch):
    import streamlit as st
    import streamlit_webrtc
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer",
                        lambda key, **kwargs: SimpleNamespace(state=SimpleNamespace(playing=False)))
    monkeypatch.setattr(runtime, "_export_in_child", lambda path: (None, "exporting it to ONNX failed (test)"))
    from fer.paths import user_models_dir

    st.cache_resource.clear()
    registered = user_models_dir() / "tiny.keras"
    registered.parent.mkdir(parents=True)
    for file in (model_copy, model_copy.with_suffix(".json")):
        shutil.copyfile(file, registered.with_name(file.name))
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "predict.py"), default_timeout=120)
    at.session_state["model_name"] = "tiny"
    at.run()
    notes = [item.value for item in at.info if "runs on Keras" in item.value]
    assert notes == [f"tiny.keras runs on Keras, which is slower to load and to run, because exporting it to ONNX "
                     f"failed (test). Export it with: python -m fer export tiny --format onnx"]
    assert not at.exception
    at.run()
    assert not [item.value for item in at.info if "runs on Keras" in item.value]
