"""In a real Chromium: every page opens from the sidebar, and the Dataset page draws the demo set."""

from __future__ import annotations

import re

import pytest

from browser.conftest import launch_chromium, new_page, serve_app, wait_for_app

pytestmark = pytest.mark.browser

PAGES = {"Home": "", "Dataset": "dataset", "Collect": "collect", "Train": "train", "Evaluate": "evaluate",
         "Predict": "predict", "Models": "models"}


def settle(page) -> None:
    """Wait until the script run a click started has finished (and stayed finished for a moment)."""
    for _ in range(2):
        page.wait_for_timeout(500)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=180_000)
    wait_for_app(page)


def open_from_sidebar(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.wait_for_url(lambda url: url.split("?")[0].rstrip("/").endswith(f"/{PAGES[title]}".rstrip("/")))
    settle(page)


def test_every_page_opens_from_the_sidebar_without_errors(page, app_server):
    page.goto(app_server)
    settle(page)
    assert page.get_by_text("Active:").count() == 1  # the sidebar's dataset picker ran
    for title in [*PAGES, "Home"]:
        open_from_sidebar(page, title)
        exceptions = page.get_by_test_id("stException")
        assert exceptions.count() == 0, f"{title}: {exceptions.first.inner_text()}"
        assert page.get_by_test_id("stSidebarNav").count() == 1
    assert page.console_errors == []


def test_dataset_page_shows_distribution_and_sample_grid_of_the_demo_set(page, app_server):
    page.goto(app_server)
    settle(page)
    open_from_sidebar(page, "Dataset")
    distribution = page.locator(".st-key-distribution_chart .js-plotly-plot")
    grid = page.locator(".st-key-sample_grid .js-plotly-plot")
    distribution.wait_for()
    grid.wait_for()
    assert distribution.locator("g.point").count() == 14  # 7 classes × train and validation bars
    # The grid is one picture of the faces plus a hover marker per face carrying its file name.
    assert grid.locator("image").count() == 1
    hover = grid.evaluate("plot => plot.data[1].hovertext")
    assert len(hover) == 7 * 8 and all(re.match(r"<b>train/(\w+)/\1_\d{5}</b>", text) for text in hover)

    # Clicking a face enlarges it, captioned with its file name.
    grid.scroll_into_view_if_needed()
    box = grid.locator("image").bounding_box()
    first_face = (box["x"] + box["width"] / 16, box["y"] + box["height"] / 14)  # centre of row 1, column 1
    page.mouse.move(*first_face)  # Plotly clicks the point under the hover, so hover first.
    file_name = hover[0].split("<br>")[0].removeprefix("<b>").removesuffix("</b>")
    page.locator(".hoverlayer").get_by_text(file_name).wait_for()  # the hover label names the file
    page.mouse.click(*first_face)
    settle(page)
    enlarged = page.get_by_test_id("stImage")
    enlarged.first.wait_for()
    assert file_name in enlarged.first.inner_text()
    assert page.console_errors == []


@pytest.fixture
def fresh_server(tmp_path):
    """A server no browser has opened yet: the first request decides how Streamlit treats pages/."""
    yield from serve_app(tmp_path)


@pytest.mark.parametrize("title", ["Predict", "Train"])
def test_a_deep_link_as_the_first_request_gets_the_app_shell(playwright_instance, fresh_server, title):
    browser = launch_chromium(playwright_instance)
    page = new_page(browser)
    try:
        page.goto(f"{fresh_server}/{PAGES[title]}")  # the first request after the server started
        for reload in (False, True):
            if reload:
                page.reload()
            settle(page)
            page.get_by_role("heading", name=title).first.wait_for()
            sidebar = page.get_by_test_id("stSidebar")
            assert sidebar.get_by_text("Active:").count() == 1  # the dataset picker ran
            assert sidebar.get_by_role("heading", name="Model").count() == 1
            navigation = page.get_by_test_id("stSidebarNav")
            assert navigation.get_by_role("link").count() == len(PAGES)  # not app, common, dataset, …
            for name in PAGES:
                assert navigation.get_by_role("link", name=name).count() == 1
            assert page.url.split("?")[0].rstrip("/").endswith(f"/{PAGES[title]}")
    finally:
        browser.close()


def test_a_reload_and_a_new_tab_keep_the_chosen_dataset(page, app_server, kaggle_folder):
    page.goto(app_server)
    settle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Path on the server").click()
    settle(page)
    sidebar.get_by_role("textbox").fill(str(kaggle_folder))
    sidebar.get_by_test_id("stBaseButton-secondaryFormSubmit").click()
    settle(page)
    active = sidebar.get_by_text(f"Active: {kaggle_folder}")
    assert active.count() == 1
    open_from_sidebar(page, "Dataset")
    assert "dataset=" in page.url  # The choice travels in the URL from page to page.
    # Checked before the reload: reloading /dataset makes Streamlit's frontend probe
    # /dataset/_stcore/health for a base path first, which logs two 404s on any sub-page.
    assert page.console_errors == []

    page.reload()
    settle(page)
    assert page.url.rstrip("/").split("?")[0].endswith("/dataset")
    assert sidebar.get_by_text(f"Active: {kaggle_folder}").count() == 1
    assert sidebar.get_by_role("textbox").input_value() == str(kaggle_folder)

    tab = page.context.new_page()  # A new tab at the bare address starts from the last choice.
    tab.goto(app_server)
    settle(tab)
    assert tab.get_by_test_id("stSidebar").get_by_text(f"Active: {kaggle_folder}").count() == 1
