"""Two users of a server with accounts, in two Chromium contexts, signed in through a real OpenID Connect
provider on loopback (oidc-provider-mock): neither sees the other's upload, dataset or runs, and neither
can stop the other's run. No network: the provider, the app and the browser all run on this machine."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser.conftest import launch_chromium, new_page, open_app, serve_app, wait_for_app
from fer.paths import runs_dir, uploads_dir
from fer.train.config import TrainConfig
from fer.errors import FerError
from fer.train.jobs import run_summary, stop_job
from fer.train.run_dir import DatasetFacts, RunConfig, RunDir, RunState

pytestmark = pytest.mark.browser
PROVIDER_TIMEOUT = 30_000  # ms; the provider's pages are tiny and local.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on loopback; it accepts any client and lets the browser name the user."""
    pytest.importorskip("authlib", reason="Streamlit's login needs Authlib: pip install 'streamlit[auth]'")
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock", reason="pip install oidc-provider-mock")
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def accounts_server(provider, tmp_path_factory):
    """FER Studio with an [auth] section in a secrets.toml of its own (never the checkout's); yields
    (the app's URL, its FER_STUDIO_HOME)."""
    lab_data = tmp_path_factory.mktemp("lab-data")  # The lab's data root; it holds FER_STUDIO_HOME too, on purpose.
    home = lab_data / "fer-studio"
    home.mkdir()
    port = free_port()
    secrets_file = tmp_path_factory.mktemp("accounts-secrets") / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "fer-studio-test"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    environment = {"STREAMLIT_SECRETS_FILES": str(secrets_file), "FER_STUDIO_DATA_ROOTS": str(lab_data)}
    for url in serve_app(home, environment, port=port):
        # The login cookie is set for the redirect_uri's host, so the browser must use localhost too.
        yield url.replace("127.0.0.1", "localhost"), home


def sign_in(browser, url: str, user: str):
    """A new browser context (its own cookies) signed in as `user` through the provider's form."""
    page = new_page(browser)
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda address: not address.startswith(url), timeout=PROVIDER_TIMEOUT)
    page.locator("input[name=sub]").fill(user)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda address: address.startswith(url), timeout=PROVIDER_TIMEOUT)
    open_app(page, url)
    page.get_by_text(f"Signed in as {user}").wait_for()
    return page


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def running_run(user: str) -> tuple[RunDir, subprocess.Popen]:
    """A run of `user`'s that is training, as fer.train.jobs judges it: a live process named by the run's
    state.json, with the run's name in its command line (a sleeping stand-in; nothing trains)."""
    run = RunDir.create("tiny", runs_dir(user))
    run.write_config(RunConfig(TrainConfig(preset="tiny", epochs=2, batch_size=8).to_dict(), DatasetFacts("demo")))
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", run.name])
    run.write_state(RunState(status="running", pid=stand_in.pid))
    return run, stand_in


@pytest.fixture
def browser(playwright_instance):
    browser = launch_chromium(playwright_instance)
    yield browser
    browser.close()


@pytest.fixture
def server_home(accounts_server, monkeypatch) -> Path:
    """The server's FER_STUDIO_HOME, also this test's, so fer's paths name the server's folders."""
    monkeypatch.setenv("FER_STUDIO_HOME", str(accounts_server[1]))
    return accounts_server[1]


def test_signed_out_every_page_offers_only_the_sign_in(browser, accounts_server):
    url, _ = accounts_server
    page = new_page(browser)
    for path in ("", "train", "dataset", "predict"):
        page.goto(f"{url}/{path}")
        page.get_by_role("button", name="Sign in").wait_for()
        wait_for_app(page)
        assert page.locator('[data-testid="stSidebar"]').count() == 0  # No pickers, no upload, no page list.
        assert page.locator('[data-testid="stFileUploader"]').count() == 0
        assert page.get_by_text("Page not found").count() == 0


def test_two_users_never_see_each_others_uploads_or_datasets(browser, accounts_server, server_home, kaggle_zip):
    url, _ = accounts_server
    alice = sign_in(browser, url, "alice")
    alice.get_by_text("Upload a zip or CSV").click()
    alice.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(kaggle_zip))
    alice.get_by_text("upload 'faces.zip'").wait_for()
    wait_for_app(alice)
    (upload,) = uploads_dir("alice").iterdir()
    assert upload.name.endswith("-faces.zip") and not uploads_dir().exists()

    bob = sign_in(browser, url, "bob")  # A new tab of Bob's starts from his own last choice, not Alice's.
    assert "built-in demo faces" in sidebar_text(bob) and "faces.zip" not in sidebar_text(bob)
    open_app(bob, f"{url}/?dataset={upload}")  # Alice's upload in Bob's URL, as a shared link would name it.
    assert "faces.zip" not in sidebar_text(bob)
    bob.get_by_text("Path on the server").click()  # Alice's upload typed in, though it lies in the data root.
    bob.get_by_placeholder("/data/fer2013/images.zip").fill(str(upload))
    bob.get_by_test_id("stBaseButton-secondaryFormSubmit").click()
    bob.get_by_text("is outside the folders this server opens datasets from").wait_for()
    assert "built-in demo faces" in sidebar_text(bob)

    alice.reload()
    open_app(alice, alice.url)
    assert "upload 'faces.zip'" in sidebar_text(alice)  # Alice's own choice is still hers.
    alice.get_by_role("button", name="Sign out").click()
    # Streamlit ends the provider's session too; this provider asks to confirm, then sends the browser back.
    alice.get_by_role("button", name="End session").click(timeout=PROVIDER_TIMEOUT)
    alice.wait_for_url(lambda address: address.startswith(url), timeout=PROVIDER_TIMEOUT)
    alice.get_by_role("button", name="Sign in").wait_for()
    wait_for_app(alice)
    assert alice.locator('[data-testid="stSidebar"]').count() == 0


def test_two_users_never_see_or_stop_each_others_runs(browser, accounts_server, server_home):
    url, _ = accounts_server
    run, stand_in = running_run("alice")
    try:
        assert run_summary(run.path).active
        alice = sign_in(browser, url, "alice")
        alice.goto(f"{url}/train")
        alice.get_by_text(run.name).first.wait_for(timeout=60_000)  # The Train page shows it at once.
        assert alice.get_by_role("button", name="Stop").count() == 1  # The owner could stop it.

        bob = sign_in(browser, url, "bob")
        bob.goto(f"{url}/train")
        bob.get_by_role("heading", name="Train").wait_for()
        wait_for_app(bob)
        assert bob.get_by_text(run.name).count() == 0 and bob.get_by_role("button", name="Stop").count() == 0
        with pytest.raises(FerError):  # What Bob's page would call, given the run's folder.
            stop_job(run.path, user="bob")
        assert not run.stop_file.exists() and run_summary(run.path).status == "running"

        alice.get_by_role("button", name="Stop").click()  # Its owner can.
        deadline = time.monotonic() + 60
        while not run.stop_file.exists() and time.monotonic() < deadline:
            alice.wait_for_timeout(250)
        assert run.stop_file.exists()
    finally:
        stand_in.kill()
        stand_in.wait()
