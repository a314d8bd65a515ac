"""The Evaluate page in a real Chromium: the confusion matrix renders, and its view toggles.

The server runs with FER_STUDIO_MODEL pointing at the session's tiny model, so the test does not
depend on which models are in models/, and it leaves the repository untouched.
"""

from __future__ import annotations

import re

import pytest

from browser.conftest import launch_chromium, new_page, serve_app, wait_for_app
from fer.labels import class_label
from fer.labels import CLASSES

pytestmark = pytest.mark.browser
LONG = 180_000  # ms: drawing the demo set, TensorFlow start-up and the first predictions on a busy machine.


@pytest.fixture(scope="module")
def evaluate_server(tiny_model_path, tmp_path_factory):
    yield from serve_app(tmp_path_factory.mktemp("evaluate-home"), {"FER_STUDIO_MODEL": str(tiny_model_path)})


def test_confusion_matrix_renders_and_toggles_to_row_shares(playwright_instance, evaluate_server):
    browser = launch_chromium(playwright_instance)
    page = new_page(browser)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        # Start at the root and use the navigation: a deep link makes Streamlit's client probe
        # /evaluate/_stcore/health first, which logs a 404 to the console.
        page.goto(evaluate_server)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Evaluate").click(timeout=LONG)
        heatmap = page.locator(".st-key-confusion_matrix .js-plotly-plot")
        heatmap.wait_for(timeout=LONG)
        wait_for_app(page)
        # Seven rows and columns of the demo set's classes, with a count in every cell (700 images).
        labels = sorted(class_label(name) for name in CLASSES)
        assert sorted(heatmap.locator("g.ytick").all_text_contents()) == labels
        assert sorted(heatmap.locator("g.xtick").all_text_contents()) == labels
        counts = [int(text.replace(",", "")) for text in heatmap.locator(".heatmaplayer text").all_text_contents()]
        assert len(counts) == 49 and sum(counts) == 700
        assert page.get_by_text(re.compile(r"on the validation split: 700 images")).count() == 1

        page.locator(".st-key-evaluate_view button", has_text="row-normalised").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.st-key-confusion_matrix .heatmaplayer text')]"
            ".every(t => t.textContent.endsWith('%'))",
            timeout=LONG,
        )
        wait_for_app(page)
        assert not errors, errors
    finally:
        browser.close()
