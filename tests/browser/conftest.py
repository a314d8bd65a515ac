"""Real-browser fixtures: `streamlit run app.py` on a free port, and Debian's Chromium via Playwright.

Without Chromium or Playwright these tests skip, except in CI (FER_REQUIRE_BROWSER=1), where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Every wait's default (clicks, fills, wait_for, navigation), in ms. Generous on purpose: on a busy 2-core
# machine TensorFlow's start-up, the first model load or the demo set's drawing has made one step take
# over 60 s (Playwright's own default is 30 s), and a wait that times out early fails a working page.
TIMEOUT = 180_000


def _require_browser():
    missing = None
    if not Path(CHROMIUM).exists():
        missing = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed (pip install playwright)"
    if missing:
        if os.environ.get("FER_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)


def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def app_home(tmp_path_factory) -> Path:
    """The shared app server's FER_STUDIO_HOME (where it registers models, keeps runs and settings)."""
    return tmp_path_factory.mktemp("browser-home")


@pytest.fixture(scope="session")
def app_server(app_home):
    """A running FER Studio server (its own FER_STUDIO_HOME, app_home); yields its base URL."""
    yield from serve_app(app_home)


def serve_app(home: Path, extra_env: dict[str, str] | None = None, port: int | None = None, *,
              address: str = "127.0.0.1", certificate: tuple[Path, Path] | None = None):
    """Run `streamlit run app.py` with FER_STUDIO_HOME=home (plus `extra_env`) on `address`:`port` (default: a
    free port), over https when given a (certificate, key) pair; yields its URL, then stops it."""
    _require_browser()
    port = port or _free_port(address)
    https = ["--server.sslCertFile", str(certificate[0]), "--server.sslKeyFile", str(certificate[1])] \
        if certificate else []
    # Health checks trust exactly the certificate the test made (it names `address`).
    trusting = ssl.create_default_context(cafile=str(certificate[0])) if certificate else None
    log = open(home / "streamlit.log", "w")
    env = {**os.environ, "FER_STUDIO_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3",
           # The datasets tests type into the sidebar sit in pytest's temporary folders, beside `home`.
           "FER_STUDIO_DATA_ROOTS": str(home.parent), **(extra_env or {})}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", address, "--server.port", str(port),
         *https,
         "--server.headless", "true", "--browser.gatherUsageStats", "false",
         # Watching the busy source tree for edits overflows inotify and can crash the server.
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"{'https' if certificate else 'http'}://{address}:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=trusting).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
        if server.poll() is not None:
            pytest.fail(f"streamlit exited early:\n{(home / 'streamlit.log').read_text()}")
    else:
        server.kill()
        pytest.fail("streamlit did not become healthy within 90 s")
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def launch_chromium(playwright, extra_args=()):
    """Debian's Chromium, headless, offline-friendly (no background networking)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", *extra_args],
    )


def new_page(browser, **context_options):
    """A page in a fresh 1400×1000 context whose waits all default to TIMEOUT (tabs it opens too)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
    context.set_default_timeout(TIMEOUT)
    context.set_default_navigation_timeout(TIMEOUT)
    return context.new_page()


@pytest.fixture(scope="session")
def playwright_instance():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def page(playwright_instance):
    """A fresh browser page; what the app logs as console errors collects in `page.console_errors`."""
    browser = launch_chromium(playwright_instance)
    page = new_page(browser)
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    yield page
    page.context.close()
    browser.close()


def wait_for_app(page) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' status)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=TIMEOUT)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')", timeout=TIMEOUT
    )


def open_app(page, url: str) -> None:
    """Open `url` and wait for the app's own shell (app.py's sidebar dataset picker) to be drawn.

    A click on the navigation before the first run of a freshly started server has finished can
    reach Streamlit's legacy page list instead of the app's (pages.common.use_app_shell).
    """
    page.goto(url, timeout=TIMEOUT)
    page.locator(".st-key-dataset_choice").wait_for(timeout=TIMEOUT)
    wait_for_app(page)


def model_copy_in(folder: Path, model: Path) -> Path:
    """`model` and its card copied into `folder` (made if missing): a server exports a model beside its file on
    first use, which must not change the session's shared test model that other tests read. Copied into a
    server's FER_STUDIO_HOME/models, it is a registered model the server knows by its name (the file's stem)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.name
    shutil.copyfile(model, target)
    shutil.copyfile(model.with_suffix(".json"), target.with_suffix(".json"))
    return target
