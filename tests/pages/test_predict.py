"""The Predict page under AppTest: uploads (good, faceless, broken), whole-image fallback, webcam tab."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import io
import re
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
    assert shown.startswith("**3 images · 1 face found** · ")
    assert shown.splitlines()[0].endswith(" · 1 could not be read")
    [face_line] = [line for line in shown.splitlines() if line.startswith("**Face 1** · ")]
    assert face_line.split("**")[3] in CLASSES  # "**Face 1** · **happy** 87%"
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
    assert "**Whole image (no face found)** · " in texts(page)
    assert page.dataframe[0].value["face"].tolist() == ["whole image"]
    # Said as it is: no face was found, the label is only what the model makes of the whole picture.
    assert "**1 image · 0 faces found** · 1 read as a whole image (no face found)" in texts(page)
    assert "No face was found: the whole image was read as if it were one." in page.warning[0].value


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
    # 640×480 at 30 fps, what most webcams give; frames the machine cannot keep up with are dropped.
    assert streamer.kwargs["media_stream_constraints"] == {
        "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 30}},
        "audio": False,
    }
    assert "Press **START**" in texts(page)
    snapshot = [button for button in page.button if "Snapshot" in button.label][0]
    assert snapshot.disabled


def test_live_frames_show_labels_fps_and_can_be_snapshotted(page, streamer):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = np.asarray(Image.fromarray(data.astronaut()).resize((512, 480)))
    callback = streamer.kwargs["queued_video_frames_callback"]
    for waiting in (1, 3, 2):  # What streamlit-webrtc's worker thread hands over: the frames that queued up.
        frames = [av.VideoFrame.from_ndarray(frame, format="rgb24")] * waiting
        # On a thread of its own, as streamlit-webrtc calls it: the browser tests' Playwright keeps an event
        # loop running on this one for the whole session.
        with ThreadPoolExecutor(1) as worker:
            [out] = worker.submit(asyncio.run, callback(frames)).result()
    assert isinstance(out, av.VideoFrame) and (out.width, out.height) == (640, 480)
    assert (out.to_ndarray(format="rgb24") != frame).any()  # Boxes and labels were drawn.
    streamer.playing = True
    page.run()
    assert not page.exception
    assert any(line.startswith("Live: face 1 · ") for line in texts(page).splitlines())
    assert page.metric[0].label == "Processed frames per second" and float(page.metric[0].value) > 0
    assert page.metric[1].label == "Camera frames per second" and float(page.metric[1].value) > 0
    assert "3 frames analysed since START, 3 dropped to stay live" in texts(page)
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
    assert notes == ["tiny.keras runs on Keras, which is slower to load and to run, because exporting it to ONNX "
                     "failed (test). Export it with: python -m fer export tiny --format onnx"]
    assert not at.exception
    at.run()
    assert not [item.value for item in at.info if "runs on Keras" in item.value]


def group_photo() -> bytes:
    """Three faces side by side: the astronaut, mirrored, and darker."""
    face = np.asarray(Image.fromarray(data.astronaut()).resize((360, 360)))
    return png(np.concatenate([face, face[:, ::-1], (face * 0.7).astype(np.uint8)], axis=1))


def test_a_group_photos_faces_share_one_numbered_table(page):
    page.file_uploader[0].set_value(("group.png", group_photo(), "image/png")).run()
    assert not page.exception
    assert "**1 image · 3 faces found**" in texts(page)
    faces = page.dataframe[1].value  # The results table first, then the photo's face table.
    assert faces["face"].tolist() == [1, 2, 3]  # The numbers drawn on the boxes.
    assert {"label", *CLASSES} <= set(faces.columns)
    assert all(0 <= value <= 100 for value in faces[list(CLASSES)].to_numpy().ravel())  # Bars in percent.
    assert "Each row's number is drawn on its face's box." in texts(page)
    assert not page.get("plotly_chart")  # One table, not three stacked charts.


def test_the_results_table_shows_percentages_and_no_none_cells(page):
    page.file_uploader[0].set_value([("astronaut.png", png(data.astronaut()), "image/png"),
                                     ("blank.png", png(np.full((100, 140, 3), 250, np.uint8)), "image/png")]).run()
    table = page.dataframe[0].value
    assert re.fullmatch(r"\d+\.\d%", table["confidence"].iloc[0])
    assert table["face"].iloc[1] == "no face" and table["note"].iloc[1] == "no face found"
    assert not {"None", "nan", "<NA>"} & {str(cell) for cell in table.to_numpy().ravel()}


def test_faces_below_the_threshold_are_said_to_be_uncertain(page):
    page.file_uploader[0].set_value(("astronaut.png", png(data.astronaut()), "image/png")).run()
    page.slider(key="predict_uncertain_below").set_value(100).run()
    assert "1 uncertain (below 100%)" in texts(page)
    assert page.dataframe[0].value["uncertain"].tolist() == ["uncertain"]
    assert any(line.endswith(" · uncertain") for line in texts(page).splitlines() if line.startswith("**Face 1**"))
    page.slider(key="predict_uncertain_below").set_value(0).run()
    assert "uncertain (below" not in texts(page)


def test_all_annotated_photos_come_in_one_zip_and_a_zip_can_be_read_in_bulk(page):
    import zipfile

    page.file_uploader[0].set_value([("astronaut.png", png(data.astronaut()), "image/png"),
                                     ("group.png", group_photo(), "image/png")]).run()
    labels = [button.proto.label for button in page.get("download_button")]
    assert "Download 2 annotated photos (.zip)" in labels
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("party/one.png", png(data.astronaut()))
        archive.writestr("party/two.png", group_photo())
        archive.writestr("notes.txt", "not a photo")
    page.file_uploader(key="predict_batch_zip").set_value(("party.zip", buffer.getvalue(), "application/zip"))
    next(button for button in page.button if button.label == "Read them").click().run()
    assert not page.exception
    assert "**2 images · 4 faces found**" in texts(page)


def test_a_folder_inside_the_data_roots_is_read_in_bulk_and_one_outside_is_refused(page, tmp_path, monkeypatch):
    folder = tmp_path / "roots" / "party"
    folder.mkdir(parents=True)
    (folder / "one.png").write_bytes(png(data.astronaut()))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "roots"))
    page.text_input(key="predict_batch_folder").input(str(tmp_path))  # Above the roots: refused, nothing read.
    next(button for button in page.button if button.label == "Read them").click().run()
    assert "outside the folders this server opens datasets from" in page.error[0].value
    page.text_input(key="predict_batch_folder").input(str(folder))
    next(button for button in page.button if button.label == "Read them").click().run()
    assert not page.exception
    assert "**1 image · 1 face found**" in texts(page)
