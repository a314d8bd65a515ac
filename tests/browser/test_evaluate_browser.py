"""The Evaluate page in a real Chromium: the confusion matrix renders (every class named, in a 1400 and a
1000 px window), its view toggles, and clicking a cell shows that cell's faces.

Plotly heatmaps send no point selections; the matrix carries a transparent marker on every cell
(fer.charts.explain.clickable_confusion), and the click test checks a real click reaches the page.

The server runs with FER_STUDIO_MODEL naming the session's tiny model (registered in its home), so the test does not
depend on which models are in models/, and it leaves the repository untouched.
"""

from __future__ import annotations

import re

import pytest

from browser.conftest import model_copy_in, open_app, serve_app, wait_for_app
from fer.labels import CLASSES
from helpers.chart_geometry import MEASURE_JS, overlaps

pytestmark = pytest.mark.browser
LONG = 180_000  # ms: drawing the demo set, TensorFlow start-up and the first predictions on a busy machine.


@pytest.fixture(scope="module")
def evaluate_server(tiny_model_path, tmp_path_factory):
    home = tmp_path_factory.mktemp("evaluate-home")
    yield from serve_app(home, {"FER_STUDIO_MODEL": model_copy_in(home / "models", tiny_model_path).stem})


def open_confusion_matrix(page, url: str):
    """Open the Evaluate page through the navigation and return its drawn confusion matrix.

    Start at the root: a deep link makes Streamlit's client probe /evaluate/_stcore/health first,
    which logs a 404 to the console.
    """
    open_app(page, url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Evaluate").click(timeout=LONG)
    matrix = page.locator(".st-key-confusion_matrix .js-plotly-plot")
    matrix.wait_for(timeout=LONG)
    wait_for_app(page)
    return matrix


def test_confusion_matrix_renders_and_toggles_to_row_shares(page, evaluate_server):
    heatmap = open_confusion_matrix(page, evaluate_server)
    # Seven rows and columns of the demo set's classes, with a count in every cell (700 images).
    labels = sorted(CLASSES)  # In words: an emoji is a blank box without an emoji font.
    assert sorted(heatmap.locator("g.ytick").all_text_contents()) == labels
    assert sorted(heatmap.locator("g.xtick").all_text_contents()) == labels
    counts = [int(text.replace(",", "")) for text in heatmap.locator(".heatmaplayer text").all_text_contents()]
    assert len(counts) == 49 and sum(counts) == 700
    assert page.get_by_text(re.compile(r"on the validation split: 700 images")).count() == 1

    # In a 1000 px window the matrix gets three fifths of the content, beside the top confusions: every class
    # still names its column (with a colour bar Plotly dropped three of the seven) and no two labels touch.
    page.set_viewport_size({"width": 1000, "height": 1000})
    page.wait_for_function("() => document.querySelector('.st-key-confusion_matrix .js-plotly-plot')"
                           ".getBoundingClientRect().width < 400", timeout=LONG)
    page.wait_for_timeout(500)  # Plotly's relayout after the resize.
    assert sorted(heatmap.locator("g.xtick").all_text_contents()) == labels
    assert overlaps(page.evaluate(MEASURE_JS, page.locator(".st-key-confusion_matrix").element_handle())) == []

    page.locator(".st-key-evaluate_view button", has_text="row-normalised").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.st-key-confusion_matrix .heatmaplayer text')]"
        ".every(t => t.textContent.endsWith('%'))",
        timeout=LONG,
    )
    wait_for_app(page)
    assert not page.console_errors, page.console_errors


def test_clicking_a_cell_shows_its_faces(page, evaluate_server):
    matrix = open_confusion_matrix(page, evaluate_server)
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
    assert not page.console_errors, page.console_errors
