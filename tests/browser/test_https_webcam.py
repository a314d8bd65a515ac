"""Serving a lab over https: a certificate from scripts/make_cert.py, Streamlit's sslCertFile/sslKeyFile, and
the webcam starting in Chromium for a page opened by the machine's network address (where browsers allow
the camera only on https), fed by Chromium's fake camera. Nothing leaves the machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser.conftest import launch_chromium, model_copy_in, open_app, serve_app, wait_for_app
from fer.labels import CLASSES
from helpers.fake_camera import face_frame, write_y4m

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
LONG, SHORT = 180_000, 30_000  # ms, as in the Predict page's browser tests.
LABEL = "(" + "|".join(CLASSES) + ")"


def network_address() -> str:
    """This machine's first address on a network (`hostname -I`), else 127.0.0.1 on a machine without one."""
    try:
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        found = []
    return next((address for address in found if "." in address and not address.startswith("127.")), "127.0.0.1")


@pytest.fixture(scope="module")
def https_server(tiny_model_path, tmp_path_factory):
    """`streamlit run app.py` over https on the machine's network address, with a certificate made for it."""
    home = tmp_path_factory.mktemp("https-home")
    address = network_address()
    made = subprocess.run([sys.executable, "scripts/make_cert.py", address, "--out", str(home / "certs")],
                          cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    model = model_copy_in(home / "models", tiny_model_path).stem  # A registered model, by name.
    yield from serve_app(home, {"FER_STUDIO_MODEL": model}, address=address,
                         certificate=(home / "certs" / "fer-studio.crt", home / "certs" / "fer-studio.key"))


def test_the_webcam_starts_over_https_on_the_network_address(playwright_instance, https_server, tmp_path):
    video = write_y4m(tmp_path / "face.y4m", [face_frame(shift) for shift in range(-20, 20, 2)])
    browser = launch_chromium(playwright_instance, [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, ignore_https_errors=True)
        context.set_default_timeout(LONG)
        page = context.new_page()
        open_app(page, https_server)
        assert page.evaluate("window.isSecureContext")  # What lets a browser on another machine use its camera.
        page.get_by_role("link", name=re.compile(r"Predict$")).click(timeout=LONG)
        page.get_by_text("Face detector").wait_for(timeout=LONG)
        wait_for_app(page)
        page.get_by_role("tab", name=re.compile("Webcam")).click(timeout=SHORT)
        component = page.frame_locator('iframe[title*="webrtc_streamer"]')
        component.get_by_role("button", name="START").click(timeout=LONG)
        page.get_by_text(re.compile(rf"Live: face \d+ · {LABEL} \d+%")).wait_for(timeout=LONG)
        component.get_by_role("button", name="STOP").click(timeout=SHORT)
    finally:
        browser.close()
