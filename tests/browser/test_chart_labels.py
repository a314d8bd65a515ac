"""Every chart with category ticks, drawn by Plotly in Chromium at the widths the app gives it, keeps its
tick labels apart (and its labels and titles out from under its legend): a whole page, half of one
(Compare's two matrices, Evaluate's confidence and calibration) and a third (the Train page's curves), in a
1400 px and a 1000 px wide window.
Measured from the rendered SVG (tests/helpers/chart_geometry.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly
import plotly.io
import pytest

from browser.conftest import launch_chromium
from fer.charts import dataset as dataset_charts
from fer.charts import evaluation as evaluation_charts
from fer.charts.explain import clickable_confusion, feature_map_figure
from fer.charts.prediction import probability_figure
from fer.charts.training import comparison_figure, curves_figure, learning_rate_figure
from fer.charts.video import shares_figure, timeline_figure
from fer.data.eda import ClassProfiles, QualityThresholds
from fer.evaluate.scoring import score
from fer.explain.features import FeatureMap
from fer.labels import CLASSES
from fer.serve.detection import Box
from fer.serve.live import TrackedFace
from fer.serve.prediction import FacePrediction
from fer.serve.video import VideoFrame, VideoResult
from helpers.chart_geometry import MEASURE_JS, overlaps, quads_intersect

pytestmark = pytest.mark.browser
SIDEBAR_AND_PADDING = 400  # px of a window that the app's sidebar and page padding take.
WINDOWS = (1400, 1000)


def _evaluation(seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), 700)
    probabilities = rng.dirichlet(np.ones(len(CLASSES)), 700)
    probabilities[np.arange(700), labels] += rng.random(700)
    return score(labels, probabilities / probabilities.sum(1, keepdims=True), CLASSES)


def _face(index: int) -> FacePrediction:
    values = np.random.default_rng(index).dirichlet(np.ones(len(CLASSES)))
    probabilities = dict(zip(CLASSES, values.tolist()))
    label = max(probabilities, key=probabilities.get)
    return FacePrediction(Box(10 * index, 0, 40, 40), label, probabilities[label], probabilities)


def _video() -> VideoResult:
    frames = tuple(VideoFrame(t / 10, tuple(TrackedFace(track, _face(t * 3 + track)) for track in (1, 2, 3)))
                   for t in range(30))
    return VideoResult("clip.mp4", 320, 240, 3.0, 10.0, frames)


def _figures() -> dict[str, tuple]:
    """name → (figure, share of the page's width it gets)."""
    first, second = _evaluation(1), _evaluation(2)
    rng = np.random.default_rng(0)
    counts = np.array([3995, 436, 4097, 7215, 4965, 4830, 3171])
    profiles = ClassProfiles(CLASSES, counts, rng.uniform(0, 255, (7, 48, 48)).astype(np.float32),
                             rng.integers(0, 100, (7, 256)))
    import pandas as pd
    distribution = pd.DataFrame([{"split": split, "class": name, "count": int(n), "percent": 100 * n / counts.sum()}
                                 for split in ("train", "validation") for name, n in zip(CLASSES, counts)])
    return {
        "confusion": (evaluation_charts.confusion_heatmap(first), 1.0),
        "confusion-clickable": (clickable_confusion(first, normalized=True), 1.0),
        "compare-left": (evaluation_charts.confusion_heatmap(first, title="model a", scale=False), 0.5),
        "compare-right": (evaluation_charts.confusion_heatmap(second, normalized=True, title="model b"), 0.5),
        "per-class": (evaluation_charts.per_class_bars(first), 1.0),
        "per-class-half": (evaluation_charts.per_class_bars(first), 0.5),
        "comparison": (evaluation_charts.comparison_bars({"model a": first, "model b": second}), 1.0),
        "distribution": (dataset_charts.distribution_chart(distribution), 1.0),
        "mean-faces": (dataset_charts.mean_faces_chart(profiles), 1.0),
        "probabilities": (probability_figure(_face(1)), 0.3),
        "video-shares": (shares_figure(_video()), 0.5),
        "video-timeline": (timeline_figure(_video(), 1), 0.5),
        "pixel-histogram": (dataset_charts.pixel_histogram_chart(profiles), 1.0),
        "contrast": (dataset_charts.contrast_chart({"train": rng.normal(45, 15, 3000).clip(0, 127),
                                                    "validation": rng.normal(45, 15, 400).clip(0, 127)},
                                                   QualityThresholds()), 1.0),
        "confidence": (evaluation_charts.confidence_figure(first), 0.5),
        "reliability": (evaluation_charts.reliability_figure(first), 0.5),
        "feature-map": (feature_map_figure(FeatureMap(np.arange(300), rng.normal(size=(300, 2)), "pca", 0.4),
                                           rng.integers(0, 7, 300), rng.integers(0, 7, 300), CLASSES), 1.0),
        "train-loss": (curves_figure(_epochs(), "loss"), 1 / 3),
        "train-accuracy": (curves_figure(_epochs(), "accuracy", start=0.74, best_epoch=0), 1 / 3),
        "train-learning-rate": (learning_rate_figure(_epochs()), 1 / 3),
        "train-comparison": (comparison_figure({"20261206-0815-vgg40": _epochs(), "20261206-0901-seed": _epochs(12)}),
                             1.0),
    }


def _epochs(count: int = 20) -> list[dict]:
    """A fine-tuning run's metrics records, as fer.train.run_dir writes them."""
    rng = np.random.default_rng(3)
    return [{"epoch": epoch, "loss": 1.2 / epoch ** 0.3, "accuracy": 0.6 + 0.01 * epoch, "val_loss": 0.9,
             "val_accuracy": 0.73 + rng.uniform(-0.02, 0.02), "lr": 1e-3 if epoch <= 5 else 1e-4}
            for epoch in range(1, count + 1)]


@pytest.fixture(scope="module")
def browser(playwright_instance):
    browser = launch_chromium(playwright_instance)
    yield browser
    browser.close()


def _page_of_charts(folder: Path, window: int) -> Path:
    content = window - SIDEBAR_AND_PADDING
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    parts = [f'<script src="{plotly_js.as_uri()}"></script>']
    for name, (figure, share) in _figures().items():
        html = plotly.io.to_html(figure, include_plotlyjs=False, full_html=False, div_id=name,
                                 default_width=f"{int(content * share)}px", config={"responsive": False})
        parts.append(f'<div style="width:{int(content * share)}px">{html}</div>')
    page = folder / f"charts-{window}.html"
    page.write_text("<html><body style='margin:0;font-family:sans-serif'>" + "".join(parts) + "</body></html>")
    return page


def test_the_overlap_measure_sees_a_real_overlap():
    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert quads_intersect(square, [(5, 5), (15, 5), (15, 15), (5, 15)])
    assert not quads_intersect(square, [(10, 0), (20, 0), (20, 10), (10, 10)])  # Touching is not overlapping.
    diamond = [(16, 5), (21, 0), (26, 5), (21, 10)]
    assert not quads_intersect(square, diamond)


@pytest.mark.parametrize("window", WINDOWS)
def test_no_tick_labels_overlap(browser, tmp_path, window):
    page = browser.new_page(viewport={"width": window, "height": 1000})
    page.goto(_page_of_charts(tmp_path, window).as_uri())
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= "
                           f"{2 * len(_figures())}", timeout=60_000)
    measured = page.evaluate(MEASURE_JS, page.locator("body").element_handle())
    page.close()
    by_id = {chart["id"]: chart for chart in measured}
    assert set(by_id) == set(_figures())
    for chart in ("confusion", "compare-left", "compare-right"):  # Seven class names on each axis of a matrix.
        assert sorted(label["text"] for label in by_id[chart]["axes"]["xtick"]) == sorted(CLASSES)
        assert sorted(label["text"] for label in by_id[chart]["axes"]["ytick"]) == sorted(CLASSES)
    assert overlaps(measured) == []
