"""Accounts under AppTest: app.py's sign-in gate (pages.common.require_sign_in) and each user's own settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fer.settings import Choices, read_choices, write_choices
from helpers.app_pages import AUTH

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ("pages/home.py", "pages/dataset.py", "pages/train.py", "pages/evaluate.py", "pages/predict.py")


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    monkeypatch.delenv("FER_STUDIO_MODEL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()


def app_as(user: dict, *, page: str | None = None, accounts: bool = True) -> AppTest:
    """app.py run once for a browser session whose st.user is `user`, on `page` (else Home)."""
    app = AppTest.from_file(APP, default_timeout=120)
    if accounts:
        app.secrets["auth"] = AUTH
    app.user = user
    if page is not None:
        app.switch_page(page)  # Before the first run a page is found by its file name.
    app.run()
    assert not app.exception, app.exception
    return app


def button_labels(container) -> list[str]:
    return [button.label for button in container.button]


@pytest.mark.parametrize("page", PAGES)
def test_with_accounts_every_page_shows_only_the_sign_in_until_signed_in(page):
    app = app_as({}, page=page)
    assert button_labels(app.main) == ["Sign in"]
    assert [title.value for title in app.title] == [":material/mood: FER Studio"]
    assert not app.sidebar.children  # No pickers, no page list, no upload.
    assert "dataset_choice" not in app.session_state and "dataset_source" not in app.session_state
    assert len(app.main.children) == 3  # Title, one sentence, the button: the page itself never ran.


def test_a_session_without_a_subject_counts_as_not_signed_in():
    app = app_as({"is_logged_in": True})
    assert button_labels(app.main) == ["Sign in"]


def test_without_accounts_nothing_asks_to_sign_in():
    app = app_as({"email": "test@example.com"}, accounts=False)
    assert "Sign in" not in button_labels(app.main) and "Sign out" not in button_labels(app.sidebar)
    assert app.sidebar.radio(key="dataset_choice").value == "Demo faces"


def test_a_signed_in_user_sees_the_app_their_name_and_a_sign_out():
    app = app_as({"is_logged_in": True, "sub": "alice-sub", "name": "Alice Liddell"})
    assert "Sign in" not in button_labels(app.main)
    assert "Sign out" in button_labels(app.sidebar)
    assert any("Signed in as **Alice Liddell**" in caption.value for caption in app.sidebar.caption)
    assert app.title[0].value.endswith("FER Studio") and app.sidebar.radio(key="dataset_choice")


def test_a_new_tab_opens_the_users_own_last_dataset_never_another_users(fer_home, kaggle_zip, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(kaggle_zip.parent))
    write_choices(Choices(str(kaggle_zip), None), user="alice")
    alice = app_as({"is_logged_in": True, "sub": "alice"})
    assert alice.session_state["dataset_source"] == str(kaggle_zip)
    bob = app_as({"is_logged_in": True, "sub": "bob"})
    assert "dataset_source" not in bob.session_state  # Bob starts on the demo set (the default).
    assert "Active:** the built-in demo faces" in "\n".join(caption.value for caption in bob.sidebar.caption)
    assert read_choices("alice").dataset == str(kaggle_zip)  # Bob's session did not overwrite Alice's choice,
    assert read_choices().dataset is None  # nor the file a server without accounts reads.
    assert not (fer_home / "settings.json").exists()


@pytest.fixture
def secrets_files():
    """Point Streamlit's secrets at the given files for one test (as --secrets.files would)."""
    from streamlit import config
    from streamlit.runtime.secrets import secrets_singleton

    before = config.get_option("secrets.files")
    yield lambda *paths: config.set_option("secrets.files", [str(path) for path in paths])
    config.set_option("secrets.files", before)
    secrets_singleton._reset()  # Streamlit keeps the secrets it read for the process; later tests read none.


def test_a_secrets_file_that_cannot_be_read_keeps_every_page_closed(secrets_files, tmp_path):
    broken = tmp_path / "secrets.toml"
    broken.write_text('[auth\nclient_id = "fer-studio"\n')
    secrets_files(tmp_path / "absent.toml", broken)
    for page in ("pages/home.py", "pages/train.py"):
        app = app_as({"is_logged_in": True, "sub": "alice"}, page=page, accounts=False)
        assert [error.value for error in app.error] == [
            "FER Studio cannot open: the server's secrets file cannot be read, so FER Studio cannot tell who may "
            "sign in. The person who runs this server: fix or remove .streamlit/secrets.toml (the log says why it "
            "cannot be read), then restart."]
        assert not app.sidebar.children and len(app.main.children) == 1 and "dataset_source" not in app.session_state


def test_a_secrets_file_without_an_auth_section_means_no_accounts(secrets_files, tmp_path):
    plain = tmp_path / "secrets.toml"
    plain.write_text('some_api_key = "not-for-login"\n')
    secrets_files(tmp_path / "absent.toml", plain)
    app = app_as({}, accounts=False)
    assert "Sign in" not in button_labels(app.main) and app.sidebar.radio(key="dataset_choice")


def test_a_session_that_changes_user_keeps_nothing_of_the_last_one():
    app = app_as({"is_logged_in": True, "sub": "alice"})
    app.session_state["shown_run"] = "/home/users/alice/runs/20261206-000000-tiny"  # What a page of hers kept.
    app.run()
    assert app.session_state["signed_in_user"] == "alice" and "shown_run" in app.session_state
    app.user = {"is_logged_in": True, "sub": "bob"}
    app.run()
    assert not app.exception, app.exception
    assert app.session_state["signed_in_user"] == "bob" and "shown_run" not in app.session_state
