"""Serving a lab over https: a certificate from scripts/make_cert.py, Streamlit's sslCertFile/sslKeyFile, and
the webcam starting in Chromium for a page opened by the machine's network address (where browsers allow
the camera only on https), fed by Chromium's fake camera. Nothing leaves the machine."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser.conftest import launch_chromium, model_copy_in, open_app, wait_for_app
from fer.labels import CLASSES
from helpers.fake_camera import face_frame, write_y4m

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
LONG, SHORT = 180_000, 30_000  # ms, as in the Predict page's browser tests.
LABEL = "(" + "|".join(CLASSES) + ")"


def network_address() -> str:
    """This machine's address on its network (no packet is sent), else 127.0.0.1 on a machine without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.254.254.254", 9))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def https_server(tiny_model_path, tmp_path_factory):
    """`streamlit run app.py` over https on the machine's network address, with a certificate made for it."""
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("https-home")
    address = network_address()
    made = subprocess.run([sys.executable, "scripts/make_cert.py", address, "--out", str(home / "certs")],
                          cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    port = free_port(address)
    env = {**os.environ, "FER_STUDIO_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3",
           "FER_STUDIO_MODEL": model_copy_in(home / "models", tiny_model_path).stem,  # A registered model, by name.
           "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    log = open(home / "streamlit.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", address, "--server.port", str(port),
         "--server.headless", "true", "--server.sslCertFile", str(home / "certs" / "fer-studio.crt"),
         "--server.sslKeyFile", str(home / "certs" / "fer-studio.key")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"https://{address}:{port}"
    trusting = ssl.create_default_context(cafile=str(home / "certs" / "fer-studio.crt"))
    deadline = time.time() + 90
    while time.time() < deadline and server.poll() is None:
        try:  # Verified against the certificate the script made: it names this address.
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=trusting).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"streamlit did not answer over https:\n{(home / 'streamlit.log').read_text()}")
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


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
        page.get_by_text(re.compile(rf"Live: face \d+ · \S+ {LABEL} \d+%")).wait_for(timeout=LONG)
        component.get_by_role("button", name="STOP").click(timeout=SHORT)
    finally:
        browser.close()
