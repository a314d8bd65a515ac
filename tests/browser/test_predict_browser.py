"""The Predict page in a real Chromium: upload a face photo and see its label; upload a video and see
its timeline; then the webcam, fed by Chromium's fake camera from a .y4m video of a face, shows live
labels and takes a snapshot. Every wait names its timeout: a busy 2-core machine needs generous ones.

These tests run their own server with FER_STUDIO_MODEL naming the session's tiny model (registered in its home), so
they do not depend on which models are in models/.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data

from browser.conftest import launch_chromium, model_copy_in, open_app, serve_app, wait_for_app
from fer.labels import CLASSES
from helpers.fake_camera import face_frame, write_y4m

pytestmark = pytest.mark.browser
LONG = 180_000  # ms: TensorFlow start-up and the first model load on a busy 2-core machine.
SHORT = 30_000  # ms: a click or an element of a page that has already run.
LABEL = "(" + "|".join(CLASSES) + ")"


@pytest.fixture(scope="module")
def predict_server(tiny_model_path, tmp_path_factory):
    home = tmp_path_factory.mktemp("predict-home")
    env = {
        "FER_STUDIO_MODEL": model_copy_in(home / "models", tiny_model_path).stem,
        # Streamlit's recursive inotify watcher overflows in this busy shared tree and has taken servers down.
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    }
    yield from serve_app(home, env)


def open_page(playwright, extra_args=()):
    browser = launch_chromium(playwright, extra_args)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.set_default_timeout(LONG)  # Every other wait: clicks, fills, uploads.
    page.set_default_navigation_timeout(LONG)
    return browser, page


def goto_predict(page, url: str) -> None:
    """Open the app and follow the sidebar link (a deep link logs 404s while Streamlit finds its base path).

    The capitalised "Predict" link only exists once app.py's st.navigation has run; before that the
    sidebar briefly lists the raw files in pages/ ("predict"), which would run the page outside the shell.
    """
    open_app(page, url)
    page.get_by_role("link", name=re.compile(r"Predict$")).click(timeout=LONG)
    page.get_by_text("Face detector").wait_for(timeout=LONG)
    wait_for_app(page)


def test_upload_a_face_photo_and_see_its_label(playwright_instance, predict_server, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo)
    browser, page = open_page(playwright_instance)
    try:
        goto_predict(page, predict_server)
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]').first  # The Photos tab's.
        uploader.set_input_files(str(photo), timeout=SHORT)
        page.get_by_text(re.compile(rf"Face 1 · {LABEL} \d+%")).wait_for(timeout=LONG)
        wait_for_app(page)
        assert page.get_by_text("1 image · 1 face found").count() == 1
        page.locator('[data-testid="stImage"] img').first.wait_for(timeout=SHORT)  # The annotated photo.
        page.locator(".js-plotly-plot").first.wait_for(timeout=SHORT)  # Its probability chart.
        assert page.get_by_role("button", name=re.compile("Download annotated image")).count() == 1
        assert not page.console_errors
    finally:
        browser.close()


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_upload_a_video_and_see_its_timeline(playwright_instance, predict_server, tmp_path):
    video = write_mp4(tmp_path / "clip.mp4", [face_frame(shift) for shift in range(0, 30, 2)] + [face_frame(0) * 0] * 5)
    browser, page = open_page(playwright_instance)
    try:
        goto_predict(page, predict_server)
        page.get_by_role("tab", name=re.compile("Video")).click(timeout=SHORT)
        uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Drop a video").locator(
            'input[type="file"]')  # The Video tab's.
        uploader.set_input_files(str(video), timeout=SHORT)
        summary = r"clip\.mp4 · 2\.0 s · 20 frames analysed · a face in 15 · 1 face tracked"
        page.get_by_text(re.compile(summary)).wait_for(timeout=LONG)
        wait_for_app(page)
        page.get_by_text(re.compile(r"Face 1 · seen 0\.0–1\.4 s")).wait_for(timeout=SHORT)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=LONG)  # Shares and the face's timeline.
        assert page.locator(".js-plotly-plot").count() == 2
        assert page.locator('[data-testid="stVideo"]').count() == 1  # The annotated clip.
        for name in ("Download annotated clip", "Download per-frame results"):
            assert page.get_by_role("button", name=re.compile(name)).count() == 1
        assert not page.console_errors
    finally:
        browser.close()


def test_webcam_shows_live_labels_and_keeps_a_snapshot(playwright_instance, predict_server, tmp_path):
    video = write_y4m(tmp_path / "face.y4m", [face_frame(shift) for shift in range(-20, 20, 2)])
    browser, page = open_page(playwright_instance, [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ])
    try:
        goto_predict(page, predict_server)
        page.get_by_role("tab", name=re.compile("Webcam")).click(timeout=SHORT)
        component = page.frame_locator('iframe[title*="webrtc_streamer"]')
        component.get_by_role("button", name="START").click(timeout=LONG)  # The component's iframe loads first.
        page.get_by_text(re.compile(rf"Live: face \d+ · {LABEL} \d+%")).wait_for(timeout=LONG)
        page.get_by_text("Processed frames per second").wait_for(timeout=SHORT)
        snapshot = page.get_by_role("button", name=re.compile("Snapshot"))
        page.wait_for_function("b => !b.disabled", arg=snapshot.element_handle(timeout=SHORT), timeout=LONG)
        snapshot.click(timeout=SHORT)
        page.get_by_text(re.compile(r"Snapshot · frame \d+ · [\d.]+ frames/s")).wait_for(timeout=LONG)
        component.get_by_role("button", name="STOP").click(timeout=SHORT)
    finally:
        browser.close()
