"""Teach it your own faces, in a real Chromium with a fake camera that shows different people in turn:
capture three classes on the Collect page, reload in the middle (the faces are still there), fine-tune
the shipped model on them for one epoch, register it and read the webcam with it on Predict."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from browser.conftest import launch_chromium, new_page, open_app, serve_app, wait_for_app
from helpers.fake_camera import people_in_turn, write_y4m

pytestmark = pytest.mark.browser
LONG = 180_000  # ms: TensorFlow start-up, the first model load, a training job on a busy 2-core machine.
SHORT = 30_000
JOB = 420_000  # ms: the fine-tuning job starts TensorFlow, trains, scores and exports the model to ONNX.
CLASSES = ("anna", "ben", "carl")


@pytest.fixture(scope="module")
def collect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("collect-home")
    # Streamlit's recursive inotify watcher overflows in this busy shared tree and has taken servers down.
    yield from serve_app(home, {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"})


def start_camera(page) -> None:
    """START the webcam component and wait until its video plays (captures before that have no picture)."""
    page.get_by_role("tab", name=re.compile("Webcam")).click(timeout=SHORT)
    component = page.frame_locator('iframe[title*="webrtc_streamer"]')
    component.get_by_role("button", name="START").click(timeout=LONG)
    component.get_by_role("button", name="STOP").wait_for(timeout=LONG)
    component.locator("video").evaluate(
        "video => new Promise(done => { const check = () => video.currentTime > 1 ? done() : setTimeout(check, 100);"
        " check(); })", timeout=LONG)


def capture(page, class_name: str, times: int) -> None:
    """Press the class's capture button `times` times (5 frames each), each time until its faces are saved."""
    for _ in range(times):
        before = faces_of(page, class_name)
        page.get_by_role("button", name=re.compile(rf"\b{class_name}$")).click(timeout=SHORT)  # After its icon.
        deadline = time.monotonic() + LONG / 1000
        while faces_of(page, class_name) <= before:
            assert time.monotonic() < deadline, f"no face of {class_name} was saved"
            time.sleep(0.5)
        wait_for_app(page)


def faces_of(page, class_name: str) -> int:
    text = page.get_by_text(re.compile(rf"^{class_name} · \d+ faces?$")).inner_text(timeout=SHORT)
    return int(re.search(r"(\d+) face", text).group(1))


def test_collect_three_classes_reload_fine_tune_register_and_read_the_webcam(playwright_instance, collect_server,
                                                                           tmp_path):
    video = write_y4m(tmp_path / "people.y4m", people_in_turn())
    browser = launch_chromium(playwright_instance, [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    page = new_page(browser)
    try:
        open_app(page, collect_server)
        page.get_by_role("link", name=re.compile(r"Collect$")).click(timeout=LONG)
        page.get_by_role("textbox", name="New set").fill("my people")
        page.keyboard.press("Enter")  # Streamlit takes a text input's value on Enter or blur.
        wait_for_app(page)
        page.get_by_role("button", name="Create set", exact=True).click(timeout=SHORT)
        page.get_by_role("textbox", name="Add classes").fill(", ".join(CLASSES))
        page.keyboard.press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="Add classes", exact=True).click(timeout=SHORT)
        start_camera(page)
        capture(page, "anna", 3)
        capture(page, "ben", 3)
        counts = {name: faces_of(page, name) for name in ("anna", "ben")}
        assert all(count >= 10 for count in counts.values()), counts

        page.reload()  # Everything captured is on disk: the set and its faces come back.
        page.get_by_text(re.compile(r"^anna · \d+ faces?$")).wait_for(timeout=LONG)
        assert {name: faces_of(page, name) for name in ("anna", "ben")} == counts
        start_camera(page)
        capture(page, "carl", 3)
        assert faces_of(page, "carl") >= 10

        page.get_by_role("button", name=re.compile("Fine-tune on these faces")).click(timeout=SHORT)
        page.get_by_text("Start from").wait_for(timeout=LONG)
        expect(page.get_by_role("combobox", name="Start from")).to_have_value(re.compile(r"^fer2013 · vgg40"),
                                                                              timeout=LONG)
        page.get_by_label("Epochs", exact=True).fill("1")
        page.get_by_label(re.compile("Networks to fine-tune")).fill("1")  # One network of three: a third of the time.
        page.get_by_role("textbox", name="Register the finished model as").fill("my-people")
        page.keyboard.press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="Start training").click(timeout=SHORT)
        page.get_by_text(re.compile(r"Registered as my-people")).wait_for(timeout=JOB)
        page.get_by_role("button", name=re.compile("Open my-people on Predict")).click(timeout=SHORT)
        page.get_by_text("Face detector").wait_for(timeout=LONG)
        assert "my-people" in page.get_by_text(re.compile(r"^Model: ")).inner_text(timeout=SHORT)
        component = page.frame_locator('iframe[title*="webrtc_streamer"]')
        page.get_by_role("tab", name=re.compile("Webcam")).click(timeout=SHORT)
        component.get_by_role("button", name="START").click(timeout=LONG)
        page.get_by_text(re.compile(r"Live: face \d+ · +(anna|ben|carl) \d+%")).wait_for(timeout=LONG)
        component.get_by_role("button", name="STOP").click(timeout=SHORT)
    except BaseException:
        page.screenshot(path=tmp_path / "failure.png", full_page=True)  # Look here when it fails.
        raise
    finally:
        page.context.close()
        browser.close()
