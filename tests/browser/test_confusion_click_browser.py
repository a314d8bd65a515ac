"""The Evaluate page in a real Chromium: clicking a confusion-matrix cell shows that cell's faces.

Plotly heatmaps send no point selections; the matrix carries a transparent marker on every cell
(fer.charts.explain.clickable_confusion), and this test checks a real click reaches the page.
"""

from __future__ import annotations

import re

import pytest

from browser.conftest import launch_chromium, new_page, serve_app, wait_for_app
from fer.labels import CLASSES

pytestmark = pytest.mark.browser
LONG = 180_000  # ms: drawing the demo set, TensorFlow start-up and the first predictions on a busy machine.


@pytest.fixture(scope="module")
def evaluate_server(tiny_model_path, tmp_path_factory):
    yield from serve_app(tmp_path_factory.mktemp("confusion-click-home"), {"FER_STUDIO_MODEL": str(tiny_model_path)})


def test_clicking_a_cell_shows_its_faces(playwright_instance, evaluate_server):
    browser = launch_chromium(playwright_instance)
    page = new_page(browser)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        page.goto(evaluate_server)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Evaluate").click(timeout=LONG)
        matrix = page.locator(".st-key-confusion_matrix .js-plotly-plot")
        matrix.wait_for(timeout=LONG)
        wait_for_app(page)
        assert page.get_by_text("Click a cell of the matrix to see its faces.").count() == 1
        counts = [int(text.replace(",", "")) for text in matrix.locator(".heatmaplayer text").all_text_contents()]
        assert len(counts) == len(CLASSES) ** 2
        cell = max(range(len(counts)), key=counts.__getitem__)  # The fullest cell, row-major (true, predicted).
        true, predicted = divmod(cell, len(CLASSES))
        area = matrix.locator(".nsewdrag").first.bounding_box()
        side_x, side_y = area["width"] / len(CLASSES), area["height"] / len(CLASSES)
        page.mouse.click(area["x"] + (predicted + 0.5) * side_x, area["y"] + (true + 0.5) * side_y)

        faces = page.locator(".st-key-confusion_cell_faces img")
        faces.first.wait_for(timeout=LONG)
        wait_for_app(page)
        assert faces.count() == min(counts[cell], 48)
        heading = f"faces: true {CLASSES[true]}, predicted {CLASSES[predicted]}"
        assert page.get_by_text(re.compile(f"^{counts[cell]:,} {heading}")).count() == 1
        captions = page.locator(".st-key-confusion_cell_faces [data-testid='stImageCaption']").all_text_contents()
        assert captions and all(caption.startswith(f"{CLASSES[predicted]} ") for caption in captions)
        assert not errors, errors
    finally:
        browser.close()
