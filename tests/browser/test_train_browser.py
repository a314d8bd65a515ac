"""The Train page in a real browser, on the demo set: live epochs, a reload mid-run, stop, resume, curves
whose labels stay apart in a 1000 px window, and the finished model showing up on Evaluate and Predict."""

from __future__ import annotations

import os
import re

import pytest

from browser.conftest import open_app, wait_for_app
from helpers.chart_geometry import MEASURE_JS, overlaps

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LONG = 180_000  # ms: TensorFlow start-up plus tiny-CNN epochs on a busy 2-core machine.
EPOCHS = 8


def settle(page) -> None:
    """Wait until the script run that a click or load started has finished."""
    for _ in range(2):
        page.wait_for_timeout(500)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LONG)
    wait_for_app(page)


def open_from_sidebar(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.wait_for_url(re.compile(rf"/{title.lower()}(\?|$)"))  # The query keeps the chosen dataset and model.
    settle(page)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the Streamlit selectbox labelled `label`."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).locator("input").click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(option)}")).click()


def history_cell(page, text: str):
    """Cells of the run history table whose text is `text`: the grid's hidden accessible cells, which hold the raw
    values (number formats and the blank for a missing value are drawn on the canvas only)."""
    pattern = re.compile(f"^{re.escape(text)}$")
    return page.locator('[data-testid="stDataFrame"] [role="gridcell"]').filter(has_text=pattern)


def model_offered(page, name: str) -> bool:
    """Whether `name` is on the page, or among the options of one of its selectboxes (model pickers)."""
    if page.get_by_text(name).count():
        return True
    for box in page.locator('[data-testid="stSelectbox"] input').all():
        box.click()
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        if any(name in option for option in options):
            return True
    return False


def test_train_on_demo_survives_a_reload_stops_resumes_and_registers(page, app_server, app_home, tmp_path):
    name = f"browser-tiny-{os.getpid()}"
    models = app_home / "models"  # The server's one local user registers into FER_STUDIO_HOME/models.
    registered = [models / f"{name}.keras", models / f"{name}.json"]
    failed = []  # Which resources the console's "Failed to load resource" errors were about.
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    try:
        # In through the front page, as a user would: the app shell sets up st.navigation first.
        open_app(page, app_server)  # The sidebar draws the demo set on first use.
        # The server is shared: a new tab starts on the last dataset another test chose (the settings file).
        page.get_by_test_id("stSidebar").get_by_text("Demo faces", exact=True).click()
        settle(page)
        page.get_by_test_id("stSidebar").get_by_text("the built-in demo faces").wait_for(timeout=LONG)
        open_from_sidebar(page, "Train")
        choose(page, "Model preset", "tiny")
        settle(page)
        # Enough epochs that a Stop clicked after an early epoch lands before the run ends: with 3, a busy machine
        # finished the third tiny epoch (about 4 s) before the click took effect, and the page said "Finished".
        # The form is no form (its sliders follow the augmentation mode), so each entry is committed with Enter
        # and its rerun waited for: a click that lands while a rerun redraws the page can be lost.
        page.get_by_label("Epochs", exact=True).fill(str(EPOCHS))
        page.get_by_label("Epochs", exact=True).press("Enter")
        settle(page)
        page.get_by_role("textbox", name="Register the finished model as").fill(name)
        page.get_by_role("textbox", name="Register the finished model as").press("Enter")
        settle(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(rf"Epoch \d+/{EPOCHS} · batch \d+/\d+")).wait_for(timeout=LONG)
        # The history's row follows the run without a reload (it used to stay at "starting · 0/3").
        history_cell(page, "running").wait_for(state="attached", timeout=LONG)

        page.reload()  # The run goes on without the browser: after the reload the page finds it again.
        settle(page)
        page.get_by_text(re.compile(r"\brunning · preset")).wait_for()  # The live view's status line.
        # Epoch metrics and curves arrive while the run is still going.
        page.get_by_text(re.compile(rf"Last epoch · Epoch [1-5]/{EPOCHS}")).wait_for(timeout=LONG)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text(re.compile(rf"Stopped after \d of {EPOCHS} epochs")).wait_for(timeout=LONG)
        settle(page)
        page.locator(".js-plotly-plot").nth(2).wait_for()  # Loss, accuracy and learning-rate curves.

        page.get_by_role("button", name="Resume").click()
        page.get_by_text("Finished in").wait_for(timeout=LONG)
        page.get_by_text(f"Registered as {name}").wait_for()
        assert all(path.exists() for path in registered)
        settle(page)
        history_cell(page, "finished").wait_for(state="attached")  # The run history.
        # In a 1000 px window each curve has about 170 px: no label touches another or the legend.
        page.set_viewport_size({"width": 1000, "height": 1000})
        page.wait_for_function("() => document.querySelector('.js-plotly-plot').getBoundingClientRect().width < 250",
                               timeout=LONG)
        page.wait_for_timeout(500)  # Plotly's relayout after the resize.
        assert overlaps(page.evaluate(MEASURE_JS, page.locator('[data-testid="stMain"]').element_handle())) == []

        for title in ("Evaluate", "Predict"):
            open_from_sidebar(page, title)
            assert model_offered(page, name), f"{name} is not offered on the {title} page"
        # Reloading a page's URL makes Streamlit's frontend first try that path as the server's base URL
        # (…/train/_stcore/health: 404) before falling back to the root; any other failure is a bug.
        unexpected = [failure for failure in failed if not re.search(r"/\w+/_stcore/(health|host-config)$", failure)]
        assert not unexpected
        assert len(page.console_errors) <= len(failed), page.console_errors
        assert all("Failed to load resource" in error for error in page.console_errors), page.console_errors
    except BaseException:
        page.screenshot(path=tmp_path / "failure.png", full_page=True)  # Look here when it fails.
        raise
