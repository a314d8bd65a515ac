"""In a real Chromium: a link naming a path as the model (?model=/etc/passwd) gets one sentence, the default
model stays active, and Home offers only that model's files for download."""

from __future__ import annotations

import pytest

from browser.conftest import open_app

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("hostile", ["/etc/passwd", "../../../etc/passwd"])
def test_a_path_in_the_url_is_refused_in_a_sentence_and_never_offered(page, app_server, hostile):
    open_app(page, f"{app_server}/?model={hostile}")
    sidebar = page.get_by_test_id("stSidebar")
    warning = sidebar.get_by_text("The link's model was not opened")
    warning.wait_for()
    assert "a model is chosen by its name, not by a path or a file" in warning.inner_text()
    assert "The default model stays" in warning.inner_text()
    main = page.get_by_test_id("stMain")
    main.get_by_text("Active model").wait_for()
    assert "fer2013" in main.inner_text() and "passwd" not in main.inner_text()
    page.get_by_text("Download this model").click()
    downloads = main.get_by_test_id("stExpander").filter(has_text="Download this model")
    downloads.get_by_role("button", name="Download").first.wait_for()
    files = downloads.inner_text()
    assert "Keras (.keras)" in files and "passwd" not in files
    with page.expect_download() as download:
        downloads.get_by_role("button", name="Download").first.click()
    assert download.value.suggested_filename == "fer2013.keras"  # The default model's file, nothing else.
    assert "passwd" not in page.url  # The URL now names what is shown.
    assert page.console_errors == []
