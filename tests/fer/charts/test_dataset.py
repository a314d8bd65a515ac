"""fer.charts.dataset: the Dataset page's plotly figures show the data they are given."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

from fer.charts import dataset as charts

from fer.data import eda
from fer.data.eda import ClassProfiles, QualityThresholds, Sample

STEP = 48 + charts.GAP


def decode_mosaic(figure: go.Figure) -> np.ndarray:
    """The picture inside a mosaic figure's go.Image trace."""
    source = figure.data[0].source
    assert source.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))


def tiles(count: int) -> np.ndarray:
    """`count` flat images, image i filled with value 10 * (i + 1)."""
    return np.stack([np.full((48, 48), 10 * (i + 1), np.uint8) for i in range(count)])


def test_distribution_chart_has_a_bar_group_per_split():
    distribution = pd.DataFrame({
        "split": ["train", "train", "validation", "validation"], "class": ["happy", "sad"] * 2,
        "count": [30, 10, 3, 1], "percent": [75.0, 25.0, 75.0, 25.0],
    })
    figure = charts.distribution_chart(distribution)
    assert [trace.name for trace in figure.data] == ["train", "validation"]
    assert list(figure.data[0].y) == [30, 10] and list(figure.data[0].text) == ["75.0%", "25.0%"]
    assert figure.data[0].x[0].endswith("happy") and figure.layout.barmode == "group"
    by_percent = charts.distribution_chart(distribution, value="percent")
    assert list(by_percent.data[1].y) == [75.0, 25.0] and list(by_percent.data[1].text) == ["3", "1"]
    with pytest.raises(ValueError):
        charts.distribution_chart(distribution, value="share")


def test_image_grid_places_each_image_row_major_with_its_hover_text():
    figure = charts.image_grid(tiles(5), [f"file{i}.png" for i in range(5)], columns=3)
    picture = decode_mosaic(figure)
    assert picture.shape == (2 * STEP - charts.GAP, 3 * STEP - charts.GAP)
    assert picture[0, 0] == 10 and picture[0, STEP * 2] == 30 and picture[STEP, STEP] == 50
    assert picture[STEP, 2 * STEP] == 255  # the sixth cell is empty
    markers = figure.data[1]
    assert list(markers.hovertext) == [f"file{i}.png" for i in range(5)]
    # Marker i sits on tile i, so a clicked point's index is the image's index.
    assert (markers.x[4], markers.y[4]) == (STEP + 23.5, STEP + 23.5)


def test_image_grid_rejects_mismatched_hover_texts():
    with pytest.raises(ValueError):
        charts.image_grid(tiles(3), ["only one"])


def test_sample_grid_puts_each_class_on_its_own_row():
    classes = ("angry", "happy", "sad")
    samples = [Sample("train", 4, "happy", "h1.png"), Sample("train", 7, "happy", "h2.png"),
               Sample("train", 1, "sad", "s1.png")]
    figure = charts.sample_grid(tiles(3), samples, classes)
    picture = decode_mosaic(figure)
    assert picture.shape[0] == 3 * STEP - charts.GAP  # a row for 'angry' too, though it is empty
    assert picture[STEP, 0] == 10 and picture[STEP, STEP] == 20 and picture[2 * STEP, 0] == 30
    assert picture[0, 0] == 255
    assert "h2.png" in figure.data[1].hovertext[1]
    assert [label.split()[-1] for label in figure.layout.yaxis.ticktext] == list(classes)
    with pytest.raises(ValueError):
        charts.sample_grid(tiles(2), samples, classes)


def profiles() -> ClassProfiles:
    faces = np.stack([np.full((48, 48), 100.0), np.full((48, 48), 100.0)]).astype(np.float32)
    faces[1, :24] = 140  # a two-tone mean face
    histograms = np.zeros((2, 256), np.int64)
    histograms[0, 100] = 2304
    histograms[1, [100, 140]] = [1152, 1152]
    return ClassProfiles(("happy", "sad"), np.array([1, 1]), faces, histograms)


def test_mean_faces_chart_labels_counts_and_can_stretch_contrast():
    plain = decode_mosaic(charts.mean_faces_chart(profiles()))
    assert plain[0, STEP] == 140 and plain[47, STEP] == 100
    stretched = decode_mosaic(charts.mean_faces_chart(profiles(), stretch=True))
    assert stretched[0, STEP] == 255 and stretched[47, STEP] == 0
    assert stretched[0, 0] == 0  # a flat face stays flat instead of dividing by zero
    ticktext = charts.mean_faces_chart(profiles()).layout.xaxis.ticktext
    assert "happy" in ticktext[0] and "1 images" in ticktext[0]


def test_pixel_histogram_chart_shows_percent_of_pixels_per_class():
    figure = charts.pixel_histogram_chart(profiles())
    assert len(figure.data) == 2
    assert sum(figure.data[1].y) == pytest.approx(100.0) and figure.data[1].y[140] == pytest.approx(50.0)


def test_pixel_histogram_chart_skips_empty_classes():
    empty = profiles()
    empty = ClassProfiles(empty.classes, np.array([1, 0]), empty.mean_faces, empty.histograms * [[1], [0]])
    assert len(charts.pixel_histogram_chart(empty).data) == 1


def test_contrast_chart_marks_both_thresholds():
    contrast = {"train": np.array([0.5, 30.0, 50.0], np.float32), "validation": np.array([40.0], np.float32)}
    figure = charts.contrast_chart(contrast, QualityThresholds(near_blank_std=2, low_contrast_std=12))
    assert [trace.name for trace in figure.data] == ["train", "validation"]
    assert sum(figure.data[0].y) == 3 and figure.data[0].y[0] == 1  # 0.5 falls in the first 0-2 bin
    assert sorted(shape.x0 for shape in figure.layout.shapes) == [2, 12]
    assert figure.layout.yaxis.type == "log"


def test_charts_accept_eda_output_end_to_end():
    from fer.data.datasets import Dataset, Split

    images = np.stack([np.full((48, 48), v, np.uint8) for v in (10, 200, 90)])
    dataset = Dataset("m", "t", ("a", "b"), {"train": Split(images, np.array([0, 1, 0]), ("x", "y", "z"))})
    samples = eda.sample_per_class(dataset, "train", per_class=2, seed=0)
    figure = charts.sample_grid(eda.gather_images(dataset, [(s.split, s.index) for s in samples]),
                                samples, dataset.classes)
    assert len(figure.data[1].x) == 3
    assert charts.distribution_chart(eda.class_distribution(dataset)).data[0].y.tolist() == [2, 1]
